"""The audit trail of customer data: one `c360.api.audit` line per request to a keyed endpoint.

A line names the key by a short hash (never the key), its role, the match ids answered (or how many), whether
PII was shown and the final status, also when the request failed (401, 403, 404, 413, 422, 429, 503; 499 when the
client left before an answer).

In the app, api.guard creates the entry before the body is read (its 401, 413 and 429 are audited too), hands it to
the endpoint through the scope (AUDIT_SCOPE_KEY) and logs it with the status it saw sent; `audit_entry` logs it
itself only where no guard runs.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from .errors import ApiError

audit = logging.getLogger("c360.api.audit")

MAX_LOGGED_IDS = 100  # a broad search logs its count and the first ids, not an unbounded list
AUDIT_SCOPE_KEY = "c360.audit"  # the request's AuditEntry, put in the ASGI scope by api.guard


def key_hash(key: str) -> str:
    """The first 12 hex digits of the key's sha256: tells keys apart in logs without revealing them."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass
class AuditEntry:
    """What one request did with customer data; filled in by auth and the endpoint, logged when it ends."""

    endpoint: str
    key: str | None = None
    role: str | None = None
    match_ids: list[str] = field(default_factory=list)
    pii: bool = False
    status: int = 200

    def answered(self, match_ids: list[str], pii: bool = False) -> None:
        """Record the match ids in the answer and whether their PII was shown unmasked."""
        self.match_ids, self.pii = [str(m) for m in match_ids], pii

    def fields(self) -> dict:
        return {"endpoint": self.endpoint, "key": self.key, "role": self.role,
                "match_ids": self.match_ids[:MAX_LOGGED_IDS], "matches": len(self.match_ids), "pii": self.pii,
                "status": self.status}


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, HTTPException):
        return exc.status_code
    return 500


def log_entry(entry: AuditEntry) -> None:
    """Write the audit line of `entry`."""
    audit.info("customer data access", extra={"fields": entry.fields()})


async def audit_entry(request: Request) -> AsyncIterator[AuditEntry]:
    """A dependency: the request's audit entry, logged once when the request ends, whatever its outcome (by the
    guard, which saw it start, where one runs)."""
    entry = request.scope.get(AUDIT_SCOPE_KEY)
    guarded = entry is not None
    if not guarded:
        route = request.scope.get("route")
        entry = AuditEntry(endpoint=f"{request.method} {getattr(route, 'path', request.url.path)}")
    try:
        yield entry
    except BaseException as exc:
        entry.status = _status_of(exc)
        raise
    finally:
        if not guarded:
            log_entry(entry)
