"""Entity resolution across data sets: the default model (`c360 er match`, only a mapping per data set) beside the
plain Splink model of Splink's tutorials, in the same run, on public person data and on the project's generator.

Usage: python benchmarks/er_datasets.py [--datasets febrl1 febrl4 ...] [--engine duckdb]
Needs the data packages: pip install -e .[bench]. Prints one markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import splink_tutorial
from er_public_data import LOADERS, Dataset

from c360.entity_resolution.evaluate import evaluate
from c360.entity_resolution.match import match
from c360.io import read_json_file


def _default_model(ds: Dataset, out: Path, engine: str, labels: bool) -> dict:
    t = time.time()
    res = match([str(p) for p in ds.inputs], config=ds.config, engine=engine, out=out,
                labels=[ds.labels] if labels and ds.labels else None)
    seconds = time.time() - t
    report = read_json_file(res.report_path)
    m = evaluate(out, ds.truth, id_col=(ds.mapping or {}).get("id", "id"))
    blocking, choice = report.get("blocking") or {}, report.get("threshold_choice") or {}
    source = choice.get("source", "given")
    if choice.get("prior_factor", 1.0) < 1.0:   # recalibrated at the match-weight valley (threshold.unlabelled)
        source += f", valley: prior x{choice['prior_factor']:.2f}"
    return {**m, "comparisons": blocking.get("comparisons", res.pairs_scored), "seconds": seconds,
            "threshold": report.get("threshold"), "threshold_source": source,
            "threshold_choice": choice, "rules": len(blocking.get("rules", []))}


def _tutorial_model(ds: Dataset) -> dict:
    clusters, info = splink_tutorial.run([str(p) for p in ds.inputs], ds.mapping)
    m = evaluate(clusters, ds.truth)
    return {**m, **info}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=list(LOADERS))
    ap.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    ap.add_argument("--json", help="also write every row as JSON here")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="er-datasets-"))
    rows = []
    print("| data set | records | model | pairwise P | pairwise R | pairwise F1 | B-cubed F1 | comparisons | "
          "seconds | threshold |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for name in a.datasets:
        ds = LOADERS[name](root)
        runs = [("default", lambda ds=ds, name=name: _default_model(ds, root / f"{name}.parquet", a.engine, False))]
        if ds.labels:
            runs.append(("default + labels",
                         lambda ds=ds, name=name: _default_model(ds, root / f"{name}_l.parquet", a.engine, True)))
        runs.append(("Splink tutorial", lambda ds=ds: _tutorial_model(ds)))
        for model, fn in runs:
            r = fn()
            rows.append({"dataset": ds.name, "model": model, **r})
            thr = f"{r['threshold']:.3f} ({r['threshold_source']})" if "threshold" in r else "0.95"
            print(f"| {ds.name} | {r['records']} | {model} | {r['precision']:.4f} | {r['recall']:.4f} | "
                  f"{r['f1']:.4f} | {r['bcubed_f1']:.4f} | {r['comparisons']:,} | {r['seconds']:.1f} | {thr} |",
                  flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
