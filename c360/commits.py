"""What a line of the customers log may be: one home for the rule the API applies when it reads the log (a bad line
is skipped, alone) and the nightly applies when it seals it (a bad line is quarantined into the run).

A line is one of:
- a commit (POST /customers/match?commit=true): `{id, match_id, new_match, fields, committed_at, match_probability,
  threshold, key, line}` (the match's probability and the threshold it was decided at, absent from lines of older
  versions, which serving then treats as uncertain; the hash of the API key that committed it; `line`, a nonce by
  which its writer knows whether its line won: CommitOrder), `id` a non-empty string (or an integer), `match_id` an
  integer, `fields` an object;
- a reservation: `{reserved_through: match_id}`, an integer: the API gives new customers ids above it (the nightly's),
  or, with a `line` nonce, the one id a steward's split took.

Lines are decided in log order by `CommitOrder` (first line of a record id wins; a new customer's id is free).

Anything else (a line written by hand, or by an older version) is neither served nor matched on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RESERVED = "reserved_through"


def commit_problem(record: Any) -> str | None:
    """Why a customers-log line is neither a commit nor a reservation ("field: why"), or None when it is one."""
    if not isinstance(record, dict):
        return "record: not a JSON object"
    if RESERVED in record:
        return None if type(record[RESERVED]) is int else f"{RESERVED}: an integer is required"  # noqa: E721
    if type(record.get("match_id")) is not int:  # noqa: E721 - bool is an int subclass and must be refused
        return "match_id: an integer is required"
    if not isinstance(record.get("id"), (str, int)) or isinstance(record.get("id"), bool) or not str(record["id"]):
        return "id: a string is required"
    if not isinstance(record.get("fields"), dict):
        return "fields: an object is required"
    return None


class CommitOrder:
    """The rule every reader of the customers log applies to its lines in log order, so that writers that did not
    hold one lock agree (two API hosts on one Kafka topic each commit under their own host's lock file): the first
    line of a record id is its commit (a later one is no commit: its writer answers 409), and a new customer whose
    match_id an earlier line or reservation holds already gets the next free one. Readers that start from the same
    published run (`issued`: the highest match_id it knows; `known`: whether it holds a record id) and read the same
    lines decide the same: each API worker (api.live_updates) and the nightly (jobs.live_intake)."""

    def __init__(self, issued: int, known: Callable[[str], bool]):
        self.issued, self.reserved, self._known = int(issued), 0, known
        self._seen: set[str] = set()
        self.reservations: dict[str, int] = {}

    def decide(self, record: dict[str, Any]) -> int | None:
        """The match_id of a (checked) line's record (of a reservation: what it reserves through), or None: a record
        id already committed. A reservation with a `line` nonce is one id a steward's split took: free, as a new
        customer's (`reservations` maps the nonce to it, so its writer learns it)."""
        if RESERVED in record:
            value = int(record[RESERVED])
            if record.get("line") is not None:
                top = max(self.issued, self.reserved)
                value = value if value > top else top + 1
                self.reservations[str(record["line"])] = value
            self.reserved = max(self.reserved, value)
            return value
        rid = str(record["id"])
        if rid in self._seen or self._known(rid):
            return None
        self._seen.add(rid)
        mid = int(record["match_id"])
        top = max(self.issued, self.reserved)
        if record.get("new_match") and mid <= top:   # another writer's new customer took it first
            mid = top + 1
        self.issued = max(self.issued, mid)
        return mid
