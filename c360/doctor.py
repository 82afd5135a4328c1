"""`c360 doctor`: is every real part the product uses here, and if not, exactly why.

Each package supplies its own checks (a function returning `Check`s) and `c360/cli.py` lists them; this module
runs them and prints a table or JSON. A required part that is missing makes the command exit 1; an optional one
(the GPU) only says why it is off.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable


@dataclass(frozen=True)
class Check:
    """One part: whether it works here, what was found (a version, a path) or why not."""

    name: str
    ok: bool
    detail: str
    required: bool = True
    facts: dict = field(default_factory=dict)


def failed(name: str, exc: BaseException, required: bool = True) -> Check:
    """A check that raised: its error is the reason."""
    return Check(name, False, f"{type(exc).__name__}: {exc}", required)


def core_checks() -> list[Check]:
    """Java, Spark (pyspark), Splink's similarity jar, DuckDB."""
    return [_java(), _spark(), _splink_jar(), _duckdb()]


def _java() -> Check:
    java = shutil.which("java")
    if not java:
        return Check("Java", False, "'java' not on PATH: install Java 17 (e.g. apt-get install openjdk-17-jre-headless)")
    proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    # the version line, past the notes a JVM prints first when JAVA_TOOL_OPTIONS or JDK_JAVA_OPTIONS is set
    lines = [x for x in (proc.stderr or proc.stdout or "").splitlines() if x.strip() and "Picked up " not in x]
    line = next((x for x in lines if " version " in x), lines[0] if lines else "")
    m = re.search(r'version "(\d+)', line)
    major = int(m.group(1)) if m else None
    if major != 17:
        return Check("Java", False, f"{line or java}: Spark 3.5 and Gremlin Server 3.7 need Java 17", facts={"path": java})
    return Check("Java", True, line, facts={"path": java, "major": major})


def _spark() -> Check:
    try:
        import pyspark
    except ImportError as exc:
        return failed("Spark", exc)
    home = Path(pyspark.__file__).parent
    submit = home / "bin" / "spark-submit"
    if not submit.is_file():
        return Check("Spark", False, f"pyspark {pyspark.__version__}: {submit} missing")
    return Check("Spark", True, f"pyspark {pyspark.__version__} (spark-submit, local[*] by default)",
                 facts={"version": pyspark.__version__})


def _splink_jar() -> Check:
    try:
        import splink
        from splink.backends.spark import similarity_jar_location

        jar = Path(similarity_jar_location())
    except Exception as exc:  # noqa: BLE001 - any failure is the reason
        return failed("Splink similarity jar", exc)
    if not jar.is_file():
        return Check("Splink similarity jar", False, f"{jar} not found (Splink {splink.__version__})")
    return Check("Splink similarity jar", True, f"Splink {splink.__version__}: {jar.name}", facts={"path": str(jar)})


def _duckdb() -> Check:
    try:
        import duckdb

        value = duckdb.connect().execute("select 42").fetchone()[0]
    except Exception as exc:  # noqa: BLE001
        return failed("DuckDB", exc)
    return Check("DuckDB", value == 42, f"duckdb {duckdb.__version__}", facts={"version": duckdb.__version__})


def run_checks(providers: Iterable[str | Callable[[], list[Check]]]) -> list[Check]:
    """Every provider's checks, in order; a provider that fails to import or raises becomes a failed check."""
    out: list[Check] = []
    for provider in providers:
        try:
            if isinstance(provider, str):
                module, _, name = provider.partition(":")
                provider = getattr(importlib.import_module(module), name)
            out.extend(provider())
        except Exception as exc:  # noqa: BLE001 - the doctor reports, it does not crash
            out.append(failed(str(provider), exc))
    return out


def render(checks: list[Check]) -> str:
    """One line per part: ok / off (optional) / MISSING, and the detail."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        state = "ok" if c.ok else ("off" if not c.required else "MISSING")
        lines.append(f"{c.name:<{width}}  {state:<7}  {c.detail}")
    return "\n".join(lines)


def as_json(checks: list[Check]) -> str:
    """{"ok": every required part works, "checks": [...]}."""
    return json.dumps({"ok": all(c.ok or not c.required for c in checks), "checks": [asdict(c) for c in checks]},
                      indent=2)


def register(subparsers, providers: tuple[str, ...]) -> None:
    """`c360 doctor [--json]` over `providers` ("module:function" names)."""
    p = subparsers.add_parser("doctor", help="check every real part the product uses (Java, Spark, Splink, DuckDB, "
                                             "Maven / Gremlin Server jars, implicit CPU and GPU)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=lambda args: _doctor(args, providers))


def _doctor(args, providers) -> int:
    checks = run_checks(providers)
    print(as_json(checks) if args.json else render(checks))
    sys.stdout.flush()
    return 0 if all(c.ok or not c.required for c in checks) else 1
