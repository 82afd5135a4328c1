"""The real-time log on Kafka: two `c360 serve` processes on two warehouse directories (two hosts) sharing one broker.

    python benchmarks/kafka_log.py [--warehouse DIR] [--rounds 300] [--seconds 10] [--runs 2] [--connections 16]
        [--failure-events 1500] [--nightly]

- reflection: an event POSTed on A, then GET /recommendations on B until it reflects it (`events_applied`), in a
  row: p50 / p99 ms from the POST to the first GET that reflects it;
- events/s on one worker (`--workers 1`), one event per POST, wrk with `--connections`: Kafka (A) and the file
  journal (a third server F on its own copy) alternating `--runs` times, medians and their ratio; B is started after
  these, and its catch-up over everything they posted is timed;
- losses and duplicates: a client posts numbered events (event_id, retried with the same id on 503 or a broken
  connection, as a client should) while the broker is stopped and started again, A is killed (`kill -9` of its
  process group) and restarted, and B likewise; then every acknowledged event is looked for in B (restarted: read
  from the topic) and in the nightly's intake (c360.jobs.live_intake over the topic), and a nightly killed after
  its publish is played by the intake of run n-1, its publish, and no drop: run n then counts each event once;
- --nightly: the same with real `c360 nightly` runs (Epcot visits, 150 generated people, DuckDB matching, popularity)
  on the topic: one run, then one killed (`kill -9` of its process group) the moment it publishes, then another;
  each run's events are compared with those posted.

Builds a published warehouse (as benchmarks/api_load.py: ALS on every shipped sigir17 park) unless --warehouse
points at one; starts its own broker (`c360 kafka start`, jars from the cache) on a free port and a topic of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
LOAD_LIMITS = REPO / "benchmarks" / "load_limits.yaml"   # per-key limits raised: these measure load, not 429s
sys.path.insert(0, str(REPO))

KEY = "bench-writer-key"
HEADERS = {"X-API-Key": KEY}


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if len(values) else float("nan")


def free_port() -> int:
    from c360.processes import free_port as free

    return free()


def c360(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "c360", *args], cwd=REPO, capture_output=True, text=True)
    if check and proc.returncode != 0:
        sys.exit(f"c360 {' '.join(args)}: {proc.stdout}{proc.stderr}")
    return proc


class Server:
    """`c360 serve --workers 1` on a warehouse with a config file, in its own process group, on a fixed port (a
    restart keeps it: the posting client does not follow)."""

    def __init__(self, name: str, warehouse: Path, config: Path, logs: Path):
        self.name, self.warehouse, self.config, self.logs = name, warehouse, config, logs
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start and wait until ready; seconds it took."""
        env = {**os.environ, "C360_API_KEYS": f"{KEY}:writer", "OPENBLAS_NUM_THREADS": "1",
               "C360_CONFIG": str(self.config)}
        env.pop("C360_REALTIME_LOG", None)
        started = time.perf_counter()
        with open(self.logs / f"{self.name}.log", "a") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "c360", "serve", "--warehouse", str(self.warehouse),
                                          "--port", str(self.port), "--workers", "1", "--log-level", "warning"],
                                         cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True)
        for _ in range(1500):
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                sys.exit(f"server {self.name} exited; see {self.logs / (self.name + '.log')}")
            time.sleep(0.2)
        sys.exit(f"server {self.name} did not become ready")

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)


def build_warehouse(root: Path) -> Path:
    from benchmarks.api_load import build_warehouse as build

    return build(root)


def copy_of(warehouse: Path, dest: Path) -> Path:
    """A private copy of the warehouse's runs with its current run published (a host's own warehouse)."""
    from tests.api.conftest import publish

    current = (warehouse / "current").resolve()
    shutil.copytree(warehouse / "runs", dest / "runs", symlinks=True)
    publish(dest, dest / "runs" / current.name)
    return dest


def items_of(base: str) -> list[str]:
    r = httpx.get(f"{base}/recommendations/nobody", params={"k": 50}, headers=HEADERS, timeout=10)
    return [i["item_id"] for i in r.json()["items"]]


def applied(client: httpx.Client, user: str) -> int:
    r = client.get(f"/recommendations/{user}", params={"k": 1})
    r.raise_for_status()
    return int(r.json()["events_applied"] or 0)


