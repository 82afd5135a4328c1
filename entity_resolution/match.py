"""Match records with Splink (Spark or DuckDB), cluster at a threshold and assign stable int64 match_ids.

`match()` runs the phases in order, each a function of one `MatchContext`:
prepare → (engine session: inputs registered, blocking chosen from the data, linker built) → train → predict →
cluster (threshold chosen) → assign_ids → write.
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

from c360.entity_resolution import blocking as B
from c360.entity_resolution import model as M
from c360.entity_resolution import threshold as T
from c360.entity_resolution.comparisons import Compared, build_comparisons
from c360.entity_resolution.config import MatchConfig, load_config
from c360.entity_resolution.stable_ids import assign_match_ids
from c360.entity_resolution.standardize import read_input, standardize
from c360.errors import InputError
from c360.io import atomic_path, write_json_file
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
class MatchContext:
    """One match run: its parameters, then what each phase adds (frames, engine, linker, pairs, clusters)."""

    inputs: list  # as given (paths or strings), for the report
    cfg: MatchConfig
    engine: str
    output: MatchOutput
    threshold: float | None = None   # None: the config's, else chosen (labels, or the model's expected F1)
    labels: list | None = None
    previous: Path | None = None
    u_max_pairs: float = 2e6
    seed: int = 42
    spark: Any = None
    t0: float = field(default_factory=time.time)
    # unique table names: a shared Spark session may hold an earlier run's
    tag: str = field(default_factory=lambda: f"_{uuid.uuid4().hex[:8]}")
    timings: dict = field(default_factory=dict)
    # prepare
    raws: list[pd.DataFrame] = field(default_factory=list)
    stds: list[pd.DataFrame] = field(default_factory=list)
    std: pd.DataFrame | None = None
    null_share: dict[str, float] = field(default_factory=dict)   # per standardized column: share missing
    unparseable: dict = field(default_factory=dict)
    compared: list[Compared] = field(default_factory=list)
    labelled: pd.DataFrame | None = None
    # engine session
    db_api: Any = None
    sdfs: list = field(default_factory=list)
    blocking: dict = field(default_factory=dict)
    rules: list[B.Rule] = field(default_factory=list)
    candidates: list[tuple[B.Rule, int]] = field(default_factory=list)
    em_candidates: list[tuple[B.Rule, int]] = field(default_factory=list)
    count_tables: list = field(default_factory=list)   # where the blocking analysis counts (see _counting_tables)
    settings: Any = None
    linker: Any = None
    # train
    model_json: dict | None = None
    warnings: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)
    # predict
    pairs: pd.DataFrame | None = None
    # cluster
    threshold_choice: dict = field(default_factory=dict)
    guard: np.ndarray | None = None
    linked: pd.DataFrame | None = None
    components: np.ndarray | None = None
    # assign ids
    result: pd.DataFrame | None = None

    @classmethod
    def create(cls, inputs, config: str | Path | None = None, engine: str = "spark", **params) -> MatchContext:
        """Check the inputs, load the match config; `params` are the other MatchContext fields (`out`: the path)."""
        inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
        if not inputs or len(inputs) > 2:
            raise InputError("--input must be given once or twice")
        threshold = params.get("threshold")
        if threshold is not None and not 0 < float(threshold) < 1:
            raise InputError(f"--threshold must be between 0 and 1 (got {threshold})")
        out = MatchOutput(params.pop("out", "matched.parquet"))
        return cls(inputs=inputs, cfg=load_config(config), engine=engine, output=out, **params)

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
    (default: an existing `out`).
    """
    ctx = MatchContext.create(inputs, config, engine, labels=labels, out=out, threshold=threshold,
                              previous=Path(previous) if previous else None, spark=spark, u_max_pairs=u_max_pairs,
                              seed=seed)
    prepare(ctx)
    with engine_session(ctx):
        train(ctx)
        block(ctx)
        predict(ctx)
    cluster(ctx)
    assign_ids(ctx)
    return write(ctx)


def prepare(ctx: MatchContext) -> None:
    """Read and standardize every input (InputError naming the file on bad input); build the comparisons; read the
    labels."""
    many = len(ctx.inputs) > 1
    for i, p in enumerate(ctx.inputs):
        raw = read_input(p, ctx.cfg)
        std, bad = standardize(raw, ctx.cfg, f"input{i}" if many else "input0")
        ctx.raws.append(raw.assign(_uid=std["unique_id"].to_numpy(), _src=std["source_dataset"].to_numpy()))
        ctx.stds.append(std)
        ctx.unparseable.update({f"{Path(p).name}:{k}": v for k, v in bad.items()})
    ctx.std = pd.concat(ctx.stds, ignore_index=True)
    ctx.null_share = {c: float(ctx.std[c].isna().mean()) for c in ctx.std.columns}
    ctx.compared = build_comparisons(ctx.cfg, ctx.std)
    if ctx.labels:
        ctx.labelled = _labels_pairs(ctx.labels, ctx.std, ctx.cfg.id)


