"""The real-time parts of a served run: events posted since it was trained (folded into recommendations) and
customer records committed since (in the match index and the graph).

Both come from the real-time logs (c360.realtime_log: files under the warehouse, or Kafka topics), which every worker
tails before it answers, so what one worker accepted every worker (of every host, on Kafka) reflects on its next
request. A served run reads the log after the position it contains (runs/<id>/realtime.json); loading a new run
starts again from its own.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from c360.commits import RESERVED, CommitOrder, commit_problem
from c360.events import EARLIEST_TIMESTAMP, event_problem
from c360.graph.schema import ACCOUNT_SOURCE  # the `source` of a committed app account (USER_ID = its id)
from c360.io import read_json_file
from c360.layout import RunLayout, Warehouse
from c360.realtime_log import RealtimeLog, position_of, warehouse_log
from c360.settings import RealtimeSettings

from .metrics import count_commit, count_match

log = logging.getLogger("c360.api.live_updates")


def sealed_through(run: RunLayout, key: str, journal: RealtimeLog | None = None) -> int:
    """The position of a log the run contains (0: none, e.g. a run from before real time); given the log, 0 as well
    when the run recorded a position of another one (c360.realtime_log.position_of)."""
    state = read_json_file(run.realtime) if run.realtime.is_file() else {}
    return int(state.get(key) or 0) if journal is None else position_of(state, key, journal)


@dataclass(frozen=True)
class UserEvents:
    """One user's live events: {ITEM_ID: summed EVENT_VALUE}, how many, and their latest (TIMESTAMP, ITEM_ID) in
    time order (at most `trip_visits`: what the current trip needs)."""

    items: dict[str, float]
    count: int
    visits: list[tuple[int, str]]


class _User:
    """What a worker keeps of one user: bounded whatever was posted (items by the catalogue, visits by N)."""

    __slots__ = ("items", "count", "visits", "window_start", "window_count")

    def __init__(self):
        self.items: dict[str, float] = {}
        self.count = 0
        self.visits: list[tuple[int, str]] = []
        self.window_start = 0.0   # monotonic time the user's quota window began
        self.window_count = 0     # events read in it


@dataclass(frozen=True)
class Admission:
    """What POST /events may log: the records (duplicates left out), how many were duplicates, or why nothing may
    be logged (status, message, Retry-After seconds); the hash of the API key they count against."""

    records: list[dict[str, Any]]
    duplicates: int = 0
    refused: tuple[int, str, int | None] | None = None
    key: str | None = None


class _LogFollower:
    """A worker's reader of one append log: `_tail` (its position) under `_lock`."""

    _lock: threading.RLock
    _tail: Any

    def behind(self) -> bool:
        """True when the log may hold lines this worker has not read (or a reader is busy): the caller reads them in a
        thread (`refresh`) before it answers. Two stats, never a parse."""
        if not self._lock.acquire(blocking=False):
            return True
        try:
            return not self._tail.quiet()
        finally:
            self._lock.release()

    def unread_bytes(self) -> int:
        """Bytes of the log this worker has not read yet (api.metrics; blocking: a listing and stats)."""
        return self._tail.unread_bytes()

    def lag_records(self) -> int | None:
        """Records of the log after what this worker read, counted on the broker (api.metrics; None on the file
        journal; blocking: at most a bounded broker query)."""
        return self._tail.lag_records()


