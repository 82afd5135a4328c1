"""Stable match_ids: clusters that persist keep the id they had in the previous output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from c360.io import read_json_file
from c360.layout import MatchOutput


def assign_match_ids(keys: np.ndarray, components: np.ndarray, previous: Path | None) -> np.ndarray:
    """Map each component to an int64 match_id.

    With a previous matched file, a component takes the previous match_id held by most of its records
    (each previous id goes to at most one component: the one with the largest overlap); every other
    component gets a fresh id above the previous maximum. Without one, ids are 1..k in order of each
    component's smallest record key, so reruns on the same data give the same ids.
    """
    df = pd.DataFrame({"key": keys, "comp": components})
    prev_map = _previous(previous)
    start = 1
    assigned: dict[int, int] = {}
    if prev_map is not None and len(prev_map):
        df["prev"] = df["key"].map(prev_map)
        ov = df.dropna(subset=["prev"]).groupby(["comp", "prev"]).size().reset_index(name="n")
        ov = ov.sort_values(["n", "prev"], ascending=[False, True])
        ov = ov.drop_duplicates("comp").drop_duplicates("prev")
        assigned = dict(zip(ov["comp"].astype(int), ov["prev"].astype("int64"), strict=True))
        start = int(max(prev_map.max(), 0)) + 1
    first_key = df.groupby("comp")["key"].min().sort_values()
    fresh = [c for c in first_key.index if c not in assigned]
    assigned.update({c: start + i for i, c in enumerate(fresh)})
    return df["comp"].map(assigned).to_numpy(dtype="int64")


def _previous(path: Path | None) -> pd.Series | None:
    if path is None or not Path(path).exists():
        return None
    prev = pd.read_parquet(path)
    rp = MatchOutput(path).report
    id_col = read_json_file(rp).get("id", "id") if rp.exists() else "id"
    if "match_id" not in prev.columns or id_col not in prev.columns:
        return None
    return pd.Series(prev["match_id"].to_numpy(), index=prev[id_col].astype(str).to_numpy())
