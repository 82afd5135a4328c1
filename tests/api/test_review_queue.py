"""The review queue over HTTP (role steward): the next sets with masked records, agreement and the model's reasons;
decisions durable, idempotent and effective at once in the customer 360 (a non-match splits, a match joins and the
old id answers 308), on the embedded graph and on a Gremlin Server; the page is static and self-contained."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from c360.graph.export import build_graph
from c360.graph.loader import load_graph_files
from c360.graph.neptune_parts import write_element_parts
from c360.layout import RunLayout
from c360.settings import Settings
from tests import http

from .conftest import KEYS, READER, STEWARD, private_copy, publish, write_run


@pytest.fixture(scope="module")
def review_warehouse(tmp_path_factory, trained, match_model) -> Path:
    """A published run whose match output is the match model's (300 generated people, scored pairs beside), its
    graph built from those records, and a review queue of 30 sets drawn from it."""
    from c360.entity_resolution.review import review

    wh = tmp_path_factory.mktemp("review-warehouse")
    run = write_run(wh, "run-r", trained)
    out = RunLayout(run).match
    out.matched.parent.mkdir(parents=True, exist_ok=True)
    for src, dst in ((match_model.matched, out.matched), (match_model.model, out.model),
                     (match_model.report, out.report), (match_model.pairs, out.pairs)):
        shutil.copy(src, dst)
    graph = build_graph(matched=pd.read_parquet(out.matched))
    shutil.rmtree(run / "graph")
    write_element_parts(run / "graph", list(graph.vertices.values()), list(graph.edges.values()))
    load_graph_files(run / "graph", f"networkx:{run / 'graph' / 'graph.json'}")
    review(out.matched, n=30, out=RunLayout(run).review_queue)
    publish(wh, run)
    return wh


def app(warehouse: Path, graph: str = "networkx") -> TestClient:
    from c360.api.app import create_app

    return TestClient(create_app(Settings(warehouse=warehouse, graph=graph, api_keys=dict(KEYS))))


def _pick(sets: list[dict], same: bool) -> dict:
    """A set whose drawn pair is in one match (same) or in two."""
    return next(s for s in sets if (s["records"][0]["match_id"] == s["records"][1]["match_id"]) == same)


def _ids(client, match_id: str) -> set[str]:
    body = client.get(f"/customer360/{match_id}", headers=READER, follow_redirects=False).json()
    return {c["id"] for c in body["customers"]}


def test_roles_and_the_page(review_warehouse):
    with app(review_warehouse) as client:
        assert client.get("/review/next").status_code == 401
        assert client.get("/review/next", headers=READER).status_code == 403
        assert client.post("/review/decisions", headers=READER, json={"decisions": []}).status_code == 403
        r = client.get("/review/next", params={"n": 3}, headers=STEWARD)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["remaining"] == 30 and len(body["sets"]) == 3 and body["pii"] is False
        s = body["sets"][0]
        assert s["pair"] == [0, 1] and set(s["agreement"].values()) <= {"agree", "differ", "missing"}
        assert s["explanation"]["comparisons"] and s["explanation"]["threshold"] > 0
        ssns = [r["fields"]["ssn"] for x in body["sets"] for r in x["records"] if r["fields"].get("ssn")]
        assert ssns and all(v.startswith("***-**-") for v in ssns)
        assert client.get("/review/next", params={"n": 0}, headers=STEWARD).status_code == 422
        page = client.get("/review")
        assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
        assert "<script src" not in page.text and "http://" not in page.text and "https://" not in page.text


def test_decisions_split_join_and_survive_a_restart(tmp_path, review_warehouse):
    wh = private_copy(tmp_path, review_warehouse, "run-r")
    with app(wh) as client:
        sets = client.get("/review/next", params={"n": 20}, headers=STEWARD).json()["sets"]
        split, join = _pick(sets, same=True), _pick(sets, same=False)
        m = split["records"][0]["match_id"]
        before = _ids(client, m)
        r = client.post("/review/decisions", headers=STEWARD, json={"decisions": [
            {"labeling_set_id": split["labeling_set_id"], "label": "non-match"},
            {"labeling_set_id": join["labeling_set_id"], "label": "match"}]})
        assert r.status_code == 200, r.text
        cut, joined = r.json()["decisions"]
        assert cut["status"] == "logged" and cut["effect"]["kind"] == "split"
        new = cut["effect"]["to_match_id"]
        assert _ids(client, m) | _ids(client, new) == before and not _ids(client, m) & _ids(client, new)
        assert joined["effect"]["kind"] == "join"
        gone, survivor = joined["effect"]["from_match_id"], joined["effect"]["to_match_id"]
        moved = client.get(f"/customer360/{gone}", headers=READER, follow_redirects=False)
        assert moved.status_code == 308 and moved.json() == {"match_id": gone, "merged_into": survivor}
        again = client.post("/review/decisions", headers=STEWARD, json={"decisions": [
            {"labeling_set_id": split["labeling_set_id"], "label": "non-match"}]}).json()["decisions"][0]
        assert again["status"] == "duplicate"
        assert client.post("/review/decisions", headers=STEWARD, json={"decisions": [
            {"labeling_set_id": "r9.nothere-00001", "label": "match"}]}).status_code == 404
        left = {s["labeling_set_id"] for s in client.get("/review/next", params={"n": 20}, headers=STEWARD)
                .json()["sets"]}
        assert not {split["labeling_set_id"], join["labeling_set_id"]} & left
    with app(wh) as client:   # a new process: the decisions come back from the log
        assert _ids(client, new) and client.get(f"/customer360/{gone}", headers=READER,
                                                follow_redirects=False).status_code == 308
        assert client.get("/review/next", headers=STEWARD).json()["remaining"] == 28


@pytest.mark.jvm
@pytest.mark.slow
def test_a_split_on_the_gremlin_server(tmp_path, review_warehouse, gremlin_url):
    wh = private_copy(tmp_path, review_warehouse, "run-r")
    load_graph_files(wh / "runs" / "run-r" / "graph", gremlin_url, drop=True)
    with app(wh, graph=gremlin_url) as client:
        split = _pick(client.get("/review/next", params={"n": 20}, headers=STEWARD).json()["sets"], same=True)
        m = split["records"][0]["match_id"]
        before = _ids(client, m)
        cut = client.post("/review/decisions", headers=STEWARD, json={"decisions": [
            {"labeling_set_id": split["labeling_set_id"], "label": "non-match"}]}).json()["decisions"][0]
        new = cut["effect"]["to_match_id"]
        assert _ids(client, new) and _ids(client, m) | _ids(client, new) == before


@pytest.mark.jvm
@pytest.mark.slow
def test_a_join_on_the_gremlin_server(tmp_path, review_warehouse, gremlin_url):
    """A steward's match of records in two matches: the larger match's 360 shows both matches' records, the smaller
    id answers 308 to it."""
    wh = private_copy(tmp_path, review_warehouse, "run-r")
    load_graph_files(wh / "runs" / "run-r" / "graph", gremlin_url, drop=True)
    with app(wh, graph=gremlin_url) as client:
        join = _pick(client.get("/review/next", params={"n": 20}, headers=STEWARD).json()["sets"], same=False)
        before = {str(r["match_id"]): _ids(client, r["match_id"]) for r in join["records"][:2]}
        joined = client.post("/review/decisions", headers=STEWARD, json={"decisions": [
            {"labeling_set_id": join["labeling_set_id"], "label": "match"}]}).json()["decisions"][0]
        assert joined["effect"]["kind"] == "join"
        gone, survivor = joined["effect"]["from_match_id"], joined["effect"]["to_match_id"]
        assert {gone, survivor} == set(before) and len(before[gone]) <= len(before[survivor])
        assert _ids(client, survivor) == before[gone] | before[survivor]
        moved = client.get(f"/customer360/{gone}", headers=READER, follow_redirects=False)
        assert moved.status_code == 308 and moved.json() == {"match_id": gone, "merged_into": survivor}


def test_a_decision_is_audited(tmp_path, review_warehouse, caplog):
    """POST /review/decisions writes one audit line: the endpoint, the steward's key (hashed, never the key) and role,
    and the match ids the decision changed (a join: both); a request naming no set of the queue is audited too."""
    from c360.api.access_log import JsonFormatter
    from c360.api.audit import key_hash

    def decide(client, set_id: str):
        """The answer to a `match` on the set, and the audit lines the request wrote."""
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="c360.api.audit"):
            r = client.post("/review/decisions", headers=STEWARD, json={"decisions": [
                {"labeling_set_id": set_id, "label": "match"}]})
        lines = [x for x in caplog.records if x.name == "c360.api.audit"]
        assert all(STEWARD["X-API-Key"] not in JsonFormatter().format(x) for x in lines)
        return r, [x.fields for x in lines]

    steward = {"endpoint": "POST /review/decisions", "key": key_hash(STEWARD["X-API-Key"]), "role": "steward",
               "pii": False}
    wh = private_copy(tmp_path, review_warehouse, "run-r")
    with app(wh) as client:
        join = _pick(client.get("/review/next", params={"n": 20}, headers=STEWARD).json()["sets"], same=False)
        r, lines = decide(client, join["labeling_set_id"])
        assert r.status_code == 200, r.text
        effect = r.json()["decisions"][0]["effect"]
        assert effect["kind"] == "join"
        changed = sorted([effect["from_match_id"], effect["to_match_id"]])
        assert lines == [{**steward, "match_ids": changed, "matches": 2, "status": 200}]
        r, lines = decide(client, "r9.nothere-00001")
        assert r.status_code == 404
        assert lines == [{**steward, "match_ids": [], "matches": 0, "status": 404}]


@pytest.fixture()
def served_http(tmp_path, review_warehouse):
    """The app over real HTTP (uvicorn in a thread) on a private copy of the review warehouse: its base URL."""
    import threading
    import time

    import uvicorn

    from c360.api.app import create_app
    from tests.conftest import free_port

    wh = private_copy(tmp_path, review_warehouse, "run-r")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(warehouse=wh, graph="networkx", api_keys=dict(KEYS))),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.slow
def test_the_page_is_answered_by_keyboard_in_chromium(served_http, tmp_path):
    """The key typed once, a set shown side by side with agreement marks and the model's reasons, answered with N, U
    and M and skipped with S; what the page posted is what the API logged."""
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{served_http}/review")
        page.fill("#key", STEWARD["X-API-Key"])
        page.click("#start")
        expect = playwright.expect   # waits without eval: the page's CSP allows none
        expect(page.locator("#set-id")).to_have_text(re.compile(r"^r\d"))
        first = page.text_content("#set-id")
        assert page.locator("#records tr.agree, #records tr.differ").count() > 0
        assert page.locator("#reasons li").count() > 0
        page.keyboard.press("n")
        expect(page.locator("#status")).to_contain_text(f"logged: {first} non-match")
        second = page.text_content("#set-id")
        page.keyboard.press("s")
        expect(page.locator("#status")).to_contain_text(f"Skipped {second}")
        third = page.text_content("#set-id")
        assert second != first and third != second
        page.keyboard.press("u")
        expect(page.locator("#status")).to_contain_text(f"logged: {third} unsure")
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        page.reload()   # the key is kept for the tab: no second prompt
        expect(page.locator("#set-id")).to_have_text(re.compile(r"^r\d"))
        assert page.is_hidden("#login")
        browser.close()
    left = http.get(f"{served_http}/review/next", params={"n": 20}, headers=STEWARD).json()
    shown = {s["labeling_set_id"] for s in left["sets"]}
    assert left["remaining"] == 28 and first not in shown and third not in shown and second in shown
