"""Append-only logs of JSON records: what the API accepts between two nightly runs (events, committed customers).

A journal is a directory of numbered segment files, one JSON object per line:

    warehouse/realtime/events/
      .lock                 flock(2) of every writer, in every process
      000000000001.jsonl    sealed: the nightly read it; deleted once a published run contains it
      000000000002.jsonl    the active segment: appends go here

- `append` returns only after the bytes are on disk (write, then fsync; a new segment's directory entry is
  fsync'd too). Concurrent appends of one process share one write and one fsync (group commit: a leader writes
  everything queued while the previous fsync ran), so throughput grows with concurrency instead of being one
  fsync per request.
- Writers of all processes serialize on the lock file; a line left half-written by a crash (never acknowledged:
  its fsync never returned) is cut off by the next writer, and readers never return a line without its newline.
- `seal` starts a new segment and returns the last sealed one: everything up to it is immutable, which is what
  the nightly trains on; `drop_through` deletes those segments once a published run contains them.
- Segments and the lock file are 0600, the directories the journal creates 0700: the customers log holds full
  records (SSNs), whatever the umask of the process that writes first.
- `Tail` reads what was appended since it last looked (a stat per call when nothing changed): every API worker
  tails the same files, so a record accepted by one worker is seen by all.
- A line no writer of this module wrote (not JSON, or a seal marker that names no next segment) is logged and skipped
  by every reader, the tail and the nightly's `read_through` alike: one bad line never stops serving or a run.

This is the embedded backend of c360.log_contract (a position is a sealed segment's number); at scale the same
records go through Kafka in the same format (c360.kafka_log).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from c360.log_contract import RealtimeLog

log = logging.getLogger("c360.append_log")

_SEGMENT = re.compile(r"^(\d{12})\.jsonl$")
LOCK_FILE = ".lock"
SEAL_KEY = "_sealed"  # the last line of a sealed segment: {"_sealed": next segment}, not a record
# a directory changed less than this long ago is listed again (mtime may be as coarse as a second on some file systems)
MTIME_SETTLED_NS = 2_000_000_000
LIST_EVERY_S = 1.0  # a reader with nothing new lists the directory at most this often (a seal marker is faster)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(path: Path) -> None:
    """Create `path` and its missing parents, each 0700 (Path.mkdir gives parents the umask's default mode)."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for p in reversed(missing):
        try:
            os.mkdir(p, 0o700)
        except FileExistsError:
            pass


def encode(records: list[dict[str, Any]]) -> bytes:
    """Records as JSON lines (orjson escapes newlines inside strings, so one record is one line)."""
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


class AppendLog(RealtimeLog):
    """An append-only, fsync'd log of JSON records in numbered segments under `directory` (thread- and
    process-safe)."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self._mutex = threading.Lock()  # flock does not exclude threads sharing one open file
        self._lock_fd: int | None = None
        # group commit
        self._cv = threading.Condition()
        self._queued: list[bytes] = []
        self._collecting = 0      # id of the batch that new appends join
        self._written = -1        # id of the last batch that is durable (or failed)
        self._writing = False
        self._failed: dict[int, BaseException] = {}

    def __repr__(self) -> str:
        return f"AppendLog({str(self.dir)!r})"

    @property
    def name(self) -> str:
        return str(self.dir)

    # ---- segments ---------------------------------------------------------------------------------------------
    def path(self, segment: int) -> Path:
        return self.dir / f"{segment:012d}.jsonl"

    def segments(self) -> list[int]:
        """Numbers of the segment files present, ascending ([] before the first write)."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for n in names if (m := _SEGMENT.match(n)))

    # ---- writing ----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def exclusive(self) -> Iterator[Writer]:
        """Hold the journal's lock (against every thread and process) and write through the returned Writer:
        read, decide and append as one step (e.g. allocate an id no other writer can take)."""
        with self._mutex:
            if self._lock_fd is None:
                _make_dirs(self.dir)
                self._lock_fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield Writer(self)
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records durably (returns once fsync'd). Concurrent callers share one write and fsync."""
        if not records:
            return
        data = encode(records)
        with self._cv:
            self._queued.append(data)
            mine = self._collecting
            while self._written < mine:
                if self._writing:
                    self._cv.wait()
                    continue
                batch, self._queued = self._queued, []
                batch_id, self._collecting = self._collecting, self._collecting + 1
                self._writing = True
                self._cv.release()
                error = None
                try:
                    with self.exclusive() as writer:
                        writer.write(b"".join(batch))
                except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
                    error = exc
                finally:
                    self._cv.acquire()
                    self._writing = False
                    self._written = batch_id
                    if error is not None:
                        self._failed[batch_id] = error
                    self._cv.notify_all()
            error = self._failed.get(mine)
        if error is not None:
            raise OSError(f"{self.dir}: append failed: {error}") from error

    def close(self) -> None:
        """Release the lock file (a later write opens it again)."""
        with self._mutex:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def seal(self) -> int:
        """Start a new segment; return the last sealed one (0: nothing was ever written). Segments up to it never
        change again."""
        with self.exclusive() as writer:
            return writer.seal()

    def drop_through(self, segment: int) -> list[int]:
        """Delete the sealed segments up to `segment` (never the active one); returns those deleted."""
        with self.exclusive():
            present = self.segments()
            active = present[-1] if present else 0
            gone = [s for s in present if s <= segment and s < active]
            for s in gone:
                self.path(s).unlink(missing_ok=True)
            if gone:
                _fsync_dir(self.dir)
            return gone

    # ---- reading ----------------------------------------------------------------------------------------------
    def read_through(self, segment: int, after: int = 0) -> list[dict[str, Any]]:
        """Every record in the segments after `after` up to `segment` (sealed ones: complete and fixed)."""
        out: list[dict[str, Any]] = []
        for s in self.segments():
            if after < s <= segment:
                out.extend(_parse(self.path(s).read_bytes(), self.path(s), s)[0])
        return out

    def tail(self, after: int = 0) -> Tail:
        """A reader of the records in segments after `after`, from the first one on."""
        return Tail(self, after)


class Writer:
    """Writes under the journal's lock (see AppendLog.exclusive)."""

    def __init__(self, journal: AppendLog):
        self.journal = journal

    def active(self) -> int:
        """The segment appends go to, created if there is none."""
        segments = self.journal.segments()
        if segments:
            return segments[-1]
        self._create(1)
        return 1

    def _create(self, segment: int) -> None:
        fd = os.open(self.journal.path(segment), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        _fsync_dir(self.journal.dir)

    def write(self, data: bytes, segment: int | None = None) -> None:
        """Append raw JSON lines to the active segment (or `segment`) and fsync."""
        path = self.journal.path(segment or self.active())
        fd = os.open(path, os.O_RDWR | os.O_APPEND)  # read: the last byte tells a torn line
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                _cut_torn_line(fd, path, size)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records durably (the caller holds the lock: no group commit)."""
        if records:
            self.write(encode(records))

    def seal(self) -> int:
        segments = self.journal.segments()
        last = segments[-1] if segments else 0
        self._create(last + 1)
        if last:  # readers of `last` move on at this line instead of listing the directory
            self.write(encode([{SEAL_KEY: last + 1}]), segment=last)
        return last


def _cut_torn_line(fd: int, path: Path, size: int) -> None:
    """Truncate a segment after its last newline: the bytes after it are a write a crash interrupted."""
    keep, step = size, 65536
    while keep > 0:
        start = max(0, keep - step)
        chunk = os.pread(fd, keep - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            keep = start + i + 1
            break
        keep = start
    log.warning("%s: cut %d bytes of a write interrupted by a crash", path, size - keep)
    os.ftruncate(fd, keep)
    os.fsync(fd)


def _parse(data: bytes, path: Path, segment: int) -> tuple[list[dict[str, Any]], int, int | None]:
    """(records of the complete lines in `data` of `segment`, bytes consumed, the next segment when a seal marker was
    read); a line that is not JSON, or a seal marker that does not name the next segment (what `seal` writes: any
    other is a line written by hand, which could send a reader back to read everything again), is skipped and
    logged."""
    end = data.rfind(b"\n") + 1
    out, sealed = [], None
    for line in data[:end].splitlines():
        if not line:
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.error("%s: skipped a line that is not JSON (%d bytes)", path, len(line))
            continue
        if isinstance(record, dict) and SEAL_KEY in record:
            if type(record[SEAL_KEY]) is not int or record[SEAL_KEY] != segment + 1:  # noqa: E721 - not True
                log.error("%s: skipped a seal marker that does not name segment %d (%d bytes)", path, segment + 1,
                          len(line))
                continue
            sealed = segment + 1
        else:
            out.append(record)
    return out, end, sealed


class Tail:
    """Reads the records appended to a journal since the last call (not thread-safe: callers hold a lock).

    Reading the active segment costs one stat when nothing was appended; a sealed segment's last line names the
    next one, and the directory is listed only to find the first segment, after a segment was dropped, or (at most
    every LIST_EVERY_S) in case a crash left a seal without its marker."""

    def __init__(self, journal: AppendLog, after: int = 0):
        self.journal = journal
        self.after = after             # segments up to this one are not read (the served run contains them)
        self.segment = 0               # segment being read (0: none yet)
        self.offset = 0                # bytes of it consumed
        self._listed_at = 0.0
        self._dir_mtime: int | None = None   # the directory's mtime when it was last listed (-1: it was missing)
        self.records_read = 0

    def read(self) -> list[dict[str, Any]]:
        """New records, in the order they were appended."""
        out: list[dict[str, Any]] = []
        if self._quiet():
            return out
        while True:
            nxt = None
            if self.segment:
                records, nxt = self._read_segment()
                out.extend(records)
            if nxt is None:
                nxt = self._listed_next(force=not self.segment)
                if nxt is not None and self.segment:  # a later segment exists: this one is complete, read its rest
                    out.extend(self._read_segment()[0])
            if nxt is None:
                break
            self.segment, self.offset = nxt, 0
        self.records_read += len(out)
        return out

    def _read_segment(self) -> tuple[list[dict[str, Any]], int | None]:
        path = self.journal.path(self.segment)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size <= self.offset:
                    return [], None
                f.seek(self.offset)
                data = f.read(size - self.offset)
        except FileNotFoundError:  # dropped (a published run contains it): the next one present
            return [], self._listed_next(force=True)
        records, used, sealed = _parse(data, path, self.segment)
        self.offset += used
        if sealed is not None and not self._created(sealed):  # `seal` creates it before it writes the marker
            log.error("%s: a seal marker names segment %d, which was never created: not followed", path, sealed)
            sealed = None
        return records, sealed

    def _created(self, segment: int) -> bool:
        """True when `segment` is there, or was and has been dropped (a later one is there)."""
        return self.journal.path(segment).exists() or segment < max(self.journal.segments(), default=0)

    def _dir_state(self) -> int:
        try:
            return os.stat(self.journal.dir).st_mtime_ns
        except FileNotFoundError:
            return -1

    def unread_bytes(self) -> int:
        """Bytes of the journal after what was read: the rest of the segment being read and every later one (a
        listing and a stat per segment, no read; not under the reader's lock: a gauge's worth of accuracy)."""
        segment, offset = self.segment, self.offset
        total = 0
        for s in self.journal.segments():
            if s < segment or s <= self.after:
                continue
            try:
                size = os.stat(self.journal.path(s)).st_size
            except FileNotFoundError:  # dropped meanwhile
                continue
            total += max(0, size - offset) if s == segment else size
        return total

    def lag_records(self) -> int | None:
        """None: a journal's lag is its unread bytes (records are counted only by reading them)."""
        return None

    def quiet(self) -> bool:
        """True when nothing can be new since the last read, by two stats (no open, no listing): a reader that must
        not block (the API's event loop) reads in a thread only when this is False."""
        return self._quiet()

    def _quiet(self) -> bool:
        """Nothing can be new, by two stats (no open, no listing): the directory, where a first or a next segment
        appears, is as it was when last listed (and not so recently changed that a coarse mtime could hide a
        second change), the periodic listing is not due, and the segment being read has not grown."""
        mtime = self._dir_state()
        if mtime != self._dir_mtime or (mtime >= 0 and time.time_ns() - mtime < MTIME_SETTLED_NS):
            return False
        if time.monotonic() - self._listed_at >= LIST_EVERY_S:
            return False
        if not self.segment:
            return True
        try:
            return os.stat(self.journal.path(self.segment)).st_size <= self.offset
        except FileNotFoundError:
            return False

    def _listed_next(self, force: bool) -> int | None:
        now = time.monotonic()
        if not force and now - self._listed_at < LIST_EVERY_S:
            return None
        self._listed_at = now
        self._dir_mtime = self._dir_state()  # before listing: a change while listing makes the next call list again
        later = [s for s in self.journal.segments() if s > max(self.segment, self.after)]
        return later[0] if later else None
