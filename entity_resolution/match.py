"""Match records with Splink (Spark or DuckDB), cluster at a threshold and assign stable int64 match_ids.

`match()` opens the engine (engines.py: Spark or DuckDB) and runs the phases in order, each a function of one
`MatchContext`: prepare (inputs read, checked and standardized in the engine, blocking measured, linker built) →
train → block → predict → cluster (threshold chosen) → assign_ids → write. Tables stay in the engine; the driver
sees aggregates, a bounded sample for the blocking counts, the labels and the model.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from c360 import hadoop_fs
from c360.entity_resolution import blocking as B
from c360.entity_resolution import engines as E
from c360.entity_resolution import model as M
from c360.entity_resolution import standardize_sql as Q
from c360.entity_resolution import threshold as T
from c360.entity_resolution.comparisons import Compared, build_comparisons, skewed_counts
from c360.entity_resolution.config import MatchConfig, load_config
from c360.entity_resolution.stable_ids import match_ids_query, previous_id_column
from c360.errors import InputError
from c360.io import json_text, parse_json, write_json_file
from c360.layout import MatchOutput

SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
log = logging.getLogger(__name__)


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


@dataclass
class Input:
    """One input as the engine holds it: the raw table and its column types, the standardized table, counts."""

    path: str
    raw: str
    types: dict
    csv: bool
    source_dataset: str
    rows: int = 0
    present: dict = field(default_factory=dict)   # input column -> present (non-blank) values
    std: str = ""


@dataclass
class MatchContext:
    """One match run: its parameters, then what each phase adds (engine tables by name, the linker, small results:
    counts, the model, the threshold); no phase holds a table's rows in the driver."""

    inputs: list  # as given (paths or strings), for the report
    cfg: MatchConfig
    engine: str
    output: MatchOutput
    threshold: float | None = None   # None: the config's, else chosen (labels, or the model's expected F1)
    labels: list | None = None
    previous: Path | str | None = None   # a local Path or a Hadoop URI (Spark)
    u_max_pairs: float = 2e6
    seed: int = 42
    spark: Any = None
    t0: float = field(default_factory=time.time)
    # unique table names: a shared Spark session may hold an earlier run's
    tag: str = field(default_factory=lambda: f"_{uuid.uuid4().hex[:8]}")
    timings: dict = field(default_factory=dict)
    # engine session
    db: E.Engine | None = None
    # prepare
    tables: list[Input] = field(default_factory=list)
    records: int = 0
    columns: list[str] = field(default_factory=list)          # the standardized tables' columns
    null_share: dict[str, float] = field(default_factory=dict)   # per standardized column: share missing
    unparseable: dict = field(default_factory=dict)
    compared: list[Compared] = field(default_factory=list)
    labelled: pd.DataFrame | None = None   # small: the labelled pairs
    db_api: Any = None
    sdfs: list = field(default_factory=list)
    blocking: dict = field(default_factory=dict)
    rules: list[B.Rule] = field(default_factory=list)
    candidates: list[tuple[B.Rule, int]] = field(default_factory=list)
    em_candidates: list[tuple[B.Rule, int]] = field(default_factory=list)
    count_tables: list = field(default_factory=list)   # where the blocking analysis counts (see _counting_tables)
    count_sampled: float = 1.0
    settings: Any = None
    linker: Any = None
    # train
    model_json: dict | None = None
    warnings: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)
    # predict
    pairs: str = ""            # the scored pairs' table
    pair_columns: list[str] = field(default_factory=list)
    # cluster
    threshold_choice: dict = field(default_factory=dict)
    guard: str = "FALSE"       # SQL: a scored pair the households rule vetoes
    linked: str = ""           # the linked pairs' table
    nodes: str = ""            # every record: node_id, unique_id, source_dataset
    clusters: str = ""         # node_id -> cluster_id
    counts: dict = field(default_factory=dict)   # pairs scored / linked / guarded, histogram
    # assign ids
    result: str = ""           # SQL: every input row + match_id

    @classmethod
    def create(cls, inputs, config: str | Path | None = None, engine: str = "spark", **params) -> MatchContext:
        """Check the inputs, load the match config; `params` are the other MatchContext fields (`out`: the path)."""
        inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
        if not inputs or len(inputs) > 2:
            raise InputError("--input must be given once or twice")
        threshold = params.get("threshold")
        if threshold is not None and not 0 < float(threshold) < 1:
            raise InputError(f"--threshold must be between 0 and 1 (got {threshold})")
        out = _output_path(params.pop("out", "matched.parquet"), engine, "--out")
        previous = params.pop("previous", None)
        previous = _output_path(previous, engine, "--previous") if previous else None
        return cls(inputs=inputs, cfg=load_config(config), engine=engine, output=MatchOutput(out), previous=previous,
                   **params)

    @property
    def link_type(self) -> str:
        return "link_and_dedupe" if len(self.inputs) == 2 else "dedupe_only"

    @property
    def prior(self) -> float:
        """The trained probability that two random records match."""
        return float(self.model_json["probability_two_random_records_match"])

    @property
    def chosen_threshold(self) -> float:
        return float(self.threshold_choice["threshold"])

    def warn(self, message: str) -> None:
        """A problem the run survived: logged, and listed in the report."""
        log.warning(message)
        self.warnings.append(message)


