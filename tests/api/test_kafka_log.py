"""The real-time logs on Kafka (realtime.log: kafka://HOST:PORT/TOPIC), against a real broker (`c360 kafka start`):
two `c360 serve` processes on two warehouse directories (two hosts) share one broker; an event is acknowledged (202)
once the broker has it and reflected by the other host; a restarted server catches up from the topic; with the broker
down POST /events answers 503 and GET keeps serving; the nightly's intake records the offset it read to and the next
run starts there."""

from __future__ import annotations

import time
import uuid

import pytest
import yaml

from c360.jobs import live_intake
from c360.jobs.pipeline import RunContext
from c360.layout import Warehouse
from c360.realtime_log import warehouse_log
from c360.settings import Settings
from tests import http
from tests.conftest import run_cli

from .conftest import KEYS, PII, READER, WRITER, private_copy, publish, serve_two_workers, wait_ready
from .test_customers_match import NEW

pytestmark = [pytest.mark.jvm, pytest.mark.slow]

TS = 1764590400


@pytest.fixture(scope="module")
def log_spec(kafka_url) -> str:
    return f"{kafka_url}/events-{uuid.uuid4().hex[:8]}"   # a topic of this module's own


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, warehouse, log_spec):
    """Two servers ("hosts" A and B), each on its own copy of the published warehouse, sharing the broker; a config
    file gives the log and a short delivery timeout. Yields ({name: [base URL, warehouse, config]}, restart(name));
    stopped afterwards."""
    started = {}
    out = {}

    def start(name: str, wh, config):
        proc, port, base = serve_two_workers(wh, wh.parent / f"{name}.log",
                                             {"C360_API_KEYS": ",".join(f"{k}:{r}" for k, r in KEYS.items()),
                                              "C360_GRAPH": "networkx", "C360_CONFIG": str(config)},
                                             "C360_REALTIME_LOG", "C360_LOG_LEVEL")
        wait_ready(proc, port, timeout=120)
        started[name] = proc
        return base

    def restart(name: str) -> str:
        proc = started.pop(name)
        proc.terminate()
        proc.wait(timeout=30)
        out[name][0] = start(name, *out[name][1:])
        return out[name][0]

    for name in ("a", "b"):
        d = tmp_path_factory.mktemp(f"host-{name}")
        wh = private_copy(d, warehouse, "run-1")
        config = d / "c360.yaml"
        config.write_text(yaml.safe_dump({"realtime": {"log": log_spec, "log_timeout_s": 2.0}}))
        out[name] = [start(name, wh, config), wh, config]
    try:
        yield out, restart
    finally:
        for proc in started.values():
            proc.terminate()
        for proc in started.values():
            proc.wait(timeout=30)


