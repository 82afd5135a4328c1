"""The embedded graph store: a networkx MultiDiGraph persisted as a JSON file (spec networkx[:PATH]).

The file holds data only, so opening it never runs code (a pickle would: the API reopens the file on every
publish, and whoever can write a run into the warehouse could otherwise run code in the API). Layout:

    {"format": "c360-graph", "version": 1,
     "vertices": [[id, label, {name: value, ...}], ...],
     "edges":    [[id, from_id, to_id, label, {name: value, ...}], ...]}

ids and labels are strings, an edge's id is its key in the MultiDiGraph; property values are str, int (64
bits), float (NaN and Infinity as the JavaScript literals stdlib json writes), bool or None. A file that is not
such JSON (e.g. a pickle written by an older c360) is an InputError that says to rebuild it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import math
import threading
from collections import Counter
from pathlib import Path

import networkx as nx
import orjson

from c360.errors import InputError
from c360.graph.neptune_csv import Element
from c360.graph.schema import (
    ADDRESS,
    COVERS,
    CUSTOMER,
    LOCATED_AT,
    MATCH,
    POLICY,
    RECOMMENDED,
    SAME_AS,
    VEHICLE,
    VISITED,
    VISITOR,
    EdgeLabel,
    VertexLabel,
)
from c360.graph.store import DEFAULT_BATCH, DEFAULT_WORKERS, SEARCH_KEYS, GraphStore, GraphUnavailable, StoreSpec
from c360.io import atomic_path

FORMAT = "c360-graph"
VERSION = 1
_SCALARS = frozenset((str, int, float, bool, type(None)))  # exact types: orjson refuses subclasses (numpy)
_JSON_INTS = range(-(2**63), 2**64)  # the ints orjson writes and reads back exactly


def upsert(g: nx.MultiDiGraph, vertices: list[Element], edges: list[Element]) -> None:
    """Insert or update vertices (by id) and edges (by id, the edge key); loading twice changes nothing."""
    for v in vertices:
        if v.id in g:
            g.nodes[v.id].update(v.props)
        else:
            g.add_node(v.id, label=v.label, **v.props)
    for e in edges:
        for end in (e.frm, e.to):
            if end not in g:
                raise ValueError(f"edge {e.id}: vertex {end} does not exist")
        if g.has_edge(e.frm, e.to, key=e.id):
            g.edges[e.frm, e.to, e.id].update(e.props)
        else:
            g.add_edge(e.frm, e.to, key=e.id, label=e.label, **e.props)


def _props(what: str, attrs: dict) -> tuple[dict, bool]:
    """(properties without the label, whether orjson cannot write them exactly); ValueError on a bad value."""
    props, special = {}, False
    for k, v in attrs.items():
        if k == "label":
            continue
        if type(k) is not str or type(v) not in _SCALARS:
            raise ValueError(f"{what}: property {k!r} has type {type(v).__name__} (expected str, int, float, bool "
                             "or None)")
        if type(v) is int and v not in _JSON_INTS:
            raise ValueError(f"{what}: property {k!r} = {v} does not fit in 64 bits")
        if type(v) is float and not math.isfinite(v):
            special = True  # NaN/Infinity: orjson would write null; stdlib json writes literals that read back
        props[k] = v
    return props, special


def _label(what: str, el_id, attrs: dict) -> str:
    label = attrs.get("label")
    if type(el_id) is not str or type(label) is not str:
        raise ValueError(f"{what} {el_id!r}: id and label must be strings (got {type(el_id).__name__}, "
                         f"{type(label).__name__})")
    return label


def to_data(g: nx.MultiDiGraph) -> tuple[dict, bool]:
    """The file layout of `g` (see the module docstring) and whether it needs stdlib json (NaN, Infinity)."""
    special = False
    vertices, edges = [], []
    for vid, d in g.nodes(data=True):
        label = _label("vertex", vid, d)
        props, s = _props(f"vertex {vid}", d)
        special |= s
        vertices.append([vid, label, props])
    for u, v, k, d in g.edges(keys=True, data=True):
        label = _label("edge", k, d)
        props, s = _props(f"edge {k}", d)
        special |= s
        edges.append([k, u, v, label, props])
    return {"format": FORMAT, "version": VERSION, "vertices": vertices, "edges": edges}, special


def _rebuild_hint(source: str) -> str:
    return f"re-run `c360 graph load --drop --target networkx:{source}` (or the nightly) to rebuild it"


def from_data(data, source: str) -> nx.MultiDiGraph:
    """The graph in a parsed file; InputError naming `source` when the layout or a value type is wrong.

    Builds the MultiDiGraph's adjacency dicts directly (as add_nodes_from/add_edges_from would, about twice
    as fast; tests/graph/test_networkx_store.py checks the result equals the public-API build)."""
    def bad(why: str) -> InputError:
        return InputError(f"{source}: not a graph file written by this version of c360 ({why}); "
                          f"{_rebuild_hint(source)}")

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad(f'expected a JSON object with "format": "{FORMAT}"')
    if data.get("version") != VERSION:
        raise bad(f"format version {data.get('version')!r}, expected {VERSION}")
    vertices, edges = data.get("vertices"), data.get("edges")
    if type(vertices) is not list or type(edges) is not list:
        raise bad('"vertices" and "edges" must be lists')
    g = nx.MultiDiGraph()
    node, succ, pred = g._node, g._succ, g._pred
    scalars = _SCALARS.issuperset
    for i, el in enumerate(vertices):
        try:
            vid, label, props = el
        except (TypeError, ValueError):
            raise bad(f"vertex #{i}: expected [id, label, properties]") from None
        if (type(vid) is not str or type(label) is not str or type(props) is not dict or "label" in props
                or not scalars(map(type, props.values()))):
            raise bad(f"vertex #{i}: expected [id, label, properties] with string id and label and "
                      "str/number/bool/null property values")
        if vid in node:
            raise bad(f"vertex {vid} appears twice")
        props["label"] = label
        node[vid] = props
        succ[vid] = {}
        pred[vid] = {}
    for i, el in enumerate(edges):
        try:
            eid, u, v, label, props = el
        except (TypeError, ValueError):
            raise bad(f"edge #{i}: expected [id, from, to, label, properties]") from None
        if (type(eid) is not str or type(u) is not str or type(v) is not str or type(label) is not str
                or type(props) is not dict or "label" in props or not scalars(map(type, props.values()))):
            raise bad(f"edge #{i}: expected [id, from, to, label, properties] with string ids and label and "
                      "str/number/bool/null property values")
        if u not in node or v not in node:
            raise bad(f"edge {eid}: vertex {u if u not in node else v!r} does not exist")
        keys = succ[u].get(v)
        if keys is None:
            keys = succ[u][v] = pred[v][u] = {}
        elif eid in keys:
            raise bad(f"edge {eid} from {u} to {v} appears twice")
        props["label"] = label
        keys[eid] = props
    return g


def save(g: nx.MultiDiGraph, path: str | Path) -> Path:
    """Persist atomically as JSON; ValueError (nothing written) when an id or label is not a string or a
    property value is not a str, int (64 bits), float, bool or None."""
    data, special = to_data(g)
    with atomic_path(path) as tmp:
        if special:  # NaN / Infinity: stdlib json writes literals that load_graph reads back
            tmp.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        else:
            tmp.write_bytes(orjson.dumps(data))
    return Path(path)


def load_graph(path: str | Path) -> nx.MultiDiGraph:
    """The graph in a file written by `save`: GraphUnavailable when missing, InputError when not such a file.

    Only parses JSON (orjson; stdlib json for the NaN/Infinity literals orjson rejects), so it never runs
    code. The cyclic garbage collector is paused meanwhile: the load allocates several containers per element, which
    would otherwise trigger collections costing about as much again as the load itself."""
    p = Path(path)
    if not p.is_file():
        raise GraphUnavailable(f"{p}: graph file not found (build it with `c360 graph load --target networkx:{p}`)")
    raw = p.read_bytes()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                data = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise InputError(f"{p}: not a JSON graph file ({type(exc).__name__}: {str(exc)[:100]}); older "
                                 f"versions of c360 wrote a pickle, which is no longer read: "
                                 f"{_rebuild_hint(str(p))}") from None
        return from_data(data, str(p))
    finally:
        if was_enabled:
            gc.enable()


def _locked(method):
    """Run a store method under the store's lock: queries iterate the graph's dicts, which a concurrent real-time
    write (upsert_live) would change under them."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return run


