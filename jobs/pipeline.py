"""The step runner: ordered steps, a manifest updated after each, resume from the failed step."""

from __future__ import annotations

import logging
import secrets
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from c360.errors import C360Error, InputError
from c360.jobs.manifest import Manifest, utc_now
from c360.layout import RunLayout, Warehouse
from c360.settings import Settings

log = logging.getLogger("c360.nightly")


class StepFailed(C360Error):
    """A pipeline step failed; the message names the step and the cause."""

    def __init__(self, step: str, cause: BaseException):
        self.step, self.cause = step, cause
        super().__init__(f"step '{step}' failed: {cause}")


@dataclass
class StepResult:
    """What a step reports: outputs later steps read, row counts and metrics for the manifest."""

    outputs: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Everything a step needs: settings, the run's layout and manifest, earlier steps' outputs."""

    settings: Settings
    run: RunLayout
    manifest: Manifest
    _spark: Any = None

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings.warehouse)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def run_dir(self) -> Path:
        return self.run.root

    @staticmethod
    def path(target: Path) -> Path:
        """`target` (a path of the run's layout) with its parent directory created."""
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def output(self, step: str, key: str) -> Any:
        """An output of an earlier (succeeded) step."""
        try:
            return self.manifest.outputs()[step][key]
        except KeyError as exc:
            raise C360Error(f"output '{key}' of step '{step}' is missing (did the step run?)") from exc

    @property
    def spark(self):
        if self._spark is None:
            from c360.spark import get_spark

            # on a cluster, set spark_conf c360.checkpointDir to shared storage (hdfs://, s3a://)
            ckpt = self.settings.spark_conf.get("c360.checkpointDir") or str(self.path(self.run.spark_checkpoints))
            self._spark = get_spark(self.settings, app_name=f"c360-nightly-{self.run_id}", checkpoint_dir=ckpt)
        return self._spark


Step = tuple[str, Callable[[RunContext], StepResult]]


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(2)


def run_steps(ctx: RunContext, steps: list[Step]) -> Manifest:
    """Run the steps in order, skipping those already succeeded (resume). Raise StepFailed on error."""
    manifest = ctx.manifest
    manifest.data["status"] = "running"
    manifest.data["error"] = None
    manifest.save()
    total = len(steps)
    for i, (name, func) in enumerate(steps, 1):
        rec = manifest.step(name)
        if rec.get("status") == "succeeded":
            log.info("[%d/%d] %s: already succeeded, skipped", i, total, name)
            continue
        rec.clear()
        rec.update(status="running", started_at=utc_now())
        manifest.save()
        log.info("[%d/%d] %s ...", i, total, name)
        t0 = time.perf_counter()
        try:
            result = func(ctx) or StepResult()
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, then re-raised with the step name
            rec.update(status="failed", finished_at=utc_now(), seconds=round(time.perf_counter() - t0, 2),
                       error=f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, C360Error):
                rec["traceback"] = traceback.format_exc(limit=20)
            manifest.data.update(status="failed", finished_at=utc_now(), error=f"step '{name}' failed: {exc}")
            manifest.save()
            raise StepFailed(name, exc) from exc
        rec.update(status="succeeded", finished_at=utc_now(), seconds=round(time.perf_counter() - t0, 2),
                   outputs=result.outputs, rows=result.rows, metrics=result.metrics)
        manifest.save()
        log.info("[%d/%d] %s done in %.1fs %s", i, total, name, rec["seconds"], result.rows or "")
    return manifest


def open_run(settings: Settings, step_names: list[str], resume: str | None = None,
             run_id: str | None = None) -> RunContext:
    """Create a new run directory (or reopen a failed one for --resume, with the configuration it started with)."""
    warehouse = Warehouse(settings.warehouse)
    if resume:
        run = warehouse.run(resume)
        if not run.manifest.is_file():
            raise InputError(f"--resume {resume}: no such run ({run.manifest} not found)")
        manifest = Manifest.load(run.manifest)
        current = warehouse.current()
        if manifest.data.get("status") == "succeeded" and current is not None and current.root == run.root.resolve():
            raise InputError(f"--resume {resume}: that run already succeeded and is published")
        # a run that succeeded but was not published (it ended between the two) reopens too: the caller publishes it
        for name in step_names:
            manifest.step(name)
        stored = manifest.data.get("config") or {}
        settings = settings.with_sections(stored, f"{run.manifest} config")
        return RunContext(settings, run, manifest)
    run = warehouse.run(run_id or new_run_id())
    if run.root.exists():
        raise InputError(f"--run-id {run.run_id}: run directory already exists")
    run.root.mkdir(parents=True, mode=0o700)
    manifest = Manifest.create(run.manifest, run.run_id, step_names, settings.sections())
    return RunContext(settings, run, manifest)
