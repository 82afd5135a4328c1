"""Loading interactions and items: the sigir17 directory layout or Personalize-style CSV/Parquet files.

Interest in an attraction = the photos a user took there (the book's proxy), aggregated per (user, item)
with Spark SQL as in the book (`engine="spark"`: read and aggregated by Spark, `c360.recsys.spark_events`,
written as Parquet; `aggregate_files` leaves it there for the models to read), or with pandas for small
single-machine runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from c360.errors import InputError
from c360.io import read_table, require_columns

from . import sigir17

FORMATS = ("personalize", "sigir17")
ENGINES = ("spark", "pandas")


def aggregate_events(events: pd.DataFrame, engine: str = "spark", spark=None) -> pd.DataFrame:
    """Sum EVENT_VALUE (1 per photo) per (USER_ID, ITEM_ID) of events held in memory: one interaction row per pair,
    sorted. (Files are read and aggregated by Spark without pandas: `aggregate_files`.)"""
    if engine not in ENGINES:
        raise InputError(f"--aggregate: unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    events = events[["USER_ID", "ITEM_ID", "EVENT_VALUE", "TIMESTAMP"]]
    if engine == "spark":
        if spark is None:
            from c360.spark import get_spark

            spark = get_spark(app_name="c360-recsys")
        from .spark_events import aggregate

        out = aggregate(spark, spark.createDataFrame(events)).toPandas()
    else:
        out = events.groupby(["USER_ID", "ITEM_ID"], as_index=False).agg(
            EVENT_VALUE=("EVENT_VALUE", "sum"), TIMESTAMP=("TIMESTAMP", "min"))
    out["EVENT_VALUE"] = out["EVENT_VALUE"].astype("float64")
    out["TIMESTAMP"] = out["TIMESTAMP"].astype("int64")
    return out.sort_values(["USER_ID", "ITEM_ID"], ignore_index=True)


def load_sigir17(root: str | Path = sigir17.DEFAULT_DIR, engine: str = "spark", spark=None,
                 parks: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interactions (USER_ID, ITEM_ID=`park:poiID`, EVENT_VALUE=photos, TIMESTAMP) and the items table."""
    if engine == "spark":
        return _spark_loaded(root, "sigir17", spark, parks), sigir17.load_items(root)
    if engine not in ENGINES:
        raise InputError(f"--aggregate: unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    visits = sigir17.load_visits(root, parks=parks)
    events = visits.assign(EVENT_VALUE=1.0)
    return aggregate_events(events, engine="pandas"), sigir17.load_items(root)


def _spark_loaded(source, fmt: str, spark, parks=None) -> pd.DataFrame:
    """Read and aggregate with Spark into Parquet parts in a scratch directory, then read those with pyarrow (the
    aggregated table only: the per-photo events never reach the driver)."""
    import tempfile

    from .spark_events import write_interactions

    if spark is None:
        from c360.spark import get_spark

        spark = get_spark(app_name="c360-recsys")
    with tempfile.TemporaryDirectory(prefix="c360-interactions-") as tmp:
        out = write_interactions(spark, source, Path(tmp) / "interactions.parquet", fmt=fmt, parks=parks)
        df = pd.read_parquet(out)
    return df.astype({"USER_ID": str, "ITEM_ID": str, "EVENT_VALUE": "float64", "TIMESTAMP": "int64"})


def aggregate_files(interactions: str | Path | None, items: str | Path | None, out: str | Path,
                    fmt: str = "personalize", spark=None,
                    extra_events: str | Path | None = None) -> tuple[Path, pd.DataFrame | None]:
    """Aggregate the visits of a sigir17 directory or a Personalize file with Spark into Parquet parts at `out`
    (plus the events of the Parquet file `extra_events`); return (out, items table or None)."""
    from .spark_events import write_interactions

    if fmt not in FORMATS:
        raise InputError(f"--format: unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if spark is None:
        from c360.spark import get_spark

        spark = get_spark(app_name="c360-recsys")
    if fmt == "sigir17":
        root = Path(interactions) if interactions else sigir17.DEFAULT_DIR
        item_table = read_items(items) if items else sigir17.load_items(root)
        return write_interactions(spark, root, out, fmt=fmt, extra_events=extra_events), item_table
    if interactions is None:
        raise InputError("--interactions: required for --format personalize")
    item_table = read_items(items) if items else None
    return write_interactions(spark, interactions, out, fmt=fmt, extra_events=extra_events), item_table


def read_personalize_events(path: str | Path, require_timestamp: bool = False) -> pd.DataFrame:
    """Read a Personalize interactions file and validate it (USER_ID, ITEM_ID required; EVENT_VALUE numeric;
    SESSION_ID, a trip, optional but never empty when present). TIMESTAMP is 0 when absent, unless required."""
    df = read_table(path, dtype={"USER_ID": str, "ITEM_ID": str, "SESSION_ID": str})
    require_columns(df, ["USER_ID", "ITEM_ID"], str(path))
    if df.empty:
        raise InputError(f"{path}: no interaction rows")
    if df["USER_ID"].isna().any() or df["ITEM_ID"].isna().any():
        raise InputError(f"{path}: empty USER_ID or ITEM_ID in {int(df[['USER_ID', 'ITEM_ID']].isna().any(axis=1).sum())} row(s)")
    df["USER_ID"] = df["USER_ID"].astype(str)
    df["ITEM_ID"] = df["ITEM_ID"].astype(str)
    if "EVENT_VALUE" in df.columns:
        values = pd.to_numeric(df["EVENT_VALUE"], errors="coerce")
        bad = values.isna() & df["EVENT_VALUE"].notna() | ~np.isfinite(values.fillna(0))
        if bad.any() or values.isna().any():
            example = df.loc[bad | values.isna(), "EVENT_VALUE"].iloc[0]
            raise InputError(f"{path}: column EVENT_VALUE must be numeric (found {example!r})")
        if (values < 0).any():
            raise InputError(f"{path}: column EVENT_VALUE must be >= 0")
        df["EVENT_VALUE"] = values.astype("float64")
    else:
        df["EVENT_VALUE"] = 1.0
    if "SESSION_ID" in df.columns:
        if df["SESSION_ID"].isna().any():
            raise InputError(f"{path}: empty SESSION_ID in {int(df['SESSION_ID'].isna().sum())} row(s) "
                             "(give every row its trip, or leave the column out to cut trips by time gap)")
        df["SESSION_ID"] = df["SESSION_ID"].astype(str)
    if "TIMESTAMP" in df.columns:
        ts = pd.to_numeric(df["TIMESTAMP"], errors="coerce")
        if ts.isna().any():
            raise InputError(f"{path}: column TIMESTAMP must be integer epoch seconds")
        df["TIMESTAMP"] = ts.astype("int64")
    elif require_timestamp:
        raise InputError(f"{path}: missing column TIMESTAMP (trips need the time of every event)")
    else:
        df["TIMESTAMP"] = 0
    return df


def read_items(path: str | Path) -> pd.DataFrame:
    """Read an items file (ITEM_ID plus metadata such as NAME, PARK, THEME)."""
    df = read_table(path, dtype={"ITEM_ID": str})
    require_columns(df, ["ITEM_ID"], str(path))
    df["ITEM_ID"] = df["ITEM_ID"].astype(str)
    if df["ITEM_ID"].duplicated().any():
        raise InputError(f"{path}: duplicate ITEM_ID {df.loc[df['ITEM_ID'].duplicated(), 'ITEM_ID'].iloc[0]!r}")
    return df


def load_interactions(interactions: str | Path | None = None, items: str | Path | None = None,
                      fmt: str = "personalize", engine: str = "spark",
                      spark=None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Load (interactions, items) from a sigir17 directory or Personalize files (CSV or Parquet).

    interactions: aggregated, one row per (USER_ID, ITEM_ID) with EVENT_VALUE and TIMESTAMP.
    items: ITEM_ID plus metadata, or None when no items file is given (Personalize without --items).
    """
    if fmt not in FORMATS:
        raise InputError(f"--format: unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "sigir17":
        root = Path(interactions) if interactions else sigir17.DEFAULT_DIR
        inter, item_table = load_sigir17(root, engine=engine, spark=spark)
        if items:
            item_table = read_items(items)
        return inter, item_table
    if interactions is None:
        raise InputError("--interactions: required for --format personalize")
    if engine == "spark":
        return _spark_loaded(interactions, fmt, spark), (read_items(items) if items else None)
    events = read_personalize_events(interactions)
    inter = aggregate_events(events, engine=engine, spark=spark)
    return inter, (read_items(items) if items else None)


def validate_interactions(df: pd.DataFrame, source: str = "interactions") -> pd.DataFrame:
    """Check an already aggregated interactions frame; return it with string ids and float EVENT_VALUE."""
    require_columns(df, ["USER_ID", "ITEM_ID"], source)
    if df.empty:
        raise InputError(f"{source}: no interaction rows")
    out = df.copy()
    out["USER_ID"] = out["USER_ID"].astype(str)
    out["ITEM_ID"] = out["ITEM_ID"].astype(str)
    if "EVENT_VALUE" not in out.columns:
        out["EVENT_VALUE"] = 1.0
    values = pd.to_numeric(out["EVENT_VALUE"], errors="coerce")
    if values.isna().any():
        raise InputError(f"{source}: column EVENT_VALUE must be numeric")
    out["EVENT_VALUE"] = values.astype("float64")
    if out.duplicated(["USER_ID", "ITEM_ID"]).any():
        out = out.groupby(["USER_ID", "ITEM_ID"], as_index=False)["EVENT_VALUE"].sum()
    return out