def reflection(a: Server, b: Server, items: list[str], rounds: int) -> dict:
    """POST on A, GET on B until it reflects the event: from the POST to that GET, and the POST alone."""
    total, acks, gets = [], [], []
    with httpx.Client(base_url=a.base, headers=HEADERS, timeout=30) as ca, \
            httpx.Client(base_url=b.base, headers=HEADERS, timeout=30) as cb:
        for i in range(rounds):
            user = f"reflect-{uuid.uuid4().hex[:10]}"
            event = {"user_id": user, "item_id": items[i % len(items)], "timestamp": int(time.time()) - 5,
                     "event_id": f"r-{i}"}
            t0 = time.perf_counter()
            r = ca.post("/events", json=event)
            assert r.status_code == 202, r.text
            acks.append(time.perf_counter() - t0)
            n = 0
            while applied(cb, user) != 1:
                n += 1
                if time.perf_counter() - t0 > 10:
                    raise SystemExit(f"B did not reflect {user} within 10 s")
            total.append(time.perf_counter() - t0)
            gets.append(n + 1)
    return {"rounds": rounds, "p50_ms": pct(total, 50), "p99_ms": pct(total, 99), "max_ms": max(total) * 1000,
            "post_p50_ms": pct(acks, 50), "post_p99_ms": pct(acks, 99), "gets_mean": statistics.mean(gets),
            "first_get_reflected": sum(g == 1 for g in gets)}


def events_per_s(servers: list[Server], items: list[str], seconds: int, connections: int, runs: int,
                 tmp: Path) -> dict:
    """wrk, one event per POST, on each server in turn, `runs` times (with each server's CPU time per request: what
    the machine's other load changes least)."""
    from benchmarks.api_load import measured
    from benchmarks.realtime import lua_posts

    rng = np.random.default_rng(7)
    bodies = [json.dumps({"user_id": f"bench-{int(rng.integers(10**9))}", "item_id": items[i % len(items)],
                          "timestamp": int(time.time())}) for i in range(2000)]
    lua = lua_posts("/events", bodies, KEY, tmp / "events.lua")
    out: dict[str, list] = {s.name: [] for s in servers}
    for _ in range(runs):
        for s in servers:
            r = measured(s.proc, f"{s.base}/", seconds, connections, lua, {})
            out[s.name].append(r)
    return out


class Poster:
    """Posts numbered events to a server until stopped, each retried (same event_id) until it is acknowledged."""

    def __init__(self, base: str, items: list[str], prefix: str):
        self.base, self.items, self.prefix = base, items, prefix
        self.acked: list[str] = []
        self.failures = {"503": 0, "connection": 0, "other": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Poster:
        self._thread.start()
        return self

    def _run(self) -> None:
        i = 0
        with httpx.Client(base_url=self.base, headers=HEADERS, timeout=30) as c:
            while not self._stop.is_set():
                event_id = f"{self.prefix}-{i:06d}"
                event = {"user_id": f"{self.prefix}-user-{i % 100}", "item_id": self.items[i % len(self.items)],
                         "timestamp": int(time.time()) - 5, "event_id": event_id}
                while True:   # a client retries with the same event_id: the log counts it once
                    try:
                        r = c.post("/events", json=event)
                    except httpx.TransportError:
                        self.failures["connection"] += 1
                        time.sleep(0.2)
                        continue
                    if r.status_code == 202:
                        break
                    self.failures["503" if r.status_code == 503 else "other"] += 1
                    time.sleep(0.2)
                self.acked.append(event_id)
                i += 1
                time.sleep(0.002)

    def wait_for(self, n: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(self.acked)} of {n} events acknowledged")
            time.sleep(0.1)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=120)
        return list(self.acked)


def served_counts(b: Server, prefix: str) -> int:
    """Events of the poster's users that B has applied (each user's events_applied, summed)."""
    with httpx.Client(base_url=b.base, headers=HEADERS, timeout=30) as cb:
        return sum(applied(cb, f"{prefix}-user-{u}") for u in range(100))


def intake(warehouse: Path, spec: str, run_id: str):
    """The nightly's intake of the events log (run_events) for run `run_id` of `warehouse`: (context, events)."""
    from c360.jobs import live_intake
    from c360.jobs.pipeline import RunContext
    from c360.layout import Warehouse
    from c360.settings import Settings

    settings = Settings(warehouse=warehouse, realtime={"log": spec})
    run = Warehouse(warehouse).run(run_id)
    run.root.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(settings=settings, run=run, manifest=None)
    return ctx, live_intake.run_events(ctx)


