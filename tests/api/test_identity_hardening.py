"""A hostile client and a careless operator against the person surfaces (GET /recommendations' `identity`, park
accounts committed through POST /customers/match?commit=true, the customer 360's accounts): without a key nothing
of a person is shown or used, a committed account inherits its person's history only when its match is certain and
only for a caller with a key (audited with the person's match_id), a bad match's person is bounded, and account ids
and contact fields stay out of what a caller without pii reads and out of every log line."""

from __future__ import annotations

import logging
import shutil
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from c360.api.limits import GROUPS
from c360.api.schemas import Recommendations
from c360.recsys.foldin import history
from c360.recsys.people import MAX_ACCOUNTS
from c360.settings import Settings

from .conftest import KEYS, PERSON, PII, READER, WRITER, person_accounts, publish
from .test_customers_match import MARIA, match
from .test_events import app_client

EVIL = "acct-evil-0001"        # a park account a writer commits with the victim's (Maria's) details
STRANGER = "acct-never-seen-0001"


@pytest.fixture(scope="module")
def accounts(trained) -> tuple[str, str]:
    return person_accounts(trained[2])


def get(client, user: str, headers=None, **params):
    r = client.get(f"/recommendations/{user}", params=params or None, headers=headers)
    assert r.status_code == 200, r.text
    assert Recommendations.model_validate(r.json())
    return r


def ids(answer: dict) -> list[str]:
    return [i["item_id"] for i in answer["items"]]


def visited(client, *users: str) -> set[str]:
    model = client.app.state.served.models[client.app.state.served.served_model]
    return {item for u in users for item in history(model, u)}


def audit_lines(caplog, message: str | None = None) -> list[dict]:
    return [r.fields for r in caplog.records
            if r.name == "c360.api.audit" and (message is None or r.getMessage() == message)]


def test_without_a_key_no_identity_is_shown(fresh_person_warehouse, accounts, caplog):
    """Which accounts are one person, and the match_id that opens the person's 360, are not shown without a key, on
    the hot path or the handler's (accounts joined at full weight share one history, so their lists are alike: see
    README's Security). Every keyed answer that names the person is audited, a reader's too: walking account ids
    rebuilds who is one person."""
    a, b = accounts
    caplog.set_level(logging.INFO, logger="c360.api.audit")
    with app_client(fresh_person_warehouse) as client:
        served = client.app.state.served.served_model
        for user in (a, b):
            for params in ({}, {"k": 5}, {"model": served}, {"exclude": "epcot:1"}, {"k": 50}):
                body = get(client, user, **params).json()
                assert body["identity"] is None and body["events_applied"] is None, params
        # a key holder sees the person (the reader's role), a pii key its accounts
        assert get(client, a, READER).json()["identity"] == {"match_id": PERSON, "accounts": None,
                                                             "account_count": 2}
        assert get(client, a, PII).json()["identity"]["accounts"] == [a, b]
    reader, pii = audit_lines(caplog, "person accounts access")
    assert reader["role"] == "reader" and reader["pii"] is False and reader["match_ids"] == [PERSON]
    assert reader["user_id"] == a and pii["role"] == "pii" and pii["pii"] is True


def test_a_committed_account_does_not_read_its_persons_history_without_a_key(fresh_person_warehouse, accounts,
                                                                              caplog):
    """Account takeover by commit: a writer commits a new park account with the victim's name, birth date and
    phone; it joins the victim's person. Without a key its answer is a stranger's (before: the person's history
    minus everything the person visited, i.e. the visits by elimination); with a key it is the person's, and the
    read is audited with the person's match_id."""
    a, b = accounts
    with app_client(fresh_person_warehouse) as client:
        stranger = get(client, STRANGER, k=50).json()
        r = match(client, {**MARIA, "id": EVIL, "source": "park"}, headers=WRITER, commit="true")
        assert r.status_code == 200 and r.json()["match_id"] == PERSON, r.text
        for params in ({"k": 50}, {}, {"model": "popularity"}, {"exclude": "epcot:1"}):
            evil = get(client, EVIL, **params).json()
            never = get(client, STRANGER, **params).json()
            assert {**evil, "user_id": None} == {**never, "user_id": None}, params   # byte for byte a stranger
            assert evil["cold_start"] is True and evil["identity"] is None
        assert ids(get(client, EVIL, k=50).json()) == ids(stranger)
        assert set(ids(stranger)) & visited(client, a, b)   # the popular items: nothing taken away by the person
        # the hot path answers it (same work as for any unknown id: no timing difference)
        assert client.app.state.served.serving.stored_json(EVIL, 10) is not None
        # a key holder: the person's history, audited with the person
        with caplog.at_level(logging.INFO, logger="c360.api.audit"):
            keyed = get(client, EVIL, READER, k=50).json()
        assert keyed["cold_start"] is False and keyed["identity"]["account_count"] == 3
        assert not set(ids(keyed)) & visited(client, a, b)
        (line,) = audit_lines(caplog, "visitor activity access")
        assert line["user_id"] == EVIL and line["match_ids"] == [PERSON] and line["role"] == "reader"


