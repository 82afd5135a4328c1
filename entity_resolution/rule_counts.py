"""Comparisons each equi-join blocking rule generates on its own, counted on DuckDB by grouping instead of by making
the pairs: the numbers Splink's blocking analysis gives, one rule at a time, exactly, from one query.

Splink (`count_comparisons_from_blocking_rules`, record_sample_proportion 1) joins the inputs' union with itself on
`l.c = r.c` for every column `c` of the rule, keeps the pairs whose composite id `source_dataset || '-__-' ||
unique_id` is smaller on the left, and counts them. Equality leaves out missing values, and `<` holds one way for
every two different ids and never for equal ones. So a group of records agreeing on the rule's columns, n of them,
with m_i records of each id, makes (n^2 - sum m_i^2) / 2 pairs: all of it one grouped aggregate per rule. Splink
took about 45 ms per rule for any data (it plans and runs a pipeline of several statements), half of a small match.
"""

from __future__ import annotations

from c360.entity_resolution.standardize_sql import DUCKDB, quote

SEPARATOR = "-__-"   # Splink's, between the source dataset and the unique id of a composite id
PAIRWISE = ("dedupe_only", "link_and_dedupe")   # the link types whose only pair condition is l.id < r.id


def countable(tables, link_type: str) -> bool:
    """Whether `count` applies: Splink DuckDB tables of one connection, each with a source_dataset column (Splink
    adds none then), and a link type whose pairs need only differ in their composite id."""
    if link_type not in PAIRWISE or not tables:
        return False
    api = tables[0].db_api
    return (type(api).__name__ == "DuckDBAPI" and all(t.db_api is api for t in tables)
            and all("source_dataset" in _names(t) for t in tables))


def count(tables, rules: list[tuple[str, ...]]) -> list[int]:
    """Per rule (the columns that must all be equal), the comparisons it generates on its own over the union of
    `tables` (Splink DuckDB tables, `countable`)."""
    if not rules:
        return []
    used = sorted({c for rule in rules for c in rule})
    cols = ", ".join(quote(c, DUCKDB) for c in used)
    union = " UNION ALL ".join(
        f"SELECT {cols}, source_dataset || '{SEPARATOR}' || unique_id AS __id FROM {t.physical_name}" for t in tables)
    parts = []
    for i, rule in enumerate(rules):
        keys = ", ".join(quote(c, DUCKDB) for c in rule)
        present = " AND ".join(f"{quote(c, DUCKDB)} IS NOT NULL" for c in (*rule, "__id"))
        parts.append(
            f"SELECT {i} AS rule, coalesce(sum((n * n - same) // 2), 0) AS pairs FROM ("
            f"SELECT sum(m) AS n, sum(m * m) AS same FROM ("
            f"SELECT {keys}, count(*)::HUGEINT AS m FROM records WHERE {present} GROUP BY {keys}, __id"
            f") ids GROUP BY {keys}) groups")
    sql = f"WITH records AS ({union}) " + " UNION ALL ".join(parts)
    found = dict(tables[0].db_api.duckdb_con.execute(sql).fetchall())
    return [int(found[i]) for i in range(len(rules))]


def _names(table) -> set[str]:
    return {c.unquote().name for c in table.columns}

