"""The nightly steps, in order. Each reads earlier steps' outputs from the manifest and writes under runs/<id>/.

What each step distributes on a cluster (spark-submit --master ...):
- validate: the insurance tables are read and checked by Spark (counts, null and duplicate ids);
- merge: the workshop's merge job, entirely Spark;
- match: Splink on the Spark engine (blocking, EM and scoring run as Spark SQL), clustering on the driver;
- recsys_evaluate / recsys_train: visits aggregated with Spark SQL; spark-als and fm train on Spark MLlib;
  implicit, item-knn, popularity and the session model (trips in time order) train on the driver (one machine is
  enough for them);
- graph_export / graph_load / gates: driver (the graph load is batched upserts to Gremlin/Neptune).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from c360.errors import C360Error, InputError
from c360.io import atomic_path, read_json_file, write_json_file
from c360.jobs import gates as gates_mod
from c360.jobs import live_intake, review_intake, run_report
from c360.jobs.pipeline import RunContext, StepResult
from c360.jobs.validate import validate_insurance, validate_visits, visits_format

log = logging.getLogger("c360.nightly")


class GateFailed(C360Error):
    """One or more quality gates failed: nothing is published."""


def _read_json(path: str | Path) -> dict:
    """A step's JSON output, or {} when it was never written (the report of a failed run reads what exists)."""
    return read_json_file(path) if Path(path).is_file() else {}


# ---- validate --------------------------------------------------------------------------------------------

def _insurance_dir(ctx: RunContext, visits: str | None, fmt: str) -> Path:
    """The configured insurance directory, or generated data (created once per size, seed and visits): with
    `generate_accounts` and sigir17 visits, park accounts for their visitors and the visits keyed by account too."""
    cfg = ctx.settings.nightly
    if cfg.insurance:
        return Path(cfg.insurance).resolve()
    n, seed = cfg.generate_customers, cfg.seed
    out = ctx.warehouse.generated_insurance(n, seed)
    accounts = cfg.generate_accounts and fmt == "sigir17" and cfg.accounts is None
    if accounts:
        import hashlib

        tag = hashlib.sha256(str(visits or "shipped").encode()).hexdigest()[:8]
        out = out.with_name(f"{out.name}-accounts-{tag}" + (f"-v{cfg.generate_visitors}" if cfg.generate_visitors
                                                              else ""))
    if not (out / "truth.csv").is_file():
        from c360.entity_resolution.generate import generate
        from c360.recsys.sigir17 import DEFAULT_DIR

        log.info("generating insurance data for %d customers%s into %s", n, " and park accounts" if accounts else "",
                 out)
        # a folder of this run's own (two nightlies of one warehouse may generate at once; a shared one let each
        # remove or move the other's half-written files), moved into place whole; nothing of it stays on failure
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            generate(n, seed=seed, out_dir=tmp / "data", visits=(visits or DEFAULT_DIR) if accounts else None,
                     visitors=cfg.generate_visitors)
            try:
                (tmp / "data").rename(out)
            except OSError:   # another run generated the same seed first: its data is kept
                if not (out / "truth.csv").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _accounts(ctx: RunContext, insurance: Path):
    """The accounts table the merge takes (c360.entity_resolution.sources.AccountTable): the configured one, else
    the insurance directory's park_accounts.csv, else None."""
    from c360.entity_resolution.merge import accounts_table
    from c360.entity_resolution.sources import AccountTable

    cfg = ctx.settings.nightly.accounts
    if cfg is not None:
        return AccountTable.configured(str(Path(cfg.file).resolve()), cfg.columns)
    return accounts_table(insurance)


