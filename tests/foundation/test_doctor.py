"""`c360 doctor` names every real part the product uses, says why one is missing, and exits 1 only for required ones."""

from __future__ import annotations

import json
import os

import pytest

from c360.doctor import Check, run_checks
from tests.conftest import run_cli

PARTS = ["Java", "Spark", "Splink similarity jar", "DuckDB", "Maven", "Gremlin Server jars", "Kafka jars",
         "implicit CPU", "implicit GPU"]


@pytest.mark.jvm
def test_doctor_reports_every_part(tmp_path):
    proc = run_cli("doctor", "--json", env={"C360_CACHE": str(tmp_path / "cache")})
    report = json.loads(proc.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert list(by_name) == PARTS and report["ok"] is True
    for name in ("Java", "Spark", "Splink similarity jar", "DuckDB", "implicit CPU"):
        assert by_name[name]["ok"] and by_name[name]["required"], by_name[name]
    # the version line, though the suite's JAVA_TOOL_OPTIONS (tests/conftest.py) makes the JVM print a note first
    assert os.environ.get("JAVA_TOOL_OPTIONS") and 'version "17' in by_name["Java"]["detail"]
    gpu = by_name["implicit GPU"]
    assert gpu["required"] is False and gpu["detail"]  # on or off, it always says why
    jars = by_name["Gremlin Server jars"]  # an empty cache: not fetched yet, and how they will be
    assert jars["required"] is False and "not fetched yet" in jars["detail"]
    table = run_cli("doctor", env={"C360_CACHE": str(tmp_path / "cache")}).stdout
    assert all(name in table for name in PARTS)


@pytest.mark.slow
def test_a_missing_required_part_fails_with_the_reason(tmp_path):
    proc = run_cli("doctor", "--json", check=False, env={"PATH": str(tmp_path / "no-tools")})
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    java = next(c for c in report["checks"] if c["name"] == "Java")
    assert report["ok"] is False and java["ok"] is False and "apt-get install openjdk-17" in java["detail"]
    maven = next(c for c in report["checks"] if c["name"] == "Maven")
    assert maven["ok"] is False and maven["required"] is False  # optional: reported, not fatal


def test_a_check_that_raises_is_a_failed_check_not_a_crash():
    def broken():
        raise RuntimeError("disk on fire")

    checks = run_checks([lambda: [Check("fine", True, "yes")], broken, "c360.nosuchmodule:checks"])
    assert [c.ok for c in checks] == [True, False, False]
    assert "disk on fire" in checks[1].detail and "nosuchmodule" in checks[2].detail
