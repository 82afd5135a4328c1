"""Connection limits of `c360 serve`: a cap on the size of a request head, and deadlines for reading a head and a
body.

uvicorn's httptools parser (the fast one) accepts request heads of any size and never times out a client that
stops half-way through a head or a body; `h11_max_incomplete_event_size` only applies to the (slower) h11 parser,
and uvicorn has no head or body timeout at all. `LimitedHttpToolsProtocol` keeps httptools and adds:

- size: while a head is incomplete, the bytes received for it are counted (a read that completes one request and
  begins the next counts whole, erring on the safe side); once a head is complete its request line and headers are
  measured. Over `max_head_bytes`: `431 Request Header Fields Too Large`, connection closed. What the parser holds
  for one connection stays below the cap plus one socket read.
- head time: a new connection must deliver its first request head, and a keep-alive connection that has begun a
  request must finish its head, within `head_timeout` seconds; otherwise `408 Request Timeout` (or, when nothing was
  sent, a plain close).
- body time: a request's body must be complete within `body_timeout` seconds of the end of its head, however slowly
  it drips (one byte every few seconds held a connection, and a slot of `limit_concurrency`, for ever); otherwise
  `408` when nothing was answered yet, else a plain close. This also bounds how long a body the app refused
  unread (a 401 before the body, see api.guard) is drained before the connection is reused.

One lazily re-armed timer per connection serves both deadlines: no timer is created or cancelled per request.

A response's head and a body that follows it at once leave in one write (`_HeadWithBody`): uvicorn writes the head
when the app starts the response and the body when it sends it, two send(2) calls and two segments for the client to
read on every response; a head whose body does not follow in the same turn of the event loop is written on its own.
The size of a body is the app's to cap (api.guard, `api.max_body_bytes`): uvicorn buffers at most 64 KiB of it
(plus one socket read) before it stops reading until the app takes it.

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
_HEAD, _BODY = "head", "body"  # what a connection is waiting for under a deadline


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a connection that was just answered and closed."""


