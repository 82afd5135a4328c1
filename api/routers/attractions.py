"""GET /attractions/{item_id}/similar: nearest attractions by learned item factors; GET /attractions/{item_id}/next:
where visitors went next from an attraction (the session model's trips), with walking minutes."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from c360.api.responses import OrjsonResponse

from ..dependencies import Served
from ..errors import ApiError
from ..schemas import Error, NextAttractions, SimilarAttractions
from ..state import ServedState

router = APIRouter(tags=["attractions"])
# the parameters both routes take, declared once
ItemId = Annotated[str, Path(min_length=1, max_length=200, description="attraction id park:poiID")]
TopK = Annotated[int, Query(ge=1, le=100)]


@router.get("/attractions/{item_id}/similar", response_model=SimilarAttractions,
            responses={404: {"model": Error}, 422: {"model": Error}}, summary="Similar attractions")
async def similar(
    item_id: ItemId,
    state: Served,
    k: TopK = 10,
    model: Annotated[str | None, Query(max_length=50)] = None,
):
    """Cosine neighbours of the item's factors (co-occurrence for models without factors)."""
    algo = model or state.served_model
    if algo not in state.models:
        raise ApiError(422, f"model: unknown model {algo!r}", ["model"])
    try:
        frame = await run_in_threadpool(state.models[algo].similar_items, item_id, k)
    except KeyError:
        raise ApiError(404, f"attraction {item_id!r} not known to model {algo}") from None
    items = [{"item_id": i, "name": state.names.get(i), "score": float(s)}
             for i, s in zip(frame["ITEM_ID"].tolist(), frame["SCORE"].tolist(), strict=True)]
    return OrjsonResponse({"item_id": item_id, "name": state.names.get(item_id), "model": algo, "items": items})


def next_moves(state: ServedState, item_id: str, k: int) -> dict:
    """The attractions visitors moved to directly after `item_id` in the session model's training trips, most
    moves first (ties by item order): share of the moves, walking minutes (recsys/walking.py) from `item_id`."""
    model = state.session
    i = model.item_index[item_id]
    counts = np.asarray(model.stats.next[i], dtype=np.float64)
    total = float(counts.sum())
    order = [j for j in np.lexsort((np.arange(len(counts)), -counts)).tolist() if counts[j] > 0][:k]
    items = []
    for rank, j in enumerate(order, start=1):
        minutes = float(model.walk[i, j])
        item = model.item_ids[j]
        items.append({"item_id": item, "name": state.names.get(item), "score": float(counts[j]) / total,
                      "walking_minutes": round(minutes, 2) if math.isfinite(minutes) else None, "rank": rank})
    return {"item_id": item_id, "name": state.names.get(item_id), "model": state.session_algo,
            "model_version": state.versions[state.session_algo], "moves": int(round(total)), "items": items}


@router.get("/attractions/{item_id}/next", response_model=NextAttractions,
            responses={404: {"model": Error}, 422: {"model": Error}}, summary="Where visitors go next")
async def next_attractions(
    item_id: ItemId,
    state: Served,
    k: TopK = 10,
):
    """What visitors did next after this attraction in the trips the run's session model learned from: each with
    its share of the moves and the walking minutes. 404 for an attraction the model does not know, and when the
    run has no session model (nothing is known about next moves then)."""
    if state.session is None:
        raise ApiError(404, f"run {state.run_id} has no session model: no next attractions")
    if item_id not in state.session.item_index:
        raise ApiError(404, f"attraction {item_id!r} not known to model {state.session_algo}")
    return OrjsonResponse(await run_in_threadpool(next_moves, state, item_id, k))
