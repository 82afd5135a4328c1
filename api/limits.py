"""Per-key rate limits and daily quotas of the keyed endpoints, enforced by api.guard before a body is read.

Every keyed route belongs to an endpoint group (GROUPS); each (API key, group) has a token bucket that refills at
`per_second` up to `burst`, and, where the group has one, a count of requests per UTC day (`per_day`), all from
`api.rate_limits` (c360.settings.RateLimit). A request over either is answered 429 with `Retry-After` in seconds
(the time to the next token, or to the next UTC midnight), and audited like any other.

A public route that answers a key holder more (KEYED_PUBLIC_GROUPS: `GET /recommendations/{user_id}` with a key uses
the visitor's live events and names their person's match_id) counts the requests that carry a configured key against
its group; requests without one are the reverse proxy's to limit.

Keyed by the key's short hash (api.audit.key_hash): only keys that authenticated get a bucket, so the state is
bounded by the configured keys, one bucket per group each.

In-process, per worker: `c360 serve --workers N` runs N processes that share nothing, and the kernel spreads a
key's connections over them, so the effective limit is between the configured one (a client on one keep-alive
connection stays on one worker) and N times it. Dividing the limits by N instead would hold that one-connection
client to 1/N of them; an exact limit across workers needs a store they share (Redis), which this service does
not run. Callers without a key are the reverse proxy's to limit (per address: deploy/nginx.conf).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from c360.settings import RateLimit

# route path -> endpoint group; every route outside dependencies.PUBLIC_PATHS is in one (tests/api enforce it)
GROUPS: dict[str, str] = {"/customer360/{match_id}": "lookup", "/customers/{match_id}/recommendations": "lookup",
                          "/customers/search": "lookup", "/customers/match": "match", "/events": "events",
                          "/metrics": "metrics", "/review/next": "review", "/review/decisions": "review"}
# public route path -> the group its requests with a configured key count against (without a key: not counted)
KEYED_PUBLIC_GROUPS: dict[str, str] = {"/recommendations/{user_id}": "recommendations"}
DAY_S = 86400


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: `retry_after` whole seconds (at least 1) and a message naming the limit."""

    retry_after: int
    message: str


class RateLimiter:
    """Token buckets and daily counts per (key hash, group); `check` takes one request or refuses it."""

    def __init__(self, limits: Mapping[str, RateLimit], clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.limits = dict(limits)
        self._clock, self._wall = clock, wall
        self._buckets: dict[tuple[str, str], list[float]] = {}   # [tokens, clock of the last refill]
        self._days: dict[tuple[str, str], list[int]] = {}        # [UTC day number, requests that day]

    def check(self, key: str, group: str) -> Refusal | None:
        """None, having counted the request, or the Refusal of a request over the limit (not counted)."""
        limit = self.limits.get(group)
        if limit is None:
            return None
        now = self._clock()
        bucket = self._buckets.setdefault((key, group), [float(limit.burst), now])
        tokens = min(float(limit.burst), bucket[0] + (now - bucket[1]) * limit.per_second)
        bucket[0], bucket[1] = tokens, now
        if tokens < 1:
            wait = math.ceil((1 - tokens) / limit.per_second)
            return Refusal(max(1, wait), f"rate limit of this API key for {group} requests exceeded "
                                         f"({limit.per_second:g}/s, bursts of {limit.burst})")
        if limit.per_day is not None:
            wall = self._wall()
            day = int(wall // DAY_S)
            count = self._days.get((key, group))
            if count is None or count[0] != day:
                count = self._days[(key, group)] = [day, 0]
            if count[1] >= limit.per_day:
                return Refusal(max(1, math.ceil((day + 1) * DAY_S - wall)),
                               f"daily quota of this API key for {group} requests used up ({limit.per_day} a day)")
            count[1] += 1
        bucket[0] = tokens - 1
        return None
