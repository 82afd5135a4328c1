"""The served recommendations of a run as a compact table on disk that every API worker shares.

    recsys/served/
      meta.json          format, counts, and the size and mtime of the recs and items files it was built from
      items.bin          one entry per user: item count c (uint32), the end of each item in the body (c x uint32),
                         the body: the response items pre-serialized, `{"item_id":..,"name":..,"score":..,"rank":..}`
                         joined by commas (ranks renumbered from 1)
      entries.i64        byte offset of each user's entry in items.bin (users + 1)
      keys.bin           the user ids (UTF-8) one after another, in user order; key_offsets.i64 (users + 1)
      hashes.u64         64-bit BLAKE2b of every user id, sorted; hash_slots.i64 the user of each

Every worker memory-maps the index (hashes, slots, key and entry offsets: 42 bytes and the id per user) and reads a
user's entry with one pread(2) from the page cache, which the workers share and which no process's PSS counts.
Entries are not mapped: the kernel maps file pages in 64 KiB or larger runs around each fault, so mapping them
made every worker's PSS grow to the whole file (1.7 GB after 20,000 random users of a 1.9 GB table) although each
request reads 2 KB. A worker's memory therefore does not grow with the number of (user, item) rows, and opening a
table costs the same for ten users or ten million. A lookup is one hash, one binary search over `hashes.u64`, one
read; the first k items of a user are one contiguous byte range, spliced into a response without being parsed.

Building reads the recs (a CSV file, a directory of Spark part files, or Parquet) with DuckDB, which ranks and
sorts out of core (spilling to the run's tmp/), and writes the entries batch by batch: never the whole table as
Python objects.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import mmap
import os
import struct
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from c360.errors import InputError
from c360.io import (
    CSV_DELIMITER,
    CSV_ESCAPE,
    CSV_QUOTE,
    atomic_path,
    csv_header,
    csv_parts,
    read_json_file,
    table_kind,
    write_json_file,
)
from c360.layout import RunLayout

log = logging.getLogger("c360.recsys.served_table")

FORMAT = 1
META_FILE = "meta.json"
BATCH_ROWS = 65536
BUILD_MEMORY = "512MB"  # DuckDB's limit while sorting; beyond it the sort spills to disk (ordered aggregates
                        # per user do not spill: 100k users x 20 ran out of 512 MB, so the rows come sorted)


def key_hash(key: bytes) -> int:
    """The table's 64-bit hash of a UTF-8 user id (the same in every process, unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def _sources(recs: Path, items: Path | None) -> list[list]:
    """[name, size, mtime_ns] of every file the table is built from: a changed one means rebuild."""
    files = csv_parts(recs) if table_kind(recs) == "csv" else \
        (sorted(recs.glob("*.parquet")) if recs.is_dir() else [recs])
    if items is not None and items.is_file():
        files = [*files, items]
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _read_csv(files: list[Path], types: dict[str, str]) -> str:
    """DuckDB's read_csv of files in the pipeline's CSV dialect with these columns and types, nothing detected."""
    columns = "{" + ", ".join(f"'{c}': '{t}'" for c, t in types.items()) + "}"
    return (f"read_csv({_sql_list(files)}, columns = {columns}, header = true, delim = '{CSV_DELIMITER}', "
            f"quote = '{CSV_QUOTE}', escape = '{CSV_ESCAPE}', auto_detect = false)")


def _recs_relation(recs: Path) -> str:
    from c360.recsys.recs import REC_TYPES, recs_csv_parts

    if table_kind(recs) == "parquet":
        files = sorted(recs.glob("*.parquet")) if recs.is_dir() else [recs]
        return f"read_parquet({_sql_list(files)}, union_by_name = true)"
    return _read_csv([p for p in recs_csv_parts(recs) if p.stat().st_size], REC_TYPES)


def _names_relation(con, items: Path | None) -> str:
    """ITEM_ID, NAME of the run's items (NAME '' when empty; no rows when there is no NAME column), as the API
    names items: an item missing from it gets `"name": null`."""
    if items is None or not items.is_file():
        return "(SELECT NULL::VARCHAR AS ITEM_ID, NULL::VARCHAR AS NAME WHERE false)"
    columns = csv_header(items)
    source = _read_csv([items], dict.fromkeys(columns, "VARCHAR"))
    if "ITEM_ID" not in columns:
        raise InputError(f"{items}: missing column(s) ITEM_ID (found: {', '.join(columns)})")
    if "NAME" not in columns:
        return "(SELECT NULL::VARCHAR AS ITEM_ID, NULL::VARCHAR AS NAME WHERE false)"
    return f"(SELECT ITEM_ID, last(coalesce(NAME, '')) AS NAME FROM {source} GROUP BY ITEM_ID)"


