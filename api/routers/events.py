"""POST /events: visits posted as they happen (role writer). Durable before the answer; every worker's next
GET /recommendations of the user reflects them (api.live_updates); the nightly trains on them (c360.jobs.live_intake)."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Body
from starlette.concurrency import run_in_threadpool

from c360.api.responses import OrjsonResponse
from c360.events import event_problem

from ..dependencies import WRITER_REQUIRED, AppSettings, Served, Writer
from ..errors import ApiError
from ..guard import GUARD_RESPONSES
from ..metrics import count_events
from ..schemas import Error, Events, EventsAccepted

log = logging.getLogger("c360.api.events")
# every route here writes: a key with the writer role, and the audit line of every keyed request
router = APIRouter(tags=["events"], dependencies=WRITER_REQUIRED, responses=GUARD_RESPONSES)


@router.post("/events", status_code=202, response_model=EventsAccepted,
             responses={401: {"model": Error}, 403: {"model": Error}, 422: {"model": Error}, 429: {"model": Error},
                        503: {"model": Error}, 507: {"model": Error}},
             summary="Record visits as they happen")
async def post_events(events: Annotated[Events, Body()], state: Served, settings: AppSettings, caller: Writer):
    """One event or a list, `{user_id, item_id, timestamp, event_value=1, event_id?}` (the rules of c360.events):
    202 once all of them are durable in the events log (written and fsync'd). Nothing is written when any of them is
    rejected (422 naming the field), when a user would exceed their quota (429, Retry-After) or when the log holds
    `realtime.max_pending_events` since the published run, or `realtime.max_pending_per_key` of this key (507 until
    the next nightly). An event whose `user_id` and `event_id` are in the log already (a retried request) is skipped
    and counted in `duplicates`. Each event is logged with the short hash of the key that posted it (`key`)."""
    batch = events if isinstance(events, list) else [events]
    if not batch:
        raise ApiError(422, "events: the list is empty", ["events"])
    rt = settings.realtime
    if len(batch) > rt.max_events:
        raise ApiError(422, f"events: {len(batch)} events in one request, at most {rt.max_events}", ["events"])
    records = [e.model_dump(exclude_none=True) for e in batch]
    now, bounds = time.time(), rt.bounds()
    for i, record in enumerate(records):
        problem = event_problem(record, now, bounds)
        if problem is not None:
            field = problem.split(":", 1)[0]
            raise ApiError(422, f"{problem} (event {i})", [field])
    users = len({r["user_id"] for r in records})
    if users > rt.max_request_users:
        raise ApiError(422, f"user_id: {users} users in one request, at most {rt.max_request_users}", ["user_id"])
    unknown = [(i, e.item_id) for i, e in enumerate(batch) if e.item_id not in state.catalogue]
    if unknown:
        where = ", ".join(f"{item!r} (event {i})" for i, item in unknown[:5])
        raise ApiError(422, f"item_id: unknown item {where}{' ...' if len(unknown) > 5 else ''}: not an attraction "
                            f"of run {state.run_id}", ["item_id"])
    for record in records:  # who posted it: accountability, and the key's share of the log
        record["key"] = caller.key_hash
    admission = await run_in_threadpool(state.events.admit, records, caller.key_hash)
    if admission.refused is not None:
        status, message, retry = admission.refused
        raise ApiError(status, message, headers={"Retry-After": str(retry)} if retry else None)
    try:
        await run_in_threadpool(state.events.append, admission.records)
    except OSError as exc:
        log.error("events not logged: %s", exc)
        raise ApiError(503, "the events log cannot be written") from None
    finally:
        state.events.logged(admission)
    count_events(len(admission.records), admission.duplicates)
    return OrjsonResponse({"accepted": len(admission.records), "duplicates": admission.duplicates}, status_code=202)
