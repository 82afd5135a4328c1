"""The nightly and what the real-time logs hold, whatever they hold: a logged event no rule allows is quarantined into
the run (never trained on, never failing a run); each logged event is counted once, by position and by event_id,
however a run ended after its publish; publishing and "succeeded" are one step; and what the nightly and the logs
write is readable by their owner only."""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pytest

from c360.append_log import AppendLog
from c360.errors import InputError
from c360.jobs import live_intake
from c360.jobs.manifest import Manifest
from c360.jobs.nightly import run_nightly
from c360.layout import Warehouse
from tests.jobs.conftest import epcot_visits, insurance, write_config  # noqa: F401  (fixtures)

ENV = {"C360_GRAPH": "networkx", "C360_SPARK_MASTER": "local[2]"}
ITEM, TS = "epcot:1", 1764590400
EVIL = '=HYPERLINK("http://evil/","x")'


def state(run) -> dict:
    return json.loads(run.realtime.read_text())


def open_to_others(root) -> list[str]:
    """Files and directories under `root` that group or others may read, write or enter (symlinks aside)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                found.append(f"{os.path.relpath(path, root)} {stat.filemode(mode)}")
    return found


@pytest.fixture()
def nightly(tmp_path, epcot_visits, insurance):  # noqa: F811
    wh = Warehouse(tmp_path / "wh")
    cfg = str(write_config(tmp_path / "c.yaml", epcot_visits, insurance, serve="popularity",
                           algorithms=("popularity",)))

    def run(**kwargs):
        return run_nightly(cfg, warehouse=str(wh.root), env=ENV, **kwargs)

    return wh, run


@pytest.mark.slow
def test_bad_logged_events_are_quarantined_and_each_event_counts_once(nightly, monkeypatch):
    wh, run = nightly
    events = AppendLog(wh.events_log)
    # as an older API version could have logged them: a formula for a user id, a timestamp that is no integer, a line
    # that is no object; beside them a retried request (one event_id twice) and an event without an id
    events.append([{"user_id": EVIL, "item_id": ITEM, "timestamp": TS},
                   {"user_id": "rt-1", "item_id": ITEM, "timestamp": TS, "event_value": 2, "event_id": "e-1"},
                   {"user_id": "rt-1", "item_id": ITEM, "timestamp": TS, "event_value": 2, "event_id": "e-1"},
                   {"user_id": "rt-2", "item_id": ITEM, "timestamp": "soon"},
                   {"user_id": "rt-2", "item_id": ITEM, "timestamp": TS + 1}])
    with events.exclusive() as writer:
        writer.write(b'["not", "an", "event"]\n')
    # killed right after the publish: the consumed segments are never dropped
    monkeypatch.setattr(live_intake, "drop_published", lambda ctx: None)
    assert run()["status"] == "succeeded"
    run1 = wh.current()
    s1 = state(run1)
    assert s1["events"] == 2 and s1["quarantined"] == 3
    assert sorted(pd.read_parquet(run1.events)["USER_ID"]) == ["rt-1", "rt-2"]
    lines = [json.loads(line) for line in run1.quarantine.read_text().splitlines()]
    assert [q["record"] for q in lines] == [
        {"user_id": EVIL, "item_id": ITEM, "timestamp": TS},
        {"user_id": "rt-2", "item_id": ITEM, "timestamp": "soon"}, ["not", "an", "event"]]
    assert [q["problem"].split(":")[0] for q in lines] == ["user_id", "timestamp", "event"]
    assert stat.S_IMODE(run1.quarantine.stat().st_mode) == 0o600
    m = Manifest.load(run1.manifest).data
    assert m["steps"]["recsys_evaluate"]["rows"]["events_quarantined"] == 3
    assert m["steps"]["recsys_evaluate"]["rows"]["realtime_events"] == 2
    report = run1.report_html.read_text()
    assert "Real-time events" in report and "quarantined" in report
    monkeypatch.undo()

    # more events, one a retry of an event run 1 already has; the drop after this run fails
    events.append([{"user_id": "rt-1", "item_id": ITEM, "timestamp": TS, "event_value": 2, "event_id": "e-1"},
                   {"user_id": "rt-4", "item_id": ITEM, "timestamp": TS + 2, "event_id": "e-4"}])

    def fail(self, segment):
        raise OSError("disk went away")

    monkeypatch.setattr(AppendLog, "drop_through", fail)
    run()
    run2 = wh.current()
    s2 = state(run2)
    assert run2 != run1 and s2["events"] == 3 and s2["quarantined"] == 0
    assert sorted(pd.read_parquet(run2.events)["USER_ID"]) == ["rt-1", "rt-2", "rt-4"]
    monkeypatch.undo()

    run()  # nothing new: the events carry on, the segments left behind are not read again, and are dropped now
    run3 = wh.current()
    assert state(run3)["events"] == 3 and len(pd.read_parquet(run3.events)) == 3
    assert events.segments() == [state(run3)["events_through"] + 1]
    trained = pd.read_parquet(run3.interactions)
    pair = trained[(trained["USER_ID"] == "rt-1") & (trained["ITEM_ID"] == ITEM)]
    assert pair["EVENT_VALUE"].tolist() == [2.0]  # the retried event, once

    # what the nightly and the logs wrote is the owner's only: runs, journals and their lock files
    AppendLog(wh.customers_log).append([{"reserved_through": 1}])
    assert open_to_others(wh.root) == []


class Killed(BaseException):
    """The process ending at this point (a BaseException: nothing catches it on the way out)."""


@pytest.mark.slow
def test_a_run_killed_between_succeeded_and_publish_is_published_by_resume(nightly, monkeypatch):
    wh, run = nightly
    AppendLog(wh.events_log).append([{"user_id": "rt-1", "item_id": ITEM, "timestamp": TS, "event_value": 1,
                                    "event_id": "e-1"}])

    def killed(self, layout):
        raise Killed

    monkeypatch.setattr(Warehouse, "publish", killed)
    with pytest.raises(Killed):
        run()
    monkeypatch.undo()
    (root,) = wh.runs.iterdir()
    killed_run = wh.run(root.name)
    assert Manifest.load(killed_run.manifest).data["status"] == "succeeded" and wh.current() is None
    assert AppendLog(wh.events_log).segments()[0] == 1  # what it read is still logged: nothing contains it yet

    # a run published meanwhile contains what the killed run never read: it is not published over it
    newer = wh.run("newer")
    newer.root.mkdir()
    wh.publish(newer)
    with pytest.raises(InputError, match=rf"--resume {killed_run.run_id}: run newer was published after this run"):
        run(resume=killed_run.run_id)
    wh.current_link.unlink()

    result = run(resume=killed_run.run_id)
    assert result["status"] == "succeeded" and wh.current() == killed_run
    assert AppendLog(wh.events_log).segments() == [state(killed_run)["events_through"] + 1]  # dropped after publish
    with pytest.raises(InputError, match="already succeeded and is published"):
        run(resume=killed_run.run_id)


def test_an_event_id_repeated_by_its_user_is_dropped_and_another_user_s_is_not(tmp_path):
    """The nightly's idempotency key is the API's, (user_id, event_id): a writer reusing another user's event_id
    takes nothing from them; the same user's id again is a retry, the first copy kept whatever the copy carries."""
    from c360.jobs.pipeline import RunContext
    from c360.settings import Settings

    wh = Warehouse(tmp_path / "wh")
    run = wh.run("run-1")
    run.root.mkdir(parents=True)
    first = {"user_id": "attacker", "item_id": ITEM, "timestamp": TS, "event_id": "app-000001"}
    AppendLog(wh.events_log).append([first, {**first, "user_id": "legit"},
                                   {**first, "user_id": "legit", "item_id": "epcot:2", "timestamp": TS - 5},
                                   {"user_id": "legit", "item_id": ITEM, "timestamp": TS},   # no id: two visits
                                   {"user_id": "legit", "item_id": ITEM, "timestamp": TS}])
    events = live_intake.run_events(RunContext(settings=Settings(warehouse=wh.root), run=run, manifest=None))
    kept = events[["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_ID"]].fillna("-").itertuples(index=False, name=None)
    assert sorted(kept) == [("attacker", ITEM, TS, "app-000001"), ("legit", ITEM, TS, "-"), ("legit", ITEM, TS, "-"),
                            ("legit", ITEM, TS, "app-000001")]
    assert state(run)["duplicates"] == 1 and state(run)["events"] == 4
