"""Old match ids over HTTP, from the published run's id changes (entity_resolution.id_changes): a merged id is 308 to
the survivor with {match_id, merged_into}, a split one answers its largest part and lists the others, a retired one
is 404 saying so; GET /customers/{id}/recommendations alike; a record committed into an id the run merged joins the
survivor."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from c360.api.dependencies import api_routes
from c360.append_log import AppendLog
from c360.graph.sample_data import write_id_changes
from c360.layout import RunLayout, Warehouse
from c360.settings import Settings

from .conftest import KEYS, PII, READER
from .test_contract import declared_model

# what run-1's match made of the run before's ids: 5 merged into Maria's 17, 6 mostly into 17 (a record into 42),
# John's 42 split (43 left it), 9 retired
CHANGES = pd.DataFrame([(17, "kept", [], 2, 2), (42, "split", [43], 2, 1), (43, "new", [], 0, 1),
                        (5, "merged", [17], 1, 0), (6, "merged", [17, 42], 3, 0), (9, "retired", [], 2, 0)],
                       columns=["match_id", "change", "into", "records_before", "records_after"])


@pytest.fixture()
def moved(fresh_warehouse):
    """The fixture's warehouse with run-1's id changes beside its match output, and a record committed into id 5
    while the nightly ran (logged with the id it had then)."""
    write_id_changes(CHANGES, RunLayout(fresh_warehouse / "runs" / "run-1").match.id_changes)
    journal = AppendLog(Warehouse(fresh_warehouse).customers_log)
    journal.append([{"id": "88001-property", "match_id": 5, "new_match": False, "committed_at": time.time(),
                     "fields": {"first_name": "Maria", "last_name": "Lopez", "date_of_birth": "1980-04-02",
                                "source": "property"}}])
    journal.close()
    with TestClient(create_app(fresh_warehouse)) as client:
        yield client


def create_app(warehouse):
    from c360.api.app import create_app

    return create_app(Settings(warehouse=warehouse, graph="networkx", api_keys=dict(KEYS)))


def _route(client, path: str):
    return next(r for r in api_routes(client.app) if r.path == path)


def _checked(client, r, path: str) -> dict:
    """The body, checked against the model the route declares for the status."""
    model = declared_model(_route(client, path), r.status_code)
    assert model is not None, (path, r.status_code)
    model.model_validate(r.json())
    return r.json()


def test_a_merged_id_is_308_to_the_survivor(moved):
    r = moved.get("/customer360/5", headers=READER, follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"].endswith("/customer360/17")
    assert _checked(moved, r, "/customer360/{match_id}") == {"match_id": "5", "merged_into": "17"}
    r = moved.get("/customer360/6", params={"reveal_pii": "true"}, headers=PII, follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"].endswith("/customer360/17?reveal_pii=true")
    followed = moved.get("/customer360/5", headers=READER)   # a client that follows lands on the person
    assert followed.status_code == 200 and followed.json()["match_id"] == "17"
    assert "split_into" not in followed.json()
    assert moved.get("/customer360/5", follow_redirects=False).status_code == 401   # a key before anything
    r = moved.get("/customers/6/recommendations", params={"k": 2}, headers=READER, follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"].endswith("/customers/17/recommendations?k=2")
    assert _checked(moved, r, "/customers/{match_id}/recommendations") == {"match_id": "6", "merged_into": "17"}


def test_a_split_id_answers_its_largest_part_and_lists_the_others(moved):
    r = moved.get("/customer360/42", headers=READER)
    body = _checked(moved, r, "/customer360/{match_id}")
    assert r.status_code == 200 and body["match_id"] == "42" and body["split_into"] == ["43"]
    assert [c["id"] for c in body["customers"]] == ["102-auto"]
    r = moved.get("/customers/42/recommendations", headers=READER)
    assert r.status_code == 200 and _checked(moved, r, "/customers/{match_id}/recommendations")["split_into"] == ["43"]


def test_a_retired_id_is_404_saying_so(moved):
    for url in ("/customer360/9", "/customers/9/recommendations"):
        r = moved.get(url, headers=READER)
        assert r.status_code == 404 and "retired by run run-1" in r.json()["message"], url
        assert _checked(moved, r, "/customer360/{match_id}")["error"] == "not_found"
    r = moved.get("/customer360/999", headers=READER)
    assert r.status_code == 404 and "retired" not in r.json()["message"]


def test_a_record_committed_into_a_merged_id_joins_the_survivor(moved):
    body = moved.get("/customer360/17", headers=READER).json()
    assert "88001-property" in [c["id"] for c in body["customers"]]
    assert moved.app.state.served.customers.sizes[5] == 0


def test_a_run_without_id_changes_answers_as_before(client):
    assert len(client.app.state.served.id_changes) == 0
    assert client.get("/customer360/5", headers=READER, follow_redirects=False).status_code == 404
