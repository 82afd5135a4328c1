"""`c360 nightly`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("nightly", help="run the nightly pipeline and publish a new version atomically",
                              description="validate → merge → match → recommenders → graph export/load → "
                                          "quality gates → report → publish warehouse/current")
    p.add_argument("--config", help="YAML config (every key and its default: c360/settings.py)")
    p.add_argument("--warehouse", help="warehouse directory (default C360_WAREHOUSE or ./warehouse)")
    p.add_argument("--visits", help="sigir17 directory or Personalize interactions file (default: shipped data)")
    p.add_argument("--items", help="Personalize items file")
    p.add_argument("--insurance", help="directory with the five insurance source tables (default: generated)")
    p.add_argument("--engine", choices=["spark", "duckdb"], help="entity-resolution engine (default spark)")
    p.add_argument("--resume", metavar="RUN_ID", help="rerun a failed run from its failed step")
    p.add_argument("--run-id", help="use this run id instead of a timestamp")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from c360.jobs.nightly import run_nightly

    overrides = {"nightly": {k: v for k, v in (("visits", args.visits), ("items", args.items),
                                                 ("insurance", args.insurance)) if v},
                 "er": {"engine": args.engine} if args.engine else {}}
    result = run_nightly(config_path=args.config, warehouse=args.warehouse, overrides=overrides,
                         resume=args.resume, run_id=args.run_id)
    print(f"run {result['run_id']}: {result['status']}" + (f" — published {result['current']}"
                                                          if result.get("current") else ""))
    return 0
