"""Blend: alpha * (per-user max-normalized personal score) + (1 - alpha) * context-aware popularity.

The personal score is one model's (`base`), or the mean of several row-normalized models' scores
(`base` plus the models in `mix`, e.g. RP3beta item-kNN and EASE).
"""

from __future__ import annotations

import json

import numpy as np

from c360.errors import InputError

from ..base import Recommender
from .popularity import context_popularity

BASES = ("item-knn", "als", "ease")


def normalize_rows(scores: np.ndarray) -> np.ndarray:
    """Scale each row to [0, 1] by its min and max (constant rows become 0)."""
    lo = scores.min(axis=1, keepdims=True)
    span = scores.max(axis=1, keepdims=True) - lo
    return (scores - lo) / np.where(span > 0, span, 1.0)


def combine_scores(parts: list[np.ndarray]) -> np.ndarray:
    """One score matrix from several models': each row-normalized, averaged, normalized again."""
    if len(parts) == 1:
        return normalize_rows(parts[0])
    return normalize_rows(sum(normalize_rows(p) for p in parts) / len(parts))


def _public_params(model: Recommender) -> dict:
    return {k: v for k, v in model.params.items() if k != "item_group_col"}


class Blend(Recommender):
    """Personal model(s) (item-knn, als, ease) blended with context-aware popularity; `auto` chooses alpha."""

    name = "blend"
    defaults = {"alpha": 0.3, "base": "item-knn", "base_params": {}, "mix": []}

    def _make(self, algo: str, params: dict) -> Recommender:
        from ..models import ALGORITHMS

        if algo not in BASES:
            raise InputError(f"blend: base must be one of {', '.join(BASES)}, not {algo!r}")
        return ALGORITHMS[algo](item_group_col=self.params.get("item_group_col"), **dict(params))

    def _specs(self) -> list[tuple[str, dict]]:
        """(algo, params) of every personal component: base first, then `mix` ([algo, params] pairs)."""
        specs = [(self.params["base"], dict(self.params["base_params"]))]
        for entry in self.params["mix"] or []:
            if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not isinstance(entry[1], dict):
                raise InputError(f"blend: each mix entry must be [algo, params], not {entry!r}")
            specs.append((str(entry[0]), dict(entry[1])))
        return specs

    def _build(self) -> list[Recommender]:
        models = [self._make(algo, params) for algo, params in self._specs()]
        for model in models:
            model._set_data_from(self)
        return models

    def _fit(self, items, show_progress):
        self.components = self._build()
        for model in self.components:
            model._fit(items, show_progress)

    @property
    def component(self) -> Recommender:
        return self.components[0]

    @classmethod
    def from_components(cls, components: list[Recommender], alpha: float) -> "Blend":
        """Blend already fitted components (same training data; no refit): `auto` scans alpha this way."""
        first, rest = components[0], components[1:]
        blend = cls(alpha=alpha, base=first.name, base_params=_public_params(first),
                    mix=[[m.name, _public_params(m)] for m in rest],
                    item_group_col=first.params.get("item_group_col"))
        blend._set_data_from(first)
        blend.components = list(components)
        blend.train_seconds = sum(m.train_seconds or 0.0 for m in components)
        return blend

    def personal_scores(self, rows: np.ndarray) -> np.ndarray:
        """Row-normalized mean of the row-normalized component scores (one component: its normalized scores)."""
        return combine_scores([np.asarray(m._scores(rows), dtype=np.float64) for m in self.components])

    def _mix(self, personal: np.ndarray, popular: np.ndarray) -> np.ndarray:
        a = float(self.params["alpha"])
        return a * personal + (1 - a) * popular / 2.0

    def _scores(self, rows):
        popular = context_popularity(self.matrix[rows], self.popularity, self.item_groups)
        return self._mix(self.personal_scores(rows), popular)

    def _scores_for_vector(self, vector):
        popular = context_popularity(vector, self.popularity, self.item_groups)
        parts = [np.asarray(m._scores_for_vector(vector), dtype=np.float64)[None, :] for m in self.components]
        return self._mix(combine_scores(parts), popular)[0]

    def item_factors(self):
        return self.component.item_factors()

    def similar_items(self, item_id, k=10):
        return self.component.similar_items(item_id, k)

    def _arrays(self):
        arrays = {f"c_{k}": v for k, v in self.component._arrays().items()}
        for i, model in enumerate(self.components[1:]):
            arrays.update({f"m{i}_{k}": v for k, v in model._arrays().items()})
        arrays["component_params"] = np.array(json.dumps(self.component.params))
        return arrays

    def _restore(self, a):
        self.components = self._build()
        for i, model in enumerate(self.components):
            prefix = "c_" if i == 0 else f"m{i - 1}_"
            model._restore({k[len(prefix):]: v for k, v in a.items() if k.startswith(prefix)})
