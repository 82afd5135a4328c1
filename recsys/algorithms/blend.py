"""Blend: alpha * (per-user max-normalized personal score) + (1 - alpha) * context-aware popularity.

The personal score is one model's (`base`), or the mean of several row-normalized models' scores
(`base` plus the models in `mix`, e.g. RP3beta item-kNN and EASE).
"""

from __future__ import annotations

import json

import numpy as np

from c360.errors import InputError

from ..base import Recommender
from ..registry import algorithm_class, register
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


@register
class Blend(Recommender):
    """Personal model(s) (item-knn, als, ease) blended with context-aware popularity; `auto` chooses alpha.

    Components are built by name from the registry and share this model's `data` object (no copies).
    """

    name = "blend"
    defaults = {"alpha": 0.3, "base": "item-knn", "base_params": {}, "mix": []}

    def _make(self, algo: str, params: dict) -> Recommender:
        if algo not in BASES:
            raise InputError(f"blend: base must be one of {', '.join(BASES)}, not {algo!r}")
        return algorithm_class(algo)(item_group_col=self.params.get("item_group_col"), **dict(params))

    def _specs(self) -> list[tuple[str, dict]]:
        """(algo, params) of every personal component: base first, then `mix` ([algo, params] pairs)."""
        specs = [(self.params["base"], dict(self.params["base_params"]))]
        for entry in self.params["mix"] or []:
            if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not isinstance(entry[1], dict):
                raise InputError(f"blend: each mix entry must be [algo, params], not {entry!r}")
            specs.append((str(entry[0]), dict(entry[1])))
        return specs

    def _build(self) -> list[Recommender]:
        return [self._make(algo, params) for algo, params in self._specs()]

    def _fit(self, items, show_progress):
        self.components = [model.fit_data(self.data, items, show_progress) for model in self._build()]

    @property
    def component(self) -> Recommender:
        return self.components[0]

    @classmethod
    def from_components(cls, components: list[Recommender], alpha: float) -> "Blend":
        """Blend already fitted components (same training data; no refit): `auto` scans alpha this way."""
        first, rest = components[0], components[1:]
        for model in rest:
            if model.data is not first.data and model.fingerprint != first.fingerprint:
                raise InputError(f"blend: components trained on different data ({first.name}, {model.name})")
        blend = cls(alpha=alpha, base=first.name, base_params=_public_params(first),
                    mix=[[m.name, _public_params(m)] for m in rest],
                    item_group_col=first.params.get("item_group_col"))
        blend.data = first.data
        blend.components = list(components)
        blend.train_seconds = sum(m.train_seconds or 0.0 for m in components)
        return blend

    def personal_scores(self, rows: np.ndarray) -> np.ndarray:
        """Row-normalized mean of the row-normalized component scores (one component: its normalized scores)."""
        return combine_scores([np.asarray(m.score_rows(rows), dtype=np.float64) for m in self.components])

    def mix_scores(self, personal: np.ndarray, popular: np.ndarray) -> np.ndarray:
        """alpha * personal + (1 - alpha) * popular / 2 (popular is context popularity, in [0, 2))."""
        a = float(self.params["alpha"])
        return a * personal + (1 - a) * popular / 2.0

    def _scores(self, rows):
        popular = context_popularity(self.matrix[rows], self.popularity, self.item_groups)
        return self.mix_scores(self.personal_scores(rows), popular)

    def _scores_for_vector(self, vector):
        popular = context_popularity(vector, self.popularity, self.item_groups)
        parts = [np.asarray(m.score_vector(vector), dtype=np.float64)[None, :] for m in self.components]
        return self.mix_scores(combine_scores(parts), popular)[0]

    def item_factors(self):
        return self.component.item_factors()

    def item_similarity(self):
        # the base component's (cached there): similar_items of a blend is its base model's
        return self.component.item_similarity()

    def _arrays(self):
        arrays = {f"c_{k}": v for k, v in self.component.model_arrays().items()}
        for i, model in enumerate(self.components[1:]):
            arrays.update({f"m{i}_{k}": v for k, v in model.model_arrays().items()})
        arrays["component_params"] = np.array(json.dumps(self.component.params))
        return arrays

    def _restore(self, a):
        self.components = []
        for i, model in enumerate(self._build()):
            prefix = "c_" if i == 0 else f"m{i - 1}_"
            self.components.append(model.restore_from(self.data, {k[len(prefix):]: v for k, v in a.items()
                                                                  if k.startswith(prefix)}))
