"""Match records with Splink (Spark or DuckDB), cluster at a threshold and assign stable int64 match_ids."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from c360.errors import InputError
from c360.io import atomic_path, write_json_file
from c360.entity_resolution import model as M
from c360.entity_resolution.roles import RolesConfig, load_roles
from c360.entity_resolution.stable_ids import assign_match_ids
from c360.entity_resolution.standardize import read_input, standardize


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


def _register(db_api, spark, df: pd.DataFrame, name: str):
    if spark is not None:
        return db_api.register(spark.createDataFrame(df.astype(str).where(df.notna(), None)), table_name=name)
    return db_api.register(df, table_name=name)


def relatives_guard(pairs: pd.DataFrame) -> np.ndarray:
    """True where a scored pair looks like two relatives, not one person: both first names present, clearly
    different (Jaro-Winkler level 'else', nicknames and swaps already excluded) — vetoes the link."""
    if "gamma_first_name" not in pairs.columns:
        return np.zeros(len(pairs), dtype=bool)
    return (pairs["gamma_first_name"].astype(int) == 0).to_numpy()


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


def match(inputs, config: str | Path | None = None, engine: str = "spark", labels=None,
          out: str | Path = "matched.parquet", threshold: float = 0.9, previous: str | Path | None = None,
          spark=None, u_max_pairs: float = 2e6, seed: int = 42) -> MatchResult:
    """Deduplicate (one input) or link and dedupe (two inputs) with Splink; write `out` (every input row + match_id).

    Also writes `<out>.report.json` (unparseable counts per column, timings, match-probability histogram,
    parameters), `<out>.model.json` (the trained Splink model) and keeps match_ids stable against `previous`
    (default: an existing `out`).
    """
    from splink import Linker

    t0 = time.time()
    inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not inputs or len(inputs) > 2:
        raise InputError("--input must be given once or twice")
    cfg: RolesConfig = load_roles(config)
    raws, stds, unparseable = [], [], {}
    for i, p in enumerate(inputs):
        raw = read_input(p, cfg)
        std, bad = standardize(raw, cfg, f"input{i}" if len(inputs) > 1 else "input0")
        raws.append(raw.assign(_uid=std["unique_id"].to_numpy(), _src=std["source_dataset"].to_numpy()))
        stds.append(std)
        unparseable.update({f"{Path(p).name}:{k}": v for k, v in bad.items()})
    std = pd.concat(stds, ignore_index=True)
    roles = set(cfg.roles)
    link_type = "link_and_dedupe" if len(inputs) == 2 else "dedupe_only"
    settings = M.settings(roles, link_type)
    db_api, spark = _db_api(engine, spark)
    tag = f"_{uuid.uuid4().hex[:8]}"  # unique table names: a shared Spark session may hold an earlier run's
    if spark is not None:  # few, small shuffle partitions: Splink runs many small SQL steps
        saved_partitions = spark.conf.get("spark.sql.shuffle.partitions")
        spark.conf.set("spark.sql.shuffle.partitions", str(max(2, min(64, len(std) // 40_000))))
    try:
        return _run(Linker, db_api, spark, std, stds, raws, cfg, roles, link_type, settings, inputs, labels,
                    engine, out, threshold, previous, u_max_pairs, seed, unparseable, t0, tag)
    finally:
        if spark is not None:
            spark.conf.set("spark.sql.shuffle.partitions", saved_partitions)
            for table in spark.catalog.listTables():  # this run's registered inputs; the session lives on
                if table.isTemporary and table.name.endswith(tag):
                    spark.catalog.dropTempView(table.name)


def _run(Linker, db_api, spark, std, stds, raws, cfg, roles, link_type, settings, inputs, labels, engine, out,
         threshold, previous, u_max_pairs, seed, unparseable, t0, tag) -> MatchResult:
    sdfs = [_register(db_api, spark, s, f"er_input_{i}{tag}") for i, s in enumerate(stds)]
    linker = Linker(sdfs if len(sdfs) > 1 else sdfs[0], settings, log_level="WARNING")
    timings = {"prepare": time.time() - t0}
    t = time.time()
    try:
        linker.training.estimate_probability_two_random_records_match(M.deterministic_rules(roles), recall=0.7)
    except ValueError:  # the deterministic rules found no pair at all: keep Splink's starting prior
        pass
    # one chunk: the rare levels (ssn last two digits, day/month swap) never reach Splink's early-exit count, so
    # its 10 chunks + probe all ran anyway, as 11 jobs per comparison instead of one (same u values, 2-3x slower)
    linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed, num_chunks=1)
    n = len(std)
    for rule in M.em_rules(roles):
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, record_sample_proportion=min(1.0, 200_000 / n))
    if labels:
        lp = _labels_pairs(labels, std)
        if len(lp):
            linker.training.estimate_m_from_pairwise_labels(_register(db_api, spark, lp, f"er_labels{tag}"))
    timings["train"] = time.time() - t
    t = time.time()
    pred = linker.inference.predict(threshold_match_probability=0.01)
    keep = ["unique_id_l", "unique_id_r", "source_dataset_l", "source_dataset_r", "match_probability",
            "match_weight"] + [c for c in ("gamma_first_name",) if "first_name" in roles]
    pairs = _collect(db_api, pred, keep, spark)
    timings["predict"] = time.time() - t
    t = time.time()
    guard = relatives_guard(pairs)
    hist = np.histogram(pairs["match_probability"].astype(float), bins=20, range=(0, 1))
    linked = pairs[(pairs["match_probability"].astype(float) >= threshold) & ~guard]
    key = std["source_dataset"] + "\x1f" + std["unique_id"]
    index = pd.Series(np.arange(n), index=key.to_numpy())
    li = index[(linked["source_dataset_l"] + "\x1f" + linked["unique_id_l"]).to_numpy()].to_numpy()
    ri = index[(linked["source_dataset_r"] + "\x1f" + linked["unique_id_r"]).to_numpy()].to_numpy()
    comp = connected_components(n, li, ri)
    prev_path = Path(previous) if previous else Path(out)
    match_ids = assign_match_ids(std["unique_id"].to_numpy(), comp, prev_path if prev_path.exists() else None)
    result_df = pd.concat([r.drop(columns=["_uid", "_src"]) for r in raws], ignore_index=True)
    result_df["match_id"] = match_ids.astype("int64")
    result_df["_er_key"] = key.to_numpy()
    timings["cluster"] = time.time() - t
    prior = float(linker._settings_obj._probability_two_random_records_match)
    report = {"engine": engine, "inputs": [str(p) for p in inputs], "config": cfg.source, "link_type": link_type,
              "threshold": threshold, "records": n, "clusters": int(result_df["match_id"].nunique()),
              "pairs_scored": int(len(pairs)), "pairs_linked": int(len(linked)),
              "relatives_guarded": int((guard & (pairs["match_probability"].astype(float) >= threshold)).sum()),
              "unparseable": unparseable, "prior_probability_two_random_records_match": prior,
              "match_probability_histogram": {"bin_edges": hist[1].round(3).tolist(), "counts": hist[0].tolist()},
              "cluster_sizes": {str(k): int(v) for k, v in
                                result_df.groupby("match_id").size().value_counts().sort_index().items()},
              "seconds": {k: round(v, 2) for k, v in timings.items()},
              "roles": cfg.roles, "id": cfg.id, "date_format": cfg.date_format}
    model_json = linker.misc.save_model_to_json()
    out = Path(out)
    with atomic_path(out) as tmp:
        result_df.drop(columns=["_er_key"]).to_parquet(tmp, index=False)
    report["seconds"]["total"] = round(time.time() - t0, 2)
    rp = out.with_name(out.name + ".report.json")
    write_json_file(rp, report)
    with atomic_path(out.with_name(out.name + ".pairs.parquet")) as tmp:
        pairs.to_parquet(tmp, index=False)
    write_json_file(out.with_name(out.name + ".model.json"), model_json)
    return MatchResult(out=str(out), records=n, clusters=report["clusters"], pairs_scored=len(pairs),
                       pairs_linked=len(linked), relatives_guarded=report["relatives_guarded"], engine=engine,
                       seconds=report["seconds"], unparseable=unparseable, prior=prior, report_path=str(rp))


def _collect(db_api, pred, keep: list[str], spark) -> pd.DataFrame:
    cols = [c.unquote().name for c in pred.columns]
    sel = [c for c in keep if c in cols]
    if "source_dataset_l" not in cols:
        sel = [c for c in sel if not c.startswith("source_dataset")]
    sql = f"SELECT {', '.join(sel)} FROM {pred.physical_name}"
    if spark is not None:
        df = spark.sql(sql).toPandas()
    else:
        df = db_api._execute_sql_against_backend(sql).df()
    if "source_dataset_l" not in df.columns:
        df["source_dataset_l"] = "input0"
        df["source_dataset_r"] = "input0"
    for c in ("unique_id_l", "unique_id_r", "source_dataset_l", "source_dataset_r"):
        df[c] = df[c].astype(str)
    return df


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
