"""Request dependencies, declared once and used as `Annotated` aliases: settings, the served state, API-key auth,
roles and the audit entry of requests that touch customer data.

Routers that need a key carry `dependencies=[Depends(require_role(...))]`, so an endpoint added to them cannot
forget authentication; `routes_without_auth(app)` lists the routes outside `PUBLIC_PATHS` that have none.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Callable

import fastapi.routing
from fastapi import Depends, FastAPI, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from c360.settings import Settings

from .audit import AuditEntry, audit_entry, key_hash
from .errors import ApiError
from .state import ServedState

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="API key; roles reader, pii, writer or steward")

# writer: reads (masked) and writes (POST /events, POST /customers/match?commit=true); pii: reads unmasked;
# steward: reads (masked) and answers the review queue (GET /review/next, POST /review/decisions)
ROLE_GRANTS: dict[str, frozenset[str]] = {"reader": frozenset({"reader"}), "pii": frozenset({"reader", "pii"}),
                                          "writer": frozenset({"reader", "writer"}),
                                          "steward": frozenset({"reader", "steward"})}

# The HTTP contract's public endpoints: everything else must depend on `authenticated` (tests/api enforce it).
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/version", "/recommendations/{user_id}", "/review",
                          "/attractions/{item_id}/similar", "/attractions/{item_id}/next"})


# Every dependency here is `async def` although none awaits: FastAPI runs a plain `def` dependency in its
# threadpool, one hop per dependency per request, which measured 2.3x fewer requests/s on /recommendations.


async def app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


async def current_state(request: Request) -> ServedState | None:
    """The state to answer this request with, None before the first publish (one atomic reference read)."""
    return request.app.state.served


async def served(request: Request) -> ServedState:
    """The served state; 503 before the first publish (read directly, not through current_state: one dependency
    less on every request of the hot path)."""
    state = request.app.state.served
    if state is None:
        raise ApiError(503, "no published warehouse is loaded yet")
    return state


AppSettings = Annotated[Settings, Depends(app_settings)]
MaybeServed = Annotated[ServedState | None, Depends(current_state)]
Served = Annotated[ServedState, Depends(served)]
Audit = Annotated[AuditEntry, Depends(audit_entry)]
ApiKey = Annotated[str | None, Security(api_key_header)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's short hash (never the key), its role and what that role grants."""

    key_hash: str
    role: str
    grants: frozenset[str]

    def allows(self, role: str) -> bool:
        return role in self.grants


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


def principal_of(key: str, keys: dict[str, str]) -> Principal:
    """The caller holding `key` (stripped, non-empty): 401 when it is not configured."""
    role = role_of(key, keys)
    if role is None:  # an unknown value is not hashed into the log: it may be a mistyped secret of another system
        raise ApiError(401, "invalid API key", headers={"WWW-Authenticate": "APIKey"})
    return Principal(key_hash=key_hash(key), role=role, grants=ROLE_GRANTS[role])


async def authenticated(settings: AppSettings, audit: Audit, key: ApiKey = None) -> Principal:
    """The caller of this request: 401 when the key is missing or unknown. Records the caller in the audit entry."""
    key = (key or "").strip()  # both ends: HTTP strips leading blanks of a header value, clients add trailing ones
    if not key:
        raise ApiError(401, "X-API-Key header required", headers={"WWW-Authenticate": "APIKey"})
    principal = principal_of(key, settings.api_keys)
    audit.key, audit.role = principal.key_hash, principal.role
    return principal


def api_key_header(scope) -> bytes | None:
    """The raw X-API-Key header of an ASGI request (its first, as every reader of it takes), None without one:
    one scan of the raw headers, for the guard and the public hot path."""
    return next((value for name, value in scope["headers"] if name == b"x-api-key"), None)


def optional_caller(request: Request) -> Principal | None:
    """The caller of a public endpoint that shows more to a key holder (a visitor's trip): None without a key,
    401 for a key that is not configured (a client that sends one wants to know it is wrong). One scan of the raw
    headers: it runs on the public hot path."""
    raw = api_key_header(request.scope)
    key = raw.decode("latin-1").strip() if raw else ""
    return principal_of(key, request.app.state.settings.api_keys) if key else None


def require(principal: Principal, role: str) -> None:
    """403 unless the caller's role grants `role` (for checks that depend on a parameter, e.g. reveal_pii)."""
    if not principal.allows(role):
        raise ApiError(403, f"this API key's role does not allow '{role}'")


@cache  # one callable per role, so FastAPI's per-request dependency cache runs it once however often it is used
def require_role(role: str) -> Callable[..., Principal]:
    """A dependency: the authenticated caller, 403 unless its role grants `role`."""

    async def dependency(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        require(principal, role)
        return principal

    dependency.__name__ = f"require_role_{role}"
    return dependency


Reader = Annotated[Principal, Depends(require_role("reader"))]
Writer = Annotated[Principal, Depends(require_role("writer"))]
Steward = Annotated[Principal, Depends(require_role("steward"))]
# Router-level guard of every keyed router: authentication, the reader role and the audit line.
KEY_REQUIRED = [Depends(require_role("reader"))]
# ... of a router whose every route writes
WRITER_REQUIRED = [Depends(require_role("writer"))]
# ... of the review queue's router
STEWARD_REQUIRED = [Depends(require_role("steward"))]


def api_routes(app: FastAPI) -> list:
    """Every API route of `app` as served: with the prefixes and dependencies of the routers that include it."""
    iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if iter_route_contexts is None:  # FastAPI copying routes on include_router: app.routes is already flat
        return [r for r in app.routes if isinstance(r, APIRoute)]
    # newer FastAPI keeps included routers lazily; their effective routes are only seen through route contexts
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def _depends_on(dependant: Dependant, call: Callable) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def routes_without_auth(app: FastAPI, public: frozenset[str] = PUBLIC_PATHS) -> list[str]:
    """`METHODS path` of every API route outside `public` whose dependency tree lacks `authenticated`."""
    return [f"{','.join(sorted(route.methods))} {route.path}" for route in api_routes(app)
            if route.path not in public and not _depends_on(route.dependant, authenticated)]