def test_an_uncertain_commit_joins_no_person(fresh_person_warehouse, accounts):
    """A record that matches the person only probably (a writer's record without the SSN: just above the match
    threshold, far below the probability at which the nightly's link weight reaches 1) stays its own person until
    the nightly: before, it was answered wholly from the person's history (the weighted mean of the person's rows:
    the low weight of a doubtful link was normalised away)."""
    a, b = accounts
    with app_client(fresh_person_warehouse) as client:
        r = match(client, {**MARIA, "ssn": None, "id": EVIL, "source": "park"}, headers=WRITER, commit="true")
        body = r.json()
        assert r.status_code == 200 and body["match_id"] == PERSON, r.text
        p, t = body["match_probability"], body["explanation"]["threshold"]
        assert t <= p and not client.app.state.served.people.certain(p, t)
        assert client.app.state.served.people.certain(0.99999, t)   # a full-weight link would have joined
        for headers in (None, READER, PII):
            answer = get(client, EVIL, headers).json()
            assert answer["cold_start"] is True and answer["identity"] is None, headers
        assert get(client, a, PII).json()["identity"]["accounts"] == [a, b]
        # its events are its own: they change none of the person's answers
        before = get(client, b, READER).json()
        x = ids(before)[0]
        r = client.post("/events", json={"user_id": EVIL, "item_id": x, "timestamp": int(time.time())},
                        headers=WRITER)
        assert r.status_code == 202
        assert get(client, b, READER).json() == before
    # a commit line without a probability (an older version's, or one written by hand) is no certain match either
    from c360.append_log import AppendLog
    from c360.layout import Warehouse

    journal = AppendLog(Warehouse(fresh_person_warehouse).customers_log)
    journal.append([{"id": "acct-by-hand", "match_id": int(PERSON), "new_match": False,
                     "fields": {**MARIA, "source": "park"}, "committed_at": time.time()}])
    journal.close()
    with app_client(fresh_person_warehouse) as restarted:   # replayed from the customers log: the same
        assert get(restarted, EVIL, PII).json()["identity"] is None
        assert get(restarted, "acct-by-hand", PII).json()["identity"] is None
        view = restarted.get(f"/customer360/{PERSON}", headers=PII).json()   # read: an account of the match
        assert {"acct-by-hand", EVIL} <= {acc["user_id"] for acc in view["accounts"]}
        assert get(restarted, a, PII).json()["identity"]["accounts"] == [a, b]


def test_probing_a_link_with_events_is_keyed_and_audited_with_the_person(fresh_person_warehouse, accounts, caplog):
    """A writer posts an event for A and reads B: B's events_applied counts it, so the two are one person. That is
    what B's identity tells a key holder anyway; the read is keyed (without a key B's answer does not move) and its
    audit line names the person whose other account's events were used."""
    a, b = accounts
    with app_client(fresh_person_warehouse) as client:
        public_before = get(client, b).content
        r = client.post("/events", json={"user_id": a, "item_id": "epcot:1", "timestamp": int(time.time())},
                        headers=WRITER)
        assert r.status_code == 202
        assert get(client, b).content == public_before   # without a key: unchanged, nothing to probe
        with caplog.at_level(logging.INFO, logger="c360.api.audit"):
            assert get(client, b, WRITER).json()["events_applied"] == 1
        (line,) = audit_lines(caplog, "visitor activity access")
        assert line["user_id"] == b and line["match_ids"] == [PERSON] and line["role"] == "writer"
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="c360.api.audit"):   # A's own events: no other account's
            get(client, a, WRITER)
        (line,) = audit_lines(caplog, "visitor activity access")
        assert line["user_id"] == a and line["match_ids"] == []


