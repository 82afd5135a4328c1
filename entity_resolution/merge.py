"""The workshop's merge job on Spark: rename, drop, suffix ids, join addresses, union → merged_auto_property.

What each customer table becomes is declared in `sources`; this module reads the files and runs it on Spark.
"""

from __future__ import annotations

from pathlib import Path

from c360.entity_resolution.sources import ADDRESS_COLUMNS, CUSTOMER_TABLES, merged_order, to_merged_spark
from c360.errors import InputError
from c360.io import spark_write


def read_source(spark, path: Path | str, required: list[str] | tuple[str, ...]):
    """A source CSV (a local path or any Hadoop URI: hdfs://, s3a://) as a Spark DataFrame of strings; InputError
    naming the file for a missing file, an empty file, missing columns or no rows."""
    if "://" not in str(path):
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: file not found")
        if path.is_file() and path.stat().st_size == 0:
            raise InputError(f"{path}: file is empty")
    df = spark.read.csv(str(path), header=True, inferSchema=False)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    if df.limit(1).count() == 0:
        raise InputError(f"{path}: table has no rows")
    return df


def merge(sources_dir: str | Path, out_path: str | Path, spark=None) -> dict:
    """Merge the auto and property source tables in sources_dir (a folder or a Hadoop URI) into merged Parquet at
    out_path, written by Spark (a directory of part files, atomically on local disk).

    Returns {"out", "rows", "auto", "property"}: counts by one aggregate, no rows reach the driver.
    """
    from c360.spark import get_spark

    spark = spark or get_spark(app_name="c360-er-merge")
    d = _Dir(str(sources_dir))
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
    spark_write(merged, out_path, "parquet")
    counts = {r["source"]: int(r["count"]) for r in
              spark.read.parquet(str(out_path)).groupBy("source").count().collect()}
    return {"out": str(out_path), "rows": sum(counts.values()),
            **{t.line: counts.get(t.line, 0) for t in CUSTOMER_TABLES}}


class _Dir(str):
    """A sources folder: a local path or a Hadoop URI, joined with `/` (Path would fold `hdfs://` into `hdfs:/`)."""

    def __truediv__(self, name: str):
        return Path(self) / name if "://" not in self else f"{self.rstrip('/')}/{name}"