def step_validate(ctx: RunContext) -> StepResult:
    cfg = ctx.settings.nightly
    visits = str(Path(cfg.visits).resolve()) if cfg.visits else None
    items = str(Path(cfg.items).resolve()) if cfg.items else None
    fmt = visits_format(visits, cfg.visits_format)
    insurance = _insurance_dir(ctx, visits, fmt)
    if (insurance / "visits").is_dir() and not cfg.insurance and cfg.generate_accounts:
        visits = str(insurance / "visits")   # the generated visits, keyed by the generated accounts
    rows = validate_insurance(insurance, ctx.spark, accounts=_accounts(ctx, insurance))
    rows.update(validate_visits(visits, fmt, items))
    return StepResult(outputs={"insurance": str(insurance), "visits": visits, "items": items, "format": fmt},
                      rows=rows)


# ---- entity resolution -----------------------------------------------------------------------------------

def step_merge(ctx: RunContext) -> StepResult:
    from c360.entity_resolution.merge import merge

    out = ctx.path(ctx.run.merged)
    insurance = Path(ctx.output("validate", "insurance"))
    info = merge(insurance, out, spark=ctx.spark, accounts=_accounts(ctx, insurance))
    return StepResult(outputs={"merged": str(out)},
                      rows={"merged": info["rows"], **{k: v for k, v in info.items() if k not in ("out", "rows")}})


def _at_threshold(pr_curve: list[dict], threshold: float) -> dict:
    """The precision-recall point nearest the threshold the match used."""
    return min(pr_curve, key=lambda r: abs(r["threshold"] - threshold))


def step_match(ctx: RunContext) -> StepResult:
    from c360.entity_resolution.evaluate import evaluate, evaluate_source, source_ids
    from c360.entity_resolution.labels import evaluate_labels, scored_pairs
    from c360.entity_resolution.match import match

    cfg = ctx.settings.er
    insurance = Path(ctx.output("validate", "insurance"))
    labels = [str(Path(p).resolve()) for p in cfg.labels]
    if not labels and (insurance / "labels.csv").is_file():
        labels = [str(insurance / "labels.csv")]
    out = ctx.path(ctx.run.match.matched)
    previous = None
    current = ctx.warehouse.current()
    if current is not None and current.match.matched.exists():  # a file, or a Spark run's directory of parts
        previous = current.match.matched
    # + the customers committed in real time, keeping the match_ids they were given (c360.jobs.live_intake)
    # ... and where stewards' decisions moved records since (c360.jobs.review_intake)
    merged, previous = live_intake.match_inputs(ctx, ctx.output("merge", "merged"), previous,
                                                moves=review_intake.decision_moves(ctx))
    # + the stewards' answers, as the sample they are
    decided = review_intake.decision_labels(
        ctx, live_intake._published_id_column(current.match.matched)) if current is not None else None
    if decided is not None:
        labels.append(str(decided))
    result = match([str(merged)], config=cfg.config, engine=cfg.engine,
                   labels=labels or None, out=out, previous=previous,
                   spark=ctx.spark if cfg.engine == "spark" else None, threshold=cfg.threshold)
    metrics = {"clusters": result.clusters, "pairs_scored": result.pairs_scored,
               "pairs_linked": result.pairs_linked, "relatives_guarded": result.relatives_guarded,
               "prior": result.prior, "engine": result.engine, "unparseable": result.unparseable,
               "threshold": result.threshold}
    report = _read_json(result.report_path)
    # how the threshold was chosen (given, labels, the model's expected F1 recalibrated at its valley or not)
    choice = report.get("threshold_choice") or {}
    metrics["threshold_method"] = f"{choice.get('source', 'given')}: {choice.get('method', 'given')}"
    # what became of the published run's ids, the committed records' included (c360.entity_resolution.id_changes)
    id_changes = report.get("id_changes")
    if id_changes is not None:
        metrics["id_changes"] = id_changes["counts"]
    evaluation, f1, source = None, None, None
    truth = insurance / "truth.csv"
    accounts = _accounts(ctx, insurance)
    accounts_f1, accounts_source = None, None
    if truth.is_file():
        evaluation = evaluate(out, truth)
        f1, source = evaluation["f1"], "truth"
        metrics.update(precision=evaluation["precision"], recall=evaluation["recall"], f1=evaluation["f1"])
        if accounts is not None:
            evaluation["accounts"] = evaluate_source(out, truth, accounts.line)
            accounts_f1, accounts_source = evaluation["accounts"].get("f1"), "truth"
            metrics.update(accounts_f1=accounts_f1,
                           accounts_wrong_merge_share=evaluation["accounts"].get("wrong_merge_share"))
    pr_curve = []
    pairs = scored_pairs(out) if labels else None   # read once for every labels file below (the decisions' included)
    if labels:
        pr_curve = evaluate_labels(out, labels[0], out_html=ctx.path(ctx.run.labels_pr_html), pairs=pairs)
        at = _at_threshold(pr_curve, result.threshold)
        metrics.update(labels_precision=at["precision"], labels_recall=at["recall"], labels_f1=at["f1"])
        if f1 is None:
            f1, source = at["f1"], "labels"
        if accounts_f1 is None and accounts is not None:   # no truth: the labelled pairs that hold an account
            on_accounts = evaluate_labels(out, labels[0], touching=source_ids(out, accounts.line), pairs=pairs)
            if on_accounts:
                accounts_f1, accounts_source = _at_threshold(on_accounts, result.threshold)["f1"], "labels"
                metrics.update(accounts_f1=accounts_f1)
    if decided is not None:   # the stewards' own precision and recall, beside the labels' above
        at = _at_threshold(evaluate_labels(out, decided, pairs=pairs), result.threshold)
        metrics.update(decisions_precision=at["precision"], decisions_recall=at["recall"], decisions_f1=at["f1"],
                       decisions_trained=True)   # the match trained on them (review_intake.decision_labels)
    queue = review_intake.write_queue(ctx, out, labels)
    metrics["review_sets"] = 0 if queue is None else queue["sets"]
    er_metrics = write_json_file(ctx.run.er_metrics,
                                 {"evaluation": evaluation, "pr_curve": pr_curve, "report": result.report_path},
                                 default=str)
    return StepResult(outputs={"matched": str(out), "report": result.report_path, "metrics": str(er_metrics),
                               "f1": f1, "f1_source": source, "accounts_f1": accounts_f1,
                               "accounts_f1_source": accounts_source,
                               "previous": str(previous) if previous else None,
                               "id_changes": None if id_changes is None else str(ctx.run.match.id_changes)},
                      rows={"records": result.records, "match_ids": result.clusters}, metrics=metrics)


