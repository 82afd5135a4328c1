"""The real-time parts of a served run: events posted since it was trained (folded into recommendations) and
customer records committed since (in the match index and the graph).

Both come from the warehouse's append-only logs (c360.journal), which every worker tails before it answers, so what
one worker accepted every worker reflects on its next request. A served run reads the segments after those it
contains (runs/<id>/realtime.json); loading a new run starts again from its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from c360.io import read_json_file
from c360.journal import Journal
from c360.layout import RunLayout, Warehouse

log = logging.getLogger("c360.api.live")

RESERVED = "reserved_through"   # a customers-log line written by the nightly (c360.jobs.realtime)


def sealed_through(run: RunLayout, key: str) -> int:
    """The last segment of a log the run contains (0: none, e.g. a run from before real time)."""
    state = read_json_file(run.realtime) if run.realtime.is_file() else {}
    return int(state.get(key) or 0)


@dataclass(frozen=True)
class UserEvents:
    """One user's live events: {ITEM_ID: summed EVENT_VALUE}, how many, and (TIMESTAMP, ITEM_ID) in time order."""

    items: dict[str, float]
    count: int
    visits: list[tuple[int, str]]


class LiveEvents:
    """Events of the events log the served run does not contain, summed per user and item (thread-safe)."""

    def __init__(self, journal: Journal, after: int = 0):
        self.journal = journal
        self._tail = journal.tail(after)
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, float]] = {}
        self._counts: Counter[str] = Counter()
        self._trips: dict[str, list[tuple[int, str]]] = {}
        self.refresh()

    @classmethod
    def of_run(cls, warehouse: Warehouse, run: RunLayout) -> LiveEvents:
        return cls(Journal(warehouse.events_log), sealed_through(run, "events_through"))

    @property
    def applied(self) -> int:
        """Events read so far."""
        return self._tail.records_read

    def refresh(self) -> None:
        """Read what any worker appended since the last call (one stat when nothing was)."""
        with self._lock:
            for e in self._tail.read():
                user, item = str(e["user_id"]), str(e["item_id"])
                items = self._items.setdefault(user, {})
                items[item] = items.get(item, 0.0) + float(e.get("event_value", 1.0))
                self._counts[user] += 1
                self._trips.setdefault(user, []).append((int(e.get("timestamp", 0)), item))

    def of(self, user_id: str) -> UserEvents:
        """The user's live events, after one refresh."""
        self.refresh()
        items = self._items.get(user_id)
        if not items:
            return UserEvents({}, 0, [])
        return UserEvents(dict(items), self._counts[user_id], sorted(self._trips.get(user_id, ())))

    def append(self, events: list[dict[str, Any]]) -> None:
        """Log events durably (returns once fsync'd)."""
        self.journal.append(events)

    def close(self) -> None:
        self.journal.close()


def current_trip(visits: list[tuple[int, str]], gap_minutes: float, now: float) -> list[tuple[int, str]]:
    """The visitor's trip now: of their live events (TIMESTAMP, ITEM_ID) in time order, those after the last gap
    longer than `gap_minutes` (the gap the session model cut its training trips at, not the calendar day: a trip
    past midnight stays one), and only when the last of them is at most `gap_minutes` before `now` (else the
    visitor has left: no trip). Events stamped after `now` (a client's clock ahead) count as now."""
    if not visits:
        return []
    gap = gap_minutes * 60
    if now - visits[-1][0] > gap:
        return []
    start = len(visits) - 1
    while start > 0 and visits[start][0] - visits[start - 1][0] <= gap:
        start -= 1
    return visits[start:]


class CommitConflict(Exception):
    """A record with this id exists already."""


