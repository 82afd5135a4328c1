"""The `gpu` extra, installed, gets implicit's CUDA extension loaded: in a fresh virtualenv with only the extra's
packages added, gpu_status stops at the driver or the device (the right answer on a machine without either), never
at a missing library or an undefined rmm symbol. Without the extra it says the extra is not installed.

The virtualenv sees the test environment's packages through a path line (as tests/foundation/test_install.py does)
and the checkout's code through the test environment's editable install (its import hook, run from the same file), so
pip adds only the extra's CUDA and rmm wheels.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

PROBE = ("import json, sys\n"
         "if sys.argv[1:] == ['implicit-first']:\n"
         "    import implicit.als  # implicit.gpu imported (and disabled) before the libraries are loaded\n"
         "from c360.recsys.gpu import gpu_status\n"
         "s = gpu_status()\n"
         "print(json.dumps({'available': s.available, 'reason': s.reason, 'detail': s.detail}))\n")
WORKS = re.compile(r"^(no NVIDIA driver \(|NVIDIA driver .*is too old|no CUDA device|available: \d+ device)")
OFFLINE = re.compile(r"NewConnectionError|Temporary failure in name resolution|Network is unreachable|ConnectTimeout")


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH")}


def _run(cmd: list, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _probe(python, *args) -> dict:
    return json.loads(_run([python, "-c", PROBE, *args], timeout=300).stdout.strip().splitlines()[-1])


def gpu_requirements() -> list[str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]


@pytest.fixture(scope="module")
def gpu_venv(tmp_path_factory):
    """A virtualenv's python with the gpu extra's packages installed over the test environment's."""
    root = tmp_path_factory.mktemp("gpu-extra")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    purelib = Path(sysconfig.get_paths()["purelib"])
    # the test environment's packages, then its editable install's import hook (c360's subpackages in the checkout)
    editable = [line for pth in sorted(purelib.glob("__editable__*.pth")) for line in pth.read_text().splitlines()]
    (site / "test_deps.pth").write_text("\n".join([str(purelib), *editable]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet",
                           "--disable-pip-version-check", *gpu_requirements()],
                          cwd=root, env=_env(), capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0 and OFFLINE.search(proc.stderr):
        pytest.skip(f"the gpu extra's wheels cannot be downloaded here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, f"pip install of the gpu extra failed\n{proc.stdout}\n{proc.stderr}"
    yield py
    shutil.rmtree(root, ignore_errors=True)  # about 1 GB of CUDA libraries


def test_the_gpu_extra_loads_implicits_cuda_extension(gpu_venv):
    status = _probe(gpu_venv)
    reason, detail = status["reason"], status["detail"]
    assert WORKS.match(reason), reason
    assert "missing" not in reason and "undefined symbol" not in reason and "ABI" not in reason, reason
    assert status["available"] == reason.startswith("available")
    major, minor = map(int, detail["rmm-cu13"].split(".")[:2])
    assert (26, 2) <= (major, minor) <= (26, 4), detail  # rmm-cu13 26.2-26.4
    assert all(path and not path.startswith("error") for path in detail["libraries"].values()), detail
    # the same answer when implicit (and so implicit.gpu) was imported before gpu_status loaded the libraries
    assert _probe(gpu_venv, "implicit-first")["reason"] == reason
    # and what a user runs: `c360 doctor --json` reaches the same driver/device check
    report = json.loads(_run([gpu_venv, "-m", "c360", "doctor", "--json"], timeout=300).stdout)
    gpu = next(c for c in report["checks"] if c["name"] == "implicit GPU")
    assert gpu["detail"] == reason and gpu["ok"] == status["available"] and gpu["required"] is False, gpu

    # with the wheels' library folders on the search path, the extension needs nothing else
    if shutil.which("ldd"):
        cuda = _run([gpu_venv, "-c", "import implicit, pathlib; "
                     "print(pathlib.Path(implicit.__file__).parent / 'gpu' / '_cuda.so')"]).stdout.strip()
        folders = sorted({str(Path(p).parent) for p in detail["libraries"].values()})
        ldd = subprocess.run(["ldd", cuda], env={**_env(), "LD_LIBRARY_PATH": os.pathsep.join(folders)},
                             capture_output=True, text=True, timeout=60).stdout
        assert "not found" not in ldd, ldd
        for name in detail["libraries"]:
            assert f"{name} => " in ldd, (name, ldd)


def test_without_the_extra_it_says_so():
    status = _probe(sys.executable)
    if status["detail"].get("rmm-cu13"):
        pytest.skip("the test environment has the gpu extra installed")
    assert not status["available"]
    assert status["reason"] == "the gpu extra is not installed" or re.match(r"library \S+ is missing \(",
                                                                              status["reason"]), status