# ---- recommenders ----------------------------------------------------------------------------------------

def _interactions_file(ctx: RunContext):
    """(InteractionsFile, items): the visits read and aggregated by Spark, plus the events POST /events logged
    (c360.jobs.live_intake, read by Spark from the run's events file), written once into the run as Parquet parts
    (later steps and resume read them); the items table beside them."""
    from c360.recsys.data import aggregate_files
    from c360.recsys.interactions import InteractionsFile

    inter_path, items_path = ctx.run.interactions, ctx.run.items
    if inter_path.exists():
        return InteractionsFile(inter_path), (pd.read_csv(items_path, dtype=str) if items_path.is_file() else None)
    events = live_intake.run_events(ctx)
    path, items = aggregate_files(ctx.output("validate", "visits"), ctx.output("validate", "items"), inter_path,
                                  fmt=ctx.output("validate", "format"), spark=ctx.spark,
                                  extra_events=ctx.run.events if len(events) else None)
    if items is not None:
        with atomic_path(items_path) as tmp:
            items.to_csv(tmp, index=False)
    return InteractionsFile(path), items


def _trip_data(ctx: RunContext):
    """Trips and measured walking minutes for the session model, written once into the run like the interactions."""
    from c360.recsys.trips import TripData, load_trips

    trips_path, walks_path = ctx.run.trips, ctx.run.walks
    _, items = _interactions_file(ctx)
    if trips_path.is_file():
        walks = pd.read_parquet(walks_path) if walks_path.is_file() else None
        return TripData(pd.read_parquet(trips_path), items, walks)
    data = load_trips(ctx.output("validate", "visits"), ctx.output("validate", "items"),
                      fmt=ctx.output("validate", "format"), gap_minutes=ctx.settings.recsys.session_gap_minutes)
    if data.walks is not None:
        with atomic_path(walks_path) as tmp:
            data.walks.to_parquet(tmp, index=False)
    with atomic_path(trips_path) as tmp:
        data.trips.to_parquet(tmp, index=False)
    return TripData(data.trips, items, data.walks)


