"""A Spark standalone cluster on this machine: one master and one worker started from the installed pyspark.

The same processes a real standalone cluster runs (`spark-class org.apache.spark.deploy.master.Master` and
`...deploy.worker.Worker spark://HOST:PORT`), so a job sent to `spark://127.0.0.1:PORT` gets separate executor
JVMs, shuffles between processes and ships its jars to them, as on a cluster. Everything binds to loopback.
Each cluster is keyed by its master port and keeps its pid files, logs and the worker's directory (executor
logs and fetched jars) in a run directory under the cache (C360_CACHE, default ~/.cache/c360).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from c360.errors import C360Error, ToolMissingError
from c360.processes import free_port, pid_alive, port_in_use, stop_process_group

HOST = "127.0.0.1"
DEFAULT_PORT = 7077
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
DAEMON_MEMORY = "512m"   # heap of the master and worker JVMs themselves (Spark's default: 1g each)
# the daemons never need these; executors inherit the worker's environment
_SECRET_VARS = ("C360_GREMLIN_PASSWORD", "C360_API_KEYS")


def spark_home() -> Path:
    """The installed pyspark's directory: the SPARK_HOME of its bin/spark-class and jars/."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def spark_class() -> Path:
    """pyspark's bin/spark-class (runs a Spark main class with pyspark's jars on the classpath)."""
    path = spark_home() / "bin" / "spark-class"
    if not path.is_file():
        raise ToolMissingError(f"{path} not found: reinstall pyspark")
    return path


def master_url(port: int = DEFAULT_PORT, host: str = HOST) -> str:
    return f"spark://{host}:{port}"


@dataclass
class ClusterPaths:
    """Files of one local cluster, keyed by its master port."""

    port: int
    cache: Path | None = None

    def __post_init__(self):
        if self.cache is None:
            from c360.settings import load_settings

            self.cache = load_settings().cache
        self.cache = Path(self.cache)

    @property
    def run_dir(self) -> Path:
        return self.cache / "spark-run" / str(self.port)

    def pid_file(self, role: str) -> Path:
        return self.run_dir / f"{role}.pid"

    def log_file(self, role: str) -> Path:
        return self.run_dir / f"{role}.log"

    @property
    def info_file(self) -> Path:   # the web UI ports, for status
        return self.run_dir / "cluster.json"

    @property
    def work_dir(self) -> Path:    # the worker's directory: one folder per application and executor
        return self.run_dir / "work"





def _running_pid(paths: ClusterPaths, role: str) -> int | None:
    pid_file = paths.pid_file(role)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid_alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def _daemon_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in _SECRET_VARS and not k.startswith("PYSPARK_GATEWAY") and k != "SPARK_HOME"}
    # every socket of the daemons (RPC, web UI) on loopback; Spark's web UIs otherwise bind 0.0.0.0
    env.update(SPARK_LOCAL_IP=HOST, SPARK_DAEMON_MEMORY=DAEMON_MEMORY, SPARK_HOME=str(spark_home()))
    return env


def _launch(paths: ClusterPaths, role: str, args: list[str]) -> subprocess.Popen:
    """Start one daemon in its own process group (so stop also ends the executors the worker forked)."""
    log = open(paths.log_file(role), "ab")
    proc = subprocess.Popen([str(spark_class()), *args], cwd=paths.run_dir, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, env=_daemon_env())
    log.close()
    paths.pid_file(role).write_text(str(proc.pid))
    return proc


