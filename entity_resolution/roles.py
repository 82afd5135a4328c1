"""Roles config: which input column plays which role (first_name, ssn, ...), read from YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from c360.errors import InputError
from c360.io import read_yaml_file

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
    raw = read_yaml_file(p, "roles config not found")
    if "id" not in raw or not isinstance(raw.get("roles"), dict) or not raw["roles"]:
        raise InputError(f"{p}: needs 'id' and a non-empty 'roles' mapping")
    unknown = [r for r in raw["roles"] if r not in KNOWN_ROLES]
    if unknown:
        raise InputError(f"{p}: unknown role(s) {', '.join(unknown)} (known: {', '.join(KNOWN_ROLES)})")
    return RolesConfig(id=str(raw["id"]), roles={k: str(v) for k, v in raw["roles"].items()},
                       date_format=str(raw.get("date_format", "%Y-%m-%d")), source=str(p))
