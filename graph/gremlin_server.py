"""Run a local Apache TinkerPop Gremlin Server (TinkerGraph) for development and tests.

Jars come from Maven Central through the pom kept beside this module (graph/gremlin/pom.xml) and
are cached outside the repository (the `cache` setting, C360_CACHE, default ~/.cache/c360). Each server gets a run
directory laid out like the official image (conf/, scripts/) holding its pid file and log.

Security (conf/gremlin-server.yaml): every connection authenticates with SASL PLAIN against a SimpleAuthenticator, and
the authorizer admits bytecode traversals on `g` only (no string scripts, no lambdas). There is no default account:
`start` needs the `gremlin_username` / `gremlin_password` settings (C360_GREMLIN_USERNAME / C360_GREMLIN_PASSWORD);
scripts/c360-prepare.groovy turns them into the BCrypt-hashed credentials graph (mode 0600, in the run directory's
c360-run/) and compiles the authorizer, with the server's own jars, exactly as the compose file does in the image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from c360 import processes
from c360.errors import C360Error
from c360.maven import COMPLETE, cache_dir, fetch_jars
from c360.processes import log_tail, port_in_use, require_tool, stop_process_group

GREMLIN_DIR = Path(__file__).resolve().parent / "gremlin"
POM = GREMLIN_DIR / "pom.xml"
DEFAULT_PORT = 8182
HOST = "127.0.0.1"
RUN_SUBDIR = "c360-run"  # generated at start: credentials.json (the credentials graph) and classes/ (the authorizer)
CREDENTIAL_VARS = "C360_GREMLIN_USERNAME and C360_GREMLIN_PASSWORD"


def credentials(settings=None) -> tuple[str, str]:
    """(username, password) from `settings` (default: load_settings()); C360Error naming the variables when unset."""
    if settings is None:
        from c360.settings import load_settings

        settings = load_settings()
    username, password = settings.gremlin_username, settings.gremlin_password
    if not (username or "").strip() or not password:
        raise C360Error(f"Gremlin Server credentials are not set: set {CREDENTIAL_VARS} (or gremlin_username / "
                        "gremlin_password in the config file); the server has no default account")
    return username, password


def tinkerpop_version() -> str:
    """The Gremlin Server version pinned in the pom."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    return ET.parse(POM).getroot().find("m:properties/m:tinkerpop.version", ns).text.strip()


def ensure_jars(cache: str | Path | None = None) -> Path:
    """Resolve the server's jars with Maven once (under the cache directory); return the lib directory."""
    require_tool("java", "install Java 17 (e.g. apt-get install openjdk-17-jre-headless)")
    return fetch_jars(POM, cache_dir(cache) / f"gremlin-server-{tinkerpop_version()}" / "lib", "Gremlin Server",
                      tinkerpop_version())


@dataclass
class ServerPaths:
    """Files of one local server, keyed by port (under the cache directory, default: the configured one)."""

    port: int
    cache: Path | None = None

    def __post_init__(self):
        self.cache = cache_dir(self.cache)

    @property
    def run_dir(self) -> Path:
        return self.cache / "gremlin-run" / str(self.port)

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "gremlin-server.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "gremlin-server.log"




def running_pid(port: int = DEFAULT_PORT, cache: str | Path | None = None) -> int | None:
    """The pid of our server on `port` if it is alive, else None (stale pid files are removed)."""
    return processes.running_pid(ServerPaths(port, cache).pid_file)


def _prepare_run_dir(paths: ServerPaths, persist: str | None) -> Path:
    run = paths.run_dir
    run.chmod(0o700)  # holds the credentials graph
    for sub in ("conf", "scripts"):
        shutil.rmtree(run / sub, ignore_errors=True)
        shutil.copytree(GREMLIN_DIR / sub, run / sub)
    yaml_path = run / "conf" / "gremlin-server.yaml"
    text = yaml_path.read_text()
    text = text.replace("host: 0.0.0.0", f"host: {HOST}").replace("port: 8182", f"port: {paths.port}")
    yaml_path.write_text(text)
    if persist:
        props = run / "conf" / "tinkergraph-c360.properties"
        location = Path(persist).resolve()
        location.parent.mkdir(parents=True, exist_ok=True)
        props.write_text(
            props.read_text()
            + f"gremlin.tinkergraph.graphLocation={location}\ngremlin.tinkergraph.graphFormat=graphson\n"
        )
    return yaml_path


def _server_env() -> dict:
    """The environment of the server JVMs, without the password (only the prepare step gets it)."""
    return {k: v for k, v in os.environ.items() if k != "C360_GREMLIN_PASSWORD"}


