"""Serving at scale: `c360 serve` over a run with many users, on one and on two uvicorn workers.

For each data size (the shipped sigir17 run, and synthetic runs of N users x 20 recommendations) and each code
checkout given (`--code LABEL=DIR`, default: this checkout as `after`), it starts `c360 serve --workers W` and
measures: startup seconds (process start until /readyz answers and every worker has gone idle), the proportional
set size (PSS, /proc/<pid>/smaps_rollup: pages shared through a memory map count once across the workers) of each
worker after startup and after load, and requests/s, p50 and p99 of wrk on /recommendations/{user}?k=10 (users
sampled at random from the run). Prints a markdown table.

    python benchmarks/api_scale.py [--sizes shipped,100000,1000000] [--workers 1,2] [--code after=.]
        [--code before=DIR] [--workdir DIR] [--duration 10] [--connections 16] [--before-max-users 100000]

A synthetic run: the shipped items (names), a popularity model trained on 3 visits of every synthetic user, the
recommendations of every user (20 items with descending scores, written in chunks with pyarrow), the shipped run's
graph, a manifest; published as `current`. The served table is built as the nightly builds it (timed: `build s`).
`--workdir` keeps the warehouses for the next call (building 1M users takes minutes). Old code (`before`: a copy of
an earlier commit, e.g. `git archive HEAD | tar -x -C DIR`) is run only up to `--before-max-users` users: it holds
every recommendation as Python objects in every worker (several GB at 1M users).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.api_load import build_warehouse, cpu_seconds, wrk  # noqa: E402

KEY = "bench-reader-key"
VISITS_PER_USER = 3
RECS_PER_USER = 20
CHUNK_USERS = 50_000


# ---- the data ------------------------------------------------------------------------------------------------------

def shipped_warehouse(root: Path) -> Path:
    """The shipped-size warehouse (benchmarks/api_load.py's: implicit ALS on every sigir17 park), made once."""
    if not (root / "current").exists():
        root.mkdir(parents=True, exist_ok=True)
        build_warehouse(root)
    return root


def synthetic_warehouse(root: Path, users: int, template: Path) -> Path:
    """A published run of `users` synthetic users x RECS_PER_USER recommendations (see the module doc), made once."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from c360.recsys.models import train
    from tests.api.conftest import publish

    if (root / "current").exists():
        return root
    run = root / "runs" / f"synthetic-{users}"
    shutil.rmtree(run, ignore_errors=True)
    (run / "recsys").mkdir(parents=True)
    shutil.copy(template / "recsys" / "items.csv", run / "recsys" / "items.csv")
    shutil.copytree(template / "graph", run / "graph")
    item_ids = np.array(pd.read_csv(run / "recsys" / "items.csv", dtype=str)["ITEM_ID"], dtype=object)
    rng = np.random.default_rng(0)
    user_ids = np.array([f"synthetic-{i:08d}" for i in range(users)], dtype=object)
    weights = rng.zipf(1.5, len(item_ids)).astype(float)
    visits = pd.DataFrame({"USER_ID": np.repeat(user_ids, VISITS_PER_USER),
                           "ITEM_ID": rng.choice(item_ids, users * VISITS_PER_USER, p=weights / weights.sum()),
                           "EVENT_VALUE": 1.0})
    model = train("popularity", visits.drop_duplicates(["USER_ID", "ITEM_ID"]), show_progress=False)
    del visits
    model.save(run / "recsys" / "popularity")
    del model
    schema = pa.schema([("USER_ID", pa.string()), ("ITEM_ID", pa.string()), ("RANK", pa.int64()),
                        ("SCORE", pa.float64())])
    with pacsv.CSVWriter(run / "recsys" / "recs.csv", schema) as writer:
        for start in range(0, users, CHUNK_USERS):
            block = user_ids[start:start + CHUNK_USERS]
            picks = np.argsort(rng.random((len(block), len(item_ids))), axis=1)[:, :RECS_PER_USER]
            scores = np.sort(rng.random((len(block), RECS_PER_USER)), axis=1)[:, ::-1]
            writer.write_table(pa.table({
                "USER_ID": pa.array(np.repeat(block, RECS_PER_USER).tolist(), pa.string()),
                "ITEM_ID": pa.array(item_ids[picks.ravel()].tolist(), pa.string()),
                "RANK": np.tile(np.arange(1, RECS_PER_USER + 1), len(block)),
                "SCORE": scores.ravel()}, schema=schema))
    manifest = {"run_id": run.name, "status": "succeeded", "created_at": "2026-12-01T00:00:00Z",
                "served_model": "popularity",
                "models": {"popularity": {"path": "recsys/popularity", "version": f"{run.name}:popularity",
                                          "metrics": {}}}, "steps": {}, "gates": {}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    publish(root, run)
    return root


def build_table(warehouse: Path) -> float:
    """Build the published run's served table as the nightly does; seconds (0 when it is there already)."""
    from c360.layout import Warehouse
    from c360.recsys.served_table import build_for_run, is_current

    run = Warehouse(warehouse).current()
    if is_current(run.served_table, run.recs, run.items):
        return 0.0
    start = time.perf_counter()
    build_for_run(run)
    return time.perf_counter() - start


def sample_users(warehouse: Path, n: int = 20_000) -> list[str]:
    import pyarrow.csv as pacsv

    users: set[str] = set()
    with pacsv.open_csv(warehouse / "current" / "recsys" / "recs.csv") as reader:
        for batch in reader:
            users.update(batch.column("USER_ID").unique().to_pylist())
    chosen = sorted(users)
    random.Random(0).shuffle(chosen)
    return chosen[:n]


# ---- the server ----------------------------------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def worker_pids(proc: subprocess.Popen, workers: int) -> list[int]:
    """The processes answering requests: the server itself with one worker, else its spawned workers."""
    if workers == 1:
        return [proc.pid]
    return [p for p in children(proc.pid) if "resource_tracker" not in cmdline(p)]


def cmdline(pid: int) -> str:
    """The process's command line ("" once it has ended)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


def pss_mb(pid: int) -> tuple[float, float]:
    """(PSS, its anonymous part) in MB: the rest is file pages (the mapped table, libraries), shared and reclaimable."""
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return tuple(int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) / 1024  # type: ignore[return-value]
                 for field in ("Pss", "Pss_Anon"))


def start_server(code: Path, warehouse: Path, port: int, workers: int, log: Path):
    """`c360 serve` of the checkout `code`: (process, seconds until /readyz first answered, seconds until every worker
    had also gone idle, i.e. finished loading, and the CPU seconds the busiest worker had used by then: on a machine
    shared with other work the wall-clock seconds grow with its load, the CPU seconds much less)."""
    env = {**os.environ, "C360_API_KEYS": f"{KEY}:reader", "C360_GRAPH": "networkx", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "c360", "serve", "--warehouse", str(warehouse), "--port",
                             str(port), "--workers", str(workers), "--log-level", "warning"], cwd=code, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        ready, startup, cpu = _wait_until_loaded(proc, port, workers, start, log)
    except BaseException:  # never leave a server behind (it holds the port and the machine's cores)
        proc.terminate()
        proc.wait(timeout=60)
        raise
    return proc, ready, startup, cpu


def _wait_until_loaded(proc: subprocess.Popen, port: int, workers: int, start: float, log: Path):
    """(ready s, startup s, CPU s of the busiest worker) of a server started at `start` (see start_server)."""
    base = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None or time.perf_counter() - start > 900:
            raise RuntimeError(f"c360 serve did not start: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    ready = time.perf_counter() - start
    pids = worker_pids(proc, workers)
    while len(pids) < workers:
        time.sleep(0.1)
        pids = worker_pids(proc, workers)
    last = cpu_times(pids)
    while True:  # every worker done loading: less than 10% of a core used over 0.3 s
        time.sleep(0.3)
        now = cpu_times(pids)
        if now.keys() != last.keys() or len(now) < workers:  # a process ended or was replaced: look again
            pids = worker_pids(proc, workers)
            last = cpu_times(pids)
            continue
        if all(now[p] - last[p] < 0.03 for p in pids):
            return ready, max(ready, time.perf_counter() - start - 0.3), max(now.values())
        last = now


def cpu_times(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each process still running."""
    times = {}
    for p in pids:
        try:
            times[p] = cpu_seconds(p)
        except FileNotFoundError:
            pass
    return times


def measure(code: Path, warehouse: Path, users: list[str], workers: int, args, tmp: Path) -> dict:
    port = args.port
    lua = tmp / "users.lua"
    lua.write_text("local users = {" + ",".join(json.dumps(u) for u in users) + "}\n"
                   "local n = 0\nrequest = function()\n  n = n + 1\n"
                   "  return wrk.format('GET', '/recommendations/' .. users[(n % #users) + 1] .. '?k=10')\nend\n")
    load_avg = os.getloadavg()[0]  # of the minute before the server starts: how busy the machine was
    proc, ready, startup, startup_cpu = start_server(code, warehouse, port, workers, tmp / "serve.log")
    try:
        pids = worker_pids(proc, workers)
        idle = [pss_mb(p) for p in pids]
        load = wrk(f"http://127.0.0.1:{port}/", args.duration, args.connections, lua, {})
        loaded = [pss_mb(p) for p in pids]
        rss = [int(re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text(), re.M).group(1)) / 1024
               for p in pids]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {"ready": ready, "startup": startup, "startup_cpu": startup_cpu, "load_avg": load_avg,
            "pss_idle": idle, "pss_loaded": loaded, "rss_loaded": rss, **load}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="shipped,100000,1000000", help="comma-separated: shipped and/or user counts")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--code", action="append", default=[], help="LABEL=DIR of a checkout to serve (repeatable)")
    ap.add_argument("--before-max-users", type=int, default=100_000,
                    help="sizes above this are not served with code labelled 'before'")
    ap.add_argument("--workdir", help="keep the warehouses here (default: a temporary directory)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--port", type=int, default=18941)
    ap.add_argument("--repeat", type=int, default=1,
                    help="measure each setting this many times, the checkouts taking turns; medians are printed")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    codes = [tuple(c.split("=", 1)) for c in args.code] or [("after", str(REPO))]
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="c360-api-scale-"))
    tmp = Path(tempfile.mkdtemp(prefix="c360-api-scale-run-"))
    rows = []
    try:
        shipped = shipped_warehouse(work / "shipped")
        for size in args.sizes.split(","):
            if size == "shipped":
                warehouse, n_users = shipped, None
            else:
                n_users = int(size)
                t = time.perf_counter()
                warehouse = synthetic_warehouse(work / f"users-{n_users}", n_users, shipped / "current")
                print(f"warehouse of {n_users} users: {time.perf_counter() - t:.0f} s", file=sys.stderr)
            build = build_table(warehouse)
            users = sample_users(warehouse)
            label_size = f"shipped ({len(sample_users(warehouse, 10**9))} users)" if n_users is None else \
                f"{n_users:,} users"
            for _ in range(args.repeat):
                for workers in (int(w) for w in args.workers.split(",")):
                    for label, code in codes:
                        if label == "before" and n_users is not None and n_users > args.before_max_users:
                            continue
                        r = measure(Path(code).resolve(), warehouse, users, workers, args, tmp)
                        r.update(size=label_size, code=label, workers=workers,
                                 build=build if label != "before" else None)
                        print(json.dumps(r), file=sys.stderr)
                        rows.append(r)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"wrk 1 thread, {args.connections} connections, {args.duration} s, /recommendations/{{user}}?k=10 over "
          "20,000 users sampled from the run; PSS per worker (MB) after startup / after the wrk run (its anonymous part)\n")
    print(f"{args.repeat} run(s) per row, medians (PSS: the largest); ready: /readyz first answered, startup: every "
          "worker done loading, startup CPU s: CPU seconds of the busiest worker by then\n")
    print("| data | code | workers | table build s | ready s | startup s | startup CPU s | PSS per worker MB: idle / loaded (anon) | "
          "requests/s | p50 ms | p99 ms | non-2xx | socket errors | load avg |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["size"], r["code"], r["workers"]), []).append(r)
    for (size, label, workers), runs in groups.items():
        med = {key: float(np.median([r[key] for r in runs]))
               for key in ("ready", "startup", "startup_cpu", "load_avg", "rps", "p50", "p99")}
        worst = max(runs, key=lambda r: max(p[0] for p in r["pss_loaded"]))
        pss = ", ".join(f"{a[0]:.0f} / {b[0]:.0f} ({b[1]:.0f})"
                        for a, b in zip(worst["pss_idle"], worst["pss_loaded"], strict=True))
        build = "" if runs[0]["build"] is None else f"{runs[0]['build']:.1f}"
        errors = "; ".join(sorted({r["socket_errors"] for r in runs}))
        print(f"| {size} | {label} | {workers} | {build} | {med['ready']:.1f} | {med['startup']:.1f} | "
              f"{med['startup_cpu']:.1f} | {pss} | "
              f"{med['rps']:.0f} | {med['p50']:.2f} | {med['p99']:.2f} | {sum(r['non2xx'] for r in runs)} | "
              f"{errors} | {med['load_avg']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
