"""docker-compose.yml is valid and everything it mounts or builds exists in the repository."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"


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


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_config_validates():
    proc = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr
