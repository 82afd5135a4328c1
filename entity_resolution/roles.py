"""Roles config: which input column plays which role (first_name, ssn, ...), read from YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from c360.errors import InputError

KNOWN_ROLES = ("first_name", "last_name", "date_of_birth", "ssn", "street_number", "address", "city", "zip",
               "state", "home_phone", "email", "company")
PRESET = Path(__file__).parent / "presets" / "insurance.yaml"


@dataclass
class RolesConfig:
    id: str
    roles: dict[str, str]
    date_format: str = "%Y-%m-%d"
    source: str = field(default=str(PRESET))


def load_roles(path: str | Path | None = None) -> RolesConfig:
    """Read a roles YAML (default: the insurance preset); unknown roles raise InputError naming the file."""
    p = Path(path) if path else PRESET
    if not p.exists():
        raise InputError(f"{p}: roles config not found")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: not valid YAML: {exc}") from exc
    if "id" not in raw or not isinstance(raw.get("roles"), dict) or not raw["roles"]:
        raise InputError(f"{p}: needs 'id' and a non-empty 'roles' mapping")
    unknown = [r for r in raw["roles"] if r not in KNOWN_ROLES]
    if unknown:
        raise InputError(f"{p}: unknown role(s) {', '.join(unknown)} (known: {', '.join(KNOWN_ROLES)})")
    return RolesConfig(id=str(raw["id"]), roles={k: str(v) for k, v in raw["roles"].items()},
                       date_format=str(raw.get("date_format", "%Y-%m-%d")), source=str(p))
