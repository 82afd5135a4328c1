"""FindMatches-style labeling files (labeling_set_id, label, record columns) → labeled pairs and P/R/F1."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from c360.entity_resolution.threshold import labelled_probabilities, scores_at
from c360.errors import InputError
from c360.io import atomic_path, read_table, require_columns
from c360.layout import MatchOutput


def labels_to_pairs(path: str | Path, id_col: str = "id") -> pd.DataFrame:
    """All record pairs within each labeling set; clerical_match_score 1 when both rows carry the same label."""
    df = read_table(path)
    require_columns(df, ["labeling_set_id", "label", id_col], str(path))
    df = df.assign(uid=df[id_col].astype(str))
    pairs = df.merge(df, on="labeling_set_id", suffixes=("_l", "_r"))
    pairs = pairs[pairs["uid_l"] < pairs["uid_r"]]
    return pd.DataFrame({"unique_id_l": pairs["uid_l"].to_numpy(), "unique_id_r": pairs["uid_r"].to_numpy(),
                         "clerical_match_score": (pairs["label_l"] == pairs["label_r"]).astype(float).to_numpy()})


def evaluate_labels(matched_path: str | Path, labels_path: str | Path, out_html: str | Path | None = None,
                    thresholds=None) -> list[dict]:
    """Precision/recall/F1 of the clustered output's pairs over match-probability thresholds on labeled pairs.

    Uses the pairs scored in the run (`<matched>.pairs.parquet`); a labeled pair never scored counts as a
    non-link. Writes an HTML chart when out_html is given. Returns [{"threshold", "precision", "recall", "f1"}].
    """
    pairs_path = MatchOutput.local(matched_path).pairs
    if not pairs_path.exists():
        raise InputError(f"{pairs_path}: scored pairs not found (rerun c360 er match)")
    p, y = labelled_probabilities(pd.read_parquet(pairs_path), labels_to_pairs(labels_path))
    rows = [{"threshold": t, **scores_at(p, y, t)} for t in thresholds or [0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999]]
    if out_html:
        with atomic_path(out_html) as tmp:
            tmp.write_text(_chart(rows))
    return rows


def _chart(rows: list[dict]) -> str:
    w, h = 480, 240
    x = lambda i: 40 + i * (w - 60) / max(len(rows) - 1, 1)  # noqa: E731
    y = lambda v: h - 30 - v * (h - 50)  # noqa: E731
    lines = []
    for key, color in (("precision", "#1f77b4"), ("recall", "#ff7f0e"), ("f1", "#2ca02c")):
        pts = " ".join(f"{x(i):.1f},{y(r[key]):.1f}" for i, r in enumerate(rows))
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>'
                     f'<text x="{w - 10}" y="{y(rows[-1][key]):.1f}" fill="{color}" font-size="11">{key}</text>')
    ticks = "".join(f'<text x="{x(i):.1f}" y="{h - 10}" font-size="10" text-anchor="middle">{r["threshold"]}</text>'
                    for i, r in enumerate(rows))
    table = "".join(f"<tr><td>{r['threshold']}</td><td>{r['precision']:.4f}</td><td>{r['recall']:.4f}</td>"
                    f"<td>{r['f1']:.4f}</td></tr>" for r in rows)
    return (f"<!doctype html><html><body><h3>Precision / recall / F1 on labeled pairs by match-probability "
            f"threshold</h3><svg width='{w + 60}' height='{h}'>{''.join(lines)}{ticks}</svg>"
            f"<table border=1><tr><th>threshold</th><th>precision</th><th>recall</th><th>F1</th></tr>{table}"
            f"</table></body></html>")
