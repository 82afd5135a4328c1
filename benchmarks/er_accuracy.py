"""Entity-resolution accuracy: generated insurance data at default noise, pairwise P/R/F1 per engine.

Usage: python benchmarks/er_accuracy.py --customers 50000 --engines duckdb spark
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from entity_resolution.evaluate import evaluate
from entity_resolution.generate import generate
from entity_resolution.match import match
from entity_resolution.merge import merge


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="er-acc-"))
    info = generate(a.customers, a.seed, d / "src")
    merge(d / "src", d / "merged.parquet")
    print(f"records: {info['records']}")
    print("| engine | records | precision | recall | F1 | relatives linked / relative pairs | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for eng in a.engines:
        t = time.time()
        match([d / "merged.parquet"], engine=eng, out=d / f"matched_{eng}.parquet")
        m = evaluate(d / f"matched_{eng}.parquet", d / "src" / "truth.csv")
        print(f"| {eng} | {m['records']} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | "
              f"{m['household_pairs_linked']} / {m['relative_pairs']} | {time.time() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
