"""GET /recommendations/{user_id}: precomputed top-N (dict read), scored on the fly beyond it, cold start; a user
with events posted since the model was trained is scored from the updated history (fold-in)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from c360.api.responses import OrjsonResponse
from c360.recsys.foldin import recommend_with_events

from ..dependencies import Served
from ..errors import ApiError
from ..schemas import Error, Recommendations
from ..state import ServedState

router = APIRouter(tags=["recommendations"])

MAX_K = 100


def parse_exclude(exclude: list[str] | None) -> set[str]:
    """`?exclude=a&exclude=b` or `?exclude=a,b` → a set of item ids."""
    out: set[str] = set()
    for value in exclude or ():
        out.update(part.strip() for part in value.split(",") if part.strip())
    return out


def _folded(state: ServedState, algo: str, user_id: str, events: dict[str, float], k: int, exclude: set[str]):
    """The model's scores for the training history plus the live events (cold_start, items): visited items left out,
    ALS user factors solved again, item-kNN / EASE from the history vector."""
    personal, frame = recommend_with_events(state.models[algo], user_id, events, k=k, exclude=exclude)
    return not personal, state.items(frame)


def _scored(state: ServedState, algo: str, user_id: str, k: int, exclude: set[str]):
    """Score on the fly in a worker thread: (cold_start, items)."""
    model = state.models[algo]
    if user_id in model.user_index:
        frame = model.recommend([user_id], k=k, exclude={user_id: exclude} if exclude else None)
        return False, state.items(frame)
    return True, state.items(model.popular_items(k, exclude=exclude))


@router.get("/recommendations/{user_id}", response_model=Recommendations,
            responses={404: {"model": Error}, 422: {"model": Error}, 503: {"model": Error}},
            summary="Top-k attractions for a visitor")
async def recommendations(
    user_id: Annotated[str, Path(min_length=1, max_length=200, description="visitor USER_ID")],
    state: Served,  # one reference read for the whole request: a reload mid-request cannot mix two runs
    k: Annotated[int, Query(ge=1, le=MAX_K, description="number of items")] = 10,
    model: Annotated[str | None, Query(max_length=50, description="another published model (default: served)")] = None,
    exclude: Annotated[list[str] | None, Query(max_length=200, description="item ids to leave out")] = None,
):
    """Precomputed top-N of the served model when it can answer; otherwise the model scores in a thread.

    Unknown users get the context-free popular items with `cold_start: true`. Events posted for the user since the
    model was trained (POST /events, by any worker) are folded in: `events_applied` counts them.
    """
    algo = model or state.served_model
    if algo not in state.models:
        raise ApiError(422, f"model: unknown model {algo!r} (published: {', '.join(sorted(state.models))})",
                       ["model"])
    excluded = parse_exclude(exclude)
    events, applied = state.events.of(user_id)
    if applied:
        cold, items = await run_in_threadpool(_folded, state, algo, user_id, events, k, excluded)
        return OrjsonResponse({"user_id": user_id, "model": algo, "model_version": state.versions[algo],
                               "cold_start": cold, "items": items, "events_applied": applied})
    items = None
    cold = False
    if algo == state.served_model:
        pre = state.recs.get(user_id)
        model_obj = state.models[algo]
        if pre is None and user_id not in model_obj.user_index:
            cold = True
            pre = state.popular
        if pre is not None:
            if excluded:
                pre = [it for it in pre if it["item_id"] not in excluded]
            if len(pre) >= k:
                items = [it if it["rank"] == r else {**it, "rank": r} for r, it in enumerate(pre[:k], start=1)]
    if items is None:
        cold, items = await run_in_threadpool(_scored, state, algo, user_id, k, excluded)
    return OrjsonResponse({"user_id": user_id, "model": algo, "model_version": state.versions[algo],
                           "cold_start": cold, "items": items, "events_applied": 0})
