"""`auto`: choose the algorithm (and blend weight) by NDCG@10 on validation splits of the training data only.

The context-aware popularity baseline is itself a candidate, so `auto` picks it whenever nothing beats it
on validation. The test split of `evaluate` is never seen here.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .algorithms import algorithm_class
from .algorithms.blend import Blend, combine_scores
from .base import InteractionData, topk
from .split import holdout_split

log = logging.getLogger(__name__)

ALPHAS = tuple(round(0.05 * i, 2) for i in range(1, 20))   # 0.05 .. 0.95
PERSONAL = (
    ("item-knn", {"similarity": "rp3", "user_alpha": 1.0, "beta": 0.0}),
    ("item-knn", {"similarity": "rp3", "user_alpha": 0.5, "beta": 0.15}),
    ("item-knn", {"similarity": "rp3", "user_alpha": 1.0, "beta": 0.15}),
    ("item-knn", {"similarity": "bm25"}),
    ("item-knn", {"similarity": "cosine"}),
    ("als", {"factors": 8, "regularization": 10.0, "alpha": 1.0, "weighting": "log", "iterations": 15}),
    ("ease", {"l2": 4.0, "user_alpha": 0.0}),
    ("ease", {"l2": 8.0, "user_alpha": 0.0}),
    ("ease", {"l2": 1.0, "user_alpha": 1.0}),
    ("ease", {"l2": 2.0, "user_alpha": 1.0}),
)
# Two personal models averaged (each row-normalized) before blending with popularity: every RP3beta
# item-knn with every EASE above.
MIXES = tuple((rp3, ease) for rp3 in PERSONAL if rp3[1].get("similarity") == "rp3"
              for ease in PERSONAL if ease[0] == "ease")


def _label(algo: str, params: dict) -> str:
    """A unique, readable name: blend(alpha=0.5,item-knn(similarity=rp3,...))."""
    inner = [f"{k}={v}" for k, v in params.items() if k not in ("base", "base_params", "mix", "seed")]
    if "base" in params:
        inner.append(_label(params["base"], params.get("base_params", {})))
    for mix_algo, mix_params in params.get("mix", ()):
        inner.append(_label(mix_algo, mix_params))
    return algo + (f"({','.join(inner)})" if inner else "")


def validation_ndcg(model, scores: np.ndarray, rows: np.ndarray, users: list, valid_df: pd.DataFrame,
                    k: int = 10) -> float:
    """NDCG@k of dense `scores` (len(rows) x n_items) on valid_df, the same number as
    ranking_metrics(model.recommend(users, k), valid_df, k): seen items excluded, ties by item order."""
    scores = np.asarray(scores, dtype=np.float64).copy()
    scores[model.matrix[rows].nonzero()] = -np.inf
    pos = {u: j for j, u in enumerate(users)}
    known = valid_df[valid_df["ITEM_ID"].isin(model.item_index)]
    truth = np.zeros(scores.shape, dtype=bool)
    truth[known["USER_ID"].map(pos).to_numpy(), known["ITEM_ID"].map(model.item_index).to_numpy()] = True
    n_rel = valid_df.groupby("USER_ID")["ITEM_ID"].nunique().reindex(users).to_numpy()
    idx, vals = topk(scores, k)
    hits = np.take_along_axis(truth, idx, axis=1) & np.isfinite(vals)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts[:idx.shape[1]]).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k) - 1]
    return float((dcg / ideal).sum() / max(valid_df["USER_ID"].nunique(), 1))


def candidates_scores(fit_df: pd.DataFrame, valid_df: pd.DataFrame, items, item_group_col, seed: int,
                      k: int = 10, show_progress: bool = False) -> list[dict]:
    """Validation NDCG@k of every candidate: popularity (global and in-group), item-knn, ease, als, and
    blends of each (and of MIXES) with in-group popularity over ALPHAS.

    Every candidate is fitted on one shared InteractionData of fit_df (built once, not per candidate)."""
    rows: list[dict] = []
    data = InteractionData.from_frame(fit_df, items, item_group_col)

    def params_of(algo, params):
        return dict(params, seed=seed) if "seed" in algorithm_class(algo).defaults else dict(params)

    def fit(algo, params, group=item_group_col):
        return algorithm_class(algo)(item_group_col=group, **params).fit_data(data, items, show_progress=False)

    def score(model, scores, algo, params):
        ndcg = validation_ndcg(model, scores, idx, users, valid_df, k)
        rows.append({"label": _label(algo, params), "algo": algo, "params": params, f"ndcg@{k}": ndcg})

    def blends(components, personal, specs):
        for alpha in ALPHAS:
            blend = Blend.from_components(components, alpha)
            params = {"alpha": alpha, "base": specs[0][0], "base_params": specs[0][1]}
            if len(specs) > 1:
                params["mix"] = [[algo, p] for algo, p in specs[1:]]
            score(blend, blend.mix_scores(personal, popular), "blend", params)

    bar = tqdm(total=2 + len(PERSONAL) + len(MIXES), desc="auto: candidates", disable=not show_progress)
    users = [u for u in sorted(valid_df["USER_ID"].unique()) if u in data.user_index]
    idx = np.array([data.user_index[u] for u in users], dtype=np.int64)
    glob = fit("popularity", {}, group=None)        # same matrix, no groups
    score(glob, glob.score_rows(idx), "popularity", {})
    pop = fit("popularity", {})
    popular = pop.score_rows(idx)
    if item_group_col:
        score(pop, popular, "popularity", {"item_group_col": item_group_col})
    bar.update(2)
    fitted: dict[str, tuple] = {}
    for algo, params in PERSONAL:
        p = params_of(algo, params)
        component = fit(algo, p)
        raw = np.asarray(component.score_rows(idx), dtype=np.float64)
        fitted[_label(algo, p)] = (component, raw)
        score(component, raw, algo, p)
        blends([component], combine_scores([raw]), [(algo, p)])
        bar.update()
    for mix in MIXES:
        specs = [(algo, params_of(algo, params)) for algo, params in mix]
        parts = [fitted[_label(algo, p)] for algo, p in specs]
        blends([c for c, _ in parts], combine_scores([raw for _, raw in parts]), specs)
        bar.update()
    bar.close()
    return rows


def choose(interactions: pd.DataFrame, items=None, item_group_col: str | None = None, seed: int = 0,
           validation: float = 0.2, k: int = 10, folds: int = 2,
           show_progress: bool = False) -> tuple[dict, list[dict]]:
    """Best candidate by mean validation NDCG@k over `folds` random validation splits of the training data.

    Ties keep the earlier, simpler candidate. Returns (best row, all rows with their mean NDCG@k).
    """
    table: dict[str, dict] = {}
    for fold in range(folds):
        fit_df, valid_df = holdout_split(interactions, validation, seed + 7919 * (fold + 1))
        for row in candidates_scores(fit_df, valid_df, items, item_group_col, seed, k, show_progress):
            entry = table.setdefault(row["label"], {**row, f"ndcg@{k}": 0.0})
            entry[f"ndcg@{k}"] += row[f"ndcg@{k}"] / folds
    rows = list(table.values())
    best = max(rows, key=lambda r: (r[f"ndcg@{k}"], -rows.index(r)))
    return best, rows


def train_auto(interactions: pd.DataFrame, items=None, item_group_col: str | None = None, seed: int = 0,
               validation: float = 0.2, k: int = 10, folds: int = 2, show_progress: bool = True):
    """Choose on a validation split of `interactions`, then refit the winner on all of `interactions`."""
    start = time.perf_counter()
    best, rows = choose(interactions, items, item_group_col=item_group_col, seed=seed, validation=validation, k=k,
                        folds=folds, show_progress=show_progress)
    log.info("auto chose %s (validation ndcg@%d %.4f)", best["label"], k, best[f"ndcg@{k}"])
    params = dict(best["params"])
    group = params.pop("item_group_col", None) if best["algo"] == "popularity" else item_group_col
    model = algorithm_class(best["algo"])(item_group_col=group, **params).fit(interactions, items,
                                                                              show_progress=show_progress)
    model.train_seconds = time.perf_counter() - start
    model.metrics["validation_ndcg@{}".format(k)] = best[f"ndcg@{k}"]
    model.extra["auto"] = {"chosen": best["label"], "validation": validation, "folds": folds, "k": k,
                           "candidates": [{"label": r["label"], f"ndcg@{k}": r[f"ndcg@{k}"]} for r in rows]}
    return model
