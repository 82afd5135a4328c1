"""Real time against a running `c360 serve`: how fast a visit changes recommendations, how many events one worker
takes, POST /customers/match latency and accuracy, and whether committed records keep their match_id across the
nightly.

    python benchmarks/realtime.py --warehouse ./warehouse [--url http://127.0.0.1:8000 --writer-key KEY]
        [--freshness 300] [--seconds 10] [--matches 1000] [--clients 16] [--commits 1000] [--nightly]

Without --url the script starts `c360 serve --workers 1` on the warehouse itself (with its own writer key).
Sequential measurements use a Python client; concurrent ones wrk (a C client, as benchmarks/api_load.py: Python
clients would take the CPU the server needs on a small machine), or Python threads when wrk is missing. The
warehouse must hold a published run of `c360 nightly` on generated insurance data (the default): the records to
match are new records of the generated people, made with the generator's own noise (`generate._records` with
another seed), and their true match_id is the one most of that person's records have in the published run.
--nightly also commits --commits such records, runs `c360 nightly` on the warehouse, waits for the server to load
the new run and counts the records whose match_id the nightly kept. It writes into the warehouse's real-time logs.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
LOAD_LIMITS = REPO / "benchmarks" / "load_limits.yaml"   # per-key limits raised: these measure load, not 429s
sys.path.insert(0, str(REPO))

FIELDS = ("first_name", "last_name", "date_of_birth", "ssn", "home_phone", "address", "city", "state", "zip",
          "company")


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if len(values) else float("nan")


def run_clients(n_clients: int, jobs: list, base: str, headers: dict) -> tuple[list[float], list, float]:
    """Run `jobs` (each f(client) -> result) on n_clients threads with keep-alive clients: (latencies, results,
    seconds)."""
    lock, it = threading.Lock(), iter(enumerate(jobs))
    latencies, results = [0.0] * len(jobs), [None] * len(jobs)

    def worker():
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            while True:
                with lock:
                    nxt = next(it, None)
                if nxt is None:
                    return
                i, job = nxt
                t = time.perf_counter()
                results[i] = job(client)
                latencies[i] = time.perf_counter() - t

    threads = [threading.Thread(target=worker) for _ in range(n_clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, results, time.perf_counter() - start


# ---- the data ------------------------------------------------------------------------------------------------------

def published(warehouse: Path):
    from c360.layout import Warehouse

    run = Warehouse(warehouse).current()
    if run is None:
        sys.exit(f"{warehouse}: nothing published (run c360 nightly first)")
    return run


def true_match_ids(run) -> tuple[dict[int, int], Path]:
    """person_id -> the match_id most of the person's records have in the run, and the insurance directory."""
    manifest = json.loads(run.manifest.read_text())
    insurance = Path(manifest["steps"]["validate"]["outputs"]["insurance"])
    truth = pd.read_csv(insurance / "truth.csv", dtype={"record_id": str})
    matched = pd.read_parquet(run.match.matched, columns=["id", "match_id"])
    j = truth.merge(matched, left_on="record_id", right_on="id")
    best = j.groupby(["person_id", "match_id"]).size().reset_index(name="n").sort_values(["n", "match_id"],
                                                                                        ascending=[False, True])
    return dict(zip(best.drop_duplicates("person_id")["person_id"], best.drop_duplicates("person_id")["match_id"],
                    strict=True)), insurance


def new_records(run, n: int, seed: int) -> pd.DataFrame:
    """n new records of the generated people, with the generator's noise (another seed than the published data)."""
    from c360.entity_resolution import generate as G
    from c360.entity_resolution import people as P

    cfg = json.loads(run.manifest.read_text())["config"]["nightly"]
    people = P.people(cfg["generate_customers"], np.random.default_rng(cfg["seed"]))
    rec = G._records(people, np.random.default_rng(seed), G.NOISE)
    rec = rec.rename(columns={"ssn": "ssn_number", "ssn_s": "ssn"})
    return rec.sample(n=min(n, len(rec)), random_state=seed).reset_index(drop=True)


def body_of(row: dict) -> dict:
    out = {k: row[k] for k in FIELDS if isinstance(row.get(k), str) and row[k].strip()}
    out["source"] = row["source"]
    return out


