"""GET /attractions/{item_id}/similar: nearest attractions by learned item factors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from c360.api.responses import OrjsonResponse

from ..dependencies import Served
from ..errors import ApiError
from ..schemas import Error, SimilarAttractions

router = APIRouter(tags=["attractions"])


@router.get("/attractions/{item_id}/similar", response_model=SimilarAttractions,
            responses={404: {"model": Error}, 422: {"model": Error}}, summary="Similar attractions")
async def similar(
    item_id: Annotated[str, Path(min_length=1, max_length=200, description="attraction id park:poiID")],
    state: Served,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
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
