"""Customer 360, a person's recommendations and search through the configured GraphStore (API key required; SSNs
and contact fields masked without pii; audited)."""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from c360.api.responses import OrjsonResponse
from c360.entity_resolution.online import input_record
from c360.errors import InputError
from c360.graph.schema import ACCOUNT_SOURCE
from c360.graph.store import MAX_RECOMMENDATIONS, TOP_RECOMMENDATIONS, GraphUnavailable

from ..dependencies import KEY_REQUIRED, AppSettings, Audit, Reader, Served, require
from ..errors import ApiError
from ..guard import GUARD_RESPONSES
from ..live_updates import CommitConflict
from ..masking import MASKED_FIELDS, mask_customer360, mask_search_hit
from ..schemas import (
    Customer360,
    CustomerRecommendations,
    CustomerRecordIn,
    Error,
    MatchResult,
    MergedMatch,
    SearchResult,
)
from ..state import ServedState

log = logging.getLogger("c360.api.graph")
# Every route here needs a key with the reader role and leaves an audit line: declared once, for the router.
router = APIRouter(tags=["customers"], dependencies=KEY_REQUIRED, responses=GUARD_RESPONSES)

AUTH_ERRORS = {401: {"model": Error}, 403: {"model": Error}, 422: {"model": Error}, 503: {"model": Error}}
MatchId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9]+$", description="match id")]
#: an id the published run merged answers 308 to the survivor (c360.entity_resolution.id_changes)
MOVED = {308: {"model": MergedMatch, "description": "merged into another match id: Location is its URL"}}


def _call(state: ServedState, method: str, *args, **kwargs):
    """Run a blocking GraphStore call (in a worker thread); GraphUnavailable / no store → ApiError 503, a value
    the store rejects (InputError, "field: why", e.g. a blank last_name) → 422 naming the field."""
    if state.customers is not None:  # records another worker committed: into this worker's embedded graph first
        state.customers.refresh()
    if state.review is not None:     # ... and the stewards' decisions
        state.review.refresh()
    store = state.connection.get()
    if store is None:  # the spec (a file path, a host) and the cause stay in the server log
        raise ApiError(503, "graph store unavailable")
    try:
        return getattr(store, method)(*args, **kwargs)
    except InputError as exc:
        field = str(exc).split(":", 1)[0]
        raise ApiError(422, str(exc), fields=[field] if field.isidentifier() else None) from None
    except GraphUnavailable as exc:
        log.warning("graph store %s unavailable: %s", state.graph_spec, exc)
        raise ApiError(503, "graph store unavailable") from None


def _merged(state: ServedState, request: Request, route: str, match_id: str) -> OrjsonResponse | None:
    """The 308 of an id the published run merged, or a steward's decision joined into another since (None for any
    other id): the same request for the survivor."""
    change = state.id_changes.get(match_id)
    survivor = change.survivor if change is not None else None
    if survivor is None and state.review is not None:   # joined into another by a steward since the run
        survivor = state.review.survivor(int(match_id))
    if survivor is None:
        return None
    survivor = str(survivor)
    url = request.url_for(route, match_id=survivor).replace(query=request.url.query or None)
    return OrjsonResponse({"match_id": match_id, "merged_into": survivor}, status_code=308,
                          headers={"Location": str(url)})


def _not_found(state: ServedState, match_id: str) -> ApiError:
    """404 for an unknown id, saying so when the published run retired it (none of its records is left)."""
    change = state.id_changes.get(match_id)
    if change is not None and change.change == "retired":
        return ApiError(404, f"match_id {match_id!r} was retired by run {state.run_id}: none of its records is "
                             f"left")
    return ApiError(404, f"match_id {match_id!r} not found")


def _split(state: ServedState, match_id: str) -> dict[str, list[str]]:
    """{"split_into": the ids of the parts that left it} for an id the published run split, else {}."""
    change = state.id_changes.get(match_id)
    return {"split_into": [str(x) for x in change.into]} if change is not None and change.change == "split" else {}


