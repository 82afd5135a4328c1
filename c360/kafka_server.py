"""A local Apache Kafka 4.x broker (`c360 kafka start|stop|status`): jars from Maven Central, KRaft mode, one node
that is broker and controller at once.

The jars are resolved once with `mvn dependency:copy-dependencies` on kafka/pom.xml into the cache directory (as
`c360 gremlin start` does for TinkerPop). A server's files live under `<cache>/kafka-run/<port>/`: the generated
server.properties, the pid file, the log and `data/` (formatted once with a fresh cluster id: a restart on the same
port keeps every topic, which is what makes it a log). The broker listens on loopback only.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from c360.errors import C360Error
from c360.maven import COMPLETE, cache_dir, fetch_jars
from c360.processes import free_port, log_tail, port_in_use, require_tool, running_pid, stop_process_group

KAFKA_DIR = Path(__file__).resolve().parent / "kafka"
POM = KAFKA_DIR / "pom.xml"
DEFAULT_PORT = 9092
HOST = "127.0.0.1"

# one node: every internal topic has one replica; rebalances start at once (tests and benchmarks start groups often)
_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
"""
_LOG4J = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
"""


def kafka_version() -> str:
    """The Kafka version pinned in the pom."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    return ET.parse(POM).getroot().find("m:properties/m:kafka.version", ns).text.strip()


def jars_dir(cache: str | Path | None = None) -> Path:
    return cache_dir(cache) / f"kafka-{kafka_version()}" / "lib"


def ensure_jars(cache: str | Path | None = None) -> Path:
    """Resolve the broker's jars with Maven once (under the cache directory); return the lib directory."""
    return fetch_jars(POM, jars_dir(cache), "Kafka", kafka_version())


@dataclass
class BrokerPaths:
    """Files of one local broker, keyed by its port."""

    port: int
    cache: Path | None = None

    def __post_init__(self):
        self.cache = cache_dir(self.cache)

    @property
    def run_dir(self) -> Path:
        return self.cache / "kafka-run" / str(self.port)

    @property
    def data(self) -> Path:
        return self.run_dir / "data"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "kafka.log"

    @property
    def properties(self) -> Path:
        return self.run_dir / "server.properties"


def broker_pid(port: int = DEFAULT_PORT, cache: str | Path | None = None) -> int | None:
    """The pid of our broker on `port` if it is alive, else None (a stale pid file is removed)."""
    return running_pid(BrokerPaths(port, cache).pid_file)


def ping(port: int = DEFAULT_PORT, host: str = HOST, timeout: float = 5.0) -> bool:
    """True when the broker answers a metadata request."""
    from confluent_kafka.admin import AdminClient

    try:
        admin = AdminClient({"bootstrap.servers": f"{host}:{port}", "socket.timeout.ms": int(timeout * 1000)})
        return bool(admin.list_topics(timeout=timeout).brokers)
    except Exception:  # noqa: BLE001 - any failure means not answering
        return False


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (what `kafka-storage random-uuid` says),
    never starting with "-" (as Kafka's Uuid.randomUuid: the storage tool would read one as an option and refuse to
    format, one start in 64)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _controller_port(paths: BrokerPaths) -> int:
    """The controller's port: the one of the last start when it is free (a restart is the same quorum), else a new
    free one."""
    saved = paths.run_dir / "controller.port"
    try:
        port = int(saved.read_text())
        if not port_in_use(port):
            return port
    except (FileNotFoundError, ValueError):
        pass
    port = free_port()
    saved.write_text(str(port))
    return port


def _write_config(paths: BrokerPaths) -> None:
    """server.properties and the log4j2 configuration."""
    paths.properties.write_text(_PROPERTIES.format(host=HOST, port=paths.port, controller_port=_controller_port(paths),
                                                   data=paths.data))
    (paths.run_dir / "log4j2.properties").write_text(_LOG4J)


def _format(java: str, lib: Path, paths: BrokerPaths) -> None:
    """Format the storage once (a data directory with meta.properties is the broker's: kept across restarts)."""
    if (paths.data / "meta.properties").exists():
        return
    proc = subprocess.run([java, "-cp", f"{lib}/*", "kafka.tools.StorageTool", "format", "-t", _cluster_id(),
                           "-c", str(paths.properties)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise C360Error(f"could not format the Kafka storage in {paths.data}:\n{proc.stdout[-2000:]}"
                        f"{proc.stderr[-2000:]}")


def start(port: int = DEFAULT_PORT, wait_s: float = 90.0, heap: str = "512m", cache: str | Path | None = None) -> int:
    """Start the broker on loopback and wait until it answers; return its pid. Already running (our pid file, alive,
    answering) → that pid. Port held by another process → C360Error."""
    paths = BrokerPaths(port, cache)
    pid = broker_pid(port, paths.cache)
    if pid is not None and ping(port):
        return pid
    if port_in_use(port):
        raise C360Error(f"port {port} is already in use by another process; pick another with --port")
    java = require_tool("java", "install Java 17 (e.g. apt-get install openjdk-17-jre-headless)")
    lib = ensure_jars(paths.cache)
    paths.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths.run_dir.chmod(0o700)  # its topics hold customer records
    _write_config(paths)
    _format(java, lib, paths)
    cmd = [java, f"-Xmx{heap}", f"-Dlog4j2.configurationFile={paths.run_dir / 'log4j2.properties'}",
           "-cp", f"{lib}/*", "kafka.Kafka", str(paths.properties)]
    with open(paths.log_file, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=paths.run_dir, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    paths.pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            paths.pid_file.unlink(missing_ok=True)
            raise C360Error(f"Kafka exited with code {proc.returncode}; see {paths.log_file}:\n"
                            f"{log_tail(paths.log_file)}")
        if port_in_use(port) and ping(port):
            return proc.pid
        time.sleep(0.5)
    stop(port, cache=paths.cache)
    raise C360Error(f"Kafka did not answer on port {port} within {wait_s:.0f}s; see {paths.log_file}")


def stop(port: int = DEFAULT_PORT, wait_s: float = 30.0, cache: str | Path | None = None) -> bool:
    """Stop our broker on `port` (SIGTERM: a clean shutdown, then SIGKILL); True if one was running. Its data stays."""
    paths = BrokerPaths(port, cache)
    pid = broker_pid(port, paths.cache)
    if pid is None:
        return False
    stop_process_group(pid, wait_s)
    paths.pid_file.unlink(missing_ok=True)
    return True


def status(port: int = DEFAULT_PORT, cache: str | Path | None = None) -> dict:
    """{'running', 'pid', 'answering', 'port', 'log', 'version'}."""
    paths = BrokerPaths(port, cache)
    pid = broker_pid(port, paths.cache)
    return {"running": pid is not None, "pid": pid, "answering": pid is not None and ping(port), "port": port,
            "log": str(paths.log_file), "version": kafka_version()}


def doctor_checks() -> list:
    """`c360 doctor`: the Kafka jars (optional: the file journal needs no broker)."""
    from c360.doctor import Check

    lib = jars_dir()
    if (lib / COMPLETE).exists():
        jars = len(list(lib.glob("*.jar")))
        return [Check("Kafka jars", True, f"Kafka {kafka_version()}: {jars} jars in {lib}", required=False,
                      facts={"lib": str(lib), "jars": jars})]
    mvn = shutil.which("mvn")
    return [Check("Kafka jars", bool(mvn), f"Kafka {kafka_version()}: not fetched yet"
                  + ("; `c360 kafka start` fetches them with Maven" if mvn else ", and Maven is missing"),
                  required=False, facts={"lib": str(lib)})]

