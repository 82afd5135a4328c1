"""Loading into the embedded store and a real Gremlin Server: idempotent, --drop, down server."""

from __future__ import annotations

import time

import pytest

from c360.graph.gremlin_store import GremlinStore
from c360.graph.loader import load_graph_files
from c360.graph.networkx_store import NetworkxStore
from c360.graph.store import GraphUnavailable, open_store
from tests.conftest import free_port, run_cli

EXPECTED = {"vertices": {"address": 6, "attraction": 10, "customer": 7, "match": 6, "policy": 7, "vehicle": 6,
                         "visitor": 6},
            "edges": {"SameAs": 10, "covers": 13, "locatedAt": 20, "recommended": 11, "visited": 12}}


def _vertex_files_only(graph_csv, out):
    out.mkdir()
    for f in graph_csv.glob("vertex-*.csv"):
        (out / f.name).write_bytes(f.read_bytes())
    return out


def test_networkx_load_is_idempotent_and_persisted(graph_csv, tmp_path):
    path = tmp_path / "graph.json"
    assert load_graph_files(graph_csv, f"networkx:{path}") == EXPECTED
    assert load_graph_files(graph_csv, f"networkx:{path}") == EXPECTED
    store = NetworkxStore.open(path)
    assert store.counts() == EXPECTED
    # the match vertices' id history (graph.sample_data.id_changes_table), as the files spell it
    assert (store.g.nodes["102"]["merged_from"], store.g.nodes["104"]["split_from"]) == ("7;12", "103")
    assert load_graph_files(graph_csv, f"networkx:{path}", drop=True) == EXPECTED


@pytest.mark.gremlin
def test_gremlin_load_twice_same_counts_and_drop(graph_csv, gremlin_url, tmp_path):
    proc = run_cli("graph", "load", "--csv", str(graph_csv), "--target", gremlin_url, "--drop")
    assert '"customer": 7' in proc.stdout
    assert load_graph_files(graph_csv, gremlin_url, batch_size=7, progress=False) == EXPECTED
    assert load_graph_files(graph_csv, gremlin_url, batch_size=1, progress=False) == EXPECTED
    with GremlinStore(gremlin_url) as store:
        store.upsert_vertices([])  # an empty batch is harmless
        assert store.counts() == EXPECTED
        # loaded three times, the match vertices' id history holds one value each (single cardinality)
        assert store._g.V("102").values("merged_from").to_list() == ["7;12"]
        assert store._g.V("104").values("split_from").to_list() == ["103"]
    # --drop removes what the files no longer hold
    only_vertices = _vertex_files_only(graph_csv, tmp_path / "v")
    counts = load_graph_files(only_vertices, gremlin_url, drop=True, progress=False)
    assert counts == {"vertices": EXPECTED["vertices"], "edges": {}}
    assert load_graph_files(graph_csv, gremlin_url, drop=True, progress=False) == EXPECTED


@pytest.mark.gremlin
def test_lost_connection_is_retried(graph_csv, gremlin_url):
    load_graph_files(graph_csv, gremlin_url, drop=True, progress=False)
    with GremlinStore(gremlin_url, backoff_s=0.05) as store:
        store._conn.close()  # the connection drops under the store: the next call reconnects and answers
        assert store.counts() == EXPECTED


def test_down_server_gives_clear_error_fast(graph_csv):
    url = f"gremlin://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(GraphUnavailable, match="not reachable"):
        open_store(url)
    assert time.monotonic() - t0 < 10
    proc = run_cli("graph", "load", "--csv", str(graph_csv), "--target", url, check=False, timeout=60)
    assert proc.returncode == 2
    assert "c360 graph: error: Gremlin server" in proc.stderr and "not reachable" in proc.stderr


def test_missing_networkx_file_is_unavailable(tmp_path):
    with pytest.raises(GraphUnavailable, match="graph file not found"):
        open_store(f"networkx:{tmp_path / 'none.nx'}")


