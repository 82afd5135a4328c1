"""GET /metrics: the Prometheus scrape (api.metrics), for a key of any role, rate limited as the `metrics` group."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..dependencies import KEY_REQUIRED
from ..guard import GUARD_RESPONSES
from ..metrics import CONTENT_TYPE, exposition
from ..schemas import Error

# a key of any role (reader, pii and writer all grant reader); audited and rate limited like every keyed route
router = APIRouter(tags=["metrics"], dependencies=KEY_REQUIRED, responses=GUARD_RESPONSES)


# 200 is text (declared here); the errors answer JSON as everywhere (api.errors)
@router.get("/metrics", response_class=Response, summary="Prometheus metrics of every worker",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text format 0.0.4"},
                       401: {"model": Error}, 403: {"model": Error}})
async def metrics():
    """Requests by route template and status, their latencies, events accepted, matches and commits, the served
    run with its gate values and step seconds, reloads and the real-time logs' lag: summed or combined over every
    worker of `c360 serve`. No label holds a user, item or match id."""
    return Response(await run_in_threadpool(exposition), media_type=CONTENT_TYPE)
