"""Prometheus metrics of the API (prometheus_client): what operators watch, one scrape for every worker.

`c360 serve` hands its workers one private directory (MULTIPROC_ENV, created 0700 and removed by the server:
api.cli) before any of them imports this module: each process writes its values to its own files there, and a
scrape, answered by whichever worker, reads all of them (prometheus_client's multiprocess mode). Counters and
histograms are summed over the workers, exited ones included; each gauge says how its workers' values combine
(`multiprocess_mode`, live workers only: a dead worker's gauges are dropped, `forget_dead_workers`). Without that
directory (the app in tests, one process) a scrape reads this process's registry.

Labels are bounded: a route's template (never the raw path: no user, item or match id), its method (known ones, else
"other") and status; fixed words; the served run's id and model (one per reload); the gate and step names of its
manifest, and those of the warehouse's latest run (published or not: a nightly that failed a gate shows here, its
run id and status one series at a time). A scrape reads a few files per worker, never anything per user.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import time
from typing import Any, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from c360.layout import Warehouse

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
ROUTE_KEY = "c360.route"  # the route template of a request answered before routing (set in its scope)
UNMATCHED = "unmatched"   # a path no route has (404): one label, whatever was asked
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# latencies from the stored answers' ~0.1 ms to a cold graph query's seconds
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REGISTRY = CollectorRegistry()  # this process's metrics (scraped directly without the multiprocess directory)

REQUESTS = Counter("c360_http_requests", "HTTP requests answered, by route template, method and status",
                   ["route", "method", "status"], registry=REGISTRY)
LATENCY = Histogram("c360_http_request_duration_seconds", "Time to answer a request, by route template",
                    ["route"], buckets=BUCKETS, registry=REGISTRY)
EVENTS = Counter("c360_events", "Events of POST /events: accepted (durable in the log) or duplicate (skipped)",
                 ["outcome"], registry=REGISTRY)
MATCHES = Counter("c360_customer_matches", "POST /customers/match answers without commit: matched or unmatched",
                  ["result"], registry=REGISTRY)
COMMITS = Counter("c360_customer_commits", "Customer records committed: into an existing or a new match_id",
                  ["match"], registry=REGISTRY)
RELOADS = Counter("c360_reloads", "Publishes loaded (or failed to load) by a worker", ["outcome"],
                  registry=REGISTRY)
RELOAD_SECONDS = Gauge("c360_reload_last_seconds", "Seconds the last load of a published run took",
                       multiprocess_mode="livemostrecent", registry=REGISTRY)
RELOADED_AT = Gauge("c360_reload_last_timestamp_seconds", "When a worker last loaded a published run (epoch s)",
                    multiprocess_mode="livemax", registry=REGISTRY)
SERVED_RUN = Gauge("c360_served_run_info", "1 for the run (and model) a live worker serves, 0 once replaced",
                   ["run_id", "served_model"], multiprocess_mode="livemax", registry=REGISTRY)
GATE_VALUE = Gauge("c360_run_gate_value", "Value of each quality gate in the served run's manifest (NaN: none)",
                   ["gate"], multiprocess_mode="livemostrecent", registry=REGISTRY)
GATE_THRESHOLD = Gauge("c360_run_gate_threshold", "Threshold of each quality gate of the served run (NaN: not a number)",
                       ["gate"], multiprocess_mode="livemostrecent", registry=REGISTRY)
GATE_PASSED = Gauge("c360_run_gate_passed", "1 when the gate passed in the served run", ["gate"],
                    multiprocess_mode="livemostrecent", registry=REGISTRY)
STEP_SECONDS = Gauge("c360_run_step_seconds", "Seconds each nightly step of the served run took", ["step"],
                     multiprocess_mode="livemostrecent", registry=REGISTRY)
# the latest run in the warehouse, published or not (a nightly that failed a gate is what an operator must see)
LATEST_RUN = Gauge("c360_latest_run_info", "1 for the warehouse's latest run (the manifest written last) and its "
                   "status (running, succeeded, failed), 0 once another is latest", ["run_id", "status"],
                   multiprocess_mode="livemax", registry=REGISTRY)
LATEST_RUN_AT = Gauge("c360_latest_run_updated_timestamp_seconds", "When the latest run's manifest was last written "
                      "(epoch s): a nightly that stopped running shows as an old value", multiprocess_mode="livemax",
                      registry=REGISTRY)
LATEST_GATE_VALUE = Gauge("c360_latest_run_gate_value", "Value of each quality gate of the latest run (NaN: none)",
                          ["gate"], multiprocess_mode="livemostrecent", registry=REGISTRY)
LATEST_GATE_THRESHOLD = Gauge("c360_latest_run_gate_threshold", "Threshold of each quality gate of the latest run",
                              ["gate"], multiprocess_mode="livemostrecent", registry=REGISTRY)
LATEST_GATE_PASSED = Gauge("c360_latest_run_gate_passed", "1 when the gate passed in the latest run, 0 when it failed",
                           ["gate"], multiprocess_mode="livemostrecent", registry=REGISTRY)
LATEST_STEP_SECONDS = Gauge("c360_latest_run_step_seconds", "Seconds each nightly step of the latest run took (a "
                            "failed step's too)", ["step"], multiprocess_mode="livemostrecent", registry=REGISTRY)
LOG_LAG = Gauge("c360_realtime_log_lag_bytes", "Bytes of a real-time log a worker has not read yet (max over workers)",
                ["log"], multiprocess_mode="livemax", registry=REGISTRY)
LOG_LAG_RECORDS = Gauge("c360_realtime_log_lag_records", "Records of a Kafka log after what a worker read: the topic's "
                        "end offset minus its position (max over workers; with the broker away, against the last end "
                        "known)", ["log"], multiprocess_mode="livemax", registry=REGISTRY)
LOG_RECORDS = Gauge("c360_realtime_log_records", "Records of a real-time log since the served run, as read (max over "
                    "workers; events: what realtime.max_pending_events bounds)", ["log"],
                    multiprocess_mode="livemax", registry=REGISTRY)

_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}   # (route, method, status): its counter and histogram
_routes: dict[int, list[tuple[re.Pattern, str]]] = {}          # id(app): (path regex, template) of its routes
_run_labels: dict[Any, set[str]] = {GATE_VALUE: set(), STEP_SECONDS: set(),   # names a run's manifest set, by the
                                     LATEST_GATE_VALUE: set(), LATEST_STEP_SECONDS: set()}   # gauges that hold them
_served: list[tuple[str, str]] = []                            # (run_id, model) this process served last
_latest: dict[str, Any] = {"seen": None, "labels": None, "scanned": 0.0}   # the latest manifest's (mtime, run,
# size), its labels, when runs/ was last listed
LATEST_SCAN_S = 10.0          # runs/ is listed at most this often (a stat per run: thousands of runs, a network disk)
MANIFEST_MAX_BYTES = 1 << 20  # a latest manifest larger than this (or not a regular file) is not read


def observe_request(scope, status: int, seconds: float) -> None:
    """Count one answered request and its time under its route's template (api.access_log calls it)."""
    route = scope.get("route")
    template = getattr(route, "path", None) or scope.get(ROUTE_KEY) or _template(scope)
    method = scope["method"] if scope["method"] in METHODS else "other"
    key = (template, method, status)
    pair = _children.get(key)
    if pair is None:  # labels() validates and locks: once per (route, method, status)
        pair = _children[key] = (REQUESTS.labels(template, method, str(status)), LATENCY.labels(template))
    pair[0].inc()
    pair[1].observe(seconds)