def match(inputs, config: str | Path | None = None, engine: str = "spark", labels=None,
          out: str | Path = "matched.parquet", threshold: float | None = None, previous: str | Path | None = None,
          spark=None, u_max_pairs: float = 2e6, seed: int = 42) -> MatchResult:
    """Deduplicate (one input) or link and dedupe (two inputs) with Splink; write `out` (every input row + match_id).

    `threshold` None takes the config's (default auto: best F1 on the labels when given, else the model's expected
    F1). Also writes `<out>.report.json` (blocking rules and their counts, training, the threshold and why,
    unparseable counts per column, timings, match-probability histogram, parameters), `<out>.model.json` (the
    trained Splink model), `<out>.pairs.parquet` (scored pairs) and keeps match_ids stable against `previous`
    (default: an existing `out`). Every phase runs in the engine (Spark or DuckDB); on Spark `out` and the pairs are
    directories of Parquet parts, and `out` and `previous` may be Hadoop URIs (hdfs://, s3a://, file://).
    """
    ctx = MatchContext.create(inputs, config, engine, labels=labels, out=out, threshold=threshold,
                              previous=previous, spark=spark, u_max_pairs=u_max_pairs, seed=seed)
    with engine_session(ctx):
        prepare(ctx)
        train(ctx)
        block(ctx)
        predict(ctx)
        cluster(ctx)
        assign_ids(ctx)
        return write(ctx)


def _output_path(path: str | Path, engine: str, option: str) -> Path | str:
    """A match output's path as the engine takes it: a local Path, or on Spark any Hadoop URI (hdfs://, s3a://,
    file://) as given; DuckDB writes local paths (file: URIs included), another URI is an InputError naming
    `option`."""
    if not hadoop_fs.is_uri(path):
        return Path(path)
    if engine == "spark":
        return str(path)
    local = hadoop_fs.local_path(path)
    if local is None:
        raise InputError(f"{option} {path}: the {engine} engine reads and writes local paths only "
                         f"(a Hadoop URI such as hdfs:// or s3a:// needs --engine spark)")
    return local


def _exists(ctx: MatchContext, path: Path | str) -> bool:
    """Whether a match output (a file or a directory of parts) is at `path` (a URI through Hadoop)."""
    return hadoop_fs.exists(ctx.spark, path) if isinstance(path, str) else path.exists()


def _previous_id_column(ctx: MatchContext, previous: Path | str) -> str:
    """The record id column of a previous match output (its report names it; default "id")."""
    if not isinstance(previous, str):
        return previous_id_column(previous)
    report = MatchOutput(previous).report
    if not hadoop_fs.is_file(ctx.spark, report):
        return "id"
    return str(parse_json(hadoop_fs.read_text(ctx.spark, report), report).get("id", "id"))


def _write_json(ctx: MatchContext, path: Path | str, data) -> None:
    """Write a JSON file of the output atomically (a URI through Hadoop's FileSystem)."""
    if isinstance(path, str):
        hadoop_fs.write_text(ctx.spark, path, json_text(data))
    else:
        write_json_file(path, data)


@contextlib.contextmanager
def engine_session(ctx: MatchContext) -> Iterator[MatchContext]:
    """The engine of this run (`ctx.db`); on Spark the match's SQL settings while inside, restored on exit with this
    run's tables dropped (the session lives on)."""
    ctx.db = E.open_engine(ctx.engine, ctx.tag, ctx.spark)
    ctx.db_api = ctx.db.db_api
    ctx.spark = getattr(ctx.db, "spark", None)
    try:
        with _spark_conf(ctx.spark, E.SPARK_CONF):
            yield ctx
    finally:
        ctx.db.close()


