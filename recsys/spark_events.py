"""Visits read by Spark from the files (a sigir17 directory or a Personalize CSV/Parquet, on any Hadoop path) and
aggregated with Spark SQL into Parquet: the driver sees only the checks' counts, never a row.

The values are those of the pandas loaders (`c360.recsys.data`, `c360.recsys.sigir17`): an attraction is
`park:poiID`, one photo is EVENT_VALUE 1, and the same bad input is refused with the same message.
"""

from __future__ import annotations

from pathlib import Path

from c360.errors import InputError
from c360.io import spark_write, table_kind

from . import sigir17

EVENT_COLUMNS = ["USER_ID", "ITEM_ID", "EVENT_VALUE", "TIMESTAMP"]

AGGREGATE_SQL = """
SELECT USER_ID, ITEM_ID, CAST(SUM(EVENT_VALUE) AS DOUBLE) AS EVENT_VALUE, CAST(MIN(TIMESTAMP) AS BIGINT) AS TIMESTAMP
FROM {view}
GROUP BY USER_ID, ITEM_ID
"""


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file:")


def _local(path: str) -> Path:
    from urllib.parse import urlparse

    return Path(urlparse(path).path) if path.startswith("file:") else Path(path)


def _require(df, columns, source: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)} (found: {', '.join(df.columns)})")


def sigir17_events(spark, root: str | Path = sigir17.DEFAULT_DIR, parks: list[str] | None = None):
    """One row per photo: USER_ID, ITEM_ID (`park:poiID`), EVENT_VALUE 1.0, TIMESTAMP (takenUnix)."""
    from pyspark.sql import functions as F

    root = str(root).rstrip("/")
    if _is_local(root):
        local = _local(root)
        folder = local / "userVisits-sigir17"
        if not folder.is_dir():
            raise InputError(f"{local}: not a sigir17 directory (missing userVisits-sigir17/)")
        if not any(folder.glob("userVisits-*-allPOI.csv")):
            raise InputError(f"{local}: no userVisits-*-allPOI.csv files")
    visits = spark.read.csv(f"{root}/userVisits-sigir17/userVisits-*-allPOI.csv", sep=";", header=True)
    _require(visits, sigir17.VISIT_COLUMNS, f"{root}/userVisits-sigir17")
    park = F.regexp_extract(F.input_file_name(), r"userVisits-([^/]+)-allPOI\.csv$", 1)
    visits = visits.withColumn("PARK", park)
    if parks:
        visits = visits.where(F.col("PARK").isin(list(parks)))
    return visits.select(
        F.col("nsid").cast("string").alias("USER_ID"),
        F.concat(F.col("PARK"), F.lit(":"), F.col("poiID").cast("double").cast("bigint").cast("string"))
        .alias("ITEM_ID"),
        F.lit(1.0).alias("EVENT_VALUE"),
        F.col("takenUnix").cast("bigint").alias("TIMESTAMP"))