def build_served_table(recs: str | os.PathLike, items: str | os.PathLike | None, out: str | os.PathLike,
                       scratch: str | os.PathLike | None = None) -> Path:
    """Write the served table of `recs` (USER_ID, ITEM_ID, RANK, SCORE) with the names of `items` at `out`,
    atomically. DuckDB spills to a temporary directory under `scratch` (default: the system's), removed after.
    InputError naming the file when the recs are missing, lack a column or cannot be read."""
    import duckdb

    from c360.recsys.recs import REC_COLUMNS

    recs, out = Path(recs), Path(out)
    items = Path(items) if items is not None else None
    if not recs.exists():
        raise InputError(f"{recs}: file not found")
    sources = _sources(recs, items)
    with contextlib.ExitStack() as stack:
        if scratch is not None:
            Path(scratch).mkdir(parents=True, exist_ok=True)
        spill = stack.enter_context(tempfile.TemporaryDirectory(prefix=".served-build.", dir=scratch))
        con = stack.enter_context(duckdb.connect(config={"memory_limit": BUILD_MEMORY, "threads": 2,
                                                          "temp_directory": spill}))
        relation = _recs_relation(recs)
        try:
            columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        except duckdb.Error as exc:
            raise InputError(f"{recs}: cannot read the recommendations: {exc}") from exc
        missing = [c for c in REC_COLUMNS if c not in columns]
        if missing:
            raise InputError(f"{recs}: missing column(s) {', '.join(missing)} (found: {', '.join(columns)})")
        query = f"""
            WITH recs AS (
                SELECT USER_ID::VARCHAR AS user_id, ITEM_ID::VARCHAR AS item_id, RANK::BIGINT AS rnk,
                       SCORE::DOUBLE AS score
                FROM {relation} WHERE USER_ID IS NOT NULL),
            ranked AS (
                SELECT user_id, item_id, score,
                       row_number() OVER (PARTITION BY user_id ORDER BY rnk, item_id) AS pos FROM recs)
            SELECT r.user_id, r.pos,
                   to_json(struct_pack(item_id := r.item_id, name := n.NAME, score := r.score, rank := r.pos))
                   AS fragment
            FROM ranked r LEFT JOIN {_names_relation(con, items)} n ON n.ITEM_ID = r.item_id
            ORDER BY r.user_id, r.pos"""
        with atomic_path(out) as tmp:
            tmp.mkdir(parents=True)
            try:
                counts = _write_tables(con.sql(query).to_arrow_reader(BATCH_ROWS), tmp)
            except duckdb.Error as exc:
                raise InputError(f"{recs}: cannot read the recommendations: {exc}") from exc
            write_json_file(tmp / META_FILE, {"format": FORMAT, **counts, "sources": sources})
    log.info("served table of %s: %d users, %d rows, %d bytes of items", recs, counts["users"], counts["rows"],
             counts["item_bytes"])
    return out


