"""Popularity baselines: global, and context-aware (popular within the item groups the user has visited)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..base import Recommender
from ..registry import register


def context_popularity(user_items: sp.csr_matrix, popularity: np.ndarray, item_groups: np.ndarray) -> np.ndarray:
    """Scores in [0, 2): 1 for items in a group the user has visited, plus normalized popularity.

    With no groups (all empty) this is plain popularity. Items in the user's groups always rank first,
    ordered by popularity; then the rest, ordered by popularity.
    """
    pop = popularity / (popularity.max() + 1.0)
    scores = np.tile(pop, (user_items.shape[0], 1))
    if not np.any(item_groups != ""):
        return scores
    codes, inverse = np.unique(item_groups, return_inverse=True)
    onehot = sp.csr_matrix((np.ones(len(inverse)), (np.arange(len(inverse)), inverse)),
                           shape=(len(inverse), len(codes)))
    visited = np.asarray(((user_items > 0).astype(np.float64) @ onehot).todense()) > 0   # users x groups
    visited[:, codes == ""] = False
    return scores + visited[:, inverse].astype(np.float64)


@register
class Popularity(Recommender):
    """Most popular items (number of users); with item_group_col, popular within the user's groups."""

    name = "popularity"
    defaults = {}

    def _fit(self, items, show_progress):
        pass

    def _scores(self, rows):
        return context_popularity(self.matrix[rows], self.popularity, self.item_groups)

    def _scores_for_vector(self, vector):
        return context_popularity(vector, self.popularity, self.item_groups)[0]
