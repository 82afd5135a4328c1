"""What became of every match_id of the previous output: `<matched>.id_changes.parquet` (MatchOutput.id_changes),
computed in the engine like the ids themselves (stable_ids), and read back by the API and the graph export.

One row per id of the previous output and per id this output created:

    match_id BIGINT, change STRING, into LIST<BIGINT>, records_before BIGINT, records_after BIGINT

- `kept`: the records it still has are all in the cluster that keeps it (a cluster that absorbed others: they say
  `merged` into it); into [];
- `split`: its records are in several clusters now; its largest part keeps it, into: the ids of the other parts,
  largest first;
- `merged`: its largest part is in a cluster that kept another id; into: the ids holding its records, that survivor
  first (a merged id's records may have gone to several);
- `retired`: none of its records is in the output (ids are never handed out again: stable_ids' floor); into [];
- `new`: an id this output created (a new person, or a part split off another id); into [] (the ids it was split
  off list it in theirs: split_from).

`records_before`: its records in the previous output; `records_after`: in this one (0 for merged and retired).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from c360.entity_resolution import standardize_sql as Q
from c360.entity_resolution.stable_ids import parts_query, previous_query

CHANGES = ("kept", "merged", "split", "retired", "new")
COLUMNS = ("match_id", "change", "into", "records_before", "records_after")
#: the ids a reader needs to look up (kept and new ids answer as themselves)
CHANGED = ("merged", "split", "retired")
TOP = 10   # the largest merges and splits the report lists


def id_changes_query(records: str, ids: str, previous: str, id_col: str, d: Q.Dialect) -> str:
    """SQL: the changes (COLUMNS) of the ids of the table `previous` (its `id_col` and match_id) given this output's
    clusters (`records`: key, cluster) and their ids (`ids`: cluster, match_id)."""
    into = Q.quote("into", d)
    parts = (f"SELECT p.prev, p.part, i.match_id AS mid FROM ({parts_query(records, previous, id_col, d.string)}) p "
             f"JOIN {ids} i ON p.cluster = i.cluster")
    before = (f"SELECT prev, count(*) AS records_before FROM ({previous_query(previous, id_col, d.string)}) p "
              f"GROUP BY prev")
    after = (f"SELECT i.match_id AS mid, count(*) AS records_after FROM {records} r JOIN {ids} i "
             f"ON r.cluster = i.cluster GROUP BY i.match_id")
    others = _ordered_list(d, "pt.mid", "pt.part", "pt.mid <> b.prev")
    per_id = (f"SELECT b.prev AS match_id, b.records_before, count(pt.mid) AS n_parts, "
              f"max(CASE WHEN pt.mid = b.prev THEN 1 ELSE 0 END) AS is_kept, {others} AS others "
              f"FROM ({before}) b LEFT JOIN ({parts}) pt ON pt.prev = b.prev GROUP BY b.prev, b.records_before")
    change = ("CASE WHEN x.n_parts = 0 THEN 'retired' WHEN x.is_kept = 1 AND x.n_parts = 1 THEN 'kept' "
              "WHEN x.is_kept = 1 THEN 'split' ELSE 'merged' END")
    old = (f"SELECT CAST(x.match_id AS BIGINT) AS match_id, {change} AS change, x.others AS {into}, "
           f"CAST(x.records_before AS BIGINT) AS records_before, "
           f"CAST(coalesce(a.records_after, 0) AS BIGINT) AS records_after "
           f"FROM ({per_id}) x LEFT JOIN ({after}) a ON a.mid = x.match_id")
    new = (f"SELECT CAST(a.mid AS BIGINT) AS match_id, 'new' AS change, {_empty_list(d)} AS {into}, "
           f"CAST(0 AS BIGINT) AS records_before, CAST(a.records_after AS BIGINT) AS records_after "
           f"FROM ({after}) a LEFT JOIN ({before}) b ON a.mid = b.prev WHERE b.prev IS NULL")
    return f"{old} UNION ALL {new}"


def _ordered_list(d: Q.Dialect, value: str, order: str, keep: str) -> str:
    """SQL: the aggregate list of `value` over the rows where `keep`, in `order` (empty, never NULL, when none)."""
    if d.name == "spark":
        return (f"transform(array_sort(collect_list(CASE WHEN {keep} THEN named_struct('o', {order}, 'v', {value}) "
                f"END)), x -> x.v)")
    return f"coalesce(list({value} ORDER BY {order}) FILTER (WHERE {keep}), {_empty_list(d)})"


def _empty_list(d: Q.Dialect) -> str:
    return "CAST(array() AS ARRAY<BIGINT>)" if d.name == "spark" else "CAST([] AS BIGINT[])"


def _first(d: Q.Dialect, column: str) -> str:
    """SQL: the first element of a list column."""
    return f"element_at({column}, 1)" if d.name == "spark" else f"{column}[1]"


def summary(db, changes: str, previous: str | Path) -> dict:
    """The report's `id_changes`: the previous output, the ids counted by change, the largest merges (the ids that
    absorbed most ids: {match_id, merged_from, records}) and splits (most records before: {match_id, split_into,
    records_before, records_after}); bounded aggregates of the engine's table `changes`."""
    d = db.dialect
    into = Q.quote("into", d)
    counts = {c: 0 for c in CHANGES}
    counts.update({str(c): int(n) for c, n in db.rows(f"SELECT change, count(*) FROM {changes} GROUP BY change")})
    merged = f"SELECT {_first(d, into)} AS survivor, match_id FROM {changes} WHERE change = 'merged'"
    top = (f"SELECT survivor, count(*) AS ids FROM ({merged}) m GROUP BY survivor "
           f"ORDER BY ids DESC, survivor LIMIT {TOP}")
    rows = db.rows(f"SELECT m.survivor, m.match_id, c.records_after FROM ({merged}) m JOIN ({top}) t "
                   f"ON m.survivor = t.survivor JOIN {changes} c ON c.match_id = m.survivor")
    by_survivor: dict[int, dict] = {}
    for survivor, mid, records in rows:
        entry = by_survivor.setdefault(int(survivor), {"match_id": int(survivor), "merged_from": [],
                                                       "records": int(records)})
        entry["merged_from"].append(int(mid))
    merges = sorted(({**m, "merged_from": sorted(m["merged_from"])} for m in by_survivor.values()),
                    key=lambda m: (-len(m["merged_from"]), m["match_id"]))
    splits = [{"match_id": int(mid), "split_into": [int(x) for x in parts], "records_before": int(b),
               "records_after": int(a)}
              for mid, parts, b, a in db.rows(
                  f"SELECT match_id, {into}, records_before, records_after FROM {changes} WHERE change = 'split' "
                  f"ORDER BY records_before DESC, match_id LIMIT {TOP}")]
    return {"previous": str(previous), "counts": counts, "largest_merges": merges, "largest_splits": splits}