def _prepare_security(java: str, lib: Path, run: Path, username: str, password: str) -> None:
    """Write the credentials graph and compile the authorizer (scripts/c360-prepare.groovy) in the run directory."""
    proc = subprocess.run(
        [java, "-cp", f"{lib}/*", "groovy.ui.GroovyMain", "scripts/c360-prepare.groovy", RUN_SUBDIR,
         "scripts/BytecodeOnlyAuthorizer.groovy"],
        cwd=run, capture_output=True, text=True, stdin=subprocess.DEVNULL,
        env={**_server_env(), "C360_GREMLIN_USERNAME": username, "C360_GREMLIN_PASSWORD": password},
    )
    if proc.returncode != 0:
        raise C360Error(f"could not prepare the Gremlin Server's credentials and authorizer:\n"
                        f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def ping(port: int = DEFAULT_PORT, host: str = HOST, timeout: float = 5.0, username: str | None = None,
         password: str | None = None) -> bool:
    """True when an authenticated gremlinpython round trip (g.inject(1)) answers."""
    from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection
    from gremlin_python.process.anonymous_traversal import traversal

    conn = None
    try:
        conn = DriverRemoteConnection(f"ws://{host}:{port}/gremlin", "g", username=username or "",
                                      password=password or "")
        g = traversal().with_remote(conn)
        return g.inject(1).next() == 1
    except Exception:
        return False
    finally:
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


def start(port: int = DEFAULT_PORT, persist: str | None = None, wait_s: float = 90.0,
          heap: str = "1g", cache: str | Path | None = None, username: str | None = None,
          password: str | None = None) -> int:
    """Start the server on loopback and wait for an authenticated round trip; return its pid.

    `username` / `password`: the one account of the server (default: the settings; C360Error when unset).

    Already running (our pid file, alive, answering) → return that pid. Port held by another
    process → C360Error. `persist` keeps the graph in a Gryo file across restarts. `cache`: where jars and
    run directories live (default: the configured cache directory).
    """
    if username is None or password is None:
        username, password = credentials()
    elif not username.strip() or not password:
        raise C360Error(f"Gremlin Server credentials are not set: set {CREDENTIAL_VARS}")
    paths = ServerPaths(port, cache)
    pid = running_pid(port, paths.cache)
    if pid is not None and ping(port, username=username, password=password):
        return pid
    if port_in_use(port):
        raise C360Error(f"port {port} is already in use by another process; pick another with --port")
    java = require_tool("java", "install Java 17 (e.g. apt-get install openjdk-17-jre-headless)")
    lib = ensure_jars(paths.cache)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    yaml_path = _prepare_run_dir(paths, persist)
    _prepare_security(java, lib, paths.run_dir, username, password)
    log = open(paths.log_file, "ab")
    classpath = f"{lib}/*{os.pathsep}{paths.run_dir / RUN_SUBDIR / 'classes'}"
    cmd = [java, f"-Xmx{heap}", "-Dlogback.configurationFile=conf/logback.xml",
           "-cp", classpath, "org.apache.tinkerpop.gremlin.server.GremlinServer", str(yaml_path)]
    proc = subprocess.Popen(cmd, cwd=paths.run_dir, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, env=_server_env())
    paths.pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            paths.pid_file.unlink(missing_ok=True)
            raise C360Error(f"Gremlin Server exited with code {proc.returncode}; see {paths.log_file}:\n"
                            + log_tail(paths.log_file))
        if port_in_use(port) and ping(port, username=username, password=password):
            return proc.pid
        time.sleep(0.5)
    stop(port, cache=paths.cache)
    raise C360Error(f"Gremlin Server did not answer on port {port} within {wait_s:.0f}s; see {paths.log_file}")


def stop(port: int = DEFAULT_PORT, wait_s: float = 30.0, cache: str | Path | None = None) -> bool:
    """Stop our server on `port` (SIGTERM, then SIGKILL); True if one was running."""
    paths = ServerPaths(port, cache)
    pid = running_pid(port, paths.cache)
    if pid is None:
        return False
    stop_process_group(pid, wait_s)
    paths.pid_file.unlink(missing_ok=True)
    return True


def status(port: int = DEFAULT_PORT, cache: str | Path | None = None, username: str | None = None,
           password: str | None = None) -> dict:
    """{'running': bool, 'pid': int|None, 'answering': bool, 'port': int, 'log': path}; answering needs the
    credentials (without them it is False)."""
    paths = ServerPaths(port, cache)
    pid = running_pid(port, paths.cache)
    answering = pid is not None and bool(username and password) and ping(port, username=username, password=password)
    return {"running": pid is not None, "pid": pid, "answering": answering,
            "port": port, "log": str(paths.log_file), "version": tinkerpop_version()}


def doctor_checks() -> list:
    """`c360 doctor`: Maven and the Gremlin Server jars (optional parts: the embedded store needs neither)."""
    from c360.doctor import Check

    checks = []
    mvn = shutil.which("mvn")
    if mvn:
        proc = subprocess.run([mvn, "-v", "-B"], capture_output=True, text=True, timeout=120)
        text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)  # Maven colours its banner even with -B
        first = next((line for line in text.splitlines() if line.strip()), mvn)
        checks.append(Check("Maven", True, first.strip(), required=False, facts={"path": mvn}))
    else:
        checks.append(Check("Maven", False, "'mvn' not on PATH: needed once, to fetch the Gremlin Server jars "
                                            "(apt-get install maven)", required=False))
    lib = cache_dir() / f"gremlin-server-{tinkerpop_version()}" / "lib"
    if (lib / COMPLETE).exists():
        jars = len(list(lib.glob("*.jar")))
        checks.append(Check("Gremlin Server jars", True, f"TinkerPop {tinkerpop_version()}: {jars} jars in {lib}",
                            required=False, facts={"lib": str(lib), "jars": jars}))
    else:
        checks.append(Check("Gremlin Server jars", bool(mvn), f"TinkerPop {tinkerpop_version()}: not fetched yet"
                            + ("; `c360 gremlin start` fetches them with Maven" if mvn else ", and Maven is missing"),
                            required=False, facts={"lib": str(lib)}))
    return checks
