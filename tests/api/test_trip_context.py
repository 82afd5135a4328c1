"""The visitor's current trip in GET /recommendations (the events posted within the session gap, `?at=` where they
stand now: the session model's next attractions of the park, `context` saying so) and GET /attractions/{id}/next."""

from __future__ import annotations

import dataclasses
import time

import pytest

from .conftest import READER, WRITER
from .test_events import app_client


def park(item: str) -> str:
    return item.split(":")[0]


def recs(client, user: str, **params) -> dict:
    r = client.get(f"/recommendations/{user}", params={"k": 10, **params}, headers=READER)
    assert r.status_code == 200, r.text
    return r.json()


def ids(answer: dict) -> list[str]:
    return [i["item_id"] for i in answer["items"]]


def busiest(state, where: str, n: int) -> list[str]:
    """The n attractions of park `where` with the most moves out of them in the session model's trips."""
    model = state.session
    out = model.stats.next.sum(axis=1)
    return sorted((i for i in model.item_ids if park(i) == where), key=lambda i: -out[model.item_index[i]])[:n]


def test_at_changes_the_answer_and_sets_context_at(client):
    state = client.app.state.served
    user = next(u for u in state.recs if u in state.models["als"].user_index)
    before = recs(client, user)
    assert before["context"] is None and before["model"] == "als"
    at = busiest(state, "epcot", 1)[0]
    here = recs(client, user, at=at)
    assert here["context"] == {"session": None, "at": at}
    assert here["model"] == "session" and here["model_version"] == "run-1:session" and not here["cold_start"]
    assert ids(here) != ids(before) and len(ids(here)) == 10
    assert at not in ids(here) and {park(i) for i in ids(here)} == {"epcot"}
    assert [i["rank"] for i in here["items"]] == list(range(1, 11))
    # standing elsewhere is another answer, in that other park
    other = busiest(state, "caliAdv", 1)[0]
    there = recs(client, user, at=other, exclude=ids(here)[0])
    assert there["context"]["at"] == other and {park(i) for i in ids(there)} == {"caliAdv"}
    # a visitor nobody knows, standing somewhere: personal at once
    stranger = recs(client, "nobody-at-all", at=at)
    assert stranger["context"] == {"session": None, "at": at} and stranger["cold_start"] is False
    assert at not in ids(stranger) and {park(i) for i in ids(stranger)} == {"epcot"}


def test_unknown_at_is_422_naming_it(client):
    user = next(iter(client.app.state.served.recs))
    for params in ({"at": "nope:1"}, {"at": ""}):
        r = client.get(f"/recommendations/{user}", params=params)
        assert r.status_code == 422 and "at" in r.json()["fields"], (params, r.text)
    r = client.get(f"/recommendations/{user}", params={"at": "epcot:1", "model": "popularity"})
    assert r.status_code == 422 and r.json()["fields"] == ["at"]


def test_events_of_the_current_trip_are_the_context(fresh_warehouse):
    with app_client(fresh_warehouse) as client:
        state = client.app.state.served
        first, second, third = busiest(state, "epcot", 3)
        now = int(time.time())
        user = "trip-visitor"
        old = {"user_id": user, "item_id": busiest(state, "disHolly", 1)[0], "timestamp": now - 3 * 86400}
        trip = [{"user_id": user, "item_id": first, "timestamp": now - 1200},
                {"user_id": user, "item_id": second, "timestamp": now - 600},
                {"user_id": user, "item_id": first, "timestamp": now - 300}]
        assert client.post("/events", json=[old, *trip], headers=WRITER).status_code == 202
        answer = recs(client, user)
        # the trip: the events after the last gap above the model's (480 min), the old visit is another trip
        assert answer["context"] == {"session": {"items": [first, second], "events": 3}, "at": None}
        assert answer["model"] == "session" and answer["events_applied"] == 3 and not answer["cold_start"]
        assert {first, second}.isdisjoint(ids(answer)) and {park(i) for i in ids(answer)} == {"epcot"}
        assert len(ids(answer)) == 10
        # where they stand now moves the trip on: that attraction is left out too
        here = recs(client, user, at=third)
        assert here["context"] == {"session": {"items": [first, second], "events": 3}, "at": third}
        assert {first, second, third}.isdisjoint(ids(here)) and ids(here) != ids(answer)
        assert {park(i) for i in ids(here)} == {"epcot"}
        # another model asked for by name answers as before: the events folded in, no trip
        named = recs(client, user, model="als")
        assert named["context"] is None and named["events_applied"] == 4
        # a visitor whose events are all from an earlier day has no trip now: as before
        client.post("/events", json={**old, "user_id": "came-last-week"}, headers=WRITER)
        past = recs(client, "came-last-week")
        assert past["context"] is None and past["model"] == "als" and past["events_applied"] == 1


