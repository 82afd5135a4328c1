"""Structured JSON access logs as a pure ASGI middleware (no query strings: they may hold personal data); the same
wrapper counts each request and its time in api.metrics (one wrapper on the hot path, not two)."""

from __future__ import annotations

import logging
import time

import orjson

from .metrics import observe_request

access = logging.getLogger("c360.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, pid, message plus any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {"ts": round(record.created, 3), "level": record.levelname, "logger": record.name,
                   "pid": record.process, "message": record.getMessage()}  # pid: which worker of `c360 serve`
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(payload).decode()


def configure(level: int = logging.INFO) -> None:
    """Send c360.* logs as JSON lines to stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("c360")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class AccessLogMiddleware:
    """Log method, path, status, duration and client of every HTTP request, and count it (api.metrics)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - start
            observe_request(scope, status["code"], seconds)
            if access.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access.info("request", extra={"fields": {
                    "method": scope["method"], "path": scope["path"], "status": status["code"],
                    "ms": round(seconds * 1000, 2),
                    "client": client[0] if client else None}})