def prepare(ctx: MatchContext) -> None:
    """Read, check and standardize every input in the engine (InputError naming the file on bad input); count
    missing and unreadable values; build the comparisons (term frequencies from skew aggregates); read the labels;
    measure the candidate blocking rules and build the linker."""
    from splink import Linker

    db, cfg = ctx.db, ctx.cfg
    many = len(ctx.inputs) > 1
    for i, p in enumerate(ctx.inputs):
        raw, types, csv = db.read_input(p, cfg, f"er_raw_{i}")
        info = db.check_input(p, raw, cfg, types, csv)
        ctx.tables.append(Input(str(p), raw, types, csv, f"input{i}" if many else "input0", info["rows"],
                                info["present"]))
    ctx.records = sum(t.rows for t in ctx.tables)
    if ctx.spark is not None:  # few, small shuffle partitions: Splink runs many small SQL steps
        _set_spark_conf(ctx, SHUFFLE_PARTITIONS, str(max(2, min(64, ctx.records // 40_000))))
    present = {}
    for i, t in enumerate(ctx.tables):
        t.std = db.standardize(t.raw, cfg, t.types, t.csv, t.source_dataset, f"er_input_{i}")
        ctx.columns = list(db.types(t.std))
        present[i] = db.present_shares([t.std], ctx.columns)
        bad: dict[str, int] = {}
        for f in cfg.fields:  # a present value that standardizes to missing could not be read
            bad[f.column] = bad.get(f.column, 0) + t.present[f.column] - present[i][f.name]
        ctx.unparseable.update({f"{Path(t.path).name}:{c}": n for c, n in bad.items() if n})
    ctx.null_share = {c: 1.0 - sum(present[i][c] for i in present) / ctx.records for c in ctx.columns}
    stds = [t.std for t in ctx.tables]
    ctx.compared = build_comparisons(cfg, lambda name: skewed_counts(*db.value_counts_summary(stds, name)))
    if ctx.labels:
        ctx.labelled = _labels_pairs(ctx, ctx.labels)
    ctx.sdfs = [ctx.db_api.register(t.std, table_name=f"er_splink_{i}{ctx.tag}") for i, t in enumerate(ctx.tables)]
    measure_candidates(ctx)
    # training does not use the prediction rules: they are chosen after it, from the trained model (block)
    provisional = [min((x for x in ctx.candidates if x[1] > 0), key=lambda x: x[1], default=ctx.candidates[0])[0]]
    ctx.settings = M.settings(ctx.compared, provisional, ctx.link_type)
    ctx.linker = Linker(_tables(ctx), ctx.settings, log_level="WARNING")
    ctx.timings["prepare"] = time.time() - ctx.t0


def _tables(ctx: MatchContext):
    return ctx.sdfs if len(ctx.sdfs) > 1 else ctx.sdfs[0]


def measure_candidates(ctx: MatchContext) -> None:
    """Count the comparisons of every candidate blocking rule with Splink's blocking analysis (EM blocks and the
    prediction rules are chosen among them)."""
    candidates = B.candidates(ctx.cfg)
    if not candidates:
        raise InputError(f"{ctx.cfg.source}: no field to block on (fields: {', '.join(sorted(ctx.cfg.names))})")
    exact = B.exact_identifiers(ctx.cfg)
    counts = _count_each(ctx, candidates + exact)
    ctx.candidates = list(zip(candidates, counts[:len(candidates)], strict=True))
    ctx.em_candidates = ctx.candidates + list(zip(exact, counts[len(candidates):], strict=True))


def _count_each(ctx: MatchContext, rules: list[B.Rule]) -> list[int]:
    return B.count_each(_counting_tables(ctx), rules, ctx.link_type, ctx.records, ctx.count_sampled)


def _count(ctx: MatchContext, rules: list[B.Rule]) -> list[dict]:
    return B.count(_counting_tables(ctx), rules, ctx.link_type, ctx.records, ctx.count_sampled)


def _counting_tables(ctx: MatchContext) -> list:
    """Where the blocking analysis counts: the registered inputs on DuckDB (Splink samples above
    B.EXACT_COUNT_RECORDS); on Spark a Bernoulli sample of at most about that many standardized records in a DuckDB of
    the driver (each count would otherwise be a Spark job, ~1-2 s each; the sample keeps the
    driver's memory flat whatever the data's size)."""
    if ctx.spark is None:
        return ctx.sdfs
    if not ctx.count_tables:
        from splink import DuckDBAPI

        cols = ctx.columns  # every standardized column: the prior's deterministic rules count here too
        ctx.count_sampled = min(1.0, B.EXACT_COUNT_RECORDS / max(ctx.records, 1))
        duck = DuckDBAPI()
        ctx.count_tables = [duck.register(ctx.db.sample(t.std, cols, ctx.count_sampled, ctx.seed),
                                          table_name=f"er_count_{i}{ctx.tag}") for i, t in enumerate(ctx.tables)]
    return ctx.count_tables


def block(ctx: MatchContext) -> None:
    """Choose the prediction rules (the config's, or from the data: the most estimated recall per comparison within
    the budget, recall estimated from the trained model's agreement rates) and rebuild the linker with them; the
    rules' marginal and cumulative counts (Splink's blocking analysis) go into the report."""
    from splink import Linker

    t = time.time()
    n, base = ctx.records, B.keys(ctx.cfg)
    agree = B.agreement(ctx.cfg, ctx.model_json, ctx.null_share)
    limit = B.budget(ctx.cfg, n)
    rules, counts = [r for r, _ in ctx.candidates], [c for _, c in ctx.candidates]
    if ctx.cfg.blocking.rules:
        ctx.rules = [B.Rule(sql=r) if isinstance(r, str) else B.Rule(tuple(_block_key(ctx.cfg, c) for c in r))
                     for r in ctx.cfg.blocking.rules]
        chosen_by = "config"
    else:
        ctx.rules = [rules[i] for i in B.choose(rules, counts, base, agree, limit)]
        chosen_by = "data"
        if not ctx.rules:  # every candidate exceeds the budget on its own: the smallest non-empty one
            usable = [(c, r) for r, c in ctx.candidates if c > 0]
            if not usable:
                raise InputError(f"{', '.join(map(str, ctx.inputs))}: no blocking rule finds any candidate pair "
                                 f"(fields: {', '.join(sorted(ctx.cfg.names))})")
            ctx.rules = [min(usable, key=lambda x: x[0])[1]]
            ctx.warn(f"every candidate blocking rule exceeds the budget of {limit:,.0f} comparisons: "
                     f"using the smallest, {ctx.rules[0].label()}")
    rows = _count(ctx, ctx.rules)
    ctx.blocking = {
        "chosen_by": chosen_by, "max_comparisons": limit,
        "comparisons": int(rows[-1]["cumulative_comparison_count"]), "estimated": bool(rows[-1]["is_estimate"]),
        "estimated_recall": B.estimated_recall(ctx.rules, base, agree),
        "rules": [{"rule": r.label(), "marginal": int(x["marginal_comparison_count"]),
                   "cumulative": int(x["cumulative_comparison_count"])} for r, x in zip(ctx.rules, rows, strict=True)],
        "fields_without_backup": B.uncovered(ctx.rules, base),
        "agreement_of_true_matches": {k: round(v, 4) for k, v in agree.items()},
        "candidates": [{"rule": r.label(), "comparisons": c} for r, c in sorted(ctx.candidates, key=lambda x: x[1])]}
    for f in ctx.blocking["fields_without_backup"]:
        ctx.warn(f"every blocking rule needs {f}: a pair with {f} missing or wrong is never compared")
    model = dict(ctx.model_json)
    model["blocking_rules_to_generate_predictions"] = [
        r.creator() if r.sql is not None else r.creator().get_blocking_rule(model["sql_dialect"]).as_dict()
        for r in ctx.rules]
    ctx.model_json = model
    ctx.linker = Linker(_tables(ctx), model, log_level="WARNING")
    ctx.timings["block"] = time.time() - t


def _estimate_prior(ctx: MatchContext, rules: list[B.Rule], recall: float) -> bool:
    """Splink's prior from deterministic rules of that recall; False (prior untouched) when they find no pairs.
    On Spark it is Splink's formula over the blocking sample (pairs found / recall / possible pairs, both counted
    on the sample): Splink's own estimate collects a per-key count table into the driver, which outgrows
    spark.driver.maxResultSize on large inputs."""
    if ctx.spark is not None:
        row = B.count(_counting_tables(ctx), rules, ctx.link_type, B.EXACT_COUNT_RECORDS)[-1]  # exact: the sample
        found, possible = float(row["cumulative_comparison_count"]), float(row["total_possible_comparison_count"])
        if found <= 0 or possible <= 0 or found > possible * recall:
            return False
        _set_prior(ctx, found / recall / possible)
        return True
    try:
        ctx.linker.training.estimate_probability_two_random_records_match([r.creator() for r in rules], recall=recall)
    except ValueError:
        return False
    prior = float(ctx.linker.misc.save_model_to_json()["probability_two_random_records_match"])
    if not 0 < prior < 1:  # Splink stores 0 when the rules find nothing
        _set_prior(ctx, 0.0001)  # a valid placeholder until the next attempt
        return False
    return True


def _set_prior(ctx: MatchContext, prior: float) -> None:
    """Rebuild the linker from its model with another prior (Splink has no setter for it)."""
    from splink import Linker

    model = ctx.linker.misc.save_model_to_json()
    model["probability_two_random_records_match"] = prior
    ctx.linker = Linker(_tables(ctx), model, log_level="WARNING")


def _block_key(cfg: MatchConfig, name: str) -> str:
    f = cfg.get(name)
    return f"{name}_canon" if f is not None and f.type == "name" and f.nicknames else name


def train(ctx: MatchContext) -> None:
    """Estimate the prior (deterministic rules from the fields present), u (random sampling), m (EM sessions that
    together cover every comparison, then labelled matches if given); keep the model. A rule or block that finds
    no pairs is skipped with a warning."""
    t = time.time()
    base = B.keys(ctx.cfg)
    # the fallback's rules catch every pair with at most one error: their recall is high
    attempts = [(B.deterministic(ctx.cfg), B.RECALL), (B.all_but_one(ctx.cfg, ctx.null_share), B.ALL_BUT_ONE_RECALL)]
    deterministic: list[B.Rule] = []
    for rules, recall in attempts:
        if rules and _estimate_prior(ctx, rules, recall):
            deterministic = rules
            break
    else:
        prior = 1.0 / max(ctx.records, 2)
        ctx.warn(f"the deterministic rules found no pairs: the prior is set to 1 / records ({prior:.2e})")
        _set_prior(ctx, prior)
    training = ctx.linker.training
    # one chunk: the rare levels (ssn last two digits, day/month swap) never reach Splink's early-exit count, so
    # its 10 chunks + probe all ran anyway, as 11 jobs per comparison instead of one (same u values, 2-3x slower)
    training.estimate_u_using_random_sampling(max_pairs=ctx.u_max_pairs, seed=ctx.seed, num_chunks=1)
    n = ctx.records
    rules, counts = [r for r, _ in ctx.em_candidates], [c for _, c in ctx.em_candidates]
    strong = {f.name for f in ctx.cfg.of_type("identifier", "phone", "email")}
    sparse = {base[c] for c in base if ctx.null_share.get(c, 0.0) > 0.3}
    blocks = B.em_blocks(ctx.compared, rules, counts, base, strong, sparse)
    trained = []
    for rule in blocks:
        try:
            training.estimate_parameters_using_expectation_maximisation(
                rule.creator(), record_sample_proportion=min(1.0, 200_000 / n))
            trained.append(rule.label())
        except Exception as exc:  # noqa: BLE001 - Splink raises its EMTrainingException (internal) or ValueError
            ctx.warn(f"EM block {rule.label()} skipped: {str(exc).splitlines()[0]}")
    if not trained:
        ctx.warn("no EM block could be trained: m values stay at Splink's defaults")
    labelled_matches = 0
    if ctx.labelled is not None:
        # Splink takes every row it is given as a true match: only the pairs labelled as matches go in (the
        # labelled non-matches, e.g. relatives in one household, would otherwise be learnt as matches)
        lp = matching_pairs(ctx.labelled)
        labelled_matches = len(lp)
        if len(lp):
            training.estimate_m_from_pairwise_labels(_register(ctx, lp, "er_labels"))
    ctx.training = {"deterministic_rules": [r.label() for r in deterministic], "em_blocks": trained,
                    "labelled_matches_for_m": labelled_matches}
    ctx.model_json = ctx.linker.misc.save_model_to_json()
    ctx.timings["train"] = time.time() - t


def predict(ctx: MatchContext) -> None:
    """Score the candidate pairs (probability >= 0.01); the pairs' table keeps the columns clustering and reports
    need (Splink's has many more)."""
    t = time.time()
    pred = ctx.linker.inference.predict(threshold_match_probability=0.01)
    keep = ["unique_id_l", "unique_id_r", "source_dataset_l", "source_dataset_r", "match_probability",
            "match_weight"] + [c for c in ("gamma_first_name",) if ctx.cfg.households and ctx.cfg.get("first_name")]
    cols = [c.unquote().name for c in pred.columns]
    sel = [c if c in cols else f"'input0' AS {c}" for c in keep
           if c in cols or c.startswith("source_dataset")]
    ctx.pairs = ctx.db.table("er_pairs", f"SELECT {', '.join(sel)} FROM {pred.physical_name}")
    ctx.pair_columns = [c.split(" AS ")[-1] for c in sel]
    ctx.timings["predict"] = time.time() - t


def cluster(ctx: MatchContext) -> None:
    """Choose the threshold (given, labels, or the model's expected F1 from a probability histogram); link pairs at
    it unless the households rule vetoes them (relatives: clearly different first names); connected components
    of the linked records (Splink's clustering, in the engine)."""
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    t = time.time()
    db, pairs = ctx.db, ctx.pairs
    given = ctx.threshold if ctx.threshold is not None else ctx.cfg.threshold
    if given is not None or not _has_labelled_matches(ctx.labelled):
        ctx.threshold_choice = T.choose(given, None, None) if given is not None else T.from_histogram(db.frame(
            f"SELECT floor(match_probability * {T.HISTOGRAM_BINS}) AS b, count(*) AS n, "
            f"sum(match_probability) AS p_sum, min(match_probability) AS p_min FROM {pairs} GROUP BY 1"))
    else:
        ctx.threshold_choice = T.choose(None, _labelled_scores(ctx), ctx.labelled)
    ctx.guard = relatives_guard(ctx.pair_columns)
    at = f"match_probability >= {ctx.chosen_threshold!r}"
    # both computed once with their lineage cut: the connected-components loop reads them at every step
    ctx.linked = db.table("er_linked", f"SELECT {_node('source_dataset_l', 'unique_id_l')} AS node_l, "
                                       f"{_node('source_dataset_r', 'unique_id_r')} AS node_r, match_probability "
                                       f"FROM {pairs} WHERE {at} AND NOT ({ctx.guard})", persist=True)
    union = " UNION ALL ".join(f"SELECT unique_id, source_dataset FROM {x.std}" for x in ctx.tables)
    ctx.nodes = db.table("er_nodes", f"SELECT {_node('source_dataset', 'unique_id')} AS node_id, unique_id, "
                                     f"source_dataset FROM ({union}) u", persist=True)
    cc = cluster_pairwise_predictions_at_threshold(
        ctx.nodes, ctx.linked, ctx.db_api, node_id_column_name="node_id", edge_id_column_name_left="node_l",
        edge_id_column_name_right="node_r", threshold_match_probability=None)
    ctx.clusters = db.table("er_clusters", f"SELECT node_id, cluster_id FROM {cc.physical_name}", persist=True)
    row = db.one(f"SELECT count(*), sum(CASE WHEN {at} AND NOT ({ctx.guard}) THEN 1 ELSE 0 END), "
                 f"sum(CASE WHEN {at} AND ({ctx.guard}) THEN 1 ELSE 0 END) FROM {pairs}")
    hist = dict(db.rows(f"SELECT least(CAST(floor(match_probability * 20) AS INT), 19) AS b, count(*) FROM {pairs} "
                        f"GROUP BY 1"))
    ctx.counts = {"pairs_scored": int(row[0]), "pairs_linked": int(row[1] or 0), "relatives_guarded": int(row[2] or 0),
                  "histogram": [int(hist.get(b, 0)) for b in range(20)]}
    ctx.timings["cluster"] = time.time() - t


def _node(source: str, uid: str) -> str:
    # unique_id alone may repeat across two linked inputs
    return f"concat({source}, '-__-', {uid})"


def _has_labelled_matches(labelled: pd.DataFrame | None) -> bool:
    return labelled is not None and len(labelled) > 0 and bool((labelled["clerical_match_score"] >= 0.5).any())


def _labelled_scores(ctx: MatchContext) -> pd.DataFrame:
    """The scored pairs that are labelled (small: labels are), either way round."""
    lab = ctx.db.small_table("er_labelled", ctx.labelled[["unique_id_l", "unique_id_r"]])
    sql = " UNION ALL ".join(
        f"SELECT p.unique_id_l, p.unique_id_r, p.match_probability FROM {ctx.pairs} p JOIN {lab} l "
        f"ON p.unique_id_l = l.{a} AND p.unique_id_r = l.{b}" for a, b in (("unique_id_l", "unique_id_r"),
                                                                          ("unique_id_r", "unique_id_l")))
    return ctx.db.frame(sql)


def assign_ids(ctx: MatchContext) -> None:
    """Every input row with an int64 match_id, stable against the previous output (default: an existing out):
    joins and windows in the engine (stable_ids)."""
    t = time.time()
    db = ctx.db
    records = db.table("er_records", f"SELECT n.unique_id AS key, c.cluster_id AS cluster FROM {ctx.nodes} n "
                                     f"JOIN {ctx.clusters} c ON n.node_id = c.node_id")
    prev = ctx.previous or ctx.output.matched
    prev_table, id_col = None, "id"
    if _exists(ctx, prev):
        id_col = _previous_id_column(ctx, prev)
        table = db.read_parquet(prev, "er_previous")
        if {"match_id", id_col} <= set(db.types(table)):
            prev_table = table
    ids = db.table("er_ids", match_ids_query(records, prev_table, Q.quote(id_col, db.dialect), db.dialect.string),
                   persist=True)
    keyed = db.table("er_keyed", f"SELECT n.unique_id, n.source_dataset, i.match_id FROM {ctx.nodes} n "
                                 f"JOIN {ctx.clusters} c ON n.node_id = c.node_id JOIN {ids} i "
                                 f"ON c.cluster_id = i.cluster")
    # the rows of every input (the union of their columns, in order of appearance), less an old match_id
    names = list(dict.fromkeys(c for x in ctx.tables for c in x.types if c != "match_id"))
    parts = []
    for x in ctx.tables:
        cols = [Q.quote(c, db.dialect) if c in x.types else f"CAST(NULL AS {_type_of(ctx, c)}) AS "
                f"{Q.quote(c, db.dialect)}" for c in names]
        uid = Q.raw_text(ctx.cfg.id, x.types[ctx.cfg.id], db.dialect, x.csv) if x.csv else \
            f"CAST({Q.quote(ctx.cfg.id, db.dialect)} AS {db.dialect.string})"
        parts.append(f"SELECT {', '.join(cols)}, {uid} AS __uid, '{x.source_dataset}' AS __src FROM {x.raw}")
    rows = " UNION ALL ".join(parts)
    out = ", ".join(f"r.{Q.quote(c, db.dialect)}" for c in names)
    ctx.result = (f"SELECT {out}, CAST(k.match_id AS BIGINT) AS match_id FROM ({rows}) r JOIN {keyed} k "
                  f"ON r.__uid = k.unique_id AND r.__src = k.source_dataset")
    ctx.timings["cluster"] += time.time() - t  # reported together with clustering, as always


def _type_of(ctx: MatchContext, column: str) -> str:
    t = next(x.types[column] for x in ctx.tables if column in x.types)
    return t if ctx.engine == "duckdb" else t.upper()


def write(ctx: MatchContext) -> MatchResult:
    """Write the matched rows, then report, scored pairs and model beside them (MatchOutput), each by the engine;
    return the result (cluster counts read back from the written rows)."""
    db, o, c = ctx.db, ctx.output, ctx.counts
    db.write_parquet(ctx.result, o.matched)
    written = db.read_parquet(o.matched, "er_written")
    sizes = db.rows(f"SELECT size, count(*) FROM (SELECT match_id, count(*) AS size FROM {written} "
                    f"GROUP BY match_id) s GROUP BY size ORDER BY size")
    clusters = int(sum(n for _, n in sizes))
    edges = np.round(np.linspace(0, 1, 21), 3).tolist()
    report = {"engine": ctx.engine, "inputs": [str(p) for p in ctx.inputs], "config": ctx.cfg.source,
              "link_type": ctx.link_type, "threshold": ctx.chosen_threshold, "threshold_choice": ctx.threshold_choice,
              "blocking": ctx.blocking, "training": ctx.training, "warnings": ctx.warnings,
              "comparisons": [{"name": x.name, "fields": sorted(x.fields)} for x in ctx.compared],
              "records": ctx.records, "clusters": clusters,
              "pairs_scored": c["pairs_scored"], "pairs_linked": c["pairs_linked"],
              "relatives_guarded": c["relatives_guarded"],
              "unparseable": ctx.unparseable, "prior_probability_two_random_records_match": ctx.prior,
              "match_probability_histogram": {"bin_edges": edges, "counts": c["histogram"]},
              "cluster_sizes": {str(int(k)): int(v) for k, v in sizes},
              "seconds": {k: round(v, 2) for k, v in ctx.timings.items()},
              "roles": ctx.cfg.roles, "id": ctx.cfg.id, "match_config": ctx.cfg.raw}
    report["seconds"]["total"] = round(time.time() - ctx.t0, 2)
    _write_json(ctx, o.report, report)
    db.write_parquet(f"SELECT * FROM {ctx.pairs}", o.pairs)
    _write_json(ctx, o.model, ctx.model_json)
    return MatchResult(out=str(o.matched), records=ctx.records, clusters=clusters, pairs_scored=c["pairs_scored"],
                       pairs_linked=c["pairs_linked"], relatives_guarded=c["relatives_guarded"], engine=ctx.engine,
                       threshold=ctx.chosen_threshold, seconds=report["seconds"], unparseable=ctx.unparseable,
                       prior=ctx.prior, report_path=str(o.report))


def relatives_guard(pair_columns: list[str]) -> str:
    """SQL: true where a scored pair looks like two relatives, not one person: both first names present, clearly
    different (Jaro-Winkler level 'else', nicknames and swaps already excluded) - vetoes the link."""
    return "gamma_first_name = 0" if "gamma_first_name" in pair_columns else "FALSE"


@contextlib.contextmanager
def _spark_conf(spark, conf: dict[str, str]) -> Iterator[None]:
    """Spark SQL settings changed inside the block, the previous values restored after (no-op without Spark)."""
    if spark is None:
        yield
        return
    saved = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def _set_spark_conf(ctx: MatchContext, key: str, value: str) -> None:
    """A Spark SQL setting for the rest of this run, restored when the engine session ends."""
    spark = ctx.spark
    old = spark.conf.get(key, None)
    spark.conf.set(key, value)
    ctx.db.on_close(lambda: spark.conf.unset(key) if old is None else spark.conf.set(key, old))


def _register(ctx: MatchContext, df: pd.DataFrame, name: str):
    """A small pandas frame (labelled pairs) as an engine table registered with Splink."""
    return ctx.db_api.register(ctx.db.small_table(name, df), table_name=f"{name}_splink{ctx.tag}")


def matching_pairs(labelled: pd.DataFrame) -> pd.DataFrame:
    """The labelled pairs that are matches (clerical_match_score 1), the only ones m may be estimated from."""
    return labelled[labelled["clerical_match_score"] == 1.0].reset_index(drop=True)


def _labels_pairs(ctx: MatchContext, labels_paths) -> pd.DataFrame:
    """The labelled pairs (small) whose records are both in the inputs, with their source datasets (joined in the
    engine)."""
    from c360.entity_resolution.labels import labels_to_pairs

    pairs = pd.concat([labels_to_pairs(p, ctx.cfg.id) for p in labels_paths], ignore_index=True)
    lab = ctx.db.small_table("er_label_pairs", pairs)
    union = " UNION ALL ".join(f"SELECT unique_id, source_dataset FROM {x.std}" for x in ctx.tables)
    src = f"SELECT unique_id, max(source_dataset) AS source_dataset FROM ({union}) u GROUP BY unique_id"
    return ctx.db.frame(f"SELECT l.unique_id_l, l.unique_id_r, l.clerical_match_score, "
                        f"a.source_dataset AS source_dataset_l, b.source_dataset AS source_dataset_r "
                        f"FROM {lab} l JOIN ({src}) a ON l.unique_id_l = a.unique_id "
                        f"JOIN ({src}) b ON l.unique_id_r = b.unique_id")