class _HeadWithBody:
    """The transport a request's cycle writes to: the response head it writes first is held until its next write
    (the body, sent with it) or until the event loop's next turn (`call_soon`), whichever comes first; every other
    write, and a close, goes through as it is (a held head first)."""

    __slots__ = ("transport", "loop", "_head")

    def __init__(self, transport, loop) -> None:
        self.transport, self.loop = transport, loop
        self._head: bytes | None = b""   # b"": nothing written yet (the first write is the head), None: past it

    def write(self, data: bytes) -> None:
        head = self._head
        if head is None:
            self.transport.write(data)
        elif head:
            self._head = None
            self.transport.write(head + data)
        elif data.startswith(b"HTTP/1.1 100 "):  # the interim 100 Continue the client waits for: never held
            self.transport.write(data)
        else:
            self._head = data
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        head, self._head = self._head, None
        if head:
            self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head size cap and request-head and request-body read timeouts."""

    def __init__(self, config, server_state, app_state, _loop=None, *, max_head_bytes: int = 16384,
                 head_timeout: float = 10.0, body_timeout: float = 10.0) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes = int(max_head_bytes)
        self.head_timeout = float(head_timeout)
        self.body_timeout = float(body_timeout)
        self._waiting: str | None = None    # _HEAD or _BODY while under a deadline, else None
        self._due = 0.0                      # when the current wait runs out (loop time)
        self._head_started = False           # bytes of the current head have arrived
        self._head_bytes = 0                 # bytes received while the current head was incomplete
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._deferred: bytes | None = None  # a refusal waiting for the responses of earlier pipelined requests

    # connection lifecycle
    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await(_HEAD, self.head_timeout)  # the first request head is due within the timeout too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting = None
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
        if self._waiting != _HEAD:  # a new connection's first head keeps the deadline counted from the connect
            self._await(_HEAD, self.head_timeout)

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + _HEAD_OVERHEAD for name, value in self.headers)
        if size > self.max_head_bytes:
            self._refuse(431, "Request header fields too large.")
            raise _HeadRefused  # stops the parser: nothing more is read from this connection
        self._head_started = False
        self._waiting = None
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before:  # a request's cycle (not an upgrade, which keeps none)
            self.cycle.transport = _HeadWithBody(self.transport, self.loop)
        if self._has_body():
            self._await(_BODY, self.body_timeout)

    def on_message_complete(self) -> None:
        if self._waiting == _BODY:  # (uvicorn's own callback returns early once the response is complete)
            self._waiting = None
        super().on_message_complete()

    def _has_body(self) -> bool:
        for name, value in self.headers:
            if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"0", b"")):
                return True
        return False

    # the deadlines
    def _await(self, what: str, timeout: float) -> None:
        self._waiting, self._due = what, self.loop.time() + timeout
        if self._timer is not None and self._timer.when() > self._due:  # armed for a later, longer wait
            self._timer.cancel()
            self._timer = None
        if self._timer is None:
            self._timer = self.loop.call_at(self._due, self._deadline)

    def _deadline(self) -> None:
        self._timer = None
        if self._waiting is None or self.transport is None or self.transport.is_closing():
            return
        left = self._due - self.loop.time()
        if left > 0:  # a later wait than the one this timer was armed for: wait for what remains of its time
            self._timer = self.loop.call_later(left, self._deadline)
        elif self._waiting == _BODY:
            cycle = self.cycle
            if cycle is not None and not cycle.response_started:
                cycle.disconnected = True  # the app's receive() now answers http.disconnect, its send() nothing
                cycle.message_event.set()
                self._refuse(408, "Request body not received in time.", after_earlier=False)
            else:  # answered already (e.g. refused before its body): only the connection is left to close
                self._close()
        elif self._head_started:
            self._refuse(408, "Request head not received in time.")
        else:  # connected and sent nothing
            self._close()

    def _flush_held(self) -> None:
        """Write a response head the request's cycle still holds (`_HeadWithBody`) before anything else goes out."""
        cycle = self.cycle
        if cycle is not None and isinstance(cycle.transport, _HeadWithBody):
            cycle.transport.flush()

    def _close(self) -> None:
        self._refused = True
        self._waiting = None
        self._flush_held()
        self.transport.close()

    def shutdown(self) -> None:
        self._flush_held()
        super().shutdown()

    def send_400_response(self, msg: str) -> None:
        self._flush_held()
        super().send_400_response(msg)

    def _in_flight(self) -> bool:
        """Whether an earlier request of this connection is still being answered (pipelined requests included)."""
        return bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)

    def _refuse(self, status: int, msg: str, *, after_earlier: bool = True) -> None:
        """Answer `status` and close. A refused head of a pipelined request waits for the answers of the requests
        before it (`after_earlier`): they are answered first, then the refusal, then the connection closes."""
        self.logger.warning("%s (client %s)", msg, self.client[0] if self.client else None)
        body = msg.encode("ascii")
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: text/plain; charset=utf-8\r\n",
                 b"content-length: " + str(len(body)).encode("ascii") + b"\r\n", b"connection: close\r\n\r\n", body]
        if after_earlier and self._in_flight():
            self._refused, self._waiting, self._deferred = True, None, b"".join(head)
            self.flow.pause_reading()
            return
        self._flush_held()
        self.transport.write(b"".join(head))
        self._close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._deferred is not None and not self._in_flight() and not self.transport.is_closing():
            refusal, self._deferred = self._deferred, None
            self._flush_held()
            self.transport.write(refusal)
            self._close()


def uvicorn_options(api: ApiSettings) -> dict[str, Any]:
    """The keyword arguments of uvicorn.run that apply `api`'s connection limits."""
    return {
        "http": functools.partial(LimitedHttpToolsProtocol, max_head_bytes=api.max_header_bytes,
                                  head_timeout=api.header_timeout_s, body_timeout=api.body_timeout_s),
        "h11_max_incomplete_event_size": api.max_header_bytes,  # should the h11 parser ever be chosen instead
        "timeout_keep_alive": api.keep_alive_s,
        "limit_concurrency": api.limit_concurrency,
    }
