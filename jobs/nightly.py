"""`c360 nightly`: one run from raw sources to a published version."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from c360.jobs import realtime, steps
from c360.jobs.manifest import utc_now
from c360.jobs.pipeline import StepFailed, open_run, run_steps
from c360.settings import load_settings

log = logging.getLogger("c360.nightly")


def run_nightly(config_path: str | None = None, warehouse: str | None = None, overrides: dict | None = None,
                resume: str | None = None, run_id: str | None = None, env: dict | None = None) -> dict[str, Any]:
    """Run (or resume) the pipeline; publish only when every step and gate passed.

    Returns {"run_id", "status", "run_dir", "current"}. Raises StepFailed (naming the step and the cause)
    after marking the run failed; `warehouse/current` is then left as it was.
    """
    overrides = dict(overrides or {})
    if warehouse:
        overrides["warehouse"] = warehouse
    settings = load_settings(config_path, env=env, overrides=overrides)
    settings.warehouse = settings.warehouse.resolve()
    ctx = open_run(settings, [name for name, _ in steps.STEPS], resume=resume, run_id=run_id)
    log.info("nightly run %s in %s (graph store: %s)", ctx.run_id, ctx.run_dir, settings.graph.store)
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
    _write_report_quietly(ctx)
    current = ctx.warehouse.publish(ctx.run)
    log.info("published %s -> %s", current, ctx.run_dir.name)
    realtime.drop_published(ctx)  # the real-time logs keep only what the published run does not contain
    return {"run_id": ctx.run_id, "status": "succeeded", "run_dir": str(ctx.run_dir), "current": str(current)}


def _write_report_quietly(ctx) -> None:
    """The report is written for failed runs too; a report problem never hides the run's own outcome."""
    try:
        steps.write_report(ctx)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not write report.html: %s", exc)
