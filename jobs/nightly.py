"""`c360 nightly`: one run from raw sources to a published version."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from c360.errors import InputError
from c360.inputs import require_files, require_inputs
from c360.io import make_private, owner_only
from c360.jobs import live_intake, steps
from c360.jobs.manifest import utc_now
from c360.jobs.pipeline import StepFailed, open_run, run_steps
from c360.layout import Warehouse
from c360.settings import load_settings

log = logging.getLogger("c360.nightly")


def run_nightly(config_path: str | None = None, warehouse: str | None = None, overrides: dict | None = None,
                resume: str | None = None, run_id: str | None = None, env: dict | None = None) -> dict[str, Any]:
    """Run (or resume) the pipeline; publish only when every step and gate passed.

    Returns {"run_id", "status", "run_dir", "current"}. Raises StepFailed (naming the step and the cause)
    after marking the run failed; `warehouse/current` is then left as it was.

    "succeeded" and the publish are one step: the manifest says succeeded just before `current` moves, and
    `--resume` of a run that succeeded but was not published (the process ended between the two) publishes it,
    unless a run published since would lose what it contains (InputError). The real-time logs drop what the
    published run contains only after the publish; a run that ends before that drop leaves segments the next run
    never reads again (c360.jobs.live_intake).

    Everything the run writes is its owner's only (umask 077 while it runs, Spark's Hadoop umask, and the run's
    directory made 0700/0600 before it is published): it holds customers' data.
    """
    with owner_only():
        overrides = dict(overrides or {})
        if warehouse:
            overrides["warehouse"] = warehouse
        settings = load_settings(config_path, env=env, overrides=overrides)
        _check_inputs(settings)
        settings.warehouse = settings.warehouse.resolve()
        _make_warehouse_private(Warehouse(settings.warehouse))
        ctx = open_run(settings, [name for name, _ in steps.STEPS], resume=resume, run_id=run_id)
        if ctx.manifest.data.get("status") == "succeeded":
            _check_publishable(ctx)
            log.info("run %s succeeded but was not published: publishing it", ctx.run_id)
        else:
            log.info("nightly run %s in %s (graph store: %s)", ctx.run_id, ctx.run_dir, settings.graph.store)
            _run(ctx)
        make_private(ctx.run_dir)
        _write_report_quietly(ctx)
        current = ctx.warehouse.publish(ctx.run)
        log.info("published %s -> %s", current, ctx.run_dir.name)
        live_intake.drop_published(ctx)  # the real-time logs keep only what the published run does not contain
        return {"run_id": ctx.run_id, "status": "succeeded", "run_dir": str(ctx.run_dir), "current": str(current)}


def _run(ctx) -> None:
    """Every step not yet succeeded; the manifest then says succeeded (StepFailed: failed, and the report says so)."""
    try:
        run_steps(ctx, steps.STEPS)
    except StepFailed:
        _write_report_quietly(ctx)
        raise
    finally:
        if ctx._spark is not None:
            ctx._spark.catalog.clearCache()
            ctx._spark.sparkContext.setCheckpointDir(str(Path(tempfile.gettempdir()) / "c360-spark-checkpoints"))
        shutil.rmtree(ctx.run.tmp, ignore_errors=True)  # this run's Spark checkpoints
    ctx.manifest.data.update(status="succeeded", finished_at=utc_now())
    ctx.manifest.save()


def _check_inputs(settings) -> None:
    """The configured input paths exist, and the directories hold the files the run reads (the insurance source
    tables, the visits of the sigir17 layout), before insurance data is generated or Spark starts (a typo in --visits
    was reported after 19 s of generating customers, an empty --insurance after 12 s of Spark). Their contents are
    checked by the validate step."""
    from c360.data import SIGIR17_LAYOUT, SIGIR17_REQUIRED_FILES
    from c360.entity_resolution.sources import SOURCE_TABLES
    from c360.jobs.validate import visits_format

    n, er = settings.nightly, settings.er
    require_inputs({"--visits (nightly.visits)": n.visits, "--items (nightly.items)": n.items,
                    "--insurance (nightly.insurance)": n.insurance,
                    "nightly.accounts.file": n.accounts.file if n.accounts else None,
                    "er.config": er.config, "er.labels": er.labels},
                   dirs={"--insurance (nightly.insurance)"})
    require_files("--insurance (nightly.insurance)", n.insurance, [t.file for t in SOURCE_TABLES])
    fmt = visits_format(n.visits, n.visits_format)
    if fmt == "sigir17":
        require_files("--visits (nightly.visits)", n.visits, SIGIR17_REQUIRED_FILES, SIGIR17_LAYOUT)
    elif not n.visits:
        raise InputError("nightly.visits: a Personalize interactions file is required for format personalize")


def _make_warehouse_private(warehouse: Warehouse) -> None:
    """The warehouse's own directories 0700, and the real-time logs and generated inputs (customers' data) 0600/0700,
    as an older version may have left them; each run's directory is made private before it is published."""
    warehouse.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for directory in (warehouse.root, warehouse.runs):
        if directory.is_dir():
            os.chmod(directory, 0o700)
    for tree in (warehouse.realtime_logs, warehouse.inputs):
        if tree.is_dir():
            make_private(tree)


def _check_publishable(ctx) -> None:
    """A succeeded run may be published late only over the run it read the real-time logs after (or none): a run
    published since then contains segments this one never read, and the logs may have dropped them already."""
    current = ctx.warehouse.current()
    base = live_intake.base_run(ctx.run)
    if current is not None and current.run_id != base:
        raise InputError(f"--resume {ctx.run_id}: run {current.run_id} was published after this run read the "
                         f"real-time logs (after run {base or 'none'}): publishing {ctx.run_id} would lose what "
                         f"{current.run_id} contains; start a new run instead")


def _write_report_quietly(ctx) -> None:
    """The report is written for failed runs too; a report problem never hides the run's own outcome."""
    try:
        steps.write_report(ctx)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not write report.html: %s", exc)