def test_next_attractions_with_walking_minutes(client):
    state = client.app.state.served
    item = busiest(state, "epcot", 1)[0]
    r = client.get(f"/attractions/{item}/next", params={"k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["item_id"] == item and body["model"] == "session" and body["moves"] > 0
    assert body["name"] == state.names[item]
    items = body["items"]
    assert len(items) == 5 and [i["rank"] for i in items] == [1, 2, 3, 4, 5]
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-9
    assert all(i["walking_minutes"] is not None and i["walking_minutes"] > 0 for i in items)
    assert item not in [i["item_id"] for i in items] and {park(i["item_id"]) for i in items} == {"epcot"}
    # the most frequent next move is what the session model's transitions say
    model = state.session
    row = model.stats.next[model.item_index[item]]
    assert items[0]["item_id"] == model.item_ids[int(row.argmax())]
    assert abs(items[0]["score"] - row.max() / row.sum()) < 1e-9
    assert client.get("/attractions/nope:1/next").status_code == 404


def test_a_run_without_a_session_model_answers_as_before(fresh_warehouse):
    with app_client(fresh_warehouse) as client:
        state = client.app.state.served
        item = busiest(state, "epcot", 1)[0]
        client.app.state.served = dataclasses.replace(state, session_algo=None)
        try:
            r = client.get(f"/attractions/{item}/next")
            assert r.status_code == 404 and "no session model" in r.json()["message"]
            user = next(iter(state.recs))
            answer = recs(client, user, at=item)
            assert answer["context"] is None and answer["model"] == "als"
        finally:
            client.app.state.served = state


@pytest.mark.slow
def test_a_trip_in_a_park_the_session_model_does_not_know_stays_in_that_park(fresh_warehouse, trained):
    """The session model knows epcot and caliAdv only: a trip at disHolly is answered by the served model's
    disHolly attractions, a trip at MagicK (no model of the run knows it) by none, never another park's; `context`
    says so."""
    from c360.recsys.models import train
    from c360.recsys.trips import load_trips

    _, items, _ = trained
    data = load_trips(fmt="sigir17")
    two_parks = set(items.loc[items["PARK"].isin(["epcot", "caliAdv"]), "ITEM_ID"])
    session = train("session", data.trips[data.trips["ITEM_ID"].isin(two_parks)], items,
                    params={"model": "transitions"}, walks=data.walks, show_progress=False)
    with app_client(fresh_warehouse) as client:
        state = client.app.state.served
        client.app.state.served = dataclasses.replace(state, models={**state.models, "session": session})
        holly = [i for i in state.models["als"].item_ids if park(i) == "disHolly"]
        now = int(time.time())
        client.post("/events", json=[{"user_id": "holly-visitor", "item_id": busiest(state, "epcot", 1)[0],
                                      "timestamp": now - 900},
                                     {"user_id": "holly-visitor", "item_id": holly[0], "timestamp": now - 300}],
                    headers=WRITER)
        answer = recs(client, "holly-visitor")
        assert answer["model"] == "als" and answer["model_version"] == "run-1:als"
        assert ids(answer) and {park(i) for i in ids(answer)} == {"disHolly"} and holly[0] not in ids(answer)
        assert answer["context"]["park"] == "disHolly" and "does not know park 'disHolly'" in answer["context"]["note"]
        at = recs(client, "nobody-here", at="MagicK:1")
        assert at["items"] == [] and at["context"]["park"] == "MagicK" and at["context"]["at"] == "MagicK:1"
        # a park it knows: the session model, as before
        known = recs(client, "nobody-here", at=busiest(state, "epcot", 1)[0])
        assert known["model"] == "session" and "note" not in known["context"]
        client.app.state.served = state
