"""The FastAPI application: create_app(settings) factory, lifespan loading `warehouse/current`, hot reload;
serve_app(), the factory each `c360 serve` worker process calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from c360 import __version__
from c360.settings import Settings, load_settings

from . import errors
from .access_log import AccessLogMiddleware, configure
from .guard import RequestGuard
from .metrics import worker_exits
from .reloader import refresh, watch
from .responses import OrjsonResponse
from .routers import attractions, customers, events, health, metrics, recommendations, review

log = logging.getLogger("c360.api")


def create_app(settings: Settings | None = None, reload_interval: float | None = None) -> FastAPI:
    """Build the app for `settings` (default: load_settings() from the environment)."""
    settings = settings or load_settings()
    interval = float(reload_interval if reload_interval is not None else settings.api.reload_interval)
    docs = settings.api.docs  # the interactive docs and the schema are closed unless enabled
    # redirect_slashes off: Starlette builds the redirect of `/healthz/` from the Host header (an open redirect and
    # a cache-poisoning vector), and every path of this API has one spelling: a trailing slash is a 404
    app = FastAPI(title="c360 API", version=__version__, lifespan=_lifespan(settings, interval),
                  default_response_class=OrjsonResponse,
                  description="Theme-park recommendations and insurance customer 360 over the published warehouse.",
                  docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
                  openapi_url="/openapi.json" if docs else None, redirect_slashes=False)
    app.state.settings = settings  # read by requests through dependencies.app_settings
    app.state.served = None  # the ServedState, swapped whole by the reloader; read through dependencies.served
    app.state.loaded_run = None  # RunLayout of `served`
    app.state.failed_run = None  # RunLayout of a publish that failed to load (not retried until `current` moves)
    errors.install(app)
    # authentication is declared on the routers themselves (customers: KEY_REQUIRED, events: WRITER_REQUIRED); the
    # others are public
    for router in (recommendations.router, customers.router, events.router, attractions.router, health.router,
                   metrics.router, review.router, review.page):
        app.include_router(router)
    _add_middleware(app, settings)
    return app


def _lifespan(settings: Settings, interval: float):
    """The app's lifespan: load the published run, watch `current` every `interval` seconds, close what is served."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await refresh(app)
        if app.state.served is None:
            log.warning("nothing published under %s yet; waiting for a publish", settings.warehouse)
        task = asyncio.create_task(watch(app, interval))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            closing = getattr(app.state, "closing", None)
            if closing is not None and not closing.done():
                closing.cancel()  # its state is dropped with the process
            if app.state.served is not None:
                await asyncio.to_thread(app.state.served.close)
            worker_exits()

    return lifespan


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware, innermost first (Starlette runs the last added outermost)."""
    # the hot request (a keyless GET /recommendations of a stored answer) answered before FastAPI routes it: inside
    # the guard, CORS and the access log, which see it as they see any other
    app.add_middleware(recommendations.StoredRecommendations)
    # the key, the rate limits and the body cap before a body is read; inside CORS, which answers preflights (they
    # carry no key) itself
    app.add_middleware(RequestGuard, settings=settings)
    origins = settings.api.cors_origins
    if origins:  # CORS is closed unless origins are configured explicitly
        # a page's script may read how long a 429 asks it to wait (the key's rate limits, api.limits)
        app.add_middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["GET"],
                           allow_headers=["X-API-Key"], expose_headers=["Retry-After"])
    app.add_middleware(AccessLogMiddleware)


def serve_app() -> FastAPI:
    """The app of one `c360 serve` worker, with its JSON logs configured in its own process first: uvicorn's workers
    are fresh processes, which what the parent configured does not reach (the level: api.log_level)."""
    settings = load_settings()
    configure(getattr(logging, settings.api.log_level.upper()))
    return create_app(settings)
