"""POST /events: durable before the answer, reflected by the next GET /recommendations of every worker (fold-in),
rejected whole when any event is bad, the writer role required, and still there after a crash of the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient

from c360.append_log import AppendLog
from c360.layout import Warehouse
from c360.settings import Settings
from tests import http
from tests.conftest import REPO, free_port

from .conftest import KEYS, PII, READER, WRITER, wait_ready


def app_client(warehouse) -> TestClient:
    from c360.api.app import create_app

    return TestClient(create_app(Settings(warehouse=warehouse, graph="networkx", api_keys=dict(KEYS))))


def log_bytes(warehouse) -> int:
    j = AppendLog(Warehouse(warehouse).events_log)
    return sum(j.path(s).stat().st_size for s in j.segments())


def recs(client, user: str, **params) -> dict:
    r = client.get(f"/recommendations/{user}", params={"k": 10, **params}, headers=READER)
    assert r.status_code == 200, r.text
    return r.json()


def event(user: str, item: str, value: float = 1, ago: int = 60) -> dict:
    """An event `ago` seconds before now (the accepted window is relative to now)."""
    return {"user_id": user, "item_id": item, "timestamp": int(time.time()) - ago, "event_value": value}


def test_recommendations_change_after_an_event_and_leave_the_visited_item_out(fresh_warehouse):
    with app_client(fresh_warehouse) as client:
        state = client.app.state.served
        user = next(u for u in state.recs if u in state.models["als"].user_index)
        before = recs(client, user)
        assert before["events_applied"] == 0 and not before["cold_start"]
        visited = before["items"][0]["item_id"]
        r = client.post("/events", json=event(user, visited, 3), headers=WRITER)
        assert r.status_code == 202 and r.json() == {"accepted": 1, "duplicates": 0}
        after = recs(client, user)
        assert after["events_applied"] == 1 and not after["cold_start"]
        assert visited not in [i["item_id"] for i in after["items"]]
        assert [i["item_id"] for i in after["items"]] != [i["item_id"] for i in before["items"]]
        assert [i["rank"] for i in after["items"]] == list(range(1, 11))
        # ALS solved the user's factors again from the longer history: the scores moved, not just the list
        scores = {i["item_id"]: i["score"] for i in before["items"]}
        assert any(abs(scores[i["item_id"]] - i["score"]) > 1e-6 for i in after["items"] if i["item_id"] in scores)
        other = recs(client, user, model="popularity")
        assert other["events_applied"] == 1 and visited not in [i["item_id"] for i in other["items"]]
        # a list, and a visitor the model never saw: personal from the first event on
        second = before["items"][1]["item_id"]
        assert client.post("/events", json=[event("new-visitor", visited), event("new-visitor", second, 2)],
                           headers=WRITER).json() == {"accepted": 2, "duplicates": 0}
        fresh = recs(client, "new-visitor")
        assert fresh["cold_start"] is False and fresh["events_applied"] == 2
        assert {visited, second}.isdisjoint(i["item_id"] for i in fresh["items"])
        assert recs(client, "nobody-else")["cold_start"] is True
        excluded = recs(client, "new-visitor", exclude=fresh["items"][0]["item_id"])
        assert fresh["items"][0]["item_id"] not in [i["item_id"] for i in excluded["items"]]


def test_bad_events_are_rejected_whole_and_nothing_is_written(fresh_warehouse):
    with app_client(fresh_warehouse) as client:
        state = client.app.state.served
        item = state.models["als"].item_ids[0]
        client.post("/events", json=event("u-1", item), headers=WRITER)
        size = log_bytes(fresh_warehouse)
        cases = [
            ([event("u-1", item), event("u-1", "nope:99")], "item_id", "nope:99"),
            ({"user_id": "u-1", "item_id": item}, "timestamp", "timestamp"),
            ({**event("u-1", item), "event_value": -1}, "event_value", "event_value"),
            ({**event("u-1", item), "event_value": "lots"}, "event_value", "event_value"),
            ({**event("u-1", item), "colour": "red"}, "colour", "colour"),
            ({**event("u-1", item), "user_id": ""}, "user_id", "user_id"),
            ([], "events", "empty"),
            ("just text", "event", "event"),
            ([event("u-1", item)] * 1001, "events", "at most 1000"),
        ]
        for body, field, text in cases:
            r = client.post("/events", json=body, headers=WRITER)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["fields"] == [field] and text in r.json()["message"], r.json()
        for raw in (b"{not json", b"w\xef\xbf!%", b"\xff\xfe"):
            r = client.post("/events", content=raw, headers={**WRITER, "content-type": "application/json"})
            assert r.status_code == 422 and r.json()["fields"] == ["body"], (raw, r.text)
        assert log_bytes(fresh_warehouse) == size
        assert recs(client, "u-1")["events_applied"] == 1


def test_a_body_not_sent_as_json_is_told_to_say_so(fresh_warehouse):
    """curl -d posts application/x-www-form-urlencoded: the body is never read as JSON, and the answer says what to
    send instead of only "Input should be a valid dictionary"."""
    with app_client(fresh_warehouse) as client:
        item = client.app.state.served.models["als"].item_ids[0]
        raw = json.dumps(event("u-3", item)).encode()
        for kind in ("application/x-www-form-urlencoded", "text/plain", None):
            headers = {**WRITER, **({"content-type": kind} if kind else {})}
            r = client.post("/events", content=raw, headers=headers)
            assert r.status_code == 422, (kind, r.text)
            assert "send the body with Content-Type: application/json" in r.json()["message"], (kind, r.json())
        r = client.post("/events", content=raw, headers={**WRITER, "content-type": "application/json"})
        assert r.status_code == 202, r.text
        r = client.post("/events", json={"user_id": "u-3", "item_id": item}, headers=WRITER)  # JSON, but bad
        assert r.status_code == 422 and "Content-Type" not in r.json()["message"], r.json()
        assert recs(client, "u-3")["events_applied"] == 1


def test_the_writer_role_is_needed(fresh_warehouse):
    with app_client(fresh_warehouse) as client:
        item = client.app.state.served.models["als"].item_ids[0]
        for headers, status in (({}, 401), ({"X-API-Key": "guess"}, 401), (READER, 403), (PII, 403)):
            r = client.post("/events", json=event("u-2", item), headers=headers)
            assert r.status_code == status, (headers, r.text)
        assert log_bytes(fresh_warehouse) == 0
        assert recs(client, "u-2")["events_applied"] == 0


def test_an_event_accepted_by_one_worker_is_reflected_by_every_other(fresh_warehouse):
    with app_client(fresh_warehouse) as a, app_client(fresh_warehouse) as b:
        user = next(iter(a.app.state.served.recs))
        top = recs(b, user)["items"][0]["item_id"]
        assert a.post("/events", json=event(user, top), headers=WRITER).status_code == 202
        seen = recs(b, user)  # no poll, no wait: b reads the log before it answers
        assert seen["events_applied"] == 1 and top not in [i["item_id"] for i in seen["items"]]


def serve(warehouse, port: int, workers: int = 1) -> subprocess.Popen:
    env = {**os.environ, "C360_API_KEYS": "w-key:writer", "C360_GRAPH": "networkx"}
    return subprocess.Popen([sys.executable, "-m", "c360", "serve", "--warehouse", str(warehouse), "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(30)


@pytest.mark.slow
def test_events_survive_a_crash_of_the_server_and_every_worker_reflects_them(fresh_warehouse):
    """Two uvicorn workers: events accepted by either are in every answer; the server is killed (SIGKILL, no
    shutdown) and started again: the events are still applied."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve(fresh_warehouse, port, workers=2)
    try:
        wait_ready(proc, port)
        user = http.get(f"{base}/recommendations/nobody-yet").json()["user_id"]
        items = [i["item_id"] for i in http.get(f"{base}/recommendations/{user}", params={"k": 5}).json()["items"]]
        for n, item in enumerate(items[:3], start=1):
            with http.client() as fresh_connection:  # a new connection each: the kernel spreads them over workers
                r = fresh_connection.post(f"{base}/events", json=event(user, item), headers={"X-API-Key": "w-key"})
            assert r.status_code == 202
            for _ in range(10):
                with http.client() as c:
                    body = c.get(f"{base}/recommendations/{user}", params={"k": 10},
                                 headers={"X-API-Key": "w-key"}).json()   # a key: events_applied is shown
                assert body["events_applied"] == n and set(items[:n]).isdisjoint(i["item_id"] for i in body["items"])
    finally:
        stop(proc, signal.SIGKILL)
    proc = serve(fresh_warehouse, port)
    try:
        wait_ready(proc, port)
        body = http.get(f"{base}/recommendations/{user}", params={"k": 10}, headers={"X-API-Key": "w-key"}).json()
        assert body["events_applied"] == 3 and set(items[:3]).isdisjoint(i["item_id"] for i in body["items"])
    finally:
        stop(proc)


