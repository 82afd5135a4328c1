"""The workshop's merge job on Spark: rename, drop, suffix ids, join addresses, union → merged_auto_property.

What each customer table becomes is declared in `sources`; this module reads the files and runs it on Spark.
"""

from __future__ import annotations

from pathlib import Path

from c360.entity_resolution.sources import ADDRESS_COLUMNS, CUSTOMER_TABLES, merged_order, to_merged_spark
from c360.errors import InputError
from c360.io import atomic_path


def read_source(spark, path: Path, required: list[str] | tuple[str, ...]):
    """A source CSV as a Spark DataFrame of strings; InputError naming the file for a missing file, an empty
    file, missing columns or no rows."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    df = spark.read.csv(str(path), header=True, inferSchema=False)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    if df.limit(1).count() == 0:
        raise InputError(f"{path}: table has no rows")
    return df


def merge(sources_dir: str | Path, out_path: str | Path, spark=None) -> dict:
    """Merge the auto and property source tables in sources_dir into one Parquet file at out_path.

    Returns {"out", "rows", "auto", "property"}. The output is a single Parquet file written atomically.
    """
    from c360.spark import get_spark

    spark = spark or get_spark(app_name="c360-er-merge")
    d = Path(sources_dir)
    # read (and check) every table before any work, customers then addresses, in union order
    read = [(t, read_source(spark, d / t.file, t.merge_reads),
             read_source(spark, d / t.address.file, (t.key_column, *ADDRESS_COLUMNS))) for t in CUSTOMER_TABLES]
    for t, df, _ in read:
        dup = df.groupBy(t.key_column).count().where("count > 1").limit(5).collect()
        if dup:
            raise InputError(f"{d / t.file}: duplicate {t.key_column} values: "
                             f"{', '.join(str(r[t.key_column]) for r in dup)}")
    merged = None
    for t, df, addr in read:
        part = to_merged_spark(t, df, addr)
        merged = part if merged is None else merged.unionByName(part, allowMissingColumns=True)
    merged = merged.select(*merged_order(merged.columns))
    pdf = merged.toPandas()
    with atomic_path(out_path) as tmp:
        pdf.to_parquet(tmp, index=False)
    return {"out": str(out_path), "rows": len(pdf),
            **{t.line: int((pdf["source"] == t.line).sum()) for t in CUSTOMER_TABLES}}