class _TableWriter:
    """Appends users' entries, keys and offsets to the table's files, one user at a time in user order."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._files = {name: open(directory / name, "wb")  # noqa: SIM115 - closed by finish()
                       for name in ("items.bin", "keys.bin", "entries.i64", "key_offsets.i64")}
        self._entries: list[int] = []      # flushed as arrays every batch
        self._key_offsets: list[int] = []
        self._hashes: list[int] = []
        self._hash_parts: list[np.ndarray] = []
        self.users = self.rows = self.item_bytes = self.key_bytes = 0

    def add(self, key: bytes, fragments: list) -> None:
        """One user's entry: item count, the end of each item in the body, the body (fragments joined by commas)."""
        ends, end = [], -1
        for fragment in fragments:
            end += len(fragment) + 1
            ends.append(end)
        header = struct.pack(f"<{len(ends) + 1}I", len(ends), *ends)
        body = b",".join(fragments)
        self._entries.append(self.item_bytes)
        self._files["items.bin"].write(header)
        self._files["items.bin"].write(body)
        self.item_bytes += len(header) + len(body)
        self._key_offsets.append(self.key_bytes)
        self._files["keys.bin"].write(key)
        self.key_bytes += len(key)
        self._hashes.append(key_hash(key))
        self.users += 1
        self.rows += len(ends)

    def flush(self) -> None:
        np.array(self._entries, dtype="<i8").tofile(self._files["entries.i64"])
        np.array(self._key_offsets, dtype="<i8").tofile(self._files["key_offsets.i64"])
        self._hash_parts.append(np.array(self._hashes, dtype=np.uint64))
        self._entries, self._key_offsets, self._hashes = [], [], []

    def finish(self) -> dict[str, int]:
        """Close the files and write the hash index; the counts."""
        self.flush()
        np.array([self.item_bytes], dtype="<i8").tofile(self._files["entries.i64"])
        np.array([self.key_bytes], dtype="<i8").tofile(self._files["key_offsets.i64"])
        for f in self._files.values():
            f.close()
        hashes = np.concatenate(self._hash_parts)
        order = np.argsort(hashes, kind="stable")
        hashes[order].astype("<u8").tofile(self.directory / "hashes.u64")
        order.astype("<i8").tofile(self.directory / "hash_slots.i64")
        return {"users": self.users, "rows": self.rows, "item_bytes": self.item_bytes, "key_bytes": self.key_bytes}


def _write_tables(batches, directory: Path) -> dict[str, int]:
    """Stream (user_id, pos, fragment) rows sorted by user and pos into the table's files; returns the counts. A
    user's rows may continue into the next batch: each batch's last user is completed by the next."""
    writer = _TableWriter(directory)
    key: bytes | None = None
    fragments: list = []
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        values = _binary_slices(batch.column(2))
        starts = np.flatnonzero(batch.column(1).to_numpy(zero_copy_only=False) == 1).tolist()
        keys = [u.encode("utf-8", "surrogatepass") for u in batch.column(0).take(starts).to_pylist()]
        fragments.extend(values[:starts[0]] if starts else values)
        for j, start in enumerate(starts):
            if key is not None:
                writer.add(key, fragments)
            key, fragments = keys[j], values[start:starts[j + 1] if j + 1 < len(starts) else n]
        writer.flush()
    if key is not None:
        writer.add(key, fragments)
    return writer.finish()