def test_bad_target_and_csv_are_input_errors(graph_csv, tmp_path):
    proc = run_cli("graph", "load", "--csv", str(graph_csv), "--target", "bolt://x", check=False)
    assert proc.returncode == 2 and "--target" in proc.stderr
    (tmp_path / "vertex-customer-00000.csv").write_text("id,label\r\n1,x\r\n")
    (tmp_path / "edge-SameAs-00000.csv").write_text("~id,~from,~to,~label\r\n")
    proc = run_cli("graph", "load", "--csv", str(tmp_path), "--target", f"networkx:{tmp_path / 'g.nx'}", check=False)
    assert proc.returncode == 2 and "vertex-customer-00000.csv" in proc.stderr and "~id" in proc.stderr
    assert not (tmp_path / "g.nx").exists()


def test_prepared_batch_is_the_same_request_as_plain_rows():
    """Encoding a batch ahead sends exactly the bytes the driver writes for inject(rows).unfold().mergeE(...)."""
    import uuid

    from gremlin_python.driver.request import RequestMessage
    from gremlin_python.structure.graph import Graph

    from c360.graph.gremlin_store import _serializer
    from c360.graph.neptune_csv import Element

    store = GremlinStore.__new__(GremlinStore)  # no connection needed to build and encode traversals
    g = Graph().traversal()
    batch = [Element("visited:u1->a:1", "visited", {"photos": 2, "note": "O'Neil, \"Jr.\""}, "visitor:u1", "a:1"),
             Element("SameAs:1-auto->0", "SameAs", {}, "1-auto", "0")]
    rid = uuid.uuid4()

    def wire(rows):
        t = store._merge(g, rows, edges=True)
        return _serializer().serialize_message(rid, RequestMessage("traversal", "bytecode",
                                                                   {"gremlin": t.bytecode, "aliases": {"g": "g"}}))

    assert wire(store.prepare(batch, edges=True)) == wire(GremlinStore._edge_rows(batch))


@pytest.mark.gremlin
def test_edges_encoded_ahead_land_exactly_once(graph_csv, gremlin_url):
    """Many small edge batches encoded ahead of the one in flight: exact counts and endpoints, load after load."""
    from c360.graph.neptune_parts import read_graph

    _, edges = read_graph(graph_csv)
    want = sorted((e.id, e.label, e.frm, e.to) for e in edges)
    for drop in (True, False, True, False):
        assert load_graph_files(graph_csv, gremlin_url, drop=drop, batch_size=2, workers=3, progress=False) == EXPECTED
        with GremlinStore(gremlin_url) as store:
            from gremlin_python.process.graph_traversal import __

            got = store._g.E().project("id", "label", "from", "to").by(__.id_()).by(__.label()) \
                .by(__.out_v().id_()).by(__.in_v().id_()).to_list()
        assert sorted((r["id"], r["label"], r["from"], r["to"]) for r in got) == want


@pytest.mark.gremlin
def test_edge_upsert_matches_on_id_and_updates_properties(graph_csv, gremlin_url):
    from c360.graph.neptune_csv import Element
    from c360.graph.neptune_parts import read_graph

    load_graph_files(graph_csv, gremlin_url, drop=True, progress=False)
    _, edges = read_graph(graph_csv)
    rec = next(e for e in edges if e.label == "recommended")
    changed = Element(rec.id, rec.label, {**rec.props, "rank": 99}, rec.frm, rec.to)
    with GremlinStore(gremlin_url) as store:
        assert store.upsert_edges([changed]) == 1
        assert store._g.E(rec.id).values("rank").to_list() == [99]
        assert store._g.E(rec.id).out_v().id_().to_list() == [rec.frm]
        assert store.counts() == EXPECTED
    load_graph_files(graph_csv, gremlin_url, progress=False)  # the files win again
    with GremlinStore(gremlin_url) as store:
        assert store._g.E(rec.id).values("rank").to_list() == [rec.props["rank"]]


