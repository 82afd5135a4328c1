"""The history of every match_id: what a match run made of the previous output's ids (kept, merged, split, retired,
new: entity_resolution.id_changes), the rule that keeps them (stable_ids: the largest part keeps an id), the file,
the report and a scripted two-run history on generated data (DuckDB); the SQL on Spark agrees (jvm)."""

from __future__ import annotations

import pandas as pd
import pytest

from c360.entity_resolution import standardize_sql as Q
from c360.entity_resolution.engines import open_engine
from c360.entity_resolution.generate import generate
from c360.entity_resolution.id_changes import CHANGES, IdChanges, id_changes_query, summary
from c360.entity_resolution.match import match
from c360.entity_resolution.stable_ids import match_ids_query
from c360.errors import InputError
from c360.graph.export import customers_from_sources, load_sources
from c360.io import read_json_file
from c360.layout import MatchOutput

from .id_history import match_ids, pure_clusters, reference

# ---- the rule, on hand-made clusters ----------------------------------------------------------------------

# the previous output: record -> match_id
PREVIOUS = {"a1": 1, "a2": 1,                       # kept
            "b1": 2, "b2": 2, "b3": 2, "c1": 3,     # 3 joins 2's cluster: merged into 2
            "d1": 4, "d2": 4, "d3": 4,              # split 2 + 1: the two keep 4
            "e1": 5,                                # gone: retired
            "f1": 6, "f2": 6, "f3": 6,              # 2 with all of 7's 3 (7 keeps that one), 1 alone: merged into 7
            "g1": 7, "g2": 7, "g3": 7,
            "h1": 8, "h2": 8}                       # split 1 + 1: the part of the smaller key keeps 8
# this run's clusters: record -> cluster (cluster numbers are arbitrary)
CLUSTERS = {"a1": 10, "a2": 10, "b1": 11, "b2": 11, "b3": 11, "c1": 11, "d1": 12, "d2": 12, "d3": 13,
            "f1": 14, "f2": 14, "g1": 14, "g2": 14, "g3": 14, "f3": 15, "h1": 16, "h2": 17, "n1": 18}
FLOOR = 20   # the previous output's lineage handed out ids up to 20: fresh ids start at 21
IDS = {10: 1, 11: 2, 12: 4, 14: 7, 16: 8,
       13: 21, 15: 22, 17: 23, 18: 24}   # fresh, in order of each cluster's smallest key: d3, f3, h2, n1
EXPECTED = {1: ("kept", [], 2, 2), 2: ("kept", [], 3, 4), 3: ("merged", [2], 1, 0), 4: ("split", [21], 3, 2),
            5: ("retired", [], 1, 0), 6: ("merged", [7, 22], 3, 0), 7: ("kept", [], 3, 5),
            8: ("split", [23], 2, 1), 21: ("new", [], 0, 1), 22: ("new", [], 0, 1), 23: ("new", [], 0, 1),
            24: ("new", [], 0, 1)}


def _changes(db) -> tuple[dict[int, int], dict[int, tuple], dict]:
    """({cluster: match_id}, {match_id: (change, into, records_before, records_after)}, the report's summary) of
    PREVIOUS and CLUSTERS, computed by `db`."""
    records = db.small_table("records", pd.DataFrame({"key": list(CLUSTERS), "cluster": list(CLUSTERS.values())}))
    previous = db.small_table("previous", pd.DataFrame({"id": list(PREVIOUS), "match_id": list(PREVIOUS.values())}))
    quoted = Q.quote("id", db.dialect)
    ids = db.table("ids", match_ids_query(records.name, previous.name, quoted, db.dialect.string, FLOOR),
                   persist=True)
    changes = db.table("changes", id_changes_query(records.name, ids.name, previous.name, quoted, db.dialect),
                       persist=True)
    got = {int(m): (c, [int(x) for x in i], int(b), int(a))
           for m, c, i, b, a in db.rows(f"SELECT match_id, change, {Q.quote('into', db.dialect)}, records_before, "
                                        f"records_after FROM {changes}")}
    return ({int(c): int(m) for c, m in db.rows(f"SELECT cluster, match_id FROM {ids}")}, got,
            summary(db, changes.name, "prev.parquet"))


SUMMARY = {"previous": "prev.parquet", "counts": {"kept": 3, "merged": 2, "split": 2, "retired": 1, "new": 4},
           "largest_merges": [{"match_id": 2, "merged_from": [3], "records": 4},
                              {"match_id": 7, "merged_from": [6], "records": 5}],
           "largest_splits": [{"match_id": 4, "split_into": [21], "records_before": 3, "records_after": 2},
                              {"match_id": 8, "split_into": [23], "records_before": 2, "records_after": 1}]}


