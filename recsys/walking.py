"""Walking minutes between attractions: a measured table where a park has one, else straight-line distance.

The shipped SIGIR'17 cost tables (costProf) give walkTime = distance / (5 km/h) for every pair of a park, so the
fallback for items that only have coordinates (LAT, LONG) walks the great-circle distance at the same 5 km/h.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from c360.errors import InputError

WALKING_SPEED_KMH = 5.0
EARTH_RADIUS_M = 6_371_000.0


def haversine_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in metres (broadcasting numpy arrays of degrees)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def item_coordinates(item_ids: list[str], items: pd.DataFrame | None) -> np.ndarray:
    """(n_items, 2) LAT, LONG of every item; NaN where the items table has none (or no LAT/LONG columns)."""
    out = np.full((len(item_ids), 2), np.nan)
    if items is None or not {"LAT", "LONG"} <= set(items.columns):
        return out
    table = items.assign(ITEM_ID=items["ITEM_ID"].astype(str)).set_index("ITEM_ID")
    for col, j in (("LAT", 0), ("LONG", 1)):
        values = pd.to_numeric(table[col], errors="coerce")
        out[:, j] = values.reindex(item_ids).to_numpy(dtype=float)
    return out


def walking_matrix(item_ids: list[str], items: pd.DataFrame | None = None, pairs: pd.DataFrame | None = None,
                   speed_kmh: float = WALKING_SPEED_KMH) -> np.ndarray:
    """Minutes from every item to every item (n x n, float32): `pairs` (FROM_ITEM, TO_ITEM, MINUTES, e.g. the
    costProf tables) where given, else the haversine distance of LAT/LONG at `speed_kmh`; NaN where neither is known.
    """
    if speed_kmh <= 0:
        raise InputError(f"walking speed must be > 0 km/h, not {speed_kmh}")
    coords = item_coordinates(item_ids, items)
    lat, lon = coords[:, 0], coords[:, 1]
    metres = haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    minutes = metres / (speed_kmh * 1000.0 / 60.0)
    if pairs is not None and len(pairs):
        index = {item: i for i, item in enumerate(item_ids)}
        rows = pairs["FROM_ITEM"].astype(str).map(index)
        cols = pairs["TO_ITEM"].astype(str).map(index)
        known = rows.notna() & cols.notna()
        minutes[rows[known].astype(int).to_numpy(), cols[known].astype(int).to_numpy()] = \
            pairs.loc[known, "MINUTES"].to_numpy(dtype=float)
    np.fill_diagonal(minutes, 0.0)
    return minutes.astype(np.float32)
