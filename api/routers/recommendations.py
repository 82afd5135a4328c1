"""GET /recommendations/{user_id}: precomputed top-N (the run's served table: its stored JSON spliced into the
response unparsed), scored on the fly beyond it, cold start; a user with events posted since the model was trained
is scored from the updated history (fold-in); a visitor on a trip now (events posted within the session gap, or
`?at=` where they stand) gets the next attractions of the trip from the run's session model, and `context` says
so."""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from c360.api.responses import OrjsonResponse
from c360.recsys.base import topk
from c360.recsys.foldin import recommend_with_events
from c360.recsys.trips import Session, score_sessions

from ..audit import audit as audit_log
from ..dependencies import Principal, Served, optional_caller
from ..errors import ApiError
from ..live_updates import UserEvents, current_trip
from ..schemas import Error, Recommendations
from ..state import ServedState

router = APIRouter(tags=["recommendations"])

MAX_K = 100
NO_EVENTS = UserEvents({}, 0, [])   # what an answer without a key is scored from


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


def _stored(state: ServedState, user_id: str, algo: str, cold: bool, items_json: bytes, applied: bytes) -> Response:
    """The response around items already serialized (the served table's bytes, the cold-start items): the same body
    OrjsonResponse writes, key for key, without parsing or building the items."""
    body = b"".join((b'{"user_id":', orjson.dumps(user_id), b',"model":', orjson.dumps(algo), b',"model_version":',
                     orjson.dumps(state.versions[algo]), b',"cold_start":', b"true" if cold else b"false",
                     b',"items":', items_json, b',"events_applied":', applied, b',"context":null}'))
    return Response(body, media_type="application/json")


def _audit_activity(caller: Principal, user_id: str) -> None:
    """The audit line of a keyed read of a visitor's activity (their trip, the events since the run)."""
    audit_log.info("visitor activity access", extra={"fields": {
        "endpoint": "GET /recommendations/{user_id}", "key": caller.key_hash, "role": caller.role,
        "user_id": user_id, "status": 200}})


def trip_session(user_id: str, trip: list[tuple[int, str]], at: str | None, now: float) -> Session:
    """The trip so far as a Session: its attractions once each, at their first event, in time order; `at` (where
    the visitor stands now) moved to the end, at `now` (never before the trip's last event)."""
    first: dict[str, int] = {}
    for ts, item in trip:
        first.setdefault(item, ts)
    if at is not None:
        last = max(first.values(), default=0)
        first.pop(at, None)
        first[at] = max(int(now), last)
    return Session(tuple(first), tuple(first.values()), user_id)


def _next_in_trip(state: ServedState, session: Session, k: int, exclude: set[str]):
    """(model, items, note): the session model's next attractions of the trip: its park only, never one of the trip
    (nor `exclude`). An attraction the session model does not know (a park it was not trained on: it would answer
    another park's attractions) is answered by the served model, restricted to the attraction's park (none when
    the run's items table does not name it); `note` says so."""
    model = state.session
    if session.items[-1] not in model.item_index:
        return _in_park(state, session, k, exclude)
    scores = score_sessions(model, [session])
    if exclude:
        scores[0, [model.item_index[i] for i in exclude if i in model.item_index]] = -np.inf
    idx, vals = topk(scores, k)
    item_ids, items = model.item_ids, []
    for j, value in zip(idx[0].tolist(), vals[0].tolist(), strict=True):
        if np.isfinite(value):
            items.append({"item_id": item_ids[j], "name": state.names.get(item_ids[j]), "score": float(value),
                          "rank": len(items) + 1})
    return state.session_algo, items, None


def _in_park(state: ServedState, session: Session, k: int, exclude: set[str]):
    """The served model's scores for the user's history plus the trip, only the current attraction's park."""
    algo = state.served_model
    served, park = state.models[algo], state.parks.get(session.items[-1])
    outside = {i for i in served.item_ids if park is None or state.parks.get(i) != park}
    _, frame = recommend_with_events(served, session.user or "", dict.fromkeys(session.items, 1.0), k=k,
                                     exclude=exclude | outside)
    note = (f"the session model does not know park {park!r}: the served model's attractions of that park"
            if park is not None else "the session model does not know the attraction's park, nor does the run")
    return algo, state.items(frame), note


@router.get("/recommendations/{user_id}", response_model=Recommendations,
            responses={401: {"model": Error, "description": "an X-API-Key that is not configured"},
                       404: {"model": Error}, 422: {"model": Error}, 503: {"model": Error}},
            summary="Top-k attractions for a visitor")