def _identities(ctx: RunContext):
    """The run's identities (`recsys.identities: match`): the accounts its match joined at or above the model's
    threshold, each link weighed by its probability (c360.recsys.identities); written once into the run. None with
    `none`, or when the match joined no two accounts."""
    from c360.recsys.identities import load_identities, read_identities, write_identities

    if ctx.settings.recsys.identities != "match":
        return None
    path = ctx.run.identities
    if not path.is_file():
        import pyarrow.parquet as pq

        from c360.graph.export import account_match_ids

        matched = ctx.output("match", "matched")
        if not account_match_ids(matched):
            return None   # no account was matched: every visitor is their own person
        source, _ = _interactions_file(ctx)
        users = pq.read_table(source.path, columns=["USER_ID"]).column("USER_ID").unique().to_pylist()
        identities = read_identities(matched, user_ids=users)
        if not identities.summary()["shared_accounts"]:
            return None
        write_identities(identities, path)
    return load_identities(path)


def _training_interactions(ctx: RunContext):
    """(InteractionsFile, identities): what the models train on: the run's interactions, where accounts of one
    person share their history when the run has identities (written once into the run)."""
    from c360.recsys.identities import share_histories
    from c360.recsys.interactions import InteractionsFile

    source, _ = _interactions_file(ctx)
    identities = _identities(ctx)
    if identities is None:
        return source, None
    shared = ctx.run.shared_interactions
    if not shared.is_file():
        with atomic_path(shared) as tmp:
            share_histories(source, identities).to_parquet(tmp, index=False)
    return InteractionsFile(shared), identities


def _auto_params(cfg) -> dict:
    """`auto` chooses by validation ndcg@k of the configured k, the metric the gate then reads."""
    return {"k": cfg.k}


def _group_col(cfg, items: pd.DataFrame | None) -> str | None:
    col = cfg.item_group_col
    if col and (items is None or col not in items.columns):
        raise InputError(f"recsys.item_group_col: column {col!r} is not in the item table")
    return col


def step_recsys_evaluate(ctx: RunContext) -> StepResult:
    from c360.recsys.evaluate import evaluate, evaluate_sessions, write_metrics

    cfg = ctx.settings.recsys
    source, items = _interactions_file(ctx)
    # the holdout split is made on the driver (the driver-side models train on it too) and written as Parquet into
    # the run's scratch space, where Spark ALS and FM read it with Spark
    result = evaluate(cfg.all_algorithms(), source, items, holdout=cfg.holdout, seed=cfg.seed,
                      k=cfg.k, item_group_col=_group_col(cfg, items), params={"auto": _auto_params(cfg)},
                      show_progress=True, workdir=ctx.run.tmp / "recsys")
    metrics = {cfg.ndcg: {a: round(m[cfg.ndcg], 4) for a, m in result["algorithms"].items()},
               "split": result["split"]}
    if cfg.session:
        # the session model on the time-ordered protocol, with the baseline and first-order transitions beside it
        timed = evaluate_sessions([cfg.baseline, "session"], _trip_data(ctx), protocol=cfg.session_protocol,
                                  k=cfg.k, item_group_col=_group_col(cfg, items), seed=cfg.seed,
                                  params={"session": cfg.session_params})
        result["time_ordered"] = timed
        metrics[cfg.session_metric] = {a: round(m[cfg.session_metric], 4) for a, m in timed["algorithms"].items()}
        metrics["session_chosen"] = timed["algorithms"]["session"].get("chosen")
    path = write_metrics(result, ctx.run.recsys_metrics)
    # the real-time events trained on, and those quarantined (c360.jobs.live_intake), read by _interactions_file above
    return StepResult(outputs={"metrics": str(path)}, rows={**source.counts(), **live_intake.event_counts(ctx.run)},
                      metrics=metrics)


