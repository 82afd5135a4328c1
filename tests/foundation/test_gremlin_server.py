"""`c360 gremlin` against a real TinkerPop Gremlin Server."""

import shutil
import socket

import pytest
from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection
from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.traversal import T

from tests.conftest import GREMLIN_PASSWORD, GREMLIN_USERNAME, free_port, run_cli


def test_string_ids_round_trip(gremlin_url):
    port = gremlin_url.rsplit(":", 1)[1]
    conn = DriverRemoteConnection(f"ws://127.0.0.1:{port}/gremlin", "g", username=GREMLIN_USERNAME,
                                  password=GREMLIN_PASSWORD)
    try:
        g = traversal().with_remote(conn)
        g.V("test-11376-property").drop().iterate()
        g.add_v("customer").property(T.id, "test-11376-property").property("first_name", "James").iterate()
        g.add_v("match").property(T.id, "test-42").iterate()
        g.V("test-11376-property").add_e("SameAs").to(g.V("test-42").next()).iterate()
        assert g.V("test-11376-property").values("first_name").next() == "James"
        assert g.V("test-11376-property").out("SameAs").id_().next() == "test-42"
        g.V("test-11376-property", "test-42").drop().iterate()
    finally:
        conn.close()


def test_status_reports_running(gremlin_url):
    port = gremlin_url.rsplit(":", 1)[1]
    out = run_cli("gremlin", "status", "--port", port).stdout
    assert "running" in out and "not running" not in out


def test_status_when_stopped_exits_nonzero():
    proc = run_cli("gremlin", "status", "--port", str(free_port()), check=False)
    assert proc.returncode == 3
    assert "not running" in proc.stdout


@pytest.mark.slow
def test_port_taken_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = run_cli("gremlin", "start", "--port", str(port), check=False)
    assert proc.returncode == 2
    assert f"port {port} is already in use" in proc.stderr


@pytest.mark.jvm
def test_persistence_survives_restart(tmp_path):
    port = str(free_port())
    store = tmp_path / "graph.json"
    run_cli("gremlin", "start", "--port", port, "--persist", str(store))
    try:
        conn = DriverRemoteConnection(f"ws://127.0.0.1:{port}/gremlin", "g", username=GREMLIN_USERNAME,
                                  password=GREMLIN_PASSWORD)
        traversal().with_remote(conn).add_v("match").property(T.id, "persisted-1").iterate()
        conn.close()
    finally:
        run_cli("gremlin", "stop", "--port", port)
    assert store.exists()
    run_cli("gremlin", "start", "--port", port, "--persist", str(store))
    try:
        conn = DriverRemoteConnection(f"ws://127.0.0.1:{port}/gremlin", "g", username=GREMLIN_USERNAME,
                                  password=GREMLIN_PASSWORD)
        assert traversal().with_remote(conn).V("persisted-1").count().next() == 1
        conn.close()
    finally:
        run_cli("gremlin", "stop", "--port", port)
    assert run_cli("gremlin", "status", "--port", port, check=False).returncode == 3


def test_missing_java_or_maven_is_a_clear_error(gremlin_url, tmp_path):
    """Without `mvn` (jars not cached yet) or without `java` on PATH, start says which tool and how to get it."""
    empty_path = str(tmp_path / "no-tools")
    java_only = tmp_path / "java-only"
    java_only.mkdir()
    (java_only / "java").symlink_to(shutil.which("java"))
    no_mvn = run_cli("gremlin", "start", "--port", str(free_port()), check=False,
                     env={"PATH": str(java_only), "C360_CACHE": str(tmp_path / "cache")})
    assert no_mvn.returncode != 0 and "'mvn' not found on PATH" in no_mvn.stderr and "Maven" in no_mvn.stderr
    no_java = run_cli("gremlin", "start", "--port", str(free_port()), check=False, env={"PATH": empty_path})
    assert no_java.returncode != 0 and "'java' not found on PATH" in no_java.stderr and "Java 17" in no_java.stderr
    assert "Traceback" not in no_mvn.stderr + no_java.stderr


@pytest.mark.slow
def test_start_without_credentials_is_a_clear_error(tmp_path):
    """No default account: start refuses, naming both variables, before fetching or starting anything."""
    proc = run_cli("gremlin", "start", "--port", str(free_port()), check=False,
                   env={"C360_GREMLIN_USERNAME": None, "C360_GREMLIN_PASSWORD": None, "C360_CONFIG": None,
                        "C360_CACHE": str(tmp_path / "cache")})
    assert proc.returncode != 0
    assert "C360_GREMLIN_USERNAME" in proc.stderr and "C360_GREMLIN_PASSWORD" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.pid"))
