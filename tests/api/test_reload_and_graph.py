"""Hot reload under load, a broken publish, the graph store down (503 only there), Gremlin-backed store."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

from c360.settings import Settings
from tests.conftest import free_port

from .conftest import KEYS, PII, READER, publish, write_run


@pytest.mark.slow
def test_hot_reload_while_requests_run(fresh_warehouse, trained):
    from c360.api.app import create_app

    app = create_app(Settings(warehouse=fresh_warehouse, graph="networkx", api_keys=dict(KEYS)), reload_interval=0.2)
    user = next(iter(trained[0]["als"].user_ids))
    with TestClient(app) as client:
        assert client.get("/version").json()["run_id"] == "run-1"
        statuses, seen_models, stop = [], set(), threading.Event()

        def hammer():
            while not stop.is_set():
                r = client.get(f"/recommendations/{user}", params={"k": 5})
                statuses.append(r.status_code)
                if r.status_code == 200:
                    seen_models.add(r.json()["model_version"])

        workers = [threading.Thread(target=hammer) for _ in range(2)]
        for w in workers:
            w.start()
        try:
            time.sleep(0.3)
            publish(fresh_warehouse, write_run(fresh_warehouse, "run-2", trained, served="popularity"))
            deadline = time.time() + 20
            while client.get("/version").json()["run_id"] != "run-2" and time.time() < deadline:
                time.sleep(0.1)
            time.sleep(0.3)
        finally:
            stop.set()
            for w in workers:
                w.join()
        assert client.get("/version").json() == {
            "run_id": "run-2", "served_model": "popularity", "created_at": "2026-11-22T01:00:00Z",
            "models": {"als": "run-2:als", "popularity": "run-2:popularity"}}
        assert len(statuses) > 20 and set(statuses) == {200}
        assert seen_models == {"run-1:als", "run-2:popularity"}

        # a broken publish keeps the previous run serving
        broken = write_run(fresh_warehouse, "run-3", trained)
        manifest = json.loads((broken / "manifest.json").read_text())
        (broken / "manifest.json").write_text(json.dumps({**manifest, "status": "failed"}))
        publish(fresh_warehouse, broken)
        time.sleep(0.8)
        assert client.get("/version").json()["run_id"] == "run-2"
        assert client.get(f"/recommendations/{user}").status_code == 200


def test_graph_store_down_is_503_only_for_graph_endpoints(warehouse):
    from c360.api.app import create_app

    closed = f"gremlin://127.0.0.1:{free_port()}"
    app = create_app(Settings(warehouse=warehouse, graph=closed, api_keys=dict(KEYS)))
    with TestClient(app) as client:
        r = client.get("/customer360/17", headers=READER)
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        r = client.get("/customers/search", params={"last_name": "lopez"}, headers=READER)
        assert r.status_code == 503
        r = client.get("/customers/17/recommendations", headers=READER)
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        assert client.get("/customer360/17").status_code == 401  # auth still checked first
        assert client.get("/recommendations/anyone").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["graph"] is False
        assert client.get("/version").json()["run_id"] == "run-1"


def test_gremlin_backed_store(warehouse, gremlin_url):
    from c360.api.app import create_app
    from c360.graph.loader import load_graph_files

    load_graph_files(warehouse / "current" / "graph", gremlin_url, drop=True)
    app = create_app(Settings(warehouse=warehouse, graph=gremlin_url, api_keys=dict(KEYS)))
    with TestClient(app) as client:
        r = client.get("/customer360/17", headers=READER)
        assert r.status_code == 200
        assert {c["ssn"] for c in r.json()["customers"]} == {"***-**-6789"}
        r = client.get("/customer360/42", headers=PII)
        assert [c["ssn"] for c in r.json()["customers"]] == ["987-65-4321"]
        assert client.get("/customer360/999999", headers=READER).status_code == 404
        hits = client.get("/customers/search", params={"last_name": "smith"}, headers=READER).json()["matches"]
        assert [h["match_id"] for h in hits] == ["42"]
        assert client.get("/readyz").json()["graph"] is True
