"""`c360 serve --workers 2`: every worker process writes its own JSON access and audit lines (uvicorn's workers are
fresh processes, which the logging configured in the parent does not reach)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import REPO, free_port

from .conftest import wait_ready

KEY = "workers-key"
N = 24


@pytest.mark.slow
def test_every_worker_logs_access_and_audit_lines(warehouse, tmp_path):
    port = free_port()
    env = {**os.environ, "C360_API_KEYS": f"{KEY}:reader", "C360_GRAPH": "networkx"}
    env.pop("C360_LOG_LEVEL", None)
    err = tmp_path / "stderr.log"
    with open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "c360", "serve", "--warehouse", str(warehouse), "--port",
                                 str(port), "--workers", "2"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, port)

        def call(n: int) -> int:  # a connection each: the kernel hands them to either worker
            headers = {"X-API-Key": KEY} if n % 3 else {}  # and some refused (401): audited as well
            return httpx.get(f"{base}/customer360/17", headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(call, range(N)))
        assert sorted(set(statuses)) == [200, 401]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = [json.loads(line) for line in err.read_text().splitlines() if line.startswith("{")]
    audit = [line for line in lines if line["logger"] == "c360.api.audit"]
    access = [line for line in lines if line["logger"] == "c360.access" and line["path"] == "/customer360/17"]
    assert sorted(line["status"] for line in audit) == sorted(statuses)
    assert len(access) == N
    assert KEY not in err.read_text()
    assert proc.pid not in {line["pid"] for line in audit}  # written by the workers, each line naming its own