def _binary_slices(column) -> list[memoryview]:
    """The UTF-8 bytes of each value of an Arrow string column, as views of its data buffer (no copies)."""
    import pyarrow as pa

    width = np.int64 if pa.types.is_large_string(column.type) else np.int32
    offsets = np.frombuffer(column.buffers()[1], dtype=width)[column.offset:column.offset + len(column) + 1]
    data = memoryview(column.buffers()[2]) if column.buffers()[2] is not None else memoryview(b"")
    return [data[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]


def _map_array(path: Path, dtype: str) -> np.ndarray:
    """A read-only array over a memory map of the file (a plain ndarray: np.memmap's subclass costs microseconds
    on every lookup)."""
    mapped = _map_bytes(path)
    return np.frombuffer(mapped, dtype=dtype) if len(mapped) else np.zeros(0, dtype=dtype)


def _map_bytes(path: Path) -> mmap.mmap | bytes:
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


class ServedTable(Mapping):
    """A read-only mapping USER_ID → that user's items ([{item_id, name, score, rank}], ranks from 1) over a served
    table's files (index memory-mapped, entries read with pread); `items_json` answers with the stored bytes. Safe
    to share between threads."""

    def __init__(self, directory: Path, meta: dict[str, Any]):
        self.directory, self.meta = directory, meta
        self._items = open(directory / "items.bin", "rb", buffering=0)  # noqa: SIM115 - closed when collected
        self._keys = _map_bytes(directory / "keys.bin")
        self._entries = _map_array(directory / "entries.i64", "<i8")
        self._key_offsets = _map_array(directory / "key_offsets.i64", "<i8")
        self._hashes = _map_array(directory / "hashes.u64", "<u8")
        self._slots = _map_array(directory / "hash_slots.i64", "<i8")
        self._n = int(meta["users"])
        if len(self._entries) != self._n + 1 or len(self._hashes) != self._n:
            raise InputError(f"{directory}: served table is incomplete (expected {self._n} users)")

    @classmethod
    def open(cls, directory: str | os.PathLike) -> "ServedTable":
        """Open a table written by `build_served_table`; InputError when it is missing or of another format."""
        directory = Path(directory)
        meta = read_json_file(directory / META_FILE, "not a served table (no meta.json)")
        if meta.get("format") != FORMAT:
            raise InputError(f"{directory / META_FILE}: served table format {meta.get('format')!r}, not {FORMAT}")
        return cls(directory, meta)

    def _key(self, slot: int) -> bytes:
        return self._keys[int(self._key_offsets[slot]):int(self._key_offsets[slot + 1])]

    def slot(self, user_id: str) -> int:
        """The user's position in the table, -1 when it has no recommendations."""
        key = user_id.encode("utf-8", "surrogatepass")
        h = key_hash(key)
        hashes = self._hashes
        i = int(hashes.searchsorted(np.uint64(h)))
        while i < self._n and int(hashes[i]) == h:
            slot = int(self._slots[i])
            if self._key(slot) == key:
                return slot
            i += 1
        return -1

    def _entry(self, user_id: str) -> tuple[int, bytes] | None:
        """(item count, entry bytes) of the user, None when absent: one read of the page cache."""
        slot = self.slot(user_id) if isinstance(user_id, str) else -1
        if slot < 0:
            return None
        start, end = int(self._entries[slot]), int(self._entries[slot + 1])
        entry = os.pread(self._items.fileno(), end - start, start)
        return int.from_bytes(entry[:4], "little"), entry

    def count(self, user_id: str) -> int:
        """How many items the table holds for the user (0: none)."""
        found = self._entry(user_id)
        return 0 if found is None else found[0]

    def items_json(self, user_id: str, k: int) -> bytes | None:
        """The user's first `k` items as the JSON array of a response, straight from the stored bytes; None when the
        table holds fewer than `k` items for them (or none)."""
        found = self._entry(user_id)
        if found is None or found[0] < k:
            return None
        count, entry = found
        if k < 1:
            return b"[]"
        body = 4 + 4 * count
        end = int.from_bytes(entry[4 * k:4 * k + 4], "little")  # the end of item k (ends start at byte 4)
        return b"[" + entry[body:body + end] + b"]"

    def __getitem__(self, user_id: str) -> list[dict[str, Any]]:
        found = self._entry(user_id)
        if found is None:
            raise KeyError(user_id)
        count, entry = found
        return orjson.loads(b"[" + entry[4 + 4 * count:] + b"]")

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, str) and self.slot(user_id) >= 0

    def __iter__(self) -> Iterator[str]:
        for slot in range(self._n):
            yield self._key(slot).decode("utf-8", "surrogatepass")

    def __len__(self) -> int:
        return self._n


def is_current(directory: Path, recs: Path, items: Path | None) -> bool:
    """True when `directory` holds a table of this format built from the recs and items as they are now."""
    try:
        meta = read_json_file(directory / META_FILE)
        return meta.get("format") == FORMAT and meta.get("sources") == _sources(recs, items)
    except (InputError, OSError):
        return False


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    """flock(2) on an open lock file: one builder at a time across processes (the others wait, then find it built)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def served_table_of(run: RunLayout | Path) -> ServedTable:
    """The run's served table, built first when the run lacks one or it is older than the recs (once: the
    workers that need it at the same moment wait for the first one's build). A run directory that cannot be
    written gets a table private to this process, in a temporary directory."""
    run = run if isinstance(run, RunLayout) else RunLayout(run)
    directory = run.served_table
    if is_current(directory, run.recs, run.items):
        return ServedTable.open(directory)
    try:
        fd = os.open(directory.parent / ".served.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        log.warning("run %s: cannot build the served table in the run (%s); building a private copy",
                    run.run_id, exc)
        private = Path(tempfile.mkdtemp(prefix=f"c360-served-{run.run_id}-")) / "served"
        return ServedTable.open(build_served_table(run.recs, run.items, private))
    with _locked(fd):
        if not is_current(directory, run.recs, run.items):
            log.info("run %s: building the served table", run.run_id)
            build_served_table(run.recs, run.items, directory, run.tmp)
        return ServedTable.open(directory)


def build_for_run(run: RunLayout | Path) -> Path:
    """Build the run's served table from its recs (the nightly, after writing recs.csv); its directory."""
    run = run if isinstance(run, RunLayout) else RunLayout(run)
    return build_served_table(run.recs, run.items, run.served_table, run.tmp)
