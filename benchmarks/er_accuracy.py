"""Entity-resolution accuracy: generated insurance data at default noise, pairwise P/R/F1 per engine, blocking
recall (true pairs that reach scoring) and, with two engines, how close their clusters are.

Usage: python benchmarks/er_accuracy.py --customers 50000 --engines duckdb spark
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from c360.entity_resolution.evaluate import blocking_recall, cluster_agreement, evaluate
from c360.entity_resolution.generate import generate
from c360.entity_resolution.match import match
from c360.entity_resolution.merge import merge


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
    print("| engine | records | precision | recall | F1 | relatives linked / relative pairs | seconds "
          "| train / predict / cluster |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for eng in a.engines:
        t = time.time()
        res = match([d / "merged.parquet"], engine=eng, out=d / f"matched_{eng}.parquet")
        m = evaluate(d / f"matched_{eng}.parquet", d / "src" / "truth.csv")
        s = res.seconds
        print(f"| {eng} | {m['records']} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | "
              f"{m['household_pairs_linked']} / {m['relative_pairs']} | {time.time() - t:.0f} | "
              f"{s['train']:.0f} / {s['predict']:.0f} / {s['cluster']:.0f} |", flush=True)
    b = blocking_recall(d / f"matched_{a.engines[0]}.parquet", d / "src" / "truth.csv")
    print(f"blocking recall: {b['candidate_pairs_true']} / {b['true_pairs']} true pairs = {b['recall']:.4f}")
    for rule, n in b["per_rule"].items():
        print(f"  {rule}: {n}")
    for i, e1 in enumerate(a.engines):
        for e2 in a.engines[i + 1:]:
            g = cluster_agreement(d / f"matched_{e1}.parquet", d / f"matched_{e2}.parquet")
            print(f"{e2} vs {e1} ({e1} as truth): precision {g['precision']:.5f} recall {g['recall']:.5f} "
                  f"F1 {g['f1']:.5f}; pairs {g['pairs_b']} vs {g['pairs_a']}, in both {g['pairs_both']}; "
                  f"records in a cluster that differs: {g['records_in_different_clusters']}", flush=True)


if __name__ == "__main__":
    main()
