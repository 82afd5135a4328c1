"""Batch recommendations file: USER_ID,ITEM_ID,RANK,SCORE for all (or given) users."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from c360.io import read_table, require_columns, write_table


def recommend_all(model, user_ids: list[str] | None = None, k: int = 20) -> pd.DataFrame:
    """Top-k for every user of the model (or the given ones); unknown users get context-free popular items."""
    users = list(model.user_ids) if user_ids is None else [str(u) for u in user_ids]
    recs = model.recommend(users, k=k)
    unknown = [u for u in dict.fromkeys(users) if u not in model.user_index]
    if unknown:
        popular = model.popular_items(k)
        cold = pd.concat([popular.assign(USER_ID=u) for u in unknown], ignore_index=True)
        recs = pd.concat([recs, cold[["USER_ID", "ITEM_ID", "RANK", "SCORE"]]], ignore_index=True)
    return recs[["USER_ID", "ITEM_ID", "RANK", "SCORE"]]


def read_users(path: str | Path) -> list[str]:
    """A users file with one USER_ID column."""
    df = read_table(path, dtype={"USER_ID": str})
    require_columns(df, ["USER_ID"], str(path))
    return df["USER_ID"].astype(str).tolist()


def write_recs(model, path: str | Path, user_ids: list[str] | None = None, k: int = 20) -> Path:
    """Write recs.csv (USER_ID,ITEM_ID,RANK,SCORE) atomically."""
    return write_table(recommend_all(model, user_ids, k), path)
