"""The hot request of GET /recommendations (no key, no query but `k`) is answered before FastAPI routes it, from the
serving module's stored answer: the same bytes and headers as the handler's answer to the same visitor, and only for
the requests that answer fits."""

from __future__ import annotations

import pytest

from c360.api.routers import recommendations as router

from .conftest import READER


def _handled(client, path: str, k: int | None = None):
    """The handler's answer: `model` naming the served model sends the request past the hot path, to the same
    stored answer."""
    state = client.app.state.served
    params = {"model": state.served_model, **({"k": k} if k is not None else {})}
    return client.get(path, params=params)


def _hot_calls(monkeypatch, client) -> list[bytes | None]:
    """What the hot path answers, one entry per request it saw."""
    calls: list[bytes | None] = []
    serving = client.app.state.served.serving
    real = type(serving).stored_json

    def spy(self, user_id, k):
        calls.append(real(self, user_id, k))
        return calls[-1]

    monkeypatch.setattr(type(serving), "stored_json", spy)
    return calls


@pytest.mark.parametrize("k", [None, 1, 5, 20])
def test_a_stored_answer_is_the_handlers_answer_byte_for_byte(client, monkeypatch, k):
    state = client.app.state.served
    calls = _hot_calls(monkeypatch, client)
    for user in list(state.recs)[:5]:
        hot = client.get(f"/recommendations/{user}", params={"k": k} if k is not None else None)
        handled = _handled(client, f"/recommendations/{user}", k)
        assert hot.status_code == handled.status_code == 200
        assert hot.content == handled.content
        assert hot.headers["content-type"] == handled.headers["content-type"] == "application/json"
        assert hot.headers["content-length"] == handled.headers["content-length"]
        assert hot.json()["events_applied"] is None and hot.json()["context"] is None
    assert len(calls) == 5 and all(calls)


def test_a_visitor_no_model_knows_gets_the_popular_items_from_the_hot_path(client, monkeypatch):
    calls = _hot_calls(monkeypatch, client)
    hot = client.get("/recommendations/nobody-at-all", params={"k": 7})
    handled = _handled(client, "/recommendations/nobody-at-all", 7)
    assert hot.content == handled.content and hot.json()["cold_start"] is True and len(hot.json()["items"]) == 7
    assert calls and calls[0] is not None


def test_an_answer_that_is_not_stored_goes_to_the_handler(client, monkeypatch):
    """More items than the table stores: the hot path answers nothing and the handler scores them."""
    state = client.app.state.served
    user = next(iter(state.recs))
    calls = _hot_calls(monkeypatch, client)
    r = client.get(f"/recommendations/{user}", params={"k": 30})
    assert r.status_code == 200 and len(r.json()["items"]) == 30
    assert calls == [None]


@pytest.mark.parametrize("query", ["k=0", "k=101", "k=010", "k=", "k=abc", "k=5&k=6", "k=5&exclude=x", "K=5",
                                   "at=x", "model=popularity"])
def test_any_other_query_goes_to_the_handler(client, monkeypatch, query):
    user = next(iter(client.app.state.served.recs))
    calls = _hot_calls(monkeypatch, client)
    client.get(f"/recommendations/{user}?{query}")
    assert calls == []


def test_a_keyed_request_goes_to_the_handler(client, monkeypatch):
    user = next(iter(client.app.state.served.recs))
    calls = _hot_calls(monkeypatch, client)
    r = client.get(f"/recommendations/{user}", params={"k": 5}, headers=READER)
    assert r.status_code == 200 and r.json()["events_applied"] == 0
    assert client.get(f"/recommendations/{user}", headers={"X-API-Key": "not-a-key"}).status_code == 401
    assert calls == []


@pytest.mark.parametrize("path", ["/recommendations/", "/recommendations/a/b", "/recommendations/" + "x" * 201])
def test_paths_outside_the_route_go_to_the_app(client, path):
    assert router.StoredRecommendations._stored({"type": "http", "method": "GET", "path": path, "query_string": b"",
                                                 "headers": [], "app": client.app}) is None
    assert client.get(path).status_code in (404, 422)


def test_a_post_is_not_answered_by_the_hot_path(client):
    user = next(iter(client.app.state.served.recs))
    assert client.post(f"/recommendations/{user}").status_code == 405
