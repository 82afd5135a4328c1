"""What a line of the customers log may be: one home for the rule the API applies when it reads the log (a bad line
is skipped, alone) and the nightly applies when it seals it (a bad line is quarantined into the run).

A line is one of:
- a commit (POST /customers/match?commit=true): `{id, match_id, new_match, fields, committed_at, match_probability,
  threshold, key}` (the match's probability and the threshold it was decided at, absent from lines of older versions,
  which serving then treats as uncertain; the hash of the API key that committed it), `id` a non-empty string (or an
  integer), `match_id` an integer, `fields` an object;
- a reservation (the nightly): `{reserved_through: match_id}`, an integer: the API gives new customers ids above it.

Anything else (a line written by hand, or by an older version) is neither served nor matched on.
"""

from __future__ import annotations

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
