"""Labelled pairs as the sample they are: each pair's coefficient in estimates over the population of scored pairs.

`c360 er review` draws sets from the scored pairs of one run, leaving out every pair already answered; a file it
wrote says, per drawn pair, its weight (inverse inclusion probability) and its draw (`r<k>.<id>`: k - 1 draws
were answered before it). For a population total T = sum over scored pairs of y (a match: 1) the difference
estimator of draw k is

    T_k = sum_U f + sum_{answered before k} (y - f) + sum_{drawn in k} w (y - f)

(f: the model's match probability; unbiased whatever f, given the draw). The draws are averaged by their sizes, so
every labelled pair gets one coefficient c and T = sum_U f + sum_i c_i (y_i - f_i). Hand-made labels (no weights)
were answered before every draw: their c is 1 (what they say is known; nothing is extrapolated from them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def is_weighted(labelled: pd.DataFrame | None) -> bool:
    """Whether some labels come from a draw of `er review` (weights given)."""
    return labelled is not None and "weight" in labelled.columns and bool(labelled["weight"].notna().any())


def coefficients(labelled: pd.DataFrame) -> pd.DataFrame:
    """One row per labelled pair (either order): unique_id_l, unique_id_r, the ids' source datasets when given, y
    (1: a match), c (its coefficient in population estimates, see the module doc), drawn (whether a draw picked
    it). A pair labelled twice keeps its majority answer."""
    lab = labelled.copy()
    a, b = lab["unique_id_l"].astype(str).to_numpy(), lab["unique_id_r"].astype(str).to_numpy()
    swap = a > b
    lab["unique_id_l"], lab["unique_id_r"] = np.where(swap, b, a), np.where(swap, a, b)
    if {"source_dataset_l", "source_dataset_r"} <= set(lab.columns):
        sa, sb = lab["source_dataset_l"].to_numpy(), lab["source_dataset_r"].to_numpy()
        lab["source_dataset_l"], lab["source_dataset_r"] = np.where(swap, sb, sa), np.where(swap, sa, sb)
    lab["y"] = (lab["clerical_match_score"].astype(float) >= 0.5).astype(float)
    if "weight" not in lab.columns:
        lab["weight"], lab["draw"], lab["draw_round"] = np.nan, "", 0
    drawn = lab[lab["weight"].notna()]
    sizes = drawn.groupby("draw").size()           # each draw's pairs: its share of the average
    share = sizes / sizes.sum() if len(sizes) else sizes
    rounds = drawn.groupby("draw")["draw_round"].first()
    # a pair first answered in round r is known to every draw of a later round
    first = lab.groupby(["unique_id_l", "unique_id_r"])["draw_round"].min().rename("first")
    lab = lab.join(first, on=["unique_id_l", "unique_id_r"])
    known = np.zeros(len(lab))
    for s, k in rounds.items():
        known += share[s] * (lab["first"].to_numpy() < k)
    own = lab["draw"].map(share).fillna(0.0).to_numpy() * lab["weight"].fillna(0.0).to_numpy()
    lab["c_drawn"], lab["c_known"] = own, known
    if not len(drawn):
        lab["c_known"] = 1.0
    keys = ["unique_id_l", "unique_id_r"]
    extra = [c for c in ("source_dataset_l", "source_dataset_r") if c in lab.columns]
    out = lab.groupby(keys).agg(y=("y", "mean"), c_drawn=("c_drawn", "sum"), c_known=("c_known", "max"),
                                drawn=("weight", lambda w: bool(w.notna().any())),
                                **{c: (c, "first") for c in extra}).reset_index()
    out["y"] = (out["y"] >= 0.5).astype(float)
    out["c"] = out["c_drawn"] + out["c_known"]
    return out.drop(columns=["c_drawn", "c_known"])
