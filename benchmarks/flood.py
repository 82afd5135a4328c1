"""The writers' flood of the security review against `c360 serve --workers 2`, then a restart on the full log.

Four writer threads post the largest batches `POST /events` takes (1,000 events of 50 users new in every
request, timestamps of now, the attractions of the run) for `--seconds`, honouring nothing: a 429 or 507 is counted and the next batch sent at once.
Then it reports what the server holds: events accepted, answers by status, the events log's size on disk, each
worker's RSS (resident memory) at the end and its largest RSS sampled every second, and how long a GET of the user
with the most events takes. Then the server is stopped and started again on the same warehouse and log: seconds
until /readyz answers and until the first /recommendations of a flooded user answers.

    python benchmarks/flood.py [--seconds 60] [--writers 4] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.api_scale import shipped_warehouse, worker_pids  # noqa: E402

WRITER = "flood-writer-key"


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1)) / 1024


def start(warehouse: Path, port: int, log: Path) -> tuple[subprocess.Popen, float]:
    env = {**os.environ, "C360_API_KEYS": f"{WRITER}:writer", "C360_GRAPH": "networkx", "OPENBLAS_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "c360", "serve", "--warehouse", str(warehouse), "--port",
                             str(port), "--workers", "2", "--log-level", "warning"], cwd=REPO, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"c360 serve did not start: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.05)


def flood(base: str, items: list[str], seconds: float, writers: int, batch: int, users: int) -> dict:
    statuses: Counter[int] = Counter()
    accepted = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def writer(w: int):
        n = 0
        with httpx.Client(base_url=base, headers={"X-API-Key": WRITER}, timeout=30) as c:
            while time.monotonic() < deadline:
                now = int(time.time())
                # fresh users every request (a user's own quota never stops the flood), as many as one request
                # may name, the largest batch: what costs a worker the most memory per request
                body = [{"user_id": f"flood-{w}-{n}-{i % users}", "item_id": items[(n + i) % len(items)],
                         "timestamp": now, "event_value": 1} for i in range(batch)]
                n += 1
                try:
                    r = c.post("/events", json=body)
                except httpx.TransportError:
                    with lock:
                        statuses[0] += 1
                    continue
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code == 202:
                        accepted[0] += r.json()["accepted"]

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    return {"threads": threads, "statuses": statuses, "accepted": accepted}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000, help="events per request (realtime.max_events)")
    ap.add_argument("--users", type=int, default=50, help="distinct users per request (realtime.max_request_users)")
    ap.add_argument("--port", type=int, default=18951)
    ap.add_argument("--workdir", help="keep the shipped warehouse here (default: a temporary directory)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir) if args.workdir else Path(tmp)
        template = shipped_warehouse(root / "shipped")
        warehouse = Path(tmp) / "flooded"
        subprocess.run(["cp", "-a", str(template), str(warehouse)], check=True)
        base = f"http://127.0.0.1:{args.port}"
        proc, ready = start(warehouse, args.port, Path(tmp) / "serve.log")
        try:
            pids = worker_pids(proc, 2)
            items = [it["item_id"] for it in httpx.get(f"{base}/recommendations/nobody?k=100").json()["items"]]
            before = {p: rss_mb(p) for p in pids}
            run = flood(base, items, args.seconds, args.writers, args.batch, args.users)
            peak = dict(before)
            while any(t.is_alive() for t in run["threads"]):
                time.sleep(1)
                for p in pids:
                    peak[p] = max(peak[p], rss_mb(p))
            t0 = time.perf_counter()
            httpx.get(f"{base}/recommendations/flood-0-0-1")
            get_ms = (time.perf_counter() - t0) * 1000
            after = {p: rss_mb(p) for p in pids}
            log_mb = sum(f.stat().st_size for f in (warehouse / "realtime").rglob("*.jsonl")) / 2**20
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        proc, ready_again = start(warehouse, args.port, Path(tmp) / "serve2.log")
        try:
            t0 = time.perf_counter()
            first = httpx.get(f"{base}/recommendations/flood-0-0-1", timeout=120)
            first_s = ready_again + time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(run["statuses"].items()))
    print("| writers x seconds | events accepted | answers by status | log on disk | worker RSS before | "
          "worker RSS peak | worker RSS after | GET of a flooded user | restart: ready | restart: first answer |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    fmt = " / ".join
    print(f"| {args.writers} x {args.seconds:g} s | {run['accepted'][0]:,} | {statuses} | {log_mb:.1f} MB | "
          f"{fmt(f'{before[p]:.0f}' for p in pids)} MB | {fmt(f'{peak[p]:.0f}' for p in pids)} MB | "
          f"{fmt(f'{after[p]:.0f}' for p in pids)} MB | {get_ms:.1f} ms | {ready_again:.1f} s | "
          f"{first_s:.1f} s ({first.status_code}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
