"""`c360 nightly` and `c360 report`."""

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
    r = subparsers.add_parser("report", help="write a run's report.html again from its files",
                              description="renders runs/<id>/report.html from the run's manifest and outputs, "
                                          "compared with the published run it replaced; no step is rerun")
    r.add_argument("--run", required=True, metavar="DIR", help="the run's directory (warehouse/runs/<run_id>)")
    r.add_argument("--out", help="where to write the page (default: report.html in the run's directory)")
    r.set_defaults(func=_report)


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


def _report(args: argparse.Namespace) -> int:
    from c360.jobs.run_report import write_report
    from c360.layout import RunLayout

    print(write_report(RunLayout(args.run), out=args.out))
    return 0
