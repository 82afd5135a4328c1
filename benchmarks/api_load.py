"""Load test of the API: wrk against one `c360 serve` uvicorn worker on loopback, beside a reference service.

Builds a published warehouse (implicit ALS on all shipped sigir17 parks, recs for every user, a networkx graph of
the small insurance fixture used by the API tests) unless --warehouse points at one, starts `c360 serve`, and runs
wrk on /recommendations (random known users, k=10, no key: no live events are used) and /customer360 (reader key,
masked SSNs).

The reference is the plainest FastAPI service a user could write over the same recs.csv (`REFERENCE`: a dict user ->
precomputed list of {item_id, score}, one route, orjson), run by uvicorn with one worker in its own process beside
ours, its defaults but the access log (off unless --reference-access-log: the stricter comparison, although ours
logs one JSON line per request). The two are measured with the same wrk command and user list, alternating ours and
the reference `--runs` times; the medians of requests/s and their ratio are printed, and each server's CPU time per
request (what the machine's other load changes least).

    python benchmarks/api_load.py [--warehouse DIR] [--duration 10] [--connections 16] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
LOAD_LIMITS = REPO / "benchmarks" / "load_limits.yaml"   # per-key limits raised: these measure load, not 429s
sys.path.insert(0, str(REPO))

KEY = "bench-reader-key"

# The reference service: what a user would write to serve the same recs.csv (formatted with the file's path).
REFERENCE = """\
import csv

from fastapi import FastAPI
from fastapi.responses import ORJSONResponse

recs = {{}}
with open({recs!r}, newline="") as f:
    for row in sorted(csv.DictReader(f), key=lambda r: (r["USER_ID"], int(r["RANK"]))):
        recs.setdefault(row["USER_ID"], []).append({{"item_id": row["ITEM_ID"], "score": float(row["SCORE"])}})

app = FastAPI()


@app.get("/recommendations/{{user_id}}")
async def recommendations(user_id: str, k: int = 10):
    return ORJSONResponse(recs.get(user_id, [])[:k])
