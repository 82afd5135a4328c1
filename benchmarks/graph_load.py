"""Graph load rate into a local Gremlin Server (batched vs one element per traversal) and customer360 latency.

Builds the graph from the shipped sigir17 visits (visitors, attractions, visited edges) plus a synthetic
insurance book of --people persons (auto + property records per person, 1-3 vehicles, shared addresses) in the
pipeline's schemas, exports Neptune CSVs, starts a Gremlin Server on a free port (stopped at the end) and prints
a table. Usage: python benchmarks/graph_load.py [--people 2000] [--single 4000] [--queries 500]

`--memory 2000,20000`: the streaming load's memory instead. For each size, the export (by Spark) of that many
synthetic persons is loaded into the networkx store and into the Gremlin Server, each load in a fresh process, by
`load_graph_files` (parts streamed file by file) and, for comparison, by reading every element first (`read_graph`
+ `load_elements`, what the loader did before); prints the loading process's peak RSS (ru_maxrss) and seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from c360.graph import gremlin_server
from c360.graph.export import export_graph
from c360.graph.gremlin_store import GremlinStore
from c360.graph.loader import load_elements
from c360.graph.neptune_parts import read_graph
from c360.graph.schema import MATCH
from c360.graph.store import open_store

MAKES = [("Honda", "Civic"), ("Toyota", "Camry"), ("Ford", "Focus"), ("Tesla", "Model Y"), ("Kia", "Rio")]
FIRST = ["James", "Mary", "John", "Linda", "Robert", "Ana", "Wei", "Fatima", "Olu", "Sean"]
LAST = ["Smith", "Garcia", "O'Neil", "Nguyen", "Khan", "Muller", "Rossi, Jr.", "Okafor", "Kim", "Lee"]


def synthetic_insurance(people: int, seed: int = 0) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """matched rows + the five source tables for `people` persons (each: one auto and one property record)."""
    rnd = random.Random(seed)
    matched, ac, aa, av, pc, pa = [], [], [], [], [], []
    for i in range(people):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        dob = f"{rnd.randint(1940, 2004)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        ssn = f"{rnd.randint(100, 899)}-{rnd.randint(10, 99)}-{rnd.randint(1000, 9999)}"
        home = (f"{rnd.randint(1, 999)} Main St", "Springfield", "IL", f"{rnd.randint(60000, 60999)}")
        other = (f"{rnd.randint(1, 999)} Lake Rd", "Madison", "WI", f"{rnd.randint(53000, 53999)}")
        pol, cust = 10000 + i, 50000 + i
        for rid, src, addr in ((f"{pol}-auto", "auto", home), (f"{cust}-property", "property", other)):
            matched.append({"id": rid, "first_name": first, "last_name": last, "company": "", "date_of_birth": dob,
                            "home_phone": "555-0000", "ssn": ssn, "source": src, "address": addr[0], "city": addr[1],
                            "state": addr[2], "zip": addr[3], "match_id": i})
        ac.append({"policyid": pol, "fname": first, "lname": last, "dob": dob, "ssn": ssn})
        aa.append(dict(zip(("policyid", "address", "city", "state", "zip"), (pol, *home), strict=True)))
        for _ in range(rnd.randint(1, 3)):
            make, model = rnd.choice(MAKES)
            av.append({"vin": f"VIN{rnd.getrandbits(48):012X}", "policyid": pol, "make": make, "model": model,
                       "year": rnd.randint(1995, 2024), "color": "grey"})
        pc.append({"customer_id": cust, "first_name": first, "last_name": last, "date_of_birth": dob, "social": ssn})
        pa.append({**dict(zip(("customer_id", "address", "city", "state", "zip"), (cust, *other), strict=True)),
                   "property_type": "house", "year_built": rnd.randint(1900, 2020), "insured_value": 250000.0})
    sources = {"source_auto_customer.csv": ac, "source_auto_address.csv": aa, "source_auto_vehicles.csv": av,
               "source_property_customers.csv": pc, "source_property_addresses.csv": pa}
    return pd.DataFrame(matched), {k: pd.DataFrame(v) for k, v in sources.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def write_inputs(work: Path, people: int) -> dict:
    """The synthetic insurance book + sigir17 visits under work/, as export_graph's inputs."""
    matched, sources = synthetic_insurance(people)
    (work / "sources").mkdir(parents=True, exist_ok=True)
    for name, df in sources.items():
        df.to_csv(work / "sources" / name, index=False)
    matched.to_parquet(work / "matched.parquet", index=False)
    return dict(matched=work / "matched.parquet", sources=work / "sources",
                visits=Path(gremlin_server.__file__).resolve().parents[1] / "data" / "sigir17")


