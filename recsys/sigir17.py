"""Loader for the SIGIR'17 theme-park data layout (the shipped copy: `c360.data`, see its SOURCE.md).

An attraction is (park, poiID), written `park:poiID` — every park numbers its attractions from 1. A trip is a
park's travel sequence (seqID: consecutive photos of one user less than 8 hours apart), written `park:seqID`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from c360.data import sigir17_dir
from c360.errors import InputError

DEFAULT_DIR = sigir17_dir()
VISIT_COLUMNS = ["id", "nsid", "takenUnix", "poiID", "poiTheme", "poiFreq", "rideDuration", "seqID"]
_VISITS_RE = re.compile(r"userVisits-(?P<park>.+)-allPOI\.csv$")
_POI_RE = re.compile(r"POI-(?P<park>.+)\.csv$")
_COST_RE = re.compile(r"costProfCat-(?P<park>.+)-all\.csv$")
COST_COLUMNS = ["from", "to", "walkTime"]


def item_id(park: str, poi_id) -> str:
    """The attraction id used everywhere: `park:poiID`."""
    return f"{park}:{int(poi_id)}"


def session_id(park: str, seq_id) -> str:
    """The trip id used everywhere: `park:seqID` (seqIDs are numbered per park)."""
    return f"{park}:{int(seq_id)}"



def _subdir(root: Path, name: str) -> Path:
    path = root / name
    if not path.is_dir():
        raise InputError(f"{root}: not a sigir17 directory (missing {name}/)")
    return path


def load_visits(root: str | Path = DEFAULT_DIR, parks: list[str] | None = None) -> pd.DataFrame:
    """One row per photo: PARK, ITEM_ID, USER_ID, TIMESTAMP, PHOTO_ID, THEME, SEQ_ID, SESSION_ID (`park:seqID`)."""
    root = Path(root)
    frames = []
    for path in sorted(_subdir(root, "userVisits-sigir17").glob("userVisits-*-allPOI.csv")):
        park = _VISITS_RE.search(path.name).group("park")
        if parks and park not in parks:
            continue
        df = pd.read_csv(path, sep=";", dtype={"nsid": str, "poiTheme": str})
        missing = [c for c in VISIT_COLUMNS if c not in df.columns]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        frames.append(pd.DataFrame({
            "PARK": park,
            "ITEM_ID": [item_id(park, p) for p in df["poiID"]],
            "USER_ID": df["nsid"].astype(str),
            "TIMESTAMP": df["takenUnix"].astype("int64"),
            "PHOTO_ID": df["id"].astype("int64"),
            "THEME": df["poiTheme"],
            "SEQ_ID": df["seqID"].astype("int64"),
            "SESSION_ID": [session_id(park, q) for q in df["seqID"]],
        }))
    if not frames:
        raise InputError(f"{root}: no userVisits-*-allPOI.csv files" + (f" for parks {parks}" if parks else ""))
    return pd.concat(frames, ignore_index=True)


def load_items(root: str | Path = DEFAULT_DIR) -> pd.DataFrame:
    """Attractions of all parks: ITEM_ID, NAME, PARK, POI_ID, THEME, THEMES, LAT, LONG, RIDE_DURATION."""
    root = Path(root)
    frames = []
    for path in sorted(_subdir(root, "poiList-sigir17").glob("POI-*.csv")):
        park = _POI_RE.search(path.name).group("park")
        df = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
        themes = df[[c for c in ("theme", "theme2", "theme3", "theme4") if c in df.columns]]
        frames.append(pd.DataFrame({
            "ITEM_ID": [item_id(park, p) for p in df["poiID"]],
            "NAME": df["poiName"],
            "PARK": park,
            "POI_ID": df["poiID"].astype(int),
            "THEME": df["theme"],
            "THEMES": themes.apply(lambda r: "|".join(t for t in r if t), axis=1),
            "LAT": df["lat"].astype(float),
            "LONG": df["long"].astype(float),
            "RIDE_DURATION": pd.to_numeric(df["rideDuration"], errors="coerce"),
        }))
    if not frames:
        raise InputError(f"{root}: no POI-*.csv files")
    return pd.concat(frames, ignore_index=True)


def load_walk_times(root: str | Path = DEFAULT_DIR) -> pd.DataFrame:
    """Walking minutes between the attractions of every park that has a cost table: FROM_ITEM, TO_ITEM, MINUTES
    (costProf `walkTime`, seconds). Empty when the directory has no costProf-sigir17/ (the tables are optional)."""
    folder = Path(root) / "costProf-sigir17"
    frames = []
    for path in sorted(folder.glob("costProfCat-*-all.csv")) if folder.is_dir() else []:
        park = _COST_RE.search(path.name).group("park")
        df = pd.read_csv(path, sep=";")
        missing = [c for c in COST_COLUMNS if c not in df.columns]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        frames.append(pd.DataFrame({"FROM_ITEM": [item_id(park, p) for p in df["from"]],
                                    "TO_ITEM": [item_id(park, p) for p in df["to"]],
                                    "MINUTES": pd.to_numeric(df["walkTime"], errors="coerce") / 60.0}))
    if not frames:
        return pd.DataFrame({"FROM_ITEM": pd.Series(dtype=str), "TO_ITEM": pd.Series(dtype=str),
                             "MINUTES": pd.Series(dtype=float)})
    return pd.concat(frames, ignore_index=True).dropna(subset=["MINUTES"])
