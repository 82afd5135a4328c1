"""The Recommender interface every algorithm implements (fit, recommend, similar_items, save, load).

A fitted model keeps what serving needs as numpy arrays: one `InteractionData` (user and item ids, the
user x item training matrix for seen-item exclusion, item popularity and item groups for context-aware
fallbacks), plus its own arrays (factors, similarities, weights). Loading and recommending never need Spark.

This module is the bottom of the package: it imports no algorithm and no registry (algorithms import it,
the registry maps names to algorithm classes, and models/auto/evaluate/cli use the registry).
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from c360.errors import InputError
from c360.io import atomic_path, read_json_file, write_json_file

from .data import validate_interactions
from .ids import IdArray
from .interactions import InteractionsFile, fingerprint

PARAMS_FILE = "params.json"
ARRAYS_FILE = "arrays.npz"
MODEL_FILE = "model.npz"
# Up to this many items similar_items keeps the full item x item cosine (128 MiB in float64 at the limit);
# beyond it only the unit vectors are kept and each call computes its one row.
FULL_SIMILARITY_MAX_ITEMS = 4096


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


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def cosine_similarity_matrix(vectors: np.ndarray) -> np.ndarray:
    """Cosine between every pair of rows (n x n)."""
    unit = unit_rows(vectors)
    return unit @ unit.T


def item_groups(item_ids: list[str], items: pd.DataFrame | None, item_group_col: str | None) -> np.ndarray:
    """The `item_group_col` value of every item ("" when unknown, all "" without a group column)."""
    if not item_group_col:
        return np.array([""] * len(item_ids))
    if items is None:
        raise InputError(f"--item-group-col {item_group_col}: needs an items table (--items)")
    if item_group_col not in items.columns:
        raise InputError(f"--item-group-col: column {item_group_col!r} not in the items table "
                         f"(found: {', '.join(map(str, items.columns))})")
    mapping = dict(zip(items["ITEM_ID"].astype(str), items[item_group_col].astype(str), strict=False))
    return np.array([mapping.get(i, "") for i in item_ids])


@dataclasses.dataclass(frozen=True, eq=False)
class InteractionData:
    """The training data every algorithm reads, built once and shared by reference (blend components,
    `auto`'s candidates): ids, the user x item matrix (float32 CSR), popularity (users per item), item groups."""

    user_ids: list[str] | IdArray
    item_ids: list[str]
    matrix: sp.csr_matrix
    popularity: np.ndarray
    item_groups: np.ndarray
    item_group_col: str | None = None
    fingerprint: str | None = None
    # the Parquet file the data was read from, when it was: Spark models read it with Spark rather than the matrix
    source: InteractionsFile | None = None
    user_index: Mapping[str, int] = dataclasses.field(init=False, repr=False)
    item_index: dict[str, int] = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        # frozen: the indexes are derived once here, never reassigned; ids loaded as one array stay one
        # (IdArray: no Python object per user in a serving process)
        user_index = (self.user_ids.positions() if isinstance(self.user_ids, IdArray)
                      else {u: i for i, u in enumerate(self.user_ids)})
        object.__setattr__(self, "user_index", user_index)
        object.__setattr__(self, "item_index", {u: i for i, u in enumerate(self.item_ids)})

    @classmethod
    def from_frame(cls, interactions: pd.DataFrame, items: pd.DataFrame | None = None,
                   item_group_col: str | None = None) -> "InteractionData":
        """Validate aggregated interactions (USER_ID, ITEM_ID, EVENT_VALUE) and index them (ids sorted)."""
        df = validate_interactions(interactions)
        user_ids = sorted(df["USER_ID"].unique().tolist())
        item_ids = sorted(df["ITEM_ID"].unique().tolist())
        rows = df["USER_ID"].map({u: i for i, u in enumerate(user_ids)}).to_numpy()
        cols = df["ITEM_ID"].map({u: i for i, u in enumerate(item_ids)}).to_numpy()
        matrix = sp.csr_matrix((df["EVENT_VALUE"].to_numpy(np.float32), (rows, cols)),
                               shape=(len(user_ids), len(item_ids)), dtype=np.float32)
        return cls.from_matrix(user_ids, item_ids, matrix, items, item_group_col)

    @classmethod
    def from_file(cls, source: InteractionsFile, items: pd.DataFrame | None = None,
                  item_group_col: str | None = None) -> "InteractionData":
        """Index aggregated interactions stored as Parquet (read column-wise, see `c360.recsys.interactions`)."""
        user_ids, item_ids, matrix = source.matrix()
        return dataclasses.replace(cls.from_matrix(user_ids, item_ids, matrix, items, item_group_col), source=source)

    @classmethod
    def from_matrix(cls, user_ids: list[str], item_ids: list[str], matrix: sp.csr_matrix,
                    items: pd.DataFrame | None = None, item_group_col: str | None = None) -> "InteractionData":
        """Sorted ids and their user x item matrix (duplicates summed) -> the data with popularity and groups."""
        matrix = matrix.tocsr()
        matrix.sum_duplicates()
        matrix.sort_indices()
        popularity = np.asarray((matrix > 0).sum(axis=0)).ravel().astype(np.float64)
        return cls(user_ids, item_ids, matrix, popularity, item_groups(item_ids, items, item_group_col),
                   item_group_col or None, fingerprint(user_ids, item_ids, matrix))

    def with_item_groups(self, items: pd.DataFrame | None, item_group_col: str | None) -> "InteractionData":
        """The same data (matrix shared, not copied) grouped by another items column (or none)."""
        return dataclasses.replace(self, item_groups=item_groups(self.item_ids, items, item_group_col),
                                   item_group_col=item_group_col or None)

    def with_user_rows(self, user_ids: list[str], rows: sp.csr_matrix) -> "InteractionData":
        """A copy where each of `user_ids` (new ones appended) has the matching row of `rows`; items unchanged."""
        new = [u for u in dict.fromkeys(user_ids) if u not in self.user_index]
        ids = self.user_ids + new
        matrix = self.matrix
        if new:
            matrix = sp.vstack([matrix, sp.csr_matrix((len(new), matrix.shape[1]), dtype=np.float32)])
        index = {u: i for i, u in enumerate(ids)}
        matrix = matrix.tolil()
        for u, row in zip(user_ids, rows, strict=True):
            matrix[index[u]] = row
        return dataclasses.replace(self, user_ids=ids, matrix=matrix.tocsr(), source=None)


class ItemSimilarity:
    """Cosine between item vectors, normalized once: the full item x item matrix for catalogues up to
    `full_max_items` (exactly the numbers the per-call formula gave), else only the unit vectors, each
    `row` call then being one matrix-vector product (equal up to float rounding, which may swap near-ties)."""

    def __init__(self, vectors: np.ndarray, full_max_items: int | None = None):
        vectors = np.asarray(vectors)
        limit = FULL_SIMILARITY_MAX_ITEMS if full_max_items is None else full_max_items
        self.full: np.ndarray | None = cosine_similarity_matrix(vectors) if len(vectors) <= limit else None
        self.unit: np.ndarray | None = unit_rows(vectors) if self.full is None else None

    def row(self, i: int) -> np.ndarray:
        """Cosine of item i with every item (n_items,)."""
        if self.full is not None:
            return self.full[i]
        return self.unit @ self.unit[i]


def read_meta(path: str | Path) -> dict:
    """params.json of a saved model directory; InputError for anything that is not one."""
    path = Path(path)
    meta_path = path / PARAMS_FILE
    if not meta_path.is_file():
        raise InputError(f"{path}: not a saved model (no {PARAMS_FILE})")
    return read_json_file(meta_path)


class Recommender(ABC):
    """Base class: subclasses implement `_fit`, `_scores`, optionally `_scores_for_vector` and
    `_item_vectors`, and the arrays they save (`_arrays` / `_restore`)."""

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    # True: `session_scores` scores a trip from the trip itself (a session model: it answers the trips of serving);
    # False: the default, the trip folded into the user's history as events
    scores_trips: ClassVar[bool] = False

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.defaults) - {"item_group_col"})
        if unknown:
            raise InputError(f"{self.name}: unknown parameter(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(self.defaults)) or 'none'})")
        self.params: dict[str, Any] = {**self.defaults, **params}
        self.params.setdefault("item_group_col", None)
        self.data: InteractionData | None = None
        self.metrics: dict[str, Any] = {}
        self.train_seconds: float | None = None
        self.extra: dict[str, Any] = {}
        self._similarity: ItemSimilarity | None = None
        self._cooc: np.ndarray | None = None

    # ---------------------------------------------------------------- data (read through self.data)
    def _fitted(self) -> InteractionData:
        if self.data is None:
            # AttributeError keeps hasattr(model, "matrix") False on an unfitted model, as before
            raise AttributeError(f"{self.name or type(self).__name__}: not fitted (no training data)")
        return self.data

    @property
    def user_ids(self) -> list[str] | IdArray:
        return self.data.user_ids if self.data is not None else []

    @property
    def item_ids(self) -> list[str]:
        return self.data.item_ids if self.data is not None else []

    @property
    def user_index(self) -> Mapping[str, int]:
        return self._fitted().user_index

    @property
    def item_index(self) -> dict[str, int]:
        return self._fitted().item_index

    @property
    def matrix(self) -> sp.csr_matrix:
        return self._fitted().matrix

    @property
    def popularity(self) -> np.ndarray:
        return self._fitted().popularity

    @property
    def item_groups(self) -> np.ndarray:
        return self._fitted().item_groups

    @property
    def fingerprint(self) -> str | None:
        return self.data.fingerprint if self.data is not None else None

    def _vector(self, items: dict[str, float]) -> sp.csr_matrix:
        cols, vals = [], []
        index = self.item_index
        for item, value in items.items():
            if str(item) in index:
                cols.append(index[str(item)])
                vals.append(float(value))
        return sp.csr_matrix((np.array(vals, np.float32), (np.zeros(len(cols), int), np.array(cols, int))),
                             shape=(1, len(self.item_ids)), dtype=np.float32)

    # ---------------------------------------------------------------- training
    def fit(self, interactions: pd.DataFrame | InteractionsFile, items: pd.DataFrame | None = None,
            show_progress: bool = True) -> "Recommender":
        """Train on aggregated interactions (USER_ID, ITEM_ID, EVENT_VALUE), a frame or a Parquet file; items gives
        side data/groups."""
        col = self.params.get("item_group_col")
        data = (InteractionData.from_file(interactions, items, col) if isinstance(interactions, InteractionsFile)
                else InteractionData.from_frame(interactions, items, col))
        return self.fit_data(data, items, show_progress)

    def fit_data(self, data: InteractionData, items: pd.DataFrame | None = None,
                 show_progress: bool = True) -> "Recommender":
        """Train on already prepared data, kept by reference (regrouped first if it was grouped by
        another column than this model's item_group_col)."""
        col = self.params.get("item_group_col") or None
        if data.item_group_col != col:
            data = data.with_item_groups(items, col)
        self.data = data
        self._similarity = self._cooc = None
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

    def score_rows(self, rows: np.ndarray) -> np.ndarray:
        """Dense scores (len(rows) x n_items) of known users given as row indices into user_ids; seen items
        are not excluded (`recommend` does that)."""
        return self._scores(np.asarray(rows, dtype=np.int64))

    def score_vector(self, vector: sp.csr_matrix) -> np.ndarray:
        """Scores (n_items,) for one user known only by a 1 x n_items interaction row (no retraining)."""
        return self._scores_for_vector(vector)

    def _cooccurrence_vectors(self) -> np.ndarray:
        """Each item's binary column of the training matrix (n_items x n_users)."""
        return (self.matrix > 0).astype(np.float64).T.toarray()

    def _cooccurrence(self) -> np.ndarray:
        if self._cooc is None:
            self._cooc = cosine_similarity_matrix(self._cooccurrence_vectors())
            np.fill_diagonal(self._cooc, 0.0)
        return self._cooc

    def item_factors(self) -> np.ndarray | None:
        """Learned item vectors (n_items x d) when the algorithm has them."""
        return None

    def _item_vectors(self) -> np.ndarray:
        """The vectors `similar_items` compares by cosine: item factors, else co-occurrence columns."""
        factors = self.item_factors()
        return factors if factors is not None else self._cooccurrence_vectors()

    def item_similarity(self) -> ItemSimilarity:
        """The item x item cosine of `_item_vectors`, computed on first use and kept on the model."""
        if self._similarity is None:
            self._similarity = ItemSimilarity(self._item_vectors())
        return self._similarity

    # ---------------------------------------------------------------- serving
    def recommend(self, user_ids: list[str], k: int = 10,
                  exclude: dict[str, set[str]] | None = None) -> pd.DataFrame:
        """Top-k per known user: USER_ID, ITEM_ID, RANK (from 1), SCORE; never an item seen in training."""
        user_index, item_index = self.user_index, self.item_index
        known = [str(u) for u in user_ids if str(u) in user_index]
        item_ids = np.array(self.item_ids, dtype=object)
        frames = []
        for start in range(0, len(known), 2048):
            batch = known[start:start + 2048]
            rows = np.array([user_index[u] for u in batch], dtype=np.int64)
            scores = np.asarray(self._scores(rows), dtype=np.float64).copy()
            seen = self.matrix[rows]
            scores[seen.nonzero()] = -np.inf
            if exclude:
                for j, u in enumerate(batch):
                    for item in exclude.get(u, ()):
                        if item in item_index:
                            scores[j, item_index[item]] = -np.inf
            idx, vals = topk(scores, k)
            users = np.repeat(np.array(batch, dtype=object), idx.shape[1])
            ranks = np.tile(np.arange(1, idx.shape[1] + 1), len(batch))
            frame = pd.DataFrame({"USER_ID": users, "ITEM_ID": item_ids[idx.ravel()],
                                  "RANK": ranks, "SCORE": vals.ravel()})
            frames.append(frame[np.isfinite(frame["SCORE"])])
        if not frames:
            return pd.DataFrame({"USER_ID": pd.Series(dtype=str), "ITEM_ID": pd.Series(dtype=str),
                                 "RANK": pd.Series(dtype="int64"), "SCORE": pd.Series(dtype="float64")})
        return pd.concat(frames, ignore_index=True)

    def session_scores(self, sessions: Sequence[Any]) -> np.ndarray:
        """Scores (len(sessions) x n_items) of the next attraction after each trip so far (`trips.Session`: its
        `items` in visit order, its `user` when known); no item left out (`trips.score_sessions` does that).

        Default: the trip folded in as events, no retraining: the user's training row (when known) plus one for each
        attraction of the trip, scored by `score_vector`; popularity for a session with neither. A session model
        (`scores_trips`) overrides it to score the trip itself."""
        index, user_index = self.item_index, self.user_index
        rows, cols = [], []
        for j, s in enumerate(sessions):
            trip = [index[i] for i in s.items if i in index]
            rows += [j] * len(trip)
            cols += trip
        vectors = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(sessions), len(index)))
        known = [j for j, s in enumerate(sessions) if s.user in user_index]
        if known:   # the user's training row under the trip (a one-off sparse product: no per-session matrices)
            pick = sp.csr_matrix((np.ones(len(known), np.float32),
                                  (known, [user_index[sessions[j].user] for j in known])),
                                 shape=(len(sessions), self.matrix.shape[0]))
            vectors = (vectors + pick @ self.matrix).tocsr()
        out = np.empty((len(sessions), len(index)))
        for j in range(len(sessions)):
            vector = vectors[j]
            out[j] = self.score_vector(vector) if vector.nnz else self.popularity
        return out

    def spark_recommendations(self, k: int):
        """A Spark DataFrame (USER_ID, ITEM_ID, RANK, SCORE) of every user's top-k, never a training item, when the
        model can rank them with Spark (a Spark model trained in this process); None otherwise (the default)."""
        return None

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
        scores = np.asarray(self.score_vector(vector), dtype=np.float64)
        return self._ranked(scores, k, set(exclude) | set(map(str, items)))

    def similar_items(self, item_id: str, k: int = 10) -> pd.DataFrame:
        """Nearest items by cosine of the algorithm's item vectors (see `_item_vectors`): ITEM_ID, SCORE."""
        if str(item_id) not in self.item_index:
            raise KeyError(item_id)
        row = self.item_similarity().row(self.item_index[str(item_id)])
        return self._ranked(row, k, {str(item_id)})[["ITEM_ID", "SCORE"]]

    def _ranked(self, scores: np.ndarray, k: int, exclude: set[str]) -> pd.DataFrame:
        scores = np.asarray(scores, dtype=np.float64).copy()
        item_index = self.item_index
        for item in exclude:
            if item in item_index:
                scores[item_index[item]] = -np.inf
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

    def model_arrays(self) -> dict[str, np.ndarray]:
        """The fitted algorithm's own arrays (what model.npz holds)."""
        return self._arrays()

    def restore_from(self, data: InteractionData, arrays: dict[str, np.ndarray]) -> "Recommender":
        """Attach training data and `model_arrays` saved earlier: a fitted model again, without fitting."""
        self.data = data
        self._similarity = self._cooc = None
        self._restore(arrays)
        return self

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
        data = self._fitted()
        m = data.matrix.tocsr()
        np.savez(directory / ARRAYS_FILE, user_ids=np.array(data.user_ids, dtype=str),
                 item_ids=np.array(data.item_ids, dtype=str), indptr=m.indptr, indices=m.indices, data=m.data,
                 popularity=data.popularity, item_groups=data.item_groups.astype(str))
        np.savez(directory / MODEL_FILE, **self.model_arrays())
        meta = {"algo": self.name, "params": self.params, "fingerprint": self.fingerprint,
                "metrics": self.metrics, "train_seconds": self.train_seconds, "extra": self.extra,
                "n_users": len(data.user_ids), "n_items": len(data.item_ids),
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": _versions()}
        write_json_file(directory / PARAMS_FILE, meta, default=_json_default)

    @classmethod
    def load(cls, path: str | Path) -> "Recommender":
        """Load a directory saved by this algorithm (any algorithm: `c360.recsys.models.load_model`)."""
        path = Path(path)
        meta = read_meta(path)
        if meta.get("algo") != cls.name or not cls.name:
            raise InputError(f"{path / PARAMS_FILE}: a saved {meta.get('algo')!r} model, not "
                             f"{cls.name or cls.__name__!r} (load any algorithm with c360.recsys.models.load_model)")
        model = cls(**meta["params"])
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as a:
            user_ids, item_ids = IdArray(a["user_ids"]), a["item_ids"].tolist()
            matrix = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=(len(user_ids), len(item_ids)))
            data = InteractionData(user_ids, item_ids, matrix, a["popularity"], a["item_groups"],
                                   model.params.get("item_group_col") or None, meta.get("fingerprint"))
        with np.load(path / MODEL_FILE, allow_pickle=False) as a:
            model.restore_from(data, {k: a[k] for k in a.files})
        model.metrics = meta.get("metrics", {})
        model.train_seconds = meta.get("train_seconds")
        model.extra = meta.get("extra", {})
        return model


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