class LiveCustomers:
    """The served run's match index and graph, with the customer records committed since (thread-safe).

    A commit holds the customers log's lock across every process while it reads what others committed, decides,
    allocates a match_id (above every id the run, the log and a running nightly's reservation know) and appends.
    The embedded graph store gets every committed record in memory (replayed from the log when a run is loaded); a
    server store (Gremlin, Neptune) gets it from the worker that committed it, and the log's records again when a
    run is loaded (upserts are idempotent: a nightly that dropped the store before loading loses none)."""

    def __init__(self, matcher, journal: Journal, after: int, connection, embedded: bool):
        self.matcher, self.journal, self.connection, self.embedded = matcher, journal, connection, embedded
        self._tail = journal.tail(after)
        self._lock = threading.RLock()
        self.reserved = 0
        self.sizes: Counter[int] = Counter(matcher.index.match_ids)
        self._pending: list[tuple[list, list]] = []   # graph writes not done yet (store down)
        with self._lock:
            self._apply(self._tail.read(), replay=True)
            self._flush()

    @classmethod
    def of_run(cls, warehouse: Warehouse, run: RunLayout, connection, embedded: bool) -> LiveCustomers:
        """The live customers of a run (InputError when the run has no match output to match against)."""
        from c360.entity_resolution.realtime import RealtimeMatcher

        matcher = RealtimeMatcher.load(run.match)
        return cls(matcher, Journal(warehouse.customers_log), sealed_through(run, "customers_through"), connection,
                   embedded)

    @property
    def committed(self) -> int:
        return self._tail.records_read

    def close(self) -> None:
        self.journal.close()

    def refresh(self) -> None:
        """Read the records any worker committed since the last call."""
        with self._lock:
            self._apply(self._tail.read(), replay=False)
            self._flush()

    def _apply(self, entries: list[dict], replay: bool) -> list[tuple[list, list]]:
        from c360.entity_resolution.realtime import input_record
        from c360.graph.export import record_elements

        writes = []
        for e in entries:
            if RESERVED in e:
                self.reserved = max(self.reserved, int(e[RESERVED]))
                continue
            mid = int(e["match_id"])
            std, _ = self.matcher.standardize(input_record(e["fields"], self.matcher.cfg, str(e["id"])))
            self.matcher.add(std, mid)
            self.sizes[mid] += 1
            if replay or self.embedded:
                writes.append(record_elements({**e["fields"], "id": str(e["id"])}, mid, self.sizes[mid],
                                              new_match=bool(e.get("new_match"))))
        self._pending.extend(writes)
        return writes

    def _flush(self) -> None:
        """Write pending graph elements into the store, if it is up (else on a later call)."""
        if not self._pending:
            return
        store = self.connection.get()
        if store is None:
            return
        vertices = [v for vs, _ in self._pending for v in vs]
        edges = [e for _, es in self._pending for e in es]
        try:
            store.upsert_live(vertices, edges)
        except Exception as exc:  # noqa: BLE001 - retried by the next request
            log.warning("committed customer records not written to the graph yet: %s", exc)
            return
        self._pending.clear()

    def match(self, fields: dict[str, Any], candidates: int, std: dict[str, Any] | None = None):
        """The answer for a record given by role/column names (`std`: already standardized); refreshes first."""
        from c360.entity_resolution.realtime import input_record

        self.refresh()
        return self.matcher.match(input_record(fields, self.matcher.cfg), std=std, candidates=candidates)

    def commit(self, fields: dict[str, Any], record_id: str, candidates: int):
        """(answer, match_id, new_match, in_graph): match the record against everything committed so far, give it
        the match_id of the customer it matches or a new one, log it durably, index it and put it in the graph
        (in_graph False: the store is down, the write is retried by later requests)."""
        from c360.entity_resolution.realtime import input_record
        from c360.graph.export import record_elements

        record = input_record(fields, self.matcher.cfg, record_id)
        with self.journal.exclusive() as writer, self._lock:
            self._apply(self._tail.read(), replay=False)
            if self.matcher.knows(record_id):
                raise CommitConflict(record_id)
            answer = self.matcher.match(record, candidates=candidates)
            new = answer.match_id is None
            mid = max(self.matcher.max_match_id, self.reserved) + 1 if new else answer.match_id
            writer.append([{"id": record_id, "match_id": mid, "new_match": new, "fields": fields,
                            "committed_at": round(time.time(), 3)}])
            self._apply(self._tail.read(), replay=False)  # exactly the line just written: the lock is ours
        with self._lock:
            if not self.embedded:  # a server store: written now by this worker, so every worker reads it at once
                self._pending.append(record_elements({**fields, "id": record_id}, mid, self.sizes[mid],
                                                     new_match=new))
            self._flush()
            in_graph = not self._pending
        return answer, mid, new, in_graph