@pytest.fixture()
def crowded_warehouse(tmp_path, person_warehouse, trained) -> tuple:
    """A copy of the person warehouse whose identities have Maria (17) with MAX_ACCOUNTS accounts (full) and John
    (42) with MAX_ACCOUNTS + 1 (a bad match: too many to be a person)."""
    from c360.layout import RunLayout
    from c360.recsys.identities import read_identities, write_identities

    wh = tmp_path / "wh"
    shutil.copytree(person_warehouse / "runs", wh / "runs", symlinks=True)
    run = wh / "runs" / "run-p"
    a, b = person_accounts(trained[2])
    others = [u for u in sorted(trained[2]["USER_ID"].unique()) if u not in (a, b)]
    maria = [a, b, *others[:MAX_ACCOUNTS - 2]]
    john = others[MAX_ACCOUNTS - 2:2 * MAX_ACCOUNTS - 1]
    links = tmp_path / "links.csv"
    pd.DataFrame({"USER_ID": maria + john, "PERSON_ID": [PERSON] * len(maria) + ["42"] * len(john),
                  "LINK_PROBABILITY": 0.999}).to_csv(links, index=False)
    target = RunLayout(run).identities
    target.unlink()
    write_identities(read_identities(links), target)
    publish(wh, run)
    return wh, maria, john


def test_a_person_is_bounded_whatever_the_match_joined(crowded_warehouse, caplog):
    """A bad match (thousands of accounts under one match_id) made every keyed answer list them all and fold in
    every account's live events, and each commit to it cost more: a person of more than MAX_ACCOUNTS accounts is
    served account by account, and a commit that would take a person past MAX_ACCOUNTS joins nothing."""
    wh, maria, john = crowded_warehouse
    # the identities keep a person of more than MAX_ACCOUNTS apart when they are read (logged by counts, never ids)
    from c360.layout import RunLayout

    saved = pd.read_parquet(RunLayout(wh / "runs" / "run-p").identities)
    assert (saved.loc[saved["USER_ID"].isin(john), "WEIGHT"] == 0).all()
    assert (saved.loc[saved["USER_ID"].isin(maria), "WEIGHT"] > 0).all()
    with caplog.at_level(logging.WARNING), app_client(wh) as client:
        assert not any(u in r.getMessage() for r in caplog.records for u in john)   # counts, never ids
        for user in john[:3]:
            assert get(client, user, PII).json()["identity"] is None
        # John's other accounts' events are not his accounts' events
        before = get(client, john[0], READER).json()
        r = client.post("/events", json={"user_id": john[1], "item_id": ids(before)[0],
                                         "timestamp": int(time.time())}, headers=WRITER)
        assert r.status_code == 202 and get(client, john[0], READER).json() == before
        # Maria is full: a certain commit joins nothing
        identity = get(client, maria[0], PII).json()["identity"]
        assert identity["account_count"] == MAX_ACCOUNTS and len(identity["accounts"]) == MAX_ACCOUNTS
        r = match(client, {**MARIA, "id": EVIL, "source": "park"}, headers=WRITER, commit="true")
        assert r.status_code == 200 and r.json()["match_id"] == PERSON
        assert get(client, EVIL, PII).json()["identity"] is None
        assert get(client, maria[0], PII).json()["identity"]["account_count"] == MAX_ACCOUNTS


def test_customer_recommendations_is_keyed_bounded_and_rate_limited(fresh_person_warehouse):
    """GET /customers/{match_id}/recommendations: without a key every match_id (known, unknown, malformed) gets the
    same 401, before any lookup; k is bounded; it counts against the lookup group's limits."""
    assert GROUPS["/customers/{match_id}/recommendations"] == "lookup"
    settings = Settings(warehouse=fresh_person_warehouse, graph="networkx", api_keys=dict(KEYS),
                        api={"rate_limits": {"lookup": {"per_second": 0.001, "burst": 3, "per_day": None}}})
    from c360.api.app import create_app

    with TestClient(create_app(settings)) as client:
        keyless = [client.get(f"/customers/{m}/recommendations") for m in (PERSON, "99999", "abc")]
        assert {r.status_code for r in keyless} == {401} and len({r.content for r in keyless}) == 1
        for k in (0, 101):
            assert client.get(f"/customers/{PERSON}/recommendations", params={"k": k},
                              headers=READER).status_code == 422
        assert client.get(f"/customers/{PERSON}/recommendations", params={"k": 100}, headers=READER).status_code \
            == 200
        r = client.get(f"/customers/{PERSON}/recommendations", headers=READER)
        assert r.status_code == 429 and "lookup" in r.json()["message"]


