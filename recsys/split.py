"""Per-user holdout split with a fixed seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from c360.errors import InputError


def holdout_split(interactions: pd.DataFrame, fraction: float = 0.2, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out round(fraction * n) of each user's n items (at least 1, never all; users with 1 item stay in train).

    Returns (train, test); the same seed always gives the same split.
    """
    if not 0 < fraction < 1:
        raise InputError(f"--holdout: must be between 0 and 1 (exclusive), not {fraction}")
    df = interactions.sort_values(["USER_ID", "ITEM_ID"], ignore_index=True)
    rng = np.random.default_rng(seed)
    key = rng.random(len(df))
    order = pd.Series(key).groupby(df["USER_ID"].to_numpy()).rank(method="first").to_numpy() - 1
    n = df.groupby("USER_ID")["ITEM_ID"].transform("size").to_numpy()
    n_test = np.where(n >= 2, np.clip(np.floor(fraction * n + 0.5), 1, n - 1), 0)
    is_test = order < n_test
    return df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)
