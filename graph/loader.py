"""`c360 graph load`: put master_vertex.csv / master_edge.csv into a Gremlin server or the embedded store."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from c360.errors import InputError
from graph.neptune_csv import Element, read_graph

DEFAULT_BATCH = 250


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def load_gremlin(vertices: list[Element], edges: list[Element], target: str, drop: bool = False,
                 batch_size: int = DEFAULT_BATCH, progress: bool | None = None) -> dict:
    """Upsert into Gremlin in batches (vertices first); `drop` empties the graph first. Returns counts()."""
    from graph.gremlin_store import GremlinStore

    if batch_size < 1:
        raise InputError(f"--batch-size: must be at least 1 (got {batch_size})")
    with GremlinStore(target) as store:
        if drop:
            store.drop_all()
        with tqdm(total=len(vertices) + len(edges), unit="el", desc="graph load", disable=progress is False
                  if progress is not None else None) as bar:
            for part, upsert in ((vertices, store.upsert_vertices), (edges, store.upsert_edges)):
                for batch in _batches(part, batch_size):
                    if batch_size == 1:
                        (store.upsert_vertex if upsert == store.upsert_vertices else store.upsert_edge)(batch[0])
                    else:
                        upsert(batch)
                    bar.update(len(batch))
        return store.counts()


def load_networkx(vertices: list[Element], edges: list[Element], path: str | Path, drop: bool = False) -> dict:
    """Upsert into the embedded store file (created when missing; `drop` starts from an empty graph)."""
    import networkx as nx

    from graph.networkx_store import NetworkxStore, load_graph, save, upsert

    path = Path(path)
    g = load_graph(path) if path.exists() and not drop else nx.MultiDiGraph()
    try:
        upsert(g, vertices, edges)
    except ValueError as exc:
        raise InputError(f"master_edge.csv: {exc}") from exc
    save(g, path)
    return NetworkxStore(g, path).counts()


def load_graph_files(csv_dir: str | Path, target: str, drop: bool = False, batch_size: int = DEFAULT_BATCH,
                     progress: bool | None = None) -> dict:
    """Read DIR/master_vertex.csv + master_edge.csv and load them into `target`
    (gremlin://HOST:PORT, wss://HOST:PORT or networkx:PATH). Returns the store's counts()."""
    vertices, edges = read_graph(csv_dir)
    if target.startswith("networkx:"):
        return load_networkx(vertices, edges, target.split(":", 1)[1], drop=drop)
    if target.startswith(("gremlin://", "ws://", "wss://")):
        return load_gremlin(vertices, edges, target, drop=drop, batch_size=batch_size, progress=progress)
    raise InputError(f"--target {target!r}: expected gremlin://HOST:PORT, wss://HOST:PORT or networkx:PATH")
