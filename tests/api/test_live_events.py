"""What each worker holds of the events log (api.live_updates.LiveEvents): bounded whatever is posted, read off the event
loop (by the reloader's watch loop, and by a request only in a thread)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from c360.api.live_updates import LiveEvents
from c360.append_log import AppendLog
from c360.layout import Warehouse
from c360.settings import RealtimeSettings

from .conftest import READER, WRITER
from .test_events import app_client


def test_a_user_costs_the_same_after_many_events(tmp_path):
    """Per user: summed values per item of the catalogue, a count, the latest `trip_visits` visits in time order
    (late ones in their place); lines the nightly would quarantine and duplicate event_ids are not applied."""
    journal = AppendLog(tmp_path / "events")
    now = int(time.time())
    catalogue = frozenset({"a:1", "a:2", "a:3"})
    lines = [{"user_id": "u", "item_id": f"a:{1 + i % 3}", "timestamp": now - 5000 + i, "event_value": 1.0}
             for i in range(5000)]
    lines[100], lines[200] = lines[200], lines[100]   # out of order
    lines += [{"user_id": "u", "item_id": "zz:9", "timestamp": now, "event_value": 1.0},      # not in the catalogue
              {"user_id": "u", "item_id": "a:1", "timestamp": now, "event_value": 1e9},      # over the bound
              {"user_id": "u", "item_id": "a:1", "timestamp": now - 4000, "event_id": "x"},  # late, and twice
              {"user_id": "u", "item_id": "a:1", "timestamp": now - 4000, "event_id": "x"}]
    journal.append(lines)
    live = LiveEvents(journal, settings=RealtimeSettings(trip_visits=64), catalogue=catalogue)
    mine = live.of("u")
    assert mine.count == 5001 and set(mine.items) == catalogue and sum(mine.items.values()) == 5001
    assert len(mine.visits) == 64 and mine.visits == sorted(mine.visits) and mine.visits[-1][0] == now - 1
    assert live.skipped == 2 and live.duplicates == 1 and live.applied == len(lines)
    assert live.of("nobody").count == 0
    journal.append([lines[0]])
    assert live.behind()
    live.refresh()
    assert live.of("u").count == 5002


def test_the_backlog_is_read_off_the_event_loop(fresh_warehouse, monkeypatch):
    """Lines another worker appended are read by the watch loop's thread, and a request that finds some reads them
    in a thread: never by the event loop."""
    from c360.api.app import create_app
    from c360.settings import Settings

    from .conftest import KEYS

    readers = []
    refresh = LiveEvents.refresh

    def spy(self):
        try:
            asyncio.get_running_loop()
            readers.append("event loop")
        except RuntimeError:
            readers.append("thread")
        refresh(self)

    from fastapi.testclient import TestClient

    app = create_app(Settings(warehouse=fresh_warehouse, graph="networkx", api_keys=dict(KEYS)), reload_interval=0.1)
    with TestClient(app) as client:
        monkeypatch.setattr(LiveEvents, "refresh", spy)
        state = client.app.state.served
        item = state.models["als"].item_ids[0]
        other = AppendLog(Warehouse(fresh_warehouse).events_log)   # another worker's writer
        other.append([{"user_id": "w", "item_id": item, "timestamp": int(time.time()), "event_value": 1.0}] * 3)
        deadline = time.time() + 10
        while state.events.applied < 3 and time.time() < deadline:
            time.sleep(0.05)
        assert state.events.applied == 3   # no request: the watch loop read them
        other.append([{"user_id": "w", "item_id": item, "timestamp": int(time.time()), "event_value": 1.0}])
        for _ in range(20):
            client.get("/recommendations/w", headers=READER)
        assert readers and set(readers) == {"thread"}, readers
        assert client.get("/recommendations/w", headers=READER).json()["events_applied"] == 4


def test_a_worker_started_on_a_full_log_is_ready_at_once(fresh_warehouse):
    """The log holds at most max_pending_events since the run: a restart reads them in load_state, off the loop."""
    with app_client(fresh_warehouse) as client:
        item = client.app.state.served.models["als"].item_ids[0]
    now = int(time.time())
    AppendLog(Warehouse(fresh_warehouse).events_log).append(
        [{"user_id": f"u{i % 5000}", "item_id": item, "timestamp": now, "event_value": 1.0} for i in range(20000)])
    with app_client(fresh_warehouse) as client:
        assert client.app.state.served.events.applied == 20000
        assert client.get("/recommendations/u7", headers=READER).json()["events_applied"] == 4


def test_a_bad_line_in_the_events_log_is_skipped_and_serving_goes_on(fresh_warehouse):
    """A line no writer wrote (a seal marker naming no next segment, a line that is no JSON) costs nothing but a log
    line: /recommendations, POST /events and the nightly's read go on, past it."""
    with app_client(fresh_warehouse) as client:
        item = client.app.state.served.models["als"].item_ids[0]
        now = int(time.time())
        ok = {"user_id": "u1", "item_id": item, "timestamp": now}
        assert client.post("/events", json=ok, headers=WRITER).status_code == 202
        journal = AppendLog(Warehouse(fresh_warehouse).events_log)
        with journal.exclusive() as writer:
            writer.write(b'{"_sealed":"x"}\n{"_sealed": 7}\nnot json\n')
        r = client.get("/recommendations/u1", headers=READER)
        assert r.status_code == 200 and r.json()["events_applied"] == 1, r.text
        assert client.post("/events", json={**ok, "user_id": "u2"}, headers=WRITER).status_code == 202
        assert client.get("/recommendations/u2", headers=READER).json()["events_applied"] == 1
        assert [e["user_id"] for e in journal.read_through(journal.seal())] == ["u1", "u2"]
        journal.append([{**ok, "user_id": "u3"}])
        assert client.get("/recommendations/u3", headers=READER).json()["events_applied"] == 1