def limited_client(warehouse, **realtime) -> TestClient:
    from c360.api.app import create_app

    return TestClient(create_app(Settings(warehouse=warehouse, graph="networkx", api_keys=dict(KEYS),
                                          realtime=realtime)))


def test_timestamps_values_and_ids_follow_the_event_rules(fresh_warehouse):
    """c360.events: a strict integer timestamp in [now - max_event_age_s, now + max_clock_skew_s], a value in
    (0, max_event_value], ids of the id pattern; each refused with the field named, nothing written."""
    with app_client(fresh_warehouse) as client:
        item = client.app.state.served.models["als"].item_ids[0]
        now = int(time.time())
        good = event("u-9", item)
        cases = [({**good, "timestamp": 0}, "timestamp"), ({**good, "timestamp": 2**40}, "timestamp"),
                 ({**good, "timestamp": True}, "timestamp"), ({**good, "timestamp": str(now)}, "timestamp"),
                 ({**good, "timestamp": now + 0.5}, "timestamp"),
                 ({**good, "timestamp": now - 31 * 86400}, "timestamp"),
                 ({**good, "timestamp": now + 3600}, "timestamp"), ({**good, "event_value": 1e6}, "event_value"),
                 ({**good, "event_value": True}, "event_value"), ({**good, "user_id": "=cmd|' /c calc'!A0"}, "user_id"),
                 ({**good, "user_id": "u" * 129}, "user_id"), ({**good, "event_id": "a,b"}, "event_id")]
        for body, field in cases:
            r = client.post("/events", json=body, headers=WRITER)
            assert r.status_code == 422 and r.json()["fields"] == [field], (body, r.text)
        assert log_bytes(fresh_warehouse) == 0
        ok = [good, {**good, "timestamp": now + 200, "event_value": 100, "event_id": "app:1@x-2.3_4"}]
        assert client.post("/events", json=ok, headers=WRITER).json() == {"accepted": 2, "duplicates": 0}


