"""Jars from Maven Central for the servers the CLI runs locally (Gremlin Server, Kafka): resolved once per version
with `mvn dependency:copy-dependencies` on the server's pom into the cache directory."""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

from c360.errors import C360Error
from c360.processes import require_tool

COMPLETE = ".complete"   # written into the lib directory once every jar is there


def cache_dir(cache: str | Path | None = None) -> Path:
    """`cache`, else the configured cache directory (c360.settings: C360_CACHE, default ~/.cache/c360)."""
    if cache is not None:
        return Path(cache)
    from c360.settings import load_settings

    return Path(load_settings().cache)


def fetch_jars(pom: Path, lib: Path, what: str, version: str) -> Path:
    """Resolve the runtime dependencies of `pom` into `lib` once; return `lib`. Processes fetching at once (test
    workers, two shells) take turns on a lock file: one runs Maven, the others find the jars there."""
    marker = lib / COMPLETE
    if marker.exists():
        return lib
    mvn = require_tool("mvn", f"install Apache Maven (e.g. apt-get install maven) to fetch the {what} jars")
    lib.mkdir(parents=True, exist_ok=True)
    with open(lib.parent / ".fetch.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():  # fetched by another process while this one waited
            return lib
        proc = subprocess.run([mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
                               f"-DoutputDirectory={lib}", "-DincludeScope=runtime"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise C360Error(f"Maven could not fetch the {what} jars:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        marker.write_text(version)
    return lib
