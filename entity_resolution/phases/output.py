"""Assign ids and write: every input row with a stable int64 match_id, then the output and the files beside it
(report, scored pairs, model, what became of the previous output's ids; MatchOutput)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from c360 import hadoop_fs
from c360.entity_resolution import standardize_sql as Q
from c360.entity_resolution.id_changes import id_changes_query, summary
from c360.entity_resolution.phases.block import Blocking
from c360.entity_resolution.phases.prepare import Input, Prepared
from c360.entity_resolution.phases.run import MatchRun
from c360.entity_resolution.phases.score import Clusters, Scored
from c360.entity_resolution.phases.train import Trained
from c360.entity_resolution.stable_ids import match_ids_query, previous_id_column, previous_max_id
from c360.entity_resolution.tables import Table
from c360.io import json_text, parse_json, write_json_file
from c360.layout import MatchOutput


@dataclass(frozen=True)
class Assigned:
    """Every input row (the union of the inputs' columns) and its match_id; what became of the previous output's ids
    (None without one) and the highest id handed out before this run."""

    result: Table   # a view: computed when written
    changes: Table | None = None   # computed now (the previous output may be the one this run overwrites)
    previous: Path | str | None = None
    floor: int = 0


def assign_ids(run: MatchRun, prepared: Prepared, clusters: Clusters) -> Assigned:
    """Every input row with an int64 match_id, stable against the previous output (default: an existing out):
    joins and windows in the engine (stable_ids)."""
    db = run.db
    records = db.table("er_records", f"SELECT n.unique_id AS key, c.cluster_id AS cluster FROM {clusters.nodes} n "
                                     f"JOIN {clusters.clusters} c ON n.node_id = c.node_id")
    previous, id_col, floor = _previous(run)
    quoted = Q.quote(id_col, db.dialect)
    ids = db.table("er_ids", match_ids_query(records.name, previous, quoted, db.dialect.string, floor), persist=True)
    changes = None if previous is None else db.table(
        "er_id_changes", id_changes_query(records.name, ids.name, previous, quoted, db.dialect), persist=True)
    keyed = db.table("er_keyed", f"SELECT n.unique_id, n.source_dataset, i.match_id FROM {clusters.nodes} n "
                                 f"JOIN {clusters.clusters} c ON n.node_id = c.node_id JOIN {ids} i "
                                 f"ON c.cluster_id = i.cluster")
    # the rows of every input (the union of their columns, in order of appearance), less an old match_id
    types: dict[str, str] = {}
    for x in prepared.inputs:
        types.update({c: t for c, t in x.types.items() if c != "match_id" and c not in types})
    rows = " UNION ALL ".join(_rows(run, x, types) for x in prepared.inputs)
    out = ", ".join(f"r.{Q.quote(c, db.dialect)}" for c in types)
    result = db.table("er_result", f"SELECT {out}, CAST(k.match_id AS BIGINT) AS match_id FROM ({rows}) r "
                                   f"JOIN {keyed} k ON r.__uid = k.unique_id AND r.__src = k.source_dataset")
    return Assigned(result, changes, (run.previous or run.output.matched) if changes is not None else None, floor)


def _previous(run: MatchRun) -> tuple[str | None, str, int]:
    """(the previous output's table, None if there is none or it has no ids; its record id column; the highest id its
    lineage handed out, as its report says: 0 without)."""
    prev = run.previous or run.output.matched
    if not _exists(run, prev):
        return None, "id", 0
    id_col, floor = _previous_report(run, prev)
    table = run.db.read_parquet(prev, "er_previous")
    return (table.name if {"match_id", id_col} <= set(table.columns) else None), id_col, floor


def _rows(run: MatchRun, x: Input, types: dict[str, str]) -> str:
    """SQL: the rows of one input with every column of `types` (one it lacks NULL, of the type another input gives
    it), its record id and source."""
    d = run.db.dialect
    cols = [Q.quote(c, d) if c in x.types else
            f"CAST(NULL AS {t if run.engine == 'duckdb' else t.upper()}) AS {Q.quote(c, d)}" for c, t in types.items()]
    uid = Q.raw_text(run.cfg.id, x.types[run.cfg.id], d, x.csv) if x.csv else \
        f"CAST({Q.quote(run.cfg.id, d)} AS {d.string})"
    return f"SELECT {', '.join(cols)}, {uid} AS __uid, '{x.source_dataset}' AS __src FROM {x.raw}"


def write(run: MatchRun, prepared: Prepared, trained: Trained, blocking: Blocking, scored: Scored, clusters: Clusters,
          assigned: Assigned, timings: dict[str, float]) -> dict:
    """Write the matched rows, then the report, scored pairs and model beside them (MatchOutput), each by the
    engine; return the report (its cluster counts read back from the written rows)."""
    o = run.output
    run.db.write_parquet(assigned.result.sql(), o.matched)
    written = run.db.read_parquet(o.matched, "er_written")
    sizes = {int(k): int(v) for k, v in run.db.rows(
        f"SELECT size, count(*) FROM (SELECT match_id, count(*) AS size FROM {written} GROUP BY match_id) s "
        f"GROUP BY size ORDER BY size")}
    top = run.db.one(f"SELECT max(match_id) FROM {written}")[0]
    report = _report(run, prepared, trained, blocking, clusters, sizes, timings)
    report["id_changes"] = None
    if assigned.changes is not None:
        run.db.write_parquet(assigned.changes.sql(), o.id_changes)
        report["id_changes"] = summary(run.db, assigned.changes.name, assigned.previous)
        top = max(top or 0, run.db.one(f"SELECT max(match_id) FROM {assigned.changes}")[0] or 0)
    else:
        _remove(run, o.id_changes)   # an earlier run's, at this path: it describes another output
    # the highest id this output's lineage handed out: the next run's fresh ids start above it (stable_ids)
    report["max_match_id"] = max(int(top or 0), assigned.floor)
    _write_json(run, o.report, report)
    run.db.write_parquet(scored.pairs.sql(), o.pairs)
    _write_json(run, o.model, blocking.model)
    return report


def _report(run: MatchRun, prepared: Prepared, trained: Trained, blocking: Blocking, clusters: Clusters,
            sizes: dict[int, int], timings: dict[str, float]) -> dict:
    """The run's report: what it was given, what it chose and why, what it found, how long each phase took."""
    c = clusters.counts
    seconds = {k: round(v, 2) for k, v in timings.items()}
    seconds["total"] = round(time.time() - run.started, 2)
    return {"engine": run.engine, "inputs": [str(p) for p in run.inputs], "config": run.cfg.source,
            "link_type": run.link_type, "threshold": clusters.threshold, "threshold_choice": clusters.threshold_choice,
            "blocking": blocking.report, "training": trained.summary,
            "warnings": [*trained.warnings, *blocking.warnings],
            "comparisons": [{"name": x.name, "fields": sorted(x.fields)} for x in prepared.compared],
            "records": prepared.records, "clusters": sum(sizes.values()),
            "pairs_scored": c["pairs_scored"], "pairs_linked": c["pairs_linked"],
            "relatives_guarded": c["relatives_guarded"],
            "unparseable": prepared.unparseable, "prior_probability_two_random_records_match": trained.prior,
            "match_probability_histogram": {"bin_edges": np.round(np.linspace(0, 1, 21), 3).tolist(),
                                            "counts": c["histogram"]},
            "cluster_sizes": {str(k): v for k, v in sizes.items()}, "seconds": seconds,
            "roles": run.cfg.roles, "id": run.cfg.id, "match_config": run.cfg.raw}


def _exists(run: MatchRun, path: Path | str) -> bool:
    """Whether a match output (a file or a directory of parts) is at `path` (a URI through Hadoop)."""
    return hadoop_fs.exists(run.spark, path) if isinstance(path, str) else path.exists()


def _previous_report(run: MatchRun, previous: Path | str) -> tuple[str, int]:
    """(the record id column of a previous match output, the highest id its lineage handed out): what its report
    says (defaults "id" and 0)."""
    if not isinstance(previous, str):
        return previous_id_column(previous), previous_max_id(previous)
    report = MatchOutput(previous).report
    if not hadoop_fs.is_file(run.spark, report):
        return "id", 0
    data = parse_json(hadoop_fs.read_text(run.spark, report), report)
    return str(data.get("id", "id")), int(data.get("max_match_id") or 0)


def _remove(run: MatchRun, path: Path | str) -> None:
    """Remove a file or directory of the output, if there is one (a URI through Hadoop)."""
    import shutil

    if isinstance(path, str):
        if hadoop_fs.exists(run.spark, path):
            hadoop_fs.delete(run.spark, path)
    elif path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _write_json(run: MatchRun, path: Path | str, data) -> None:
    """Write a JSON file of the output atomically (a URI through Hadoop's FileSystem)."""
    if isinstance(path, str):
        hadoop_fs.write_text(run.spark, path, json_text(data))
    else:
        write_json_file(path, data)
