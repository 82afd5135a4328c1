"""Pairwise precision/recall/F1 and cluster sizes of matched output against a truth file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from c360.io import read_table, require_columns


def _pairs(groups: pd.Series) -> int:
    s = groups.value_counts()
    return int((s * (s - 1) // 2).sum())


def evaluate(matched, truth, id_col: str = "id") -> dict:
    """Compare match_id clusters with truth person_id; both may be paths or DataFrames.

    Returns {"precision", "recall", "f1", "true_pairs", "predicted_pairs", "correct_pairs",
    "cluster_sizes", "household_pairs_linked", "household_precision"}.
    """
    m = read_table(matched) if isinstance(matched, (str, Path)) else matched
    t = read_table(truth) if isinstance(truth, (str, Path)) else truth
    require_columns(m, [id_col, "match_id"], str(matched) if isinstance(matched, (str, Path)) else "matched")
    require_columns(t, ["record_id", "person_id"], str(truth) if isinstance(truth, (str, Path)) else "truth")
    j = m[[id_col, "match_id"]].assign(record_id=m[id_col].astype(str)).merge(
        t.assign(record_id=t["record_id"].astype(str)), on="record_id", how="inner")
    predicted, true = _pairs(j["match_id"]), _pairs(j["person_id"])
    correct = _pairs(j["match_id"].astype(str) + "|" + j["person_id"].astype(str))
    p = correct / predicted if predicted else 1.0
    r = correct / true if true else 1.0
    out = {"records": len(j), "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
           "true_pairs": true, "predicted_pairs": predicted, "correct_pairs": correct,
           "cluster_sizes": {str(k): int(v) for k, v in
                             j.groupby("match_id").size().value_counts().sort_index().items()}}
    if "household_id" in j.columns:
        # pairs of different people in one household (relatives) that the matcher put together
        same_house = _pairs(j["match_id"].astype(str) + "|" + j["household_id"].astype(str))
        relatives_linked = same_house - correct
        house_pred = same_house
        out["household_pairs_linked"] = int(relatives_linked)
        out["household_precision"] = (correct_in_house := same_house - relatives_linked) / house_pred \
            if house_pred else 1.0
        out["relative_pairs"] = int(_pairs(j["household_id"]) - true)
        del correct_in_house
    return out