def test_no_account_id_nor_contact_field_reaches_a_reader_or_a_log_line(fresh_person_warehouse, caplog):
    """A committed park account in the customer 360: a reader sees its contact fields masked and its id numbered
    within the answer (account ids are pii's: a name led to the ids that read a visitor's live trip); a writer's
    match answer has no per-field levels; no log line of the whole sequence holds a contact field or the SSN."""
    record = {**MARIA, "id": EVIL, "source": "park", "email": "maria.lopez@example.com"}
    secrets = ["1980-04-02", "217-555-0100", "123-45-6789", "maria.lopez", "12 Main St", "62701"]
    with caplog.at_level(logging.DEBUG, logger="c360"), app_client(fresh_person_warehouse) as client:
        r = match(client, record, headers=WRITER, commit="true")
        assert r.status_code == 200 and r.json()["explanation"]["comparisons"] == []
        reader = client.get(f"/customer360/{PERSON}", headers=READER)
        clear = client.get(f"/customer360/{PERSON}", headers=PII).json()
        assert EVIL in {acc["user_id"] for acc in clear["accounts"]}
        assert EVIL not in reader.text and "acct-0000017" not in reader.text
        masked = reader.json()["accounts"]
        assert [acc["user_id"] for acc in masked] == [f"account:{i}" for i in range(1, len(masked) + 1)]
        for secret in secrets:
            assert secret not in reader.text, secret
        hits = client.get("/customers/search", params={"last_name": "Lopez"}, headers=READER)
        assert hits.status_code == 200 and "1980-04-02" not in hits.text
        get(client, EVIL, READER)
        get(client, EVIL, PII)
    logged = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert logged
    for secret in secrets:
        assert secret not in logged, secret


def test_a_commit_names_its_key_in_the_log_and_an_id_may_not_be_contact_data(fresh_person_warehouse):
    """Who joined which account to whom: the customers log's line of a commit names the committing key's hash and
    the match's probability and threshold (what serving's certainty reads). A careless client that uses the
    customer's e-mail or phone as the record id would put it in every audit and access line and in the public
    recommendations' path: refused."""
    from c360.api.audit import key_hash
    from c360.append_log import AppendLog
    from c360.layout import Warehouse

    with app_client(fresh_person_warehouse) as client:
        for rid in ("maria.lopez@example.com", "MARIA.LOPEZ@example.com", "2175550100", "acct-217-555-0100",
                    "123456789"):
            r = match(client, {**MARIA, "id": rid, "source": "park", "email": "maria.lopez@example.com"},
                      headers=WRITER, commit="true")
            assert r.status_code == 422 and r.json()["fields"] == ["id"], (rid, r.text)
        r = match(client, {**MARIA, "id": EVIL, "source": "park"}, headers=WRITER, commit="true")
        assert r.status_code == 200, r.text
    journal = AppendLog(Warehouse(fresh_person_warehouse).customers_log)
    (line,) = [e for s in journal.segments() for e in journal.read_through(s) if e.get("id") == EVIL]
    assert line["key"] == key_hash(WRITER["X-API-Key"]) and line["match_id"] == int(PERSON)
    assert line["threshold"] <= line["match_probability"] <= 1


def test_a_park_account_with_visits_in_the_run_cannot_be_committed_into_a_person(fresh_person_warehouse, accounts):
    """A writer commits a record with Maria's details under the id of a visitor the run trained on (an account with
    visits whose record is not in the match): it would have joined Maria with the visitor's history, and the
    visitor's answers would have left out what Maria's accounts visited. Refused (409): that account's record comes
    with the accounts table. A line of the log under such an id (another version's, written by hand) joins no one."""
    from c360.append_log import AppendLog
    from c360.layout import Warehouse

    a, b = accounts
    with app_client(fresh_person_warehouse) as client:
        served = client.app.state.served
        model = served.models[served.served_model]
        victim = next(u for u in model.user_ids if served.people.person_of(u) is None)
        before = get(client, victim, PII).json()
        r = match(client, {**MARIA, "id": victim, "source": "park"}, headers=WRITER, commit="true")
        assert r.status_code == 409 and r.json()["fields"] == ["id"], r.text
        assert "visits in the published run" in r.text
        assert get(client, victim, PII).json() == before and get(client, a, PII).json()["identity"]["accounts"] == [a, b]
        # a new account with the same details is certain: it joins
        r = match(client, {**MARIA, "id": EVIL, "source": "park"}, headers=WRITER, commit="true")
        assert r.status_code == 200 and set(get(client, EVIL, PII).json()["identity"]["accounts"]) == {a, b, EVIL}
        line = next(e for s in AppendLog(Warehouse(fresh_person_warehouse).customers_log).segments()
                    for e in AppendLog(Warehouse(fresh_person_warehouse).customers_log).read_through(s)
                    if e.get("id") == EVIL)
    journal = AppendLog(Warehouse(fresh_person_warehouse).customers_log)
    journal.append([{**line, "id": victim, "line": "by-hand"}])
    journal.close()
    with app_client(fresh_person_warehouse) as restarted:
        assert get(restarted, victim, PII).json()["identity"] is None
        assert set(get(restarted, a, PII).json()["identity"]["accounts"]) == {a, b, EVIL}
