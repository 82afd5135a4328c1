"""Neptune bulk-load export by Spark: the parts layout, headers, types, RFC 4180 quoting, ids equal to the
record-by-record reference (GraphBuilder), bad input."""

from __future__ import annotations

import csv
import re

import pandas as pd
import pytest

from c360.errors import InputError
from c360.graph.export import address_id, build_graph, export_graph
from c360.graph.neptune_parts import graph_files, read_graph
from c360.graph.sample_data import park_events
from c360.graph.schema import EDGE_PROPS, VERTEX_PROPS
from c360.io import FORMULA_STARTS
from tests.conftest import run_cli
from tests.graph.conftest import sample_inputs

PART = re.compile(r"(vertex|edge)-([A-Za-z]+)-(\d{5})\.csv\Z")


@pytest.fixture(scope="module")
def spark_csv(graph_export):
    """The folder of the Spark export of the full sample graph."""
    from pathlib import Path

    return Path(graph_export.dir)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _by_id(elements) -> dict:
    return {e.id: (e.label, e.frm, e.to, e.props) for e in elements}


def _reference(builder) -> tuple[dict, dict]:
    return _by_id(builder.vertices.values()), _by_id(builder.edges.values())


def test_parts_per_label_in_one_folder_each_with_its_header(spark_csv, graph_export):
    names = sorted(p.name for p in spark_csv.iterdir())
    assert names == sorted(graph_export.files) and all(PART.match(n) for n in names)  # nothing else left there
    seen = {"vertices": {}, "edges": {}}
    for name in names:
        kind, label, _ = PART.match(name).groups()
        rows = _rows(spark_csv / name)
        props = (EDGE_PROPS if kind == "edge" else VERTEX_PROPS)[label]
        system = ["~id", "~from", "~to", "~label"] if kind == "edge" else ["~id", "~label"]
        assert rows[0][:len(system)] == system
        assert [h.partition(":")[0] for h in rows[0][len(system):]] == sorted(props)
        assert all(h.endswith("(single)") != (kind == "edge") for h in rows[0][len(system):])   # vertices: single
        assert all(":" in h for h in rows[0][len(system):])
        assert {r[len(system) - 1] for r in rows[1:]} == {label}
        by_kind = seen["edges" if kind == "edge" else "vertices"]
        by_kind[label] = by_kind.get(label, 0) + len(rows) - 1
    assert seen == graph_export.counts
    files = graph_files(spark_csv)
    assert [f.name for f in files.vertices] == [n for n in names if n.startswith("vertex-")]
    assert _rows(spark_csv / "edge-recommended-00000.csv")[0][4:] == ["model:String", "rank:Int", "score:Double"]


def test_spark_export_equals_the_record_by_record_reference(sample_dir, spark_csv):
    vertices, edges = read_graph(spark_csv)
    ref_v, ref_e = _reference(build_graph(**sample_inputs(sample_dir)))
    assert _by_id(vertices) == ref_v and len(vertices) == len(ref_v)
    assert _by_id(edges) == ref_e and len(edges) == len(ref_e)


def test_local_export_writes_the_spark_exports_files(sample_dir, spark_csv, graph_export, tmp_path):
    """engine="local" (no Spark): the same part names, headers, counts and elements as the Spark export."""
    local = export_graph(tmp_path / "local", engine="local", **sample_inputs(sample_dir))
    assert sorted(local.files) == sorted(graph_export.files) and local.counts == graph_export.counts
    for name in local.files:
        assert _rows(tmp_path / "local" / name)[0] == _rows(spark_csv / name)[0], name
    assert [_by_id(x) for x in read_graph(tmp_path / "local")] == [_by_id(x) for x in read_graph(spark_csv)]
    with pytest.raises(InputError, match="--engine: 'pandas'"):
        export_graph(tmp_path / "x", engine="pandas", sources=sample_dir / "sources")


@pytest.mark.slow
def test_without_trips_or_with_a_park_column_spark_equals_the_reference(sample_dir, spark, tmp_path):
    """No trips table: visited edges without trips and last_visit (a label property no contribution has); a trips
    DataFrame whose PARK names a row's park (one trip in two parks counts in each)."""
    events = park_events()
    with_park = events.assign(PARK=["elsewhere" if i == "epcot:11" else None for i in events["ITEM_ID"]])
    for name, trips in (("none", None), ("park", with_park)):
        inputs = {**sample_inputs(sample_dir), "trips": trips}
        export_graph(tmp_path / name, spark=spark, **inputs)
        vertices, edges = read_graph(tmp_path / name)
        assert (_by_id(vertices), _by_id(edges)) == _reference(build_graph(**inputs)), name
        priya = next(v for v in vertices if v.id == "visitor:acct-0000201").props
        assert priya.get("park_trips") == (None if trips is None else "elsewhere=1;epcot=1"), name


