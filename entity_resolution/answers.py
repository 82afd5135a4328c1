"""Labelled pairs as the sample they are: each pair's coefficient in estimates over the population of scored pairs.

`c360 er review` draws sets from the scored pairs of one run, leaving out every pair already answered; a file it
wrote says, per drawn pair, its weight (inverse inclusion probability) and its draw (`r<k>.<id>`: k - 1 draws
were answered before it). For a population total T = sum over scored pairs of y (a match: 1) the difference
estimator of draw k is

    T_k = sum_U f + sum_{answered before k} (y - f) + sum_{drawn in k} w (y - f)

(f: the model's match probability; unbiased whatever f, given the draw). The draws are averaged by their sizes, so
every labelled pair gets one coefficient c and T = sum_U f + sum_i c_i (y_i - f_i). Hand-made labels (no weights)
were answered before every draw: their c is 1 (what they say is known; nothing is extrapolated from them).

The drawn part of c is then post-stratified by probability band (`calibrated`): within a band the drawn pairs
stand for exactly the band's pairs not known (a Hajek ratio), and estimates are bounded band by band
(threshold.from_sample), so answers in one band never move another.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# probability bands for post-stratification: whole bits of log2 odds (p 0.01 is -6.6, p 0.999 is 10)
BAND_LOW, BAND_HIGH = -7, 11
# pseudo-pairs of residual 0 (the model right) beside a band's drawn pairs: one odd answer moves a band less
PRIOR_PAIRS = 1.0


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
    return out


def band(p) -> np.ndarray:
    """The probability band of each p: whole bits of log2 odds, clipped to [BAND_LOW, BAND_HIGH]."""
    q = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    return np.clip(np.floor(np.log2(q / (1 - q))), BAND_LOW, BAND_HIGH).astype(int)


def calibrated(p, c_known, c_drawn, bins: pd.DataFrame) -> np.ndarray:
    """Each labelled pair's coefficient post-stratified by probability band: within a band of N scored pairs, K of
    them known, the drawn pairs' weights are scaled to stand for the N - K others (a Hajek ratio, with a pseudo-pair
    of residual 0 beside them: PRIOR_PAIRS, the model's word), so a band's estimate never borrows from another's.
    A pair never scored (p 0) keeps its weight. `bins`: the histogram of the scored pairs (n, p_min per bin)."""
    p, c_known, c_drawn = (np.asarray(a, dtype=float) for a in (p, c_known, c_drawn))
    size = pd.Series(bins["n"].to_numpy(float)).groupby(band(bins["p_min"].to_numpy(float))).sum()
    scored = p > 0
    b = band(p)
    frame = pd.DataFrame({"b": b[scored], "k": c_known[scored], "d": c_drawn[scored],
                          "drawn": (c_drawn[scored] > 0).astype(float)})
    per = frame.groupby("b").agg(k=("k", "sum"), d=("d", "sum"), drawn=("drawn", "sum"))
    mean_w = per["d"] / per["drawn"].where(per["drawn"] > 0)
    others = (size.reindex(per.index).fillna(0.0) - per["k"]).clip(lower=0.0)
    factor = (others / (per["d"] + PRIOR_PAIRS * mean_w)).where(per["d"] > 0, 0.0).fillna(0.0)
    scale = np.where(scored, pd.Series(b).map(factor).fillna(0.0).to_numpy(), 1.0)
    return c_known + c_drawn * scale
