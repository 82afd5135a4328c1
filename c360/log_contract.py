"""The contract every real-time log keeps (events, committed customer records, and any later one), whatever holds
them: the file journal under the warehouse (c360.append_log, the embedded default) or Kafka topics (c360.kafka_log),
as `realtime.log` says (`file`, or `kafka://HOST:PORT/TOPIC`; c360.realtime_log opens them).

A log's position is one integer; a run contains everything up to a position and readers start after it:

- `append(records)`: durable when it returns (fsync'd; on Kafka acknowledged by every in-sync replica), else an
  OSError (`LogUnavailable`): nothing is acknowledged that is not durable.
- `exclusive()`: read, decide and append as one step (the API's commits allocate match_ids under it); its Writer
  appends and seals.
- `tail(after)`: an API worker's reader of everything after position `after` (read / quiet / unread_bytes /
  lag_records / records_read). What any worker of this host appended is read at the tail's next read, and the tail
  is not quiet until it has read it (a POST, then a GET on any worker of the host, sees the event; on Kafka the read
  waits at most the log's timeout for its consumer, and not again for the same offset).
- `seal()`: the nightly's end position; `read_through(through, after)` everything between two positions (fixed once
  sealed); `drop_through(through)` frees what a published run contains.

On the file journal a position is a sealed segment's number (segments after `after`, up to `through`); on Kafka it
is an offset of the topic's one partition (records from `after`, before `through`: `seal` returns the high
watermark). Each run records its positions together with the log's name (`position_of`): a run recorded on another
log contains nothing of this one.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Mapping, Protocol
from urllib.parse import urlparse

from c360.errors import InputError

log = logging.getLogger("c360.realtime_log")

FILE = "file"   # the embedded default: append-only files under the warehouse
KAFKA_USAGE = "file or kafka://HOST:PORT/TOPIC"


class LogUnavailable(OSError):
    """The log cannot be written or read now (the broker is down, the disk full): nothing was acknowledged."""


class LogWriter(Protocol):
    """What `exclusive()` yields: appends (durable on return) and seals while the caller holds the log."""

    def append(self, records: list[dict[str, Any]]) -> None: ...

    def seal(self) -> int: ...


class LogTail(Protocol):
    """An API worker's reader of a log (not thread-safe: its owner holds a lock)."""

    records_read: int

    def read(self) -> list[dict[str, Any]]: ...

    def quiet(self) -> bool: ...

    def unread_bytes(self) -> int: ...

    def lag_records(self) -> int | None: ...   # records of the log after what was read (None: not known)


class RealtimeLog(ABC):
    """An append-only log of JSON records (see the module docstring for the contract every backend keeps)."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Where the log lives (a directory, a topic URL): in log lines and recorded beside the run's positions."""

    @abstractmethod
    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records durably; LogUnavailable (an OSError) when they are not."""

    @abstractmethod
    def exclusive(self) -> contextlib.AbstractContextManager[LogWriter]:
        """Hold the log against the other writers (of every process) and write through the returned writer."""

    @abstractmethod
    def seal(self) -> int:
        """The position everything before is fixed up to (what a nightly reads and records)."""

    @abstractmethod
    def read_through(self, through: int, after: int = 0) -> list[dict[str, Any]]:
        """Every record after position `after` up to `through`."""

    @abstractmethod
    def drop_through(self, through: int) -> list[int]:
        """Free what a published run contains (up to `through`); returns what was freed (segments, an offset)."""

    @abstractmethod
    def tail(self, after: int = 0) -> LogTail:
        """A reader of the records after position `after`, from the first one on."""

    @abstractmethod
    def close(self) -> None:
        """Release what the log holds open (a lock file, a producer, consumers); a later use opens it again."""


@dataclass(frozen=True)
class LogSpec:
    """A parsed `realtime.log`: `file`, or Kafka's bootstrap `host:port` and the events topic."""

    text: str
    bootstrap: str | None = None
    topic: str | None = None

    @property
    def is_kafka(self) -> bool:
        return self.bootstrap is not None

    def topic_of(self, log_name: str) -> str:
        """The topic of one log: the events log is TOPIC itself, every other one TOPIC-<name> (TOPIC-customers)."""
        return self.topic if log_name == "events" else f"{self.topic}-{log_name}"


def parse_log_spec(spec: str | None, what: str = "realtime.log") -> LogSpec:
    """Parse `file` (or empty) or `kafka://HOST:PORT/TOPIC`; InputError naming `what` and the spec otherwise."""
    text = (spec or FILE).strip()
    if text == FILE:
        return LogSpec(FILE)
    u = urlparse(text)
    try:
        port = u.port
    except ValueError:
        raise InputError(f"{what} {text!r}: the port must be a number from 0 to 65535") from None
    topic = u.path.strip("/")
    if u.scheme != "kafka" or not u.hostname or not port or not topic or "/" in topic:
        raise InputError(f"{what} {text!r}: expected {KAFKA_USAGE}")
    if not all(c.isalnum() or c in "._-" for c in topic) or len(topic) > 200:
        raise InputError(f"{what} {text!r}: a topic is letters, digits, '.', '_' and '-' (at most 200)")
    return LogSpec(text, bootstrap=f"{u.hostname}:{port}", topic=topic)


def position_of(state: Mapping[str, Any], key: str, log_: RealtimeLog) -> int:
    """The position of `log_` a run's real-time state (runs/<id>/realtime.json) records under `key` (0: none). A run
    that recorded it for another log (`<key>_log`; before that field existed: the file journal) contains nothing of
    this one, and says so in the log."""
    position = int(state.get(key) or 0)
    recorded = state.get(f"{key}_log", None)
    if position and _kind(recorded) != _kind(log_.name):
        log.warning("the run's %s (%d) is a position of %s, not of %s: reading %s from its start", key, position,
                    recorded or "the file journal", log_.name, log_.name)
        return 0
    return position


def _kind(name: str | None) -> str:
    """The log a recorded name is of: the file journal (whatever its directory: warehouses are copied and moved), or
    one Kafka topic (whatever broker address reaches it)."""
    if name and name.startswith("kafka://"):
        return "kafka:" + urlparse(name).path
    return FILE