_CHILD = """
import json, resource, sys, time
from c360.graph.loader import load_elements, load_graph_files
from c360.graph.neptune_parts import read_graph
csv_dir, target, how = sys.argv[1:4]
t0 = time.perf_counter()
if how == "stream":
    counts = load_graph_files(csv_dir, target, drop=True, progress=False)
else:
    vertices, edges = read_graph(csv_dir)
    counts = load_elements(vertices, edges, target, drop=True, progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss_mb": peak,
                  "elements": sum(counts["vertices"].values()) + sum(counts["edges"].values())}))
"""


def bench_account() -> None:
    """A throw-away Gremlin Server account for the benchmark's server, unless one is configured."""
    import os
    import secrets

    if not os.environ.get("C360_GREMLIN_USERNAME"):
        os.environ["C360_GREMLIN_USERNAME"] = "c360-bench"
        os.environ["C360_GREMLIN_PASSWORD"] = secrets.token_urlsafe(16)


def memory(sizes: list[int], work: Path | None, stores: tuple[str, ...] = ("networkx", "gremlin")) -> None:
    """Peak RSS of loading exports of several sizes, streamed vs all in memory, networkx and Gremlin (exports
    already in `work` are reused: csv-N/)."""
    from c360.graph.neptune_parts import WrittenGraph, graph_files
    from c360.spark import get_spark

    bench_account()
    work = work or Path(tempfile.mkdtemp(prefix="graph-mem-"))
    exports = {}
    spark = None
    for n in sizes:
        out = work / f"csv-{n}"
        if out.is_dir():
            files = graph_files(out)
            exports[n] = (WrittenGraph(str(out), files=[f.name for f in files.vertices + files.edges]), float("nan"))
            continue
        spark = spark or get_spark(app_name="graph-bench")
        t0 = time.perf_counter()
        written = export_graph(out, spark=spark, **write_inputs(work / f"in-{n}", n))
        exports[n] = (written, time.perf_counter() - t0)
    if spark is not None:
        spark.stop()
    port = free_port()
    if "gremlin" in stores:
        gremlin_server.start(port)
    rows = []
    try:
        for n, (written, export_s) in exports.items():
            targets = {"networkx": f"networkx:{work / f'g-{n}.json'}", "gremlin": f"gremlin://127.0.0.1:{port}"}
            for target in [targets[s] for s in stores]:
                for how in ("stream", "all-in-memory"):
                    out = subprocess.run([sys.executable, "-c", _CHILD, written.dir, target, how], check=True,
                                         capture_output=True, text=True).stdout
                    r = json.loads(out.strip().splitlines()[-1])
                    rows.append((n, len(written.files), export_s, target.split(":")[0], how, r))
    finally:
        if "gremlin" in stores:
            gremlin_server.stop(port)
    print("| persons | parts | export s | store | load | elements | load s | peak RSS MB |")
    print("| ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |")
    for n, parts, export_s, store, how, r in rows:
        print(f"| {n} | {parts} | {export_s:.1f} | {store} | {how} | {r['elements']} | {r['seconds']:.1f} | "
              f"{r['peak_rss_mb']:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory", metavar="N,N", help="persons per export: measure the streaming load's peak RSS")
    ap.add_argument("--work", type=Path, help="--memory: folder of earlier exports to reuse (csv-N/)")
    ap.add_argument("--stores", default="networkx,gremlin", help="--memory: the stores to load into")
    ap.add_argument("--people", type=int, default=2000)
    ap.add_argument("--single", type=int, default=4000, help="elements loaded one per traversal")
    ap.add_argument("--queries", type=int, default=500, help="customer360 calls per store")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    if args.memory:
        memory([int(x) for x in args.memory.split(",")], args.work, tuple(args.stores.split(",")))
        return
    bench_account()

    work = Path(tempfile.mkdtemp(prefix="graph-bench-"))
    export_graph(work / "csv", **write_inputs(work, args.people))
    vertices, edges = read_graph(work / "csv")
    total = len(vertices) + len(edges)
    port = free_port()
    url = f"gremlin://127.0.0.1:{port}"
    gremlin_server.start(port)
    rows = []
    try:
        def timed(label, fn, n):
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            rows.append((label, n, dt, n / dt))

        timed("batched, empty graph (first load, cold JVM)",
              lambda: load_elements(vertices, edges, url, drop=True, batch_size=args.batch_size,
                                   workers=args.workers, progress=False), total)
        timed("batched, reload of the same files (all upserts match)",
              lambda: load_elements(vertices, edges, url, batch_size=args.batch_size, workers=args.workers,
                                   progress=False), total)
        timed("batched, empty graph again (warm JVM)",
              lambda: load_elements(vertices, edges, url, drop=True, batch_size=args.batch_size,
                                   workers=args.workers, progress=False), total)
        # one at a time: every Nth edge (all labels) and the vertices those edges need
        se = edges[:: max(1, len(edges) // (args.single // 2))][: args.single // 2]
        ids = {x for e in se for x in (e.frm, e.to)}
        sv = [v for v in vertices if v.id in ids]
        with GremlinStore(url) as store:
            store.drop_all()

            def single():
                for v in sv:
                    store.upsert_vertex(v)
                for e in se:
                    store.upsert_edge(e)
            timed("one element per traversal, empty graph", single, len(sv) + len(se))
        counts = load_elements(vertices, edges, url, drop=True, batch_size=args.batch_size, workers=args.workers,
                              progress=False)
        load_elements(vertices, edges, f"networkx:{work / 'graph.json'}", drop=True)
        stores = {"networkx": open_store(f"networkx:{work / 'graph.json'}"), "gremlin": open_store(url)}
        mids = stores["networkx"].vertex_ids(MATCH.name)
        rnd = random.Random(1)
        sample = [rnd.choice(mids) for _ in range(args.queries)]
        lat = {}
        for name, store in stores.items():
            for m in sample[:20]:
                store.customer360(m)  # warm up
            xs = []
            for m in sample:
                t0 = time.perf_counter()
                assert store.customer360(m) is not None
                xs.append((time.perf_counter() - t0) * 1000)
            lat[name] = xs
        stores["gremlin"].close()
    finally:
        gremlin_server.stop(port)

    print(f"graph: {sum(counts['vertices'].values())} vertices, {sum(counts['edges'].values())} edges "
          f"({args.people} synthetic persons + sigir17 visits); batch {args.batch_size}, vertex batches "
          f"{args.workers} in flight, edge batches encoded {args.workers} ahead of the one in flight")
    print("| load into local Gremlin Server 3.7.5 | elements | seconds | elements/s |")
    print("| --- | ---: | ---: | ---: |")
    for label, n, dt, rate in rows:
        print(f"| {label} | {n} | {dt:.2f} | {rate:,.0f} |")
    print()
    print(f"| customer360 ({args.queries} random matches) | p50 ms | p99 ms | mean ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, xs in lat.items():
        print(f"| {name} | {pct(xs, 0.5):.2f} | {pct(xs, 0.99):.2f} | {statistics.mean(xs):.2f} |")


if __name__ == "__main__":
    main()
