"""Graph load rate into a local Gremlin Server (batched vs one element per traversal) and customer360 latency.

Builds the graph from the shipped sigir17 visits (visitors, attractions, visited edges) plus a synthetic
insurance book of --people persons (auto + property records per person, 1-3 vehicles, shared addresses) in the
pipeline's schemas, exports Neptune CSVs, starts a Gremlin Server on a free port (stopped at the end) and prints
a table. Usage: python benchmarks/graph_load.py [--people 2000] [--single 4000] [--queries 500]
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from c360.graph import gremlin_server
from c360.graph.export import export_graph
from c360.graph.gremlin_store import GremlinStore
from c360.graph.loader import load_elements
from c360.graph.neptune_csv import read_graph
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=2000)
    ap.add_argument("--single", type=int, default=4000, help="elements loaded one per traversal")
    ap.add_argument("--queries", type=int, default=500, help="customer360 calls per store")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="graph-bench-"))
    matched, sources = synthetic_insurance(args.people)
    (work / "sources").mkdir()
    for name, df in sources.items():
        df.to_csv(work / "sources" / name, index=False)
    matched.to_parquet(work / "matched.parquet", index=False)
    export_graph(work / "csv", matched=work / "matched.parquet", sources=work / "sources",
                 visits=Path(gremlin_server.__file__).resolve().parents[1] / "data" / "sigir17")
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
        mids = stores["networkx"].vertex_ids("match")
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
