"""Loading into the embedded store and a real Gremlin Server: idempotent, --drop, down server."""

from __future__ import annotations

import time

import pytest

from graph.gremlin_store import GremlinStore
from graph.loader import load_graph_files
from graph.networkx_store import NetworkxStore
from graph.store import GraphUnavailable, open_store
from tests.conftest import free_port, run_cli

EXPECTED = {"vertices": {"address": 6, "attraction": 3, "customer": 7, "match": 5, "policy": 7, "vehicle": 6,
                         "visitor": 3},
            "edges": {"SameAs": 7, "covers": 13, "locatedAt": 20, "recommended": 3, "visited": 4}}


def test_networkx_load_is_idempotent_and_persisted(graph_csv, tmp_path):
    path = tmp_path / "graph.nx"
    assert load_graph_files(graph_csv, f"networkx:{path}") == EXPECTED
    assert load_graph_files(graph_csv, f"networkx:{path}") == EXPECTED
    assert NetworkxStore.open(path).counts() == EXPECTED
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
    # --drop removes what the files no longer hold
    only_vertices = tmp_path / "v"
    only_vertices.mkdir()
    (only_vertices / "master_vertex.csv").write_bytes((graph_csv / "master_vertex.csv").read_bytes())
    (only_vertices / "master_edge.csv").write_text("~id,~from,~to,~label\r\n")
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
    (tmp_path / "master_vertex.csv").write_text("id,label\r\n1,x\r\n")
    (tmp_path / "master_edge.csv").write_text("~id,~from,~to,~label\r\n")
    proc = run_cli("graph", "load", "--csv", str(tmp_path), "--target", f"networkx:{tmp_path / 'g.nx'}", check=False)
    assert proc.returncode == 2 and "master_vertex.csv" in proc.stderr and "~id" in proc.stderr
    assert not (tmp_path / "g.nx").exists()
