"""One settings object: YAML config file, overridden by C360_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from c360.errors import InputError
from c360.io import read_yaml_file

ROLES = ("reader", "pii")
REPO_ROOT = Path(__file__).resolve().parent.parent


def parse_api_keys(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """Parse `key:role,key:role` (or a mapping) into {key: role}; roles are reader or pii."""
    if not spec:
        return {}
    pairs = spec.items() if isinstance(spec, Mapping) else (
        item.split(":", 1) if ":" in item else (item, "")
        for item in (s.strip() for s in str(spec).split(",")) if item
    )
    keys: dict[str, str] = {}
    for key, role in pairs:
        key, role = str(key).strip(), str(role).strip()
        if not key or role not in ROLES:
            raise InputError(f"C360_API_KEYS: entry '{key}:{role}' must be key:role with role in {ROLES}")
        keys[key] = role
    return keys


@dataclass
class Settings:
    """Everything configurable. Sections (recsys, er, gates, nightly, spark...) stay plain dicts."""

    warehouse: Path = Path("./warehouse")
    spark_master: str = "local[*]"
    graph: str = "networkx"
    api_keys: dict[str, str] = field(default_factory=dict)
    spark_conf: dict[str, str] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def section(self, name: str) -> dict[str, Any]:
        """A config section as a dict (empty when absent)."""
        value = self.sections.get(name) or {}
        if not isinstance(value, dict):
            raise InputError(f"{self.source or 'config'}: section '{name}' must be a mapping")
        return value

    @property
    def current(self) -> Path:
        """The published version the API serves."""
        return self.warehouse / "current"


ENV_VARS = {
    "C360_WAREHOUSE": "warehouse",
    "C360_SPARK_MASTER": "spark_master",
    "C360_GRAPH": "graph",
    "C360_API_KEYS": "api_keys",
}


def load_settings(config: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read `config` (YAML, optional) and apply C360_* overrides from `env` (default os.environ)."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if config:
        path = Path(config)
        raw = read_yaml_file(path, "config file not found")
        if not isinstance(raw, dict):
            raise InputError(f"{path}: top level must be a mapping")
    raw = dict(raw)
    for var, key in ENV_VARS.items():
        if env.get(var):
            raw[key] = env[var]
    spark_conf = raw.pop("spark_conf", {}) or {}
    known = {k: raw.pop(k) for k in ("warehouse", "spark_master", "graph", "api_keys") if k in raw}
    settings = Settings(
        warehouse=Path(known.get("warehouse", "./warehouse")),
        spark_master=str(known.get("spark_master", "local[*]")),
        graph=str(known.get("graph", "networkx")),
        api_keys=parse_api_keys(known.get("api_keys")),
        spark_conf={str(k): str(v) for k, v in dict(spark_conf).items()},
        sections=raw,
        source=str(config) if config else None,
    )
    return settings