def _template(scope) -> str:
    """The template of the route a request that was never routed goes to (a refusal before routing), or UNMATCHED."""
    app = scope.get("app")
    if app is None:
        return UNMATCHED
    routes = _routes.get(id(app))
    if routes is None:
        routes = _routes[id(app)] = [(r.path_regex, r.path) for r in app.router.routes if hasattr(r, "path_regex")]
    path = scope["path"]
    return next((template for regex, template in routes if regex.match(path)), UNMATCHED)


def count_events(accepted: int, duplicates: int) -> None:
    EVENTS.labels("accepted").inc(accepted)
    EVENTS.labels("duplicate").inc(duplicates)


def count_match(matched: bool) -> None:
    MATCHES.labels("matched" if matched else "unmatched").inc()


def count_commit(new: bool) -> None:
    COMMITS.labels("new" if new else "existing").inc()


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value) if isinstance(value, int | float) else math.nan
    except OverflowError:   # an integer of hundreds of digits in a hand-edited manifest
        return math.nan


def note_reload(run_id: str, served_model: str, manifest: Mapping[str, Any], seconds: float, at: float) -> None:
    """A worker now serves `run_id`: its info, load time, and its manifest's gate values and step seconds (gates or
    steps the previous run had and this one lacks read NaN)."""
    RELOADS.labels("loaded").inc()
    RELOAD_SECONDS.set(seconds)
    RELOADED_AT.set(at)
    for old in _served:
        SERVED_RUN.labels(*old).set(0)
    _served[:] = [(run_id, served_model)]
    SERVED_RUN.labels(run_id, served_model).set(1)
    _set_manifest(manifest, (GATE_VALUE, GATE_THRESHOLD, GATE_PASSED), STEP_SECONDS)