def step_recsys_train(ctx: RunContext) -> StepResult:
    from c360.recsys.identities import IDENTITIES_FILE, write_identities
    from c360.recsys.models import train
    from c360.recsys.recs import recs_counts, write_recs
    from c360.recsys.served_table import build_for_run

    cfg = ctx.settings.recsys
    _, items = _interactions_file(ctx)
    # the evaluation (recsys_evaluate) judged the algorithms per account; they train on the person's history
    source, identities = _training_interactions(ctx)
    evaluation = _read_json(ctx.output("recsys_evaluate", "metrics"))["algorithms"]
    served = cfg.serve
    models = {}
    for algo in cfg.all_algorithms():
        if algo == "session" and cfg.session and algo != served:
            continue          # trained from the trips below, not from the aggregated interactions
        log.info("training %s on all interactions (%s)", algo, source.path)
        model = train(algo, source, items, item_group_col=_group_col(cfg, items), seed=cfg.seed,
                      params=_auto_params(cfg) if algo == "auto" else None)
        metrics = {f"holdout_{k}": v for k, v in evaluation.get(algo, {}).items()}
        model.save(ctx.run.model_dir(algo), metrics=metrics)
        if identities is not None:   # `c360 recsys recommend` on the saved model answers per account like the run
            write_identities(identities, ctx.run.model_dir(algo) / IDENTITIES_FILE)
        models[algo] = {"path": ctx.run.model_relpath(algo), "version": f"{ctx.run_id}:{algo}",
                        "metrics": evaluation.get(algo, {}),
                        "chosen": model.extra.get("auto", {}).get("chosen") if algo == "auto" else None,
                        **{k: model.extra[k] for k in ("device", "gpu_reason") if k in model.extra}}
        if algo == served:
            # Spark models: ranked and written by Spark (a directory of CSV parts); others: by the driver in chunks
            recs_path = write_recs(model, ctx.run.recs, k=cfg.top_n)
        del model
    if cfg.session:
        models["session"] = _train_session(ctx, _read_json(ctx.output("recsys_evaluate", "metrics")))
    ctx.manifest.data["models"] = models
    ctx.manifest.data["served_model"] = served
    counts = recs_counts(recs_path)
    # the recs as every API worker maps them (pre-serialized per user), built out of core once per run
    served_table = build_for_run(ctx.run)
    shared = identities.summary() if identities is not None else None
    return StepResult(outputs={"recs": str(recs_path), "served": served, "models": sorted(models),
                               "served_table": str(served_table),
                               "identities": str(ctx.run.identities) if identities is not None else None},
                      rows={"recs": counts["rows"], "users_with_recs": counts["users"],
                            **({"accounts_sharing_history": shared["shared_accounts"]} if shared else {})},
                      metrics={"chosen": models[served].get("chosen"), "identities": shared})


def _train_session(ctx: RunContext, evaluation: dict) -> dict:
    """The session model on every trip, saved beside the others (not served as recs.csv: it answers trips).
    The scorer the evaluation chose on earlier trips is kept, so the model is not chosen a second time."""
    from c360.recsys.models import train

    cfg = ctx.settings.recsys
    data = _trip_data(ctx)
    timed = (evaluation.get("time_ordered") or {}).get("algorithms", {})
    params = dict(cfg.session_params)
    chosen = timed.get("session", {}).get("chosen")
    if chosen and params.get("model", "auto") == "auto":
        params["model"] = chosen
    log.info("training session on all %d trip rows", len(data.trips))
    model = train("session", data.trips, data.items, params=params, item_group_col=_group_col(cfg, data.items),
                  seed=cfg.seed, walks=data.walks)
    model.save(ctx.run.model_dir("session"),
               metrics={f"{cfg.session_protocol}_{k}": v for k, v in timed.get("session", {}).items()})
    return {"path": ctx.run.model_relpath("session"), "version": f"{ctx.run_id}:session",
            "metrics": timed.get("session", {}), "chosen": model.extra.get("session", {}).get("chosen")}


