"""Neptune bulk-load CSV export: headers, types, RFC 4180 quoting, ids, bad input."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from c360.errors import InputError
from c360.graph.export import address_id, build_graph, export_graph
from c360.graph.neptune_csv import read_graph
from tests.conftest import run_cli


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_headers_are_typed_neptune_headers(graph_csv):
    vh = _rows(graph_csv / "master_vertex.csv")[0]
    eh = _rows(graph_csv / "master_edge.csv")[0]
    assert vh[:2] == ["~id", "~label"]
    assert eh[:4] == ["~id", "~from", "~to", "~label"]
    for col in ("name:String", "first_name:String", "date_of_birth:String", "zip:String", "year:Int",
                "insured_value:Double", "year_built:Int"):
        assert col in vh
    assert set(eh[4:]) == {"photos:Int", "score:Double", "rank:Int", "model:String"}
    assert all(":" in h for h in vh[2:] + eh[4:])


def test_quoting_of_commas_and_quotes_round_trips(graph_csv):
    raw = (graph_csv / "master_vertex.csv").read_bytes().decode("utf-8")
    assert '"Lopez, ""Best"" Bakery"' in raw           # comma + quotes: quoted, quotes doubled
    assert "\"O'Neil, Jr.\"" in raw
    assert '"The ""Incredicoaster"""' in raw
    assert raw.count("\r\n") == raw.count("\n")        # CRLF record separators
    vertices, _ = read_graph(graph_csv)
    by_id = {v.id: v for v in vertices}
    assert by_id["1003-auto"].props["last_name"] == "O'Neil, Jr."
    assert by_id["1002-auto"].props["company"] == 'Lopez, "Best" Bakery'
    assert by_id["caliAdv:2"].props["name"] == 'The "Incredicoaster"'


def test_types_and_ids(graph_csv):
    vertices, edges = read_graph(graph_csv)
    by_id = {v.id: v for v in vertices}
    assert by_id["vehicle:2T1BURHE0JC074321"].props["year"] == 2019
    assert by_id["policy:5003-property"].props["insured_value"] == 185000.5
    assert by_id[address_id("99 Pier Rd", "Boston", "MA", "02110")].props["zip"] == "02110"
    assert by_id["100"].label == "match" and by_id["100"].props["records"] == 2
    assert by_id["visitor:u1"].label == "visitor"
    labels = {e.label for e in edges}
    assert labels == {"SameAs", "covers", "locatedAt", "visited", "recommended"}
    visited = {(e.frm, e.to): e.props["photos"] for e in edges if e.label == "visited"}
    assert visited[("visitor:u1", "caliAdv:1")] == 3 and visited[("visitor:u1", "caliAdv:2")] == 4
    rec = next(e for e in edges if e.label == "recommended" and e.frm == "visitor:u2" and e.to == "caliAdv:2")
    assert rec.props == {"score": 0.25, "rank": 2, "model": "als"}
    # Maria's auto and property records share one address vertex
    maria = {e.to for e in edges if e.label == "locatedAt" and e.frm in ("1002-auto", "5002-property")}
    assert len(maria) == 1
    assert address_id(" 7  Oak Ave", "AUSTIN", "tx", "73301") == address_id("7 Oak Ave", "Austin", "TX", "73301")


def test_raw_graph_from_sources_has_no_sameas(sample_dir):
    b = build_graph(sources=sample_dir / "sources")
    assert {v.label for v in b.vertices.values()} == {"customer", "policy", "vehicle", "address"}
    assert not [e for e in b.edges.values() if e.label == "SameAs"]
    assert b.vertices["5001-property"].props["first_name"] == "Jim"


def test_missing_column_names_file_and_column(sample_dir, tmp_path):
    bad = pd.read_parquet(sample_dir / "matched.parquet").drop(columns=["match_id"])
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"bad\.parquet.*match_id"):
        export_graph(tmp_path / "out", matched=tmp_path / "bad.parquet")
    assert not (tmp_path / "out" / "master_vertex.csv").exists()


def test_cli_export_keeps_previous_files_on_bad_input(sample_dir, tmp_path):
    out = tmp_path / "g"
    run_cli("graph", "export", "--out", str(out), "--matched", str(sample_dir / "matched.parquet"),
            "--sources", str(sample_dir / "sources"))
    before = (out / "master_vertex.csv").read_bytes()
    (tmp_path / "recs.csv").write_text("USER_ID,ITEM_ID,RANK\nu1,caliAdv:1,1\n")
    proc = run_cli("graph", "export", "--out", str(out), "--matched", str(sample_dir / "matched.parquet"),
                   "--recs", str(tmp_path / "recs.csv"), check=False)
    assert proc.returncode == 2
    assert "c360 graph: error:" in proc.stderr and "SCORE" in proc.stderr
    assert (out / "master_vertex.csv").read_bytes() == before