def test_a_retried_event_id_is_logged_once(fresh_warehouse):
    with app_client(fresh_warehouse) as a, app_client(fresh_warehouse) as b:
        item = a.app.state.served.models["als"].item_ids[0]
        batch = [{**event("u-r", item), "event_id": "e-1"}, {**event("u-r", item), "event_id": "e-2"}]
        assert a.post("/events", json=batch, headers=WRITER).json() == {"accepted": 2, "duplicates": 0}
        # the retry, at another worker: nothing logged twice; a new one and its copy in the request: logged once
        assert b.post("/events", json=batch, headers=WRITER).json() == {"accepted": 0, "duplicates": 2}
        again = [batch[0], {**event("u-r", item), "event_id": "e-3"}, {**event("u-r", item), "event_id": "e-3"}]
        assert b.post("/events", json=again, headers=WRITER).json() == {"accepted": 1, "duplicates": 2}
        journal = AppendLog(Warehouse(fresh_warehouse).events_log)
        assert len(journal.read_through(max(journal.segments()))) == 3
        # two workers that raced and both logged one: every worker reads it once
        a.app.state.served.events.append([{**event("u-r", item), "event_id": "e-3"}])
        assert recs(a, "u-r")["events_applied"] == 3 and recs(b, "u-r")["events_applied"] == 3


