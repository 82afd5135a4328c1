"""Next attraction, time-ordered, on the shipped parks: the session model vs in-park popularity and first-order
transitions, measured in the same run.

    python benchmarks/next_attraction.py [--seeds 0 1 2] [--protocol next-trip|next-item] [--parks ...] [--algos ...]

Per park (its own trips only) and seed: train on every trip but each user's last; on each last trip, after each
attraction, rank the next one among the park's attractions not visited yet in the trip (next-item: only the
trip's last step). The session model chooses its scorer on each user's last training trip, fitted on the earlier
ones; the seed draws its folds (popularity and transitions do not depend on it). Prints a markdown table:
hit@5 and MRR@10, mean ± std over the seeds where a seed matters.
Goal: session hit@5 >= 1.3x popularity and above transitions on every park.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from c360.recsys import sessions
from c360.recsys.evaluate import evaluate_sessions

PARKS = ("caliAdv", "disHolly", "epcot")


def run(parks: list[str], seeds: list[int], protocol: str, algos: list[str]) -> pd.DataFrame:
    data = sessions.load_trips(fmt="sigir17")
    rows = []
    for park in parks:
        trips = data.trips[data.trips["ITEM_ID"].str.startswith(park + ":")]
        park_data = sessions.TripData(trips, data.items, data.walks)
        for seed in seeds:
            start = time.perf_counter()
            result = evaluate_sessions(algos, park_data, protocol, k=10, seed=seed)
            for algo, m in result["algorithms"].items():
                rows.append({"park": park, "seed": seed, "algo": algo, "hit@5": m["hit@5"], "mrr@10": m["mrr@10"],
                             "steps": m["steps"], "train_seconds": m["train_seconds"], "chosen": m.get("chosen")})
            session = result["algorithms"]["session"]
            print(f"{park} seed {seed}: session hit@5 {session['hit@5']:.4f} ({session['chosen']}), "
                  f"popularity {result['algorithms']['popularity']['hit@5']:.4f}, transitions "
                  f"{result['algorithms']['transitions']['hit@5']:.4f} ({time.perf_counter() - start:.1f}s)",
                  flush=True)
    return pd.DataFrame(rows)


def _cell(values: pd.Series) -> str:
    return f"{values.mean():.4f}" if values.nunique() == 1 else f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def table(df: pd.DataFrame) -> str:
    algos = list(dict.fromkeys(df["algo"]))
    head = ["park", "steps"] + [f"{a} hit@5" for a in algos] + [f"{a} MRR@10" for a in algos] + \
        ["session / popularity (hit@5)", "session − transitions (hit@5)", "session chose", "goal met"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for park, g in df.groupby("park", sort=False):
        by = {a: g[g["algo"] == a] for a in algos}
        session, pop, trans = (by[a]["hit@5"].to_numpy() for a in ("session", "popularity", "transitions"))
        ratio, gain = session / pop, session - trans
        missed = [m for m, ok in (("< 1.3x popularity", ratio.mean() >= 1.3), ("not above transitions", gain.mean() > 0))
                  if not ok]
        chosen = ", ".join(f"{k} x{v}" for k, v in by["session"]["chosen"].value_counts().items())
        lines.append("| " + " | ".join(
            [park, str(int(g["steps"].iloc[0]))] + [_cell(by[a]["hit@5"]) for a in algos]
            + [_cell(by[a]["mrr@10"]) for a in algos]
            + [f"{ratio.mean():.3f}x (min {ratio.min():.3f}x)", f"{gain.mean():+.4f} (min {gain.min():+.4f})", chosen,
               "no: " + ", ".join(missed) if missed else "yes"])
            + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parks", nargs="+", default=list(PARKS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--protocol", default="next-trip", choices=sessions.TIME_PROTOCOLS)
    ap.add_argument("--algos", nargs="+", default=["popularity", "session"],
                    help="algorithms beside popularity and session (e.g. auto item-knn); transitions come with session")
    ap.add_argument("--json", help="also write the per-seed rows here")
    args = ap.parse_args()
    algos = list(dict.fromkeys(["popularity", "session", *args.algos]))
    df = run(args.parks, args.seeds, args.protocol, algos)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(df.replace({np.nan: None}).to_dict(orient="records"), f, indent=1)
    print()
    print(f"protocol {args.protocol}, seeds {' '.join(map(str, args.seeds))}")
    print()
    print(table(df))
    seconds = df[df["algo"] == "session"].groupby("park", sort=False)["train_seconds"].mean()
    print()
    print("session model training (choice included), mean s: "
          + ", ".join(f"{p} {s:.1f}" for p, s in seconds.items()))


if __name__ == "__main__":
    main()
