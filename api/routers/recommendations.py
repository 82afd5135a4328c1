"""GET /recommendations/{user_id}: the HTTP side of the serving decision (`c360.recsys.serving`). The handler
translates the request (parameters, the caller's key, the visitor's live events when the key may see them) into a
plan, audits a keyed read of a visitor's activity, runs a plan that scores in a worker thread and answers its JSON.

`StoredRecommendations` answers the hot request (no key, no query but `k`: the served model's stored top-k, no live
events used) at the ASGI level, before FastAPI routes and validates it: the same decision (`Serving.stored_json`),
the same bytes; any other request goes on to the handler.

A request with a key counts against that key's `recommendations` rate limit and daily quota (api.guard, before
the handler); one without a key is not counted here (the reverse proxy limits callers by address).

A visitor whose person has other accounts (the run's identities, or an account committed since that joined one for
certain) is answered with the live events of all of them when the key may see events (audited with the person's
match_id), and `identity` in the answer to a key: the person's match_id and how many accounts it has, their ids to a
`pii` key only (audited). Without a key no identity is shown (null), no other account's activity is used, and an
account committed since the run is answered as any id no model knows."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from c360.recsys.people import NULL
from c360.recsys.serving import MAX_K, Unanswerable

from ..audit import audit as audit_log
from ..dependencies import Principal, Served, api_key_header, optional_caller
from ..errors import ApiError
from ..guard import GUARD_RESPONSES
from ..metrics import ROUTE_KEY
from ..schemas import Error, Recommendations

router = APIRouter(tags=["recommendations"])

PREFIX = "/recommendations/"
ROUTE = "/recommendations/{user_id}"
MAX_USER_ID = 200
DEFAULT_K = 10
JSON = "application/json"


def parse_exclude(exclude: list[str] | None) -> set[str]:
    """`?exclude=a&exclude=b` or `?exclude=a,b` → a set of item ids."""
    out: set[str] = set()
    for value in exclude or ():
        out.update(part.strip() for part in value.split(",") if part.strip())
    return out


def _audit_activity(caller: Principal, user_id: str, person: str | None) -> None:
    """The audit line of a keyed read of a visitor's activity (their trip, the events since the run), with the
    person's match_id when the activity of the person's other accounts was used (their events, or their history lent
    to an account committed since the run)."""
    audit_log.info("visitor activity access", extra={"fields": {
        "endpoint": "GET /recommendations/{user_id}", "key": caller.key_hash, "role": caller.role,
        "user_id": user_id, "match_ids": [] if person is None else [person], "status": 200}})


def _audit_identity(caller: Principal, user_id: str, identity: bytes, pii: bool) -> None:
    """The audit line of an answer that names a visitor's person: its match_id (and to pii the other accounts). A
    reader walking account ids could rebuild which accounts are one person: every such answer is on record."""
    match_id = orjson.loads(identity)["match_id"]
    audit_log.info("person accounts access", extra={"fields": {
        "endpoint": "GET /recommendations/{user_id}", "key": caller.key_hash, "role": caller.role,
        "user_id": user_id, "match_ids": [match_id], "pii": pii, "status": 200}})


@router.get(ROUTE, response_model=Recommendations,
            responses={401: {"model": Error, "description": "an X-API-Key that is not configured"},
                       404: {"model": Error}, 422: {"model": Error}, 503: {"model": Error},
                       429: {**GUARD_RESPONSES[429], "description": "With an X-API-Key: over that key's rate limit "
                                                                    "or daily quota of the recommendations group"}},
            summary="Top-k attractions for a visitor")
async def recommendations(
    request: Request,
    user_id: Annotated[str, Path(min_length=1, max_length=MAX_USER_ID, description="visitor USER_ID")],
    state: Served,  # one reference read for the whole request: a reload mid-request cannot mix two runs
    k: Annotated[int, Query(ge=1, le=MAX_K, description="number of items")] = DEFAULT_K,
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

    An account of a person with other accounts (the run's identities, or committed since through POST
    /customers/match and joined to one of them, its match certain) is answered from the person: the stored answers
    were trained on the person's histories; with an API key the events of every account count (each other
    account's weighed as in training), never an attraction the person visited under any account, and an account
    with no history of its own gets the person's. With an API key `identity` says the person's match_id and
    account_count, and its account ids to a `pii` key only; null for an account with no other one, and null for
    every account without a key (the person is not named to the public); an account committed since the run
    is answered without a key as any id no model knows.
    """
    serving = state.serving
    try:
        serving.check(model, at)
    except Unanswerable as exc:
        raise ApiError(422, exc.message, [exc.field]) from None
    caller = optional_caller(request)  # 401 for a key that is not configured
    live = others = None  # without a key a visitor's activity is neither used nor shown (events_applied null)
    if caller is not None:  # nor their person: who belongs to whom matters to a key holder only
        if serving.people is not None and state.customers is not None and state.customers.behind():
            await run_in_threadpool(state.customers.refresh)  # accounts another worker committed
        if state.events.behind():  # lines other workers appended: read in a thread, never on the event loop
            await run_in_threadpool(state.events.refresh)
        live = state.events.of(user_id)
        others = {b: state.events.of(b) for b in serving.accounts_of(user_id)[1:]}  # the person's other accounts
    plan = serving.plan(user_id, k, model=model, exclude=parse_exclude(exclude), at=at, live=live, others=others)
    if plan.reads_activity:
        _audit_activity(caller, user_id, plan.person)
    pii = caller is not None and caller.allows("pii")
    identity = serving.identity_json(user_id, caller is not None, pii)
    if identity != NULL:
        _audit_identity(caller, user_id, identity, pii)
    answer = await run_in_threadpool(plan.run) if plan.blocking else plan.answer
    return Response(answer.json(user_id, identity), media_type=JSON)


class StoredRecommendations:
    """ASGI middleware: answers `GET /recommendations/{user_id}` with no X-API-Key and no query but `k` (1 to MAX_K)
    from `Serving.stored_json` when the answer is stored, before FastAPI routes the request; passes anything else
    (and a stored answer it lacks) on to the app. The bytes and headers are the handler's: the path and `k` are
    checked as the route's parameters are."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        body = self._stored(scope) if scope["type"] == "http" else None
        if body is None:
            return await self.app(scope, receive, send)
        scope[ROUTE_KEY] = ROUTE  # counted by api.metrics under the route's template (no route ran)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", JSON.encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _stored(scope) -> bytes | None:
        path = scope["path"]
        if scope["method"] != "GET" or not path.startswith(PREFIX) or scope.get("root_path"):
            return None
        user_id = path[len(PREFIX):]
        if not user_id or len(user_id) > MAX_USER_ID or "/" in user_id:
            return None
        k = _k_only(scope["query_string"])
        if k is None:
            return None
        if api_key_header(scope) is not None:  # a caller who may see the visitor's activity: the handler's
            return None
        state = scope["app"].state.served
        return None if state is None else state.serving.stored_json(user_id, k)


def _k_only(query: bytes) -> int | None:
    """`k` of a query string that is nothing but `k=<1..MAX_K>` (DEFAULT_K when empty); None otherwise."""
    if not query:
        return DEFAULT_K
    if not query.startswith(b"k=") or len(query) > 5 or not query[2:].isdigit() or query[2:3] == b"0":
        return None
    k = int(query[2:])
    return k if k <= MAX_K else None
