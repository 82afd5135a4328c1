"""Connection limits of `c360 serve`: a cap on the size of a request head and a deadline for reading it.

uvicorn's httptools parser (the fast one) accepts request heads of any size and never times out a client that
stops half-way through one; `h11_max_incomplete_event_size` only applies to the (slower) h11 parser, and uvicorn has
no head timeout at all. `LimitedHttpToolsProtocol` keeps httptools and adds both:

- size: while a head is incomplete, the bytes received for it are counted (a read that completes one request and
  begins the next counts whole, erring on the safe side); once a head is complete its request line and headers are
  measured. Over `max_head_bytes`: `431 Request Header Fields Too Large`, connection closed. What the parser holds
  for one connection stays below the cap plus one socket read.
- time: a new connection must deliver its first request head, and a keep-alive connection that has begun a request
  must finish its head, within `head_timeout` seconds; otherwise `408 Request Timeout` (or, when nothing was sent,
  a plain close). One lazily re-armed timer per connection: no timer is created or cancelled per request.

Idle keep-alive connections (uvicorn's `timeout_keep_alive`) and the number of connections (`limit_concurrency`)
are uvicorn's own settings; `uvicorn_options` maps all of them from `ApiSettings`.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from c360.settings import ApiSettings

_HEAD_OVERHEAD = 4  # ": " and CRLF of each header line, not part of the name and value httptools hands over


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a connection that was just answered and closed."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head size cap and a request-head read timeout."""

    def __init__(self, config, server_state, app_state, _loop=None, *, max_head_bytes: int = 16384,
                 head_timeout: float = 10.0) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes = int(max_head_bytes)
        self.head_timeout = float(head_timeout)
        self._head_since: float | None = None   # when the wait for the current head began; None: not waiting
        self._head_started = False               # bytes of the current head have arrived
        self._head_bytes = 0                     # bytes received while the current head was incomplete
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    # connection lifecycle
    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()  # the first request head is due within the timeout too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._head_since = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, with the head accounting and a parser stopped by a refusal kept quiet
        if self._refused or self.parser is None:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if not self._refused:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return
        if self._head_started:  # a head is still incomplete after this read
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, "Request header fields too large.")

    # parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = True
        self._head_bytes = 0
        self._await_head()

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + _HEAD_OVERHEAD for name, value in self.headers)
        if size > self.max_head_bytes:
            self._refuse(431, "Request header fields too large.")
            raise _HeadRefused  # stops the parser: nothing more is read from this connection
        self._head_started = False
        self._head_since = None
        super().on_headers_complete()

    # the head deadline
    def _await_head(self) -> None:
        if self._head_since is None:
            self._head_since = self.loop.time()
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_deadline)

    def _head_deadline(self) -> None:
        self._head_timer = None
        if self._head_since is None or self.transport is None or self.transport.is_closing():
            return
        left = self._head_since + self.head_timeout - self.loop.time()
        if left > 0:  # a later head than the one this timer was armed for: wait for what remains of its time
            self._head_timer = self.loop.call_later(left, self._head_deadline)
        elif self._head_started:
            self._refuse(408, "Request head not received in time.")
        else:  # connected and sent nothing
            self._refused = True
            self.transport.close()

    def _refuse(self, status: int, msg: str) -> None:
        self._refused = True
        self._head_since = None
        self.logger.warning("%s (client %s)", msg, self.client[0] if self.client else None)
        body = msg.encode("ascii")
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: text/plain; charset=utf-8\r\n",
                 b"content-length: " + str(len(body)).encode("ascii") + b"\r\n", b"connection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self.transport.close()


def uvicorn_options(api: ApiSettings) -> dict[str, Any]:
    """The keyword arguments of uvicorn.run that apply `api`'s connection limits."""
    return {
        "http": functools.partial(LimitedHttpToolsProtocol, max_head_bytes=api.max_header_bytes,
                                  head_timeout=api.header_timeout_s),
        "h11_max_incomplete_event_size": api.max_header_bytes,  # should the h11 parser ever be chosen instead
        "timeout_keep_alive": api.keep_alive_s,
        "limit_concurrency": api.limit_concurrency,
    }
