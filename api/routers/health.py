"""Liveness, readiness and the served version."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from c360.api.responses import OrjsonResponse

from ..schemas import Health, Ready, Version

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz():
    return OrjsonResponse({"status": "ok"})


def _ping(state) -> bool:
    try:
        return bool(state.graph is not None and state.graph.ping())
    except Exception:  # noqa: BLE001 - any failure means not reachable
        return False


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}}, summary="Readiness")
async def readyz(request: Request):
    """200 when a published run is loaded (graph reachability reported, it does not gate readiness)."""
    state = request.app.state.served
    if state is None:
        return OrjsonResponse({"ready": False, "run_id": None, "graph": False, "graph_error": None}, 503)
    graph = await run_in_threadpool(_ping, state)
    return OrjsonResponse({"ready": True, "run_id": state.run_id, "graph": graph,
                           "graph_error": None if graph else (state.graph_error or "graph store not reachable")})


@router.get("/version", response_model=Version, summary="What is served")
async def version(request: Request):
    state = request.app.state.served
    if state is None:
        return OrjsonResponse({"run_id": None, "served_model": None, "models": {}, "created_at": None})
    return OrjsonResponse({"run_id": state.run_id, "served_model": state.served_model, "models": state.versions,
                           "created_at": state.manifest.get("created_at")})
