"""The Recommender interface every algorithm implements (fit, recommend, similar_items, save, load).

A fitted model keeps what serving needs as numpy arrays: user and item ids, the user x item training
matrix (for seen-item exclusion), item popularity and item groups (for context-aware fallbacks), plus its
own arrays (factors, similarities, weights). Loading and recommending never need Spark.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from c360.errors import InputError
from c360.io import atomic_path

from .data import fingerprint, validate_interactions

PARAMS_FILE = "params.json"
ARRAYS_FILE = "arrays.npz"
MODEL_FILE = "model.npz"


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("implicit", "pyspark", "numpy", "scipy", "pandas"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the k best scores per row (-inf never returned as a hit; ties by item order)."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def cosine_similarity_matrix(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms == 0, 1, norms)
    return unit @ unit.T


class Recommender(ABC):
    """Base class: subclasses implement `_fit`, `_scores`, and the arrays they save."""

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.defaults) - {"item_group_col"})
        if unknown:
            raise InputError(f"{self.name}: unknown parameter(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(self.defaults)) or 'none'})")
        self.params: dict[str, Any] = {**self.defaults, **params}
        self.params.setdefault("item_group_col", None)
        self.user_ids: list[str] = []
        self.item_ids: list[str] = []
        self.metrics: dict[str, Any] = {}
        self.fingerprint: str | None = None
        self.train_seconds: float | None = None
        self.extra: dict[str, Any] = {}

    # ---------------------------------------------------------------- data
    def _set_data(self, interactions: pd.DataFrame, items: pd.DataFrame | None) -> None:
        df = validate_interactions(interactions)
        self.fingerprint = fingerprint(df)
        self.user_ids = sorted(df["USER_ID"].unique().tolist())
        self.item_ids = sorted(df["ITEM_ID"].unique().tolist())
        self._index()
        rows = df["USER_ID"].map(self.user_index).to_numpy()
        cols = df["ITEM_ID"].map(self.item_index).to_numpy()
        self.matrix = sp.csr_matrix((df["EVENT_VALUE"].to_numpy(np.float32), (rows, cols)),
                                    shape=(len(self.user_ids), len(self.item_ids)), dtype=np.float32)
        self.matrix.sort_indices()
        self.popularity = np.asarray((self.matrix > 0).sum(axis=0)).ravel().astype(np.float64)
        self.item_groups = self._groups(items)

    def _groups(self, items: pd.DataFrame | None) -> np.ndarray:
        col = self.params.get("item_group_col")
        if not col:
            return np.array([""] * len(self.item_ids))
        if items is None:
            raise InputError(f"--item-group-col {col}: needs an items table (--items)")
        if col not in items.columns:
            raise InputError(f"--item-group-col: column {col!r} not in the items table "
                             f"(found: {', '.join(map(str, items.columns))})")
        mapping = dict(zip(items["ITEM_ID"].astype(str), items[col].astype(str), strict=False))
        return np.array([mapping.get(i, "") for i in self.item_ids])

    def _set_data_from(self, other: "Recommender") -> None:
        """Share another model's training data (ids, matrix, popularity, groups)."""
        for attr in ("user_ids", "item_ids", "user_index", "item_index", "matrix", "popularity", "item_groups",
                     "fingerprint"):
            setattr(self, attr, getattr(other, attr))

    def _index(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {u: i for i, u in enumerate(self.item_ids)}

    def _vector(self, items: dict[str, float]) -> sp.csr_matrix:
        cols, vals = [], []
        for item, value in items.items():
            if str(item) in self.item_index:
                cols.append(self.item_index[str(item)])
                vals.append(float(value))
        return sp.csr_matrix((np.array(vals, np.float32), (np.zeros(len(cols), int), np.array(cols, int))),
                             shape=(1, len(self.item_ids)), dtype=np.float32)

    # ---------------------------------------------------------------- training
    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None,
            show_progress: bool = True) -> "Recommender":
        """Train on aggregated interactions (USER_ID, ITEM_ID, EVENT_VALUE); items gives side data/groups."""
        self._set_data(interactions, items)
        start = time.perf_counter()
        self._fit(items, show_progress)
        self.train_seconds = time.perf_counter() - start
        return self

    @abstractmethod
    def _fit(self, items: pd.DataFrame | None, show_progress: bool) -> None: ...

    @abstractmethod
    def _scores(self, rows: np.ndarray) -> np.ndarray:
        """Dense scores (len(rows) x n_items) for known users (row indices)."""

    def _scores_for_vector(self, vector: sp.csr_matrix) -> np.ndarray:
        """Scores (n_items,) for a user given only fresh interactions; default: item co-occurrence cosine."""
        return np.asarray(vector @ self._cooccurrence()).ravel()

    def _cooccurrence(self) -> np.ndarray:
        if getattr(self, "_cooc", None) is None:
            binary = (self.matrix > 0).astype(np.float64)
            self._cooc = cosine_similarity_matrix(binary.T.toarray())
            np.fill_diagonal(self._cooc, 0.0)
        return self._cooc

    def item_factors(self) -> np.ndarray | None:
        """Learned item vectors (n_items x d) when the algorithm has them."""
        return None

    # ---------------------------------------------------------------- serving
    def recommend(self, user_ids: list[str], k: int = 10,
                  exclude: dict[str, set[str]] | None = None) -> pd.DataFrame:
        """Top-k per known user: USER_ID, ITEM_ID, RANK (from 1), SCORE; never an item seen in training."""
        known = [str(u) for u in user_ids if str(u) in self.user_index]
        frames = []
        for start in range(0, len(known), 2048):
            batch = known[start:start + 2048]
            rows = np.array([self.user_index[u] for u in batch], dtype=np.int64)
            scores = np.asarray(self._scores(rows), dtype=np.float64).copy()
            seen = self.matrix[rows]
            scores[seen.nonzero()] = -np.inf
            if exclude:
                for j, u in enumerate(batch):
                    for item in exclude.get(u, ()):
                        if item in self.item_index:
                            scores[j, self.item_index[item]] = -np.inf
            idx, vals = topk(scores, k)
            users = np.repeat(np.array(batch, dtype=object), idx.shape[1])
            ranks = np.tile(np.arange(1, idx.shape[1] + 1), len(batch))
            frame = pd.DataFrame({"USER_ID": users, "ITEM_ID": np.array(self.item_ids, dtype=object)[idx.ravel()],
                                  "RANK": ranks, "SCORE": vals.ravel()})
            frames.append(frame[np.isfinite(frame["SCORE"])])
        if not frames:
            return pd.DataFrame({"USER_ID": pd.Series(dtype=str), "ITEM_ID": pd.Series(dtype=str),
                                 "RANK": pd.Series(dtype="int64"), "SCORE": pd.Series(dtype="float64")})
        return pd.concat(frames, ignore_index=True)

    def popular_items(self, k: int = 10, exclude: set[str] = frozenset()) -> pd.DataFrame:
        """Context-free cold start: the most popular items (number of users), ITEM_ID, RANK, SCORE."""
        scores = self.popularity / max(self.popularity.max(), 1.0)
        return self._ranked(scores, k, exclude)

    def recommend_from_interactions(self, items: dict[str, float], k: int = 10,
                                    exclude: set[str] = frozenset()) -> pd.DataFrame:
        """Recommend for fresh interactions {ITEM_ID: value} without retraining; the given items are excluded."""
        vector = self._vector(items)
        if vector.nnz == 0:
            return self.popular_items(k, exclude=set(exclude) | set(map(str, items)))
        scores = np.asarray(self._scores_for_vector(vector), dtype=np.float64)
        return self._ranked(scores, k, set(exclude) | set(map(str, items)))

    def similar_items(self, item_id: str, k: int = 10) -> pd.DataFrame:
        """Nearest items by cosine of item factors (co-occurrence without factors): ITEM_ID, SCORE."""
        if str(item_id) not in self.item_index:
            raise KeyError(item_id)
        factors = self.item_factors()
        sims = cosine_similarity_matrix(factors) if factors is not None else self._cooccurrence().copy()
        row = np.asarray(sims[self.item_index[str(item_id)]], dtype=np.float64).copy()
        out = self._ranked(row, k, {str(item_id)})
        return out[["ITEM_ID", "SCORE"]]

    def _ranked(self, scores: np.ndarray, k: int, exclude: set[str]) -> pd.DataFrame:
        scores = np.asarray(scores, dtype=np.float64).copy()
        for item in exclude:
            if item in self.item_index:
                scores[self.item_index[item]] = -np.inf
        idx, vals = topk(scores[None, :], k)
        keep = np.isfinite(vals[0])
        return pd.DataFrame({"ITEM_ID": np.array(self.item_ids, dtype=object)[idx[0][keep]],
                             "RANK": np.arange(1, keep.sum() + 1), "SCORE": vals[0][keep]})

    # ---------------------------------------------------------------- persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        """Algorithm-specific arrays to save."""
        return {}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Inverse of `_arrays`."""
        return None

    def save(self, path: str | Path, metrics: dict | None = None) -> Path:
        """Write the model directory atomically: params.json + arrays.npz (+ model.npz)."""
        if metrics:
            self.metrics.update(metrics)
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.mkdir(parents=True)
            self._save_into(tmp)
        return path

    def _save_into(self, directory: Path) -> None:
        m = self.matrix.tocsr()
        np.savez(directory / ARRAYS_FILE, user_ids=np.array(self.user_ids, dtype=str),
                 item_ids=np.array(self.item_ids, dtype=str), indptr=m.indptr, indices=m.indices, data=m.data,
                 popularity=self.popularity, item_groups=self.item_groups.astype(str))
        np.savez(directory / MODEL_FILE, **self._arrays())
        meta = {"algo": self.name, "params": self.params, "fingerprint": self.fingerprint,
                "metrics": self.metrics, "train_seconds": self.train_seconds, "extra": self.extra,
                "n_users": len(self.user_ids), "n_items": len(self.item_ids),
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": _versions()}
        (directory / PARAMS_FILE).write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")

    @classmethod
    def _load_from(cls, directory: Path, meta: dict) -> "Recommender":
        model = cls(**meta["params"])
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as a:
            model.user_ids = a["user_ids"].tolist()
            model.item_ids = a["item_ids"].tolist()
            model.matrix = sp.csr_matrix((a["data"], a["indices"], a["indptr"]),
                                         shape=(len(model.user_ids), len(model.item_ids)))
            model.popularity = a["popularity"]
            model.item_groups = a["item_groups"]
        model._index()
        with np.load(directory / MODEL_FILE, allow_pickle=False) as a:
            model._restore({k: a[k] for k in a.files})
        model.metrics = meta.get("metrics", {})
        model.fingerprint = meta.get("fingerprint")
        model.train_seconds = meta.get("train_seconds")
        model.extra = meta.get("extra", {})
        return model

    @classmethod
    def load(cls, path: str | Path) -> "Recommender":
        from .models import load_model

        return load_model(path)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


class FactorModel(Recommender):
    """A recommender whose state is user and item factor matrices (implicit ALS, Spark ALS)."""

    user_factors: np.ndarray
    item_factors_: np.ndarray

    def item_factors(self):
        return self.item_factors_

    def _arrays(self):
        return {"user_factors": self.user_factors, "item_factors": self.item_factors_}

    def _restore(self, a):
        self.user_factors = a["user_factors"]
        self.item_factors_ = a["item_factors"]