@pytest.mark.slow
def test_raw_graph_in_several_parts_equals_the_reference(sample_dir, spark, tmp_path):
    """From the sources alone (no SameAs), with no adaptive coalescing: labels spread over several part files."""
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        written = export_graph(tmp_path / "raw", spark=spark, sources=sample_dir / "sources")
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", "true")
    assert len([f for f in written.files if f.startswith("vertex-customer-")]) > 1
    vertices, edges = read_graph(tmp_path / "raw")
    ref = build_graph(sources=sample_dir / "sources")
    assert (_by_id(vertices), _by_id(edges)) == _reference(ref)
    assert {v.label for v in vertices} == {"customer", "policy", "vehicle", "address"}
    assert not [e for e in edges if e.label == "SameAs"]
    assert next(v for v in vertices if v.id == "5001-property").props["first_name"] == "Jim"


def test_quoting_of_commas_and_quotes_round_trips(spark_csv):
    raw = (spark_csv / "vertex-customer-00000.csv").read_bytes().decode("utf-8")
    assert '"Lopez, ""Best"" Bakery"' in raw           # comma + quotes: quoted, quotes doubled
    assert "\"O'Neil, Jr.\"" in raw
    assert '"The ""Incredicoaster"""' in (spark_csv / "vertex-attraction-00000.csv").read_text(encoding="utf-8")
    assert raw.count("\r\n") == raw.count("\n")        # CRLF record separators
    vertices, _ = read_graph(spark_csv)
    by_id = {v.id: v for v in vertices}
    assert by_id["1003-auto"].props["last_name"] == "O'Neil, Jr."
    assert by_id["1002-auto"].props["company"] == 'Lopez, "Best" Bakery'
    assert by_id["caliAdv:2"].props["name"] == 'The "Incredicoaster"'


def test_hostile_values_exact_for_loaders_spreadsheet_safe_on_request_and_round_trip(spark, tmp_path):
    names = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1:A9)", "'=already", "O'Neil",
             "two\nlines", "cr\rhere", "a,b", 'q"uote', "ü 日本"]
    items = pd.DataFrame({"ITEM_ID": [f"p:{i}" for i in range(len(names))], "NAME": names, "PARK": "p",
                          "THEME": "t"})
    for values in ("exact", "spreadsheet"):
        export_graph(tmp_path / values, spark=spark, items=items, values=values)
        rows = _rows(tmp_path / values / "vertex-attraction-00000.csv")
        name_col = rows[0].index("name:String(single)")
        cells = sorted(r[name_col] for r in rows[1:])
        if values == "exact":   # the export Neptune's loader reads: the values themselves
            assert cells == sorted(names)
        else:                   # for people: no cell starts a formula
            assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
        vertices, _ = read_graph(tmp_path / values)
        assert sorted(v.props["name"] for v in vertices) == sorted(names)


def test_types_and_ids(spark_csv):
    vertices, edges = read_graph(spark_csv)
    by_id = {v.id: v for v in vertices}
    assert by_id["vehicle:2T1BURHE0JC074321"].props["year"] == 2019
    assert by_id["policy:5003-property"].props["insured_value"] == 185000.5
    assert by_id[address_id("99 Pier Rd", "Boston", "MA", "02110")].props["zip"] == "02110"
    assert by_id["100"].label == "match" and by_id["100"].props["records"] == 2
    assert by_id["visitor:u1"].label == "visitor"
    # a park account: the visitor of its user id, with the account's properties and its trips per park
    assert by_id["visitor:acct-0000102"].props == {
        "name": "Maria Lopez", "user_id": "acct-0000102", "first_name": "Maria", "last_name": "Lopez",
        "date_of_birth": "1982-11-23", "home_phone": "555-0102", "email": "mlopez@example.net", "zip": "73301",
        "park_trips": "caliAdv=1"}
    assert "acct-0000102" not in by_id and by_id["101"].props == {"name": "Maria Lopez", "records": 2, "accounts": 2}
    assert by_id["105"].props == {"name": "Priya Natarajan", "records": 0, "accounts": 1}
    same_as = {(e.frm, e.to) for e in edges if e.label == "SameAs"}
    assert ("visitor:acct-0000101", "101") in same_as and ("visitor:acct-0000201", "105") in same_as
    labels = {e.label for e in edges}
    assert labels == {"SameAs", "covers", "locatedAt", "visited", "recommended"}
    visited = {(e.frm, e.to): e.props["photos"] for e in edges if e.label == "visited"}
    assert visited[("visitor:u1", "caliAdv:1")] == 3 and visited[("visitor:u1", "caliAdv:2")] == 4
    trips = {(e.frm, e.to): e.props for e in edges if e.label == "visited" and e.frm == "visitor:acct-0000101"}
    assert trips[("visitor:acct-0000101", "caliAdv:12")] == {"photos": 3, "trips": 2, "last_visit": 1723284000}
    rec = next(e for e in edges if e.label == "recommended" and e.frm == "visitor:u2" and e.to == "caliAdv:2")
    assert rec.props == {"score": 0.25, "rank": 2, "model": "als"}
    # Maria's auto and property records share one address vertex
    maria = {e.to for e in edges if e.label == "locatedAt" and e.frm in ("1002-auto", "5002-property")}
    assert len(maria) == 1
    assert address_id(" 7  Oak Ave", "AUSTIN", "tx", "73301") == address_id("7 Oak Ave", "Austin", "TX", "73301")