# ---- the measurements ----------------------------------------------------------------------------------------------

def freshness(base: str, headers: dict, run, n: int) -> dict:
    """POST one event for a visitor's top recommendation, then GET its recommendations until the item is gone."""
    recs = pd.read_csv(run.recs, dtype={"USER_ID": str, "ITEM_ID": str})
    users = recs["USER_ID"].drop_duplicates().sample(n=n, random_state=1).tolist()
    latencies, polls = [], []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        for user in users:
            before = c.get(f"/recommendations/{user}", params={"k": 10}).json()
            item = before["items"][0]["item_id"]
            t = time.perf_counter()
            r = c.post("/events", json={"user_id": user, "item_id": item, "timestamp": int(time.time())})
            assert r.status_code == 202, r.text
            tries = 0
            while True:
                tries += 1
                body = c.get(f"/recommendations/{user}", params={"k": 10}).json()
                if body["events_applied"] > before["events_applied"] and \
                        item not in [i["item_id"] for i in body["items"]]:
                    break
            latencies.append(time.perf_counter() - t)
            polls.append(tries)
    return {"n": n, "p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99), "max_ms": pct(latencies, 100),
            "gets_needed": max(polls)}


def throughput(base: str, headers: dict, run, seconds: float, clients: int, batch: int) -> dict:
    """Events/s for `seconds`: `clients` clients posting `batch` events per request."""
    items = pd.read_csv(run.items, dtype=str)["ITEM_ID"].tolist()
    rng = np.random.default_rng(batch)
    stop = time.perf_counter() + seconds
    counts, latencies, lock = [0], [], threading.Lock()

    def worker(k):
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            while time.perf_counter() < stop:
                events = [{"user_id": f"bench-{k}-{int(rng.integers(1_000_000))}",
                           "item_id": items[int(rng.integers(len(items)))], "timestamp": int(time.time())}
                          for _ in range(batch)]
                t = time.perf_counter()
                r = c.post("/events", json=events if batch > 1 else events[0])
                dt = time.perf_counter() - t
                assert r.status_code == 202, r.text
                with lock:
                    counts[0] += batch
                    latencies.append(dt)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {"clients": clients, "batch": batch, "events": counts[0], "events_per_s": counts[0] / elapsed,
            "requests_per_s": len(latencies) / elapsed, "p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99)}


def matching(base: str, headers: dict, records: pd.DataFrame, truth: dict[int, int]) -> dict:
    """Every record once, sequentially: latency and whether the answer is the person's true match_id."""
    bodies = [body_of(r) for r in records.to_dict("records")]
    people = records["person_id"].tolist()
    latencies, results, elapsed = run_clients(1, [lambda c, b=b: c.post("/customers/match", json=b) for b in bodies],
                                              base, headers)
    ok = [(r.json(), p) for r, p in zip(results, people, strict=True) if r.status_code == 200]
    right = sum(str(truth[p]) == (b["match_id"] or "") for b, p in ok)
    unmatched = sum(b["match_id"] is None for b, _ in ok)
    return {"requests": len(bodies), "requests_per_s": len(bodies) / elapsed, "p50_ms": pct(latencies, 50),
            "p99_ms": pct(latencies, 99), "rejected_422": sum(r.status_code == 422 for r in results),
            "answered": len(ok), "right": right, "accuracy": right / len(ok) if ok else 0.0, "no_match": unmatched,
            "wrong_match": len(ok) - right - unmatched}


def lua_posts(path: str, bodies: list[str], key: str, out: Path) -> Path:
    """A wrk script POSTing the bodies in turn."""
    out.write_text("local bodies = {" + ",".join(json.dumps(b) for b in bodies) + "}\nlocal n = 0\n"
                   "request = function()\n  n = n + 1\n"
                   f"  return wrk.format('POST', '{path}', {{['Content-Type']='application/json', "
                   f"['X-API-Key']='{key}'}}, bodies[(n % #bodies) + 1])\nend\n")
    return out


def concurrent(base: str, key: str, run, records: pd.DataFrame, seconds: int, connections: int,
               tmp: Path) -> dict:
    """wrk (a C client: a Python one would take the CPU the server needs on a small machine) against POST /events
    (one event per request, and batches of 100) and POST /customers/match."""
    from benchmarks.api_load import wrk

    items = pd.read_csv(run.items, dtype=str)["ITEM_ID"].tolist()
    rng = np.random.default_rng(7)

    def event():
        return {"user_id": f"bench-{int(rng.integers(10**9))}", "item_id": items[int(rng.integers(len(items)))],
                "timestamp": int(time.time())}

    singles = lua_posts("/events", [json.dumps(event()) for _ in range(2000)], key, tmp / "events.lua")
    batches = lua_posts("/events", [json.dumps([event() for _ in range(100)]) for _ in range(50)], key,
                        tmp / "batches.lua")
    matches = lua_posts("/customers/match", [json.dumps(body_of(r)) for r in records.to_dict("records")], key,
                        tmp / "match.lua")
    out = {}
    for name, lua, conns, per in (("events, 1 per POST", singles, connections, 1),
                                  ("events, 100 per POST", batches, 4, 100),
                                  ("match", matches, connections, 1)):
        r = wrk(f"{base}/", seconds, conns, lua, {})
        out[name] = {**r, "connections": conns, "per_request": per, "events_per_s": r["rps"] * per}
    return out


def stability(base: str, headers: dict, warehouse: Path, records: pd.DataFrame, truth: dict[int, int],
              env: dict) -> dict:
    """Commit the records, run the nightly, wait for the server to serve it, compare match_ids."""
    from c360.layout import Warehouse

    committed, t0 = [], time.perf_counter()
    latencies = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        before = c.get("/version").json()["run_id"]
        tag = secrets.token_hex(3)
        for i, row in enumerate(records.to_dict("records")):
            rid = f"rt{tag}{i:05d}-{row['source']}"
            t = time.perf_counter()
            r = c.post("/customers/match", params={"commit": "true"}, json={**body_of(row), "id": rid})
            latencies.append(time.perf_counter() - t)
            if r.status_code == 200:
                committed.append((rid, int(r.json()["match_id"]), int(row["person_id"]), r.json()["new_match"]))
        commit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "c360", "nightly", "--warehouse", str(warehouse)], cwd=REPO,
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"c360 nightly failed:\n{proc.stderr[-3000:]}")
        nightly_s = time.perf_counter() - t1
        after = Warehouse(warehouse).current()
        for _ in range(600):
            if c.get("/version").json()["run_id"] == after.run_id:
                break
            time.sleep(0.5)
    assert after.run_id != before
    new = pd.read_parquet(after.match.matched, columns=["id", "match_id"])
    ids = dict(zip(new["id"], new["match_id"].astype(int), strict=True))
    kept = sum(ids.get(rid) == mid for rid, mid, _, _ in committed)
    right_after = sum(ids.get(rid) == truth[p] for rid, _, p, _ in committed)
    return {"committed": len(committed), "rejected": len(records) - len(committed),
            "new_match_ids": sum(1 for *_, n in committed if n), "commit_p50_ms": pct(latencies, 50),
            "commit_p99_ms": pct(latencies, 99), "commit_seconds": commit_s, "nightly_seconds": nightly_s,
            "kept": kept, "kept_share": kept / len(committed) if committed else 0.0,
            "true_match_id_after_nightly": right_after / len(committed) if committed else 0.0,
            "runs": [before, after.run_id]}


