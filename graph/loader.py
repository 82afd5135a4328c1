"""`c360 graph load`: put master_vertex.csv / master_edge.csv into any graph store (GraphStore.upsert)."""

from __future__ import annotations

from pathlib import Path

from c360.errors import InputError
from c360.graph.neptune_csv import Element, read_graph
from c360.graph.store import DEFAULT_BATCH, DEFAULT_WORKERS, StoreSpec, open_store, parse_spec
from c360.layout import EDGE_FILE


def _check_endpoints(vertices: list[Element], edges: list[Element]) -> None:
    """Loaded with drop, the files are the whole graph: refuse a dangling edge before anything is dropped."""
    ids = {v.id for v in vertices}
    for e in edges:
        for end in (e.frm, e.to):
            if end not in ids:
                raise InputError(f"{EDGE_FILE}: edge {e.id}: vertex {end} does not exist")


def load_elements(vertices: list[Element], edges: list[Element], target: str | StoreSpec, drop: bool = False,
                  batch_size: int = DEFAULT_BATCH, workers: int = DEFAULT_WORKERS, progress: bool | None = None,
                  current_dir: Path | None = None, settings=None) -> dict:
    """Upsert elements into the store `target` names (created when it is a missing file); `drop` empties it
    first. batch_size / workers / progress tune batched backends (see GremlinStore.upsert). Returns counts()."""
    spec = parse_spec(target, "--target")
    if drop:
        _check_endpoints(vertices, edges)
    with open_store(spec, current_dir, settings=settings, create=True) as store:
        if drop:
            store.drop_all()
        try:
            store.upsert(vertices, edges, batch_size=batch_size, workers=workers, progress=progress)
        except ValueError as exc:  # an edge to a vertex neither the files nor the store hold
            raise InputError(f"{EDGE_FILE}: {exc}") from exc
        return store.counts()


def load_graph_files(csv_dir: str | Path, target: str | StoreSpec, drop: bool = False,
                     batch_size: int = DEFAULT_BATCH, workers: int = DEFAULT_WORKERS, progress: bool | None = None,
                     current_dir: Path | None = None, settings=None) -> dict:
    """Read DIR/master_vertex.csv + master_edge.csv and load them into `target` (gremlin://HOST:PORT,
    wss://HOST:PORT, networkx:PATH, networkx with current_dir, ...). Returns the store's counts()."""
    spec = parse_spec(target, "--target")  # a bad target fails before the files are read
    vertices, edges = read_graph(csv_dir)
    return load_elements(vertices, edges, spec, drop=drop, batch_size=batch_size, workers=workers,
                         progress=progress, current_dir=current_dir, settings=settings)
