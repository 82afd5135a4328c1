"""Atomic publishing of a run as `warehouse/current`."""

from __future__ import annotations

import os
from pathlib import Path


def current_run_dir(warehouse: Path) -> Path | None:
    """The run directory `warehouse/current` points to, or None when nothing is published."""
    link = Path(warehouse) / "current"
    return link.resolve() if link.exists() else None


def publish(warehouse: Path, run_dir: Path) -> Path:
    """Point `warehouse/current` at `run_dir` with one atomic rename of a fresh symlink.

    Readers see either the old or the new version, never a missing or half-switched one.
    """
    warehouse = Path(warehouse)
    run_dir = Path(run_dir)
    target = os.path.relpath(run_dir.resolve(), warehouse.resolve())
    tmp = warehouse / f".current.{run_dir.name}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp, target_is_directory=True)
    os.replace(tmp, warehouse / "current")
    return warehouse / "current"
