"""Train: the Splink model's prior (deterministic rules), u (random sampling) and m (EM sessions, then labelled
matches if given)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from c360.entity_resolution import answers
from c360.entity_resolution import blocking as B
from c360.entity_resolution.phases.prepare import Prepared
from c360.entity_resolution.phases.run import MatchRun, Warnings

log = logging.getLogger(__name__)
# where Splink's EM says, once per level, that a comparison level was never seen among a block's pairs
SPLINK_EM_LOGGER = "splink.internals.expectation_maximisation"


@dataclass(frozen=True)
class Trained:
    """The trained model (Splink's JSON), how it was trained, and the problems training survived."""

    model: dict
    summary: dict   # deterministic_rules, em_blocks, labelled_matches_for_m (the report's "training")
    warnings: tuple[str, ...]

    @property
    def prior(self) -> float:
        """The trained probability that two random records match."""
        return float(self.model["probability_two_random_records_match"])


def train(run: MatchRun, prepared: Prepared) -> Trained:
    """Estimate the prior, u and m; a rule or EM block that finds no pairs is skipped with a warning."""
    from splink import Linker

    warnings = Warnings()
    linker = Linker(prepared.splink_tables, prepared.settings, log_level="WARNING")
    linker, deterministic = _prior(run, prepared, linker, warnings)
    # one chunk: the rare levels (ssn last two digits, day/month swap) never reach Splink's early-exit count, so
    # its 10 chunks + probe all ran anyway, as 11 jobs per comparison instead of one (same u values, 2-3x slower)
    linker.training.estimate_u_using_random_sampling(max_pairs=run.u_max_pairs, seed=run.seed, num_chunks=1)
    em_blocks = _expectation_maximisation(run, prepared, linker, warnings)
    labelled_matches = _m_from_labels(run, prepared, linker)
    summary = {"deterministic_rules": [r.label() for r in deterministic], "em_blocks": em_blocks,
               "labelled_matches_for_m": labelled_matches, "labels": label_usage(run, prepared.labelled)}
    return Trained(linker.misc.save_model_to_json(), summary, tuple(warnings))


def _prior(run: MatchRun, prepared: Prepared, linker, warnings: Warnings):
    """(the linker with its prior, the deterministic rules it came from): the first set of rules that finds pairs,
    else 1 / records with a warning."""
    # the fallback's rules catch every pair with at most one error: their recall is high
    attempts = [(B.deterministic(run.cfg), B.RECALL),
                (B.all_but_one(run.cfg, prepared.null_share), B.ALL_BUT_ONE_RECALL)]
    for rules, recall in attempts:
        if rules:
            linker, found = _estimate_prior(run, prepared, linker, rules, recall)
            if found:
                return linker, rules
    prior = 1.0 / max(prepared.records, 2)
    warnings.warn(f"the deterministic rules found no pairs: the prior is set to 1 / records ({prior:.2e})")
    return _with_prior(prepared, linker, prior), []


def _estimate_prior(run: MatchRun, prepared: Prepared, linker, rules: list[B.Rule], recall: float):
    """(the linker, whether the rules found pairs): Splink's prior from deterministic rules of that recall. On
    Spark it is Splink's formula over the blocking sample (pairs found / recall / possible pairs, both counted on
    the sample): Splink's own estimate collects a per-key count table into the driver, which outgrows
    spark.driver.maxResultSize on large inputs."""
    if run.spark is not None:
        row = prepared.counter.on_tables(rules)
        found, possible = float(row["cumulative_comparison_count"]), float(row["total_possible_comparison_count"])
        if found <= 0 or possible <= 0 or found > possible * recall:
            return linker, False
        return _with_prior(prepared, linker, found / recall / possible), True
    try:
        linker.training.estimate_probability_two_random_records_match([r.creator() for r in rules], recall=recall)
    except ValueError:
        return linker, False
    prior = float(linker.misc.save_model_to_json()["probability_two_random_records_match"])
    if not 0 < prior < 1:  # Splink stores 0 when the rules find nothing
        return _with_prior(prepared, linker, 0.0001), False  # a valid placeholder until the next attempt
    return linker, True


def _with_prior(prepared: Prepared, linker, prior: float):
    """The linker rebuilt from its model with another prior (Splink has no setter for it)."""
    from splink import Linker

    model = linker.misc.save_model_to_json()
    model["probability_two_random_records_match"] = prior
    return Linker(prepared.splink_tables, model, log_level="WARNING")


def _expectation_maximisation(run: MatchRun, prepared: Prepared, linker, warnings: Warnings) -> list[str]:
    """m by EM sessions that together cover every comparison (blocking.em_blocks); the labels of those trained."""
    base = B.keys(run.cfg)
    rules, counts = [r for r, _ in prepared.em_candidates], [c for _, c in prepared.em_candidates]
    sparse = {base[c] for c in base if prepared.null_share.get(c, 0.0) > 0.3}
    trained = []
    with _unobserved_levels() as unobserved:
        for rule in B.em_blocks(prepared.compared, rules, counts, base, B.strong(run.cfg), sparse):
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    rule.creator(), record_sample_proportion=min(1.0, 200_000 / prepared.records))
                trained.append(rule.label())
            except Exception as exc:  # noqa: BLE001 - Splink raises its EMTrainingException (internal) or ValueError
                warnings.warn(f"EM block {rule.label()} skipped: {str(exc).splitlines()[0]}")
    if unobserved:
        log.debug("m not trained for %d comparison level(s) never seen among the EM blocks' pairs (Splink's default "
                  "m kept): %s", len(unobserved), "; ".join(unobserved))
    if not trained:
        warnings.warn("no EM block could be trained: m values stay at Splink's defaults")
    return trained


