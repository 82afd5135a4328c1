"""GET /recommendations follows the person: the accounts the run's identities join (recsys/identities.parquet) are
answered with `identity` to a key (their ids to a pii key only; null without a key), an event posted for one account
changes the answers of all of them at once, and an account committed since the run that joins the person for certain
is answered from its history to a key (without one, as any id no model knows). The hostile cases are in
test_identity_hardening."""

from __future__ import annotations

import logging
import time

import pytest

from c360.api.schemas import Recommendations
from c360.recsys.foldin import history

from .conftest import PERSON, PII, READER, WRITER, person_accounts
from .test_customers_match import MARIA, match
from .test_events import app_client

NEW_ACCOUNT = "acct-0099001"


@pytest.fixture(scope="module")
def person_client(person_warehouse):
    with app_client(person_warehouse) as c:
        yield c


@pytest.fixture(scope="module")
def accounts(trained) -> tuple[str, str]:
    return person_accounts(trained[2])


def recs(client, user: str, headers=None, **params) -> dict:
    r = client.get(f"/recommendations/{user}", params=params or None, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == list(Recommendations.model_fields) and Recommendations.model_validate(body)
    return body


def ids(answer: dict) -> list[str]:
    return [i["item_id"] for i in answer["items"]]


def visited(client, *users: str) -> set[str]:
    """The attractions of the users' own training histories (the interactions before sharing)."""
    model = client.app.state.served.models["popularity"]
    return {item for u in users for item, value in history(model, u).items() if value >= 1}


def test_the_identity_is_shown_per_role_and_other_account_ids_only_to_pii(person_client, accounts, caplog):
    a, b = accounts
    public = {"match_id": PERSON, "accounts": None, "account_count": 2}
    for headers in (READER, WRITER):
        r = person_client.get(f"/recommendations/{a}", headers=headers)
        assert r.status_code == 200 and r.json()["identity"] == public, (headers, r.text)
        assert b not in r.text   # never another account's id
    assert recs(person_client, a)["identity"] is None   # without a key: not public
    with caplog.at_level(logging.INFO, logger="c360.api.audit"):
        assert recs(person_client, a, PII)["identity"] == {**public, "accounts": [a, b]}
    (line,) = [r for r in caplog.records if r.name == "c360.api.audit"]
    assert line.fields["match_ids"] == [PERSON] and line.fields["role"] == "pii" and line.fields["user_id"] == a
    assert recs(person_client, b, PII)["identity"]["accounts"] == [b, a]
    # the hot path answers the same bytes as the handler, identity included (null: no key)
    served = person_client.app.state.served.served_model
    for k in (None, 5):
        params = {"k": k} if k else {}
        hot = person_client.get(f"/recommendations/{a}", params=params)
        handled = person_client.get(f"/recommendations/{a}", params={**params, "model": served})
        assert hot.content == handled.content and hot.json()["identity"] is None
    # an account of no person, and a visitor no model knows: null
    stranger = next(u for u in person_client.app.state.served.recs if u not in accounts)
    for user in (stranger, "nobody-at-all"):
        for headers in (None, PII):
            assert recs(person_client, user, headers)["identity"] is None
    # trained on the person's shared history: neither account is answered what the other visited
    assert not set(ids(recs(person_client, a, k=20))) & visited(person_client, a, b)
    assert not set(ids(recs(person_client, b, k=20))) & visited(person_client, a, b)


def test_an_event_for_one_account_changes_the_others_answer_at_once(fresh_person_warehouse, accounts):
    a, b = accounts
    with app_client(fresh_person_warehouse) as client:
        state = client.app.state.served
        before = recs(client, b, READER, k=10)
        assert before["events_applied"] == 0
        x = ids(before)[0]   # B's best attraction: A visits it now
        r = client.post("/events", json={"user_id": a, "item_id": x, "timestamp": int(time.time())}, headers=WRITER)
        assert r.status_code == 202, r.text
        after = recs(client, b, READER, k=10)
        assert after["events_applied"] == 1 and x not in ids(after) and ids(after) != ids(before)
        assert not set(ids(recs(client, b, READER, k=20))) & (visited(client, a, b) | {x})
        # A's event weighed as in training: B's history plus w_ba x the event
        model = state.models[state.served_model]
        weight = state.people.weights_for(b)[a]
        assert 0 < weight < 1
        items = {**history(model, b)}
        items[x] = items.get(x, 0.0) + weight
        assert ids(after) == model.recommend_from_interactions(items, k=10)["ITEM_ID"].tolist()
        own = recs(client, a, READER)
        assert own["events_applied"] == 1 and x not in ids(own)
        # without a key no visitor's activity is used: the stored answer, as before
        assert ids(recs(client, b)) == ids(before) and recs(client, b)["events_applied"] is None


def test_a_committed_account_joining_the_person_is_answered_from_its_history(fresh_person_warehouse, accounts):
    a, b = accounts
    with app_client(fresh_person_warehouse) as worker, app_client(fresh_person_warehouse) as other_worker:
        cold = recs(other_worker, NEW_ACCOUNT)
        assert cold["cold_start"] is True and cold["identity"] is None
        r = match(worker, {**MARIA, "id": NEW_ACCOUNT, "source": "park"}, headers=WRITER, commit="true")
        assert r.status_code == 200 and r.json()["match_id"] == PERSON, r.text
        for client in (worker, other_worker):   # every worker, at once, to a key
            answer = recs(client, NEW_ACCOUNT, READER)
            assert answer["cold_start"] is False
            assert answer["identity"] == {"match_id": PERSON, "accounts": None, "account_count": 3}
            assert not set(ids(answer)) & visited(client, a, b)
            assert recs(client, NEW_ACCOUNT, PII)["identity"]["accounts"] == [NEW_ACCOUNT, a, b]
            assert recs(client, a, READER)["identity"]["account_count"] == 3
            assert recs(client, NEW_ACCOUNT) == cold   # without a key: as any id no model knows
        # the fold-in of the person's rows: their weighted mean
        state = worker.app.state.served
        model = state.models[state.served_model]
        weights = state.people.weights_for(NEW_ACCOUNT)
        lenders = {u: weights[u] for u in (a, b)}
        rows = {}
        for u, w in lenders.items():
            for item, value in history(model, u).items():
                rows[item] = rows.get(item, 0.0) + w / sum(lenders.values()) * value
        expected = model.recommend_from_interactions(rows, k=10)["ITEM_ID"].tolist()
        assert ids(recs(worker, NEW_ACCOUNT, READER)) == expected
        # its events count for the person's other accounts too
        x = expected[0]
        r = worker.post("/events", json={"user_id": NEW_ACCOUNT, "item_id": x, "timestamp": int(time.time())},
                        headers=WRITER)
        assert r.status_code == 202
        answer = recs(worker, a, READER)
        assert answer["events_applied"] == 1 and x not in ids(answer)
        # in the graph it is one of the person's accounts (a visitor SameAs the match), not an insurance record
        view = worker.get(f"/customer360/{PERSON}", headers=PII).json()
        assert NEW_ACCOUNT in {acc["user_id"] for acc in view["accounts"]}
        assert NEW_ACCOUNT not in {c["id"] for c in view["customers"]}
    with app_client(fresh_person_warehouse) as restarted:   # the customers log replayed: still the person's
        answer = recs(restarted, NEW_ACCOUNT, READER)
        assert answer["cold_start"] is False and answer["identity"]["account_count"] == 3


def test_a_run_without_identities_answers_as_before(fresh_warehouse):
    with app_client(fresh_warehouse) as client:
        state = client.app.state.served
        assert state.people is None and state.serving.people is None
        user = next(u for u in state.recs if u in state.models["als"].user_index)
        for headers in (None, READER, PII):
            assert recs(client, user, headers)["identity"] is None
        r = match(client, {**MARIA, "id": NEW_ACCOUNT, "source": "park"}, headers=WRITER, commit="true")
        assert r.status_code == 200 and r.json()["match_id"] == PERSON, r.text
        answer = recs(client, NEW_ACCOUNT, PII)
        assert answer["cold_start"] is True and answer["identity"] is None
