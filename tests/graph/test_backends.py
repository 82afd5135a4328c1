"""Store specs are parsed in one place, backends are found through the registry, answers are shaped by the base."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from c360.errors import InputError
from c360.graph import backends
from c360.graph.loader import load_graph_files
from c360.graph.neptune_parts import read_graph
from c360.graph.store import GraphStore, StoreSpec, open_store, parse_spec
from c360.layout import RunLayout


def test_interface_module_imports_no_backend():
    code = ("import sys, c360.graph.store as s; s.parse_spec('networkx:x'); s.parse_spec('gremlin://h:1'); "
            "loaded = [m for m in ('c360.graph.networkx_store', 'c360.graph.gremlin_store') if m in sys.modules]; "
            "assert not loaded, loaded")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("text,want", [
    ("networkx", StoreSpec("networkx", "networkx")),
    ("  networkx  ", StoreSpec("networkx", "networkx")),
    ("", StoreSpec("networkx", "networkx")),
    ("networkx:/data/g.nx", StoreSpec("networkx:/data/g.nx", "networkx", path=Path("/data/g.nx"))),
    ("gremlin://127.0.0.1:8182", StoreSpec("gremlin://127.0.0.1:8182", "gremlin", host="127.0.0.1", port=8182)),
    ("ws://Host:9/g", StoreSpec("ws://Host:9/g", "ws", host="host", port=9, url_path="/g")),
    ("wss://db.neptune.amazonaws.com:8182/", StoreSpec("wss://db.neptune.amazonaws.com:8182/", "wss",
                                                       host="db.neptune.amazonaws.com", port=8182)),
])
def test_parse_each_spec_kind(text, want):
    got = parse_spec(text)
    assert got == want
    assert got.is_url == (want.host is not None)
    assert parse_spec(got) is got


def test_url_and_resolve(tmp_path):
    assert parse_spec("wss://h:8182").url == "wss://h:8182"
    assert parse_spec("gremlin://h").url == "gremlin://h" and parse_spec("networkx").url is None
    embedded = parse_spec("networkx").resolve(tmp_path)
    assert embedded.path == RunLayout(tmp_path).embedded_graph and str(embedded) == f"networkx:{embedded.path}"
    assert parse_spec("networkx:/x.nx").resolve(tmp_path).path == Path("/x.nx")
    with pytest.raises(InputError, match="'networkx' needs a current run directory"):
        parse_spec("networkx").resolve(None)


@pytest.mark.parametrize("text", ["bolt://x", "nosuch", "nosuch:/p", "networkx:", "gremlin://", "gremlin://h:port",
                                  "  ", "not a spec"])
def test_bad_spec_is_an_input_error_naming_it(text):
    with pytest.raises(InputError) as err:
        parse_spec(text, "--target")
    assert str(err.value).startswith(f"--target {text.strip()!r}:")


def test_wrong_form_for_a_backend_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="networkx://h"):
        open_store("networkx://h")
    with pytest.raises(InputError, match="gremlin:/p"):
        open_store("gremlin:/p")


class MemoryStore(GraphStore):
    """A test backend: elements in dicts, only the raw queries and the writes."""

    def __init__(self):
        self.v: dict[str, dict] = {}
        self.e: dict[str, dict] = {}

    def upsert(self, vertices, edges, **hints):
        for x in vertices:
            self.v.setdefault(x.id, {"id": x.id, "label": x.label}).update(x.props)
        for x in edges:
            self.e.setdefault(x.id, {"id": x.id, "label": x.label, "from": x.frm, "to": x.to}).update(x.props)

    def drop_all(self):
        self.v.clear()
        self.e.clear()

    def _drop_same_as(self, record_vertices):
        gone = {e["id"] for e in self.e.values() if e["label"] == "SameAs" and e["from"] in record_vertices}
        for eid in gone:
            del self.e[eid]

    def _ends(self, label, *, frm=None, to=None):
        return [e for e in self.e.values() if e["label"] == label and frm in (None, e["from"]) and to in (None, e["to"])]

    def _customer360_rows(self, match_id):
        if self.v.get(match_id, {}).get("label") != "match":
            return None

        def out(vid, label, vlabel):
            return [self.v[e["to"]] for e in self._ends(label, frm=vid) if self.v[e["to"]]["label"] == vlabel]

        customers = [{"c": self.v[s["from"]], "addresses": out(s["from"], "locatedAt", "address"),
                      "policies": [{"p": p, "addresses": out(p["id"], "locatedAt", "address"),
                                    "vehicles": out(p["id"], "covers", "vehicle")}
                                   for p in out(s["from"], "covers", "policy")]}
                     for s in self._ends("SameAs", to=match_id) if self.v[s["from"]]["label"] == "customer"]
        accounts = [{"v": self.v[s["from"]], "visits": self._edge_rows("visited", s["from"]),
                     "recs": self._edge_rows("recommended", s["from"])}
                    for s in self._ends("SameAs", to=match_id) if self.v[s["from"]]["label"] == "visitor"]
        return {"customers": customers, "accounts": accounts}

    def _edge_rows(self, label, vertex_id):
        return [({k: x for k, x in e.items() if k not in ("id", "label", "from", "to")}, self.v[e["to"]])
                for e in self._ends(label, frm=vertex_id)]

    def _search_rows(self, last_name_lc, first_name_lc, date_of_birth):
        return [{"c": c, "match_id": s["to"],
                 "records": sum(self.v[x["from"]]["label"] == "customer" for x in self._ends("SameAs", to=s["to"]))}
                for c in self.v.values() if c["label"] == "customer" and c.get("last_name_lc") == last_name_lc
                and first_name_lc in (None, c.get("first_name_lc")) and date_of_birth in (None, c.get("date_of_birth"))
                for s in self._ends("SameAs", frm=c["id"])]

    def _visitor_rows(self, vertex_id):
        if self.v.get(vertex_id, {}).get("label") != "visitor":
            return None

        return (self._edge_rows("visited", vertex_id), self._edge_rows("recommended", vertex_id),
                [e["to"] for e in self._ends("SameAs", frm=vertex_id)])

    def _neighbourhood_rows(self, vertex_id, depth):
        if vertex_id not in self.v:
            return [], []
        seen = {vertex_id}
        for _ in range(depth):
            seen |= {e[b] for e in self.e.values() for a, b in (("from", "to"), ("to", "from")) if e[a] in seen}
        return [self.v[x] for x in seen], [e for e in self.e.values() if e["from"] in seen and e["to"] in seen]

    def _vertex_ids(self, label):
        return [x for x, d in self.v.items() if d["label"] == label]

    def _label_counts(self):
        return Counter(d["label"] for d in self.v.values()), Counter(d["label"] for d in self.e.values())


@pytest.fixture
def memory_backend():
    backends.register("memory", MemoryStore, "memory")
    yield
    backends.unregister("memory")


def test_registered_backend_is_opened_by_its_scheme_and_shaped_by_the_base(memory_backend, graph_csv, tmp_path):
    store = open_store("memory")
    assert isinstance(store, MemoryStore)
    vertices, edges = read_graph(graph_csv)
    store.upsert(vertices, edges)
    c = store.customer360(100)  # the base turns the id into a string and shapes the rows
    assert c["match_id"] == "100" and [x["id"] for x in c["customers"]] == ["1001-auto", "5001-property"]
    assert set(c["customers"][0]) == {"id", "source", "first_name", "last_name", "date_of_birth", "ssn",
                                      "home_phone", "company", "addresses", "policies"}
    assert c["accounts"] == c["visits"] == c["recommendations"] == []  # James has no park account
    assert c["customers"][0]["policies"][0]["vehicles"] == [{"id": "vehicle:1HGCM82633A004352",
                                                             "vin": "1HGCM82633A004352", "make": "Honda",
                                                             "model": "Accord", "year": 2018}]
    assert store.customer360("999") is None
    nx_path = tmp_path / "g.nx"
    load_graph_files(graph_csv, f"networkx:{nx_path}")
    embedded = open_store(f"networkx:{nx_path}")
    for method, args in (("customer360", ("101",)), ("customer360", ("105",)), ("search", ("CARTER", "jim")),
                         ("search", ("lopez",)), ("visitor", ("u1",)), ("visitor", ("acct-0000102",)),
                         ("recommendations", ("101", 2)), ("neighbourhood", ("100", 2)), ("vertex_ids", ("policy",)),
                         ("counts", ())):
        assert getattr(store, method)(*args) == getattr(embedded, method)(*args), method
    with pytest.raises(InputError, match="depth"):
        store.neighbourhood("100", 9)
    with pytest.raises(InputError, match="last_name"):
        store.search("")
    assert "memory" in backends.usage()


def test_loader_writes_through_a_registered_backend(graph_csv):
    written = []

    class Recording(MemoryStore):
        def upsert(self, vertices, edges, **hints):
            written.append(hints)
            super().upsert(vertices, edges)

    backends.register("recording", Recording)
    try:
        counts = load_graph_files(graph_csv, "recording", batch_size=7, workers=2, progress=False)
    finally:
        backends.unregister("recording")
    assert counts["vertices"]["customer"] == 7
    # streamed: one call per chunk (a chunk's edges come from one file), each with the hints
    assert written and all(h == {"batch_size": 7, "workers": 2, "progress": False} for h in written)


def test_embedded_store_saves_on_write_and_drop_keeps_file_on_bad_edges(graph_csv, tmp_path):
    vertices, edges = read_graph(graph_csv)
    path = tmp_path / "g.nx"
    with open_store(f"networkx:{path}", create=True) as store:
        store.upsert(vertices[:3], [])
    assert open_store(f"networkx:{path}").counts()["vertices"] == dict(Counter(v.label for v in vertices[:3]))
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in graph_csv.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "edge-SameAs-00001.csv").write_text("~id,~from,~to,~label\r\nx,nowhere,100,SameAs\r\n")
    before = path.read_bytes()
    for drop in (True, False):
        with pytest.raises(InputError, match="edge-SameAs-00001.csv: edge x: vertex nowhere does not exist"):
            load_graph_files(bad, f"networkx:{path}", drop=drop)
        assert path.read_bytes() == before
    embedded = RunLayout(tmp_path / "run").embedded_graph
    counts = load_graph_files(graph_csv, "networkx", current_dir=tmp_path / "run")
    assert embedded.is_file() and open_store("networkx", tmp_path / "run").counts() == counts


def test_gremlin_server_cache_comes_from_settings(tmp_path, monkeypatch):
    from c360.graph import gremlin_server

    monkeypatch.setenv("C360_CACHE", str(tmp_path / "c"))
    assert gremlin_server.cache_dir() == tmp_path / "c"
    assert gremlin_server.ServerPaths(1).run_dir == tmp_path / "c" / "gremlin-run" / "1"
    assert gremlin_server.ServerPaths(1, tmp_path / "o").pid_file.parent == tmp_path / "o" / "gremlin-run" / "1"


@pytest.mark.gremlin
def test_gremlin_headers_come_from_settings(gremlin_url, monkeypatch):
    from c360.graph.gremlin_store import GremlinStore
    from c360.settings import build_settings

    monkeypatch.setenv("C360_GREMLIN_HEADERS", '{"X-Test": "env"}')
    with GremlinStore(gremlin_url) as store:
        assert store.headers["X-Test"] == "env" and store.ping()
    from tests.conftest import GREMLIN_PASSWORD, GREMLIN_USERNAME

    settings = build_settings({"gremlin_headers": {"X-Test": "given"}, "gremlin_username": GREMLIN_USERNAME,
                               "gremlin_password": GREMLIN_PASSWORD})
    with open_store(gremlin_url, settings=settings) as store:
        assert store.headers["X-Test"] == "given" and store.url.endswith("/gremlin") and store.ping()
    assert settings.gremlin_headers == {"X-Test": "given"}  # the driver's additions stay out of the settings
