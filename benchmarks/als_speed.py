"""ALS speed: implicit (CPU, and GPU when CUDA is there) vs Spark MLlib ALS on one synthetic power-law matrix.

    python benchmarks/als_speed.py [--interactions 1000000] [--factors 64] [--iterations 15]

Prints seconds per iteration (fit time / iterations, same matrix, same factors and iterations) and the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp


def power_law_matrix(n_interactions: int, n_users: int, n_items: int, seed: int = 0) -> sp.csr_matrix:
    """Users and items drawn from Zipf-like distributions; duplicate pairs summed (like photo counts)."""
    rng = np.random.default_rng(seed)
    item_p = 1.0 / np.arange(1, n_items + 1) ** 0.9
    user_p = 1.0 / np.arange(1, n_users + 1) ** 0.6
    rows = rng.choice(n_users, size=int(n_interactions * 1.15), p=user_p / user_p.sum())
    cols = rng.choice(n_items, size=len(rows), p=item_p / item_p.sum())
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    m.sum_duplicates()
    return m


def time_implicit(matrix, factors, iterations, gpu: bool) -> float:
    from implicit.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=factors, iterations=iterations, regularization=0.05, use_gpu=gpu,
                                    random_state=0)
    start = time.perf_counter()
    model.fit(matrix, show_progress=False)
    return time.perf_counter() - start


def time_spark(matrix, factors, iterations) -> float:
    from pyspark.ml.recommendation import ALS

    from c360.spark import get_spark

    spark = get_spark(app_name="als-speed")
    coo = matrix.tocoo()
    df = spark.createDataFrame(pd.DataFrame({"user": coo.row.astype("int32"), "item": coo.col.astype("int32"),
                                             "rating": coo.data.astype("float32")})).cache()
    df.count()
    als = ALS(rank=factors, maxIter=iterations, regParam=0.05, implicitPrefs=True, alpha=1.0, seed=0,
              userCol="user", itemCol="item", ratingCol="rating")
    start = time.perf_counter()
    model = als.fit(df)
    model.itemFactors.count()       # force the last iteration's factors
    model.userFactors.count()
    return time.perf_counter() - start


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interactions", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    args = ap.parse_args(argv)

    from c360.recsys.gpu import gpu_status  # first: it loads the gpu extra's CUDA libraries before implicit.gpu

    gpu_state = gpu_status()
    import implicit
    import pyspark

    matrix = power_law_matrix(args.interactions, args.users, args.items)
    print(f"matrix: {matrix.shape[0]} users x {matrix.shape[1]} items, {matrix.nnz} interactions (power law); "
          f"{args.factors} factors, {args.iterations} iterations; {os.cpu_count()} CPU cores; "
          f"implicit {implicit.__version__}, pyspark {pyspark.__version__}, {platform.processor() or platform.machine()}")
    cpu = time_implicit(matrix, args.factors, args.iterations, gpu=False) / args.iterations
    if gpu_state.available:
        gpu = time_implicit(matrix, args.factors, args.iterations, gpu=True) / args.iterations
        gpu_cell = f"{gpu:.4f}"
    else:
        gpu, gpu_cell = None, f"not measured: {gpu_state.reason}"
    spark = time_spark(matrix, args.factors, args.iterations) / args.iterations
    print()
    print("| engine | seconds / iteration | speed-up vs Spark ALS |")
    print("| --- | --- | --- |")
    print(f"| Spark MLlib ALS (local[*]) | {spark:.4f} | 1.0x |")
    print(f"| implicit CPU | {cpu:.4f} | {spark / cpu:.1f}x |")
    print(f"| implicit GPU | {gpu_cell} | {f'{spark / gpu:.1f}x' if gpu else '-'} |")


if __name__ == "__main__":
    main()
