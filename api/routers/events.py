"""POST /events: visits posted as they happen (role writer). Durable before the answer; every worker's next
GET /recommendations of the user reflects them (api.live); the nightly trains on them (c360.jobs.realtime)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Body
from starlette.concurrency import run_in_threadpool

from c360.api.responses import OrjsonResponse

from ..dependencies import WRITER_REQUIRED, AppSettings, Served
from ..errors import ApiError
from ..schemas import Error, Events, EventsAccepted

log = logging.getLogger("c360.api.events")
# every route here writes: a key with the writer role, and the audit line of every keyed request
router = APIRouter(tags=["events"], dependencies=WRITER_REQUIRED)


@router.post("/events", status_code=202, response_model=EventsAccepted,
             responses={401: {"model": Error}, 403: {"model": Error}, 422: {"model": Error}, 503: {"model": Error}},
             summary="Record visits as they happen")
async def post_events(events: Annotated[Events, Body()], state: Served, settings: AppSettings):
    """One event or a list, `{user_id, item_id, timestamp, event_value=1}`: 202 once all of them are durable in the
    events log (written and fsync'd). Nothing is written when any of them is rejected (422 naming the field)."""
    batch = events if isinstance(events, list) else [events]
    if not batch:
        raise ApiError(422, "events: the list is empty", ["events"])
    limit = settings.realtime.max_events
    if len(batch) > limit:
        raise ApiError(422, f"events: {len(batch)} events in one request, at most {limit}", ["events"])
    unknown = [(i, e.item_id) for i, e in enumerate(batch) if e.item_id not in state.catalogue]
    if unknown:
        where = ", ".join(f"{item!r} (event {i})" for i, item in unknown[:5])
        raise ApiError(422, f"item_id: unknown item {where}{' ...' if len(unknown) > 5 else ''}: not an attraction "
                            f"of run {state.run_id}", ["item_id"])
    records = [e.model_dump() for e in batch]
    try:
        await run_in_threadpool(state.events.append, records)
    except OSError as exc:
        log.error("events not logged: %s", exc)
        raise ApiError(503, "the events log cannot be written") from None
    return OrjsonResponse({"accepted": len(records)}, status_code=202)