def tally(acked: list[str], events, prefix: str) -> dict:
    ids = [e for e in events["EVENT_ID"].dropna().tolist() if e.startswith(prefix)]
    return {"acknowledged": len(acked), "found": len(set(ids) & set(acked)), "lost": len(set(acked) - set(ids)),
            "counted_twice": len(ids) - len(set(ids)), "not_acknowledged_but_logged": len(set(ids) - set(acked))}


def failures(a: Server, b: Server, items: list[str], kafka_port: int, spec: str, nightly_wh: Path,
             n: int) -> dict:
    from c360.jobs import live_intake
    from c360.realtime_log import open_log
    from tests.api.conftest import publish

    prefix = f"f{uuid.uuid4().hex[:6]}"
    poster = Poster(a.base, items, prefix).start()
    steps = {}
    poster.wait_for(n // 5)
    t = time.perf_counter()
    c360("kafka", "stop", "--port", str(kafka_port))
    time.sleep(3)
    c360("kafka", "start", "--port", str(kafka_port))
    steps["broker stopped 3 s and restarted, s"] = round(time.perf_counter() - t, 1)
    poster.wait_for(2 * n // 5)
    t = time.perf_counter()
    a.kill9()
    a.start()
    steps["A killed -9 and restarted, s"] = round(time.perf_counter() - t, 1)
    poster.wait_for(3 * n // 5)
    t = time.perf_counter()
    b.kill9()
    b.start()
    steps["B killed -9 and restarted, s"] = round(time.perf_counter() - t, 1)
    poster.wait_for(n)
    acked = poster.stop()
    # B (restarted from the topic) applies every acknowledged event once
    time.sleep(1.0)
    on_b = served_counts(b, prefix)
    # the nightly: run n-1 reads the topic, is published and killed before its drop; run n starts at its offset
    ctx1, first = intake(nightly_wh, spec, "nightly-1")
    publish(nightly_wh, ctx1.run.root)   # killed after this: drop_published never ran
    poster2 = Poster(a.base, items, prefix + "b").start()
    poster2.wait_for(200)
    acked2 = poster2.stop()
    ctx2, second = intake(nightly_wh, spec, "nightly-2")
    _, again = intake(nightly_wh, spec, "nightly-2")   # resumed: read back from the run, the same events
    live_intake.drop_published(ctx2)
    raw = open_log(spec, nightly_wh / "realtime" / "events", "events")
    topic = raw.read_through(raw.seal(), 0)   # what the topic holds now (after run n's drop: nothing before it)
    raw.close()
    return {"steps": steps, "client_retries": poster.failures, "acknowledged": len(acked),
            "served_by_B": {"applied": on_b, "lost_or_twice": on_b - len(acked)},
            "nightly_n_minus_1": tally(acked, first, prefix),
            "nightly_n": tally(acked + acked2, second, prefix),
            "nightly_n_resumed_same": sorted(second["EVENT_ID"].dropna()) == sorted(again["EVENT_ID"].dropna()),
            "topic_records_left_after_drop": len(topic)}


def real_nightlies(spec: str, tmp: Path) -> dict:
    """`c360 nightly` three times on the log `spec`, events posted before each, the second killed at its publish."""
    import pandas as pd

    from c360.entity_resolution.generate import generate
    from c360.layout import Warehouse
    from c360.realtime_log import warehouse_log
    from c360.recsys.sigir17 import DEFAULT_DIR
    from c360.settings import Settings

    root = tmp / "nightly"
    epcot = root / "epcot"
    for sub, name in (("userVisits-sigir17", "userVisits-epcot-allPOI.csv"), ("poiList-sigir17", "POI-epcot.csv")):
        (epcot / sub).mkdir(parents=True)
        shutil.copy(DEFAULT_DIR / sub / name, epcot / sub / name)
    generate(150, seed=3, out_dir=root / "insurance")
    spec = f"{spec}-nightly"
    config = root / "c360.yaml"
    config.write_text(yaml.safe_dump({
        "nightly": {"visits": str(epcot), "insurance": str(root / "insurance"), "generate_customers": 150,
                    "generate_visitors": 1000, "seed": 3}, "er": {"engine": "duckdb"},
        "recsys": {"algorithms": ["popularity"], "serve": "popularity", "top_n": 10, "session": False},
        "graph": {"export_engine": "local"}, "realtime": {"log": spec}}))
    wh = Warehouse(root / "wh")
    journal = warehouse_log(wh, "events", Settings(warehouse=wh.root, realtime={"log": spec}).realtime)
    env = {**os.environ, "C360_GRAPH": "networkx", "C360_SPARK_MASTER": "local[2]"}
    env.pop("C360_REALTIME_LOG", None)
    posted: list[str] = []
    out = {}
    for step, kill in (("run 1", False), ("run 2, killed at its publish", True), ("run 3", False)):
        ids = [f"e-{len(posted) + i}" for i in range(5)]
        journal.append([{"user_id": f"rt-{e}", "item_id": "epcot:1", "timestamp": int(time.time()) - 3600,
                         "event_id": e} for e in ids])
        posted += ids
        before, started = wh.current(), time.perf_counter()
        with open(root / "nightly.log", "a") as log:
            proc = subprocess.Popen([sys.executable, "-m", "c360", "nightly", "--config", str(config),
                                     "--warehouse", str(wh.root)], cwd=REPO, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        if kill:
            while wh.current() == before and proc.poll() is None:
                time.sleep(0.005)
            os.killpg(proc.pid, signal.SIGKILL)
        rc = proc.wait()
        current = wh.current()
        state = json.loads(current.realtime.read_text())
        events = pd.read_parquet(current.events)["EVENT_ID"].dropna().tolist()
        out[step] = {"exit": rc, "seconds": round(time.perf_counter() - started, 1), "run": current.run_id,
                     "posted": len(posted), "events": len(events), "lost": len(set(posted) - set(events)),
                     "counted_twice": len(events) - len(set(events)), "events_after": state["events_after"],
                     "events_through": state["events_through"],
                     "topic_records_left": len(journal.read_through(journal.seal(), 0))}
    journal.close()
    return out


def main() -> int:
    from c360.kafka_server import BrokerPaths, kafka_version

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse", help="a published warehouse (default: build one)")
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--failure-events", type=int, default=1500)
    ap.add_argument("--nightly", action="store_true", help="also real `c360 nightly` runs, one killed at its publish")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="c360-kafka-bench-"))
    source = Path(args.warehouse) if args.warehouse else build_warehouse(tmp / "source")
    kafka_port = free_port()
    c360("kafka", "start", "--port", str(kafka_port))
    spec = f"kafka://127.0.0.1:{kafka_port}/bench-{uuid.uuid4().hex[:8]}"
    limits = yaml.safe_load(LOAD_LIMITS.read_text())
    kafka_cfg, file_cfg = tmp / "kafka.yaml", tmp / "file.yaml"
    kafka_cfg.write_text(yaml.safe_dump({**limits, "realtime": {**limits["realtime"], "log": spec}}))
    file_cfg.write_text(yaml.safe_dump(limits))
    a = Server("A", copy_of(source, tmp / "A"), kafka_cfg, tmp)
    b = Server("B", copy_of(source, tmp / "B"), kafka_cfg, tmp)
    f = Server("F", copy_of(source, tmp / "F"), file_cfg, tmp)
    nightly_wh = copy_of(source, tmp / "N")
    results: dict = {"broker": f"Kafka {kafka_version()}, one node (broker and controller)"}
    try:
        a.start()
        f.start()
        items = items_of(a.base)
        rates = events_per_s([f, a], items, args.seconds, args.connections, args.runs, tmp)
        f.stop()
        med = {name: statistics.median(r["rps"] for r in runs) for name, runs in rates.items()}
        cpu = {name: statistics.median(r["cpu_us"] for r in runs) for name, runs in rates.items()}
        results["events_per_s"] = partial = {"file": rates["F"], "kafka": rates["A"], "median_file": med["F"],
                                   "median_kafka": med["A"], "ratio": med["A"] / med["F"],
                                   "cpu_us_per_event_file": cpu["F"], "cpu_us_per_event_kafka": cpu["A"]}
        print(json.dumps({"events_per_s": partial}, default=str), flush=True)
        results["B_ready_s (catch-up)"] = round(b.start(), 1)
        results["reflection"] = reflection(a, b, items, args.rounds)
        print(json.dumps({"reflection": results["reflection"]}), flush=True)
        results["failures"] = failures(a, b, items, kafka_port, spec, nightly_wh, args.failure_events)
        print(json.dumps({"failures": results["failures"]}), flush=True)
        for s in (a, b):
            s.stop()
        if args.nightly:
            results["nightlies"] = real_nightlies(spec, tmp)
    finally:
        for s in (a, b, f):
            s.stop()
        c360("kafka", "stop", "--port", str(kafka_port), check=False)
        shutil.rmtree(BrokerPaths(kafka_port).run_dir, ignore_errors=True)   # the benchmark's topics
    text = json.dumps(results, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
