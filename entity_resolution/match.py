"""Match records with Splink (Spark or DuckDB), cluster at a threshold and assign stable int64 match_ids.

`match()` is the pipeline: it opens a run (MatchRun: the parameters and the engine, engines.py) and calls the
phases in order (phases/), each a function of the run and the typed results of the phases before it. Tables stay in
the engine (tables.Table); the driver sees aggregates, a bounded sample for the blocking counts, the labels and the
model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from c360.entity_resolution.phases import MatchRun, assign_ids, block, cluster, predict, prepare, timed, train, write
from c360.entity_resolution.phases.refit import refit


@dataclass
class MatchResult:
    out: str
    records: int
    clusters: int
    pairs_scored: int
    pairs_linked: int
    relatives_guarded: int
    engine: str
    threshold: float = 0.0
    seconds: dict = field(default_factory=dict)
    unparseable: dict = field(default_factory=dict)
    prior: float = 0.0
    report_path: str = ""


def match(inputs, config: str | Path | None = None, engine: str = "spark", labels=None,
          out: str | Path = "matched.parquet", threshold: float | None = None, previous: str | Path | None = None,
          spark=None, u_max_pairs: float = 2e6, seed: int = 42) -> MatchResult:
    """Deduplicate (one input) or link and dedupe (two inputs) with Splink; write `out` (every input row + match_id).

    `threshold` None takes the config's (default auto: with answers drawn by `er review`, the best F1 estimated
    from them as a sample and the model; with hand-made labels, best F1 on them; else the model's expected F1, its
    prior recalibrated at the valley of the match weights: threshold.unlabelled).
    Drawn answers also refit m (weighted, kept only if they estimate it better) and their pairs are linked or
    kept apart as answered; the report's training.labels says how each labels file was used. Also writes `<out>.report.json` (blocking rules and their counts, training, the threshold and why,
    unparseable counts per column, timings, match-probability histogram, parameters), `<out>.model.json` (the
    trained Splink model), `<out>.pairs.parquet` (scored pairs) and keeps match_ids stable against `previous`
    (default: an existing `out`). Every phase runs in the engine (Spark or DuckDB); on Spark `out` and the pairs are
    directories of Parquet parts, and `out` and `previous` may be Hadoop URIs (hdfs://, s3a://, file://).
    """
    timings: dict[str, float] = {}
    with timed(timings, "prepare"):  # starting the engine (a Spark session) counts as preparing
        run = MatchRun.open(inputs, config, engine, out=out, previous=previous, threshold=threshold, labels=labels,
                            spark=spark, u_max_pairs=u_max_pairs, seed=seed)
    with run:
        with timed(timings, "prepare"):
            prepared = prepare(run)
        with timed(timings, "train"):
            trained = train(run, prepared)
        with timed(timings, "block"):
            blocking = block(run, prepared, trained)
        with timed(timings, "predict"):
            scored = predict(run, prepared, blocking)
            # with answers drawn by `er review`: m and the prior refit, the pairs scored again
            trained, blocking, scored = refit(run, prepared, trained, blocking, scored)
        with timed(timings, "cluster"):  # the ids' assignment is reported with clustering
            clusters = cluster(run, prepared, scored)
            assigned = assign_ids(run, prepared, clusters)
        report = write(run, prepared, trained, blocking, scored, clusters, assigned, timings)
    return result(run, report)


def result(run: MatchRun, report: dict) -> MatchResult:
    """What match() returns: the written report's counts and where the output is."""
    return MatchResult(out=str(run.output.matched), records=report["records"], clusters=report["clusters"],
                       pairs_scored=report["pairs_scored"], pairs_linked=report["pairs_linked"],
                       relatives_guarded=report["relatives_guarded"], engine=run.engine, threshold=report["threshold"],
                       seconds=report["seconds"], unparseable=report["unparseable"],
                       prior=report["prior_probability_two_random_records_match"],
                       report_path=str(run.output.report))
