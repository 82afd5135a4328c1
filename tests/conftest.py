"""Session fixtures: a real local Spark session and a real Gremlin Server started with `c360 gremlin`."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The test session's Gremlin Server account (the server has no default one): `c360` children started by run_cli get
# it, and the gremlin_url fixture puts it in this process's environment for in-process clients (GremlinStore).
GREMLIN_USERNAME = "c360-test"
GREMLIN_PASSWORD = "test-" + secrets.token_urlsafe(16)
GREMLIN_ENV = {"C360_GREMLIN_USERNAME": GREMLIN_USERNAME, "C360_GREMLIN_PASSWORD": GREMLIN_PASSWORD}


# The suite's JVMs (Spark drivers and executors, the Gremlin Server, Kafka; in this process and in every child) live
# seconds to minutes over small data, and the suite is CPU-bound on 2 cores: the C1 compiler alone and the serial
# collector spend about 30% less CPU there than the server defaults (tests/graph/test_export.py: 110 -> 77 CPU-s, the
# same wall time alone), and the classes of the jars (Maven Central's and PyPI's, not ours) are not verified again (a
# Spark session's start 5.8 -> 4.7 CPU-s alone). Settings of the test session's JVMs only, none where the caller set
# JAVA_TOOL_OPTIONS; the product's are left to its deployment. (Class data sharing was tried as well: a Spark session's
# start 4.7 -> 3.1 CPU-s, but making the archive took 16 s, about what the whole suite gained.)
TEST_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:+UnlockDiagnosticVMOptions "
                    "-XX:-BytecodeVerificationRemote")
os.environ.setdefault("JAVA_TOOL_OPTIONS", TEST_JVM_OPTIONS)


# A test that uses one of these fixtures starts a JVM (Spark, the Gremlin Server): it is marked `jvm`, and
# `make check` (the inner loop) leaves it out. Tests that start one themselves carry the mark in their module.
JVM_FIXTURES = frozenset({"spark", "spark_cluster", "gremlin_url", "kafka_url"})


# The modules that take longest (whole nightlies, a wheel install, a Spark cluster), first: `make test` runs two
# workers, each taking whole modules in this order (two at the start), so the long ones start at once and the short
# ones fill in at the end. The third is a shorter one: it queues behind the longest (the cluster's two nightlies).
# Then the modules of 10-30 s, longest first (measured on a fresh clone), so that the last to start are short ones
# and both workers end together (in collection order the recommenders' Spark modules came last: a worker idle 15 s).
LONGEST_FIRST = ("jobs/test_cluster.py", "foundation/test_install.py", "graph/test_backends.py",
                 "jobs/test_nightly.py", "realtime/test_nightly_logs.py", "realtime/test_nightly.py",
                 "graph/test_export.py", "entity_resolution/test_hadoop_paths.py",
                 "api/test_schemathesis.py", "recsys/test_spark_pipeline.py", "api/test_kafka_log.py",
                 "realtime/test_matcher.py", "api/test_metrics.py", "foundation/test_gremlin_server.py",
                 "entity_resolution/test_er.py", "foundation/test_settings_spark_cli.py",
                 "entity_resolution/test_unseen_data.py", "recsys/test_trips.py", "recsys/test_spark_models.py",
                 "api/test_events.py", "jobs/test_validate.py", "recsys/test_gpu_extra.py", "graph/test_notebook.py",
                 "api/test_server_limits.py")


def _module_rank(item) -> int:
    path = item.nodeid.split("::", 1)[0].removeprefix("tests/")
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if JVM_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.jvm)
    items.sort(key=_module_rank)  # stable: the order inside a module, and of the other modules, is kept


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, check: bool = True, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `c360 ARGS` in a subprocess (the real console entry point) and return the result. The child's environment:
    this one plus the test Gremlin account (GREMLIN_ENV) plus `env`, where a value None removes the variable."""
    child = {**os.environ, **GREMLIN_ENV, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "c360", *args], capture_output=True, text=True, cwd=REPO,
                          env={k: v for k, v in child.items() if v is not None}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"c360 {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session", autouse=True)
def gremlin_account():
    """The test Gremlin account (GREMLIN_ENV) in os.environ for the whole session: in-process clients (GremlinStore
    via load_settings) authenticate, and tools run from tests (docker-compose config) find the required variables."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in GREMLIN_ENV.items():
            mp.setenv(key, value)
        yield GREMLIN_ENV


@pytest.fixture(scope="session")
def gremlin_url(gremlin_account):
    """Start a Gremlin Server (account GREMLIN_ENV) on a free loopback port for the whole session; stop it afterwards."""
    port = free_port()
    run_cli("gremlin", "start", "--port", str(port), timeout=300)
    try:
        yield f"gremlin://127.0.0.1:{port}"
    finally:
        run_cli("gremlin", "stop", "--port", str(port), check=False)


@pytest.fixture(scope="session")
def kafka_url():
    """A Kafka broker started with `c360 kafka start` on a free loopback port for the whole session:
    `kafka://127.0.0.1:PORT` (a test adds /TOPIC, its own). Skipped only when the jars cannot be fetched (no Maven,
    no Maven Central); stopped afterwards, its data removed."""
    import shutil

    from c360 import kafka_server
    from c360.errors import C360Error

    try:
        kafka_server.ensure_jars()
    except C360Error as exc:
        pytest.skip(f"the Kafka jars cannot be fetched: {exc}")
    port = free_port()
    run_cli("kafka", "start", "--port", str(port), timeout=300)
    try:
        yield f"kafka://127.0.0.1:{port}"
    finally:
        run_cli("kafka", "stop", "--port", str(port), check=False)
        shutil.rmtree(kafka_server.BrokerPaths(port).run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local Spark session (2 threads) shared by the suite."""
    from c360.settings import Settings
    from c360.spark import get_spark

    settings = Settings(spark_master="local[2]", spark_conf={
        "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "4", "spark.driver.memory": "3g"})
    session = get_spark(settings, app_name="c360-tests",
                        checkpoint_dir=str(tmp_path_factory.mktemp("spark-checkpoints")))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """A Spark standalone master and one worker (2 cores, 2 GB for executors) started from the installed pyspark
    on a free loopback port for the whole session (c360.spark_cluster); yields its status (`url` is the master to
    give C360_SPARK_MASTER, `run_dir` holds the logs and the worker's executor directories). Stopped afterwards:
    no daemon or executor of it may outlive the session."""
    from c360 import spark_cluster as cluster

    cache = tmp_path_factory.mktemp("spark-cluster")
    port = free_port()
    status = cluster.start(port, cores=2, memory="2g", cache=cache)
    try:
        yield status
    finally:
        cluster.stop(port, cache=cache)
        left = [pid for pgid in (status["master_pid"], status["worker_pid"]) for pid in cluster.group_members(pgid)]
        assert not left, f"processes of the Spark cluster outlived its stop: {left}"
