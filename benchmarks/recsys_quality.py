"""Recommendation quality on the shipped sigir17 parks: every algorithm and `auto`, several seeds.

    python benchmarks/recsys_quality.py [--seeds 0 1 2 3 4] [--k 10] [--algos ...]

Per seed: hold out 20% of each user's attractions, train every algorithm on the rest (auto chooses on
validation splits of that training part only), score the held-out part. Prints mean +- std per algorithm,
the gain of auto over the context-aware popularity baseline, and the book's FM RMSE (0.19, measured on its
training data) beside the same FM's RMSE on the holdout.
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from c360.recsys.algorithms.spark_fm import book_rmse
from c360.recsys.data import load_sigir17
from c360.recsys.evaluate import evaluate
from c360.recsys.split import holdout_split

# name in the table -> (algo, params, item_group_col)
SETUPS = {
    "popularity (global)": ("popularity", {}, None),
    "popularity (in user's parks)": ("popularity", {}, "PARK"),
    "item-knn bm25": ("item-knn", {"similarity": "bm25"}, "PARK"),
    "item-knn cosine": ("item-knn", {"similarity": "cosine"}, "PARK"),
    "item-knn rp3": ("item-knn", {"similarity": "rp3"}, "PARK"),
    "ease": ("ease", {}, "PARK"),
    "als (implicit)": ("als", {}, "PARK"),
    "spark-als": ("spark-als", {}, "PARK"),
    "fm (spark)": ("fm", {}, "PARK"),
    "auto": ("auto", {}, "PARK"),
}
METRICS = ("precision@10", "recall@10", "ndcg@10", "map@10", "coverage@10", "train_seconds")


def run(seeds: list[int], names: list[str], k: int = 10) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    inter, items = load_sigir17(engine="spark")
    rows, chosen, rmse = [], [], []
    for seed in seeds:
        for name in names:
            algo, params, group = SETUPS[name]
            res = evaluate([algo], inter, items, seed=seed, k=k, item_group_col=group, params={algo: params})
            m = res["algorithms"][algo]
            rows.append({"setup": name, "seed": seed, **{c: m[c.replace("@10", f"@{k}")] for c in METRICS}})
            if algo == "auto":
                chosen.append({"seed": seed, "chosen": m["chosen"]})
            print(f"seed {seed} {name:30s} ndcg@{k} {m[f'ndcg@{k}']:.4f} ({m['train_seconds']:.1f}s)", flush=True)
        train_df, test_df = holdout_split(inter, 0.2, seed)
        rmse.append({"seed": seed, **book_rmse(train_df, test_df, items, seed=seed)})
    return pd.DataFrame(rows), chosen, rmse


def summary(df: pd.DataFrame) -> str:
    lines = ["| algorithm | " + " | ".join(METRICS) + " |", "| --- |" + " --- |" * len(METRICS)]
    for name, g in df.groupby("setup", sort=False):
        cells = [f"{g[c].mean():.4f} ± {g[c].std(ddof=1) if len(g) > 1 else 0:.4f}" if c != "train_seconds"
                 else f"{g[c].mean():.2f}" for c in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--algos", nargs="+", default=list(SETUPS), choices=list(SETUPS), metavar="SETUP")
    ap.add_argument("--json", help="also write the raw per-seed rows here")
    args = ap.parse_args(argv)
    start = time.time()
    df, chosen, rmse = run(args.seeds, args.algos, args.k)
    print()
    print(summary(df))
    base = df[df.setup == "popularity (in user's parks)"].set_index("seed")["ndcg@10"]
    if "auto" in set(df.setup) and len(base):
        auto = df[df.setup == "auto"].set_index("seed")["ndcg@10"]
        gain = auto / base - 1
        print("\nauto vs context-aware popularity, NDCG@10 per seed: "
              + ", ".join(f"{s}: {g:+.1%}" for s, g in gain.items())
              + f"; mean of per-seed gains {gain.mean():+.1%}; gain of the means {auto.mean() / base.mean() - 1:+.1%}")
        print("auto chose: " + "; ".join(f"seed {c['seed']}: {c['chosen']}" for c in chosen))
    r = pd.DataFrame(rmse)
    print(f"\nFM (book pipeline: one-hot user + attraction, 5 quantile levels, visits only) RMSE: "
          f"training data {r.rmse_train.mean():.3f} ± {r.rmse_train.std(ddof=1) if len(r) > 1 else 0:.3f}, "
          f"holdout {r.rmse_holdout.mean():.3f} ± {r.rmse_holdout.std(ddof=1) if len(r) > 1 else 0:.3f}, "
          f"predict-the-mean on holdout {r.rmse_holdout_predict_mean.mean():.3f}; book: 0.19 on its training data")
    print(f"\n{len(args.seeds)} seeds, {time.time() - start:.0f}s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": df.to_dict("records"), "chosen": chosen, "fm_rmse": rmse}, fh, indent=1,
                      default=float)


if __name__ == "__main__":
    main()
