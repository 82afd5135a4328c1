"""Entity-resolution speed: generate N customers (~2 records each), merge, match end to end per engine.

Usage: python benchmarks/er_speed.py --customers 500000 --engines duckdb spark
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from c360.entity_resolution.evaluate import evaluate
from c360.entity_resolution.generate import generate
from c360.entity_resolution.match import match
from c360.entity_resolution.merge import merge


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=500_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="er-speed-"))
    t = time.time()
    info = generate(a.customers, a.seed, d / "src")
    print(f"generate: {info['records']} records in {time.time() - t:.0f} s", flush=True)
    t = time.time()
    merge(d / "src", d / "merged.parquet")
    print(f"merge (Spark): {time.time() - t:.0f} s", flush=True)
    print("| engine | records | match end to end (s) | train | predict | cluster | F1 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for eng in a.engines:
        t = time.time()
        res = match([d / "merged.parquet"], engine=eng, out=d / f"matched_{eng}.parquet")
        wall = time.time() - t
        m = evaluate(d / f"matched_{eng}.parquet", d / "src" / "truth.csv")
        s = res.seconds
        print(f"| {eng} | {res.records} | {wall:.0f} | {s['train']:.0f} | {s['predict']:.0f} | {s['cluster']:.0f} | "
              f"{m['f1']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
