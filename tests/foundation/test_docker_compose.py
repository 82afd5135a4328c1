"""docker-compose.yml is valid and everything it mounts or builds exists in the repository; the deployment is
hardened: no default API keys, the API reached only through the nginx proxy and its limits, a non-root image."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
NGINX_CONF = REPO / "deploy" / "nginx.conf"


def _services():
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_compose_mounts_and_build_contexts_exist():
    services = _services()
    assert {"gremlin", "api", "nightly"} <= set(services)
    assert services["gremlin"]["image"].startswith("tinkerpop/gremlin-server:3.7.")
    assert services["nightly"]["profiles"] == ["nightly"]
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                assert (REPO / src).exists(), f"{name}: mounted {src} does not exist"
        build = svc.get("build")
        if build:
            ctx = REPO / build["context"]
            assert (ctx / build.get("dockerfile", "Dockerfile")).is_file()
    dockerfile = (REPO / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (REPO / src).exists(), f"Dockerfile copies missing {src}"


def test_gremlin_config_mounted_matches_the_local_one():
    gremlin = _services()["gremlin"]
    conf = gremlin["command"][0]
    mounted = {v.split(":")[1].replace("/opt/gremlin-server/", ""): v.split(":")[0] for v in gremlin["volumes"]}
    assert conf in mounted
    text = (REPO / mounted[conf]).read_text()
    for needed in ("tinkergraph-c360.properties", "c360-init.groovy"):
        assert needed in text
        assert any(p.endswith(needed) for p in mounted), f"{needed} referenced but not mounted"
    props = (REPO / "graph/gremlin/conf/tinkergraph-c360.properties").read_text()
    assert "vertexIdManager=ANY" in props


def _compose_env(**extra):
    """The environment for docker-compose: every variable the file requires set to a dummy, except
    C360_API_KEYS, then `extra`."""
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text())) - {"C360_API_KEYS"}
    env = {k: v for k, v in os.environ.items() if k != "C360_API_KEYS"}
    return {**env, **{var: "placeholder" for var in required}, **extra}


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_config_validates():
    proc = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                          cwd=REPO, env=_compose_env(C360_API_KEYS="some-key:reader"), timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_refuses_to_run_without_api_keys():
    proc = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                          cwd=REPO, env=_compose_env(), timeout=60)
    assert proc.returncode != 0 and "C360_API_KEYS" in proc.stderr, proc.stderr


def test_no_default_api_key():
    text = COMPOSE.read_text()
    assert "change-me" not in text
    doc = yaml.safe_load(text)
    keys = doc["x-app"]["environment"]["C360_API_KEYS"]
    assert re.fullmatch(r"\$\{C360_API_KEYS:\?[^}]+\}", keys), keys  # required, with a message; no fallback
    for name, svc in doc["services"].items():
        env = svc.get("environment") or {}
        assert env.get("C360_API_KEYS", keys) == keys, f"{name} overrides C360_API_KEYS"


def _nginx_directives(text: str) -> dict[str, list[str]]:
    """`name args;` statements of an nginx config (comments dropped), by name: the args of each occurrence."""
    out: dict[str, list[str]] = {}
    text = re.sub(r"#[^\n]*", "", text)
    for stmt in re.split(r"[;{}]", text):
        words = stmt.split()
        if words:
            out.setdefault(words[0], []).append(" ".join(words[1:]))
    return out


def test_api_is_reached_only_through_the_proxy():
    services = _services()
    api, proxy = services["api"], services["proxy"]
    assert "ports" not in api, "the API must not be published on the host"
    assert proxy["image"].startswith("nginx:")
    assert proxy["ports"] and all(p.startswith("127.0.0.1:") for p in proxy["ports"])
    published = {p.split(":")[1] for s in services.values() for p in s.get("ports", [])}
    assert "8000" in published  # the API's port on the host is now the proxy's
    mounts = {v.split(":")[1]: v.split(":")[0] for v in proxy["volumes"]}
    assert (REPO / mounts["/etc/nginx/nginx.conf"]).resolve() == NGINX_CONF
    assert "api" in proxy["depends_on"]
    conf = _nginx_directives(NGINX_CONF.read_text())
    assert [s for s in conf["server"] if s] == ["api:8000"] and conf["proxy_pass"] == ["http://c360_api"]
    assert conf["listen"] == ["80"] and proxy["ports"] == ["127.0.0.1:8000:80"]


def _size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([km]?)", value.lower()).groups()
    return int(number) * {"": 1, "k": 1024, "m": 2**20}[unit]


def _seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", value).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[unit]


def test_proxy_limits():
    conf = _nginx_directives(NGINX_CONF.read_text())
    assert _size(conf["client_header_buffer_size"][0]) <= 4096
    count, size = conf["large_client_header_buffers"][0].split()
    assert int(count) * _size(size) <= 32 * 1024  # the largest request head nginx accepts
    assert _size(conf["client_max_body_size"][0]) <= 2**20
    for name, most in (("client_header_timeout", 30), ("client_body_timeout", 30), ("keepalive_timeout", 15),
                       ("send_timeout", 30)):
        assert 0 < _seconds(conf[name][0].split()[0]) <= most, name
    assert conf["limit_conn"], "no per-client connection limit"


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")
def test_nginx_accepts_the_config(tmp_path):
    # `api` only resolves on the compose network: the same file with the upstream on loopback
    text = NGINX_CONF.read_text()
    assert "server api:8000;" in text
    conf = tmp_path / "nginx.conf"
    conf.write_text(text.replace("server api:8000;", "server 127.0.0.1:8000;"))
    proc = subprocess.run([shutil.which("nginx"), "-t", "-q", "-c", str(conf), "-p", str(tmp_path),
                           "-g", f"pid {tmp_path / 'nginx.pid'};"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_image_runs_as_an_unprivileged_user_owning_the_warehouse():
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    users = [line.split(None, 1)[1] for line in lines if line.startswith("USER ")]
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    text = (REPO / "Dockerfile").read_text()
    useradd = re.search(r"useradd\b[^\n]*", text)
    assert useradd and (f"--uid {user} " in useradd.group() or useradd.group().endswith(f" {user}")), "USER not created"
    assert re.search(r"chown [^\n]*/warehouse", text), "the warehouse volume is not writable by the user"
    # ownership set before VOLUME (a fresh named volume takes the image directory's ownership) and USER before CMD
    assert text.index("chown") < text.index("VOLUME") and text.index("USER ") < text.index("CMD")


def _command_args(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_nightly_submits_to_the_spark_master_and_worker_of_the_same_image():
    """spark-master and spark-worker run pyspark's spark-class from the repo's image (the driver's Spark and Python);
    the nightly's C360_SPARK_MASTER is the master they serve; the worker sees the warehouse where the nightly does
    (inputs, Spark checkpoints); nothing of Spark is published on the host and it gets none of the app's secrets."""
    doc = yaml.safe_load(COMPOSE.read_text())
    services, app = doc["services"], doc["x-app"]
    master, worker, nightly = services["spark-master"], services["spark-worker"], services["nightly"]
    for svc in (master, worker):
        assert svc["image"] == app["image"] and svc["build"] == app["build"]
        assert svc["command"][0] == "spark-class" and "ports" not in svc
        assert set(svc.get("environment") or {}).isdisjoint(app["environment"])
        assert svc["profiles"] == nightly["profiles"]
    assert master["command"][1] == "org.apache.spark.deploy.master.Master"
    assert worker["command"][1] == "org.apache.spark.deploy.worker.Worker"
    url = f"spark://{_command_args(master['command'], '--host')}:{_command_args(master['command'], '--port')}"
    assert master["hostname"] == "spark-master" and worker["command"][2] == url
    assert nightly["environment"]["C360_SPARK_MASTER"] == url
    assert {k: v for k, v in nightly["environment"].items() if k != "C360_SPARK_MASTER"}.items() \
        >= {k: v for k, v in app["environment"].items() if k != "C360_SPARK_MASTER"}.items()
    warehouse = nightly["environment"]["C360_WAREHOUSE"]
    assert f"warehouse:{warehouse}" in worker["volumes"] and f"warehouse:{warehouse}" in nightly["volumes"]
    assert "spark-worker" in nightly["depends_on"] and "spark-master" in worker["depends_on"]
    cores, memory = _command_args(worker["command"], "--cores"), _command_args(worker["command"], "--memory")
    assert re.fullmatch(r"\$\{SPARK_WORKER_CORES:-\d+\}", cores) and re.fullmatch(r"\$\{SPARK_WORKER_MEMORY:-\d+g\}", memory)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "openjdk-17" in dockerfile and "pip install" in dockerfile  # Java 17 and pyspark (spark-class) in the image


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_renders_the_nightly_profile_with_its_spark_cluster():
    """compose itself (merge keys, profiles, interpolation) gives the nightly the cluster's master URL and the app's
    settings, and starts the master and the worker with it."""
    env = _compose_env(C360_API_KEYS="some-key:reader", SPARK_WORKER_CORES="3")
    proc = subprocess.run(["docker-compose", "-f", str(COMPOSE), "--profile", "nightly", "config"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    assert {"spark-master", "spark-worker", "nightly"} <= set(services)
    nightly = services["nightly"]["environment"]
    assert nightly["C360_SPARK_MASTER"] == "spark://spark-master:7077"
    assert nightly["C360_API_KEYS"] == "some-key:reader" and nightly["C360_WAREHOUSE"] == "/warehouse"
    assert services["api"]["environment"]["C360_SPARK_MASTER"] == "local[*]"
    worker = services["spark-worker"]["command"]
    assert worker[2] == "spark://spark-master:7077" and _command_args(worker, "--cores") == "3"


def test_the_api_and_the_nightly_share_the_kafka_service_for_the_realtime_logs():
    """The broker of the real-time logs: a `kafka` service (KRaft, one node, not published on the host), a healthy
    one before the API or the nightly starts, and C360_REALTIME_LOG pointing both at its advertised listener."""
    from c360.log_contract import parse_log_spec

    services = _services()
    kafka = services["kafka"]
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    assert "ports" not in kafka and kafka["healthcheck"]["test"]
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    for name in ("api", "nightly"):
        assert services[name]["depends_on"]["kafka"] == {"condition": "service_healthy"}, name
        spec = parse_log_spec(services[name]["environment"]["C360_REALTIME_LOG"])
        assert spec.is_kafka and spec.bootstrap == "kafka:9092", name
        assert f"PLAINTEXT://{spec.bootstrap}" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
