"""Input validation for the nightly run: schemas, types, row counts and duplicate ids, before any work is done.

Insurance tables are checked with Spark (the same reader the merge uses, so a cluster run validates where
the data lives); the visit data with the recommenders' own loaders. Every error names the file and column.
"""

from __future__ import annotations

from pathlib import Path

from c360.entity_resolution.merge import read_source
from c360.entity_resolution.sources import SOURCE_TABLES
from c360.errors import InputError


def validate_insurance(sources_dir: str | Path, spark, accounts=None) -> dict[str, int]:
    """Check the source tables (`sources.SOURCE_TABLES`, and an accounts table when given: `sources.AccountTable`,
    its file relative to the directory unless absolute); return their row counts. Raises InputError naming file
    and column."""
    from pyspark.sql import functions as F

    d = Path(sources_dir)
    if not d.is_dir():
        raise InputError(f"{d}: insurance source directory not found")
    rows: dict[str, int] = {}
    for table in (*SOURCE_TABLES, *([accounts] if accounts is not None else [])):
        path = d / table.file
        df = read_source(spark, path, table.required)
        id_col = table.unique
        # every check of the table in one aggregate (one Spark job); the offending values only on a failure
        checks = [F.count(F.lit(1)).alias("rows")]
        if id_col:
            checks += [F.sum(F.col(id_col).isNull().cast("int")).alias("nulls"),
                       F.countDistinct(id_col).alias("distinct")]
        checks += [F.sum((F.col(c).isNotNull() & F.col(c).cast("double").isNull()).cast("int")).alias(f"bad{i}")
                   for i, c in enumerate(table.numeric)]
        found = df.agg(*checks).first()
        rows[table.name] = found["rows"]
        if id_col:
            if found["nulls"]:
                raise InputError(f"{path}: column {id_col} has {found['nulls']} empty value(s)")
            if found["distinct"] < found["rows"]:
                dup = df.groupBy(id_col).count().where("count > 1").orderBy(id_col).limit(5).collect()
                raise InputError(f"{path}: column {id_col} has duplicate values: "
                                 + ", ".join(str(r[id_col]) for r in dup))
        for i, col in enumerate(table.numeric):
            if found[f"bad{i}"]:
                bad = (df.where(F.col(col).isNotNull() & F.col(col).cast("double").isNull())
                       .select(col).limit(3).collect())
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
