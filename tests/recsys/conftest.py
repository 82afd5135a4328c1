"""Small interaction sets for the recommender tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def separable():
    """Two blocks: users a0..a5 visit A1, A2 (a0 only A1); users b0..b5 visit B1, B2. Obvious: a0 -> A2."""
    rows = []
    for i in range(6):
        rows.append((f"a{i}", "A1", 2.0))
        if i:
            rows.append((f"a{i}", "A2", 1.0))
        rows.append((f"b{i}", "B1", 1.0))
        rows.append((f"b{i}", "B2", 3.0))
    for i in range(6):
        rows.append((f"a{i}", "A3", 1.0)) if i % 2 else None
    df = pd.DataFrame(rows, columns=["USER_ID", "ITEM_ID", "EVENT_VALUE"])
    items = pd.DataFrame({"ITEM_ID": ["A1", "A2", "A3", "B1", "B2"], "PARK": ["pa", "pa", "pa", "pb", "pb"],
                          "THEME": ["ride", "show", "ride", "ride", "show"], "NAME": list("abcde")})
    return df, items


@pytest.fixture(scope="session")
def random_interactions():
    """300 users x 30 items in 3 parks, power-law popularity, seeded."""
    rng = np.random.default_rng(3)
    n_items = 30
    weights = 1.0 / np.arange(1, n_items + 1)
    weights /= weights.sum()
    rows = []
    for u in range(300):
        park = rng.integers(3)
        pool = np.arange(park * 10, park * 10 + 10)
        p = weights[pool] / weights[pool].sum()
        for item in rng.choice(pool, size=rng.integers(1, 7), replace=False, p=p):
            rows.append((f"u{u}", f"p{park}:{item}", float(rng.integers(1, 6))))
    df = pd.DataFrame(rows, columns=["USER_ID", "ITEM_ID", "EVENT_VALUE"])
    items = pd.DataFrame({"ITEM_ID": [f"p{i // 10}:{i}" for i in range(n_items)],
                          "PARK": [f"p{i // 10}" for i in range(n_items)],
                          "THEME": [["ride", "show", "food"][i % 3] for i in range(n_items)]})
    return df, items
