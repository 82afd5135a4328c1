"""`auto`: choose the algorithm (and blend weight) by NDCG@10 on a validation split of the training data only.

The context-aware popularity baseline is itself a candidate, so `auto` picks it whenever nothing beats it
on validation. The test split of `evaluate` is never seen here.
"""

from __future__ import annotations

import logging
import time

import pandas as pd
from tqdm.auto import tqdm

from .algorithms.blend import Blend
from .metrics import ranking_metrics
from .split import holdout_split

log = logging.getLogger(__name__)

ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
PERSONAL = (
    ("item-knn", {"similarity": "rp3", "user_alpha": 1.0, "beta": 0.0}),
    ("item-knn", {"similarity": "rp3", "user_alpha": 0.5, "beta": 0.15}),
    ("item-knn", {"similarity": "rp3", "user_alpha": 1.0, "beta": 0.15}),
    ("item-knn", {"similarity": "bm25"}),
    ("item-knn", {"similarity": "cosine"}),
    ("als", {"factors": 8, "regularization": 10.0, "alpha": 1.0, "weighting": "log", "iterations": 15}),
)


def _label(algo: str, params: dict) -> str:
    """A unique, readable name: blend(alpha=0.5,item-knn(similarity=rp3,...))."""
    inner = [f"{k}={v}" for k, v in params.items() if k not in ("base", "base_params", "seed")]
    if "base" in params:
        inner.append(_label(params["base"], params.get("base_params", {})))
    return algo + (f"({','.join(inner)})" if inner else "")


def candidates_scores(fit_df: pd.DataFrame, valid_df: pd.DataFrame, items, item_group_col, seed: int,
                      k: int = 10, show_progress: bool = False) -> list[dict]:
    """Validation NDCG@k of every candidate: popularity (global and in-group), item-knn, als and blends."""
    from .models import ALGORITHMS

    users = sorted(valid_df["USER_ID"].unique())
    rows: list[dict] = []

    def score(model, algo, params):
        recs = model.recommend(users, k=k)
        ndcg = ranking_metrics(recs, valid_df, k=k, n_items=len(model.item_ids))[f"ndcg@{k}"]
        rows.append({"label": _label(algo, params), "algo": algo, "params": params, f"ndcg@{k}": ndcg})

    bar = tqdm(total=2 + len(PERSONAL), desc="auto: candidates", disable=not show_progress)
    score(ALGORITHMS["popularity"]().fit(fit_df, items, show_progress=False), "popularity", {})
    if item_group_col:
        pop = ALGORITHMS["popularity"](item_group_col=item_group_col).fit(fit_df, items, show_progress=False)
        score(pop, "popularity", {"item_group_col": item_group_col})
    bar.update(2)
    for algo, params in PERSONAL:
        p = dict(params, seed=seed) if "seed" in ALGORITHMS[algo].defaults else dict(params)
        component = ALGORITHMS[algo](item_group_col=item_group_col, **p).fit(fit_df, items, show_progress=False)
        score(component, algo, p)
        for alpha in ALPHAS:
            blend = Blend.from_component(component, alpha)
            score(blend, "blend", {"alpha": alpha, "base": algo, "base_params": p})
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
    from .models import ALGORITHMS

    start = time.perf_counter()
    best, rows = choose(interactions, items, item_group_col=item_group_col, seed=seed, validation=validation, k=k,
                        folds=folds, show_progress=show_progress)
    log.info("auto chose %s (validation ndcg@%d %.4f)", best["label"], k, best[f"ndcg@{k}"])
    params = dict(best["params"])
    group = params.pop("item_group_col", None) if best["algo"] == "popularity" else item_group_col
    model = ALGORITHMS[best["algo"]](item_group_col=group, **params).fit(interactions, items,
                                                                          show_progress=show_progress)
    model.train_seconds = time.perf_counter() - start
    model.metrics["validation_ndcg@{}".format(k)] = best[f"ndcg@{k}"]
    model.extra["auto"] = {"chosen": best["label"], "validation": validation, "folds": folds, "k": k,
                           "candidates": [{"label": r["label"], f"ndcg@{k}": r[f"ndcg@{k}"]} for r in rows]}
    return model
