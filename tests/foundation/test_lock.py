"""requirements.lock pins everything the project installs: every dependency of pyproject.toml (runtime and the dev
extra) has exactly one pinned version there that satisfies pyproject's range, and the install commands use it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for n, line in enumerate((REPO / "requirements.lock").read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert m, f"requirements.lock:{n}: not a pin (name==version): {line!r}"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"requirements.lock:{n}: {name} pinned twice"
        pins[name] = m.group(2)
    return pins


def test_every_dependency_is_pinned_within_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for spec in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"requirements.lock: {req.name} (pyproject.toml) is not pinned"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"requirements.lock: {req.name}=={pins[name]} is outside pyproject.toml's {req.specifier}"


def test_the_install_commands_use_the_lock():
    assert '-c requirements.lock -e ".[dev]"' in (REPO / "Makefile").read_text()
    assert "-c requirements.lock ." in (REPO / "Dockerfile").read_text()
