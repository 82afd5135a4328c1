"""The embedded store's file: JSON only (never unpickled), every property type kept, old pickles refused clearly."""

from __future__ import annotations

import math
import pickle

import networkx as nx
import numpy as np
import orjson
import pytest

from c360.errors import InputError
from c360.graph import networkx_store
from c360.graph.loader import load_graph_files
from c360.graph.neptune_csv import Element
from c360.graph.networkx_store import NetworkxStore, load_graph, save
from c360.graph.store import GraphUnavailable, open_store
from c360.layout import EMBEDDED_GRAPH_FILE, RunLayout
from tests.graph.test_load import EXPECTED

PROPS = {"s": "Rossi, Jr. \"O'Neil\"\n\u00e9\u4e2d\U0001f600", "empty": "", "i": 0, "neg": -7, "i64": 2**63 - 1,
         "u64": 2**64 - 1, "f": 1.5, "whole": 2.0, "negzero": -0.0, "tiny": 1e-300, "big": 1.7976931348623157e308,
         "t": True, "false": False, "none": None}


class Exploit:
    """Unpickling this opens (creates) the marker file: what a hostile graph file would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def sample_graph(extra: dict | None = None) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    vertices = [Element("a", "customer", {**PROPS, **(extra or {})}), Element("b", "policy", {"n": 1}),
                Element("c", "visitor", {})]
    edges = [Element("e1", "covers", {**PROPS, **(extra or {})}, frm="a", to="b"),
             Element("e2", "covers", {}, frm="a", to="b"),  # parallel edge, another key
             Element("e1", "SameAs", {"n": 2}, frm="b", to="a"),  # same key, other endpoints
             Element("loop", "visited", {"photos": 3}, frm="c", to="c")]
    networkx_store.upsert(g, vertices, edges)
    return g


def assert_same_values(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        assert type(x) is type(y), (k, x, y)
        if isinstance(x, float) and math.isnan(x):
            assert math.isnan(y)
        else:
            assert x == y and (not isinstance(x, float) or math.copysign(1, x) == math.copysign(1, y)), (k, x, y)


@pytest.mark.parametrize("extra", [None, {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")}],
                         ids=["finite", "nan-inf"])
def test_round_trip_keeps_structure_and_every_property_type(tmp_path, extra):
    g = sample_graph(extra)
    path = save(g, tmp_path / EMBEDDED_GRAPH_FILE)
    back = load_graph(path)
    assert list(back.nodes) == list(g.nodes)
    assert list(back.edges(keys=True)) == list(g.edges(keys=True))
    for v in g.nodes:
        assert_same_values(g.nodes[v], back.nodes[v])
    for u, v, k in g.edges(keys=True):
        assert_same_values(g.edges[u, v, k], back.edges[u, v, k])
    assert back.nodes["a"]["label"] == "customer" and back.edges["b", "a", "e1"]["label"] == "SameAs"
    # the direct build equals what networkx's public API builds from the same data (adjacency, pred, order)
    ref = nx.MultiDiGraph()
    ref.add_nodes_from(back.nodes(data=True))
    ref.add_edges_from(back.edges(keys=True, data=True))
    assert nx.utils.graphs_equal(back, ref) and back._pred == ref._pred
    assert list(back.in_edges("a", keys=True)) == list(ref.in_edges("a", keys=True))
    for u, v, k in back.edges(keys=True):  # one attribute dict per edge, seen from both ends
        assert back._succ[u][v][k] is back._pred[v][u][k]
    back.add_edge("c", "a", key="new", label="x")  # the rebuilt graph is a normal, writable MultiDiGraph
    assert back.has_edge("c", "a", key="new") and back.in_degree("a") == 2


def test_file_is_plain_json_of_the_documented_layout(tmp_path):
    path = save(sample_graph(), tmp_path / "g.json")
    data = orjson.loads(path.read_bytes())
    assert data["format"] == "c360-graph" and data["version"] == 1
    assert ["b", "policy", {"n": 1}] in data["vertices"]
    assert ["loop", "c", "c", "visited", {"photos": 3}] in data["edges"]


def test_hostile_pickle_is_never_unpickled(graph_csv, tmp_path):
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(Exploit(control)))
    assert control.exists()  # the payload works: unpickling it would run code

    marker = tmp_path / "pwned"
    run = RunLayout(tmp_path / "run")
    run.embedded_graph.parent.mkdir(parents=True)
    run.embedded_graph.write_bytes(pickle.dumps(Exploit(marker)))
    for open_it in (lambda: NetworkxStore.open(run.embedded_graph),
                    lambda: open_store(f"networkx:{run.embedded_graph}"),
                    lambda: open_store("networkx", run.root),  # how the API opens a published run's graph
                    lambda: load_graph_files(graph_csv, f"networkx:{run.embedded_graph}")):
        with pytest.raises(InputError) as exc:
            open_it()
        assert str(run.embedded_graph) in str(exc.value) and "c360 graph load" in str(exc.value)
        assert not marker.exists()


def test_old_pickled_graph_gives_clear_error_and_drop_rebuilds(graph_csv, tmp_path):
    path = tmp_path / "graph.nx"
    path.write_bytes(pickle.dumps(sample_graph(), protocol=pickle.HIGHEST_PROTOCOL))  # what older c360 wrote
    with pytest.raises(InputError, match=r"graph\.nx: not a JSON graph file .*pickle.*c360 graph load --drop"):
        NetworkxStore.open(path)
    with pytest.raises(InputError, match="c360 graph load"):
        load_graph_files(graph_csv, f"networkx:{path}")  # upsert into it: refused, file untouched
    assert pickle.loads(path.read_bytes()).number_of_nodes() == 3
    assert load_graph_files(graph_csv, f"networkx:{path}", drop=True) == EXPECTED  # the advised fix
    assert NetworkxStore.open(path).counts() == EXPECTED


@pytest.mark.parametrize("content", [
    b"", b"[]", b'{"format": "c360-graph", "version": 2, "vertices": [], "edges": []}',
    b'{"format": "other", "version": 1, "vertices": [], "edges": []}',
    b'{"format": "c360-graph", "version": 1, "vertices": {}, "edges": []}',
    b'{"format": "c360-graph", "version": 1, "vertices": [["a", "x"]], "edges": []}',
    b'{"format": "c360-graph", "version": 1, "vertices": [["a", "x", {"p": [1]}]], "edges": []}',
    b'{"format": "c360-graph", "version": 1, "vertices": [["a", "x", {"label": "y"}]], "edges": []}',
    b'{"format": "c360-graph", "version": 1, "vertices": [[1, "x", {}]], "edges": []}',
    b'{"format": "c360-graph", "version": 1, "vertices": [["a", "x", {}], ["a", "x", {}]], "edges": []}',
    b'{"format": "c360-graph", "version": 1, "vertices": [["a", "x", {}]], "edges": [["e", "a", "b", "l", {}]]}',
    b'{"format": "c360-graph", "version": 1, "vertices": [["a", "x", {}]], "edges": [["e", ["a"], "a", "l", {}]]}',
    b'{"format": "c360-graph", "version": 1, "vertices": [["a", "x", {}]], '
    b'"edges": [["e", "a", "a", "l", {}], ["e", "a", "a", "l", {}]]}',
    b"\xff\xfe not utf-8", b"[" * 100_000,
], ids=lambda c: c[:40].decode("latin-1"))
def test_malformed_files_are_input_errors_naming_the_file(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"bad\.json: .*c360 graph load"):
        load_graph(path)


def test_missing_file_is_still_unavailable(tmp_path):
    with pytest.raises(GraphUnavailable, match="not found"):
        NetworkxStore.open(tmp_path / "nothing.json")


@pytest.mark.parametrize("value", [np.int64(3), np.float64(1.5), [1], {"a": 1}, 2**64, b"x"],
                         ids=["np.int64", "np.float64", "list", "dict", "int>64bit", "bytes"])
def test_values_json_cannot_keep_are_refused_and_nothing_is_written(tmp_path, value):
    path = save(sample_graph(), tmp_path / "g.json")
    before = path.read_bytes()
    g = sample_graph()
    g.nodes["b"]["bad"] = value
    with pytest.raises(ValueError, match="vertex b: property 'bad'"):
        save(g, path)
    assert path.read_bytes() == before


def test_writes_save_the_file(tmp_path):
    path = tmp_path / "g.json"
    store = NetworkxStore(None, path)
    store.upsert([Element("a", "visitor", {"user_id": "u"})], [])
    assert load_graph(path).nodes["a"] == {"label": "visitor", "user_id": "u"}
    store.drop_all()
    assert load_graph(path).number_of_nodes() == 0
