"""Algorithm registry, training entry point and model loading (no Spark needed to load or serve)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from c360.errors import InputError
from c360.io import read_json_file

from .algorithms.blend import Blend
from .algorithms.ease import EASE
from .algorithms.implicit_als import ImplicitALS
from .algorithms.item_knn import ItemKNN
from .algorithms.popularity import Popularity
from .algorithms.spark_als import SparkALS
from .algorithms.spark_fm import SparkFM
from .base import PARAMS_FILE, Recommender

ALGORITHMS: dict[str, type[Recommender]] = {
    "als": ImplicitALS,
    "spark-als": SparkALS,
    "fm": SparkFM,
    "item-knn": ItemKNN,
    "ease": EASE,
    "popularity": Popularity,
    "blend": Blend,
}
CHOICES = (*ALGORITHMS, "auto")


def check_algo(algo: str) -> str:
    if algo not in CHOICES:
        raise InputError(f"--algo: unknown algorithm {algo!r} (choose from {', '.join(CHOICES)})")
    return algo


def train(algo: str, interactions: pd.DataFrame, items: pd.DataFrame | None = None, params: dict | None = None,
          item_group_col: str | None = None, seed: int = 0, show_progress: bool = True) -> Recommender:
    """Fit one algorithm (or `auto`: choose by validation NDCG@10 on the training data) and return the model."""
    check_algo(algo)
    params = dict(params or {})
    if algo == "auto":
        from .auto import train_auto

        unknown = sorted(set(params) - {"validation", "k", "folds"})
        if unknown:
            raise InputError(f"auto: unknown parameter(s) {', '.join(unknown)} (known: folds, k, validation)")
        return train_auto(interactions, items, item_group_col=item_group_col, seed=seed,
                          show_progress=show_progress, **params)
    cls = ALGORITHMS[algo]
    if "seed" in cls.defaults:
        params.setdefault("seed", seed)
    model = cls(item_group_col=item_group_col, **params)
    model.fit(interactions, items, show_progress=show_progress)
    model.metrics["train_seconds"] = model.train_seconds
    return model


def load_model(path: str | Path) -> Recommender:
    """Load a saved model directory (params.json + arrays); raises InputError for anything else."""
    path = Path(path)
    meta_path = path / PARAMS_FILE
    if not meta_path.is_file():
        raise InputError(f"{path}: not a saved model (no {PARAMS_FILE})")
    meta = read_json_file(meta_path)
    algo = meta.get("algo")
    if algo not in ALGORITHMS:
        raise InputError(f"{meta_path}: unknown algo {algo!r}")
    return ALGORITHMS[algo]._load_from(path, meta)
