"""Honest offline evaluation: per-user holdout, train every algorithm on the rest, rank-metrics at k."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from c360.io import write_json_file

from .metrics import ranking_metrics
from .models import CHOICES, check_algo, train
from .split import holdout_split

DEFAULT_ALGOS = ("popularity", "item-knn", "als", "spark-als", "fm", "auto")


def evaluate_model(model, test: pd.DataFrame, k: int = 10) -> dict:
    """Metrics of a fitted model on held-out (USER_ID, ITEM_ID) rows."""
    recs = model.recommend(sorted(test["USER_ID"].unique()), k=k)
    return ranking_metrics(recs, test, k=k, n_items=len(model.item_ids))


def evaluate(algos: list[str] | tuple[str, ...], interactions: pd.DataFrame, items: pd.DataFrame | None = None,
             holdout: float = 0.2, seed: int = 0, k: int = 10, item_group_col: str | None = None,
             params: dict[str, dict] | None = None, show_progress: bool = False) -> dict:
    """Train every algorithm on the training part of a per-user holdout and score it on the held-out part.

    Returns {"split": {...}, "algorithms": {algo: {precision@k, recall@k, ndcg@k, map@k, coverage@k,
    train_seconds, chosen (auto only)}}}. The test part is never seen by training or by `auto`'s choice.
    """
    algos = [check_algo(a) for a in algos]
    train_df, test_df = holdout_split(interactions, holdout, seed)
    results = {}
    for algo in algos:
        model = train(algo, train_df, items, params=(params or {}).get(algo), item_group_col=item_group_col,
                      seed=seed, show_progress=show_progress)
        metrics = evaluate_model(model, test_df, k)
        metrics["train_seconds"] = float(model.train_seconds or 0.0)
        if algo == "auto":
            metrics["chosen"] = model.extra.get("auto", {}).get("chosen")
        results[algo] = metrics
    return {"split": {"holdout": holdout, "seed": seed, "k": k, "item_group_col": item_group_col,
                      "train_rows": len(train_df), "test_rows": len(test_df),
                      "test_users": int(test_df["USER_ID"].nunique())}, "algorithms": results}


def metrics_table(result: dict) -> pd.DataFrame:
    """One row per algorithm from `evaluate`'s result."""
    return pd.DataFrame.from_dict(result["algorithms"], orient="index").rename_axis("algo").reset_index()


def write_metrics(result: dict, path: str | Path) -> Path:
    """Write the evaluation result as JSON, atomically."""
    return write_json_file(path, result)


__all__ = ["evaluate", "evaluate_model", "metrics_table", "write_metrics", "DEFAULT_ALGOS", "CHOICES"]