def test_missing_column_names_file_and_column(sample_dir, spark, tmp_path):
    bad = pd.read_parquet(sample_dir / "matched.parquet").drop(columns=["match_id"])
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"bad\.parquet.*match_id"):
        export_graph(tmp_path / "out", spark=spark, matched=tmp_path / "bad.parquet")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="no input given"):
        export_graph(tmp_path / "out", spark=spark)


@pytest.mark.slow
def test_cli_export_keeps_previous_files_on_bad_input(sample_dir, tmp_path):
    """A good export (local engine), then a bad one with the Spark engine (the default): an error naming the column
    before a Spark session starts, and the folder as it was."""
    out = tmp_path / "g"
    run_cli("graph", "export", "--out", str(out), "--matched", str(sample_dir / "matched.parquet"),
            "--sources", str(sample_dir / "sources"), "--interactions", str(sample_dir / "interactions.csv"),
            "--items", str(sample_dir / "items.csv"), "--trips", str(sample_dir / "trips.parquet"), "--engine", "local")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "vertex-customer-00000.csv" in before
    assert {"last_visit:Int", "trips:Int"} <= set(_rows(out / "edge-visited-00000.csv")[0])
    (tmp_path / "recs.csv").write_text("USER_ID,ITEM_ID,RANK\nu1,caliAdv:1,1\n")
    proc = run_cli("graph", "export", "--out", str(out), "--matched", str(sample_dir / "matched.parquet"),
                   "--recs", str(tmp_path / "recs.csv"), check=False)
    assert proc.returncode == 2
    assert "c360 graph: error:" in proc.stderr and "SCORE" in proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_match_lists_the_previous_ids_merged_into_it(sample_dir, spark_csv, tmp_path):
    """The id changes beside the matched table (graph.sample_data.id_changes_table): `merged_from` on the survivors,
    `split_from` on the id a split created (103 split, its other part the new 104), in both exports (the Spark
    export's elements equal the reference: test above), absent elsewhere."""
    from c360.graph.sample_data import matched_table

    b = build_graph(**sample_inputs(sample_dir))
    assert b.vertices["102"].props["merged_from"] == "7;12" and b.vertices["100"].props["merged_from"] == "9"
    assert "merged_from" not in b.vertices["101"].props and "merged_from" not in b.vertices["103"].props
    assert b.vertices["104"].props["split_from"] == "103"
    assert [v.id for v in b.vertices.values() if "split_from" in v.props] == ["104"]   # not the split id itself
    header = _rows(spark_csv / "vertex-match-00000.csv")[0]
    assert {"merged_from:String(single)", "split_from:String(single)"} <= set(header)
    by_id = {v.id: v for v in read_graph(spark_csv)[0]}
    assert by_id["102"].props["merged_from"] == "7;12" and by_id["104"].props["split_from"] == "103"
    alone = build_graph(matched=matched_table())   # no file beside it: nothing merged or split
    assert not [v for v in alone.vertices.values() if {"merged_from", "split_from"} & set(v.props)]


def test_split_from_names_every_id_a_new_id_took_records_from(spark, tmp_path):
    """A new id holding parts of a split id and of a merged one lists both; a kept id that took a split's part
    lists nothing (the split did not create it); the Spark export says the same as the reference."""
    from c360.graph.sample_data import matched_table, write_id_changes
    from c360.layout import MatchOutput

    matched = tmp_path / "matched.parquet"
    matched_table().to_parquet(matched, index=False)
    rows = [(100, "kept", [], 2, 2), (101, "kept", [], 4, 4), (102, "kept", [], 1, 1),
            (103, "split", [104, 105], 4, 2), (104, "new", [], 0, 2), (105, "kept", [], 1, 2),
            (7, "merged", [102], 1, 0), (12, "merged", [102, 104], 3, 0)]
    write_id_changes(pd.DataFrame(rows, columns=["match_id", "change", "into", "records_before", "records_after"]),
                     MatchOutput(matched).id_changes)
    ref = build_graph(matched=matched)
    assert ref.vertices["104"].props["split_from"] == "12;103" and ref.vertices["102"].props["merged_from"] == "7;12"
    assert [v.id for v in ref.vertices.values() if "split_from" in v.props] == ["104"]
    export_graph(tmp_path / "graph", spark=spark, matched=matched)
    vertices, edges = read_graph(tmp_path / "graph")
    assert (_by_id(vertices), _by_id(edges)) == _reference(ref)
