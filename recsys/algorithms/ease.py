"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): a closed-form item-item model.

B = I - P / diag(P) with P = (G + lambda I)^-1 and G the item Gram matrix X^T X of the binary user x item
matrix (each user's row optionally weighted by 1 / n_u^user_alpha, as in RP3beta); diag(B) = 0, so an item
never explains itself. score(u, i) = sum over the user's items j of B[j, i]. One dense n_items x n_items
inverse: fine up to a few thousand items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from c360.errors import InputError

from ..base import Recommender
from ..registry import register


def ease_weights(matrix: sp.csr_matrix, l2: float, user_alpha: float = 0.0) -> np.ndarray:
    """The EASE item-item weights B (n_items x n_items, zero diagonal).

    `l2` is relative to the mean diagonal of the Gram matrix (the mean item weight), so one grid fits
    any data size and any user weighting: lambda = l2 * mean(diag(G)).
    """
    if l2 <= 0:
        raise InputError(f"ease: l2 must be > 0, not {l2}")
    X = (matrix > 0).astype(np.float64).tocsr()
    deg = np.asarray(X.sum(axis=1)).ravel()
    G = (X.T @ sp.diags(1.0 / np.maximum(deg, 1.0) ** float(user_alpha)) @ X).toarray()
    lam = float(l2) * max(float(np.mean(np.diag(G))), 1e-12)
    G[np.diag_indices_from(G)] += lam
    P = np.linalg.inv(G)
    B = P / (-np.diag(P))[None, :]
    np.fill_diagonal(B, 0.0)
    return B


@register
class EASE(Recommender):
    """score(u, i) = x_u B[:, i] with EASE's closed-form B; seen items are excluded by `recommend`."""

    name = "ease"
    defaults = {"l2": 4.0, "user_alpha": 0.0}

    def _fit(self, items, show_progress):
        self.weights = ease_weights(self.matrix, float(self.params["l2"]), float(self.params["user_alpha"]))

    def _scores(self, rows):
        return np.asarray((self.matrix[rows] > 0).astype(np.float64) @ self.weights)

    def _scores_for_vector(self, vector):
        return np.asarray((vector > 0).astype(np.float64) @ self.weights).ravel()

    def _item_vectors(self):
        # columns of B: similar items are the ones explained by the same items
        return self.weights.T

    def _arrays(self):
        return {"weights": self.weights}

    def _restore(self, a):
        self.weights = np.asarray(a["weights"], dtype=np.float64)
