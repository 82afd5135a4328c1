"""Fold-in: a user's recommendations from the training history plus events posted since, without retraining.

The model's own `score_vector` does the scoring: item-kNN and EASE score the history vector, implicit ALS solves
the user's factors again from it against the fixed item factors, blends combine their components. Every item of the
history is left out of the answer, as `recommend` leaves out the training items.
"""

from __future__ import annotations

import pandas as pd

from .base import Recommender


def history(model: Recommender, user_id: str) -> dict[str, float]:
    """The user's training interactions {ITEM_ID: EVENT_VALUE} ({} for a user the model does not know)."""
    row = model.user_index.get(str(user_id))
    if row is None:
        return {}
    m = model.matrix[row]
    items = model.item_ids
    return {items[j]: float(v) for j, v in zip(m.indices.tolist(), m.data.tolist(), strict=True)}


def with_events(model: Recommender, user_id: str, events: dict[str, float]) -> dict[str, float]:
    """The training history with `events` ({ITEM_ID: summed EVENT_VALUE}) added to it."""
    items = history(model, user_id)
    for item, value in events.items():
        items[item] = items.get(item, 0.0) + float(value)
    return items


def recommend_with_events(model: Recommender, user_id: str, events: dict[str, float], k: int = 10,
                          exclude: set[str] = frozenset()) -> tuple[bool, pd.DataFrame]:
    """(personal, top-k ITEM_ID/RANK/SCORE) for the history plus `events`; personal is False when no item of it is
    known to the model (the answer is then the popular items), else the scores are recomputed from it."""
    items = with_events(model, user_id, events)
    personal = any(item in model.item_index for item in items)
    return personal, model.recommend_from_interactions(items, k=k, exclude=set(exclude))
