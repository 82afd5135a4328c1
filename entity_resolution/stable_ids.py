"""Stable match_ids: clusters that persist keep the id they had in the previous output, by joins and windows in the
engine (no record reaches the driver).

Each previous id goes to the cluster holding most of its records (its largest part; ties: the cluster with the
smaller smallest record key), and a cluster that is the largest part of several previous ids (a merge) keeps the one
of which it holds most records (ties: the smaller id). Every other cluster gets a fresh id above the previous
maximum (and above `floor`: the highest id the previous output's lineage ever handed out, so a retired id is never
given to someone else), in order of the cluster's smallest record key. Without a previous output ids are 1..k in
that order, so reruns on the same data give the same ids. What became of each previous id: id_changes.py.
"""

from __future__ import annotations

from pathlib import Path

from c360.io import read_json_file
from c360.layout import MatchOutput


def previous_id_column(previous: Path) -> str:
    """The record id column of a previous match output (its report names it; default "id")."""
    rp = MatchOutput(previous).report
    return str(read_json_file(rp).get("id", "id")) if rp.exists() else "id"


def previous_max_id(previous: Path) -> int:
    """The highest match_id a previous match output's lineage handed out (its report's `max_match_id`; 0 without)."""
    rp = MatchOutput(previous).report
    return int(read_json_file(rp).get("max_match_id") or 0) if rp.exists() else 0


def previous_query(previous: str, id_col: str = "id", string: str = "STRING") -> str:
    """SQL: (key, prev): each record of the table `previous` (its `id_col` as text) and its match_id."""
    return (f"SELECT CAST({id_col} AS {string}) AS key, min(CAST(match_id AS BIGINT)) AS prev FROM {previous} "
            f"WHERE match_id IS NOT NULL GROUP BY CAST({id_col} AS {string})")


def parts_query(records: str, previous: str, id_col: str = "id", string: str = "STRING") -> str:
    """SQL: (cluster, prev, n, part): how many records of each previous id each cluster of `records` holds, the
    parts of one previous id numbered from 1, its largest (ties: the cluster with the smaller smallest key)."""
    first = f"SELECT cluster, min(key) AS first_key FROM {records} GROUP BY cluster"
    overlap = (f"SELECT r.cluster, p.prev, count(*) AS n FROM {records} r "
               f"JOIN ({previous_query(previous, id_col, string)}) p ON r.key = p.key GROUP BY r.cluster, p.prev")
    return (f"SELECT o.cluster, o.prev, o.n, row_number() OVER (PARTITION BY o.prev ORDER BY o.n DESC, f.first_key, "
            f"o.cluster) AS part FROM ({overlap}) o JOIN ({first}) f ON o.cluster = f.cluster")


def match_ids_query(records: str, previous: str | None, id_col: str = "id", string: str = "STRING",
                    floor: int = 0) -> str:
    """SQL: (cluster, match_id) per cluster of `records` (columns `key`: the record id, `cluster`), stable against
    the table `previous` (its `id_col` and match_id; None: no previous output); fresh ids above `floor` too."""
    first = f"SELECT cluster, min(key) AS first_key FROM {records} GROUP BY cluster"
    if previous is None:
        return (f"SELECT cluster, CAST({int(floor)} + row_number() OVER (ORDER BY first_key, cluster) AS BIGINT) "
                f"AS match_id FROM ({first}) f")
    largest = f"SELECT cluster, prev, n FROM ({parts_query(records, previous, id_col, string)}) p WHERE part = 1"
    kept = (f"SELECT cluster, prev, row_number() OVER (PARTITION BY cluster ORDER BY n DESC, prev) AS pick "
            f"FROM ({largest}) l")
    assigned = f"SELECT cluster, prev AS match_id FROM ({kept}) k WHERE pick = 1"
    start = (f"SELECT greatest(coalesce(max(prev), 0), {int(floor)}) AS top "
             f"FROM ({previous_query(previous, id_col, string)}) p")
    fresh = (f"SELECT f.cluster, s.top + row_number() OVER (ORDER BY f.first_key, f.cluster) AS match_id "
             f"FROM ({first}) f LEFT JOIN ({assigned}) a ON f.cluster = a.cluster CROSS JOIN ({start}) s "
             f"WHERE a.cluster IS NULL")
    return f"SELECT cluster, CAST(match_id AS BIGINT) AS match_id FROM ({assigned}) a UNION ALL " \
           f"SELECT cluster, CAST(match_id AS BIGINT) AS match_id FROM ({fresh}) x"
