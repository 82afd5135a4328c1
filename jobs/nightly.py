"""`c360 nightly`: one run from raw sources to a published version."""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from c360.io import read_yaml_file
from c360.settings import load_settings
from jobs import steps
from jobs.manifest import utc_now
from jobs.pipeline import StepFailed, open_run, run_steps
from jobs.publish import publish

log = logging.getLogger("c360.nightly")
DEFAULTS = Path(__file__).with_name("default.yaml")


def deep_merge(base: dict, override: dict) -> dict:
    """Recursive dict merge: values of `override` win, nested mappings merge."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def nightly_config(settings, overrides: dict | None = None) -> dict[str, Any]:
    """Defaults ← the --config file's sections ← command-line overrides."""
    config = read_yaml_file(DEFAULTS)
    config = deep_merge(config, {k: v for k, v in settings.sections.items() if isinstance(v, dict)})
    return deep_merge(config, overrides or {})


def run_nightly(config_path: str | None = None, warehouse: str | None = None, overrides: dict | None = None,
                resume: str | None = None, run_id: str | None = None, env: dict | None = None) -> dict[str, Any]:
    """Run (or resume) the pipeline; publish only when every step and gate passed.

    Returns {"run_id", "status", "run_dir", "current"}. Raises StepFailed (naming the step and the cause)
    after marking the run failed; `warehouse/current` is then left as it was.
    """
    settings = load_settings(config_path, env=env)
    if warehouse:
        settings.warehouse = Path(warehouse)
    settings.warehouse = settings.warehouse.resolve()
    config = nightly_config(settings, overrides)
    ctx = open_run(settings, config, [name for name, _ in steps.STEPS], resume=resume, run_id=run_id)
    log.info("nightly run %s in %s (graph store: %s)", ctx.run_id, ctx.run_dir, settings.graph)
    try:
        run_steps(ctx, steps.STEPS)
    except StepFailed:
        _write_report_quietly(ctx)
        raise
    finally:
        if ctx._spark is not None:
            ctx._spark.catalog.clearCache()
            ctx._spark.sparkContext.setCheckpointDir(str(Path(tempfile.gettempdir()) / "c360-spark-checkpoints"))
        shutil.rmtree(ctx.run_dir / "tmp", ignore_errors=True)  # this run's Spark checkpoints
    ctx.manifest.data.update(status="succeeded", finished_at=utc_now())
    ctx.manifest.save()
    _write_report_quietly(ctx)
    current = publish(settings.warehouse, ctx.run_dir)
    log.info("published %s -> %s", current, ctx.run_dir.name)
    return {"run_id": ctx.run_id, "status": "succeeded", "run_dir": str(ctx.run_dir), "current": str(current)}


def _write_report_quietly(ctx) -> None:
    """The report is written for failed runs too; a report problem never hides the run's own outcome."""
    try:
        steps.write_report(ctx)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not write report.html: %s", exc)
