"""`c360 graph load`: stream an export folder's Neptune CSVs into any graph store (GraphStore.upsert).

Files are read one at a time, vertex files before edge files, and handed to the store in chunks of a few batches:
memory stays flat in the number of elements (the store itself aside: the embedded networkx store holds its graph).
Loaded with drop, the files are the whole graph, so a dangling edge is refused before anything is dropped: into a
store whose drop cannot be undone (Gremlin, Neptune), a first pass keeps 8 bytes per vertex id (a sorted array of
64-bit hashes) and checks every edge's endpoints against it; the embedded store checks each edge as it comes and
saves nothing when one fails (GraphStore.atomic_bulk).
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator
from pathlib import Path

from c360.errors import InputError
from c360.graph.neptune_csv import Element, iter_elements
from c360.graph.neptune_parts import GraphFileSet, graph_files
from c360.graph.store import DEFAULT_BATCH, DEFAULT_WORKERS, StoreSpec, open_store, parse_spec

CHUNK_BATCHES = 16   # batches per upsert call: enough for `workers` batches in flight, few enough to stay small


def _id_hash(vid: str) -> int:
    return int.from_bytes(hashlib.blake2b(vid.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


class VertexIds:
    """The vertex ids of a set of files as sorted 64-bit hashes (8 bytes a vertex); `missing` finds edge endpoints
    that are none of them (a hash collision could hide one dangling endpoint in about 2**64 / vertices)."""

    def __init__(self, files: list[Path]):
        import numpy as np

        hashes = array("q")
        for f in files:
            hashes.extend(_id_hash(v.id) for v in iter_elements(f, edges=False))
        self._sorted = np.sort(np.frombuffer(hashes, dtype=np.int64)) if hashes else np.empty(0, np.int64)

    def __contains__(self, vid: str) -> bool:
        import numpy as np

        h = np.int64(_id_hash(vid))
        i = int(np.searchsorted(self._sorted, h))
        return i < len(self._sorted) and self._sorted[i] == h


def check_endpoints(files: GraphFileSet) -> None:
    """InputError naming the edge file, edge and vertex when an edge ends at a vertex no vertex file holds."""
    ids = VertexIds(files.vertices)
    for f in files.edges:
        for e in iter_elements(f, edges=True):
            for end in (e.frm, e.to):
                if end not in ids:
                    raise InputError(f"{f.name}: edge {e.id}: vertex {end} does not exist")


def chunks(files: GraphFileSet, size: int) -> Iterator[tuple[list[Element], list[Element], Path]]:
    """(vertices, edges, the file the edges came from), at most `size` elements each: every vertex comes before the
    first edge (the chunk where vertices end may carry the first edges); a chunk's edges come from one file, which
    an error about one of them names."""
    vs: list[Element] = []
    es: list[Element] = []
    last = files.dir
    for edges, paths in ((False, files.vertices), (True, files.edges)):
        for f in paths:
            if es:  # the previous edge file's rest
                yield vs, es, last
                vs, es = [], []
            last = f
            for el in iter_elements(f, edges=edges, values=files.values):
                (es if edges else vs).append(el)
                if len(vs) + len(es) >= size:
                    yield vs, es, f
                    vs, es = [], []
    if vs or es:
        yield vs, es, last


def load_files(files: GraphFileSet, target: str | StoreSpec, drop: bool = False, batch_size: int = DEFAULT_BATCH,
               workers: int = DEFAULT_WORKERS, progress: bool | None = None, current_dir: Path | None = None,
               settings=None, chunk_size: int | None = None) -> dict:
    """Stream `files` into the store `target` names (created when it is a missing file); `drop` empties it first.
    `chunk_size`: elements per upsert call (default: CHUNK_BATCHES batches, at least 1000). Returns counts()."""
    from tqdm import tqdm

    spec = parse_spec(target, "--target")
    if batch_size < 1:
        raise InputError(f"--batch-size: must be at least 1 (got {batch_size})")
    size = chunk_size or max(batch_size * CHUNK_BATCHES, 1000)
    with open_store(spec, current_dir, settings=settings, create=True) as store:
        if drop and not store.atomic_bulk:  # a dropped server store stays dropped: refuse dangling edges first
            check_endpoints(files)
        with store.bulk(), tqdm(unit="el", desc="graph load", disable=None if progress is None else not progress) \
                as bar:
            if drop:
                store.drop_all()
            for vs, es, source in chunks(files, size):
                try:
                    store.upsert(vs, es, batch_size=batch_size, workers=workers, progress=False)
                except ValueError as exc:  # an edge to a vertex neither the files nor the store hold
                    raise InputError(f"{source.name}: {exc}") from exc
                bar.update(len(vs) + len(es))
        return store.counts()


def load_graph_files(csv_dir: str | Path, target: str | StoreSpec, drop: bool = False,
                     batch_size: int = DEFAULT_BATCH, workers: int = DEFAULT_WORKERS, progress: bool | None = None,
                     current_dir: Path | None = None, settings=None, chunk_size: int | None = None) -> dict:
    """Load an export folder (vertex-*.csv / edge-*.csv parts, or master_vertex.csv / master_edge.csv) into
    `target` (gremlin://HOST:PORT, wss://HOST:PORT, networkx:PATH, networkx with current_dir, ...), streaming.
    Returns the store's counts()."""
    spec = parse_spec(target, "--target")  # a bad target fails before the files are read
    return load_files(graph_files(csv_dir), spec, drop=drop, batch_size=batch_size, workers=workers,
                      progress=progress, current_dir=current_dir, settings=settings, chunk_size=chunk_size)


def load_elements(vertices: list[Element], edges: list[Element], target: str | StoreSpec, drop: bool = False,
                  batch_size: int = DEFAULT_BATCH, workers: int = DEFAULT_WORKERS, progress: bool | None = None,
                  current_dir: Path | None = None, settings=None) -> dict:
    """Upsert elements held in memory into `target` (as load_graph_files does with files). Returns counts()."""
    spec = parse_spec(target, "--target")
    if drop:
        ids = {v.id for v in vertices}
        for e in edges:
            for end in (e.frm, e.to):
                if end not in ids:
                    raise InputError(f"edges: edge {e.id}: vertex {end} does not exist")
    with open_store(spec, current_dir, settings=settings, create=True) as store:
        if drop:
            store.drop_all()
        try:
            store.upsert(vertices, edges, batch_size=batch_size, workers=workers, progress=progress)
        except ValueError as exc:
            raise InputError(f"edges: {exc}") from exc
        return store.counts()