@contextlib.contextmanager
def _unobserved_levels():
    """Splink's EM warns for every comparison level it never saw among a block's pairs ("Level ... not observed in
    dataset, unable to train m value"), three lines each, a dozen per match and again from predict ("m values not
    fully trained"). It is expected: among true matches the 'all other' level of an exact identifier (SSN, date of
    birth) rarely or never occurs, and such a level keeps Splink's default m, while the F1 gates judge the result (1.0
    on the generated data). Those warnings are collected here (the levels, in order, once each) and said in one
    debug line instead; any other Splink warning passes."""
    levels: list[str] = []

    def collect(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "not observed in dataset" not in message:
            return True
        level = message.split("Level ", 1)[-1].split(" not observed", 1)[0]
        if level not in levels:
            levels.append(level)
        return False

    logger = logging.getLogger(SPLINK_EM_LOGGER)
    logger.addFilter(collect)
    try:
        yield levels
    finally:
        logger.removeFilter(collect)


def _m_from_labels(run: MatchRun, prepared: Prepared, linker) -> int:
    """m re-estimated from the labelled matches of hand-made labels, if any; how many there were. Answers drawn
    by `er review` are a sample: they inform m after scoring, weighted (refit), never here."""
    if prepared.labelled is None or answers.is_weighted(prepared.labelled):
        return 0
    # Splink takes every row it is given as a true match: only the pairs labelled as matches go in (the labelled
    # non-matches, e.g. relatives in one household, would otherwise be learnt as matches)
    matches = matching_pairs(prepared.labelled)
    if len(matches):
        linker.training.estimate_m_from_pairwise_labels(run.small_splink_table(matches, "er_labels"))
    return len(matches)


def matching_pairs(labelled: pd.DataFrame) -> pd.DataFrame:
    """The labelled pairs that are matches (clerical_match_score 1), the only ones m may be estimated from."""
    return labelled[labelled["clerical_match_score"] == 1.0].reset_index(drop=True)


def label_usage(run: MatchRun, labelled: pd.DataFrame | None) -> list[dict]:
    """How each labels file is used (the report's training.labels): with answers drawn by `er review`, every file
    is part of the sample (its weights; a file without them as known pairs) for the refit of m, the threshold
    (unless one is given) and the links themselves; hand-made files alone keep the plain use (labelled matches
    feed m, best F1 on the labels sets the threshold)."""
    if labelled is None or not len(labelled):
        return []
    weighted = answers.is_weighted(labelled)
    given = run.threshold is not None or run.cfg.threshold is not None
    out = []
    order = {Path(str(p)).name: i for i, p in reversed(list(enumerate(run.labels or ())))}
    for name, f in sorted(labelled.groupby("file", sort=False), key=lambda x: order.get(x[0], len(order))):
        matches = int((f["clerical_match_score"] >= 0.5).sum())
        drawn = bool(f["weight"].notna().any())
        if weighted:
            how = "sample: weighted by inverse inclusion probability" if drawn else "known pairs (weight 1)"
            used = ["m (refit)", *([] if given else ["threshold"]), "links"]
        else:
            how = "as given: labelled matches feed m, best F1 on the labelled pairs"
            used = [*(["m"] if matches else []), *(["threshold"] if matches and not given else [])]
        out.append({"file": name, "pairs": int(len(f)), "matches": matches, "weighted": drawn,
                    "draws": sorted(x for x in set(f["draw"]) if x), "how": how,
                    "used_for": used or ["evaluation only"]})
    return out