def test_the_largest_part_keeps_an_id_and_every_change_is_listed():
    db = open_engine("duckdb", "_hist")
    try:
        ids, changes, report = _changes(db)
    finally:
        db.close()
    assert ids == IDS
    assert changes == EXPECTED
    assert report == SUMMARY


def test_reading_the_changed_ids(tmp_path):
    from c360.graph.sample_data import write_id_changes

    rows = [(m, c, i, b, a) for m, (c, i, b, a) in EXPECTED.items()]
    path = write_id_changes(pd.DataFrame(rows, columns=["match_id", "change", "into", "records_before",
                                                        "records_after"]), tmp_path / "changes.parquet")
    changes = IdChanges.read(path)
    assert len(changes) == 5   # merged, split and retired only: kept and new ids answer as themselves
    assert changes.get("3").survivor == 2 and changes.get(6).into == (7, 22) and changes.get(1) is None
    assert changes.get(4).change == "split" and changes.get(4).survivor is None and changes.get("x") is None
    assert changes.current(6) == 7 and changes.current(4) == 4 and changes.current(99) == 99
    assert changes.merged_from() == {2: [3], 7: [6]}
    assert len(IdChanges.read(tmp_path / "missing.parquet")) == 0
    pd.DataFrame({"match_id": [1]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"bad.parquet: column change, into, records_before, records_after missing"):
        IdChanges.read(tmp_path / "bad.parquet")


def test_the_report_shows_the_counts_and_the_largest_merges_and_splits():
    from c360.jobs.report import render_report

    manifest = {"run_id": "r2", "status": "succeeded", "created_at": "now", "steps": {}}
    page = render_report(manifest, {"id_changes": SUMMARY}, {}, {})
    assert "Match ids since the previous output" in page and "<code>prev.parquet</code>" in page
    assert "<td>merged</td><td>2</td>" in page and "<td>retired</td><td>1</td>" in page
    assert "Largest merges" in page and "<td>7</td><td>1</td><td>6</td><td>5</td>" in page
    assert "Largest splits" in page and "<td>4</td><td>21</td><td>3</td><td>2</td>" in page
    assert "Match ids since" not in render_report(manifest, {"id_changes": None}, {}, {})


@pytest.mark.slow
def test_the_spark_sql_gives_the_same_ids_and_changes(spark):
    db = open_engine("spark", "_hist", spark)
    try:
        ids, changes, report = _changes(db)
    finally:
        db.close()
    assert ids == IDS and changes == EXPECTED and report == SUMMARY


# ---- a scripted two-run history with the matcher ----------------------------------------------------------

STRANGER = {"first_name": "Zebediah", "last_name": "Quarrington-Vale", "date_of_birth": "1911-03-17",
            "ssn": "645-12-9087", "home_phone": "907-555-0134", "company": "Nowhere Assay", "address": "1 Tundra Way",
            "city": "Nome", "state": "AK", "zip": "99762", "email": "zq@example.org"}
PERSON_FIELDS = ("first_name", "last_name", "date_of_birth", "ssn", "home_phone", "company", "address", "city",
                 "state", "zip", "email")


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Run 1 on 200 generated people less the last 10; run 2 (previous: run 1's output) with those 10 added, two
    people made to look alike (one record apart, the same person), one record of a third made a stranger, a fourth
    person's records gone."""
    d = tmp_path_factory.mktemp("id-history")
    generate(200, seed=11, out_dir=d / "src")
    merged = customers_from_sources(load_sources(d / "src"))
    person = pd.read_csv(d / "src" / "truth.csv", dtype=str).set_index("record_id")["person_id"]
    later = set(sorted(person.unique(), key=int)[-10:])
    first = merged[~merged["id"].map(person).isin(later)]
    first.to_parquet(d / "run1.parquet", index=False)
    out1 = d / "run1" / "matched.parquet"
    out1.parent.mkdir()
    match([d / "run1.parquet"], engine="duckdb", out=out1, u_max_pairs=2e5)
    ids1 = match_ids(out1)
    pure = pure_clusters(ids1, person)
    big = pure[pure["size"] >= 2]
    a, c = big.iloc[0], big.iloc[1]
    b, gone = pure[pure["size"] == 1].iloc[0], pure[pure["size"] == 1].iloc[1]
    second = merged[~merged["id"].map(person).eq(gone["person"])].set_index("id")
    fields = [f for f in PERSON_FIELDS if f in second.columns]
    like_a = second.loc[ids1.index[ids1 == a["match_id"]][0], fields]
    for rid in ids1.index[ids1 == b["match_id"]]:          # b's one record: a's values
        second.loc[rid, fields] = like_a.to_numpy()
    stranger = sorted(ids1.index[ids1 == c["match_id"]])[-1]   # c's last record: someone else altogether
    second.loc[stranger, fields] = [STRANGER[f] for f in fields]
    second.reset_index().to_parquet(d / "run2.parquet", index=False)
    out2 = d / "run2" / "matched.parquet"
    out2.parent.mkdir()
    match([d / "run2.parquet"], engine="duckdb", out=out2, previous=out1, u_max_pairs=2e5)
    return {"out1": out1, "out2": out2, "ids1": ids1, "ids2": match_ids(out2), "person": person, "later": later,
            "a": int(a["match_id"]), "b": int(b["match_id"]), "c": int(c["match_id"]),
            "c_size": int(c["size"]), "gone": int(gone["match_id"]), "stranger": stranger}


@pytest.mark.slow
def test_a_second_run_lists_what_became_of_every_id(history):
    h = history
    ids1, ids2 = h["ids1"], h["ids2"]
    o1, o2 = MatchOutput(h["out1"]), MatchOutput(h["out2"])
    assert not (h["out1"].parent / "matched.parquet.id_changes.parquet").exists()   # run 1 had no previous output
    assert read_json_file(o1.report)["id_changes"] is None
    file = pd.read_parquet(o2.id_changes)
    assert list(file.columns) == ["match_id", "change", "into", "records_before", "records_after"]
    assert file["match_id"].is_unique
    got = {int(m): (c, [int(x) for x in i], int(b), int(a))
           for m, c, i, b, a in file.itertuples(index=False)}
    assert got == reference(ids1, ids2)
    # the scripted changes
    assert got[h["a"]][0] == "kept" and got[h["b"]] == ("merged", [h["a"]], 1, 0)
    assert ids2[ids1.index[ids1 == h["b"]]].eq(h["a"]).all()
    assert got[h["c"]][0] == "split" and got[h["c"]][1] == [ids2[h["stranger"]]]
    assert got[ids2[h["stranger"]]] == ("new", [], 0, 1)
    assert got[h["gone"]][0] == "retired" and h["gone"] not in set(ids2)
    added = ids2[ids2.index.map(h["person"]).isin(h["later"])]
    assert {got[m][0] for m in added} == {"new"}
    # no id was handed to someone else: an id of run 1 in run 2 holds records it held in run 1, a new one is above
    # every id run 1's lineage handed out
    for m, records in ids2.groupby(ids2).groups.items():
        if m in set(ids1):
            assert (ids1.reindex(records) == m).any(), m
    report2 = read_json_file(o2.report)
    new = [m for m, (c, *_) in got.items() if c == "new"]
    assert min(new) > read_json_file(o1.report)["max_match_id"] >= ids1.max()
    assert report2["max_match_id"] == max(got)
    counts = report2["id_changes"]["counts"]
    assert counts == {c: sum(1 for x in got.values() if x[0] == c) for c in CHANGES}
    assert counts["merged"] >= 1 and counts["split"] >= 1 and counts["retired"] >= 1
    assert report2["id_changes"]["previous"] == str(h["out1"])
    assert {"match_id": h["a"], "merged_from": [h["b"]], "records": got[h["a"]][3]} in \
        report2["id_changes"]["largest_merges"]


@pytest.mark.slow
def test_a_rerun_on_the_same_output_keeps_every_id_and_a_stale_file_goes(history, tmp_path):
    """Run 2's input again into run 2's own output (the default previous): every id kept, none new; then a run
    without a previous output removes the id changes an earlier run left at its path."""
    import shutil

    out = tmp_path / "matched.parquet"
    o = MatchOutput(out)
    for name in ("matched", "report", "model", "pairs", "id_changes"):
        src = getattr(MatchOutput(history["out2"]), name)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, getattr(o, name))
    match([history["out2"].parent.parent / "run2.parquet"], engine="duckdb", out=out, u_max_pairs=2e5)
    again = pd.read_parquet(o.id_changes)
    assert (match_ids(out).sort_index() == history["ids2"].sort_index()).mean() > 0.99
    assert (again["change"] == "kept").mean() > 0.98 and set(again["change"]) <= {"kept", "merged", "split", "new"}
    out.unlink()
    match([history["out2"].parent.parent / "run2.parquet"], engine="duckdb", out=out, u_max_pairs=2e5)
    assert not o.id_changes.exists() and read_json_file(o.report)["id_changes"] is None
