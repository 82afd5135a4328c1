"""The match-probability threshold that links two records: given, best F1 on labelled pairs, or the one that
maximizes the F1 the model itself expects from its probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd

# thresholds tried on labels (between them F1 is flat: only the labelled pairs' probabilities matter)
GRID = np.round(np.concatenate([np.arange(0.05, 0.95, 0.05), [0.95, 0.97, 0.98, 0.99, 0.995, 0.999]]), 3)


def labelled_probabilities(pairs: pd.DataFrame, labelled: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(probability, is_match) per labelled pair; a pair the model never scored has probability 0."""
    def key(a, b):
        return np.where(a < b, a + "\x1f" + b, b + "\x1f" + a)
    prob = pd.Series(pairs["match_probability"].astype(float).to_numpy(),
                     index=key(pairs["unique_id_l"].to_numpy(str), pairs["unique_id_r"].to_numpy(str)))
    prob = prob[~prob.index.duplicated()]
    k = key(labelled["unique_id_l"].to_numpy(str), labelled["unique_id_r"].to_numpy(str))
    return prob.reindex(k).fillna(0.0).to_numpy(), labelled["clerical_match_score"].to_numpy() >= 0.5


def scores_at(p: np.ndarray, y: np.ndarray, t: float) -> dict:
    """Precision, recall, F1 and the counts behind them when pairs with probability >= t are linked."""
    pred = p >= t
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "tp": tp, "fp": fp, "fn": fn}


def f1_at(p: np.ndarray, y: np.ndarray, t: float) -> tuple[float, float, float]:
    s = scores_at(p, y, t)
    return s["precision"], s["recall"], s["f1"]