def personalize_events(spark, path: str | Path):
    """A Personalize interactions file (CSV or Parquet, a file or a directory of parts), checked as
    `c360.recsys.data.read_personalize_events` checks it: USER_ID, ITEM_ID required and never empty; EVENT_VALUE
    numeric and >= 0 (1 when absent); TIMESTAMP integer epoch seconds (0 when absent)."""
    from pyspark.sql import functions as F

    path = str(path)
    kind = table_kind(path)
    if _is_local(path):
        local = _local(path)
        if not local.exists():
            raise InputError(f"{local}: file not found")
        if local.is_file() and local.stat().st_size == 0:
            raise InputError(f"{local}: file is empty")
    raw = spark.read.parquet(path) if kind == "parquet" else spark.read.csv(path, header=True)
    _require(raw, ["USER_ID", "ITEM_ID"], path)
    value = F.col("EVENT_VALUE").cast("double") if "EVENT_VALUE" in raw.columns else F.lit(1.0)
    ts = F.col("TIMESTAMP").cast("double") if "TIMESTAMP" in raw.columns else F.lit(0.0)
    events = raw.select(F.col("USER_ID").cast("string").alias("USER_ID"),
                        F.col("ITEM_ID").cast("string").alias("ITEM_ID"),
                        value.alias("EVENT_VALUE"), ts.alias("TS"),
                        (F.col("EVENT_VALUE").cast("string") if "EVENT_VALUE" in raw.columns
                         else F.lit("1")).alias("RAW_VALUE"))
    bad_value = (F.col("EVENT_VALUE").isNull() | F.isnan("EVENT_VALUE")
                 | (F.abs(F.col("EVENT_VALUE")) == float("inf")))
    checks = events.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum((F.col("USER_ID").isNull() | F.col("ITEM_ID").isNull()).cast("int")).alias("empty_ids"),
        F.sum(bad_value.cast("int")).alias("bad_values"),
        F.first(F.when(bad_value, F.col("RAW_VALUE")), ignorenulls=True).alias("bad_example"),
        F.sum((F.col("EVENT_VALUE") < 0).cast("int")).alias("negative"),
        F.sum((F.col("TS").isNull() | F.isnan("TS")).cast("int")).alias("bad_times")).first()
    if not checks["rows"]:
        raise InputError(f"{path}: no interaction rows")
    if checks["empty_ids"]:
        raise InputError(f"{path}: empty USER_ID or ITEM_ID in {checks['empty_ids']} row(s)")
    if checks["bad_values"]:
        raise InputError(f"{path}: column EVENT_VALUE must be numeric (found {checks['bad_example']!r})")
    if checks["negative"]:
        raise InputError(f"{path}: column EVENT_VALUE must be >= 0")
    if checks["bad_times"]:
        raise InputError(f"{path}: column TIMESTAMP must be integer epoch seconds")
    return events.select("USER_ID", "ITEM_ID", "EVENT_VALUE", F.col("TS").cast("bigint").alias("TIMESTAMP"))


def read_events(spark, source: str | Path | None, fmt: str = "personalize", parks: list[str] | None = None):
    """The events of a sigir17 directory (default: the shipped copy) or a Personalize file as a Spark DataFrame."""
    if fmt == "sigir17":
        return sigir17_events(spark, source or sigir17.DEFAULT_DIR, parks=parks)
    if source is None:
        raise InputError("--interactions: required for --format personalize")
    return personalize_events(spark, source)


def aggregate(spark, events):
    """One row per (USER_ID, ITEM_ID): EVENT_VALUE summed, the first TIMESTAMP; sorted by user and item (the part
    files in name order hold the rows in that order)."""
    view = f"c360_events_{abs(hash(events))}"
    events.select(*EVENT_COLUMNS).createOrReplaceTempView(view)
    try:
        return spark.sql(AGGREGATE_SQL.format(view=view)).orderBy("USER_ID", "ITEM_ID")
    finally:
        spark.catalog.dropTempView(view)


def write_interactions(spark, source: str | Path | None, out: str | Path, fmt: str = "personalize",
                       extra_events: str | Path | None = None, parks: list[str] | None = None) -> Path:
    """Read the visits with Spark, add the events of `extra_events` (Parquet: USER_ID, ITEM_ID, TIMESTAMP,
    EVENT_VALUE, e.g. the real-time log's) and write the aggregated interactions as Parquet parts at `out`."""
    events = read_events(spark, source, fmt, parks=parks).select(*EVENT_COLUMNS)
    if extra_events is not None:
        from pyspark.sql import functions as F

        extra = spark.read.parquet(str(extra_events))
        events = events.unionByName(extra.select(F.col("USER_ID").cast("string"), F.col("ITEM_ID").cast("string"),
                                                 F.col("EVENT_VALUE").cast("double"),
                                                 F.col("TIMESTAMP").cast("bigint")))
    return spark_write(aggregate(spark, events), out, "parquet")
