"""The workshop's merge job on Spark: rename, drop, suffix ids, join addresses, union → merged_auto_property.

What each customer table becomes is declared in `sources`; this module reads the files and runs it on Spark.
"""

from __future__ import annotations

from pathlib import Path

from c360.entity_resolution.sources import (
    ADDRESS_COLUMNS,
    CUSTOMER_TABLES,
    PARK_ACCOUNTS,
    AccountTable,
    merged_order,
    to_merged_spark,
)
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


def merge_files() -> list[str]:
    """The files of a sources folder `merge` reads, relative to it: every customer table and its addresses (the
    accounts table is read when configured, or when the folder has one)."""
    return [name for t in CUSTOMER_TABLES for name in (t.file, t.address.file)]


def accounts_table(sources_dir: str | Path, accounts: AccountTable | None = None) -> AccountTable | None:
    """The accounts table to merge: the configured one (its file relative to the sources), else the sources'
    `park_accounts.csv` when there is one (local folders only), else None."""
    if accounts is not None:
        return accounts
    d = _Dir(str(sources_dir))
    if "://" not in d and (d / PARK_ACCOUNTS.file).is_file():
        return PARK_ACCOUNTS
    return None


def merge(sources_dir: str | Path, out_path: str | Path, spark=None, accounts: AccountTable | None = None) -> dict:
    """Merge the auto and property source tables in sources_dir (a folder or a Hadoop URI) into merged Parquet at
    out_path, written by Spark (a directory of part files, atomically on local disk); the accounts of another system
    (`accounts_table`) are merged rows too, their ids kept.

    Returns {"out", "rows", "auto", "property"[, the accounts' line]}: counts by one aggregate, no rows reach the
    driver.
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
    table = accounts_table(sources_dir, accounts)
    lines = [t.line for t in CUSTOMER_TABLES]
    if table is not None:
        path = d / table.file if "://" in table.file or not Path(table.file).is_absolute() else Path(table.file)
        acc = read_source(spark, path, table.required)
        dup = acc.groupBy(table.key_column).count().where("count > 1").limit(5).collect()
        if dup:
            raise InputError(f"{path}: duplicate {table.key_column} values: "
                             f"{', '.join(str(r[table.key_column]) for r in dup)}")
        merged = merged.unionByName(table.to_merged_spark(acc), allowMissingColumns=True)
        lines.append(table.line)
    merged = merged.select(*merged_order(merged.columns))
    spark_write(merged, out_path, "parquet")
    counts = {r["source"]: int(r["count"]) for r in
              spark.read.parquet(str(out_path)).groupBy("source").count().collect()}
    return {"out": str(out_path), "rows": sum(counts.values()),
            **{line: counts.get(line, 0) for line in lines}}


class _Dir(str):
    """A sources folder: a local path or a Hadoop URI, joined with `/` (Path would fold `hdfs://` into `hdfs:/`)."""

    def __truediv__(self, name: str):
        return Path(self) / name if "://" not in self else f"{self.rstrip('/')}/{name}"
