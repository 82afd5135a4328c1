"""`c360 serve`: run the API with uvicorn (and the private directory its workers share their metrics through)."""

from __future__ import annotations

import os
import shutil
import tempfile

# prometheus_client's multiprocess directory (api.metrics.MULTIPROC_ENV, not imported here: the variable must be set
# before prometheus_client is first imported, in this process as in the workers)
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_PORT = 8000


def register(subparsers) -> None:
    """Add `c360 serve` to the CLI."""
    p = subparsers.add_parser("serve", help="run the HTTP API (FastAPI + uvicorn) over warehouse/current")
    p.add_argument("--warehouse", help="warehouse directory (default: C360_WAREHOUSE or ./warehouse)")
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"TCP port (default {DEFAULT_PORT}; `make run` and `make serve` take PORT=...)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                   help="of every worker's JSON logs (default: C360_LOG_LEVEL, api.log_level or info)")
    p.set_defaults(func=serve)


def _env_var(*setting: str) -> str:
    """The C360_* variable that overrides `setting` (named in c360.settings, not spelled here)."""
    from c360.settings import ENV_VARS

    return next(var for var, path in ENV_VARS.items() if path == setting)


def serve(args) -> int:
    """Validate the settings, then hand over to uvicorn (the app factory reads them from the environment).

    The workers' metrics go to a directory of this server's own, 0700, made before anything imports
    prometheus_client and removed when the server stops (one inherited from the environment is not used: two
    servers sharing one would sum each other's requests)."""
    metrics_dir = tempfile.mkdtemp(prefix="c360-metrics-")  # 0700
    os.environ[METRICS_ENV] = metrics_dir
    try:
        return _serve(args)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _check_port_free(host: str, port: int) -> None:
    """C360Error naming the port and how to choose another when something already listens there (a second server
    on `make run`'s port got uvicorn's "address already in use" and exit code 1, after the settings were loaded)."""
    import errno
    import socket

    from c360.errors import C360Error

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn binds: TIME_WAIT is no conflict
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return   # anything else (an unknown host, a port that needs root) is uvicorn's to report
        raise C360Error(f"--port {port}: {host}:{port} is already in use (another `c360 serve`, or `make run`, still "
                        f"running?); stop it, or choose another port: c360 serve --port {port + 1}, "
                        f"or make serve PORT={port + 1}") from None


def _serve(args) -> int:
    import logging

    import uvicorn

    from c360.errors import InputError
    from c360.settings import CONFIG_ENV, load_settings

    from .access_log import configure
    from .server import uvicorn_options

    if args.port < 0 or args.port > 65535:
        raise InputError(f"--port: {args.port} is not a TCP port")
    if args.workers < 1:
        raise InputError(f"--workers: must be at least 1, got {args.workers}")
    _check_port_free(args.host, args.port)
    # uvicorn workers build the app in fresh processes: the options reach them as the variables settings read
    if args.warehouse:
        os.environ[_env_var("warehouse")] = args.warehouse
    if args.config:
        os.environ[CONFIG_ENV] = os.path.abspath(args.config)
    if args.log_level:
        os.environ[_env_var("api", "log_level")] = args.log_level
    settings = load_settings()  # fail fast with a clear InputError
    level = settings.api.log_level
    configure(getattr(logging, level.upper()))  # this process's; each worker configures its own (serve_app)
    # the request-head size cap, the head and body read timeouts, keep-alive and concurrency limits of settings.api
    uvicorn.run("c360.api.app:serve_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                access_log=False, log_level=level, log_config=None, **uvicorn_options(settings.api))
    return 0