@router.get("/customer360/{match_id}", response_model=Customer360,
            responses={404: {"model": Error}, **MOVED, **AUTH_ERRORS}, summary="One customer across all source records")
async def customer360(
    match_id: MatchId,
    state: Served,
    caller: Reader,
    audit: Audit,
    request: Request,
    reveal_pii: Annotated[bool, Query(description="show SSNs unmasked (role pii only)")] = False,
):
    """The match with its source records, policies, vehicles and addresses, its theme-park app accounts, a summary
    of their visits per park and their recommendations merged (one graph traversal).

    SSNs and contact fields (api.masking: the accounts' too) are masked (`***-**-1234`, `***@example.com`) unless
    the key's role is `pii`; `reveal_pii=true` with a reader key is 403. An id the published run merged into another
    answers 308 to the survivor (`{match_id, merged_into}`); one it split answers its largest part, which kept the
    id, and lists the others in `split_into`; one it retired is 404 saying so.
    """
    audit.answered([match_id])  # a miss (404) is audited with the id asked for
    if reveal_pii:
        require(caller, "pii")
    moved = _merged(state, request, "customer360", match_id)
    if moved is not None:
        return moved
    result = await run_in_threadpool(_call, state, "customer360", match_id)
    if (moved := _merged(state, request, "customer360", match_id)) is not None:   # a join _call just read
        return moved
    if result is None:
        raise _not_found(state, match_id)
    pii = caller.allows("pii")
    body = result if pii else mask_customer360(result)
    match = str(body.get("match_id", match_id))
    audit.answered([match], pii=pii)
    return OrjsonResponse({**body, "match_id": match, "pii": pii, **_split(state, match_id)})


@router.get("/customers/{match_id}/recommendations", response_model=CustomerRecommendations,
            responses={404: {"model": Error}, **MOVED, **AUTH_ERRORS},
            summary="A person's theme-park recommendations, over all their app accounts")
async def customer_recommendations(
    match_id: MatchId,
    state: Served,
    audit: Audit,
    request: Request,
    k: Annotated[int, Query(ge=1, le=MAX_RECOMMENDATIONS, description="number of items")] = TOP_RECOMMENDATIONS,
):
    """The recommended attractions of the person's park accounts merged: each attraction once with its best score,
    never one the person visited under any account, best first (the traversal of the customer 360's
    `recommendations`). 404 for an unknown match_id; a match without accounts has no items. Merged, split and
    retired ids answer as in GET /customer360/{match_id}."""
    audit.answered([match_id])
    moved = _merged(state, request, "customer_recommendations", match_id)
    if moved is not None:
        return moved
    result = await run_in_threadpool(_call, state, "recommendations", match_id, k)
    if (moved := _merged(state, request, "customer_recommendations", match_id)) is not None:   # ... just read
        return moved
    if result is None:
        raise _not_found(state, match_id)
    return OrjsonResponse({"match_id": str(result["match_id"]), "items": result["items"], **_split(state, match_id)})


@router.get("/customers/search", response_model=SearchResult, responses=AUTH_ERRORS,
            summary="Find match ids by name (and date of birth)")
async def search(
    state: Served,
    caller: Reader,
    audit: Audit,
    last_name: Annotated[str, Query(min_length=1, max_length=100)],
    first_name: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    date_of_birth: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")] = None,
):
    """Case-insensitive name search; values are passed to the store as parameters, never into query text. Birth
    dates show their year only unless the key's role is `pii`, and only `pii` may filter by one (a filter that
    answers whether a guessed date is right reveals the date a reader sees masked)."""
    if date_of_birth is not None:
        require(caller, "pii")
    hits = await run_in_threadpool(_call, state, "search", last_name, first_name=first_name,
                                   date_of_birth=date_of_birth)
    pii = caller.allows("pii")
    matches = [{**(h if pii else mask_search_hit(h)), "match_id": str(h["match_id"])} for h in hits]
    audit.answered([m["match_id"] for m in matches], pii=pii)  # names and birth dates, never SSNs
    return OrjsonResponse({"matches": matches})