@contextlib.contextmanager
def engine_session(ctx: MatchContext) -> Iterator[MatchContext]:
    """The engine for this run: inputs registered, blocking chosen and the linker built on entry; on Spark, fewer
    shuffle partitions while inside, restored on exit with this run's temp views dropped (the session lives on)."""
    from splink import Linker

    ctx.db_api, ctx.spark = _db_api(ctx.engine, ctx.spark)
    with _spark_conf(ctx.spark, {SHUFFLE_PARTITIONS: str(max(2, min(64, len(ctx.std) // 40_000)))}), \
            _temp_views(ctx.spark, ctx.tag):
        # few, small shuffle partitions: Splink runs many small SQL steps
        ctx.sdfs = [_register(ctx, s, f"er_input_{i}") for i, s in enumerate(ctx.stds)]
        measure_candidates(ctx)
        # training does not use the prediction rules: they are chosen after it, from the trained model (block)
        provisional = [min((x for x in ctx.candidates if x[1] > 0), key=lambda x: x[1], default=ctx.candidates[0])[0]]
        ctx.settings = M.settings(ctx.compared, provisional, ctx.link_type)
        ctx.linker = Linker(_tables(ctx), ctx.settings, log_level="WARNING")
        ctx.timings["prepare"] = time.time() - ctx.t0
        yield ctx


def _tables(ctx: MatchContext):
    return ctx.sdfs if len(ctx.sdfs) > 1 else ctx.sdfs[0]


def measure_candidates(ctx: MatchContext) -> None:
    """Count the comparisons of every candidate blocking rule with Splink's blocking analysis (EM blocks and the
    prediction rules are chosen among them)."""
    candidates = B.candidates(ctx.cfg)
    if not candidates:
        raise InputError(f"{ctx.cfg.source}: no field to block on (fields: {', '.join(sorted(ctx.cfg.names))})")
    tables = _counting_tables(ctx)
    counts = B.count_each(tables, candidates, ctx.link_type, len(ctx.std))
    ctx.candidates = list(zip(candidates, counts, strict=True))
    exact = B.exact_identifiers(ctx.cfg)
    ctx.em_candidates = ctx.candidates + list(zip(exact, B.count_each(tables, exact, ctx.link_type, len(ctx.std)),
                                                  strict=True))


def _counting_tables(ctx: MatchContext) -> list:
    """Where the blocking analysis counts: the registered inputs on DuckDB; on Spark the same standardized frames in
    DuckDB (they are in the driver already; each count would otherwise be a Spark job, ~1-2 s each), same counts."""
    if ctx.spark is None:
        return ctx.sdfs
    if not ctx.count_tables:
        from splink import DuckDBAPI

        duck = DuckDBAPI()
        ctx.count_tables = [duck.register(s, table_name=f"er_count_{i}{ctx.tag}") for i, s in enumerate(ctx.stds)]
    return ctx.count_tables


def block(ctx: MatchContext) -> None:
    """Choose the prediction rules (the config's, or from the data: the most estimated recall per comparison within
    the budget, recall estimated from the trained model's agreement rates) and rebuild the linker with them; the
    rules' marginal and cumulative counts (Splink's blocking analysis) go into the report."""
    from splink import Linker

    t = time.time()
    n, base = len(ctx.std), B.keys(ctx.cfg)
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
    rows = B.count(_counting_tables(ctx), ctx.rules, ctx.link_type, n)
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
    """Splink's prior from deterministic rules of that recall; False (prior untouched) when they find no pairs."""
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
        prior = 1.0 / max(len(ctx.std), 2)
        ctx.warn(f"the deterministic rules found no pairs: the prior is set to 1 / records ({prior:.2e})")
        _set_prior(ctx, prior)
    training = ctx.linker.training
    # one chunk: the rare levels (ssn last two digits, day/month swap) never reach Splink's early-exit count, so
    # its 10 chunks + probe all ran anyway, as 11 jobs per comparison instead of one (same u values, 2-3x slower)
    training.estimate_u_using_random_sampling(max_pairs=ctx.u_max_pairs, seed=ctx.seed, num_chunks=1)
    n = len(ctx.std)
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
    """Score the candidate pairs (probability >= 0.01) and collect the columns clustering and reports need."""
    t = time.time()
    pred = ctx.linker.inference.predict(threshold_match_probability=0.01)
    keep = ["unique_id_l", "unique_id_r", "source_dataset_l", "source_dataset_r", "match_probability",
            "match_weight"] + [c for c in ("gamma_first_name",) if ctx.cfg.households and ctx.cfg.get("first_name")]
    ctx.pairs = _collect(pred, keep, ctx.spark)
    ctx.timings["predict"] = time.time() - t


def cluster(ctx: MatchContext) -> None:
    """Choose the threshold (given, labels, or the model's expected F1); link pairs at it unless the households
    rule vetoes them (relatives: clearly different first names); connected components over records."""
    t = time.time()
    pairs, std = ctx.pairs, ctx.std
    given = ctx.threshold if ctx.threshold is not None else ctx.cfg.threshold
    ctx.threshold_choice = T.choose(given, pairs, ctx.labelled)
    ctx.guard = relatives_guard(pairs)
    ctx.linked = pairs[(pairs["match_probability"].astype(float) >= ctx.chosen_threshold) & ~ctx.guard]
    index = pd.Series(np.arange(len(std)), index=_record_keys(std).to_numpy())
    li = index[(ctx.linked["source_dataset_l"] + "\x1f" + ctx.linked["unique_id_l"]).to_numpy()].to_numpy()
    ri = index[(ctx.linked["source_dataset_r"] + "\x1f" + ctx.linked["unique_id_r"]).to_numpy()].to_numpy()
    ctx.components = connected_components(len(std), li, ri)
    ctx.timings["cluster"] = time.time() - t


def assign_ids(ctx: MatchContext) -> None:
    """Every input row with an int64 match_id, stable against the previous output (default: an existing out)."""
    t = time.time()
    prev = ctx.previous or ctx.output.matched
    ids = assign_match_ids(ctx.std["unique_id"].to_numpy(), ctx.components, prev if prev.exists() else None)
    result = pd.concat([r.drop(columns=["_uid", "_src"]) for r in ctx.raws], ignore_index=True)
    result["match_id"] = ids.astype("int64")
    ctx.result = result
    ctx.timings["cluster"] += time.time() - t  # reported together with clustering, as always


def write(ctx: MatchContext) -> MatchResult:
    """Write the matched rows, then report, scored pairs and model beside them (MatchOutput); return the result."""
    pairs, o = ctx.pairs, ctx.output
    probability = pairs["match_probability"].astype(float)
    hist = np.histogram(probability, bins=20, range=(0, 1))
    clusters = int(ctx.result["match_id"].nunique())
    guarded = int((ctx.guard & (probability >= ctx.chosen_threshold)).sum())
    report = {"engine": ctx.engine, "inputs": [str(p) for p in ctx.inputs], "config": ctx.cfg.source,
              "link_type": ctx.link_type, "threshold": ctx.chosen_threshold, "threshold_choice": ctx.threshold_choice,
              "blocking": ctx.blocking, "training": ctx.training, "warnings": ctx.warnings,
              "comparisons": [{"name": c.name, "fields": sorted(c.fields)} for c in ctx.compared],
              "records": len(ctx.std), "clusters": clusters,
              "pairs_scored": int(len(pairs)), "pairs_linked": int(len(ctx.linked)), "relatives_guarded": guarded,
              "unparseable": ctx.unparseable, "prior_probability_two_random_records_match": ctx.prior,
              "match_probability_histogram": {"bin_edges": hist[1].round(3).tolist(), "counts": hist[0].tolist()},
              "cluster_sizes": {str(k): int(v) for k, v in
                                ctx.result.groupby("match_id").size().value_counts().sort_index().items()},
              "seconds": {k: round(v, 2) for k, v in ctx.timings.items()},
              "roles": ctx.cfg.roles, "id": ctx.cfg.id, "match_config": ctx.cfg.raw}
    with atomic_path(o.matched) as tmp:
        ctx.result.to_parquet(tmp, index=False)
    report["seconds"]["total"] = round(time.time() - ctx.t0, 2)
    write_json_file(o.report, report)
    with atomic_path(o.pairs) as tmp:
        pairs.to_parquet(tmp, index=False)
    write_json_file(o.model, ctx.model_json)
    return MatchResult(out=str(o.matched), records=len(ctx.std), clusters=clusters, pairs_scored=len(pairs),
                       pairs_linked=len(ctx.linked), relatives_guarded=guarded, engine=ctx.engine,
                       threshold=ctx.chosen_threshold,
                       seconds=report["seconds"], unparseable=ctx.unparseable, prior=ctx.prior,
                       report_path=str(o.report))


def relatives_guard(pairs: pd.DataFrame) -> np.ndarray:
    """True where a scored pair looks like two relatives, not one person: both first names present, clearly
    different (Jaro-Winkler level 'else', nicknames and swaps already excluded) — vetoes the link."""
    if "gamma_first_name" not in pairs.columns:
        return np.zeros(len(pairs), dtype=bool)
    return (pairs["gamma_first_name"].astype(int) == 0).to_numpy()


def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component label (smallest member index) per node, by vectorized min-label propagation."""
    label = np.arange(n)
    if len(left) == 0:
        return label
    while True:
        m = np.minimum(label[left], label[right])
        new = label.copy()
        np.minimum.at(new, left, m)
        np.minimum.at(new, right, m)
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new


def _record_keys(std: pd.DataFrame) -> pd.Series:
    # unique_id alone may repeat across two linked inputs
    return std["source_dataset"] + "\x1f" + std["unique_id"]


def _db_api(engine: str, spark):
    if engine == "duckdb":
        from splink import DuckDBAPI
        return DuckDBAPI(), None
    if engine == "spark":
        from splink import SparkAPI

        from c360.spark import get_spark
        spark = spark or get_spark(app_name="c360-er-match")
        return SparkAPI(spark_session=spark, break_lineage_method="persist"), spark
    raise InputError(f"--engine must be spark or duckdb (got {engine})")


@contextlib.contextmanager
def _spark_conf(spark, conf: dict[str, str]) -> Iterator[None]:
    """Spark SQL settings changed inside the block, the previous values restored after (no-op without Spark)."""
    if spark is None:
        yield
        return
    saved = {k: spark.conf.get(k) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            spark.conf.set(k, v)


@contextlib.contextmanager
def _temp_views(spark, tag: str) -> Iterator[None]:
    """Drop the temp views named `*<tag>` (this run's registered tables) when the block ends."""
    try:
        yield
    finally:
        if spark is not None:
            for table in spark.catalog.listTables():
                if table.isTemporary and table.name.endswith(tag):
                    spark.catalog.dropTempView(table.name)


def _register(ctx: MatchContext, df: pd.DataFrame, name: str):
    if ctx.spark is not None:
        sdf = ctx.spark.createDataFrame(df.astype(str).where(df.notna(), None))
        return ctx.db_api.register(sdf, table_name=name + ctx.tag)
    return ctx.db_api.register(df, table_name=name + ctx.tag)


def matching_pairs(labelled: pd.DataFrame) -> pd.DataFrame:
    """The labelled pairs that are matches (clerical_match_score 1), the only ones m may be estimated from."""
    return labelled[labelled["clerical_match_score"] == 1.0].reset_index(drop=True)


def _labels_pairs(labels_paths, std: pd.DataFrame, id_col: str = "id") -> pd.DataFrame:
    from c360.entity_resolution.labels import labels_to_pairs
    ids = set(std["unique_id"])
    parts = [labels_to_pairs(p, id_col) for p in labels_paths]
    pairs = pd.concat(parts, ignore_index=True)
    pairs = pairs[pairs["unique_id_l"].isin(ids) & pairs["unique_id_r"].isin(ids)]
    src = dict(zip(std["unique_id"], std["source_dataset"], strict=True))
    pairs["source_dataset_l"] = pairs["unique_id_l"].map(src)
    pairs["source_dataset_r"] = pairs["unique_id_r"].map(src)
    return pairs


def _collect(pred, keep: list[str], spark) -> pd.DataFrame:
    """The `keep` columns of Splink's predictions as pandas, selected in the engine (the table has many more)."""
    cols = [c.unquote().name for c in pred.columns]
    sel = [c for c in keep if c in cols]
    if "source_dataset_l" not in cols:
        sel = [c for c in sel if not c.startswith("source_dataset")]
    if spark is not None:
        df = pred.as_spark_dataframe().select(*sel).toPandas()
    else:
        df = pred.as_duckdbpyrelation().select(*sel).df()
    if "source_dataset_l" not in df.columns:
        df["source_dataset_l"] = "input0"
        df["source_dataset_r"] = "input0"
    for c in ("unique_id_l", "unique_id_r", "source_dataset_l", "source_dataset_r"):
        df[c] = df[c].astype(str)
    return df