class LiveEvents(_LogFollower):
    """Events of the events log the served run does not contain, per user (thread-safe).

    Memory is bounded whatever is posted: per user the summed values per item (items of the catalogue only), a
    count, the latest `trip_visits` visits in time order and a quota window; the (user_id, event_id) keys of the log
    (idempotency: an event_id is one user's, so no writer can block another user's events by taking their ids);
    intake refuses events beyond `max_pending_events` since the run (`admit`). Reading the log is blocking: the
    reloader's watch loop and requests do it in a thread (`behind` tells a request whether it must)."""

    def __init__(self, journal: RealtimeLog, after: int = 0, settings: RealtimeSettings | None = None,
                 catalogue: frozenset[str] | None = None):
        self.journal = journal
        self.settings = settings or RealtimeSettings()
        self._bounds = self.settings.bounds()
        self._catalogue = {i: i for i in catalogue} if catalogue is not None else None   # one string per item
        self._tail = journal.tail(after)
        self._lock = threading.Lock()
        self._users: dict[str, _User] = {}
        self._event_ids: set[tuple[str, str]] = set()   # (user_id, event_id) of the log
        self._inflight = 0          # events admitted by this worker, not yet in the log
        # ... of each user, against their quota: from the append until `logged`, a reader may count them in the log
        # as well, which refuses too early for that moment, never too late
        self._inflight_users: Counter[str] = Counter()
        self._pending_keys: Counter[str] = Counter()    # events of the log per API key hash (the `key` the API writes)
        self._inflight_keys: Counter[str] = Counter()   # ... admitted by this worker, not yet in the log
        self.skipped = 0            # lines of the log that are not acceptable events (the nightly quarantines them)
        self.duplicates = 0         # lines whose user's event_id an earlier line has (two workers raced)
        self.refresh()

    @classmethod
    def of_run(cls, warehouse: Warehouse, run: RunLayout, settings: RealtimeSettings | None = None,
               catalogue: frozenset[str] | None = None) -> LiveEvents:
        journal = warehouse_log(warehouse, "events", settings)
        return cls(journal, sealed_through(run, "events_through", journal), settings, catalogue)

    @property
    def applied(self) -> int:
        """Lines of the log read so far (events since the published run: what `max_pending_events` bounds)."""
        return self._tail.records_read

    @property
    def users(self) -> int:
        return len(self._users)

    def refresh(self) -> None:
        """Read what any worker appended since the last call (one stat when nothing was). Blocking: off the loop."""
        with self._lock:
            self._read()

    def _read(self) -> None:
        now, clock = time.time(), time.monotonic()
        for e in self._tail.read():
            if event_problem(e, now, self._bounds, earliest=EARLIEST_TIMESTAMP) is not None:
                self.skipped += 1
                continue
            key = _idempotency_key(e)
            if key is not None:
                if key in self._event_ids:
                    self.duplicates += 1
                    continue
                self._event_ids.add(key)
            self._apply(e, clock)

    def _apply(self, e: dict[str, Any], clock: float) -> None:
        user_id, item = e["user_id"], e["item_id"]
        if "key" in e:
            self._pending_keys[e["key"]] += 1
        if self._catalogue is not None:
            item = self._catalogue.get(item)
            if item is None:   # an attraction of another run: nothing serving can score
                self.skipped += 1
                return
        user = self._users.get(user_id)
        if user is None:
            user = self._users[user_id] = _User()
        user.items[item] = user.items.get(item, 0.0) + float(e.get("event_value", 1.0))
        user.count += 1
        if clock - user.window_start >= self.settings.user_window_s:
            user.window_start, user.window_count = clock, 0
        user.window_count += 1
        visit, visits = (e["timestamp"], item), user.visits
        if not visits or visit >= visits[-1]:
            visits.append(visit)
        else:  # posted late (a retry, a phone back online): in its place
            bisect.insort(visits, visit)
        if len(visits) > self.settings.trip_visits:
            del visits[0]

    def of(self, user_id: str) -> UserEvents:
        """The user's live events as read so far (call `refresh` first, in a thread, when `behind`). Takes no lock, so
        the event loop never waits for a reader: copying a dict of str keys and a list is one step under the GIL."""
        user = self._users.get(user_id)
        if user is None:
            return UserEvents({}, 0, [])
        return UserEvents(dict(user.items), user.count, list(user.visits))

    def admit(self, records: list[dict[str, Any]], api_key: str | None = None) -> Admission:
        """Read the log, then decide what of `records` (valid events) may be logged: an event whose (user_id,
        event_id) the log or this request has already is a duplicate (skipped, not refused; the first copy is kept,
        whatever the item or timestamp of the others); refused whole when the log is full (`max_pending_events` since
        the run: 507) or a user would exceed `max_user_events` in `user_window_s` (429), counting their events in the
        log and those admitted for other requests and not yet logged. Admitted events count as pending until
        `logged` is called. `api_key`: the hash of the key posting them, refused (507) beyond `max_pending_per_key`
        of its events since the run. Blocking: off the loop."""
        s = self.settings
        with self._lock:
            self._read()
            fresh, seen = [], set()
            for r in records:
                key = _idempotency_key(r)
                if key is not None:
                    if key in self._event_ids or key in seen:
                        continue
                    seen.add(key)
                fresh.append(r)
            duplicates = len(records) - len(fresh)
            if self.applied + self._inflight + len(fresh) > s.max_pending_events:
                return Admission([], duplicates, (507, f"the events log is full until the next nightly "
                                                      f"({s.max_pending_events} events since run)", None))
            if api_key is not None and (self._pending_keys[api_key] + self._inflight_keys[api_key] + len(fresh)
                                        > s.max_pending_per_key):
                return Admission([], duplicates, (507, f"this API key's share of the events log is full until the "
                                                      f"next nightly ({s.max_pending_per_key} events since run)",
                                                  None))
            clock = time.monotonic()
            per_user = Counter(r["user_id"] for r in fresh)
            for user_id, n in per_user.items():
                user = self._users.get(user_id)
                if user is None or clock - user.window_start >= s.user_window_s:
                    used, retry = 0, s.user_window_s
                else:
                    used, retry = user.window_count, s.user_window_s - (clock - user.window_start)
                used += self._inflight_users[user_id]
                if used + n > s.max_user_events:
                    return Admission([], duplicates, (429, f"user_id {user_id!r}: at most {s.max_user_events} events "
                                                           f"per {s.user_window_s:g} s", max(1, math.ceil(retry))))
            self._inflight += len(fresh)
            self._inflight_users.update(per_user)
            if api_key is not None:
                self._inflight_keys[api_key] += len(fresh)
            return Admission(fresh, duplicates, None, api_key)

    def logged(self, admission: Admission) -> None:
        """The admitted events are in the log (the next read counts them) or failed to be: no longer counted as
        pending here, nor against their users."""
        with self._lock:  # Counter's -= keeps positive counts only: a user or key with nothing in flight goes
            self._inflight -= len(admission.records)
            self._inflight_users -= Counter(r["user_id"] for r in admission.records)
            if admission.key is not None:
                self._inflight_keys -= Counter({admission.key: len(admission.records)})

    def append(self, events: list[dict[str, Any]]) -> None:
        """Log events durably (returns once fsync'd)."""
        self.journal.append(events)

    def close(self) -> None:
        self.journal.close()


