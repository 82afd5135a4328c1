"""Stable match_ids: clusters that persist keep the id they had in the previous output, by joins and windows in the
engine (no record reaches the driver).

A cluster takes the previous match_id held by most of its records (each previous id goes to at most one cluster:
the one with the largest overlap); every other cluster gets a fresh id above the previous maximum, in order of the
cluster's smallest record key. Without a previous output ids are 1..k in that order, so reruns on the same data
give the same ids. Ties: the smaller previous id, then the cluster with the smaller smallest key.
"""

from __future__ import annotations

from pathlib import Path

from c360.io import read_json_file
from c360.layout import MatchOutput


def previous_id_column(previous: Path) -> str:
    """The record id column of a previous match output (its report names it; default "id")."""
    rp = MatchOutput(previous).report
    return str(read_json_file(rp).get("id", "id")) if rp.exists() else "id"


def match_ids_query(records: str, previous: str | None, id_col: str = "id", string: str = "STRING") -> str:
    """SQL: (cluster, match_id) per cluster of `records` (columns `key`: the record id, `cluster`), stable against
    the table `previous` (its `id_col` and match_id; None: no previous output)."""
    first = f"SELECT cluster, min(key) AS first_key FROM {records} GROUP BY cluster"
    if previous is None:
        return (f"SELECT cluster, CAST(row_number() OVER (ORDER BY first_key, cluster) AS BIGINT) AS match_id "
                f"FROM ({first}) f")
    prev = (f"SELECT CAST({id_col} AS {string}) AS key, min(CAST(match_id AS BIGINT)) AS prev FROM {previous} "
            f"WHERE match_id IS NOT NULL GROUP BY CAST({id_col} AS {string})")
    overlap = (f"SELECT r.cluster, p.prev, count(*) AS n FROM {records} r JOIN ({prev}) p ON r.key = p.key "
               f"GROUP BY r.cluster, p.prev")
    best = (f"SELECT cluster, prev, n, row_number() OVER (PARTITION BY cluster ORDER BY n DESC, prev) AS rank_c "
            f"FROM ({overlap}) o")
    kept = (f"SELECT b.cluster, b.prev, row_number() OVER (PARTITION BY b.prev ORDER BY b.n DESC, f.first_key, "
            f"b.cluster) AS rank_p FROM ({best}) b JOIN ({first}) f ON b.cluster = f.cluster WHERE b.rank_c = 1")
    assigned = f"SELECT cluster, prev AS match_id FROM ({kept}) k WHERE rank_p = 1"
    start = f"SELECT greatest(coalesce(max(prev), 0), 0) AS top FROM ({prev}) p"
    fresh = (f"SELECT f.cluster, s.top + row_number() OVER (ORDER BY f.first_key, f.cluster) AS match_id "
             f"FROM ({first}) f LEFT JOIN ({assigned}) a ON f.cluster = a.cluster CROSS JOIN ({start}) s "
             f"WHERE a.cluster IS NULL")
    return f"SELECT cluster, CAST(match_id AS BIGINT) AS match_id FROM ({assigned}) a UNION ALL " \
           f"SELECT cluster, CAST(match_id AS BIGINT) AS match_id FROM ({fresh}) x"