def test_events_admitted_and_not_yet_logged_count_against_their_user(tmp_path):
    """Concurrent requests of one user are admitted against what the log holds and what other requests were admitted
    and are still writing: never more than max_user_events together; a failed append gives them back."""
    live = LiveEvents(AppendLog(tmp_path / "events"), settings=RealtimeSettings(max_user_events=500))
    batch = [{"user_id": "victim", "item_id": "a:1", "timestamp": int(time.time())}] * 500
    start = threading.Barrier(8)

    def admit(_):
        start.wait()
        return live.admit(batch)

    with ThreadPoolExecutor(8) as pool:
        admissions = list(pool.map(admit, range(8)))
    (admitted,) = [a for a in admissions if a.refused is None]
    assert sorted(a.refused[0] for a in admissions if a.refused) == [429] * 7
    other = live.admit([{**batch[0], "user_id": "other"}])   # another user's quota is their own
    assert other.refused is None
    live.append(admitted.records)
    live.logged(admitted)   # in the log now: counted once, as read from it
    assert live.admit(batch[:1]).refused[0] == 429 and live.of("victim").count == 500
    live.logged(other)      # its append failed: nothing of it holds the quota
    assert live.admit([{**batch[0], "user_id": "other"}] * 500).refused is None


def test_an_event_id_is_the_key_of_one_user(tmp_path):
    """The idempotency key is (user_id, event_id): another user's id does not block an event, the same user's is a
    duplicate whatever its item or timestamp (the first is kept), at intake and when reading the log."""
    journal = AppendLog(tmp_path / "events")
    live = LiveEvents(journal)
    first = {"user_id": "attacker", "item_id": "a:1", "timestamp": int(time.time()), "event_id": "app-000001"}
    for e in (first, {**first, "user_id": "legit"}):
        admission = live.admit([e])
        assert admission.records == [e] and admission.duplicates == 0
        live.append(admission.records)
        live.logged(admission)
    again = live.admit([{**first, "item_id": "a:2", "timestamp": first["timestamp"] - 5}])
    assert again.records == [] and again.duplicates == 1
    journal.append([{**first, "user_id": "third"}, {**first, "item_id": "a:2"}])   # two workers that raced
    live.refresh()
    assert [live.of(u).count for u in ("attacker", "legit", "third")] == [1, 1, 1]
    assert live.of("attacker").items == {"a:1": 1.0} and live.duplicates == 1
