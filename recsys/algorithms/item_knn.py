"""Item-item nearest neighbours (the book's memory-based approach): cosine, BM25, TF-IDF via implicit, or RP3beta."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from c360.errors import InputError

from ..base import Recommender
from ..registry import register

SIMILARITIES = ("cosine", "bm25", "tfidf", "rp3")


def rp3_similarity(matrix: sp.csr_matrix, user_alpha: float, beta: float, neighbours: int) -> sp.csr_matrix:
    """Random-walk item-item similarity (RP3beta): sim(j, i) = sum_u x_uj x_ui / deg_u^user_alpha / n_j / n_i^beta.

    user_alpha damps heavy users, beta damps popular targets; each row keeps its `neighbours` largest entries.
    """
    X = (matrix > 0).astype(np.float64).tocsr()
    deg_u = np.asarray(X.sum(axis=1)).ravel()
    n_i = np.asarray(X.sum(axis=0)).ravel()
    C = (X.T @ sp.diags(1.0 / np.maximum(deg_u, 1.0) ** user_alpha) @ X).toarray()
    np.fill_diagonal(C, 0.0)
    S = C / np.maximum(n_i, 1.0)[:, None] / np.maximum(n_i, 1.0)[None, :] ** beta
    if neighbours < S.shape[1]:
        cut = -np.sort(-S, axis=1)[:, neighbours - 1:neighbours]
        S = np.where(S >= cut, S, 0.0)
    return sp.csr_matrix(S.astype(np.float32))


@register
class ItemKNN(Recommender):
    """score(u, i) = sum over the user's items j of w(u, j) * sim(j, i), sim from implicit's item-item models."""

    name = "item-knn"
    defaults = {"similarity": "bm25", "neighbours": 50, "bm25_k1": 1.2, "bm25_b": 0.75, "binary": True,
                "user_alpha": 1.0, "beta": 0.0}

    def _fit(self, items, show_progress):
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

        kind = self.params["similarity"]
        if kind not in SIMILARITIES:
            raise InputError(f"item-knn: similarity must be one of {', '.join(SIMILARITIES)}, not {kind!r}")
        K = int(self.params["neighbours"])
        if kind == "rp3":
            self.similarity = rp3_similarity(self.matrix, float(self.params["user_alpha"]), float(self.params["beta"]), K)
            return
        if kind == "bm25":
            model = BM25Recommender(K=K, K1=float(self.params["bm25_k1"]), B=float(self.params["bm25_b"]))
        elif kind == "tfidf":
            model = TFIDFRecommender(K=K)
        else:
            model = CosineRecommender(K=K)
        with warnings.catch_warnings():  # implicit's own weighting hands itself a COO matrix and warns about it
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(self.matrix, show_progress=show_progress)
        self.similarity = sp.csr_matrix(model.similarity, dtype=np.float32)

    def _user_rows(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        return (user_items > 0).astype(np.float32) if self.params["binary"] else user_items

    def _scores(self, rows):
        return np.asarray((self._user_rows(self.matrix[rows]) @ self.similarity).todense())

    def _scores_for_vector(self, vector):
        return np.asarray((self._user_rows(vector) @ self.similarity).todense()).ravel()

    def item_factors(self):
        return None

    def _item_vectors(self):
        # rows of the learned item-item similarity: items with the same neighbours are similar
        return self.similarity.toarray()

    def _arrays(self):
        s = self.similarity.tocsr()
        return {"sim_data": s.data, "sim_indices": s.indices, "sim_indptr": s.indptr}

    def _restore(self, a):
        n = len(self.item_ids)
        self.similarity = sp.csr_matrix((a["sim_data"], a["sim_indices"], a["sim_indptr"]), shape=(n, n))