def start_server(warehouse: Path, key: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "C360_API_KEYS": f"{key}:writer", "OPENBLAS_NUM_THREADS": "1", "C360_CONFIG": str(LOAD_LIMITS)}
    proc = subprocess.Popen([sys.executable, "-m", "c360", "serve", "--warehouse", str(warehouse), "--port", str(port),
                             "--workers", "1", "--log-level", "warning"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("c360 serve did not become ready")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--url", help="a running server (default: start one on the warehouse)")
    ap.add_argument("--writer-key", help="an API key with the writer role (with --url)")
    ap.add_argument("--freshness", type=int, default=300, help="POST-then-GET rounds")
    ap.add_argument("--seconds", type=int, default=10, help="each concurrent measurement")
    ap.add_argument("--matches", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--nightly", action="store_true", help="commit, run the nightly, measure match_id stability")
    args = ap.parse_args()
    warehouse = Path(args.warehouse).resolve()
    proc = None
    if args.url:
        if not args.writer_key:
            sys.exit("--url needs --writer-key")
        base, key = args.url.rstrip("/"), args.writer_key
    else:
        key = "bench-" + secrets.token_hex(8)
        proc, base = start_server(warehouse, key)
    headers = {"X-API-Key": key}
    try:
        run = published(warehouse)
        truth, _ = true_match_ids(run)
        report: dict = {"run": run.run_id}
        records = new_records(run, args.matches, seed=101)
        # in this order: what the nightly trains on stays realistic (the throughput runs post random visitors last)
        report["match"] = matching(base, headers, records, truth)
        report["freshness"] = freshness(base, headers, run, args.freshness)
        if args.nightly:
            env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
            report["stability"] = stability(base, headers, warehouse, new_records(run, args.commits, seed=202),
                                            truth, env)
            run = published(warehouse)
        if shutil.which("wrk"):
            with tempfile.TemporaryDirectory() as tmp:
                report["concurrent"] = concurrent(base, key, run, records, args.seconds, args.clients, Path(tmp))
        else:  # Python clients: they compete with the server for the CPU, so these numbers are a floor
            report["events"] = [throughput(base, headers, run, args.seconds, args.clients, 1),
                                throughput(base, headers, run, args.seconds, 4, 100)]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    print(json.dumps(report, indent=1, default=float))
    f, m = report["freshness"], report["match"]
    print("\n| measure | value | goal |\n| --- | ---: | --- |")
    print(f"| POST /events to a GET /recommendations that reflects it, p50 / p99 ms ({f['n']} in a row) | "
          f"{f['p50_ms']:.1f} / {f['p99_ms']:.1f} | p99 <= 1000 |")
    for name, c in report.get("concurrent", {}).items():
        if name.startswith("events"):
            print(f"| {name}, {c['connections']} connections (wrk): events/s (p50 / p99 ms per POST "
                  f"{c['p50']:.1f} / {c['p99']:.1f}) | {c['events_per_s']:.0f} | >= 500 |")
    for t in report.get("events", []):
        print(f"| events, {t['batch']} per POST, {t['clients']} Python clients: events/s (p50 / p99 ms per POST "
              f"{t['p50_ms']:.1f} / {t['p99_ms']:.1f}) | {t['events_per_s']:.0f} | >= 500 |")
    print(f"| POST /customers/match, one at a time: p50 / p99 ms, requests/s | {m['p50_ms']:.1f} / {m['p99_ms']:.1f}, "
          f"{m['requests_per_s']:.0f} | p50 <= 25, p99 <= 100 |")
    if "concurrent" in report:
        c = report["concurrent"]["match"]
        print(f"| POST /customers/match, {c['connections']} connections (wrk): p50 / p99 ms, requests/s "
              f"({c['non2xx']} non-2xx: records with an unreadable value, 422) | {c['p50']:.1f} / {c['p99']:.1f}, "
              f"{c['rps']:.0f} | p50 <= 25, p99 <= 100, >= 50/s |")
    print(f"| match accuracy: the true match_id ({m['right']} of {m['answered']} answered; {m['no_match']} no match, "
          f"{m['wrong_match']} another; {m['rejected_422']} rejected 422) | {m['accuracy']:.4f} | >= 0.98 |")
    if "stability" in report:
        s = report["stability"]
        print(f"| commit (POST /customers/match?commit=true, one at a time): p50 / p99 ms | "
              f"{s['commit_p50_ms']:.1f} / {s['commit_p99_ms']:.1f} | |")
        print(f"| committed records keeping their match_id after the nightly ({s['kept']} of {s['committed']}; "
              f"{s['new_match_ids']} got a new one) | {s['kept_share']:.4f} | >= 0.995 |")
        print(f"| committed records under their true match_id after the nightly | "
              f"{s['true_match_id_after_nightly']:.4f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