def recs(base: str, user: str) -> dict:
    r = http.get(f"{base}/recommendations/{user}", params={"k": 5}, headers=READER, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_an_event_acknowledged_by_one_host_is_reflected_by_the_other_and_by_a_restarted_one(hosts):
    servers, restart = hosts
    a, b = servers["a"][0], servers["b"][0]
    item = recs(b, "nobody")["items"][0]["item_id"]
    event = {"user_id": "kafka-visitor", "item_id": item, "timestamp": int(time.time()) - 60, "event_id": "k-1"}
    r = http.post(f"{a}/events", json=event, headers=WRITER, timeout=10)
    assert r.status_code == 202 and r.json() == {"accepted": 1, "duplicates": 0}
    assert recs(a, "kafka-visitor")["events_applied"] == 1   # the accepting host, at once
    deadline = time.monotonic() + 5
    while recs(b, "kafka-visitor")["events_applied"] != 1:
        assert time.monotonic() < deadline, "host B never reflected host A's event"
        time.sleep(0.05)
    # the same event_id again, on the other host: a retry, skipped once B has read A's copy
    r = http.post(f"{b}/events", json=event, headers=WRITER, timeout=10)
    assert r.status_code == 202 and r.json() == {"accepted": 0, "duplicates": 1}
    # a customer record committed on A (the compacted customers topic) is matched on B, and its id taken there
    r = http.post(f"{a}/customers/match", params={"commit": "true"}, headers=WRITER, timeout=30,
                   json={**NEW, "id": "88001-auto", "source": "auto"})
    assert r.status_code == 200 and r.json()["new_match"] is True, r.text
    committed = r.json()["match_id"]
    deadline = time.monotonic() + 5
    while (found := http.post(f"{b}/customers/match", json=NEW, headers=PII, timeout=30).json())["match_id"] \
            != committed:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    r = http.post(f"{b}/customers/match", params={"commit": "true"}, headers=WRITER, timeout=30,
                   json={**NEW, "id": "88001-auto", "source": "auto"})
    assert r.status_code == 409, r.text
    # B restarted: it reads the topics from the run's offsets before it is ready
    b = restart("b")
    assert recs(b, "kafka-visitor")["events_applied"] == 1
    assert http.post(f"{b}/customers/match", json=NEW, headers=PII, timeout=30).json()["match_id"] == committed


def test_with_the_broker_down_posts_answer_503_and_gets_keep_serving(hosts, kafka_url):
    servers, _ = hosts
    a = servers["a"][0]
    item = recs(a, "nobody")["items"][0]["item_id"]
    port = kafka_url.rsplit(":", 1)[1]
    run_cli("kafka", "stop", "--port", port)
    try:
        event = {"user_id": "kafka-down", "item_id": item, "timestamp": int(time.time()) - 60}
        started = time.monotonic()
        r = http.post(f"{a}/events", json=event, headers=WRITER, timeout=30)
        assert r.status_code == 503, r.text
        assert time.monotonic() - started < 10   # bounded by realtime.log_timeout_s (2 s here)
        assert recs(a, "kafka-down")["events_applied"] == 0
        assert recs(servers["b"][0], "nobody")["items"]
    finally:
        run_cli("kafka", "start", "--port", port, timeout=300)
    # the broker back (same data): the same server takes events again, and what it had acknowledged is still there
    deadline = time.monotonic() + 30
    while (r := http.post(f"{a}/events", json=event, headers=WRITER, timeout=30)).status_code != 202:
        assert time.monotonic() < deadline, r.text
    assert recs(a, "kafka-visitor")["events_applied"] == 1


def test_the_nightly_records_the_offset_it_read_to_and_the_next_run_starts_there(tmp_path, log_spec):
    settings = Settings(warehouse=tmp_path / "wh", realtime={"log": log_spec + "-nightly"})
    wh = Warehouse(settings.warehouse)
    journal = warehouse_log(wh, "events", settings.realtime)
    journal.append([{"user_id": f"u{i}", "item_id": "epcot:1", "timestamp": TS, "event_id": f"e{i}"}
                    for i in range(3)])

    def intake(run_id: str):
        run = wh.run(run_id)
        run.root.mkdir(parents=True, exist_ok=True)
        ctx = RunContext(settings=settings, run=run, manifest=None)
        return ctx, live_intake.run_events(ctx)

    ctx1, first = intake("run-1")
    state1 = live_intake.summary(ctx1.run)
    assert len(first) == 3 and state1["events_through"] == 3 and state1["events_through_log"] == journal.name
    assert len(intake("run-1")[1]) == 3   # resumed: the same events, read back from the run
    publish(wh.root, ctx1.run.root)
    live_intake.drop_published(ctx1)     # the records before offset 3 are deleted from the topic
    journal.append([{"user_id": "u9", "item_id": "epcot:2", "timestamp": TS, "event_id": "e9"}])
    ctx2, second = intake("run-2")
    state2 = live_intake.summary(ctx2.run)
    assert sorted(second["EVENT_ID"]) == ["e0", "e1", "e2", "e9"]   # carried + new, none twice
    assert state2["events_after"] == 3 and state2["events_through"] == 4
    journal.close()
