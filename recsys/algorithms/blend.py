"""Blend: alpha * (per-user max-normalized personal score) + (1 - alpha) * context-aware popularity."""

from __future__ import annotations

import json

import numpy as np

from c360.errors import InputError

from ..base import Recommender
from .popularity import context_popularity


def normalize_rows(scores: np.ndarray) -> np.ndarray:
    """Scale each row to [0, 1] by its min and max (constant rows become 0)."""
    lo = scores.min(axis=1, keepdims=True)
    span = scores.max(axis=1, keepdims=True) - lo
    return (scores - lo) / np.where(span > 0, span, 1.0)


class Blend(Recommender):
    """A personal model (item-knn or als) blended with context-aware popularity; alpha is chosen by `auto`."""

    name = "blend"
    defaults = {"alpha": 0.3, "base": "item-knn", "base_params": {}}

    def _base(self) -> Recommender:
        from ..models import ALGORITHMS

        base = self.params["base"]
        if base not in ("item-knn", "als"):
            raise InputError(f"blend: base must be item-knn or als, not {base!r}")
        return ALGORITHMS[base](item_group_col=self.params.get("item_group_col"), **dict(self.params["base_params"]))

    def _fit(self, items, show_progress):
        self.component = self._base()
        self.component._set_data_from(self)
        self.component._fit(items, show_progress)

    @classmethod
    def from_component(cls, component: Recommender, alpha: float) -> "Blend":
        """Blend an already fitted component (no refit): used by `auto` to scan alpha cheaply."""
        blend = cls(alpha=alpha, base=component.name, base_params={k: v for k, v in component.params.items()
                                                                   if k != "item_group_col"},
                    item_group_col=component.params.get("item_group_col"))
        blend._set_data_from(component)
        blend.component = component
        blend.train_seconds = component.train_seconds
        return blend

    def _mix(self, personal: np.ndarray, popular: np.ndarray) -> np.ndarray:
        a = float(self.params["alpha"])
        return a * normalize_rows(personal) + (1 - a) * popular / 2.0

    def _scores(self, rows):
        popular = context_popularity(self.matrix[rows], self.popularity, self.item_groups)
        return self._mix(self.component._scores(rows), popular)

    def _scores_for_vector(self, vector):
        popular = context_popularity(vector, self.popularity, self.item_groups)
        return self._mix(self.component._scores_for_vector(vector)[None, :], popular)[0]

    def item_factors(self):
        return self.component.item_factors()

    def similar_items(self, item_id, k=10):
        return self.component.similar_items(item_id, k)

    def _arrays(self):
        arrays = {f"c_{k}": v for k, v in self.component._arrays().items()}
        arrays["component_params"] = np.array(json.dumps(self.component.params))
        return arrays

    def _restore(self, a):
        self.component = self._base()
        self.component._set_data_from(self)
        self.component._restore({k[2:]: v for k, v in a.items() if k.startswith("c_")})
