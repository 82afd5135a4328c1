"""Next attraction, time-ordered, on the shipped parks: the session model vs in-park popularity and first-order
transitions, measured in the same run.

    python benchmarks/next_attraction.py [--seeds 0 1 2] [--protocol next-trip|next-item] [--parks ...] [--algos ...]
        [--session-model auto|transitions|logistic|gbm|ensemble|gru|gru_ensemble] [--validation]

Per park (its own trips only) and seed: train on every trip but each user's last; on each last trip, after each
attraction, rank the next one among the park's attractions not visited yet in the trip (next-item: only the
trip's last step). The session model chooses its scorer on each user's last training trip, fitted on the earlier
ones; the seed draws its folds (popularity and transitions do not depend on it). Prints a markdown table:
hit@5 and MRR@10, mean ± std over the seeds where a seed matters. `--session-model` forces the session model's
scorer; `--validation` also prints every scorer's hit@5 / MRR@10 on the validation trips (each user's last training
trip, the scorers fitted on the earlier ones: what `auto` chooses by) next to its test figures.
Goal: session hit@5 >= 1.3x popularity and above transitions on every park.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from c360.recsys import evaluate
from c360.recsys import trips as trip_data
from c360.recsys.algorithms.session import SCORERS
from c360.recsys.evaluate import evaluate_sessions

PARKS = ("caliAdv", "disHolly", "epcot")


class _KeepSessionModels:
    """Keeps the session models `evaluate_sessions` trains (their validation table is in `extra`)."""

    def __init__(self):
        self.models, self._train = [], evaluate.train

    def __enter__(self):
        def train(algo, *args, **kwargs):
            model = self._train(algo, *args, **kwargs)
            if algo == "session":
                self.models.append(model)
            return model
        evaluate.train = train
        return self

    def __exit__(self, *exc):
        evaluate.train = self._train


def run(parks: list[str], seeds: list[int], protocol: str, algos: list[str], session_model: str = "auto",
        validation: bool = False) -> pd.DataFrame:
    data = trip_data.load_trips(fmt="sigir17")
    rows = []
    params = {"session": {"model": session_model}}
    for park in parks:
        trips = data.trips[data.trips["ITEM_ID"].str.startswith(park + ":")]
        park_data = trip_data.TripData(trips, data.items, data.walks)
        for seed in seeds:
            start = time.perf_counter()
            with _KeepSessionModels() as kept:
                result = evaluate_sessions(algos, park_data, protocol, k=10, seed=seed, params=params)
            for algo, m in result["algorithms"].items():
                rows.append({"park": park, "seed": seed, "algo": algo, "hit@5": m["hit@5"], "mrr@10": m["mrr@10"],
                             "steps": m["steps"], "train_seconds": m["train_seconds"], "chosen": m.get("chosen")})
            if validation:
                rows += _validation_rows(park, seed, kept.models[-1], park_data, protocol)
            session = result["algorithms"]["session"]
            print(f"{park} seed {seed}: session hit@5 {session['hit@5']:.4f} ({session['chosen']}), "
                  f"popularity {result['algorithms']['popularity']['hit@5']:.4f}, transitions "
                  f"{result['algorithms']['transitions']['hit@5']:.4f} ({time.perf_counter() - start:.1f}s)",
                  flush=True)
    return pd.DataFrame(rows)


def _validation_rows(park: str, seed: int, model, data: trip_data.TripData, protocol: str) -> list[dict]:
    """Every scorer's validation figures (from the auto choice) and, refitted on all training trips, its test ones."""
    table = model.extra["session"]["validation"]
    out = []
    for scorer in SCORERS:
        forced = evaluate_sessions(["session"], data, protocol, k=10, seed=seed,
                                   params={"session": {"model": scorer}})["algorithms"]["session"]
        out.append({"park": park, "seed": seed, "scorer": scorer, "valid hit@5": table[scorer]["hit@5"],
                    "valid mrr@10": table[scorer]["mrr@10"], "test hit@5": forced["hit@5"],
                    "test mrr@10": forced["mrr@10"], "train_seconds": forced["train_seconds"]})
        print(f"  {park} seed {seed} {scorer}: valid hit@5 {table[scorer]['hit@5']:.4f}, test {forced['hit@5']:.4f} "
              f"({forced['train_seconds']:.1f}s)", flush=True)
    return out


def validation_table(df: pd.DataFrame) -> str:
    """Per park and scorer: validation and test hit@5 / MRR@10, mean ± std over the seeds, fit seconds."""
    cols = ["valid hit@5", "valid mrr@10", "test hit@5", "test mrr@10"]
    head = ["park", "scorer", *cols, "fit s (forced)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for (park, scorer), g in df.groupby(["park", "scorer"], sort=False):
        lines.append("| " + " | ".join([park, scorer] + [_cell(g[c]) for c in cols]
                                       + [f"{g['train_seconds'].mean():.1f}"]) + " |")
    return "\n".join(lines)


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
    ap.add_argument("--protocol", default="next-trip", choices=trip_data.TIME_PROTOCOLS)
    ap.add_argument("--algos", nargs="+", default=["popularity", "session"],
                    help="algorithms beside popularity and session (e.g. auto item-knn); transitions come with session")
    ap.add_argument("--session-model", default="auto", choices=("auto", *SCORERS),
                    help="the session model's scorer (auto: chosen on the validation trips, as shipped)")
    ap.add_argument("--validation", action="store_true",
                    help="also every scorer's validation and test figures (refits each scorer: slower)")
    ap.add_argument("--json", help="also write the per-seed rows here")
    args = ap.parse_args()
    algos = list(dict.fromkeys(["popularity", "session", *args.algos]))
    df = run(args.parks, args.seeds, args.protocol, algos, args.session_model, args.validation)
    valid = df[df["scorer"].notna()] if "scorer" in df.columns else df.iloc[:0]
    df = df[df["scorer"].isna()] if "scorer" in df.columns else df
    if args.json:
        with open(args.json, "w") as f:
            json.dump(df.replace({np.nan: None}).to_dict(orient="records"), f, indent=1)
    print()
    print(f"protocol {args.protocol}, seeds {' '.join(map(str, args.seeds))}")
    print()
    print(table(df))
    if len(valid):
        print()
        print(validation_table(valid))
    seconds = df[df["algo"] == "session"].groupby("park", sort=False)["train_seconds"].mean()
    print()
    print("session model training (choice included), mean s: "
          + ", ".join(f"{p} {s:.1f}" for p, s in seconds.items()))


if __name__ == "__main__":
    main()