def test_fast_row_encoder_writes_the_drivers_bytes():
    from gremlin_python.process.traversal import Direction, T
    from gremlin_python.statics import long
    from gremlin_python.structure.io.graphbinaryV1 import GraphBinaryWriter

    from c360.graph.gremlin_store import encode_rows

    rows = [{"k": {T.id: "visited:u1->a:1"}, "c": {T.label: "visited", Direction.OUT: "u1", Direction.IN: "a:1",
                                                  "photos": 2}, "p": {"photos": 2}},
            {"k": {T.id: "ü-ß 日本", T.label: "customer"},
             "p": {"n": long(-(2 ** 40)), "i": 7, "f": 0.25, "nan": float("nan"), "b": True, "none": None, "e": "",
                   "l": ["x", 1, [2.5, False]], "q": 'O\'Neil, "Jr."'}},
            {"k": {T.id: 1}, "p": {}}]
    assert encode_rows(rows) == bytes(GraphBinaryWriter().to_dict(rows))
    assert encode_rows([]) == bytes(GraphBinaryWriter().to_dict([]))


def _split_parts(graph_csv, out, rows_per_part: int = 3):
    """The export with every label's part split into parts of a few rows, each with its header (as Spark writes
    a label spread over several partitions)."""
    import csv

    out.mkdir()
    for f in sorted(graph_csv.glob("*.csv")):
        kind, label, _ = f.stem.split("-")
        with open(f, newline="", encoding="utf-8") as fh:
            header, *rows = list(csv.reader(fh))
        for i in range(0, len(rows), rows_per_part):
            with open(out / f"{kind}-{label}-{i // rows_per_part:05d}.csv", "w", newline="", encoding="utf-8") as fh:
                csv.writer(fh, dialect="excel").writerows([header, *rows[i:i + rows_per_part]])
    return out


def test_parts_stream_in_small_chunks_into_networkx(graph_csv, tmp_path):
    parts = _split_parts(graph_csv, tmp_path / "parts")
    assert len(list(parts.glob("vertex-customer-*.csv"))) == 3
    path = tmp_path / "g.json"
    for drop in (True, False, False):  # chunks of 5 elements: vertices and edges cross chunk and file boundaries
        assert load_graph_files(parts, f"networkx:{path}", drop=drop, chunk_size=5, progress=False) == EXPECTED
    assert NetworkxStore.open(path).counts() == EXPECTED


@pytest.mark.gremlin
def test_gremlin_load_of_parts_is_idempotent(graph_csv, gremlin_url, tmp_path):
    """Loading the same parts twice (and a third time, with --drop) into the real Gremlin Server: same counts, same
    elements."""
    from gremlin_python.process.graph_traversal import __

    from c360.graph.neptune_parts import read_graph

    parts = _split_parts(graph_csv, tmp_path / "parts")
    want_v, want_e = read_graph(graph_csv)

    def stored():
        with GremlinStore(gremlin_url) as store:
            vs = store._g.V().project("id", "label").by(__.id_()).by(__.label()).to_list()
            es = store._g.E().project("id", "from", "to").by(__.id_()).by(__.out_v().id_()).by(__.in_v().id_()) \
                .to_list()
        return sorted((r["id"], r["label"]) for r in vs), sorted((r["id"], r["from"], r["to"]) for r in es)

    for drop in (True, False, True):
        assert load_graph_files(parts, gremlin_url, drop=drop, batch_size=2, workers=2, chunk_size=7,
                                progress=False) == EXPECTED
        assert stored() == (sorted((v.id, v.label) for v in want_v), sorted((e.id, e.frm, e.to) for e in want_e))


def test_endpoint_check_before_a_drop_names_file_edge_and_vertex(graph_csv, tmp_path):
    """What a load with --drop into a server store checks first (from hashed vertex ids, the files streamed)."""
    from c360.errors import InputError
    from c360.graph.loader import VertexIds, check_endpoints
    from c360.graph.neptune_parts import graph_files

    parts = _split_parts(graph_csv, tmp_path / "parts")
    check_endpoints(graph_files(parts))  # the export itself is whole
    ids = VertexIds(graph_files(parts).vertices)
    assert "100" in ids and "visitor:u1" in ids and "nowhere" not in ids
    (parts / "edge-SameAs-00009.csv").write_text("~id,~from,~to,~label\r\nx,1001-auto,nowhere,SameAs\r\n")
    with pytest.raises(InputError, match="edge-SameAs-00009.csv: edge x: vertex nowhere does not exist"):
        check_endpoints(graph_files(parts))
