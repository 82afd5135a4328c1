"""Ranking metrics at k: precision, recall, NDCG, MAP, catalog coverage (user lists); hit and MRR (next item)."""

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


def next_item_metrics(ranks: np.ndarray, ks: tuple[int, ...] = (5, 10)) -> dict:
    """hit@k (share of steps whose next item is in the top k) and MRR@k (mean 1/rank, 0 beyond k) for each k,
    from the rank (from 1; inf = not recommendable) of every step's next item; plus the number of steps."""
    ranks = np.asarray(ranks, dtype=np.float64)
    n = max(len(ranks), 1)
    out: dict = {}
    for k in sorted(set(ks)):
        within = ranks <= k
        out[f"hit@{k}"] = float(within.sum() / n)
        out[f"mrr@{k}"] = float(np.where(within, 1.0 / np.where(within, ranks, 1.0), 0.0).sum() / n)
    out["steps"] = int(len(ranks))
    return out
