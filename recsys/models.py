"""Training entry point and model loading over the algorithm registry (no Spark needed to load or serve).

`ALGORITHMS` is the registry (`c360.recsys.registry`, filled by importing `c360.recsys.algorithms`).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pandas as pd

from c360.errors import InputError

from .algorithms import ALGORITHMS
from .auto import train_auto
from .base import PARAMS_FILE, Recommender, read_meta
from .interactions import InteractionsFile

CHOICES = (*ALGORITHMS, "auto")


def check_algo(algo: str) -> str:
    """`algo` itself when it is a registered algorithm or `auto`; InputError listing the choices otherwise."""
    if algo not in CHOICES:
        raise InputError(f"--algo: unknown algorithm {algo!r} (choose from {', '.join(CHOICES)})")
    return algo


def train(algo: str, interactions: pd.DataFrame | InteractionsFile, items: pd.DataFrame | None = None,
          params: dict | None = None, item_group_col: str | None = None, seed: int = 0, show_progress: bool = True,
          walks: pd.DataFrame | None = None) -> Recommender:
    """Fit one algorithm (or `auto`: choose by validation NDCG@10 on the training data) and return the model.

    `interactions`: aggregated rows in a frame, or an `InteractionsFile` (Parquet): driver-side models then build
    their matrix from its columns, Spark models read it with Spark; `auto` reads it into a frame (its validation
    splits are rows).

    The session model learns from trips: give it events or `sessions.trips` rows (with TIMESTAMP, and SESSION_ID
    where known) rather than aggregated interactions, and `walks` (measured walking minutes) where there are any."""
    check_algo(algo)
    # bars only on a terminal: redrawn with carriage returns, they filled log files (the nightly's, a CI log) with
    # hundreds of partial lines
    show_progress = show_progress and sys.stderr.isatty()
    params = dict(params or {})
    if algo == "auto":
        unknown = sorted(set(params) - {"validation", "k", "folds"})
        if unknown:
            raise InputError(f"auto: unknown parameter(s) {', '.join(unknown)} (known: folds, k, validation)")
        if isinstance(interactions, InteractionsFile):
            interactions = interactions.to_frame()
        return train_auto(interactions, items, item_group_col=item_group_col, seed=seed,
                          show_progress=show_progress, **params)
    cls = ALGORITHMS[algo]
    if isinstance(interactions, InteractionsFile) and cls.fit is not Recommender.fit:
        interactions = interactions.to_frame()   # a model with its own fit (session: trips) reads rows
    if "seed" in cls.defaults:
        params.setdefault("seed", seed)
    model = cls(item_group_col=item_group_col, **params)
    if walks is not None and "walks" in inspect.signature(model.fit).parameters:
        model.fit(interactions, items, show_progress=show_progress, walks=walks)
    else:
        model.fit(interactions, items, show_progress=show_progress)
    model.metrics["train_seconds"] = model.train_seconds
    return model


def load_model(path: str | Path) -> Recommender:
    """Load a saved model directory (params.json + arrays) of any algorithm; InputError for anything else."""
    meta = read_meta(path)
    algo = meta.get("algo")
    if algo not in ALGORITHMS:
        raise InputError(f"{Path(path) / PARAMS_FILE}: unknown algo {algo!r}")
    return ALGORITHMS[algo].load(path)
