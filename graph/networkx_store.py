"""The embedded graph store: a networkx MultiDiGraph persisted as a pickle file (spec networkx[:PATH])."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import networkx as nx

from c360.errors import InputError
from c360.graph.neptune_csv import Element
from c360.graph.store import DEFAULT_BATCH, DEFAULT_WORKERS, GraphStore, GraphUnavailable, StoreSpec
from c360.io import atomic_path


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
    """The graph in a file written by `save`; GraphUnavailable when missing or not such a file."""
    p = Path(path)
    if not p.is_file():
        raise GraphUnavailable(f"{p}: graph file not found (build it with `c360 graph load --target networkx:{p}`)")
    with open(p, "rb") as fh:
        g = pickle.load(fh)
    if not isinstance(g, nx.MultiDiGraph):
        raise GraphUnavailable(f"{p}: not a graph file written by c360 graph load")
    return g


class NetworkxStore(GraphStore):
    """GraphStore over an in-memory MultiDiGraph (nodes: label + properties; edges keyed by edge id).

    With a path, every write saves the file. Opened for writing (`create`), the file is read on first use,
    so `drop_all` replaces a file without reading it."""

    def __init__(self, graph: nx.MultiDiGraph | None, path: Path | None = None):
        if graph is None and path is None:
            graph = nx.MultiDiGraph()
        self._g = graph
        self.path = None if path is None else Path(path)

    @classmethod
    def open(cls, path: str | Path) -> NetworkxStore:
        """The store in an existing file (GraphUnavailable when missing)."""
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
        if self.path is not None:
            save(self.g, self.path)

    # ---- writes -------------------------------------------------------------------------------------
    def upsert(self, vertices: list[Element], edges: list[Element], *, batch_size: int = DEFAULT_BATCH,
               workers: int = DEFAULT_WORKERS, progress: bool | None = None) -> None:
        """Upsert in memory, then save the file (not saved when an edge names a missing vertex: ValueError)."""
        upsert(self.g, vertices, edges)
        self._save()

    def drop_all(self) -> None:
        """Start from an empty graph (and save it)."""
        self._g = nx.MultiDiGraph()
        self._save()

    # ---- raw queries --------------------------------------------------------------------------------
    def _el(self, vid: str) -> dict:
        return {"id": vid, **self.g.nodes[vid]}

    def _out(self, vid: str, label: str, vlabel: str | None = None) -> list[str]:
        return [v for _, v, d in self.g.out_edges(vid, data=True)
                if d["label"] == label and (vlabel is None or self.g.nodes[v]["label"] == vlabel)]

    def _customer360_rows(self, match_id: str) -> list[dict] | None:
        g = self.g
        if match_id not in g or g.nodes[match_id]["label"] != "match":
            return None
        rows = []
        for cid in {u for u, _, d in g.in_edges(match_id, data=True) if d["label"] == "SameAs"}:
            if g.nodes[cid]["label"] != "customer":
                continue
            policies = [{"p": self._el(p),
                         "addresses": [self._el(a) for a in set(self._out(p, "locatedAt", "address"))],
                         "vehicles": [self._el(v) for v in set(self._out(p, "covers", "vehicle"))]}
                        for p in set(self._out(cid, "covers", "policy"))]
            rows.append({"c": self._el(cid), "addresses": [self._el(a) for a in set(self._out(cid, "locatedAt", "address"))],
                         "policies": policies})
        return rows

    def _search_rows(self, last_name_lc: str, first_name_lc: str | None, date_of_birth: str | None) -> list[dict]:
        rows = []
        for vid, d in self.g.nodes(data=True):
            if d["label"] != "customer" or d.get("last_name_lc") != last_name_lc:
                continue
            if ((first_name_lc is not None and d.get("first_name_lc") != first_name_lc)
                    or (date_of_birth is not None and d.get("date_of_birth") != date_of_birth)):
                continue
            for mid in set(self._out(vid, "SameAs", "match")):
                records = len({u for u, _, e in self.g.in_edges(mid, data=True) if e["label"] == "SameAs"})
                rows.append({"c": self._el(vid), "match_id": mid, "records": records})
        return rows

    def _visitor_rows(self, vertex_id: str):
        if vertex_id not in self.g or self.g.nodes[vertex_id]["label"] != "visitor":
            return None
        visits, recs = [], []
        for _, a, d in self.g.out_edges(vertex_id, data=True):
            props = {k: v for k, v in d.items() if k != "label"}
            if d["label"] == "visited":
                visits.append((props, self._el(a)))
            elif d["label"] == "recommended":
                recs.append((props, self._el(a)))
        return visits, recs

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

    def _vertex_ids(self, label: str) -> list[str]:
        return [v for v, d in self.g.nodes(data=True) if d["label"] == label]

    def _label_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        return (Counter(d["label"] for _, d in self.g.nodes(data=True)),
                Counter(d["label"] for _, _, d in self.g.edges(data=True)))
