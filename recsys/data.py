"""Loading interactions and items: the sigir17 directory layout or Personalize-style CSV/Parquet files.

Interest in an attraction = the photos a user took there (the book's proxy), aggregated per (user, item)
with Spark SQL as in the book (`engine="spark"`), or with pandas for small single-machine runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from c360.errors import InputError
from c360.io import read_table, require_columns

from . import sigir17

FORMATS = ("personalize", "sigir17")
ENGINES = ("spark", "pandas")
INTERACTION_COLUMNS = ["USER_ID", "ITEM_ID", "EVENT_VALUE", "TIMESTAMP"]

AGGREGATE_SQL = """
SELECT USER_ID, ITEM_ID, SUM(EVENT_VALUE) AS EVENT_VALUE, MIN(TIMESTAMP) AS TIMESTAMP
FROM events
GROUP BY USER_ID, ITEM_ID
"""


def aggregate_events(events: pd.DataFrame, engine: str = "spark", spark=None) -> pd.DataFrame:
    """Sum EVENT_VALUE (1 per photo) per (USER_ID, ITEM_ID): one interaction row per pair, sorted."""
    if engine not in ENGINES:
        raise InputError(f"--aggregate: unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    events = events[["USER_ID", "ITEM_ID", "EVENT_VALUE", "TIMESTAMP"]]
    if engine == "spark":
        if spark is None:
            from c360.spark import get_spark

            spark = get_spark(app_name="c360-recsys")
        spark.createDataFrame(events).createOrReplaceTempView("events")
        out = spark.sql(AGGREGATE_SQL).toPandas()
    else:
        out = events.groupby(["USER_ID", "ITEM_ID"], as_index=False).agg(
            EVENT_VALUE=("EVENT_VALUE", "sum"), TIMESTAMP=("TIMESTAMP", "min"))
    out["EVENT_VALUE"] = out["EVENT_VALUE"].astype("float64")
    out["TIMESTAMP"] = out["TIMESTAMP"].astype("int64")
    return out.sort_values(["USER_ID", "ITEM_ID"], ignore_index=True)


def load_sigir17(root: str | Path = sigir17.DEFAULT_DIR, engine: str = "spark", spark=None,
                 parks: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interactions (USER_ID, ITEM_ID=`park:poiID`, EVENT_VALUE=photos, TIMESTAMP) and the items table."""
    visits = sigir17.load_visits(root, parks=parks)
    events = visits.assign(EVENT_VALUE=1.0)
    interactions = aggregate_events(events, engine=engine, spark=spark)
    return interactions, sigir17.load_items(root)


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


def fingerprint(interactions: pd.DataFrame) -> str:
    """sha256 of the sorted (USER_ID, ITEM_ID, EVENT_VALUE) rows: identifies the training data."""
    df = interactions[["USER_ID", "ITEM_ID", "EVENT_VALUE"]].sort_values(["USER_ID", "ITEM_ID"])
    text = "\n".join(f"{u}\t{i}\t{v:g}" for u, i, v in df.itertuples(index=False))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
