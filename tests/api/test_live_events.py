"""What each worker holds of the events log (api.live.LiveEvents): bounded whatever is posted, read off the event
loop (by the reloader's watch loop, and by a request only in a thread)."""

from __future__ import annotations

import asyncio
import time

from c360.api.live import LiveEvents
from c360.journal import Journal
from c360.layout import Warehouse
from c360.settings import RealtimeSettings

from .conftest import READER
from .test_events import app_client


def test_a_user_costs_the_same_after_many_events(tmp_path):
    """Per user: summed values per item of the catalogue, a count, the latest `trip_visits` visits in time order
    (late ones in their place); lines the nightly would quarantine and duplicate event_ids are not applied."""
    journal = Journal(tmp_path / "events")
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
        other = Journal(Warehouse(fresh_warehouse).events_log)   # another worker's writer
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
    Journal(Warehouse(fresh_warehouse).events_log).append(
        [{"user_id": f"u{i % 5000}", "item_id": item, "timestamp": now, "event_value": 1.0} for i in range(20000)])
    with app_client(fresh_warehouse) as client:
        assert client.app.state.served.events.applied == 20000
        assert client.get("/recommendations/u7", headers=READER).json()["events_applied"] == 4
