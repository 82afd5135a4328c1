"""What two match outputs say about their ids, computed record by record in pandas: the reference the id-history
test and benchmarks/id_history.py hold the engine's id changes (c360.entity_resolution.id_changes) to, and the
clusters a scripted history may edit."""

from __future__ import annotations

import pandas as pd


def match_ids(matched) -> pd.Series:
    """record id -> match_id of a match output (its id column `id`)."""
    df = pd.read_parquet(matched, columns=["id", "match_id"])
    return df.set_index("id")["match_id"].astype(int)


def pure_clusters(ids: pd.Series, person: pd.Series) -> pd.DataFrame:
    """The clusters that are exactly one person's records (all of them): match_id, person, size (by match_id).
    `ids`: record id -> match_id; `person`: record id -> the truth's person."""
    df = pd.DataFrame({"match_id": ids, "person": person.reindex(ids.index)})
    per = df.groupby("match_id").agg(person=("person", "first"), people=("person", "nunique"), size=("person", "size"))
    records = person.reindex(ids.index).value_counts()
    per = per[(per["people"] == 1) & (per["size"] == per["person"].map(records))]
    return per.reset_index().sort_values("match_id")


def reference(prev: pd.Series, now: pd.Series) -> dict[int, tuple]:
    """{match_id: (change, into, records_before, records_after)} by the changes' definition (id_changes' docstring)
    from the previous and this output's ids (record id -> match_id); AssertionError where an id was kept by a part
    that is not its largest (the rule of stable_ids)."""
    out = {}
    first = now.rename_axis("id").rename("match_id").reset_index().groupby("match_id")["id"].min()
    for p, n_before in prev.value_counts().items():
        here = now.reindex(prev.index[prev == p]).dropna().astype(int)
        if here.empty:
            out[int(p)] = ("retired", [], int(n_before), 0)
            continue
        parts = here.value_counts()
        order = sorted(parts.index, key=lambda m: (-parts[m], first[m]))
        if p in parts.index:
            assert order[0] == p, f"id {p}: kept by a part that is not its largest"   # the rule of stable_ids
        others = [int(m) for m in order if m != p]
        change = ("split" if others else "kept") if p in parts.index else "merged"
        out[int(p)] = (change, others, int(n_before), int((now == p).sum()))
    for m, n in now.value_counts().items():
        if m not in out:
            out[int(m)] = ("new", [], 0, int(n))
    return out
