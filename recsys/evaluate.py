"""Honest offline evaluation: a per-user random holdout (user lists, rank metrics at k), or a time-ordered protocol
on trips (`sessions`: train on every trip but each user's last, rank the next attractions of that last trip)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from c360.errors import InputError
from c360.io import atomic_path, write_json_file

from . import trips
from .interactions import InteractionsFile
from .metrics import next_item_metrics, ranking_metrics
from .models import CHOICES, check_algo, train
from .split import holdout_split

DEFAULT_ALGOS = ("popularity", "item-knn", "als", "spark-als", "fm", "auto")
SESSION_DEFAULT_ALGOS = ("popularity", "item-knn", "als", "auto", "session")
# reported next to `session` in a time-ordered evaluation: its own first-order transitions (no extra training)
TRANSITIONS = "transitions"


def evaluate_model(model, test: pd.DataFrame, k: int = 10) -> dict:
    """Metrics of a fitted model on held-out (USER_ID, ITEM_ID) rows."""
    recs = model.recommend(sorted(test["USER_ID"].unique()), k=k)
    return ranking_metrics(recs, test, k=k, n_items=len(model.item_ids))


def evaluate(algos: list[str] | tuple[str, ...], interactions: pd.DataFrame | InteractionsFile,
             items: pd.DataFrame | None = None, holdout: float = 0.2, seed: int = 0, k: int = 10,
             item_group_col: str | None = None, params: dict[str, dict] | None = None, show_progress: bool = False,
             workdir: str | Path | None = None) -> dict:
    """Train every algorithm on the training part of a per-user holdout and score it on the held-out part.

    The split is made on the driver (a frame, or the rows of an `InteractionsFile`). With `workdir`, its training
    part is written there as Parquet and every algorithm trains from that file (Spark ALS and FM read it with Spark)
    instead of from the frame.

    Returns {"split": {...}, "algorithms": {algo: {precision@k, recall@k, ndcg@k, map@k, coverage@k,
    train_seconds, chosen (auto only)}}}. The test part is never seen by training or by `auto`'s choice.
    """
    algos = [check_algo(a) for a in algos]
    frame = interactions.to_frame() if isinstance(interactions, InteractionsFile) else interactions
    train_df, test_df = holdout_split(frame, holdout, seed)
    del frame
    source = train_df if workdir is None else _split_file(train_df, Path(workdir) / "holdout-train.parquet")
    results = {}
    for algo in algos:
        model = train(algo, source, items, params=(params or {}).get(algo), item_group_col=item_group_col,
                      seed=seed, show_progress=show_progress)
        metrics = evaluate_model(model, test_df, k)
        metrics["train_seconds"] = float(model.train_seconds or 0.0)
        if algo == "auto":
            metrics["chosen"] = model.extra.get("auto", {}).get("chosen")
        results[algo] = metrics
    return {"split": {"holdout": holdout, "seed": seed, "k": k, "item_group_col": item_group_col,
                      "train_rows": len(train_df), "test_rows": len(test_df),
                      "test_users": int(test_df["USER_ID"].nunique())}, "algorithms": results}


def _split_file(rows: pd.DataFrame, path: Path) -> InteractionsFile:
    with atomic_path(path) as tmp:
        rows.to_parquet(tmp, index=False)
    return InteractionsFile(path)


def evaluate_sessions(algos: list[str] | tuple[str, ...], data: trips.TripData, protocol: str = "next-trip",
                      k: int = 10, item_group_col: str | None = None, seed: int = 0,
                      params: dict[str, dict] | None = None, show_progress: bool = False) -> dict:
    """Time-ordered evaluation (`sessions` protocols): every algorithm trains on every trip but each user's last
    and ranks, from the trip so far, the next attraction of that last trip (every step for next-trip, the last one
    for next-item), among the attractions of the trip's park it has not visited yet.

    User models rank from the user's training history plus the trip so far; `session` from the trip itself, and
    with it comes `transitions` (first-order transitions of the same counts). Returns {"split": {...},
    "algorithms": {algo: {hit@5, mrr@5, hit@10, mrr@10 (and @k), steps, train_seconds, chosen}}}."""
    algos = [check_algo(a) for a in algos]
    trips.check_protocol(protocol)
    group = trips.group_col(item_group_col, data.items)
    train_rows, test_rows = trips.time_split(data.trips)
    if train_rows.empty:
        raise InputError("time-ordered evaluation: no user has a trip before their last one (nothing to train on)")
    contexts, targets = trips.held_out_sessions(test_rows, protocol)
    interactions = trips.aggregate(train_rows)
    ks = tuple(sorted({5, 10, k}))
    results = {}
    for algo in algos:
        algo_params = dict((params or {}).get(algo) or {})
        if algo == "session":
            model = train(algo, train_rows, data.items, params=algo_params, item_group_col=group, seed=seed,
                          show_progress=show_progress, walks=data.walks)
        else:
            model = train(algo, interactions, data.items, params=algo_params, item_group_col=group, seed=seed,
                          show_progress=show_progress)
        metrics = next_item_metrics(trips.target_ranks(model, contexts, targets), ks)
        metrics["train_seconds"] = float(model.train_seconds or 0.0)
        if algo == "auto":
            metrics["chosen"] = model.extra.get("auto", {}).get("chosen")
        if algo == "session":
            metrics["chosen"] = model.extra.get("session", {}).get("chosen")
            results[TRANSITIONS] = {**next_item_metrics(trips.target_ranks(model.as_transitions(), contexts,
                                                                               targets), ks),
                                    "train_seconds": metrics["train_seconds"]}
        results[algo] = metrics
    return {"split": {"protocol": protocol, "k": k, "seed": seed, "item_group_col": group,
                      "train_trips": int(train_rows.groupby(["USER_ID", "SESSION_ID"]).ngroups),
                      "test_trips": int(test_rows.groupby(["USER_ID", "SESSION_ID"]).ngroups),
                      "steps": len(targets), "train_rows": len(train_rows), "test_rows": len(test_rows)},
            "algorithms": results}


def metrics_table(result: dict) -> pd.DataFrame:
    """One row per algorithm from `evaluate`'s result."""
    return pd.DataFrame.from_dict(result["algorithms"], orient="index").rename_axis("algo").reset_index()


def format_metrics(result: dict) -> str:
    """The metrics as a terminal table, then one line per model that chose among others (`auto`, `session`). The
    choice is text only one row has: as a column it was padded to the width of a blend's description (100
    characters) and printed NaN on every other row."""
    table = metrics_table(result)
    chosen = table.pop("chosen") if "chosen" in table.columns else pd.Series(None, index=table.index, dtype=object)
    lines = [table.to_string(index=False, float_format=lambda v: f"{v:.4f}")]
    lines += [f"{algo} chose: {label}" for algo, label in zip(table["algo"], chosen, strict=True)
              if isinstance(label, str)]
    return "\n".join(lines)


def write_metrics(result: dict, path: str | Path) -> Path:
    """Write the evaluation result as JSON, atomically."""
    return write_json_file(path, result)


__all__ = ["evaluate", "evaluate_model", "evaluate_sessions", "metrics_table", "format_metrics", "write_metrics",
           "DEFAULT_ALGOS", "SESSION_DEFAULT_ALGOS", "CHOICES"]