def master_state(webui_port: int, timeout: float = 2.0) -> dict | None:
    """The master's state as its web UI's /json/ reports it (workers, cores, applications), or None."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{webui_port}/json/", timeout=timeout) as resp:
            return json.loads(resp.read().decode())
    except (OSError, ValueError):
        return None


def start(port: int = DEFAULT_PORT, cores: int = 2, memory: str = "2g", wait_s: float = 120.0,
          cache: str | Path | None = None) -> dict:
    """Start a master on 127.0.0.1:`port` and one worker offering `cores` and `memory` to executors; wait until
    the worker has registered. Returns status(). Already running (ours, with a live worker): returns its status.
    The port held by another process: C360Error."""
    paths = ClusterPaths(port, cache)
    current = status(port, paths.cache)
    if current["running"] and current["workers"]:
        return current
    if current["master_pid"] or current["worker_pid"]:
        stop(port, cache=paths.cache)  # half of one (a worker that died): start over
    if port_in_use(port):
        raise C360Error(f"port {port} is already in use by another process; pick another with --port")
    require_java()
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.work_dir.mkdir(exist_ok=True)
    webui, worker_webui = free_port(), free_port()
    paths.info_file.write_text(json.dumps({"port": port, "webui_port": webui, "worker_webui_port": worker_webui}))
    master = _launch(paths, "master", [MASTER_CLASS, "--host", HOST, "--port", str(port),
                                       "--webui-port", str(webui)])
    worker = None
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            for role, proc in (("master", master), ("worker", worker)):
                if proc is not None and proc.poll() is not None:
                    raise C360Error(f"the Spark {role} exited with code {proc.returncode}; see "
                                    f"{paths.log_file(role)}:\n{_tail(paths.log_file(role))}")
            if worker is None and port_in_use(port):
                worker = _launch(paths, "worker", [WORKER_CLASS, master_url(port), "--host", HOST,
                                                   "--cores", str(cores), "--memory", memory,
                                                   "--work-dir", str(paths.work_dir),
                                                   "--webui-port", str(worker_webui)])
            state = master_state(webui) if worker is not None else None
            if state and state.get("aliveworkers", 0) >= 1:
                return status(port, paths.cache)
            time.sleep(0.5)
    except BaseException:
        stop(port, cache=paths.cache)
        raise
    stop(port, cache=paths.cache)
    raise C360Error(f"no Spark worker registered with the master on port {port} within {wait_s:.0f}s; see "
                    f"{paths.log_file('worker')}")


def stop(port: int = DEFAULT_PORT, wait_s: float = 30.0, cache: str | Path | None = None) -> bool:
    """Stop our worker (and its executors), then our master: SIGTERM to each process group, then SIGKILL.
    True if anything was running."""
    paths = ClusterPaths(port, cache)
    stopped = False
    for role in ("worker", "master"):
        pid = _running_pid(paths, role)
        if pid is None:
            continue
        stopped = True
        stop_process_group(pid, wait_s, alive=_group_alive)  # the daemon and the executors it forked
        paths.pid_file(role).unlink(missing_ok=True)
    return stopped


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (a daemon and the executors it forked)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def status(port: int = DEFAULT_PORT, cache: str | Path | None = None) -> dict:
    """{'running', 'url', 'master_pid', 'worker_pid', 'workers', 'cores', 'memory_mb', 'apps', 'webui_port',
    'run_dir'}: running means our master is alive and answers; workers, cores and memory are the master's."""
    paths = ClusterPaths(port, cache)
    master_pid, worker_pid = _running_pid(paths, "master"), _running_pid(paths, "worker")
    try:
        info = json.loads(paths.info_file.read_text())
    except (OSError, ValueError):
        info = {}
    state = master_state(info["webui_port"]) if master_pid and info.get("webui_port") else None
    return {"running": state is not None, "url": master_url(port), "master_pid": master_pid,
            "worker_pid": worker_pid, "workers": (state or {}).get("aliveworkers", 0),
            "cores": (state or {}).get("cores", 0), "memory_mb": (state or {}).get("memory", 0),
            "apps": len((state or {}).get("activeapps", [])), "webui_port": info.get("webui_port"),
            "run_dir": str(paths.run_dir)}


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def is_local_cluster(master: str) -> bool:
    """True for a standalone master on this machine's loopback (spark://127.0.0.1:P, spark://localhost:P)."""
    return master.startswith(("spark://127.0.0.1:", "spark://localhost:"))


def require_java() -> str:
    java = shutil.which("java")
    if not java and not os.environ.get("JAVA_HOME"):
        raise ToolMissingError("install Java 17 (e.g. apt-get install openjdk-17-jre-headless)")
    return java or str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
