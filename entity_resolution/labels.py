"""FindMatches-style labeling files (labeling_set_id, label, record columns) → labeled pairs and P/R/F1.

A file `c360 er review` wrote carries how each set was chosen: `chosen_by` (its stratum; "context" for the records a
cluster set shows beside the pair that was drawn), `inclusion_probability`, `weight` (its inverse) and `sample`
(`r<round>.<draw>`: the draw, and how many draws were answered before it). Its pairs are then a probability sample
of the scored pairs (`answers.py` turns them into estimates); a file without `weight` is taken as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from c360.entity_resolution.threshold import labelled_probabilities, scores_at
from c360.errors import InputError
from c360.io import atomic_path, from_spreadsheet, read_table, require_columns
from c360.layout import MatchOutput

# the columns `er review` adds to a labeling file (beside labeling_set_id, label, the id and the fields)
SAMPLE_COLUMNS = ("match_probability", "chosen_by", "inclusion_probability", "weight", "sample")
CONTEXT = "context"   # chosen_by of a record shown beside the drawn pair (a cluster set's other records)
PAIR_COLUMNS = ["unique_id_l", "unique_id_r", "clerical_match_score", "weight", "draw", "draw_round", "file"]


def labels_to_pairs(path: str | Path, id_col: str = "id") -> pd.DataFrame:
    """All record pairs within each labeling set; clerical_match_score 1 when both rows carry the same label.

    `weight`: the set's inverse inclusion probability on the pair that was drawn (NaN on others and in files
    without weights); `draw`, `draw_round`: the draw it belongs to ("" and 0 without); `file`: the file's name. A set
    with no label at all is left out (unanswered); a set answered in part is an InputError naming the file. Ids are
    read without the escape `er review` writes them with for spreadsheets (c360.io.from_spreadsheet)."""
    df = read_table(path, dtype=str, keep_default_na=False, na_values=[""])
    require_columns(df, ["labeling_set_id", "label", id_col], str(path))
    df = _answered(df, path)
    weighted = "weight" in df.columns
    df = df.assign(uid=df[id_col].astype(str).map(from_spreadsheet), drawn=_drawn(df) if weighted else False,
                   w=_weights(df, path) if weighted else np.nan,
                   smp=df["sample"].fillna("").astype(str) if weighted and "sample" in df.columns else "")
    pairs = df.merge(df, on="labeling_set_id", suffixes=("_l", "_r"))
    pairs = pairs[pairs["uid_l"] < pairs["uid_r"]]
    drawn = pairs["drawn_l"].to_numpy(bool) & pairs["drawn_r"].to_numpy(bool)
    sample = pairs["smp_l"].astype(str).to_numpy()
    return pd.DataFrame({
        "unique_id_l": pairs["uid_l"].to_numpy(), "unique_id_r": pairs["uid_r"].to_numpy(),
        "clerical_match_score": (pairs["label_l"] == pairs["label_r"]).astype(float).to_numpy(),
        "weight": np.where(drawn, pairs["w_l"].to_numpy(float), np.nan),
        "draw": sample, "draw_round": [sample_round(s, path) for s in sample], "file": Path(path).name},
        columns=PAIR_COLUMNS)


def sample_round(sample: str, path) -> int:
    """The round of a draw `r<round>.<draw>` (0: no draw, hand-made labels); InputError naming the file if bad."""
    if not sample:
        return 0
    m = re.fullmatch(r"r(\d+)\.[\w-]+", sample)
    if m is None:
        raise InputError(f"{path}: column sample: {sample!r} is not r<round>.<draw> (as c360 er review writes it)")
    return int(m.group(1))


def _answered(df: pd.DataFrame, path) -> pd.DataFrame:
    """The sets that were answered: one with no label is dropped, one with some labels missing is an error."""
    missing = df["label"].isna() | (df["label"].astype(str).str.strip() == "")
    if not missing.any():
        return df
    per_set = missing.groupby(df["labeling_set_id"]).agg(["all", "any"])
    partial = per_set.index[per_set["any"] & ~per_set["all"]]
    if len(partial):
        raise InputError(f"{path}: column label is empty on some records of set(s) "
                         f"{', '.join(map(str, partial[:5]))}: label every record of a set (the same value for one "
                         f"person), or none to leave the set out")
    return df[~df["labeling_set_id"].isin(per_set.index[per_set["all"]])]


def _drawn(df: pd.DataFrame) -> np.ndarray:
    """Per row: whether the record belongs to the pair that was drawn (not a set's context record)."""
    if "chosen_by" not in df.columns:
        return np.ones(len(df), dtype=bool)
    return (df["chosen_by"].fillna("").astype(str) != CONTEXT).to_numpy()


def _weights(df: pd.DataFrame, path) -> np.ndarray:
    """The rows' weights (inverse inclusion probabilities); InputError naming the file unless every one >= 1."""
    w = pd.to_numeric(df["weight"], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(w) | (w < 1 - 1e-9)
    if bad.any():
        raise InputError(f"{path}: column weight must be a number >= 1 (the inverse of inclusion_probability) on "
                         f"every row; set {df['labeling_set_id'].iloc[int(np.argmax(bad))]} has "
                         f"{df['weight'].iloc[int(np.argmax(bad))]!r}")
    return w


def scored_pairs(matched_path: str | Path) -> pd.DataFrame:
    """The pairs a match run scored (`<matched>.pairs.parquet`), as labels are scored: both ids and the match
    probability."""
    pairs_path = MatchOutput.local(matched_path).pairs
    if not pairs_path.exists():
        raise InputError(f"{pairs_path}: scored pairs not found (rerun c360 er match)")
    return pd.read_parquet(pairs_path, columns=["unique_id_l", "unique_id_r", "match_probability"])


def evaluate_labels(matched_path: str | Path, labels_path: str | Path, out_html: str | Path | None = None,
                    thresholds=None, touching: set[str] | None = None,
                    pairs: pd.DataFrame | None = None) -> list[dict]:
    """Precision/recall/F1 of the clustered output's pairs over match-probability thresholds on labeled pairs.

    Uses the pairs scored in the run (`scored_pairs`, or `pairs` when the caller read them already); a labeled pair
    never scored counts as a non-link. `touching`: only the labelled pairs that hold one of these record ids ([] when
    none of them is a match). Writes an HTML chart when out_html is given. Returns [{"threshold", "precision",
    "recall", "f1"}].
    """
    pairs = scored_pairs(matched_path) if pairs is None else pairs
    labelled = labels_to_pairs(labels_path)
    if touching is not None:
        labelled = labelled[labelled["unique_id_l"].isin(touching) | labelled["unique_id_r"].isin(touching)]
        if not (labelled["clerical_match_score"] >= 0.5).any():
            return []
    p, y = labelled_probabilities(pairs, labelled)
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
