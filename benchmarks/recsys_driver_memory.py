"""Driver memory of the driver-side recommenders: peak RSS of building the user x item matrix from aggregated
interactions in Parquet (pyarrow columns -> codes -> CSR, `InteractionData.from_file`) and of training implicit ALS
on it, for synthetic power-law interactions of several sizes.

    python benchmarks/recsys_driver_memory.py [--sizes 1000000,3000000] [--factors 64] [--iterations 15]

Each size is measured in a fresh process (peak RSS = VmHWM of /proc/self/status, which only grows), so the numbers
are that size's own. Prints one line per size and the growth per million interactions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ITEMS = 2_000
INTERACTIONS_PER_USER = 10


def write_interactions(path: Path, n: int, seed: int = 0) -> None:
    """n distinct (user, item) pairs with photo counts, users ~ n/10 (Zipf-like), as 8 Parquet part files."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    users = n // INTERACTIONS_PER_USER
    item_p = 1.0 / np.arange(1, ITEMS + 1) ** 0.9
    rows = rng.integers(0, users, size=int(n * 1.3))
    cols = rng.choice(ITEMS, size=len(rows), p=item_p / item_p.sum())
    pairs = np.unique(rows.astype(np.int64) * ITEMS + cols)
    rng.shuffle(pairs)
    pairs = pairs[:n]
    path.mkdir(parents=True)
    for part, chunk in enumerate(np.array_split(pairs, 8)):
        table = pa.table({
            "USER_ID": pa.array(np.char.add("user-", (chunk // ITEMS).astype(str)).astype(object)),
            "ITEM_ID": pa.array(np.char.add("park:", (chunk % ITEMS).astype(str)).astype(object)),
            "EVENT_VALUE": pa.array(rng.integers(1, 20, size=len(chunk)).astype(np.float64)),
            "TIMESTAMP": pa.array(np.full(len(chunk), 1_700_000_000, dtype=np.int64))})
        pq.write_table(table, path / f"part-{part:05d}.parquet")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(path: str, factors: int, iterations: int) -> dict:
    """In this process: imports, then the matrix, then implicit ALS; peak RSS after each."""
    import implicit.als  # noqa: F401

    import c360  # noqa: F401  (thread settings)
    from c360.recsys.base import InteractionData
    from c360.recsys.interactions import InteractionsFile
    from c360.recsys.models import train
    baseline = peak_rss_mb()
    start = time.perf_counter()
    data = InteractionData.from_file(InteractionsFile(path))
    matrix_s = time.perf_counter() - start
    after_matrix = peak_rss_mb()
    held_matrix = rss_mb()
    start = time.perf_counter()
    model = train("als", InteractionsFile(path), params={"factors": factors, "iterations": iterations,
                                                          "gpu": "off"}, show_progress=False)
    als_s = time.perf_counter() - start
    return {"interactions": int(data.matrix.nnz), "users": len(data.user_ids), "items": len(data.item_ids),
            "baseline_mb": baseline, "matrix_peak_mb": after_matrix, "matrix_held_mb": held_matrix,
            "als_peak_mb": peak_rss_mb(), "matrix_seconds": matrix_s, "als_seconds": als_s,
            "factors": model.user_factors.shape[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,3000000")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.factors, args.iterations)))
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="recsys-memory-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"interactions-{n}.parquet"
            write_interactions(path, n)
            out = subprocess.run([sys.executable, __file__, "--measure", str(path), "--factors", str(args.factors),
                                  "--iterations", str(args.iterations)], capture_output=True, text=True, check=True,
                                 env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"{r['interactions']:>9,} interactions, {r['users']:>8,} users, {r['items']} items: "
                  f"imports {r['baseline_mb']:.0f} MB; matrix peak {r['matrix_peak_mb']:.0f} MB "
                  f"(+{r['matrix_peak_mb'] - r['baseline_mb']:.0f}), held {r['matrix_held_mb']:.0f} MB, "
                  f"{r['matrix_seconds']:.1f}s; + implicit ALS ({r['factors']} factors) peak "
                  f"{r['als_peak_mb']:.0f} MB (+{r['als_peak_mb'] - r['baseline_mb']:.0f}), {r['als_seconds']:.1f}s")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        per_m = 1e6 / (b["interactions"] - a["interactions"])
        print(f"per million interactions: matrix peak +{(b['matrix_peak_mb'] - a['matrix_peak_mb']) * per_m:.0f} MB, "
              f"with implicit ALS +{(b['als_peak_mb'] - a['als_peak_mb']) * per_m:.0f} MB")


if __name__ == "__main__":
    main()