def _finite(x):
    return x if x is None or math.isfinite(x) else None


def _record_fields(state: ServedState, record, min_fields: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the request's fields by role and column name (attributes: the config's other columns), the standardized
    record); 422 for an attribute the config does not have, for a record with no field the model compares, for a
    value that cannot be read, for fewer than `min_fields` compared fields (one weak field, a phone or an SSN alone,
    must not list the customers who have it)."""
    live = state.customers
    cfg = live.matcher.cfg
    fields = record.model_dump(exclude_none=True, exclude={"id", "attributes"})
    columns = {f.column for f in cfg.fields if not f.role}
    for key, value in (record.attributes or {}).items():
        if key not in columns:
            raise ApiError(422, f"attributes.{key}: not a column the match config compares "
                                f"({', '.join(sorted(columns)) or 'it compares roles only'})", [f"attributes.{key}"])
        fields[key] = value
    compared = {f.role or f.column for f in cfg.fields}
    if not compared & set(fields):
        raise ApiError(422, f"record: none of the fields the model compares is given ({', '.join(sorted(compared))})",
                       sorted(compared))
    std, bad = live.matcher.standardize(input_record(fields, cfg))
    if bad:
        names = {f.column: f.role or f.column for f in cfg.fields}
        named = [names.get(c, c) for c in bad]
        raise ApiError(422, "; ".join(f"{n}: cannot be read as the config's format" for n in named), named)
    given = compared & {k for k, v in fields.items() if v}
    if len(given) < min_fields:
        missing = sorted(compared - given)
        raise ApiError(422, f"record: at least {min_fields} of the fields the model compares are required, "
                            f"{len(given)} given (add some of: {', '.join(missing)})", missing)
    return fields, std


@router.post("/customers/match", response_model=MatchResult, responses={409: {"model": Error}, **AUTH_ERRORS},
             summary="Match one customer record (and commit it)")
async def match_customer(
    record: CustomerRecordIn,
    state: Served,
    caller: Reader,
    audit: Audit,
    settings: AppSettings,
    commit: Annotated[bool, Query(description="add the record (role writer): it joins the match_id it matched, "
                                              "or gets a new one, at once and after the next nightly")] = False,
):
    """Score the record with the published Splink model against the candidates its blocking keys find (the run's
    records and those committed since): the best at or above the run's threshold names its `match_id`. Returns no
    personal data: match ids and probabilities, and (role pii only) which comparison level each field reached.
    Roles pii or writer; at least `realtime.min_match_fields` compared fields. For a caller without pii the fields
    it sees masked (api.masking.MASKED_FIELDS) count only when equal (any other level as if they were missing)."""
    live = _live_matcher(state, caller, record, commit)
    fields, std = _record_fields(state, record, settings.realtime.min_match_fields)
    n = settings.realtime.candidates
    # the fields a caller without pii sees masked count only when equal: how close a guess came is an oracle
    exact = () if caller.allows("pii") else MASKED_FIELDS
    if commit:
        answer, mid, new, in_graph = await _commit(live, fields, record.id, n, exact, caller.key_hash)
    else:
        # on the event loop: about a millisecond of pure Python, which a thread would only hand the GIL back and forth
        # for (16 concurrent clients through the threadpool measured 131 requests/s and p99 0.5 s; inline, see
        # benchmarks/results/realtime.md)
        answer = live.match(fields, n, std=std, exact_fields=exact)
        mid, new, in_graph = answer.match_id, None, None
    candidates = [{"match_id": str(m), "match_probability": p} for m, p in answer.candidates]
    audit.answered([c["match_id"] for c in candidates] + ([str(mid)] if commit and new else []))
    explanation = _explanation(answer.explanation, caller.allows("pii"))
    held = answer.held_back and {**answer.held_back, "match_id": str(answer.held_back["match_id"])}
    return OrjsonResponse({"match_id": None if mid is None else str(mid), "match_probability": answer.match_probability,
                           "candidates": candidates, "explanation": explanation, "committed": commit,
                           "record_id": record.id if commit else None, "new_match": new, "in_graph": in_graph,
                           "reason": _committed_reason(answer.reason, commit, new, mid), "held_back": held})


def _committed_reason(reason: str, commit: bool, new: bool | None, mid) -> str:
    """The matcher's reason, and what committing did."""
    if commit and new:
        return f"{reason}; committed as a new customer, match {mid}"
    return f"{reason}; committed into match {mid}" if commit else reason