# ---- reading ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IdChange:
    """What became of one id: its change and the ids its records are in now (see the module docstring)."""

    change: str
    into: tuple[int, ...]
    records_before: int
    records_after: int

    @property
    def survivor(self) -> int | None:
        """The id a merged id's person is answered under now (None for another change)."""
        return self.into[0] if self.change == "merged" and self.into else None


class IdChanges:
    """The merged, split and retired ids of one output (kept and new ids answer as themselves), read once: a lookup
    by match_id."""

    def __init__(self, changes: dict[int, IdChange] | None = None):
        self._changes = dict(changes or {})

    def __len__(self) -> int:
        return len(self._changes)

    def get(self, match_id: int | str) -> IdChange | None:
        """The change of an id that was merged, split or retired (None for any other id, or one that is no number)."""
        try:
            return self._changes.get(int(match_id))
        except (TypeError, ValueError):
            return None

    def current(self, match_id: int) -> int:
        """The id a previous id's person has now: a merged id's survivor, else the id itself."""
        change = self._changes.get(int(match_id))
        survivor = change.survivor if change is not None else None
        return int(match_id) if survivor is None else survivor

    def merged_from(self) -> dict[int, list[int]]:
        """{survivor: the ids merged into it, ascending}."""
        out: dict[int, list[int]] = {}
        for mid, change in sorted(self._changes.items()):
            if change.survivor is not None:
                out.setdefault(change.survivor, []).append(mid)
        return out

    @classmethod
    def read(cls, path: str | Path) -> IdChanges:
        """The changed ids of an id changes file (a Parquet file or a directory of parts); empty when it is missing.
        InputError naming the file and the column when one is missing."""
        cols = _rows(path, CHANGED)
        if cols is None:
            return cls()
        return cls({int(m): IdChange(str(c), tuple(int(x) for x in (i or ())), int(b), int(a))
                    for m, c, i, b, a in zip(*(cols[c] for c in COLUMNS), strict=True)})


def _rows(path: str | Path, changes: tuple[str, ...]) -> dict[str, list] | None:
    """The COLUMNS of an id changes file's rows of `changes` (a Parquet file or a directory of parts); None when it
    is missing. InputError naming the file and the column when one is missing."""
    import pyarrow.dataset as ds

    from c360.errors import InputError

    path = Path(path)
    if not path.exists():
        return None
    data = ds.dataset(path, format="parquet")
    missing = [c for c in COLUMNS if c not in data.schema.names]
    if missing:
        raise InputError(f"{path}: column {', '.join(missing)} missing (an id changes file has "
                         f"{', '.join(COLUMNS)})")
    return data.to_table(columns=list(COLUMNS), filter=ds.field("change").isin(list(changes))).to_pydict()


def split_from(path: str | Path) -> dict[int, list[int]]:
    """{an id this output created for records split off previous ids: those ids, ascending}, from an id changes
    file (a Parquet file or a directory of parts; empty when it is missing): the `new` ids that a `split` id, or a
    `merged` one whose records went to several clusters, lists in its `into`. An id a split's part went to that was
    there before stays `kept` and is not listed (the split did not create it)."""
    rows = _rows(path, ("split", "merged", "new"))
    if rows is None:
        return {}
    new = {int(m) for m, c in zip(rows["match_id"], rows["change"], strict=True) if c == "new"}
    out: dict[int, list[int]] = {}
    for mid, change, into in zip(rows["match_id"], rows["change"], rows["into"], strict=True):
        if change == "new":
            continue
        for part in (int(x) for x in into or ()):
            if part in new:
                out.setdefault(part, []).append(int(mid))
    return {k: sorted(v) for k, v in sorted(out.items())}
