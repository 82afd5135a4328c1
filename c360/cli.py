"""The `c360` command: one argparse tree, each package registers its own command group."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from c360 import __version__, doctor
from c360.errors import C360Error

# each module defines register(subparsers) and sets `func` on its parsers
COMMAND_MODULES = (
    "c360.graph.gremlin_cli",        # c360 gremlin start|stop|status
    "c360.jobs.spark_cli",           # c360 spark start|stop|status
    "c360.jobs.kafka_cli",           # c360 kafka start|stop|status
    "c360.recsys.cli",               # c360 recsys train|recommend|evaluate
    "c360.entity_resolution.cli",    # c360 er generate|merge|match|evaluate|labels|review|explain
    "c360.graph.cli",                # c360 graph export|load
    "c360.jobs.cli",                 # c360 nightly
    "c360.api.cli",                  # c360 serve
)

# what `c360 doctor` checks: each package's own ("module:function", returning c360.doctor.Check items)
DOCTOR_CHECKS = (
    "c360.doctor:core_checks",                      # Java, Spark, Splink's similarity jar, DuckDB
    "c360.graph.gremlin_server:doctor_checks",      # Maven, Gremlin Server jars
    "c360.kafka_server:doctor_checks",              # Kafka jars
    "c360.recsys.doctor:doctor_checks",             # implicit CPU and GPU
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="c360", description="Customer 360 and theme-park recommendations: jobs, matching, graph, API.")
    parser.add_argument("--version", action="version", version=f"c360 {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:  # every group ships in the one distribution: a missing one is a broken install
        importlib.import_module(name).register(subparsers)
    doctor.register(subparsers, DOCTOR_CHECKS)
    return parser


def _one_blas_thread() -> None:
    """implicit's ALS and the API's scorers parallelise themselves (or serve concurrent requests); a BLAS thread pool
    underneath only slows them down: one BLAS thread here and in every process started from here (API workers,
    Spark's Python workers)."""
    from threadpoolctl import threadpool_limits

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    threadpool_limits(limits=1, user_api="blas")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "urllib3", "asyncio", "matplotlib", "gremlinpython"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # what any command writes (customer records, match outputs, graph files, logs) is readable by its owner only;
    # uvicorn's workers and Spark's local JVM inherit it (Spark's Hadoop writes also set umask-mode 077)
    os.umask(0o077)
    _one_blas_thread()
    try:
        return int(args.func(args) or 0)
    except C360Error as exc:
        print(f"c360 {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
