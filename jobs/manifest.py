"""A run's manifest.json: run status and each step's status, time, row counts, metrics and outputs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from c360.io import read_json_file, write_json_file


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Manifest:
    """In-memory manifest, saved atomically after every change."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, path: Path, run_id: str, step_names: list[str], config: dict) -> "Manifest":
        data = {
            "run_id": run_id,
            "status": "running",
            "created_at": utc_now(),
            "finished_at": None,
            "config": config,
            "steps": {name: {"status": "pending"} for name in step_names},
            "served_model": None,
            "models": {},
            "gates": {},
            "error": None,
        }
        manifest = cls(path, data)
        manifest.save()
        return manifest

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        return cls(path, read_json_file(path, "manifest not found"))

    def save(self) -> None:
        write_json_file(self.path, self.data, default=_jsonable)

    def step(self, name: str) -> dict[str, Any]:
        return self.data["steps"].setdefault(name, {"status": "pending"})

    def outputs(self) -> dict[str, dict[str, Any]]:
        """Outputs of every succeeded step, by step name (what later steps read)."""
        return {n: s.get("outputs", {}) for n, s in self.data["steps"].items() if s.get("status") == "succeeded"}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
