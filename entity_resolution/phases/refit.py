"""Refit: with answers drawn by `er review`, m and the prior re-estimated over every scored pair, the answers
taken as the sample they are (answers.py), and the pairs scored again; the refit model is kept only where the
answers estimate its F1 at least as high.

Per comparison level l, the matches at l among the scored pairs are estimated as
    sum_U p [gamma = l] + sum_i c_i (y_i - p_i) [gamma_i = l]
(an EM step whose expected counts the answers correct; c post-stratified by probability band), m_l as their
shares; the prior scales with the matches estimated (threshold.from_sample) over the matches the model expects.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from c360.entity_resolution import answers
from c360.entity_resolution import threshold as T
from c360.entity_resolution.phases.block import Blocking
from c360.entity_resolution.phases.prepare import Prepared
from c360.entity_resolution.phases.run import MatchRun
from c360.entity_resolution.phases.score import Scored, histogram, labelled_sample, predict
from c360.entity_resolution.phases.train import Trained

# the least m of a level the scored pairs reach
M_FLOOR = 1e-4


def refit(run: MatchRun, prepared: Prepared, trained: Trained, blocking: Blocking,
          scored: Scored) -> tuple[Trained, Blocking, Scored]:
    """The model, rules and scored pairs to cluster: unchanged without drawn answers; else refit as the module
    says, kept if the answers estimate its best F1 at least as high as the first model's (the report's
    training.refit says which and why)."""
    if not answers.is_weighted(prepared.labelled):
        return trained, blocking, scored
    bins = histogram(run, scored.pairs)
    lab = labelled_sample(run, prepared.labelled, scored.pairs, bins)
    before = T.from_sample(bins, lab["p"], lab["y"], lab["cal"])
    gammas = _label_vectors(run, prepared, blocking.model, lab)
    model, counts = _refit_model(run, prepared, blocking.model, scored, lab, gammas, before["estimated_matches"])
    new_blocking = Blocking(blocking.rules, blocking.report, model, blocking.warnings)
    rescored = predict(run, prepared, new_blocking, name="er_pairs_refit")
    bins_after = histogram(run, rescored.pairs)
    after_lab = labelled_sample(run, prepared.labelled, rescored.pairs, bins_after)
    after = T.from_sample(bins_after, after_lab["p"], after_lab["y"], after_lab["cal"])
    kept = after["estimated_f1"] >= before["estimated_f1"]
    summary = {"kept": bool(kept), "estimated_f1_before": round(before["estimated_f1"], 4),
               "estimated_f1_after": round(after["estimated_f1"], 4), **counts,
               "why": ("the refit model: " if kept else "the first model: ") +
                      f"best F1 estimated from the answers {after['estimated_f1']:.4f} refit vs "
                      f"{before['estimated_f1']:.4f} before"}
    trained = Trained(trained.model, {**trained.summary, "refit": summary}, trained.warnings)
    return (trained, new_blocking, rescored) if kept else (trained, blocking, scored)


def _label_vectors(run: MatchRun, prepared: Prepared, model: dict, lab: pd.DataFrame) -> pd.DataFrame:
    """The comparison levels (gamma_*) of every labelled pair, scored or not (unique_id_l < unique_id_r): Splink's
    prediction errors from a labels table, every pair made an "error" (score 2 against a threshold of 1.5)."""
    from splink import Linker

    linker = Linker(prepared.splink_tables, model, log_level="WARNING")
    cols = ["unique_id_l", "unique_id_r"] + [c for c in ("source_dataset_l", "source_dataset_r") if c in lab.columns]
    table = run.small_splink_table(lab[cols].assign(clerical_match_score=2.0), "er_refit_labels")
    frame = linker.evaluation.prediction_errors_from_labels_table(
        table, include_false_positives=False, include_false_negatives=True,
        threshold_match_probability=1.5).as_pandas_dataframe()
    gamma = [c for c in frame.columns if c.startswith("gamma_")]
    a, b = frame["unique_id_l"].astype(str).to_numpy(), frame["unique_id_r"].astype(str).to_numpy()
    return pd.DataFrame({"unique_id_l": np.minimum(a, b), "unique_id_r": np.maximum(a, b),
                         **{g: frame[g].to_numpy() for g in gamma}}).drop_duplicates(["unique_id_l", "unique_id_r"])


def levels(comparison: dict) -> list[tuple[int, dict]]:
    """(gamma, level) of a comparison's levels that are not its null level, as Splink numbers them: the first
    non-null level highest, the last 0."""
    kept = [cl for cl in comparison["comparison_levels"] if not cl.get("is_null_level")]
    return [(len(kept) - 1 - i, cl) for i, cl in enumerate(kept)]


def _refit_model(run: MatchRun, prepared: Prepared, model: dict, scored: Scored, lab: pd.DataFrame,
                 gammas: pd.DataFrame, matches: float) -> tuple[dict, dict]:
    """(the model with m and the prior refit, the counts behind it); `matches`: the matches estimated among the
    scored pairs (T.from_sample)."""
    refit = copy.deepcopy(model)
    names = [f"gamma_{cc['output_column_name']}" for cc in refit["comparisons"]]
    expected = run.db.frame(" UNION ALL ".join(
        f"SELECT '{g}' AS g, {g} AS level, sum(match_probability) AS s FROM {scored.pairs} GROUP BY {g}"
        for g in names if g in scored.columns))
    expected_at = {(r.g, int(r.level)): float(r.s) for r in expected.itertuples()}
    merged = lab.merge(gammas, on=["unique_id_l", "unique_id_r"], how="left")
    resid = (merged["cal"] * (merged["y"] - merged["p"])).to_numpy(float)
    for cc, g in zip(refit["comparisons"], names, strict=True):
        at = merged[g].to_numpy(float) if g in merged.columns else np.full(len(merged), np.nan)
        lv = levels(cc)
        counts = np.maximum([expected_at.get((g, v), 0.0) + float(resid[at == v].sum()) for v, _ in lv], 0.0)
        # a level no scored pair reaches keeps its m (else it would veto every later pair at it)
        seen = [(cl, c) for (_, cl), c in zip(lv, counts, strict=True) if c > 0 and not cl.get("fix_m_probability")]
        mass = 1.0 - sum(float(cl.get("m_probability", 0.0)) for (_, cl), c in zip(lv, counts, strict=True)
                         if c <= 0 or cl.get("fix_m_probability"))
        if not seen or mass <= 0:
            continue
        m = np.maximum(np.array([c for _, c in seen]) / sum(c for _, c in seen), M_FLOOR)
        for (cl, _), v in zip(seen, m / m.sum() * mass, strict=True):
            cl["m_probability"] = float(v)
    model_matches = float(run.db.one(f"SELECT sum(match_probability) FROM {scored.pairs}")[0] or 0.0)
    matches = max(float(matches), 1.0)
    prior = float(model["probability_two_random_records_match"])
    refit["probability_two_random_records_match"] = float(np.clip(prior * matches / max(model_matches, 1.0),
                                                                  1e-9, 0.5))
    return refit, {"estimated_matches": round(matches, 1), "model_expected_matches": round(model_matches, 1),
                   "labelled_pairs": int(len(lab)), "labelled_matches": int(lab["y"].sum())}
