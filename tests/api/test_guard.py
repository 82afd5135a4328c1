"""Before a body is read: the key of a keyed route (401), its rate limits (429) and the body cap (413), under
FastAPI's TestClient and at the ASGI level (api.guard, api.limits); every keyed request audited once; no redirect
built from the Host header."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from fastapi.testclient import TestClient

from c360.api.app import create_app
from c360.api.audit import key_hash
from c360.api.dependencies import PUBLIC_PATHS, api_routes
from c360.events import ID_MAX_LENGTH
from c360.settings import Settings, load_settings

from .conftest import KEYS, PII, READER, WRITER

MIB = 2**20


def _app(warehouse, **api) -> object:
    return create_app(Settings(warehouse=warehouse, graph="networkx", api_keys=dict(KEYS), api=api),
                      reload_interval=60)


def _asgi(app, method: str, path: str, headers: dict, chunks: list[bytes],
          query: bytes = b"") -> tuple[int, dict, bytes, int]:
    """Call `app` with a body sent in `chunks`: (status, headers, body, body bytes the app took)."""
    taken = {"bytes": 0}
    pending = list(chunks)
    sent: list[dict] = []

    async def receive():
        if not pending:
            return {"type": "http.disconnect"}
        chunk = pending.pop(0)
        taken["bytes"] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": query, "root_path": "", "scheme": "http",
             "server": ("test", 80), "client": ("127.0.0.1", 1),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body, taken["bytes"]


def _audit(caplog) -> list[dict]:
    return [r.fields for r in caplog.records if r.name == "c360.api.audit"]


def test_a_keyed_route_answers_401_before_reading_the_body(warehouse, caplog):
    app = _app(warehouse)
    big = [b"[" + b'{"user_id": "u", "item_id": "i", "timestamp": 1}, ' * 20000] * 8  # 8 chunks of 1 MB
    for headers in ({}, {"X-API-Key": "not-issued"}):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="c360.api.audit"):
            status, head, body, taken = _asgi(app, "POST", "/events", {"content-type": "application/json", **headers},
                                              big)
        assert status == 401 and taken == 0, (status, taken)
        assert head["www-authenticate"] == "APIKey" and json.loads(body)["error"] == "unauthorized"
        assert [(a["endpoint"], a["key"], a["status"]) for a in _audit(caplog)] == [("POST /events", None, 401)]
    # also the reads: no body of a keyed GET is read without a key
    status, _, _, taken = _asgi(app, "GET", "/customer360/17", {}, [b"x" * MIB])
    assert (status, taken) == (401, 0)


def test_a_key_without_the_route_s_role_is_403_before_reading_the_body(warehouse, caplog):
    """The role a route's dependencies require is checked with the key, before the body: a reader's 500 KB of
    garbage to POST /events is refused with the dependency's 403, unread; a writer's is read and is a 422."""
    app = _app(warehouse)
    garbage = [b"x" * (100 * 1024)] * 5
    head = {"content-type": "application/json", "content-length": str(500 * 1024)}
    for headers in (READER, PII):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="c360.api.audit"):
            status, _, body, taken = _asgi(app, "POST", "/events", {**head, **headers}, garbage)
        assert (status, taken) == (403, 0), (status, taken, body)
        assert json.loads(body) == {"error": "forbidden", "message": "this API key's role does not allow 'writer'"}
        assert [(a["endpoint"], a["key"], a["status"]) for a in _audit(caplog)] == [
            ("POST /events", key_hash(headers["X-API-Key"]), 403)]
    status, _, body, taken = _asgi(app, "POST", "/events", {**head, **WRITER}, garbage)
    assert (status, taken) == (422, 500 * 1024), (status, body)
    # the writer role a commit needs (POST /customers/match?commit=true) is the endpoint's to check, after the body
    status, _, body, taken = _asgi(app, "POST", "/customers/match", {**head, **PII}, garbage, query=b"commit=true")
    assert (status, taken) == (422, 500 * 1024), (status, body)


def test_a_body_over_the_cap_is_413_by_its_length_and_as_it_streams(warehouse, caplog):
    cap = 64 * 1024
    app = _app(warehouse, max_body_bytes=cap)
    # by Content-Length: not read at all, on a keyed route (with a valid key) as on a public one
    for path, headers in (("/events", WRITER), ("/recommendations/u", {})):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="c360.api.audit"):
            status, head, body, taken = _asgi(app, "POST", path, {**headers, "content-length": str(cap + 1)},
                                              [b"x" * (cap + 1)])
        assert (status, taken) == (413, 0) and head["connection"] == "close", (path, status, body)
        if path == "/events":  # audited like any keyed request
            assert [(a["key"], a["status"]) for a in _audit(caplog)] == [(key_hash(WRITER["X-API-Key"]), 413)]
    # streamed without a length: refused once past the cap, not read to its end
    chunks = [b"[" + b" " * (16 * 1024)] + [b" " * (16 * 1024)] * 63
    status, head, body, taken = _asgi(app, "POST", "/events", {**WRITER, "content-type": "application/json",
                                                               "transfer-encoding": "chunked"}, chunks)
    assert status == 413 and cap < taken <= cap + 16 * 1024, (status, taken, body)
    with TestClient(app) as client:  # the same through FastAPI's TestClient (a streamed body: chunked)
        r = client.post("/events", content=iter([b"[" + b" " * (cap // 2)] * 3), headers={
            **WRITER, "content-type": "application/json"})
        assert r.status_code == 413 and r.json()["message"] == f"request body larger than {cap} bytes"
        assert client.post("/events", content=b"x" * (cap + 1), headers=WRITER).status_code == 413


def test_the_largest_events_batch_fits_the_default_cap(client):
    """realtime.max_events events of the longest ids and numbers, as json.dumps writes them, are below
    api.max_body_bytes with room to spare (and not refused for their size)."""
    settings = client.app.state.settings
    longest = "a" * ID_MAX_LENGTH
    one = {"user_id": longest, "item_id": longest, "timestamp": 1_764_590_400, "event_value": 99.99999999999999,
           "event_id": longest}
    body = json.dumps([one] * settings.realtime.max_events, indent=1).encode()
    assert len(body) < 0.75 * settings.api.max_body_bytes, len(body)
    r = client.post("/events", content=body, headers={**WRITER, "content-type": "application/json"})
    assert r.status_code not in (413, 202), r.text  # unknown attractions: refused whole, for another reason


def test_rate_limits_answer_429_with_retry_after_and_are_audited(warehouse, caplog):
    app = _app(warehouse, rate_limits={"lookup": {"per_second": 0.01, "burst": 2},
                                       "match": {"per_day": 1, "per_second": 1000}})
    with TestClient(app) as client:
        with caplog.at_level(logging.INFO, logger="c360.api.audit"):
            statuses = [client.get("/customer360/17", headers=READER).status_code for _ in range(2)]
            r = client.get("/customers/search", params={"last_name": "lopez"}, headers=READER)  # same group
        assert statuses == [200, 200] and r.status_code == 429, r.text
        assert 1 <= int(r.headers["retry-after"]) <= 100 and r.json()["message"].startswith("rate limit")
        assert [a["status"] for a in _audit(caplog)] == [200, 200, 429]
        assert _audit(caplog)[-1]["key"] == key_hash(READER["X-API-Key"])
        # per key: another key has its own bucket; public endpoints have none
        assert client.get("/customer360/17", headers=WRITER).status_code == 200
        assert all(client.get("/recommendations/u").status_code == 200 for _ in range(5))
        # the daily quota: one match a day, then 429 until the next UTC midnight
        record = {"first_name": "Maria", "last_name": "Lopez", "date_of_birth": "1980-04-02", "city": "Springfield"}
        first = client.post("/customers/match", json=record, headers=READER)
        assert first.status_code != 429, first.text
        r = client.post("/customers/match", json=record, headers=READER)
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 86400
        assert "daily quota" in r.json()["message"]


def test_a_keys_recommendations_count_against_its_recommendations_limit(warehouse, caplog):
    """GET /recommendations with a key uses the visitor's live events and names their person: the key's requests
    count against its `recommendations` group (429 with Retry-After, audited, before the handler runs); requests
    without a key, or with one that is not configured (the route's 401), are not counted."""
    app = _app(warehouse, rate_limits={"recommendations": {"per_second": 0.01, "burst": 2}})
    with TestClient(app) as client:
        with caplog.at_level(logging.INFO, logger="c360.api.audit"):
            statuses = [client.get("/recommendations/u", headers=READER).status_code for _ in range(2)]
            r = client.get("/recommendations/u", params={"k": 3}, headers=READER)
        assert statuses == [200, 200] and r.status_code == 429, r.text
        assert 1 <= int(r.headers["retry-after"]) <= 100
        assert r.json()["message"].startswith("rate limit of this API key for recommendations requests")
        assert [a for a in _audit(caplog) if a["status"] == 429] == [
            {"endpoint": "GET /recommendations/{user_id}", "key": key_hash(READER["X-API-Key"]), "role": "reader",
             "match_ids": [], "matches": 0, "pii": False, "status": 429}]
        assert client.get("/recommendations/u", headers=WRITER).status_code == 200  # per key
        assert all(client.get("/recommendations/u").status_code == 200 for _ in range(5))  # no key: not counted
        unknown = [client.get("/recommendations/u", headers={"X-API-Key": "not-a-key"}) for _ in range(3)]
        assert [r.status_code for r in unknown] == [401] * 3
        # the guard reads the key as the handler does: padded, the same key and bucket; the first of two headers
        # (empty: no key, the public answer, not counted)
        padded = client.get("/recommendations/u", headers={"X-API-Key": f" {READER['X-API-Key']} "})
        assert padded.status_code == 429, padded.text
        two = client.get("/recommendations/u", headers=[("X-API-Key", ""), ("X-API-Key", READER["X-API-Key"])])
        assert two.status_code == 200 and two.json()["identity"] is None, two.text
        assert client.get("/customer360/17", headers=READER).status_code == 200  # another group
        assert client.get("/attractions/1/similar", headers=READER).status_code != 429  # a public route not counted


def test_the_rate_limiter_refills_and_resets_each_day():
    from c360.api.limits import RateLimiter
    from c360.settings import RateLimit

    now = {"clock": 0.0, "wall": 86400 * 100 + 3600.0}
    limiter = RateLimiter({"lookup": RateLimit(per_second=2, burst=3, per_day=5)},
                          clock=lambda: now["clock"], wall=lambda: now["wall"])
    assert [limiter.check("k", "lookup") for _ in range(3)] == [None] * 3
    refusal = limiter.check("k", "lookup")
    assert refusal is not None and refusal.retry_after == 1
    assert limiter.check("other", "lookup") is None  # per key
    now["clock"] += 1.0  # two tokens back
    assert [limiter.check("k", "lookup") is None for _ in range(3)] == [True, True, False]
    now["clock"] += 10.0
    refusal = limiter.check("k", "lookup")  # 5 taken today: the quota, until midnight UTC
    assert refusal is not None and refusal.retry_after == 86400 - 3600 and "daily quota" in refusal.message
    now["wall"] += 86400 - 3600  # the next day
    assert limiter.check("k", "lookup") is None
    assert limiter.check("k", "events") is None  # a group without limits


def test_every_keyed_route_has_a_rate_limit_group():
    from c360.api.limits import GROUPS, KEYED_PUBLIC_GROUPS
    from c360.settings import RATE_LIMITS

    app = create_app(Settings(api_keys=dict(KEYS)))
    keyed = {route.path for route in api_routes(app) if route.path not in PUBLIC_PATHS}
    assert keyed == set(GROUPS)
    # and the public routes that answer a key more count that key's requests
    assert set(KEYED_PUBLIC_GROUPS) <= PUBLIC_PATHS & {route.path for route in api_routes(app)}
    groups = set(GROUPS.values()) | set(KEYED_PUBLIC_GROUPS.values())
    assert groups == set(RATE_LIMITS) == set(Settings().api.rate_limits)


def test_rate_limit_settings_keep_the_defaults_of_what_is_not_given():
    from c360.settings import RATE_LIMITS, RateLimit

    api = load_settings(env={}, overrides={"api": {"rate_limits": {"match": {"per_day": None}}}}).api
    assert api.rate_limits["match"] == RateLimit(**{**RATE_LIMITS["match"], "per_day": None})
    assert api.rate_limits["lookup"] == RateLimit(**RATE_LIMITS["lookup"])
    from c360.errors import InputError

    with pytest.raises(InputError, match="rate_limits"):
        load_settings(env={}, overrides={"api": {"rate_limits": {"export": {"per_second": 1}}}})
    assert load_settings(env={"C360_LOG_LEVEL": "warning"}).api.log_level == "warning"


def test_no_redirect_is_built_from_the_host_header(client):
    r = client.get("/healthz/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 404 and "location" not in r.headers
    assert client.get("/healthz").status_code == 200


def test_the_keyed_routes_document_413_and_429(settings):
    documented = settings.model_copy(update={"api": settings.api.model_copy(update={"docs": True})})
    schema = TestClient(create_app(documented)).get("/openapi.json").json()
    for path, method in (("/customer360/{match_id}", "get"), ("/customers/search", "get"),
                         ("/customers/{match_id}/recommendations", "get"),
                         ("/customers/match", "post"), ("/events", "post")):
        responses = schema["paths"][path][method]["responses"]
        assert {"413", "429"} <= set(responses), path
        if path != "/events":  # (whose route declares a 429 of its own, which takes precedence)
            assert "Retry-After" in responses["429"]["headers"], path
    # a public route, whose requests with a key count against the key's limits
    assert "Retry-After" in schema["paths"]["/recommendations/{user_id}"]["get"]["responses"]["429"]["headers"]