async def recommendations(
    request: Request,
    user_id: Annotated[str, Path(min_length=1, max_length=200, description="visitor USER_ID")],
    state: Served,  # one reference read for the whole request: a reload mid-request cannot mix two runs
    k: Annotated[int, Query(ge=1, le=MAX_K, description="number of items")] = 10,
    model: Annotated[str | None, Query(max_length=50, description="another published model (default: served)")] = None,
    exclude: Annotated[list[str] | None, Query(max_length=200, description="item ids to leave out")] = None,
    at: Annotated[str | None, Query(min_length=1, max_length=200,
                                    description="the attraction the visitor stands at now (their trip's latest)")] = None,
):
    """Precomputed top-N of the served model when it can answer; otherwise the model scores in a thread.

    Unknown users get the context-free popular items with `cold_start: true`. With an API key, events posted for the
    user since the model was trained (POST /events, by any worker) are folded in and `events_applied` counts them;
    without a key a visitor's activity is neither used nor shown (`events_applied` null): answers scored from it
    would tell where the visitor was.

    A visitor on a trip now (their live events after the last gap longer than the session model's, the last one
    within that gap of now) or standing at `?at=` gets the run's session model's next attractions instead: the
    current attraction's park, never one of the trip; `context` gives the trip and `at`. Not with `model` naming
    another model, nor when the run has no session model (`context` null, as before).
    """
    algo = model or state.served_model
    if algo not in state.models:
        raise ApiError(422, f"model: unknown model {algo!r} (published: {', '.join(sorted(state.models))})",
                       ["model"])
    if at is not None and at not in state.catalogue:
        raise ApiError(422, f"at: unknown attraction {at!r} (not an attraction of run {state.run_id})", ["at"])
    trip_algo = state.session_algo
    if at is not None and model is not None and trip_algo is not None and model != trip_algo:
        raise ApiError(422, f"at: a trip is answered by the session model {trip_algo!r}, not {model!r} "
                            "(leave out model)", ["at"])
    excluded = parse_exclude(exclude)
    # a visitor's activity (the events posted since the run, the trip they are on) is neither shown nor used without
    # a key: answers scored from it (the trip's park, every attraction but the trip's) would tell where they were
    caller = optional_caller(request)
    if caller is not None:
        if state.events.behind():  # lines other workers appended: read in a thread, never on the event loop
            await run_in_threadpool(state.events.refresh)
        live = state.events.of(user_id)
    else:
        live = NO_EVENTS
    applied = b"null" if caller is None else b"0"
    if trip_algo is not None and model in (None, trip_algo):
        now = time.time()
        trip = current_trip(live.visits, float(state.session.params["gap_minutes"]), now)
        if trip or at is not None:
            session = trip_session(user_id, trip, at, now)
            answered_by, items, note = await run_in_threadpool(_next_in_trip, state, session, k, excluded)
            shown = caller is not None
            if trip:
                _audit_activity(caller, user_id)
            trip_items = list(dict.fromkeys(item for _, item in trip))
            context = {"session": {"items": trip_items, "events": len(trip)} if trip and shown else None, "at": at}
            if note is not None:
                context.update(park=state.parks.get(session.items[-1]), note=note)
            return OrjsonResponse({"user_id": user_id, "model": answered_by,
                                   "model_version": state.versions[answered_by],
                                   "cold_start": False, "items": items,
                                   "events_applied": len(trip) if shown else None, "context": context})
    if live.count:
        _audit_activity(caller, user_id)
        cold, items = await run_in_threadpool(_folded, state, algo, user_id, live.items, k, excluded)
        return OrjsonResponse({"user_id": user_id, "model": algo, "model_version": state.versions[algo],
                               "cold_start": cold, "items": items, "events_applied": live.count, "context": None})
    items = None
    cold = False
    if algo == state.served_model:
        if not excluded:  # the hot path: k of the stored items as they are
            stored = state.recs.items_json(user_id, k)
            if stored is not None:
                return _stored(state, user_id, algo, False, stored, applied)
        pre = state.recs.get(user_id)  # the user's entry decoded (exclude, or fewer stored than k)
        model_obj = state.models[algo]
        if pre is None and user_id not in model_obj.user_index:
            if not excluded and k <= len(state.popular_json):
                return _stored(state, user_id, algo, True, b"[" + b",".join(state.popular_json[:k]) + b"]", applied)
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
                           "cold_start": cold, "items": items, "events_applied": None if caller is None else 0,
                           "context": None})
