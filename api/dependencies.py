"""Request dependencies: the served state (read once per request), API-key auth and roles."""

from __future__ import annotations

import hmac

from fastapi import Request
from fastapi.security import APIKeyHeader

from .errors import ApiError
from .state import ServedState

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key; roles reader or pii")

ROLE_GRANTS = {"reader": {"reader"}, "pii": {"reader", "pii"}}


def served(request: Request) -> ServedState:
    """The state to answer this request with (one atomic reference read); 503 before the first publish."""
    state = request.app.state.served
    if state is None:
        raise ApiError(503, "no published warehouse is loaded yet")
    return state


def role_of(key: str | None, keys: dict[str, str]) -> str | None:
    """The role of `key`, comparing against every configured key in constant time."""
    if not key:
        return None
    candidate = key.encode()
    found = None
    for known, role in keys.items():
        if hmac.compare_digest(candidate, known.encode()):
            found = role
    return found


def authenticate(request: Request, key: str | None) -> set[str]:
    """The grants of the request's key: 401 when missing or unknown."""
    if not key:
        raise ApiError(401, "X-API-Key header required", headers={"WWW-Authenticate": "APIKey"})
    role = role_of(key, request.app.state.api_keys)
    if role is None:
        raise ApiError(401, "invalid API key", headers={"WWW-Authenticate": "APIKey"})
    return ROLE_GRANTS[role]


def require(grants: set[str], role: str) -> None:
    """403 unless the key's role grants `role`."""
    if role not in grants:
        raise ApiError(403, f"this API key's role does not allow '{role}'")
