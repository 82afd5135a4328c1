"""The review queue for data stewards (role `steward`): the next labeling sets with their records and the model's
reasons, the decisions on them (durable, idempotent, audited, effective at once: api.review_queue), and the one
static page people answer them in (`GET /review`: no data in it, the key is typed into the page)."""

from __future__ import annotations

import logging
from functools import cache
from importlib.resources import files
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse

from c360.decisions import pair_key
from c360.graph.schema import ACCOUNT_SOURCE

from ..dependencies import STEWARD_REQUIRED, Audit, Served, Steward
from ..errors import ApiError
from ..guard import GUARD_RESPONSES
from ..masking import mask_fields
from ..review_queue import ReviewQueue, ReviewSet, UnknownSet
from ..schemas import Decisions, DecisionsLogged, Error, ReviewNext
from ..state import ServedState

log = logging.getLogger("c360.api.review")


async def _no_store(response: Response) -> None:
    """Answers hold customers' records (masked or not) and who decided what: no cache, shared or the browser's."""
    response.headers["Cache-Control"] = "no-store"


router = APIRouter(tags=["review"], dependencies=[*STEWARD_REQUIRED, Depends(_no_store)], responses=GUARD_RESPONSES)
page = APIRouter(tags=["review"])

ERRORS = {401: {"model": Error}, 403: {"model": Error}, 422: {"model": Error}, 503: {"model": Error}}
MAX_SETS = 20


@cache
def _page() -> tuple[str, dict[str, str]]:
    """The page and its headers: a page that only ever talks to this API, no frame may hold it, nothing loads from
    elsewhere, and no script runs but its own (pinned by its hash: a value the API returns that reached the page as
    markup could not run)."""
    import base64
    import hashlib
    import re

    html = files("c360.api").joinpath("static/review.html").read_text(encoding="utf-8")
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode() if script else "none"
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; connect-src 'self'; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, {"Content-Security-Policy": csp, "X-Frame-Options": "DENY", "Cache-Control": "no-store",
                  "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def _queue(state: ServedState) -> ReviewQueue:
    if state.review is None:
        raise ApiError(503, "the served run has no review queue (no match output, or the queue failed to load)")
    return state.review


def _norm(value: Any) -> str:
    return " ".join(str(value).split()).lower() if value is not None else ""


def _agreement(a: dict[str, Any], b: dict[str, Any]) -> dict[str, str]:
    """Per field of two records: agree, differ or missing (either blank), on the unmasked values."""
    out = {}
    for field in dict.fromkeys([*a, *b]):
        if field == "source":
            continue
        x, y = _norm(a.get(field)), _norm(b.get(field))
        out[field] = "missing" if not x or not y else "agree" if x == y else "differ"
    return out


def _shown(s: ReviewSet, queue: ReviewQueue, pii: bool) -> dict[str, Any]:
    records = []
    for i, (rid, fields, by) in enumerate(zip(s.ids, s.fields, s.chosen_by, strict=True)):
        account = fields.get("source") == ACCOUNT_SOURCE
        mid = queue.match_of(rid)
        records.append({"position": i, "record_id": rid if pii or not account else f"account:{i}",
                        "match_id": None if mid is None else str(mid), "chosen_by": by,
                        "fields": fields if pii else mask_fields(fields)})
    return {"labeling_set_id": s.set_id, "chosen_by": s.stratum, "match_probability": s.match_probability,
            "pair": [0, 1], "records": records, "agreement": _agreement(s.fields[0], s.fields[1]),
            "explanation": queue.explain(s.ids[0], s.ids[1])}


@router.get("/review/next", response_model=ReviewNext, responses=ERRORS,
            summary="The next labeling sets nobody has decided (role steward)")
async def review_next(
    state: Served,
    caller: Steward,
    audit: Audit,
    n: Annotated[int, Query(ge=1, le=MAX_SETS, description="number of sets")] = 5,
):
    """Sets in the queue's order (shuffled once per run), each with its records side by side (SSNs, birth dates and
    contact fields masked unless the key's role has pii; so are park accounts' ids), which fields agree, and the
    model's reasons for the drawn pair. Every set shown is audited by its records' match ids."""
    queue = _queue(state)
    sets = await to_thread.run_sync(queue.pending, n, limiter=queue.deciding)
    pii = caller.allows("pii")
    body = [_shown(s, queue, pii) for s in sets]
    audit.answered(sorted({r["match_id"] for b in body for r in b["records"] if r["match_id"]}), pii=pii)
    remaining = await to_thread.run_sync(queue.remaining, limiter=queue.deciding)   # its lock: never on the loop
    return {"run_id": state.run_id, "remaining": remaining, "sets": body, "pii": pii}


@router.post("/review/decisions", response_model=DecisionsLogged, responses={404: {"model": Error}, **ERRORS},
             summary="Answer labeling sets: match, non-match or unsure (role steward)")
async def review_decisions(body: Decisions, state: Served, caller: Steward,
                           audit: Audit):
    """Each decision answers the set's drawn pair, or `pair` (two positions in the set). Logged durably before the
    answer (fsync'd, every worker reads it); the same answer again is `duplicate` and logs nothing. At once, until
    the next nightly retrains on it: `match` joins two customers (the larger keeps its id, the other answers 308 to
    it), `non-match` splits one along its weakest links (the larger part keeps the id). 404 names a set that is not
    in the served queue (nothing of the request is logged then)."""
    queue = _queue(state)
    answers, positions = [], []
    try:
        for d in body.decisions:
            s = queue.sets.get(d.labeling_set_id)
            if s is None:
                raise UnknownSet(f"labeling_set_id {d.labeling_set_id!r} is not in the served run's review queue")
            pair = (0, 1) if d.pair is None else (d.pair[0], d.pair[1])
            answers.append((d.labeling_set_id, s.pair(pair), d.label))
            positions.append(list(pair))
        if len({pair_key(*ids) for _, ids, _ in answers}) < len(answers):   # contradicting answers, or a flood
            raise ApiError(422, "decisions: name each pair of records once per request")
        results = await to_thread.run_sync(queue.decide, answers, caller.key_hash, limiter=queue.deciding)
    except UnknownSet as exc:
        raise ApiError(404, str(exc)) from None
    except OSError as exc:   # a full disk, the broker down: the decisions before it were logged (a retry repeats them)
        log.error("steward decisions not logged: %s", exc)
        raise ApiError(503, "the decisions log cannot be written") from None
    out = []
    for r, pair in zip(results, positions, strict=True):
        e = r["effect"]
        effect = None if not e else {"kind": "split" if e["new_match"] else "join", "from_match_id": str(e["from"]),
                                     "to_match_id": str(e["to"]), "records_moved": len(e["moved"])}
        out.append({"labeling_set_id": r["labeling_set_id"], "pair": pair, "label": r["label"],
                    "status": r["status"], "effect": effect})
    audit.answered(sorted({str(e[k]) for r in results if (e := r["effect"]) for k in ("from", "to")}))
    return {"decisions": out, "remaining": await to_thread.run_sync(queue.remaining, limiter=queue.deciding)}


@page.get("/review", response_class=HTMLResponse, include_in_schema=False)
async def review_page():
    """The stewards' page: static, no external script; it asks for the key once and keeps it for the tab only."""
    html, headers = _page()
    return HTMLResponse(html, headers=headers)
