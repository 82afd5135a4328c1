"""How far the workers of one host appended to a Kafka topic: a small file beside the log's lock file, so that a GET
on any worker of the host reflects what another worker of it just acknowledged (c360.kafka_log).

The file (`BARRIER_FILE`, 0600 in the log's 0700 directory) holds one record of `WIDTH` bytes: `TOPIC TOPIC_ID OFFSET
CRC32`, padded with spaces. Writers (a worker after the broker acknowledged its append) replace it under an
exclusive flock, in place, only with a higher offset; readers (every keyed request's check, on the event loop) read
it with one pread and no lock. A record that does not parse, fails its checksum (a read torn by a write), names
another topic or another id of the topic (deleted and created again: its offsets started again) counts as nothing.
An offset beyond the end of the topic (a broker restored from a snapshot) is set back to the end by the first reader
that waited for it in vain (`heal`). The file is a hint: whatever goes wrong with it, the log's records are in the
topic and every worker reads them a fetch later.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import threading
import zlib
from pathlib import Path

log = logging.getLogger("c360.kafka_log")

BARRIER_FILE = ".barrier"
WIDTH = 512
MAX_DIGITS = 19   # an offset is a signed 64-bit integer


def encode(topic: str, topic_id: str, offset: int) -> bytes | None:
    """The file's record (None when it would not fit)."""
    body = f"{topic} {topic_id} {offset}"
    line = f"{body} {zlib.crc32(body.encode()):08x}\n".encode()
    return line.ljust(WIDTH) if len(line) <= WIDTH else None


def decode(data: bytes, topic: str, topic_id: str) -> int:
    """The offset a record gives for `topic` with id `topic_id`; 0 for anything else (see the module docstring)."""
    try:
        body, _, crc = data.partition(b"\n")[0].decode("ascii").rpartition(" ")
    except UnicodeDecodeError:
        return 0
    if f"{zlib.crc32(body.encode()):08x}" != crc:
        return 0
    head, _, offset = body.rpartition(" ")
    if head != f"{topic} {topic_id}" or not (offset.isascii() and offset.isdigit() and len(offset) <= MAX_DIGITS):
        return 0
    return int(offset)


class HostBarrier:
    """The file of one topic's log directory (`directory`), for one topic id."""

    def __init__(self, directory: Path, topic: str, topic_id: str):
        self.path, self.topic, self.topic_id = Path(directory) / BARRIER_FILE, topic, topic_id
        self._fd: int | None = None
        self._closed = False
        self._open_lock = threading.Lock()   # never held while anything but open() runs: the event loop takes it

    def read(self) -> int:
        """The offset the host's workers appended through (0: no usable record). One pread; no lock, no wait."""
        fd = self._fd
        if fd is None:
            fd = self._open()
            if fd is None:
                return 0
        try:
            return decode(os.pread(fd, WIDTH, 0), self.topic, self.topic_id)
        except OSError:
            return 0

    def raise_to(self, offset: int) -> None:
        """Record `offset` unless the file holds a higher one. Raises OSError (the caller logs it)."""
        self._update(lambda current: offset > current, offset)

    def heal(self, bad: int, end: int) -> bool:
        """The file held `bad`, which lies beyond the topic's `end`: set it to `end` unless it changed meanwhile."""
        return self._update(lambda current: current == bad, end)

    def close(self) -> None:
        """Close the file; a read racing with this (or after it) reads nothing and opens nothing again."""
        with self._open_lock:
            fd, self._fd, self._closed = self._fd, None, True
        if fd is not None:
            os.close(fd)

    def _open(self) -> int | None:
        with self._open_lock:
            if self._closed:
                return None
            if self._fd is None:
                try:
                    fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                except OSError:
                    return None   # no worker of the host appended yet, or not ours to read
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    return None
                self._fd = fd
            return self._fd

    def _update(self, wanted, offset: int) -> bool:
        record = encode(self.topic, self.topic_id, offset)
        if record is None:
            return False
        os.makedirs(self.path.parent, mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{self.path}: not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not wanted(decode(os.pread(fd, WIDTH, 0), self.topic, self.topic_id)):
                return False
            if os.pwrite(fd, record, 0) != WIDTH:
                raise OSError(f"{self.path}: short write")
            return True
        finally:
            os.close(fd)   # and the lock with it
