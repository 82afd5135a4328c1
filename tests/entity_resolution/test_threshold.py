"""The threshold without labels (threshold.unlabelled) on small synthetic histograms of match probabilities, and
with hand-made labels (threshold.from_labels) on a few labelled pairs."""

from __future__ import annotations

import numpy as np
import pytest

from c360.entity_resolution import threshold as T


def _probabilities(*groups: tuple[float, float, int]) -> np.ndarray:
    """Pairs spread evenly over match weights [lo, hi] (bits), n of them per group, as match probabilities."""
    w = np.concatenate([np.linspace(lo, hi, n) for lo, hi, n in groups])
    return 1 / (1 + 2.0 ** -w)


def test_an_overconfident_shoulder_is_left_below_the_valley():
    # non-matches (-6.5..-1) with a shoulder the model overrates (-1..1: up to probability 2/3), few pairs at
    # 1.5..2.5, then the matches (3..12)
    p = _probabilities((-6.5, -1, 2000), (-1, 1, 150), (1.5, 2.5, 10), (3, 12, 600))
    bins = T.histogram_of(p)
    plain = T.from_histogram(bins)
    assert plain["threshold"] < 2 / 3     # the model's own probabilities link part of the shoulder
    v = T.valley(bins)
    assert 1 < v < 3
    choice = T.unlabelled(bins)
    assert choice["source"] == "model" and "valley" in choice["method"]
    assert choice["valley_weight"] == v and choice["prior_factor"] == pytest.approx(2.0 ** -v)
    assert choice["model_threshold"] == plain["threshold"]
    # on the model's scale, above the whole shoulder and at or below the first match
    assert 2 / 3 < choice["threshold"] <= 1 / (1 + 2.0 ** -3)
    assert (p >= choice["threshold"]).sum() >= 600 and (p[p >= choice["threshold"]] > 2 / 3).all()


def test_no_valley_above_one_half_changes_nothing():
    # the emptiest stretch is below probability 1/2: the density only rises above it
    bins = T.histogram_of(_probabilities((-6.5, -4, 2000), (0.5, 12, 600)))
    assert T.valley(bins) is None
    choice = T.unlabelled(bins)
    assert choice["threshold"] == T.from_histogram(bins)["threshold"]
    assert choice["method"] == "expected F1" and choice["prior_factor"] == 1.0


def test_recalibration_scales_the_odds_and_keeps_the_bins_probabilities():
    p = np.array([0.0, 0.2, 0.5, 0.8, 1.0])
    assert T.recalibrate(p, 0.25) == pytest.approx([0.0, 1 / 17, 0.2, 0.5, 1.0])
    bins = T.histogram_of(_probabilities((-3, 3, 50)))
    again = T.recalibrated(bins, 0.5)
    assert (again["p_min"] == bins["p_min"]).all() and (again["p_sum"] < bins["p_sum"]).all()
    assert T.unlabelled(T.histogram_of([]))["threshold"] == 0.5   # no scored pairs


def test_labels_tie_thresholds_that_make_as_many_errors_and_take_the_middle():
    # 102 matches (100 at 0.999, one at 0.96, one at 0.83) and two non-matches (0.82, 0.5): from 0.55 to 0.8 one
    # wrong link (F1 204/205), from 0.85 to 0.95 one missed match (202/203: a hair lower, the same one error), two
    # errors below and above
    p = np.array([0.999] * 100 + [0.96, 0.83, 0.82, 0.5])
    y = np.array([True] * 100 + [True, True, False, False])
    assert T.scores_at(p, y, 0.8)["f1"] > T.scores_at(p, y, 0.85)["f1"]   # F1 alone: 0.55-0.8, the middle 0.7
    choice = T.from_labels(p, y)
    assert choice["threshold"] == 0.75 and "(1 errors)" in choice["why"] and "9 grid thresholds tie" in choice["why"]
    # fewer errors are not a tie: with the pair at 0.83 a non-match, 0.85-0.95 make none
    y[101] = False
    assert T.from_labels(p, y)["threshold"] == 0.9