def _live_matcher(state: ServedState, caller, record: CustomerRecordIn, commit: bool):
    """The served run's live matcher, once the caller's role allows the request (403) and there is one (503), and a
    record to commit has an id (422) that is no park account with visits in the run (409)."""
    if commit:
        require(caller, "writer")
    elif not (caller.allows("pii") or caller.allows("writer")):
        raise ApiError(403, "this API key's role does not allow matching records: pii or writer (a reader looks "
                            "customers up with /customers/search)")
    live = state.customers
    if live is None:
        raise ApiError(503, "the published run has no match model to match against")
    if commit and not record.id:
        raise ApiError(422, "id: required with commit=true (the record's id, e.g. 77001-property)", ["id"])
    if commit and _id_repeats_a_field(record):
        raise ApiError(422, "id: must not be the record's e-mail, phone number or SSN (a record id is logged and "
                            "shown to readers)", ["id"])
    if commit and record.source == ACCOUNT_SOURCE and str(record.id) in state.models[state.served_model].user_index:
        # an account with visits in the run: a record committed under its id would join it, and its history, to
        # whomever the record resembles; its own record comes with the accounts table, and the nightly matches it
        raise ApiError(409, f"id: the park account {record.id!r} has visits in the published run; its record comes "
                            f"with the accounts table", ["id"])
    return live


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


def _id_repeats_a_field(record: CustomerRecordIn) -> bool:
    """Whether the record's id is its own e-mail, phone number or SSN (digits compared): an id is in the audit and
    access logs, in every answer that names the record and, for a park account, in the public recommendations'
    path, none of which may hold contact data."""
    rid = str(record.id)
    email = getattr(record, "email", None)
    if email and rid.strip().lower() == str(email).strip().lower():
        return True
    digits = _digits(rid)
    return len(digits) >= 7 and any(value and _digits(value) == digits
                                    for value in (getattr(record, "home_phone", None), getattr(record, "ssn", None)))


async def _commit(live, fields: dict[str, Any], record_id: str, n: int, exact, key: str) -> tuple:
    """Match and commit the record in a worker thread (it writes the customers log, with the committing key's
    hash): (answer, match id, whether the match is new, whether the record is in the graph); 409 for an id that
    exists, 503 when the log cannot be written."""
    try:
        return await run_in_threadpool(live.commit, fields, record_id, n, exact, key)
    except CommitConflict:
        raise ApiError(409, f"id: a record {record_id!r} exists already", ["id"]) from None
    except OSError as exc:
        log.error("customer record not committed: %s", exc)
        raise ApiError(503, "the customers log cannot be written") from None


def _explanation(explanation: dict[str, Any], pii: bool) -> dict[str, Any]:
    """The answer's explanation as JSON can carry it (infinite weights as null); which level each field reached
    (exact, one edit away, ...) is an oracle for the stored values: pii only."""
    explanation = dict(explanation)
    explanation["match_weight"] = _finite(explanation.get("match_weight"))
    explanation["comparisons"] = [{**c, "match_weight": _finite(c["match_weight"])}
                                  for c in explanation.get("comparisons", [])] if pii else []
    return explanation