def from_labels(p: np.ndarray, y: np.ndarray) -> dict:
    """Best F1 on the labelled pairs; among equally good thresholds the middle one (labels rarely pin one)."""
    scores = [f1_at(p, y, t)[2] for t in GRID]
    best = max(scores)
    tied = [t for t, s in zip(GRID, scores, strict=True) if s >= best - 1e-12]
    t = float(tied[len(tied) // 2])
    precision, recall, f1 = f1_at(p, y, t)
    return {"threshold": t, "source": "labels", "labels_precision": precision, "labels_recall": recall,
            "labels_f1": f1, "labelled_pairs": int(len(y)), "labelled_matches": int(y.sum()),
            "why": f"best F1 on {len(y)} labelled pairs ({int(y.sum())} matches): {f1:.4f}; "
                   f"{len(tied)} grid thresholds tie, the middle one is used"}


def from_model(probability: np.ndarray) -> dict:
    """The threshold maximizing the model's expected pairwise F1 over the scored pairs: taking each probability as
    the chance the pair matches, E[TP] = sum of p above t, and 2TP + FP + FN = (pairs above t) + sum of all p."""
    p = np.sort(np.asarray(probability, dtype=float))[::-1]
    if len(p) == 0 or p.sum() <= 0:
        return {"threshold": 0.5, "source": "model", "expected_f1": 0.0, "why": "no scored pairs: 0.5"}
    above = np.cumsum(p)                      # E[TP] when the first i+1 pairs are linked
    expected = 2 * above / (np.arange(1, len(p) + 1) + p.sum())
    i = int(np.argmax(expected))
    t = float(np.clip(p[i], 0.05, 0.999))
    return {"threshold": round(t, 4), "source": "model", "expected_f1": float(expected[i]),
            "expected_matches": float(p.sum()),
            "why": f"maximizes the model's expected F1 ({expected[i]:.4f}) over {len(p)} scored pairs"}


# the engine's probability histogram for `from_histogram`: this many bins over [0, 1]
HISTOGRAM_BINS = 10_000


def from_histogram(bins: pd.DataFrame) -> dict:
    """`from_model` from an aggregate: per probability bin (any order) its pairs `n`, their summed probability
    `p_sum` and smallest one `p_min`. Linking whole bins from the top, the threshold is the smallest probability
    of the best bin (the exact choice moves by at most a bin's width, 1 / HISTOGRAM_BINS)."""
    b = bins.sort_values("p_min", ascending=False)
    n, s = b["n"].to_numpy(dtype=float), b["p_sum"].to_numpy(dtype=float)
    total = float(s.sum()) if len(s) else 0.0
    if not len(b) or total <= 0:
        return {"threshold": 0.5, "source": "model", "expected_f1": 0.0, "why": "no scored pairs: 0.5"}
    expected = 2 * np.cumsum(s) / (np.cumsum(n) + total)
    i = int(np.argmax(expected))
    t = float(np.clip(b["p_min"].to_numpy(dtype=float)[i], 0.05, 0.999))
    return {"threshold": round(t, 4), "source": "model", "expected_f1": float(expected[i]),
            "expected_matches": total,
            "why": f"maximizes the model's expected F1 ({expected[i]:.4f}) over {int(n.sum())} scored pairs"}


def choose(given: float | None, pairs: pd.DataFrame, labelled: pd.DataFrame | None) -> dict:
    """The threshold and why: given (CLI or config), else from labels when there are labelled matches, else the
    model's own estimate."""
    if given is not None:
        return {"threshold": float(given), "source": "given", "why": "set by the caller or the config"}
    if labelled is not None and len(labelled) and (labelled["clerical_match_score"] >= 0.5).any():
        return from_labels(*labelled_probabilities(pairs, labelled))
    return from_model(pairs["match_probability"].to_numpy())


def from_sample(bins: pd.DataFrame, p: np.ndarray, y: np.ndarray, c: np.ndarray) -> dict:
    """The threshold of the best F1 estimated over every scored pair from the model and the labels (answers.py):
    per probability band, the matches above t are the band's probabilities above t plus sum_i c_i (y_i - p_i)
    over its labelled pairs above t, bounded by the band's pairs there; M, the matches, is every band's estimate
    plus the labelled matches never scored; F1(t) = 2 TP(t) / (pairs linked at t + M), the pairs linked counted
    exactly. `bins` is `from_histogram`'s aggregate; `p`: each labelled pair's probability (0: never scored), `y`:
    1 for a match, `c`: its coefficient (answers.calibrated). Without labels this is `from_histogram`; where the
    answers agree with the model it moves nothing."""
    from c360.entity_resolution.answers import band

    model = from_histogram(bins)
    if not len(bins):
        return {**model, "source": "labels (sample)"}
    b = bins.sort_values("p_min", ascending=False).reset_index(drop=True)
    n, s, edges = (b[k].to_numpy(dtype=float) for k in ("n", "p_sum", "p_min"))
    p, y, c = (np.asarray(a, dtype=float) for a in (p, y, c))
    resid, scored = c * (y - p), p > 0
    # each scored labelled pair's residual in its bin: the first (from the top) whose smallest probability <= p
    at = np.minimum(np.searchsorted(-edges, -p[scored], side="left"), len(edges) - 1)
    r = np.bincount(at, weights=resid[scored], minlength=len(edges))
    bands = pd.Series(band(edges))
    within = pd.DataFrame({"s": s, "n": n, "r": r}).groupby(bands).cumsum()
    tp_band = np.clip(within["s"] + within["r"], 0.0, within["n"]).to_numpy()
    totals = pd.DataFrame({"s": s, "n": n, "r": r}).groupby(bands).sum()
    full = np.clip(totals["s"] + totals["r"], 0.0, totals["n"]).sort_index(ascending=False)
    above = full.cumsum().shift(fill_value=0.0)        # the bands wholly above each band
    tp = bands.map(above).to_numpy() + tp_band
    linked = np.cumsum(n)
    matches = max(float(full.sum() + resid[~scored].sum()), float(tp.max()), 1e-9)
    f1 = 2 * tp / (linked + matches)
    i = int(np.argmax(f1))
    t = float(np.clip(edges[i], 0.05, 0.999))
    precision, recall = float(tp[i] / linked[i]) if linked[i] else 1.0, float(tp[i] / matches)
    return {"threshold": round(t, 4), "source": "labels (sample)", "estimated_f1": float(f1[i]),
            "estimated_precision": precision, "estimated_recall": recall, "estimated_matches": matches,
            "model_threshold": model["threshold"], "model_expected_f1": model.get("expected_f1", 0.0),
            "labelled_pairs": int(len(y)), "labelled_matches": int(y.sum()),
            "why": f"best F1 estimated from the model's probabilities and {len(y)} labelled pairs as a sample "
                   f"({int(y.sum())} matches; weighted by inverse inclusion probability, post-stratified by "
                   f"probability band): {f1[i]:.4f} (the model alone: {model['threshold']})"}
