"""What the app checks before a request body is read: the API key of a keyed route (401), the role its
dependencies require (403), the key's rate limits (429) and the body's size (413); and the one audit line of every
keyed request, whatever its outcome.

FastAPI reads and parses a body before it runs any dependency, so the key check of the dependencies alone came after
a 63 MB unauthenticated POST /events had been read and parsed (a worker grew from 472 to 1,952 MB). `RequestGuard`
is a pure ASGI middleware (like api.access_log) that:

- for a route outside dependencies.PUBLIC_PATHS: authenticates the X-API-Key header with the dependency's own
  function (`authenticated`; 401 without reading the body), checks the roles the route's dependencies require
  (`require_role`, found once in the routes' dependency trees; 403 with the dependency's own message, so a reader's
  garbage to POST /events is refused unread, not parsed into a 422), then takes one request from the key's rate
  limits (api.limits; 429 with Retry-After);
- for a public route that answers a key holder more (api.limits.KEYED_PUBLIC_GROUPS) requested with a configured
  key: takes one request from that key's limits of the route's group (429 with Retry-After, audited); without a key,
  or with one that is not configured (the route's own 401), nothing is counted;
- for every request: answers 413 to a Content-Length over `api.max_body_bytes` without calling the app, and makes
  the app's read of a body that streams past it raise a 413 (an HTTPException, which FastAPI lets through its body
  parsing); a 413 closes the connection rather than drain the rest;
- for a keyed route: puts the request's AuditEntry in the scope, where api.audit.audit_entry hands it to the
  endpoint, and logs it when the request ends with the status actually sent (499: the client left first).

The dependencies still run in the app (they are the contract tests/api enforce); a role an endpoint checks itself
after reading the body (`require`, e.g. the writer role of POST /customers/match?commit=true) stays there. A request
refused here before its body leaves the unread body to uvicorn, which discards it as it arrives until the body
deadline (api.server) closes the connection; the client still reads its 401 or 429.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException

from c360.settings import Settings

from .audit import AUDIT_SCOPE_KEY, AuditEntry, key_hash, log_entry
from .dependencies import (
    PUBLIC_PATHS,
    ROLE_GRANTS,
    api_key_header,
    api_routes,
    authenticated,
    require,
    require_role,
    role_of,
)
from .errors import ApiError, error_response
from .limits import GROUPS, KEYED_PUBLIC_GROUPS, RateLimiter, Refusal
from .metrics import ROUTE_KEY
from .schemas import Error

_CLOSE = {"Connection": "close"}
# what the guard may answer on a keyed route besides its 401, for the keyed routers' OpenAPI
GUARD_RESPONSES: dict[int | str, dict] = {
    413: {"model": Error, "description": "Request body larger than api.max_body_bytes"},
    429: {"model": Error, "description": "Over this key's rate limit or daily quota for the endpoint group",
          "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}},
}


def _too_large(limit: int) -> str:
    return f"request body larger than {limit} bytes"


def _required_roles(dependant) -> tuple[str, ...]:
    """The roles a route's dependency tree requires through `require_role` (one callable per role)."""
    calls = [(require_role(role), role) for role in ROLE_GRANTS]
    found: list[str] = []
    todo = list(dependant.dependencies)
    while todo:
        dep = todo.pop()
        found += [role for call, role in calls if dep.call is call and role not in found]
        todo += dep.dependencies
    return tuple(sorted(found))


class _Exchange:
    """One request's receive and send: counts the body against the cap, notes the status sent and a disconnect."""

    __slots__ = ("_receive", "_send", "limit", "received", "status", "left")

    def __init__(self, receive, send, limit: int) -> None:
        self._receive, self._send, self.limit = receive, send, limit
        self.received = 0
        self.status: int | None = None
        self.left = False

    async def receive(self):
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise HTTPException(413, _too_large(self.limit), headers=_CLOSE)
        elif message["type"] == "http.disconnect":
            self.left = True
        return message

    async def send(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)

    @property
    def outcome(self) -> int:
        """The status sent, else 499 (the client left first) or 500: what the audit line of a request records."""
        return self.status if self.status is not None else 499 if self.left else 500