def test_an_event_id_is_one_user_s_key_and_no_writer_can_take_another_user_s(fresh_warehouse):
    with app_client(fresh_warehouse) as client:
        items = client.app.state.served.models["als"].item_ids
        taken = {**event("attacker", items[0]), "event_id": "app-000001"}
        assert client.post("/events", json=taken, headers=WRITER).json() == {"accepted": 1, "duplicates": 0}
        legit = {**taken, "user_id": "legit"}
        assert client.post("/events", json=legit, headers=WRITER).json() == {"accepted": 1, "duplicates": 0}
        # the same user's id again is their retry, whatever it carries: the first copy is kept
        retry = {**legit, "item_id": items[1], "timestamp": legit["timestamp"] - 5}
        assert client.post("/events", json=retry, headers=WRITER).json() == {"accepted": 0, "duplicates": 1}
        assert recs(client, "legit")["events_applied"] == 1 and recs(client, "attacker")["events_applied"] == 1


def test_a_user_beyond_the_quota_is_429_with_retry_after(fresh_warehouse):
    with limited_client(fresh_warehouse, max_user_events=5) as client:
        item = client.app.state.served.models["als"].item_ids[0]
        assert client.post("/events", json=[event("busy", item)] * 4, headers=WRITER).status_code == 202
        r = client.post("/events", json=[event("busy", item)] * 2, headers=WRITER)
        assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 3600, r.text
        assert client.post("/events", json=event("busy", item), headers=WRITER).status_code == 202
        assert client.post("/events", json=event("busy", item), headers=WRITER).status_code == 429
        assert client.post("/events", json=event("calm", item), headers=WRITER).status_code == 202
        assert recs(client, "busy")["events_applied"] == 5


def test_the_log_is_full_until_the_next_nightly(fresh_warehouse):
    """Events since the published run are bounded (the log, and what every worker holds): 507 beyond, nothing
    written; as many distinct users in one request as max_request_users."""
    with limited_client(fresh_warehouse, max_pending_events=10, max_request_users=3) as client:
        item = client.app.state.served.models["als"].item_ids[0]
        many = [event(f"u{i}", item) for i in range(4)]
        r = client.post("/events", json=many, headers=WRITER)
        assert r.status_code == 422 and r.json()["fields"] == ["user_id"], r.text
        assert client.post("/events", json=many[:3] * 3, headers=WRITER).status_code == 202
        size = log_bytes(fresh_warehouse)
        r = client.post("/events", json=many[:2], headers=WRITER)
        assert r.status_code == 507 and "full until the next nightly" in r.json()["message"], r.text
        assert log_bytes(fresh_warehouse) == size
        assert client.post("/events", json=many[:1], headers=WRITER).status_code == 202
        assert client.post("/events", json=many[:1], headers=WRITER).status_code == 507


def test_one_key_fills_only_its_share_of_the_log_and_every_event_names_its_key(fresh_warehouse):
    """A key, leaked or looping, cannot stop every other writer until the nightly: its events since the run are
    bounded by max_pending_per_key (507 for it alone); each logged event carries the hash of the key that posted it
    (a client cannot set it: 422)."""
    from c360.api.app import create_app
    from c360.api.audit import key_hash

    keys = {**KEYS, "second-writer-000": "writer"}
    other = {"X-API-Key": "second-writer-000"}
    app = create_app(Settings(warehouse=fresh_warehouse, graph="networkx", api_keys=keys,
                              realtime={"max_pending_events": 100, "max_pending_per_key": 5}))
    with TestClient(app) as client:
        item = client.app.state.served.models["als"].item_ids[0]
        assert client.post("/events", json=[event(f"k{i}", item) for i in range(5)], headers=WRITER).status_code == 202
        r = client.post("/events", json=event("k9", item), headers=WRITER)
        assert r.status_code == 507 and "this API key's share" in r.json()["message"], r.text
        assert client.post("/events", json=event("k9", item), headers=other).status_code == 202
        r = client.post("/events", json={**event("k8", item), "key": "0123456789ab"}, headers=other)
        assert r.status_code == 422, r.text
    logged = AppendLog(Warehouse(fresh_warehouse).events_log).read_through(10**9)
    assert [e["key"] for e in logged] == [key_hash(WRITER["X-API-Key"])] * 5 + [key_hash("second-writer-000")]