def _set_manifest(manifest: Mapping[str, Any], gate_gauges: tuple[Any, Any, Any], step_gauge) -> None:
    """A manifest's gate values, thresholds and passed flags and its steps' seconds into the gauges given (gates or
    steps the previous manifest had and this one lacks read NaN)."""
    gates = manifest.get("gates") or {}
    steps = manifest.get("steps") or {}
    gates, steps = (gates if isinstance(gates, Mapping) else {}), (steps if isinstance(steps, Mapping) else {})
    value, threshold, passed = gate_gauges
    for name in _run_labels[value] - set(gates):
        for gauge in gate_gauges:
            gauge.labels(name).set(math.nan)
    for name in _run_labels[step_gauge] - set(steps):
        step_gauge.labels(name).set(math.nan)
    for name, gate in gates.items():
        gate = gate if isinstance(gate, Mapping) else {}
        value.labels(name).set(_number(gate.get("value")))
        threshold.labels(name).set(_number(gate.get("threshold")))
        passed.labels(name).set(_number(gate.get("passed")))
    for name, step in steps.items():
        step_gauge.labels(name).set(_number((step if isinstance(step, Mapping) else {}).get("seconds")))
    _run_labels[value], _run_labels[step_gauge] = set(gates), set(steps)


def note_latest_run(warehouse) -> None:
    """The warehouse's latest run, published or not: the run whose manifest was written last (the pipeline saves it
    after every step, so a running, failed or resumed nightly is the latest), its status, gates and step seconds.
    A scandir of `runs/` and a stat per run, at most every LATEST_SCAN_S; the manifest is read again only when it
    changed, once (one that cannot be read or is not a run's is skipped until it changes: a hand-edited or broken
    file costs nothing each poll). Blocking: in a thread (the reload watcher calls it each poll)."""
    now = time.monotonic()
    if now - _latest["scanned"] < LATEST_SCAN_S:
        return
    _latest["scanned"] = now
    runs = Warehouse(warehouse).runs
    newest: tuple[int, str, int] | None = None   # (mtime, run directory, size) of the manifest written last
    try:
        with os.scandir(runs) as entries:
            for entry in entries:
                try:
                    st = os.stat(os.path.join(entry.path, "manifest.json"))
                except OSError:   # not a run (or not one yet)
                    continue
                if not stat.S_ISREG(st.st_mode):   # a FIFO would block the watcher for good
                    continue
                if newest is None or (st.st_mtime_ns, entry.name) > newest[:2]:
                    newest = (st.st_mtime_ns, entry.name, st.st_size)
    except OSError:
        return
    if newest is None or _latest["seen"] == newest:
        return
    _latest["seen"] = newest
    if newest[2] > MANIFEST_MAX_BYTES:
        return
    try:
        manifest = json.loads((runs / newest[1] / "manifest.json").read_bytes())
    except OSError:   # its run removed meanwhile: listed again at the next scan
        _latest["seen"] = None
        return
    except (ValueError, RecursionError):   # not JSON (or nested beyond reason): skipped until it changes
        return
    if not isinstance(manifest, Mapping):
        return
    labels = (str(manifest.get("run_id") or newest[1]), str(manifest.get("status") or "unknown"))
    if _latest["labels"] not in (None, labels):
        LATEST_RUN.labels(*_latest["labels"]).set(0)
    LATEST_RUN.labels(*labels).set(1)
    LATEST_RUN_AT.set(newest[0] / 1e9)
    _set_manifest(manifest, (LATEST_GATE_VALUE, LATEST_GATE_THRESHOLD, LATEST_GATE_PASSED), LATEST_STEP_SECONDS)
    _latest["labels"] = labels


def note_reload_failed() -> None:
    RELOADS.labels("failed").inc()


def note_logs(state) -> None:
    """The served state's real-time logs: bytes not read yet, on Kafka records behind the topic's end, and records
    read (a listing and a stat per segment, or a cached broker query bounded to a second; blocking: in a thread)."""
    if state is None:
        return
    logs = [("events", state.events, state.events.applied)]
    if state.customers is not None:
        logs.append(("customers", state.customers, state.customers.committed))
    for name, live, read in logs:
        LOG_LAG.labels(name).set(live.unread_bytes())
        LOG_RECORDS.labels(name).set(read)
        lag = live.lag_records()
        if lag is not None:
            LOG_LAG_RECORDS.labels(name).set(lag)


_PID = re.compile(r"_(\d+)\.db$")


def forget_dead_workers(path: str) -> None:
    """Drop the live gauges of the workers of `path` that are gone (a crashed worker, which uvicorn replaces)."""
    pids = {int(m.group(1)) for name in os.listdir(path) if (m := _PID.search(name))}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)
        except PermissionError:  # alive (another user's: not ours, left alone)
            pass


def worker_exits() -> None:
    """This worker stops: its live gauges leave the scrape (its counters stay summed)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path and os.path.isdir(path):
        multiprocess.mark_process_dead(os.getpid(), path)


def exposition() -> bytes:
    """The scrape: every worker's values (multiprocess directory), else this process's. Blocking: in a thread."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return generate_latest(REGISTRY)
    forget_dead_workers(path)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)
    return generate_latest(registry)
