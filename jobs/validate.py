"""Input validation for the nightly run: schemas, types, row counts and duplicate ids, before any work is done.

Insurance tables are checked with Spark (the same reader the merge uses, so a cluster run validates where
the data lives); the visit data with the recommenders' own loaders. Every error names the file and column.
"""

from __future__ import annotations

from pathlib import Path

from c360.entity_resolution.merge import read_source
from c360.entity_resolution.sources import SOURCE_TABLES
from c360.errors import InputError


def validate_insurance(sources_dir: str | Path, spark) -> dict[str, int]:
    """Check the source tables (`sources.SOURCE_TABLES`); return their row counts. Raises InputError naming file
    and column."""
    from pyspark.sql import functions as F

    d = Path(sources_dir)
    if not d.is_dir():
        raise InputError(f"{d}: insurance source directory not found")
    rows: dict[str, int] = {}
    for table in SOURCE_TABLES:
        path = d / table.file
        df = read_source(spark, path, table.required)
        rows[table.name] = df.count()
        id_col = table.unique
        if id_col:
            nulls = df.where(F.col(id_col).isNull()).count()
            if nulls:
                raise InputError(f"{path}: column {id_col} has {nulls} empty value(s)")
            dup = df.groupBy(id_col).count().where("count > 1").orderBy(id_col).limit(5).collect()
            if dup:
                raise InputError(f"{path}: column {id_col} has duplicate values: "
                                 + ", ".join(str(r[id_col]) for r in dup))
        for col in table.numeric:
            bad = (df.where(F.col(col).isNotNull() & F.col(col).cast("double").isNull())
                   .select(col).limit(3).collect())
            if bad:
                raise InputError(f"{path}: column {col} has non-numeric values: "
                                 + ", ".join(repr(r[col]) for r in bad))
    return rows


def validate_visits(visits: str | Path | None, fmt: str, items: str | Path | None) -> dict[str, int]:
    """Check the visit data (sigir17 directory or Personalize file) and its item table; return row counts."""
    if fmt == "sigir17":
        from c360.recsys import sigir17

        root = Path(visits) if visits else sigir17.DEFAULT_DIR
        events, item_table = sigir17.load_visits(root), sigir17.load_items(root)
    else:
        from c360.recsys.data import read_items, read_personalize_events

        if not visits:
            raise InputError("nightly.visits: a Personalize interactions file is required for format personalize")
        events = read_personalize_events(visits)
        item_table = read_items(items) if items else None
    if events.empty:
        raise InputError(f"{visits or 'shipped sigir17 data'}: no visits")
    rows = {"visit_events": len(events), "visitors": int(events["USER_ID"].nunique())}
    if item_table is not None:
        rows["items"] = len(item_table)
        unknown = sorted(set(events["ITEM_ID"].astype(str)) - set(item_table["ITEM_ID"].astype(str)))
        if unknown:
            raise InputError(f"{items or visits or 'visits'}: ITEM_ID(s) visited but not in the item table: "
                             + ", ".join(unknown[:5]))
    return rows


def visits_format(visits: str | Path | None, fmt: str | None) -> str:
    """sigir17 for a directory (or the shipped data), personalize for a file, unless given."""
    if fmt:
        if fmt not in ("sigir17", "personalize"):
            raise InputError(f"nightly.visits_format: {fmt!r} is not sigir17 or personalize")
        return fmt
    return "sigir17" if visits is None or Path(visits).is_dir() else "personalize"
