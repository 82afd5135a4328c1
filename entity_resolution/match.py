"""Match records with Splink (Spark or DuckDB), cluster at a threshold and assign stable int64 match_ids.

`match()` runs the phases in order, each a function of one `MatchContext`:
prepare → (engine session: inputs registered, linker built) → train → predict → cluster → assign_ids → write.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from c360.entity_resolution import model as M
from c360.entity_resolution.roles import RolesConfig, load_roles
from c360.entity_resolution.stable_ids import assign_match_ids
from c360.entity_resolution.standardize import read_input, standardize
from c360.errors import InputError
from c360.io import atomic_path, write_json_file
from c360.layout import MatchOutput

SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"


@dataclass
class MatchResult:
    out: str
    records: int
    clusters: int
    pairs_scored: int
    pairs_linked: int
    relatives_guarded: int
    engine: str
    seconds: dict = field(default_factory=dict)
    unparseable: dict = field(default_factory=dict)
    prior: float = 0.0
    report_path: str = ""


@dataclass
class MatchContext:
    """One match run: its parameters, then what each phase adds (frames, engine, linker, pairs, clusters)."""

    inputs: list  # as given (paths or strings), for the report
    cfg: RolesConfig
    engine: str
    output: MatchOutput
    threshold: float = 0.9
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
    unparseable: dict = field(default_factory=dict)
    settings: Any = None
    # engine session
    db_api: Any = None
    linker: Any = None
    # train
    model_json: dict | None = None
    # predict
    pairs: pd.DataFrame | None = None
    # cluster
    guard: np.ndarray | None = None
    linked: pd.DataFrame | None = None
    components: np.ndarray | None = None
    # assign ids
    result: pd.DataFrame | None = None

    @classmethod
    def create(cls, inputs, config: str | Path | None = None, engine: str = "spark", **params) -> MatchContext:
        """Check the inputs, load the roles config; `params` are the other MatchContext fields (`out`: the path)."""
        inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
        if not inputs or len(inputs) > 2:
            raise InputError("--input must be given once or twice")
        out = MatchOutput(params.pop("out", "matched.parquet"))
        return cls(inputs=inputs, cfg=load_roles(config), engine=engine, output=out, **params)

    @property
    def roles(self) -> set[str]:
        return set(self.cfg.roles)

    @property
    def link_type(self) -> str:
        return "link_and_dedupe" if len(self.inputs) == 2 else "dedupe_only"

    @property
    def prior(self) -> float:
        """The trained probability that two random records match."""
        return float(self.model_json["probability_two_random_records_match"])


def match(inputs, config: str | Path | None = None, engine: str = "spark", labels=None,
          out: str | Path = "matched.parquet", threshold: float = 0.9, previous: str | Path | None = None,
          spark=None, u_max_pairs: float = 2e6, seed: int = 42) -> MatchResult:
    """Deduplicate (one input) or link and dedupe (two inputs) with Splink; write `out` (every input row + match_id).

    Also writes `<out>.report.json` (unparseable counts per column, timings, match-probability histogram,
    parameters), `<out>.model.json` (the trained Splink model), `<out>.pairs.parquet` (scored pairs) and keeps
    match_ids stable against `previous` (default: an existing `out`).
    """
    ctx = MatchContext.create(inputs, config, engine, labels=labels, out=out, threshold=threshold,
                              previous=Path(previous) if previous else None, spark=spark, u_max_pairs=u_max_pairs,
                              seed=seed)
    prepare(ctx)
    with engine_session(ctx):
        train(ctx)
        predict(ctx)
    cluster(ctx)
    assign_ids(ctx)
    return write(ctx)


def prepare(ctx: MatchContext) -> None:
    """Read and standardize every input (InputError naming the file on bad input); build the Splink settings."""
    many = len(ctx.inputs) > 1
    for i, p in enumerate(ctx.inputs):
        raw = read_input(p, ctx.cfg)
        std, bad = standardize(raw, ctx.cfg, f"input{i}" if many else "input0")
        ctx.raws.append(raw.assign(_uid=std["unique_id"].to_numpy(), _src=std["source_dataset"].to_numpy()))
        ctx.stds.append(std)
        ctx.unparseable.update({f"{Path(p).name}:{k}": v for k, v in bad.items()})
    ctx.std = pd.concat(ctx.stds, ignore_index=True)
    ctx.settings = M.settings(ctx.roles, ctx.link_type)


@contextlib.contextmanager
def engine_session(ctx: MatchContext) -> Iterator[MatchContext]:
    """The engine for this run: inputs registered and the linker built on entry; on Spark, fewer shuffle partitions
    while inside, restored on exit with this run's temp views dropped (the session lives on)."""
    from splink import Linker

    ctx.db_api, ctx.spark = _db_api(ctx.engine, ctx.spark)
    with _spark_conf(ctx.spark, {SHUFFLE_PARTITIONS: str(max(2, min(64, len(ctx.std) // 40_000)))}), \
            _temp_views(ctx.spark, ctx.tag):
        # few, small shuffle partitions: Splink runs many small SQL steps
        sdfs = [_register(ctx, s, f"er_input_{i}") for i, s in enumerate(ctx.stds)]
        ctx.linker = Linker(sdfs if len(sdfs) > 1 else sdfs[0], ctx.settings, log_level="WARNING")
        ctx.timings["prepare"] = time.time() - ctx.t0
        yield ctx


def train(ctx: MatchContext) -> None:
    """Estimate the prior, u (random sampling), m (EM per rule, then labeled pairs if given); keep the model."""
    t = time.time()
    training = ctx.linker.training
    try:
        training.estimate_probability_two_random_records_match(M.deterministic_rules(ctx.roles), recall=0.7)
    except ValueError:  # the deterministic rules found no pair at all: keep Splink's starting prior
        pass
    # one chunk: the rare levels (ssn last two digits, day/month swap) never reach Splink's early-exit count, so
    # its 10 chunks + probe all ran anyway, as 11 jobs per comparison instead of one (same u values, 2-3x slower)
    training.estimate_u_using_random_sampling(max_pairs=ctx.u_max_pairs, seed=ctx.seed, num_chunks=1)
    n = len(ctx.std)
    for rule in M.em_rules(ctx.roles):
        training.estimate_parameters_using_expectation_maximisation(
            rule, record_sample_proportion=min(1.0, 200_000 / n))
    if ctx.labels:
        # Splink takes every row it is given as a true match: only the pairs labelled as matches go in (the
        # labelled non-matches, e.g. relatives in one household, would otherwise be learnt as matches)
        lp = matching_pairs(_labels_pairs(ctx.labels, ctx.std))
        if len(lp):
            training.estimate_m_from_pairwise_labels(_register(ctx, lp, "er_labels"))
    ctx.model_json = ctx.linker.misc.save_model_to_json()
    ctx.timings["train"] = time.time() - t


def predict(ctx: MatchContext) -> None:
    """Score the candidate pairs (probability >= 0.01) and collect the columns clustering and reports need."""
    t = time.time()
    pred = ctx.linker.inference.predict(threshold_match_probability=0.01)
    keep = ["unique_id_l", "unique_id_r", "source_dataset_l", "source_dataset_r", "match_probability",
            "match_weight"] + [c for c in ("gamma_first_name",) if "first_name" in ctx.roles]
    ctx.pairs = _collect(pred, keep, ctx.spark)
    ctx.timings["predict"] = time.time() - t


def cluster(ctx: MatchContext) -> None:
    """Link pairs at the threshold unless the relatives guard vetoes them; connected components over records."""
    t = time.time()
    pairs, std = ctx.pairs, ctx.std
    ctx.guard = relatives_guard(pairs)
    ctx.linked = pairs[(pairs["match_probability"].astype(float) >= ctx.threshold) & ~ctx.guard]
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
    guarded = int((ctx.guard & (probability >= ctx.threshold)).sum())
    report = {"engine": ctx.engine, "inputs": [str(p) for p in ctx.inputs], "config": ctx.cfg.source,
              "link_type": ctx.link_type, "threshold": ctx.threshold, "records": len(ctx.std), "clusters": clusters,
              "pairs_scored": int(len(pairs)), "pairs_linked": int(len(ctx.linked)), "relatives_guarded": guarded,
              "unparseable": ctx.unparseable, "prior_probability_two_random_records_match": ctx.prior,
              "match_probability_histogram": {"bin_edges": hist[1].round(3).tolist(), "counts": hist[0].tolist()},
              "cluster_sizes": {str(k): int(v) for k, v in
                                ctx.result.groupby("match_id").size().value_counts().sort_index().items()},
              "seconds": {k: round(v, 2) for k, v in ctx.timings.items()},
              "roles": ctx.cfg.roles, "id": ctx.cfg.id, "date_format": ctx.cfg.date_format}
    with atomic_path(o.matched) as tmp:
        ctx.result.to_parquet(tmp, index=False)
    report["seconds"]["total"] = round(time.time() - ctx.t0, 2)
    write_json_file(o.report, report)
    with atomic_path(o.pairs) as tmp:
        pairs.to_parquet(tmp, index=False)
    write_json_file(o.model, ctx.model_json)
    return MatchResult(out=str(o.matched), records=len(ctx.std), clusters=clusters, pairs_scored=len(pairs),
                       pairs_linked=len(ctx.linked), relatives_guarded=guarded, engine=ctx.engine,
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


def _labels_pairs(labels_paths, std: pd.DataFrame) -> pd.DataFrame:
    from c360.entity_resolution.labels import labels_to_pairs
    ids = set(std["unique_id"])
    parts = [labels_to_pairs(p) for p in labels_paths]
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
