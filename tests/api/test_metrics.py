"""GET /metrics: Prometheus text for a key of any role (401 without one, rate limited as the `metrics` group), labels
that never hold an id, the served run's gates and steps, events and the logs' lag; and one scrape summing the
requests both workers of `c360 serve --workers 2` answered."""

from __future__ import annotations

import json
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from c360.append_log import AppendLog
from c360.layout import Warehouse
from c360.settings import Settings
from tests import http

from .conftest import KEYS, PII, READER, WRITER, json_log_lines, serve_two_workers, wait_ready

TEMPLATES = {"/healthz", "/readyz", "/version", "/recommendations/{user_id}", "/attractions/{item_id}/similar",
             "/attractions/{item_id}/next", "/customer360/{match_id}", "/customers/{match_id}/recommendations",
             "/customers/search", "/customers/match", "/events", "/metrics", "unmatched"}


def _app(warehouse, **api) -> TestClient:
    from c360.api.app import create_app

    return TestClient(create_app(Settings(warehouse=warehouse, graph="networkx", api_keys=dict(KEYS), api=api),
                                 reload_interval=60))


def samples(text: str) -> list:
    """Every sample of a scrape: (name, labels, value)."""
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 without one)."""
    return sum(v for n, ls, v in samples(text) if n == name and labels.items() <= ls.items())


def scrape(client, headers=READER) -> str:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def test_a_key_of_any_role_reads_the_metrics_and_no_key_does_not(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": "guess"}).status_code == 401
    for headers in (READER, PII, WRITER):
        assert "c360_http_requests_total" in scrape(client, headers)


def test_scrapes_are_rate_limited_as_the_metrics_group(warehouse):
    with _app(warehouse, rate_limits={"metrics": {"per_second": 0.01, "burst": 2}}) as client:
        assert [client.get("/metrics", headers=READER).status_code for _ in range(3)] == [200, 200, 429]


def test_requests_are_counted_by_route_template_never_by_id(client):
    state = client.app.state.served
    user = next(iter(state.recs))
    item = next(iter(state.models[state.served_model].item_ids))
    before = scrape(client)
    assert client.get(f"/recommendations/{user}").status_code == 200              # the stored answer's fast path
    assert client.get(f"/recommendations/{user}", params={"k": 3}, headers=READER).status_code == 200
    assert client.get(f"/attractions/{item}/similar").status_code == 200
    assert client.get("/customer360/17", headers=READER).status_code == 200
    assert client.get("/customer360/17").status_code == 401                        # refused before routing
    assert client.get(f"/no-such-path/{user}").status_code == 404
    after = scrape(client)

    def delta(route: str, status: str) -> float:
        return (value(after, "c360_http_requests_total", route=route, status=status)
                - value(before, "c360_http_requests_total", route=route, status=status))

    assert delta("/recommendations/{user_id}", "200") == 2
    assert delta("/attractions/{item_id}/similar", "200") == 1
    assert delta("/customer360/{match_id}", "200") == 1 and delta("/customer360/{match_id}", "401") == 1
    assert delta("unmatched", "404") == 1
    assert value(after, "c360_http_request_duration_seconds_count", route="/recommendations/{user_id}") >= 2
    counted = {tuple(sorted(ls.items())): v for n, ls, v in samples(before) if n == "c360_http_requests_total"}
    changed = {ls["route"] for n, ls, v in samples(after)
               if n == "c360_http_requests_total" and counted.get(tuple(sorted(ls.items()))) != v}
    assert "/recommendations/{user_id}" in changed and changed <= TEMPLATES  # (other tests' apps may add routes)
    labels = [ls for _, ls, _ in samples(after)]
    values = {v for ls in labels for v in ls.values()}
    assert not any(user in v or item in v or "17" == v for v in values), sorted(values)


def test_the_served_run_its_gates_and_steps_and_events_accepted(fresh_warehouse):
    manifest_path = fresh_warehouse / "runs" / "run-1" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["gates"] = {"er_f1": {"passed": True, "value": 0.97, "threshold": 0.9, "detail": "pairwise F1"},
                         "graph_store": {"passed": True, "value": 120, "threshold": "equal counts", "detail": ""}}
    manifest["steps"] = {"match": {"status": "succeeded", "seconds": 12.5}, "gates": {"status": "succeeded",
                                                                                      "seconds": 0.3}}
    manifest_path.write_text(json.dumps(manifest))
    with _app(fresh_warehouse) as client:
        state = client.app.state.served
        user, item = "metrics-visitor", next(iter(state.catalogue))
        before = scrape(client)
        event = {"user_id": user, "item_id": item, "timestamp": int(time.time()) - 60, "event_id": "e-1"}
        assert client.post("/events", json=event, headers=WRITER).json() == {"accepted": 1, "duplicates": 0}
        assert client.post("/events", json=event, headers=WRITER).json() == {"accepted": 0, "duplicates": 1}
        # another worker appends: this one has not read it yet (the watch loop measures before catching up)
        AppendLog(Warehouse(fresh_warehouse).events_log).append([{**event, "event_id": "e-2"}])
        from c360.api.metrics import note_logs

        note_logs(state)
        text = scrape(client)
    assert value(text, "c360_events_total", outcome="accepted") - value(before, "c360_events_total",
                                                                           outcome="accepted") == 1
    assert value(text, "c360_events_total", outcome="duplicate") - value(before, "c360_events_total",
                                                                            outcome="duplicate") == 1
    assert value(text, "c360_served_run_info", run_id="run-1", served_model="als") == 1
    assert value(text, "c360_run_gate_value", gate="er_f1") == 0.97
    assert value(text, "c360_run_gate_threshold", gate="er_f1") == 0.9
    assert value(text, "c360_run_gate_passed", gate="graph_store") == 1
    assert value(text, "c360_run_step_seconds", step="match") == 12.5
    assert value(text, "c360_reloads_total", outcome="loaded") >= 1
    assert value(text, "c360_reload_last_seconds") > 0
    assert value(text, "c360_realtime_log_lag_bytes", log="events") > 0
    assert value(text, "c360_realtime_log_records", log="events") == 1
    assert user not in text and item not in text


def test_matches_and_commits_are_counted(fresh_warehouse):
    """c360_customer_matches_total counts answers without commit (matched or unmatched), c360_customer_commits_total
    the records committed (into an existing or a new match_id); a refused commit counts in neither."""
    from .test_customers_match import MARIA, NEW, match

    with _app(fresh_warehouse) as client:
        before = scrape(client)
        assert match(client, {**MARIA, "first_name": "Marai"}, headers=PII).json()["match_id"] == "17"
        nobody = {"first_name": "No", "last_name": "Nobody", "date_of_birth": "1901-01-01"}
        assert match(client, nobody, headers=PII).json()["match_id"] is None
        assert match(client, {**MARIA, "id": "77001-property", "first_name": "Mria"}, headers=WRITER,
                     commit="true").json()["new_match"] is False
        assert match(client, {**NEW, "id": "77002-auto"}, headers=WRITER, commit="true").json()["new_match"] is True
        assert match(client, {**NEW, "id": "77002-auto"}, headers=WRITER, commit="true").status_code == 409
        after = scrape(client)

    def delta(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("c360_customer_matches_total", result="matched") == 1
    assert delta("c360_customer_matches_total", result="unmatched") == 1
    assert delta("c360_customer_commits_total", match="existing") == 1
    assert delta("c360_customer_commits_total", match="new") == 1


def test_a_failed_nightly_is_the_latest_run_the_scrape_shows(fresh_warehouse, monkeypatch):
    """The served run's gauges show only what was published; the latest run's show a nightly that failed its gate
    (its manifest written by the pipeline's step runner), and the reload watcher reads it as it polls."""
    from c360.api import metrics
    from c360.api.app import create_app

    monkeypatch.setattr(metrics, "LATEST_SCAN_S", 0.0)   # runs/ listed at every poll (10 s apart at most otherwise)
    from c360.errors import C360Error
    from c360.jobs.pipeline import StepFailed, StepResult, open_run, run_steps

    settings = Settings(warehouse=fresh_warehouse, graph="networkx", api_keys=dict(KEYS))

    def gates(ctx):
        ctx.manifest.data["gates"] = {"er_f1": {"passed": False, "value": 0.61, "threshold": 0.9, "detail": "F1"}}
        raise C360Error("quality gate(s) failed, nothing published: er_f1")

    with TestClient(create_app(settings, reload_interval=0.1)) as client:
        ctx = open_run(settings, ["match", "gates"], run_id="run-2-failed")
        with pytest.raises(StepFailed):
            run_steps(ctx, [("match", lambda ctx: StepResult()), ("gates", gates)])
        deadline = time.monotonic() + 10
        while not value(text := scrape(client), "c360_latest_run_info", run_id="run-2-failed", status="failed"):
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        assert client.app.state.served.run_id == "run-1"   # nothing published
    assert value(text, "c360_served_run_info", run_id="run-1") == 1
    assert value(text, "c360_latest_run_info", run_id="run-1") == 0
    assert value(text, "c360_latest_run_gate_passed", gate="er_f1") == 0
    assert value(text, "c360_latest_run_gate_value", gate="er_f1") == 0.61
    assert value(text, "c360_latest_run_gate_threshold", gate="er_f1") == 0.9
    assert value(text, "c360_latest_run_step_seconds", step="gates") >= 0
    assert value(text, "c360_latest_run_step_seconds", step="match") >= 0
    assert abs(value(text, "c360_latest_run_updated_timestamp_seconds") - time.time()) < 60


def test_a_broken_latest_manifest_is_skipped_and_stops_nothing(fresh_warehouse, monkeypatch, caplog):
    """A latest run's manifest written by hand or broken (an integer of 400 digits, JSON nested beyond reason, a FIFO
    in its place) is skipped until it changes: nothing raises, nothing blocks, and the gauges keep what they held."""
    from c360.api import metrics

    monkeypatch.setattr(metrics, "LATEST_SCAN_S", 0.0)
    runs = Warehouse(fresh_warehouse).runs
    metrics.note_latest_run(fresh_warehouse)
    for name, body in (("run-9-huge", '{"run_id": "run-9-huge", "gates": {"g": {"value": 1%s}}}' % ("0" * 400)),
                       ("run-9-deep", "[" * 100_000 + "]" * 100_000)):
        (runs / name).mkdir()
        (runs / name / "manifest.json").write_text(body)
        metrics.note_latest_run(fresh_warehouse)   # raises nothing
    (runs / "run-9-fifo").mkdir()
    os.mkfifo(runs / "run-9-fifo" / "manifest.json")
    with ThreadPoolExecutor(1) as pool:
        pool.submit(metrics.note_latest_run, fresh_warehouse).result(timeout=10)   # a FIFO is never opened
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def _lag_reaches(client, state, expected: float, within_s: float = 20.0, read: bool = False) -> bool:
    """The events log's lag in records, measured as the watch loop does and scraped, reads `expected` in time (a
    scrape a second at most: the metrics rate group's); `read`: the worker reads what its consumer fetched first."""
    from c360.api.metrics import note_logs

    deadline = time.monotonic() + within_s
    while True:
        if read:
            state.events.refresh()
        note_logs(state)
        seen = value(scrape(client), "c360_realtime_log_lag_records", log="events")
        if seen == expected or time.monotonic() > deadline:
            return seen == expected
        time.sleep(1.05)


@pytest.mark.jvm
@pytest.mark.slow
def test_the_lag_of_a_kafka_log_counts_the_topic_not_what_was_fetched(fresh_warehouse, kafka_url):
    """On Kafka the lag is the topic's end offset minus what a worker read: records another host appended and this
    worker has not read count, fetched into the process or not (unread_bytes counts only those fetched)."""
    import uuid

    from c360.api.metrics import note_logs
    from c360.realtime_log import warehouse_log
    from c360.settings import RealtimeSettings

    spec = f"{kafka_url}/lag-{uuid.uuid4().hex[:8]}"
    settings = Settings(warehouse=fresh_warehouse, graph="networkx", api_keys=dict(KEYS), realtime={"log": spec})
    from c360.api.app import create_app

    with TestClient(create_app(settings, reload_interval=60)) as client:
        state = client.app.state.served
        note_logs(state)
        assert value(scrape(client), "c360_realtime_log_lag_records", log="events") == 0
        item = next(iter(state.catalogue))
        other_host = warehouse_log(Warehouse(fresh_warehouse), "events", RealtimeSettings(log=spec))
        try:
            other_host.append([{"user_id": f"lag-{i}", "item_id": item, "timestamp": int(time.time()) - 60,
                                "event_id": f"e-{i}"} for i in range(3)])
        finally:
            other_host.close()
        # the watch loop measures before it catches up: past the cached end offset (1 s; a topic this new may not be
        # known to the broker's metadata at the first query, which is asked again 10 s later)
        assert _lag_reaches(client, state, 3)
        assert _lag_reaches(client, state, 0, read=True)   # once the worker read them (fetched by then or later)
        assert state.customers is None or value(scrape(client), "c360_realtime_log_lag_records", log="customers") == 0


def test_a_dead_workers_live_gauges_are_dropped(tmp_path):
    from c360.api.metrics import forget_dead_workers

    (tmp_path / "gauge_livemax_999999999.db").write_bytes(b"")
    (tmp_path / "counter_999999999.db").write_bytes(b"")
    (tmp_path / f"gauge_livemax_{os.getpid()}.db").write_bytes(b"")
    forget_dead_workers(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_999999999.db", f"gauge_livemax_{os.getpid()}.db"]


@pytest.mark.slow
def test_one_scrape_sums_the_requests_of_both_workers(warehouse, tmp_path):
    err = tmp_path / "stderr.log"
    proc, port, base = serve_two_workers(warehouse, err, {"C360_API_KEYS": "metrics-key:reader",
                                                          "C360_GRAPH": "networkx"},
                                         "PROMETHEUS_MULTIPROC_DIR", "C360_LOG_LEVEL")

    def access_pids() -> set[int]:
        lines = json_log_lines(err)
        return {line["pid"] for line in lines if line["logger"] == "c360.access" and line["path"] == "/healthz"}

    sent = 0
    try:
        wait_ready(proc, port)
        with ThreadPoolExecutor(8) as pool:  # a connection each: the kernel hands them to either worker
            while len(access_pids()) < 2 and sent < 800:
                assert set(pool.map(lambda _: http.get(f"{base}/healthz", timeout=30).status_code,
                                    range(40))) == {200}
                sent += 40
                time.sleep(0.2)  # the access lines of the last batch are written
        workers = access_pids()
        assert len(workers) == 2 and proc.pid not in workers
        directory = next(var.split(b"=", 1)[1].decode() for var in
                         open(f"/proc/{min(workers)}/environ", "rb").read().split(b"\0")
                         if var.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        scrapes = [http.get(f"{base}/metrics", headers={"X-API-Key": "metrics-key"}, timeout=30) for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for r in scrapes:  # whichever worker answers, it counts every worker's requests
        assert r.status_code == 200
        assert value(r.text, "c360_http_requests_total", route="/healthz", method="GET", status="200") == sent
        assert value(r.text, "c360_http_request_duration_seconds_count", route="/healthz") == sent
        assert value(r.text, "c360_served_run_info", run_id="run-1") == 1
    assert not os.path.exists(directory)  # the server removed its metrics directory