# ---- graph -----------------------------------------------------------------------------------------------

def step_graph_export(ctx: RunContext) -> StepResult:
    from c360.graph.export import export_graph

    _interactions_file(ctx)  # the run's aggregated interactions and items (written once; a resumed run reads them)
    _trip_data(ctx)          # and its trips: the visit summaries (trips per park, last visits) of the accounts
    items = ctx.run.items if ctx.run.items.exists() else None
    engine = ctx.settings.graph.export_engine
    written = export_graph(ctx.run.graph_dir, spark=ctx.spark if engine == "spark" else None, engine=engine,
                           matched=ctx.output("match", "matched"),
                           sources=ctx.output("validate", "insurance"), interactions=ctx.run.interactions,
                           items=items, recs=ctx.output("recsys_train", "recs"),
                           model=ctx.output("recsys_train", "served"), trips=ctx.run.trips)
    counts = written.counts  # computed by Spark: only the counts by label come back
    return StepResult(outputs={"csv_dir": str(ctx.run.graph_dir), "counts": counts, "files": len(written.files)},
                      rows={"vertices": _count_total(counts["vertices"]), "edges": _count_total(counts["edges"])})


def _count_total(by_label: dict[str, int]) -> int:
    return int(sum(by_label.values()))


def graph_target(ctx: RunContext):
    """Where the run's graph goes (a StoreSpec): its own embedded file for a bare `networkx`, else the configured
    store."""
    from c360.graph.store import parse_spec

    return parse_spec(ctx.settings.graph.store).resolve(ctx.run.root)


def step_graph_load(ctx: RunContext) -> StepResult:
    from c360.graph import neptune_loader
    from c360.graph.loader import load_graph_files

    target = graph_target(ctx)
    embedded = not target.is_url  # a file store: it holds exactly this run's graph
    drop = ctx.settings.graph.drop_before_load and not embedded
    csv_dir = ctx.output("graph_export", "csv_dir")
    bulk = None
    if neptune_loader.wanted(ctx.settings.graph.neptune_loader, ctx.output("graph_export", "counts")):
        # a large graph: Neptune's bulk loader reads the parts from S3; the gate reads the store's counts all the same
        bulk = neptune_loader.load_with_neptune(csv_dir, target, ctx.settings, ctx.run_id, drop=drop)
        counts = bulk.pop("counts")
    else:
        counts = load_graph_files(csv_dir, target, drop=drop, settings=ctx.settings)
    return StepResult(outputs={"target": "networkx (this run)" if embedded else str(target), "counts": counts,
                               "dropped": drop, "exact_counts": embedded or drop, "neptune_loader": bulk},
                      rows={"vertices": sum(counts["vertices"].values()), "edges": sum(counts["edges"].values())})


