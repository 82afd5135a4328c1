"""The wheel runs outside a checkout: `pip install` of the built wheel into a fresh virtualenv, then `c360 --help`,
a tiny nightly on the shipped theme-park data (package data) and `c360 serve`, all from an empty directory.

The fresh virtualenv gets the wheel itself and nothing from the repository; its third-party dependencies are the
test environment's (a path line, not a site directory, so this environment's own editable c360 stays invisible),
which keeps the test off the network and under two minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, free_port

pytestmark = pytest.mark.slow

SKIP = shutil.ignore_patterns(".git", ".venv", "warehouse", "build", "dist", "*.egg-info", "__pycache__",
                              ".pytest_cache", ".ruff_cache", "benchmarks", "notebooks", "tests")


def _run(cmd: list[str], cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin directory, clean environment) with c360 installed from a freshly built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=SKIP)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(root / "dist"), str(src)],
         root, env)
    (wheel,) = (root / "dist").glob("c360-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, env)
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, env)
                .stdout.strip())
    (site / "test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "--quiet",
          str(wheel)], root, env)
    return venv / "bin", {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}


def test_wheel_is_self_contained(installed, tmp_path):
    bin_dir, env = installed
    where = _run([str(bin_dir / "python"), "-c",
                  "import c360, c360.recsys.sigir17 as s, c360.graph, c360.api, c360.jobs;"
                  "print(c360.__file__); print(s.DEFAULT_DIR); print(len(s.load_items()))"], tmp_path, env).stdout
    package, data, n_items = where.split()
    venv = bin_dir.parent
    assert Path(package).is_relative_to(venv) and Path(data).is_relative_to(venv), where
    assert int(n_items) == 113
    assert "usage: c360" in _run([str(bin_dir / "c360"), "--help"], tmp_path, env).stdout


def test_nightly_and_serve_from_an_empty_directory(installed, tmp_path):
    bin_dir, env = installed
    work = tmp_path / "empty"
    work.mkdir()
    config = {"nightly": {"generate_customers": 120, "generate_visitors": 500, "seed": 1}, "er": {"engine": "duckdb"},
              "recsys": {"algorithms": ["popularity"], "serve": "popularity", "top_n": 5, "session": False},
              # the graph exported in-process: the wheel's Spark already runs validate and merge, and the Spark
              # export's small jobs took half of this test (tests/graph/test_export.py holds both exports equal)
              "graph": {"export_engine": "local"}}
    (work / "tiny.yaml").write_text(yaml.safe_dump(config))
    env = {**env, "C360_GRAPH": "networkx", "C360_SPARK_MASTER": "local[2]"}
    out = _run([str(bin_dir / "c360"), "nightly", "--config", "tiny.yaml", "--warehouse", "wh"], work, env).stdout
    assert "published" in out
    manifest = json.loads((work / "wh" / "current" / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and manifest["steps"]["validate"]["rows"]["items"] == 113
    assert sorted(p.name for p in work.iterdir()) == ["tiny.yaml", "wh"]  # nothing else left in the directory

    port = free_port()
    server = subprocess.Popen([str(bin_dir / "c360"), "serve", "--warehouse", "wh", "--port", str(port)], cwd=work,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        body = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/recommendations/10000151@N02?k=3") as r:
                    body = json.loads(r.read())
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.5)
        assert body is not None and body["model"] == "popularity" and len(body["items"]) == 3
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_editable_install_maps_every_package_onto_the_checkout(tmp_path):
    """The development install (`make venv`: pip install -e) maps c360's subpackages onto the checkout's folders,
    from any directory, without c360 changing its own search path at import."""
    code = ("import c360, c360.recsys, c360.data; print(c360.recsys.__file__); "
            "print(len(c360.__path__)); import os; print(os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    where, paths, blas = _run([sys.executable, "-c", code], tmp_path, env).stdout.split()
    assert Path(where).is_relative_to(REPO / "recsys")
    assert paths == "1" and blas == "None"   # importing c360 changes neither its search path nor the environment
    usage = _run([sys.executable, "-m", "c360", "--help"], tmp_path, env).stdout
    assert all(group in usage for group in ("gremlin", "recsys", "er", "graph", "nightly", "serve")), usage
