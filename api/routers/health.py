"""Liveness, readiness and the served version."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from c360.api.responses import OrjsonResponse

from ..dependencies import MaybeServed
from ..schemas import Health, Ready, Version

router = APIRouter(tags=["health"])


# HEAD as well (load-balancer health checks often send it), as its own operation so the schema stays unambiguous
@router.head("/healthz", include_in_schema=False)
@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz():
    """Always 200 while the process serves."""
    return OrjsonResponse({"status": "ok"})


@router.head("/readyz", include_in_schema=False)
@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}}, summary="Readiness")
async def readyz(state: MaybeServed):
    """200 when a published run is loaded (graph reachability reported, it does not gate readiness)."""
    if state is None:
        return OrjsonResponse({"ready": False, "run_id": None, "graph": False, "graph_error": None}, 503)
    graph = await run_in_threadpool(state.connection.ping)
    # no key is needed here, so the cause (file paths, the store spec) stays in the server log
    return OrjsonResponse({"ready": True, "run_id": state.run_id, "graph": graph,
                           "graph_error": None if graph else "graph store not reachable"})


@router.get("/version", response_model=Version, summary="What is served")
async def version(state: MaybeServed):
    """The served run and the versions of its models (nulls before the first publish)."""
    if state is None:
        return OrjsonResponse({"run_id": None, "served_model": None, "models": {}, "created_at": None})
    return OrjsonResponse({"run_id": state.run_id, "served_model": state.served_model, "models": dict(state.versions),
                           "created_at": state.manifest.get("created_at")})
