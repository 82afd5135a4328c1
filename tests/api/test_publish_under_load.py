"""A publish while `c360 serve --workers 2` answers many concurrent requests over real HTTP: every request gets a
200 from one run or the other, and both workers move to the new run (its served table built once, by one of them)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests import http
from tests.conftest import REPO, free_port

from .conftest import publish, wait_ready, write_run

THREADS = 8


@pytest.mark.slow
def test_publish_under_load_loses_no_request(trained, tmp_path):
    fresh_warehouse = tmp_path / "wh"
    publish(fresh_warehouse, write_run(fresh_warehouse, "run-1", trained))
    config = tmp_path / "c360.yaml"
    config.write_text("api:\n  reload_interval: 0.2\n")
    port = free_port()
    env = {**os.environ, "C360_API_KEYS": "load-key:reader", "C360_GRAPH": "networkx"}
    proc = subprocess.Popen([sys.executable, "-m", "c360", "serve", "--warehouse", str(fresh_warehouse), "--port",
                             str(port), "--workers", "2", "--config", str(config), "--log-level", "warning"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    users = [*trained[0]["als"].user_ids[:20], "nobody-at-all"]
    statuses: list[int] = []
    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer(offset: int) -> None:
        with http.client(base_url=base, timeout=30) as client:
            i = offset
            while not stop.is_set():
                user, k = users[i % len(users)], (5, 10, 20)[i % 3]
                i += 1
                try:
                    r = client.get(f"/recommendations/{user}", params={"k": k})
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                statuses.append(r.status_code)
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                    continue
                body = r.json()
                if len(body["items"]) != k or body["user_id"] != user:
                    failures.append(f"wrong body {body}")
                versions.add(body["model_version"])

    def both_workers_on(run_id: str) -> bool:
        # fresh connections: the kernel hands them to either worker
        return all(http.get(f"{base}/version", timeout=10).json()["run_id"] == run_id for _ in range(20))

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(THREADS)]
    try:
        wait_ready(proc, port)
        assert both_workers_on("run-1")
        for t in threads:
            t.start()
        run2 = write_run(fresh_warehouse, "run-2", trained, served="popularity")  # no served table yet
        assert not (run2 / "recsys" / "served").exists()
        time.sleep(0.5)
        publish(fresh_warehouse, run2)
        deadline = time.time() + 60
        while not both_workers_on("run-2"):
            assert time.time() < deadline, "the workers did not move to run-2"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            if t.is_alive():
                t.join()
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert failures == [], (failures[:5], out[-3000:])
    assert len(statuses) > 200 and set(statuses) == {200}
    assert versions == {"run-1:als", "run-2:popularity"}
    assert (run2 / "recsys" / "served" / "meta.json").is_file()
