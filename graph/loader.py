"""`c360 graph load`: put master_vertex.csv / master_edge.csv into a Gremlin server or the embedded store."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from c360.errors import InputError
from c360.graph.neptune_csv import Element, read_graph

DEFAULT_BATCH = 1000
DEFAULT_WORKERS = 4


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def load_gremlin(vertices: list[Element], edges: list[Element], target: str, drop: bool = False,
                 batch_size: int = DEFAULT_BATCH, workers: int = DEFAULT_WORKERS, progress: bool | None = None) -> dict:
    """Upsert into Gremlin: vertices, then edges, `batch_size` elements per traversal. Vertex batches go `workers`
    at a time. Edge batches go one at a time, because TinkerGraph's per-vertex edge sets are not safe under
    concurrent writes (parallel edge batches corrupt them) and TinkerTransactionGraph rejects them as conflicting
    transactions; instead the client encodes the next `workers` edge batches while the server executes the current
    one. `drop` empties the graph first; batch_size 1 sends one mergeV/mergeE per element. Returns counts()."""
    from c360.graph.gremlin_store import GremlinStore

    if batch_size < 1:
        raise InputError(f"--batch-size: must be at least 1 (got {batch_size})")
    if workers < 1:
        raise InputError(f"--workers: must be at least 1 (got {workers})")
    with GremlinStore(target, pool_size=max(workers, 1)) as store:
        if drop:
            store.drop_all()
        disable = None if progress is None else not progress
        with tqdm(total=len(vertices) + len(edges), unit="el", desc="graph load", disable=disable) as bar:
            if batch_size == 1:
                for v in vertices:
                    store.upsert_vertex(v)
                    bar.update(1)
                for e in edges:
                    store.upsert_edge(e)
                    bar.update(1)
                return store.counts()
            with ThreadPoolExecutor(workers) as pool:
                batches = list(_batches(vertices, batch_size))
                for fut, b in zip([pool.submit(store.upsert_vertices, b) for b in batches], batches, strict=True):
                    fut.result()  # all vertices exist before the first edge is sent
                    bar.update(len(b))
            with ThreadPoolExecutor(1) as encoder:  # edges: encode ahead, send in order, one in flight
                ahead: deque = deque()
                for b in [*_batches(edges, batch_size), None]:  # None: flush what is still ahead
                    if b is not None:
                        ahead.append(encoder.submit(store.prepare, b, True))
                    while len(ahead) > (workers if b is not None else 0):
                        prepared = ahead.popleft().result()
                        store.upsert_prepared(prepared)
                        bar.update(prepared.size)
        return store.counts()


def load_networkx(vertices: list[Element], edges: list[Element], path: str | Path, drop: bool = False) -> dict:
    """Upsert into the embedded store file (created when missing; `drop` starts from an empty graph)."""
    import networkx as nx

    from c360.graph.networkx_store import NetworkxStore, load_graph, save, upsert

    path = Path(path)
    g = load_graph(path) if path.exists() and not drop else nx.MultiDiGraph()
    try:
        upsert(g, vertices, edges)
    except ValueError as exc:
        raise InputError(f"master_edge.csv: {exc}") from exc
    save(g, path)
    return NetworkxStore(g, path).counts()


def load_graph_files(csv_dir: str | Path, target: str, drop: bool = False, batch_size: int = DEFAULT_BATCH,
                     workers: int = DEFAULT_WORKERS, progress: bool | None = None) -> dict:
    """Read DIR/master_vertex.csv + master_edge.csv and load them into `target`
    (gremlin://HOST:PORT, wss://HOST:PORT or networkx:PATH). Returns the store's counts()."""
    vertices, edges = read_graph(csv_dir)
    if target.startswith("networkx:"):
        return load_networkx(vertices, edges, target.split(":", 1)[1], drop=drop)
    if target.startswith(("gremlin://", "ws://", "wss://")):
        return load_gremlin(vertices, edges, target, drop=drop, batch_size=batch_size, workers=workers,
                            progress=progress)
    raise InputError(f"--target {target!r}: expected gremlin://HOST:PORT, wss://HOST:PORT or networkx:PATH")
