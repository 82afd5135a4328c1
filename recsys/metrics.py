"""Ranking metrics at k: precision, recall, NDCG, MAP, catalog coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd


def ranking_metrics(recs: pd.DataFrame, test: pd.DataFrame, k: int = 10, n_items: int | None = None) -> dict:
    """Mean precision@k, recall@k, ndcg@k, map@k over users with held-out items, plus coverage@k.

    recs: USER_ID, ITEM_ID, RANK; test: USER_ID, ITEM_ID (relevant held-out items). A test user with
    no recommendations counts as all zeros.
    """
    truth = test.groupby("USER_ID")["ITEM_ID"].agg(set)
    recs = recs[recs["RANK"] <= k].sort_values(["USER_ID", "RANK"])
    lists = recs.groupby("USER_ID")["ITEM_ID"].agg(list)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    p = r = nd = ap = 0.0
    for user, relevant in truth.items():
        ranked = lists.get(user, [])
        hits = np.array([item in relevant for item in ranked[:k]], dtype=float)
        n_hit = hits.sum()
        if not n_hit:
            continue
        p += n_hit / k
        r += n_hit / len(relevant)
        ideal = discounts[:min(len(relevant), k)].sum()
        nd += (hits * discounts[:len(hits)]).sum() / ideal
        precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        ap += (precision_at * hits).sum() / min(len(relevant), k)
    n = max(len(truth), 1)
    catalog = n_items or max(recs["ITEM_ID"].nunique(), 1)
    return {f"precision@{k}": p / n, f"recall@{k}": r / n, f"ndcg@{k}": nd / n, f"map@{k}": ap / n,
            f"coverage@{k}": recs["ITEM_ID"].nunique() / catalog, "users": int(len(truth))}
