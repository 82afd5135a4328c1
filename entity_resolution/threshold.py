"""The match-probability threshold that links two records: given, best F1 on labelled pairs, or, without labels,
the one that maximizes the F1 the model itself expects from its probabilities once their prior is recalibrated at
the valley of the scored pairs' match weights (`unlabelled`)."""

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
    """Best F1 on the labelled pairs; among the thresholds the labels cannot tell apart, the middle one (labels
    rarely pin one). Tied: the best F1, and as many labelled errors as the best makes (a missed match traded for
    a wrong link: F1 prefers the side with one more true match, by a hair the labels do not support)."""
    scores = [scores_at(p, y, t) for t in GRID]
    best = max(s["f1"] for s in scores)
    errors = min(s["fp"] + s["fn"] for s in scores if s["f1"] >= best - 1e-12)
    tied = [i for i, s in enumerate(scores) if s["f1"] >= best - 1e-12 or s["fp"] + s["fn"] == errors]
    middle = tied[len(tied) // 2]
    t, chosen = float(GRID[middle]), scores[middle]
    return {"threshold": t, "source": "labels", "method": "best F1 on the labelled pairs",
            "labels_precision": chosen["precision"], "labels_recall": chosen["recall"], "labels_f1": chosen["f1"],
            "labelled_pairs": int(len(y)), "labelled_matches": int(y.sum()),
            "why": f"best F1 on {len(y)} labelled pairs ({int(y.sum())} matches): {best:.4f} ({errors} errors); "
                   f"{len(tied)} grid thresholds tie (that F1 or that many errors), the middle one is used"}


# the engine's probability histogram for `from_histogram`: this many bins over [0, 1]
HISTOGRAM_BINS = 10_000


def histogram_of(probability) -> pd.DataFrame:
    """`from_histogram`'s aggregate of match probabilities in memory, binned as the engine bins them
    (phases.score.histogram)."""
    p = np.asarray(probability, dtype=float)
    return pd.DataFrame({"b": np.floor(p * HISTOGRAM_BINS), "p": p}).groupby("b")["p"].agg(
        n="size", p_sum="sum", p_min="min").reset_index()


def from_histogram(bins: pd.DataFrame) -> dict:
    """The threshold maximizing the model's expected pairwise F1 over the scored pairs, from an aggregate: per
    probability bin (any order) its pairs `n`, their summed probability `p_sum` and smallest one `p_min`. Taking
    each probability as the chance the pair matches, E[TP] = the summed probability above t, and 2TP + FP + FN =
    (pairs above t) + the summed probability of all pairs. Linking whole bins from the top, the threshold is the
    smallest probability of the best bin (the exact choice moves by at most a bin's width, 1 / HISTOGRAM_BINS)."""
    b = bins.sort_values("p_min", ascending=False)
    n, s = b["n"].to_numpy(dtype=float), b["p_sum"].to_numpy(dtype=float)
    total = float(s.sum()) if len(s) else 0.0
    if not len(b) or total <= 0:
        return {"threshold": 0.5, "source": "model", "method": "none", "expected_f1": 0.0,
                "why": "no scored pairs: 0.5"}
    expected = 2 * np.cumsum(s) / (np.cumsum(n) + total)
    i = int(np.argmax(expected))
    t = float(np.clip(b["p_min"].to_numpy(dtype=float)[i], 0.05, 0.999))
    return {"threshold": round(t, 4), "source": "model", "method": "expected F1", "expected_f1": float(expected[i]),
            "expected_matches": total,
            "why": f"maximizes the model's expected F1 ({expected[i]:.4f}) over {int(n.sum())} scored pairs"}


# The valley (`unlabelled`): a Gaussian kernel density of the scored pairs' match weights, this wide in bits (a
# factor 2 in odds; 0.5 to 1.5 all keep RLdata10000 at pairwise F1 >= 0.943 over four training seeds, 2 smooths its
# valley away: benchmarks/results/er_datasets.md), searched from the model's own boundary (probability 1/2) up to
# VALLEY_MAX (0.9 to 0.99 measured the same). The first valley up there, not the emptiest: RLdata10000's deepest dip
# lies between two modes of the matches themselves, at weight 5.6-6 (probability 0.98).
VALLEY_BANDWIDTH = 1.0
VALLEY_MAX = 0.95
_VALLEY_STEP = 0.05   # bits between the points the density is evaluated at


def match_weight(p) -> np.ndarray:
    """Splink's match weight (bits: log2 of the posterior odds) of match probabilities."""
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    return np.log2(p / (1 - p))


def valley(bins: pd.DataFrame) -> float | None:
    """The match weight of the first local minimum of the scored pairs' match-weight density above weight 0
    (probability 1/2) and up to VALLEY_MAX; None when there is none. `bins`: `from_histogram`'s aggregate (each
    bin's pairs at the weight of its mean probability). The first, not the emptiest: it is the smallest correction
    the histogram supports, and a deeper dip further up is more likely one inside the matches. The density is kept
    in logs: far from every pair it stays ordered instead of rounding to 0, so an empty stretch has its minimum in
    its middle."""
    b = bins[bins["n"] > 0]
    if not len(b):
        return None
    w = match_weight(b["p_sum"].to_numpy(dtype=float) / b["n"].to_numpy(dtype=float))
    hi = float(match_weight(VALLEY_MAX))
    grid = np.arange(-_VALLEY_STEP, hi + 2 * _VALLEY_STEP, _VALLEY_STEP)
    z = np.log(b["n"].to_numpy(dtype=float))[None, :] - 0.5 * ((grid[:, None] - w[None, :]) / VALLEY_BANDWIDTH) ** 2
    top = z.max(axis=1)
    log_density = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
    i = np.arange(1, len(grid) - 1)
    minima = i[(log_density[i] < log_density[i - 1]) & (log_density[i] <= log_density[i + 1])
               & (grid[i] > 0) & (grid[i] <= hi)]
    return float(grid[minima[0]]) if len(minima) else None


def recalibrate(p, factor: float) -> np.ndarray:
    """Probabilities with their odds times `factor` (the prior's odds times it); 0 and 1 stay."""
    p = np.asarray(p, dtype=float)
    odds = factor * p / np.maximum(1 - p, 1e-300)
    return np.where(p >= 1, 1.0, odds / (1 + odds))


def recalibrated(bins: pd.DataFrame, factor: float) -> pd.DataFrame:
    """`from_histogram`'s aggregate with every bin's probabilities recalibrated (`recalibrate`, at the bin's mean:
    a bin is 1 / HISTOGRAM_BINS wide); `p_min` stays the model's, so a threshold chosen from it is on the
    probabilities the pairs table holds."""
    n = bins["n"].to_numpy(dtype=float)
    mean = bins["p_sum"].to_numpy(dtype=float) / np.maximum(n, 1)
    return bins.assign(p_sum=n * recalibrate(mean, factor))


def unlabelled(bins: pd.DataFrame) -> dict:
    """The threshold without labels: `from_histogram`'s expected F1 over the pairs' probabilities with their prior
    recalibrated so that the valley of their match weights (`valley`) has probability 1/2: every pair's odds times
    2^-valley. A model whose probabilities are overconfident puts pairs that are mostly non-matches above 1/2 (on
    RLdata10000, 25 matches in 59 pairs at weights 0 to 1, where the model says 50-67%), and the histogram's valley
    between them and the matches lies above 1/2. No valley there changes nothing; nor is a valley below 1/2 looked
    for (this corrects overconfidence only). The threshold is on the model's own probabilities, as the pairs are
    stored and linked."""
    model = from_histogram(bins)
    if model["expected_f1"] <= 0:   # no scored pairs
        return {**model, "valley_weight": None, "prior_factor": 1.0}
    v = valley(bins)
    if v is None:
        return {**model, "valley_weight": None, "prior_factor": 1.0,
                "why": f"{model['why']}; no valley in its match weights between probability 0.5 and {VALLEY_MAX}: "
                       f"no recalibration"}
    factor = float(2.0 ** -v)
    n = bins["n"].to_numpy(dtype=float)
    choice = from_histogram(recalibrated(bins, factor))
    return {**choice, "method": "expected F1, prior recalibrated at the match-weight valley", "valley_weight": v,
            "prior_factor": factor, "model_threshold": model["threshold"], "model_expected_f1": model["expected_f1"],
            "model_expected_matches": model["expected_matches"],
            "why": f"maximizes the expected F1 ({choice['expected_f1']:.4f}) over {int(n.sum())} scored pairs with "
                   f"their prior odds x {factor:.3f}, so that the valley of their match weights ({v:.2f} bits) has "
                   f"probability 1/2 (without: {model['threshold']})"}


def choose(given: float | None, pairs: pd.DataFrame, labelled: pd.DataFrame | None) -> dict:
    """The threshold and why: given (CLI or config), else from labels when there are labelled matches, else the
    model's own estimate (`unlabelled`)."""
    if given is not None:
        return {"threshold": float(given), "source": "given", "method": "given",
                "why": "set by the caller or the config"}
    if labelled is not None and len(labelled) and (labelled["clerical_match_score"] >= 0.5).any():
        return from_labels(*labelled_probabilities(pairs, labelled))
    return unlabelled(histogram_of(pairs["match_probability"]))


# the answers move the threshold away from the one chosen without them only when the F1 they estimate there beats
# that one's by this many standard errors (of the residuals between the two): the argmax of a noisy curve otherwise
# wanders, and answers lowered F1 (RLdata10000: 100 random answers 0.9433, 10 drawn ones 0.9305, none 0.9500)
EVIDENCE_SE = 2.0


def from_sample(bins: pd.DataFrame, p: np.ndarray, y: np.ndarray, c: np.ndarray,
                default: dict | None = None) -> dict:
    """The threshold of the best F1 estimated over every scored pair from the model and the labels (answers.py):
    per probability band, the matches above t are the band's probabilities above t plus sum_i c_i (y_i - p_i)
    over its labelled pairs above t, bounded by the band's pairs there; M, the matches, is every band's estimate
    plus the labelled matches never scored; F1(t) = 2 TP(t) / (pairs linked at t + M), the pairs linked counted
    exactly. `bins` is `from_histogram`'s aggregate; `p`: each labelled pair's probability (0: never scored), `y`:
    1 for a match, `c`: its coefficient (answers.calibrated). Without labels this is `from_histogram` (the model's
    own probabilities, not `unlabelled`'s recalibration: the answers measure the model as it scored); where the
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
    kept = default is not None and not _evidence(edges, f1, i, default["threshold"], p[scored], resid[scored],
                                                 linked, matches)
    if kept:
        i = _cut(edges, default["threshold"])
    t = float(default["threshold"]) if kept else float(np.clip(edges[i], 0.05, 0.999))
    precision, recall = float(tp[i] / linked[i]) if linked[i] else 1.0, float(tp[i] / matches)
    if kept:
        return {**default, "source": "labels (sample)", "estimated_f1": float(f1[i]),
                "method": f"{default['method']}; the answers' estimate does not beat it by {EVIDENCE_SE:g} standard "
                          f"errors", "labelled_pairs": int(len(y)), "labelled_matches": int(y.sum()),
                "why": f"{default['why']}; the {len(y)} labelled pairs as a sample estimate F1 {f1[i]:.4f} there "
                       f"and no threshold better by {EVIDENCE_SE:g} standard errors"}
    return {"threshold": round(t, 4), "source": "labels (sample)",
            "method": "best F1 estimated from the model and the answers as a sample", "estimated_f1": float(f1[i]),
            "estimated_precision": precision, "estimated_recall": recall, "estimated_matches": matches,
            "model_threshold": model["threshold"], "model_expected_f1": model.get("expected_f1", 0.0),
            "labelled_pairs": int(len(y)), "labelled_matches": int(y.sum()),
            "why": f"best F1 estimated from the model's probabilities and {len(y)} labelled pairs as a sample "
                   f"({int(y.sum())} matches; weighted by inverse inclusion probability, post-stratified by "
                   f"probability band): {f1[i]:.4f} (the model alone: {model['threshold']})"}


def _cut(edges, t: float) -> int:
    """The index of the cut (edges in descending order) that links the pairs at or above threshold `t`."""
    return int(np.clip(np.searchsorted(-edges, -float(t), side="right") - 1, 0, len(edges) - 1))


def _evidence(edges, f1, best: int, default_t: float, p, resid, linked, matches) -> bool:
    """Whether the estimated F1 at cut `best` beats the one at the default threshold's cut by EVIDENCE_SE standard
    errors: only the labelled pairs scored between the two inform the difference (sum of their residuals' squares)."""
    j = _cut(edges, default_t)
    if j == best:
        return False
    lo, hi = sorted((float(edges[best]), float(edges[j])))
    between = (p >= lo) & (p < hi)
    se = 2.0 * float(np.sqrt(np.sum(resid[between] ** 2))) / float(linked[max(best, j)] + matches)
    return bool(between.any()) and float(f1[best] - f1[j]) > EVIDENCE_SE * se
