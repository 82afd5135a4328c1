"""JSON error bodies for every failure: {"error", "message", "fields"?}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from c360.api.responses import OrjsonResponse

log = logging.getLogger("c360.api")

# FastAPI's answer to a request body it could not even decode (not UTF-8): a 400 with this detail
BODY_NOT_PARSED = "There was an error parsing the body"
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         408: "request_timeout", 409: "conflict", 413: "content_too_large", 422: "invalid_parameter",
         429: "too_many_requests", 503: "unavailable", 507: "insufficient_storage"}


JSON_MEDIA_TYPE = "application/json"


def _body_not_read_as_json(request: Request, exc: RequestValidationError) -> bool:
    """A JSON body endpoint that got its body as raw bytes: the request did not say its body is JSON (curl -d sends
    application/x-www-form-urlencoded), so FastAPI never parsed it and every field reads as missing or mistyped."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == JSON_MEDIA_TYPE or media.endswith("+json"):
        return False
    return any(err.get("loc", ())[:1] == ("body",) and isinstance(err.get("input"), (bytes, bytearray))
               for err in exc.errors())


class ApiError(Exception):
    """Raised by handlers: status code, message, optional field names."""

    def __init__(self, status: int, message: str, fields: list[str] | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.fields, self.headers = status, message, fields, headers


def error_response(status: int, message: str, fields: list[str] | None = None, headers=None) -> OrjsonResponse:
    body = {"error": CODES.get(status, "error"), "message": message}
    if fields:
        body["fields"] = fields
    return OrjsonResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a JSON body."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.fields, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        fields, parts = [], []
        for err in exc.errors():
            if err.get("type") == "json_invalid":  # its loc ends with the offset of the error, not a field
                name = "body"
            else:
                name = str(err["loc"][-1]) if err.get("loc") else "request"
            fields.append(name)
            parts.append(f"{name}: {err.get('msg')}")
        if _body_not_read_as_json(request, exc):
            parts.append(f"send the body with Content-Type: {JSON_MEDIA_TYPE}")
        return error_response(422, "; ".join(parts), list(dict.fromkeys(fields)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and exc.detail == BODY_NOT_PARSED:  # a body that is not text: bad like any other
            return error_response(422, "body: not a JSON document (UTF-8)", ["body"])
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return error_response(500, "internal error")
