"""The embedded graph store: a networkx MultiDiGraph persisted as a pickle file."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import networkx as nx

from c360.io import atomic_path
from c360.graph.neptune_csv import Element
from c360.graph.store import (
    GraphStore,
    GraphUnavailable,
    check_depth,
    normalise_search,
    shape_customer360,
    shape_neighbourhood,
    shape_search,
    shape_visitor,
)


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


def save(g: nx.MultiDiGraph, path: str | Path) -> Path:
    """Persist atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(g, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return Path(path)


def load_graph(path: str | Path) -> nx.MultiDiGraph:
    p = Path(path)
    if not p.is_file():
        raise GraphUnavailable(f"{p}: graph file not found (build it with `c360 graph load --target networkx:{p}`)")
    with open(p, "rb") as fh:
        g = pickle.load(fh)
    if not isinstance(g, nx.MultiDiGraph):
        raise GraphUnavailable(f"{p}: not a graph file written by c360 graph load")
    return g


class NetworkxStore(GraphStore):
    """GraphStore over an in-memory MultiDiGraph (nodes: label + properties; edges keyed by edge id)."""

    def __init__(self, graph: nx.MultiDiGraph, path: Path | None = None):
        self.g = graph
        self.path = path

    @classmethod
    def open(cls, path: str | Path) -> "NetworkxStore":
        return cls(load_graph(path), Path(path))

    def _el(self, vid: str) -> dict:
        return {"id": vid, **self.g.nodes[vid]}

    def _out(self, vid: str, label: str, vlabel: str | None = None) -> list[str]:
        return [v for _, v, d in self.g.out_edges(vid, data=True)
                if d["label"] == label and (vlabel is None or self.g.nodes[v]["label"] == vlabel)]

    def customer360(self, match_id: str) -> dict | None:
        mid = str(match_id)
        if mid not in self.g or self.g.nodes[mid]["label"] != "match":
            return None
        rows = []
        for cid in {u for u, _, d in self.g.in_edges(mid, data=True) if d["label"] == "SameAs"}:
            if self.g.nodes[cid]["label"] != "customer":
                continue
            policies = [{"p": self._el(p),
                         "addresses": [self._el(a) for a in set(self._out(p, "locatedAt", "address"))],
                         "vehicles": [self._el(v) for v in set(self._out(p, "covers", "vehicle"))]}
                        for p in set(self._out(cid, "covers", "policy"))]
            rows.append({"c": self._el(cid), "addresses": [self._el(a) for a in set(self._out(cid, "locatedAt", "address"))],
                         "policies": policies})
        return shape_customer360(mid, rows)

    def search(self, last_name: str, first_name: str | None = None, date_of_birth: str | None = None) -> list[dict]:
        ln, fn, dob = normalise_search(last_name, first_name, date_of_birth)
        rows = []
        for vid, d in self.g.nodes(data=True):
            if d["label"] != "customer" or d.get("last_name_lc") != ln:
                continue
            if (fn is not None and d.get("first_name_lc") != fn) or (dob is not None and d.get("date_of_birth") != dob):
                continue
            for mid in set(self._out(vid, "SameAs", "match")):
                records = len({u for u, _, e in self.g.in_edges(mid, data=True) if e["label"] == "SameAs"})
                rows.append({"c": self._el(vid), "match_id": mid, "records": records})
        return shape_search(rows)

    def visitor(self, user_id: str) -> dict | None:
        vid = f"visitor:{user_id}"
        if vid not in self.g or self.g.nodes[vid]["label"] != "visitor":
            return None
        visits, recs = [], []
        for _, a, d in self.g.out_edges(vid, data=True):
            props = {k: v for k, v in d.items() if k != "label"}
            if d["label"] == "visited":
                visits.append((props, self._el(a)))
            elif d["label"] == "recommended":
                recs.append((props, self._el(a)))
        return shape_visitor(str(user_id), visits, recs)

    def neighbourhood(self, vertex_id: str, depth: int = 1) -> dict:
        check_depth(depth)
        if vertex_id not in self.g:
            return shape_neighbourhood([], [])
        seen, frontier = {vertex_id}, {vertex_id}
        for _ in range(depth):
            nxt = set()
            for v in frontier:
                nxt.update(self.g.successors(v))
                nxt.update(self.g.predecessors(v))
            frontier = nxt - seen
            seen |= frontier
        edges = [{"id": k, "from": u, "to": v, **d} for u, v, k, d in self.g.edges(seen, keys=True, data=True) if v in seen]
        return shape_neighbourhood([self._el(v) for v in seen], edges)

    def vertex_ids(self, label: str) -> list[str]:
        return sorted(v for v, d in self.g.nodes(data=True) if d["label"] == label)

    def counts(self) -> dict:
        return {"vertices": dict(sorted(Counter(d["label"] for _, d in self.g.nodes(data=True)).items())),
                "edges": dict(sorted(Counter(d["label"] for _, _, d in self.g.edges(data=True)).items()))}

    def ping(self) -> bool:
        return True
