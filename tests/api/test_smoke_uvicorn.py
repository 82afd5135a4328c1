"""`c360 serve` as a real uvicorn process on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests import http
from tests.conftest import REPO, free_port

from .conftest import wait_ready


@pytest.mark.slow
def test_c360_serve_smoke(warehouse):
    port = free_port()
    env = {**os.environ, "C360_API_KEYS": "smoke-key:reader", "C360_GRAPH": "networkx"}
    proc = subprocess.Popen([sys.executable, "-m", "c360", "serve", "--warehouse", str(warehouse),
                             "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, port)
        r = http.get(f"{base}/recommendations/nobody", params={"k": 3})
        assert r.status_code == 200 and r.json()["cold_start"] is True and len(r.json()["items"]) == 3
        r = http.get(f"{base}/customer360/17", headers={"X-API-Key": "smoke-key"})
        assert r.status_code == 200 and r.json()["pii"] is False
        assert http.get(f"{base}/customer360/17").status_code == 401
        assert http.get(f"{base}/version").json()["run_id"] == "run-1"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert '"logger": "c360.access"' in out or '"logger":"c360.access"' in out
    assert "smoke-key" not in out