class NetworkxStore(GraphStore):
    """GraphStore over an in-memory MultiDiGraph (nodes: label + properties; edges keyed by edge id).

    With a path, every write saves the file (except `upsert_live`, kept in memory). Opened for writing (`create`),
    the file is read on first use, so `drop_all` replaces a file without reading it."""

    def __init__(self, graph: nx.MultiDiGraph | None, path: Path | None = None):
        if graph is None and path is None:
            graph = nx.MultiDiGraph()
        self._g = graph
        self.path = None if path is None else Path(path)
        self._lock = threading.RLock()
        self._deferred = False   # inside bulk(): writes are saved once, at its end

    @classmethod
    def open(cls, path: str | Path) -> NetworkxStore:
        """The store in an existing file (GraphUnavailable when missing, InputError when not a graph file)."""
        return cls(load_graph(path), Path(path))

    @classmethod
    def from_spec(cls, spec: StoreSpec, *, current_dir: Path | None = None, settings=None,
                  create: bool = False) -> NetworkxStore:
        """networkx (the run's embedded file under current_dir) or networkx:PATH."""
        if spec.is_url:
            raise InputError(f"graph store {spec.text!r}: expected networkx or networkx:PATH")
        path = spec.resolve(current_dir).path
        return cls(None, path) if create else cls.open(path)

    @property
    def g(self) -> nx.MultiDiGraph:
        if self._g is None:
            self._g = load_graph(self.path) if self.path.exists() else nx.MultiDiGraph()
        return self._g

    def _save(self) -> None:
        if self.path is not None and not self._deferred:
            save(self.g, self.path)

    atomic_bulk = True  # bulk() saves nothing when it fails

    @contextlib.contextmanager
    def bulk(self):
        """Writes inside are kept in memory and saved once when the block ends without error (a load that fails
        halfway leaves the file as it was)."""
        outer, self._deferred = self._deferred, True
        try:
            yield self
        except BaseException:
            if not outer and self.path is not None:
                self._g = None  # the file is the truth again: read on next use
            raise
        finally:
            self._deferred = outer
        self._save()

    # ---- writes -------------------------------------------------------------------------------------
    @_locked
    def upsert(self, vertices: list[Element], edges: list[Element], *, batch_size: int = DEFAULT_BATCH,
               workers: int = DEFAULT_WORKERS, progress: bool | None = None) -> None:
        """Upsert in memory, then save the file (not saved when an edge names a missing vertex: ValueError)."""
        upsert(self.g, vertices, edges)
        self._save()

    @_locked
    def upsert_live(self, vertices: list[Element], edges: list[Element]) -> None:
        """Upsert in memory only: the file stays the published run's (real-time records are replayed from their
        log when a run is loaded)."""
        upsert(self.g, vertices, edges)

    @_locked
    def _drop_same_as(self, record_vertices: list[str]) -> None:
        g = self.g
        for v in record_vertices:
            if v in g:
                g.remove_edges_from([(v, m, k) for _, m, k, d in g.out_edges(v, keys=True, data=True)
                                     if d["label"] == SAME_AS.name])

    @_locked
    def drop_all(self) -> None:
        """Start from an empty graph (and save it)."""
        self._g = nx.MultiDiGraph()
        self._save()

    # ---- raw queries --------------------------------------------------------------------------------
    def _el(self, vid: str) -> dict:
        return {"id": vid, **self.g.nodes[vid]}

    def _out(self, vid: str, label: EdgeLabel, vlabel: VertexLabel) -> list[str]:
        """The `vlabel` vertices that `vid`'s `label` edges lead to."""
        return [v for _, v, d in self.g.out_edges(vid, data=True)
                if d["label"] == label.name and self.g.nodes[v]["label"] == vlabel.name]

    def _same_as(self, match_id: str, vlabel: VertexLabel) -> set[str]:
        """The `vlabel` vertices SameAs the match."""
        g = self.g
        return {u for u, _, d in g.in_edges(match_id, data=True)
                if d["label"] == SAME_AS.name and g.nodes[u]["label"] == vlabel.name}

    def _is_match(self, match_id: str) -> bool:
        return match_id in self.g and self.g.nodes[match_id]["label"] == MATCH.name

    @_locked
    def _customer360_rows(self, match_id: str) -> dict | None:
        if not self._is_match(match_id):
            return None
        rows = []
        for cid in self._same_as(match_id, CUSTOMER):
            policies = [{"p": self._el(p),
                         "addresses": [self._el(a) for a in set(self._out(p, LOCATED_AT, ADDRESS))],
                         "vehicles": [self._el(v) for v in set(self._out(p, COVERS, VEHICLE))]}
                        for p in set(self._out(cid, COVERS, POLICY))]
            rows.append({"c": self._el(cid), "addresses": [self._el(a) for a in set(self._out(cid, LOCATED_AT, ADDRESS))],
                         "policies": policies})
        return {"customers": rows, "accounts": self._account_rows(match_id)}

    @_locked
    def _accounts_rows(self, match_id: str) -> list[dict] | None:
        return self._account_rows(match_id) if self._is_match(match_id) else None

    def _account_rows(self, match_id: str) -> list[dict]:
        rows = []
        for vid in self._same_as(match_id, VISITOR):
            visits, recs = self._visitor_edges(vid)
            rows.append({"v": self._el(vid), "visits": visits, "recs": recs})
        return rows

    def _visitor_edges(self, vertex_id: str) -> tuple[list, list]:
        """(visited, recommended) out-edges of a visitor: [(edge properties without label, attraction)]."""
        visits, recs = [], []
        for _, a, d in self.g.out_edges(vertex_id, data=True):
            props = {k: v for k, v in d.items() if k != "label"}
            if d["label"] == VISITED.name:
                visits.append((props, self._el(a)))
            elif d["label"] == RECOMMENDED.name:
                recs.append((props, self._el(a)))
        return visits, recs

    @_locked
    def _search_rows(self, last_name_lc: str, first_name_lc: str | None, date_of_birth: str | None) -> list[dict]:
        last_key, first_key, dob_key = SEARCH_KEYS
        rows = []
        for vid, d in self.g.nodes(data=True):
            if d["label"] != CUSTOMER.name or d.get(last_key) != last_name_lc:
                continue
            if ((first_name_lc is not None and d.get(first_key) != first_name_lc)
                    or (date_of_birth is not None and d.get(dob_key) != date_of_birth)):
                continue
            for mid in set(self._out(vid, SAME_AS, MATCH)):
                records = len(self._same_as(mid, CUSTOMER))
                rows.append({"c": self._el(vid), "match_id": mid, "records": records})
        return rows

    @_locked
    def _visitor_rows(self, vertex_id: str):
        if vertex_id not in self.g or self.g.nodes[vertex_id]["label"] != VISITOR.name:
            return None
        visits, recs = self._visitor_edges(vertex_id)
        return visits, recs, sorted(set(self._out(vertex_id, SAME_AS, MATCH)))

    @_locked
    def _neighbourhood_rows(self, vertex_id: str, depth: int) -> tuple[list[dict], list[dict]]:
        g = self.g
        if vertex_id not in g:
            return [], []
        seen, frontier = {vertex_id}, {vertex_id}
        for _ in range(depth):
            nxt = set()
            for v in frontier:
                nxt.update(g.successors(v))
                nxt.update(g.predecessors(v))
            frontier = nxt - seen
            seen |= frontier
        edges = [{"id": k, "from": u, "to": v, **d} for u, v, k, d in g.edges(seen, keys=True, data=True) if v in seen]
        return [self._el(v) for v in seen], edges

    @_locked
    def _vertex_ids(self, label: str) -> list[str]:
        return [v for v, d in self.g.nodes(data=True) if d["label"] == label]

    @_locked
    def _label_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        return (Counter(d["label"] for _, d in self.g.nodes(data=True)),
                Counter(d["label"] for _, _, d in self.g.edges(data=True)))
