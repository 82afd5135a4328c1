"""Load test of the API: wrk against one `c360 serve` uvicorn worker on loopback.

Builds a published warehouse (implicit ALS on all shipped sigir17 parks, recs for every user, a networkx graph of
the small insurance fixture used by the API tests) unless --warehouse points at one, starts `c360 serve`, and runs
wrk on /recommendations (random known users, k=10) and /customer360 (reader key, masked SSNs).
Prints a markdown table: requests/s, p50, p99, errors.

    python benchmarks/api_load.py [--warehouse DIR] [--duration 10] [--connections 16]
"""

from __future__ import annotations

import argparse
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

REPO = Path(__file__).resolve().parent.parent
LOAD_LIMITS = REPO / "benchmarks" / "load_limits.yaml"   # per-key limits raised: these measure load, not 429s
sys.path.insert(0, str(REPO))

KEY = "bench-reader-key"


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse", help="an existing published warehouse (default: build a temporary one)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--port", type=int, default=18931)
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
        base = f"http://127.0.0.1:{args.port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            rows = [("/recommendations/{user_id}?k=10", wrk(f"{base}/", args.duration, args.connections, lua, {})),
                    ("/customer360/17 (reader key)", wrk(f"{base}/customer360/17", args.duration, args.connections,
                                                         None, {"X-API-Key": KEY}))]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
        print(f"one uvicorn worker, wrk 1 thread, {args.connections} connections, {args.duration} s, loopback; "
              f"{len(users)} users with precomputed recs\n")
        print("| endpoint | requests/s | p50 ms | p99 ms | requests | non-2xx | socket errors |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for name, r in rows:
            print(f"| `{name}` | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['requests']} | "
                  f"{r['non2xx']} | {r['socket_errors']} |")
        print("\nwrk commands:")
        for _, r in rows:
            print(f"    {r['command']}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