"""


def build_warehouse(root: Path) -> Path:
    """A published warehouse with one run (the same builder the API tests use)."""
    from c360.recsys.data import load_sigir17
    from c360.recsys.models import train
    from tests.api.conftest import publish, write_run

    interactions, items = load_sigir17(engine="pandas")
    models = {"als": train("als", interactions, items, show_progress=False),
              "popularity": train("popularity", interactions, items, show_progress=False)}
    publish(root, write_run(root, "bench-1", (models, items, interactions)))
    return root


def wrk(url: str, duration: int, connections: int, lua: Path | None, headers: dict) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if lua:
        cmd += ["-s", str(lua)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout

    def ms(label):
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50%"), "p99": ms("99%"),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else "none",
            "command": " ".join([*cmd, url])}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(proc: subprocess.Popen, *args) -> dict:
    """`wrk(*args)` and the server's CPU time per request during it (µs; what other work on the machine changes
    least: requests/s move with the cores' load)."""
    before = cpu_seconds(proc.pid)
    result = wrk(*args)
    result["cpu_us"] = (cpu_seconds(proc.pid) - before) * 1e6 / max(result["requests"], 1)
    return result


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"{url}: the server exited ({proc.returncode})")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit(f"{url}: not ready")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse", help="an existing published warehouse (default: build a temporary one)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--port", type=int, default=18931)
    ap.add_argument("--reference-port", type=int, default=18932)
    ap.add_argument("--runs", type=int, default=3, help="alternating runs of ours and the reference")
    ap.add_argument("--reference-access-log", action="store_true",
                    help="leave uvicorn's access log of the reference on (its default; ours logs every request too)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    tmp = Path(tempfile.mkdtemp(prefix="c360-api-load-"))
    try:
        warehouse = Path(args.warehouse) if args.warehouse else build_warehouse(tmp / "wh")
        users = (warehouse / "current" / "recsys" / "recs.csv").read_text().splitlines()[1:]
        users = sorted({line.split(",", 1)[0] for line in users})
        random.Random(0).shuffle(users)
        lua = tmp / "users.lua"
        lua.write_text("local users = {" + ",".join(f'"{u}"' for u in users[:5000]) + "}\n"
                       "local n = 0\nrequest = function()\n  n = n + 1\n"
                       "  return wrk.format('GET', '/recommendations/' .. users[(n % #users) + 1] .. '?k=10')\nend\n")
        env = {**os.environ, "C360_API_KEYS": f"{KEY}:reader", "C360_GRAPH": "networkx",
               "OPENBLAS_NUM_THREADS": "1", "C360_CONFIG": str(LOAD_LIMITS)}
        log = open(tmp / "serve.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "c360", "serve", "--warehouse", str(warehouse),
                                 "--port", str(args.port), "--workers", "1"], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        (tmp / "reference.py").write_text(REFERENCE.format(recs=str(warehouse / "current" / "recsys" / "recs.csv")))
        ref_log = open(tmp / "reference.log", "w")
        ref = subprocess.Popen([sys.executable, "-m", "uvicorn", "reference:app", "--port", str(args.reference_port),
                                "--workers", "1", *(() if args.reference_access_log else ("--no-access-log",))],
                               cwd=tmp, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
                               stdout=ref_log, stderr=subprocess.STDOUT)
        base, ref_base = f"http://127.0.0.1:{args.port}", f"http://127.0.0.1:{args.reference_port}"
        try:
            wait_ready(f"{base}/readyz", proc)
            wait_ready(f"{ref_base}/recommendations/{users[0]}", ref)
            for url in (base, ref_base):  # warm-up: first requests, connections, page cache
                wrk(f"{url}/", 2, args.connections, lua, {})
            ours, theirs = [], []
            for _ in range(args.runs):
                ours.append(measured(proc, f"{base}/", args.duration, args.connections, lua, {}))
                theirs.append(measured(ref, f"{ref_base}/", args.duration, args.connections, lua, {}))
            c360 = measured(proc, f"{base}/customer360/17", args.duration, args.connections, None, {"X-API-Key": KEY})
        finally:
            for p in (proc, ref):
                p.terminate()
                p.wait(timeout=30)
            log.close()
            ref_log.close()
        print(f"one uvicorn worker each, wrk 1 thread, {args.connections} connections, {args.duration} s, loopback; "
              f"{len(users)} users with precomputed recs; {args.runs} runs alternating ours and the reference "
              f"(its access log {'on' if args.reference_access_log else 'off'}; ours logs one JSON line per request)\n")
        print("| endpoint | run | requests/s | p50 ms | p99 ms | server CPU µs/request | requests | non-2xx | "
              "socket errors |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        rows = [*(("ours: /recommendations/{user_id}?k=10", i + 1, r) for i, r in enumerate(ours)),
                *(("reference: /recommendations/{user_id}?k=10", i + 1, r) for i, r in enumerate(theirs)),
                ("ours: /customer360/17 (reader key)", 1, c360)]
        for name, run, r in rows:
            print(f"| `{name}` | {run} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['cpu_us']:.0f} | "
                  f"{r['requests']} | "
                  f"{r['non2xx']} | {r['socket_errors']} |")
        mine, reference = (statistics.median(r["rps"] for r in runs) for runs in (ours, theirs))
        print(f"\n/recommendations requests/s, median of {args.runs}: ours {mine:.0f}, reference {reference:.0f}, "
              f"ratio {mine / reference:.2f}x")
        cpu_mine, cpu_reference = (statistics.median(r["cpu_us"] for r in runs) for runs in (ours, theirs))
        print(f"server CPU per /recommendations request, median of {args.runs}: ours {cpu_mine:.0f} µs, reference "
              f"{cpu_reference:.0f} µs (reference / ours: {cpu_reference / cpu_mine:.2f}x)")
        print("\nwrk commands:")
        for r in (ours[0], theirs[0], c360):
            print(f"    {r['command']}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
