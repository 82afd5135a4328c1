"""What a real-time event may be: one home for the rules `POST /events` applies at intake and the nightly applies
again to every logged event (a line logged by an older version, or written by hand, is quarantined, never trained on).

An event is `{user_id, item_id, timestamp, event_value, event_id?}`:
- ids: 1-128 characters of `A-Z a-z 0-9 . _ : @ -`, starting with a letter or digit, so no id can start a
  spreadsheet formula (`= + - @`), carry a quote, a comma or a newline into a CSV, or grow without bound;
- timestamp: a strict integer of epoch seconds, not older than `max_age_s` before now and not later than
  `max_skew_s` after it (a client's clock a little ahead is tolerated; a future-dated event would keep a trip open);
- event_value: a finite number in (0, `max_value`] (one event cannot outweigh a crowd of real visitors);
- event_id: optional, the same id rules; with user_id, the idempotency key of a retried request: an event_id is one
  user's (another user's cannot block it), and the log keeps its first copy whatever the item or timestamp of a
  repeat;
- key: written by the API, never sent by a client: the short hash of the API key that posted the event (who to
  hold to account for it, and whose share of the log it takes).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
ID_MAX_LENGTH = 128
_ID = re.compile(ID_PATTERN)

EVENT_FIELDS = ("user_id", "item_id", "timestamp", "event_value", "event_id", "key")
_KEY_HASH = re.compile(r"^[0-9a-f]{12}$")   # api.audit.key_hash
EARLIEST_TIMESTAMP = 946_684_800   # 2000-01-01: the nightly's lower bound for any logged event


@dataclass(frozen=True)
class EventBounds:
    """The plausible range of an event at a given time (RealtimeSettings holds the configured values)."""

    max_age_s: float = 30 * 86400
    max_skew_s: float = 300.0
    max_value: float = 100.0

    def timestamps(self, now: float) -> tuple[int, int]:
        """(earliest, latest) accepted timestamp at `now`."""
        return max(EARLIEST_TIMESTAMP, int(now - self.max_age_s)), int(now + self.max_skew_s)


def valid_id(value: Any) -> bool:
    """True for a string that follows ID_PATTERN."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def event_problem(record: Any, now: float, bounds: EventBounds, earliest: int | None = None) -> str | None:
    """Why `record` is not an acceptable event at `now` ("field: why"), or None when it is. `earliest` overrides the
    age bound (the nightly judges logged events by EARLIEST_TIMESTAMP: they were checked for age when accepted)."""
    if not isinstance(record, dict):
        return "event: not a JSON object"
    extra = sorted(set(record) - set(EVENT_FIELDS))
    if extra:
        return f"{extra[0]}: not a field of an event"
    for field in ("user_id", "item_id"):
        if not valid_id(record.get(field)):
            return f"{field}: 1-{ID_MAX_LENGTH} characters of A-Z a-z 0-9 . _ : @ -, starting with a letter or digit"
    if "event_id" in record and record["event_id"] is not None and not valid_id(record["event_id"]):
        return f"event_id: 1-{ID_MAX_LENGTH} characters of A-Z a-z 0-9 . _ : @ -, starting with a letter or digit"
    if "key" in record and (not isinstance(record["key"], str) or not _KEY_HASH.fullmatch(record["key"])):
        return "key: the 12 hex digits of an API key's hash"
    ts = record.get("timestamp")
    if type(ts) is not int:  # noqa: E721 - bool is an int subclass and must be refused
        return "timestamp: an integer of epoch seconds is required"
    low, high = bounds.timestamps(now)
    if earliest is not None:
        low = earliest
    if not low <= ts <= high:
        return f"timestamp: {ts} is outside the accepted range [{low}, {high}] (epoch seconds)"
    value = record.get("event_value", 1.0)
    if type(value) not in (int, float) or not math.isfinite(value) or not 0 < value <= bounds.max_value:
        return f"event_value: a number greater than 0 and at most {bounds.max_value:g} is required"
    return None
