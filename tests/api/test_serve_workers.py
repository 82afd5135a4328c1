"""`c360 serve --workers 2`: every worker process writes its own JSON access and audit lines (uvicorn's workers are
fresh processes, which the logging configured in the parent does not reach)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import http

from .conftest import json_log_lines, serve_two_workers, wait_ready

KEY = "workers-key"
N = 24


@pytest.mark.slow
def test_every_worker_logs_access_and_audit_lines(warehouse, tmp_path):
    err = tmp_path / "stderr.log"
    proc, port, base = serve_two_workers(warehouse, err, {"C360_API_KEYS": f"{KEY}:reader", "C360_GRAPH": "networkx"},
                                         "C360_LOG_LEVEL")
    try:
        wait_ready(proc, port)

        def call(n: int) -> int:  # a connection each: the kernel hands them to either worker
            headers = {"X-API-Key": KEY} if n % 3 else {}  # and some refused (401): audited as well
            return http.get(f"{base}/customer360/17", headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(call, range(N)))
        assert sorted(set(statuses)) == [200, 401]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = json_log_lines(err)
    audit = [line for line in lines if line["logger"] == "c360.api.audit"]
    access = [line for line in lines if line["logger"] == "c360.access" and line["path"] == "/customer360/17"]
    assert sorted(line["status"] for line in audit) == sorted(statuses)
    assert len(access) == N
    assert KEY not in err.read_text()
    assert proc.pid not in {line["pid"] for line in audit}  # written by the workers, each line naming its own