def _idempotency_key(event: dict[str, Any]) -> tuple[str, str] | None:
    """(user_id, event_id) of an event that has an event_id: ids are the user's, not one namespace of all writers."""
    event_id = event.get("event_id")
    return None if event_id is None else (event["user_id"], event_id)


class CommitConflict(Exception):
    """A record with this id exists already."""


class LiveCustomers(_LogFollower):
    """The served run's match index and graph, with the customer records committed since (thread-safe).

    A commit holds the customers log's lock across every process while it reads what others committed, decides,
    allocates a match_id (above every id the run, the log and a running nightly's reservation know) and appends.
    The embedded graph store gets every committed record in memory (replayed from the log when a run is loaded); a
    server store (Gremlin, Neptune) gets it from the worker that committed it, and the log's records again when a
    run is loaded (upserts are idempotent: a nightly that dropped the store before loading loses none). A line of the
    log that is no commit (c360.commits: written by hand, or by an older version) is skipped alone, logged by its
    problem and counted in `skipped`; the nightly quarantines it.

    `on_account(account_id, match_id, match_probability, threshold)` is told of every committed app account (a
    record whose `source` is the accounts' line, ACCOUNT_SOURCE), replayed ones included, with the probability its
    match had and the threshold it was decided at (each None on a line of an older version): serving answers it from
    its person until the next nightly when that match is certain (c360.recsys.people.People.join).

    `follow(match_id)`: the id a logged match_id has in the served run (a record committed into an id the run then
    merged, while the nightly ran, joins the survivor: c360.entity_resolution.id_changes); None: as logged."""

    def __init__(self, matcher, journal: RealtimeLog, after: int, connection, embedded: bool,
                 on_account: Callable[[str, int, Any, Any], Any] | None = None,
                 account_match_ids: Iterable[int] = (), follow: Callable[[int], int] | None = None):
        self.matcher, self.journal, self.connection, self.embedded = matcher, journal, connection, embedded
        self.on_account, self.follow = on_account, follow
        self._tail = journal.tail(after)
        self._lock = threading.RLock()
        self.skipped = 0            # lines of the log that are no commit (the nightly quarantines them)
        self.sizes: Counter[int] = Counter(matcher.index.match_ids)   # every record the matcher holds, per match
        self.accounts: Counter[int] = Counter(account_match_ids)       # of them, the park accounts'

        self._pending: list[tuple[list, list]] = []   # graph writes not done yet (store down)
        # the lines' order decides between writers that hold no common lock (hosts on one Kafka topic)
        self.order = CommitOrder(matcher.max_match_id, matcher.knows)
        self._won: dict[str, str | None] = {}          # record id -> the `line` nonce of the line that committed it
        with self._lock:
            self._apply(self._tail.read(), replay=True)
            self._flush()

    @classmethod
    def of_run(cls, warehouse: Warehouse, run: RunLayout, connection, embedded: bool,
               settings: RealtimeSettings | None = None,
               on_account: Callable[[str, int, Any, Any], Any] | None = None,
               follow: Callable[[int], int] | None = None) -> LiveCustomers:
        """The live customers of a run (InputError when the run has no match output to match against)."""
        from c360.entity_resolution.online import RealtimeMatcher
        from c360.graph.export import account_match_ids as account_match_ids_of

        matcher = RealtimeMatcher.load(run.match, max_block_size=(settings or RealtimeSettings()).max_block_size)
        journal = warehouse_log(warehouse, "customers", settings)
        return cls(matcher, journal, sealed_through(run, "customers_through", journal), connection,
                   embedded, on_account, account_match_ids_of(run.match.matched), follow)

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
        from c360.entity_resolution.online import input_record

        writes = []
        for e in entries:
            problem = commit_problem(e)
            if problem is not None:  # the problem, never the line: it may hold an SSN
                self.skipped += 1
                log.error("%s: skipped a line that is no commit (%s)", self.journal.name, problem)
                continue
            decided = self.order.decide(e)
            if RESERVED in e:   # the order keeps what it reserves through
                continue
            if decided is None:   # a record id an earlier line committed (another host's, at the same moment)
                log.info("%s: a second commit of one record id skipped (the first line wins)", self.journal.name)
                continue
            self._won[str(e["id"])] = e.get("line")
            mid = decided if self.follow is None else self.follow(decided)
            std, _ = self.matcher.standardize(input_record(e["fields"], self.matcher.cfg, str(e["id"])))
            self.matcher.add(std, mid)
            self.sizes[mid] += 1
            account = e["fields"].get("source") == ACCOUNT_SOURCE
            self.accounts[mid] += account
            if self.on_account is not None and account:
                self.on_account(str(e["id"]), mid, e.get("match_probability"), e.get("threshold"))
            if replay or self.embedded:
                writes.append(self._elements({**e["fields"], "id": str(e["id"])}, mid, bool(e.get("new_match"))))
        self._pending.extend(writes)
        return writes

    def _elements(self, record: dict, mid: int, new_match: bool):
        """The graph elements of a committed record, its match's counts as they are now."""
        from c360.graph.export import record_elements

        return record_elements(record, mid, self.sizes[mid] - self.accounts[mid], new_match=new_match,
                               accounts=self.accounts[mid])

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

    def match(self, fields: dict[str, Any], candidates: int, std: dict[str, Any] | None = None,
              exact_fields: Collection[str] = ()):
        """The answer for a record given by role/column names (`std`: already standardized); refreshes first.
        `exact_fields`: see RealtimeMatcher.match (for callers who may not see those fields)."""
        from c360.entity_resolution.online import input_record

        self.refresh()
        answer = self.matcher.match(input_record(fields, self.matcher.cfg), std=std, candidates=candidates,
                                    exact_fields=exact_fields)
        count_match(answer.match_id is not None)
        return answer

    def reserve(self) -> int:
        """A new match_id for a part a steward split off: logged as a reservation under the log's lock, so no
        commit of any worker, and no cluster of a nightly sealing the log later, is given it."""
        with self.journal.exclusive() as writer, self._lock:
            self._apply(self._tail.read(), replay=False)
            mid, line = max(self.matcher.max_match_id, self.order.reserved) + 1, uuid.uuid4().hex
            writer.append([{RESERVED: mid, "line": line}])
            self._apply(self._tail.read(), replay=False)   # another host's reservation first: the next free id
        return self.order.reservations[line]

    def commit(self, fields: dict[str, Any], record_id: str, candidates: int, exact_fields: Collection[str] = (),
               key: str | None = None):
        """(answer, match_id, new_match, in_graph): match the record against everything committed so far, give it
        the match_id of the customer it matches or a new one, log it durably (with the match's probability and
        threshold, and `key`: the hash of the API key that committed it, who joined which record to whom), index it
        and put it in the graph (in_graph False: the store is down, the write is retried by later requests)."""
        from c360.entity_resolution.online import input_record

        record = input_record(fields, self.matcher.cfg, record_id)
        with self.journal.exclusive() as writer, self._lock:
            self._apply(self._tail.read(), replay=False)
            if self.matcher.knows(record_id):
                raise CommitConflict(record_id)
            answer = self.matcher.match(record, candidates=candidates, exact_fields=exact_fields)
            new = answer.match_id is None
            mid = max(self.matcher.max_match_id, self.order.reserved) + 1 if new else answer.match_id
            line = uuid.uuid4().hex
            writer.append([{"id": record_id, "match_id": mid, "new_match": new, "fields": fields,
                            "committed_at": round(time.time(), 3),
                            "match_probability": float(answer.match_probability),
                            "threshold": float(self.matcher.threshold), "line": line,
                            **({"key": key} if key else {})}])
            # the line just written, and on a shared topic any other host's before it: the log's order decides
            self._apply(self._tail.read(), replay=False)
            if self._won.get(record_id) != line:
                raise CommitConflict(record_id)
            row = self.matcher.index.row_of[record_id]
            mid = int(self.matcher.index.match_ids[row])
        with self._lock:
            if not self.embedded:  # a server store: written now by this worker, so every worker reads it at once
                self._pending.append(self._elements({**fields, "id": record_id}, mid, new))
            self._flush()
            in_graph = not self._pending
        count_commit(new)
        return answer, mid, new, in_graph