class RequestGuard:
    """The checks before a body is read, and the audit line of keyed requests (see the module's docstring)."""

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.max_body = settings.api.max_body_bytes
        self.limiter = RateLimiter(settings.api.rate_limits)
        self._keyed: list[tuple] | None = None  # (path regex, path) of every keyed route, from the app's routes
        self._roles: dict[tuple[str, str], tuple[str, ...]] = {}  # (path, method): the roles its dependencies require
        self._prefixes: tuple[str, ...] = ()
        self._counted: list[tuple] = []  # (path regex, path) of the public routes that count a key's requests
        self._counted_prefixes: tuple[str, ...] = ()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = self._keyed_path(scope)
        if path is None:  # public, or no such route (404, 405): the body cap only, and a key's limits where counted
            length, chunked, key = self._head(scope)
            counted = None if key is None else self._counted_path(scope)
            if counted is not None and await self._over_limit(scope, receive, send, counted, key):
                return None
            if length is None and not chunked:  # no body (HTTP/1.1): nothing to count, the hot path of public GETs
                return await self.app(scope, receive, send)
            return await self._call(scope, _Exchange(receive, send, self.max_body), length)
        scope[ROUTE_KEY] = path  # the template api.metrics counts a refusal under (no route has run)
        ex = _Exchange(receive, send, self.max_body)
        entry = scope[AUDIT_SCOPE_KEY] = AuditEntry(endpoint=f"{scope['method']} {path}")
        try:
            await self._keyed_call(scope, ex, entry, path)
        finally:
            entry.status = ex.outcome
            log_entry(entry)

    async def _keyed_call(self, scope, ex: _Exchange, entry: AuditEntry, path: str) -> None:
        raw = api_key_header(scope)
        key = None if raw is None else raw.decode("latin-1")
        try:
            principal = await authenticated(self.settings, entry, key)  # fills in entry.key and entry.role
            for role in self._roles.get((path, scope["method"]), ()):
                require(principal, role)
        except ApiError as exc:
            return await self._answer(scope, ex, exc.status, exc.message, exc.headers)
        group = GROUPS.get(path)
        refusal = self.limiter.check(entry.key, group) if group else None
        if refusal is not None:
            return await self._refuse(scope, ex, refusal)
        await self._call(scope, ex, self._head(scope)[0])

    async def _over_limit(self, scope, receive, send, path: str, raw: bytes) -> bool:
        """Whether the request to the public route `path` carried (`raw`: its X-API-Key) a configured key over its
        group's limits (answered 429 and audited here); a key that is not configured is not counted."""
        key = raw.decode("latin-1").strip()
        role = role_of(key, self.settings.api_keys) if key else None
        if role is None:
            return False
        entry = AuditEntry(endpoint=f"{scope['method']} {path}", key=key_hash(key), role=role)
        refusal = self.limiter.check(entry.key, KEYED_PUBLIC_GROUPS[path])
        if refusal is None:
            return False
        scope[ROUTE_KEY] = path
        ex = _Exchange(receive, send, self.max_body)
        try:
            await self._refuse(scope, ex, refusal)
        finally:
            entry.status = ex.outcome
            log_entry(entry)
        return True

    async def _call(self, scope, ex: _Exchange, length: int | None) -> None:
        if length is not None and length > self.max_body:
            return await self._answer(scope, ex, 413, _too_large(self.max_body), _CLOSE)
        try:
            await self.app(scope, ex.receive, ex.send)
        except HTTPException as exc:  # the 413 of ex.receive, should it reach past the app's own handlers
            if exc.status_code != 413 or ex.status is not None:
                raise
            await self._answer(scope, ex, 413, exc.detail, _CLOSE)

    @classmethod
    async def _refuse(cls, scope, ex: _Exchange, refusal: Refusal) -> None:
        """The 429 of a request over its key's limits, with Retry-After."""
        await cls._answer(scope, ex, 429, f"{refusal.message}; retry after {refusal.retry_after} s",
                          {"Retry-After": str(refusal.retry_after)})

    @staticmethod
    async def _answer(scope, ex: _Exchange, status: int, message: str, headers=None) -> None:
        await error_response(status, message, headers=headers)(scope, ex.receive, ex.send)

    @staticmethod
    def _head(scope) -> tuple[int | None, bool, bytes | None]:
        """(the Content-Length, whether the body is chunked, the first X-API-Key as api_key_header reads it), in the
        one scan of the headers every request gets."""
        length, chunked, key = None, False, None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    chunked = True  # the server's parser refuses such a head; count whatever the app reads
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"x-api-key" and key is None:
                key = value
        return length, chunked, key

    def _keyed_path(self, scope) -> str | None:
        """The path of the keyed route (outside PUBLIC_PATHS) that `scope` goes to, whatever its method, or None."""
        if self._keyed is None:
            self._index(scope["app"])
        return _route_of(scope, self._keyed, self._prefixes)

    def _counted_path(self, scope) -> str | None:
        """The path of the public route counting a key's requests (KEYED_PUBLIC_GROUPS) `scope` goes to, or None."""
        if self._keyed is None:
            self._index(scope["app"])
        return _route_of(scope, self._counted, self._counted_prefixes)

    def _index(self, app) -> None:
        """The route tables of both lookups, from the app's routes (all included once the app serves)."""
        routes = api_routes(app)
        keyed = [route for route in routes if route.path not in PUBLIC_PATHS]
        self._roles = {(route.path, method): _required_roles(route.dependant)
                       for route in keyed for method in route.methods}
        counted = [route for route in routes if route.path in KEYED_PUBLIC_GROUPS]
        self._counted = [(route.path_regex, route.path) for route in counted]
        # the literal start of every path of a table: one startswith rules out the other routes before any regex
        self._counted_prefixes = tuple({route.path.split("{", 1)[0] for route in counted}) or ("\0",)
        self._prefixes = tuple({route.path.split("{", 1)[0] for route in keyed}) or ("\0",)
        self._keyed = list({route.path: (route.path_regex, route.path) for route in keyed}.values())


def _route_of(scope, routes: list[tuple], prefixes: tuple[str, ...]) -> str | None:
    """The path of the first of `routes` ((path regex, path)) that the request's path (less its root_path) matches,
    or None; `prefixes` (their literal starts) rule out most paths before any regex."""
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    if not path.startswith(prefixes):
        return None
    for regex, route in routes:
        if regex.match(path):
            return route
    return None