def expected_graph_counts(ctx: RunContext) -> dict[str, dict[str, int]]:
    """Vertex/edge counts the inputs imply (independently of the exporter), as Spark aggregates."""
    from pyspark.sql import functions as F

    from c360.graph.schema import ACCOUNT_SOURCE
    from c360.graph.spark_graph import read_frame, read_recs

    spark = ctx.spark
    _interactions_file(ctx)
    matched = read_frame(spark, ctx.output("match", "matched"), "matched")
    interactions = read_frame(spark, ctx.run.interactions, "interactions")
    recs = read_recs(spark, ctx.output("recsys_train", "recs"))
    account = F.col("source") == F.lit(ACCOUNT_SOURCE)   # park accounts are visitors SameAs their match
    m = matched.agg(F.count(F.lit(1)).alias("n"), F.countDistinct("match_id").alias("m"),
                    F.sum(account.cast("int")).alias("accounts")).first()

    def ids(df, col):
        return df.select(F.col(col).cast("string").alias("id"))

    items = [ids(read_frame(spark, ctx.run.items, "items", kind="csv"), "ITEM_ID")] if ctx.run.items.exists() else []
    visitors = (ids(interactions, "USER_ID").unionByName(ids(recs, "USER_ID"))
                .unionByName(ids(matched.where(account), "id")).distinct().count())
    attractions = ids(interactions, "ITEM_ID").unionByName(ids(recs, "ITEM_ID"))
    for i in items:
        attractions = attractions.unionByName(i)
    return {"vertices": {"customer": int(m["n"]) - int(m["accounts"] or 0), "match": int(m["m"]), "visitor": visitors,
                         "attraction": attractions.distinct().count()},
            "edges": {"SameAs": int(m["n"]), "visited": interactions.count(), "recommended": recs.count()}}


def step_gates(ctx: RunContext) -> StepResult:
    cfg, rcfg = ctx.settings.gates, ctx.settings.recsys
    results = {"er_f1": gates_mod.er_gate(ctx.output("match", "f1"), cfg.er_f1_min,
                                         ctx.output("match", "f1_source") or "")}
    match = ctx.manifest.outputs()["match"]
    if match.get("accounts_f1") is not None:   # on the truth, else on the labelled pairs that hold an account
        results["er_accounts_f1"] = gates_mod.er_gate(match["accounts_f1"], cfg.er_accounts_f1_min,
                                                      f"{match.get('accounts_f1_source') or 'truth'} "
                                                      f"(pairs with an account)")
    evaluation = _read_json(ctx.output("recsys_evaluate", "metrics"))["algorithms"]
    results["recsys_ndcg"] = gates_mod.recsys_gate(ctx.output("recsys_train", "served"), evaluation,
                                                   rcfg.baseline, cfg.recsys_min_ratio, metric=rcfg.ndcg)
    if rcfg.session:
        timed = _read_json(ctx.output("recsys_evaluate", "metrics")).get("time_ordered") or {}
        results["recsys_session"] = gates_mod.session_gate(timed.get("algorithms", {}), rcfg.baseline,
                                                           rcfg.session_min_ratio, rcfg.session_metric,
                                                           rcfg.session_protocol)
    if cfg.graph_counts:
        exported = ctx.output("graph_export", "counts")
        loaded = ctx.output("graph_load", "counts")
        results["graph_inputs"] = gates_mod.graph_gate(expected_graph_counts(ctx), exported)
        results["graph_store"] = gates_mod.graph_gate(exported, loaded,
                                                      exact=ctx.output("graph_load", "exact_counts"))
    ctx.manifest.data["gates"] = results
    failed = [f"{name} ({g['detail']}: value {g['value']}, threshold {g['threshold']})"
              for name, g in results.items() if not g["passed"]]
    if failed:
        raise GateFailed("quality gate(s) failed, nothing published: " + "; ".join(failed))
    return StepResult(metrics={name: g["value"] for name, g in results.items()})


STEPS = [
    ("validate", step_validate),
    ("merge", step_merge),
    ("match", step_match),
    ("recsys_evaluate", step_recsys_evaluate),
    ("recsys_train", step_recsys_train),
    ("graph_export", step_graph_export),
    ("graph_load", step_graph_load),
    ("gates", step_gates),
]


# ---- report ----------------------------------------------------------------------------------------------

def write_report(ctx: RunContext) -> Path:
    """runs/<id>/report.html from whatever the run has produced so far (failed runs included), compared with the
    published run it replaces (c360.jobs.run_report)."""
    return run_report.write_report(ctx.run)
