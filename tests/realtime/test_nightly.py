"""The nightly and the real-time logs: it trains on the posted events, matches the committed records keeping the
match_ids they were given, drops from the logs only what the published run contains, and carries both on."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from c360.append_log import AppendLog
from c360.jobs.nightly import run_nightly
from c360.layout import Warehouse
from c360.settings import Settings
from tests.jobs.conftest import epcot_visits, insurance, write_config  # noqa: F401  (fixtures)

ENV = {"C360_GRAPH": "networkx", "C360_SPARK_MASTER": "local[2]"}
WRITER = {"X-API-Key": "w"}
STEWARD = {"X-API-Key": "s"}


def app(warehouse) -> TestClient:
    from c360.api.app import create_app

    return TestClient(create_app(Settings(warehouse=warehouse, graph="networkx",
                                          api_keys={"w": "writer", "s": "steward"})))


def ids(run) -> dict[str, int]:
    df = pd.read_parquet(run.match.matched, columns=["id", "match_id"])
    return dict(zip(df["id"], df["match_id"].astype(int), strict=True))


@pytest.mark.slow
def test_the_nightly_trains_on_events_and_keeps_the_committed_match_ids(spark, tmp_path, epcot_visits,  # noqa: F811
                                                                       insurance):  # noqa: F811
    wh = Warehouse(tmp_path / "wh")
    # a few hand-made labels instead of the generator's, which answer every pair of 150 people: stewards get a queue
    labels = pd.read_csv(insurance / "labels.csv", dtype=str)
    labels = labels[labels["labeling_set_id"].isin(labels["labeling_set_id"].unique()[:3])]
    labels.to_csv(tmp_path / "labels.csv", index=False)
    cfg = str(write_config(tmp_path / "c.yaml", epcot_visits, insurance, serve="popularity",
                           er={"labels": [str(tmp_path / "labels.csv")]}))
    run_nightly(cfg, warehouse=str(wh.root), env=ENV)
    run1 = wh.current()
    merged = pd.read_parquet(run1.merged)
    person = merged.iloc[0].to_dict()
    with app(wh.root) as client:
        state = client.app.state.served
        user = next(iter(state.recs))
        item = state.recs[user][0]["item_id"]
        now = int(time.time())  # the API accepts events of the last realtime.max_event_age_s only
        events = [{"user_id": user, "item_id": item, "timestamp": now - 120, "event_value": 2},
                  {"user_id": "rt-visitor", "item_id": item, "timestamp": now - 60}]
        assert client.post("/events", json=events, headers=WRITER).status_code == 202
        fields = {k: person[k] for k in ("first_name", "last_name", "date_of_birth", "ssn", "address", "zip",
                                         "company") if isinstance(person[k], str)}
        joined = client.post("/customers/match", params={"commit": "true"}, headers=WRITER,
                             json={**fields, "id": "900001-property", "source": "property"}).json()
        stranger = {"first_name": "Odalys", "last_name": "Pemberton-Quist", "date_of_birth": "1931-07-19",
                    "ssn": "321-54-9876", "zip": "10001"}
        new = client.post("/customers/match", params={"commit": "true"}, headers=WRITER,
                          json={**stranger, "id": "900002-auto", "source": "auto"}).json()
        assert joined["match_id"] == str(ids(run1)[person["id"]]) and new["new_match"] is True
        # a steward answers the first set of run 1's review queue against the model (c360.jobs.review_intake)
        sets = client.get("/review/next", params={"n": 20}, headers=STEWARD).json()["sets"]
        asked = next((x for x in sets if x["records"][0]["match_id"] == x["records"][1]["match_id"]), sets[0])
        one = asked["records"][0]["match_id"] == asked["records"][1]["match_id"]
        decided = client.post("/review/decisions", headers=STEWARD, json={"decisions": [
            {"labeling_set_id": asked["labeling_set_id"], "label": "non-match" if one else "match"}]}).json()
        assert decided["decisions"][0]["status"] == "logged"

    run_nightly(cfg, warehouse=str(wh.root), env=ENV)
    run2 = wh.current()
    assert run2 != run1
    state = json.loads(run2.realtime.read_text())
    assert state["events"] == 2 and state["committed"] == 2 and state["events_through"] >= 1
    trained = pd.read_parquet(run2.interactions)
    pair = trained[(trained["USER_ID"] == user) & (trained["ITEM_ID"] == item)]
    assert len(pair) == 1 and "rt-visitor" in set(trained["USER_ID"])
    # the committed records are in the run, each under the match_id it was given, and so in its graph
    kept = ids(run2)
    assert kept["900001-property"] == int(joined["match_id"]) == kept[person["id"]]
    assert kept["900002-auto"] == int(new["match_id"])
    # what became of the published ids counts the committed records: the new one's id was kept, not new
    changes = pd.read_parquet(run2.match.id_changes).set_index("match_id")
    assert changes.loc[int(new["match_id"]), ["change", "records_before"]].tolist() == ["kept", 1]
    assert changes.loc[int(joined["match_id"]), "records_before"] == \
        sum(m == int(joined["match_id"]) for m in ids(run1).values()) + 1
    counts = json.loads(run2.manifest.read_text())["steps"]["match"]["metrics"]["id_changes"]
    assert counts == changes["change"].value_counts().reindex(list(counts), fill_value=0).to_dict()
    assert "Match ids since the previous output" in run2.report_html.read_text()
    # run 2 trained on the decision, measured the stewards' precision/recall, and never asks about that pair again
    assert state["decisions"] == 1 and len(pd.read_parquet(run2.decisions)) == 1
    metrics = json.loads(run2.manifest.read_text())["steps"]["match"]["metrics"]
    assert {"decisions_precision", "decisions_recall"} <= set(metrics) and metrics["review_sets"] > 0
    assert metrics["decisions_trained"] is True    # from the first answer (its threshold moves only on evidence)
    effect = decided["decisions"][0]["effect"]
    if effect and effect["kind"] == "split":   # the split-off part's id is kept, or listed: never silently gone
        assert int(effect["to_match_id"]) in changes.index
    pair = {r["record_id"] for r in asked["records"][:2]}
    queue = pd.read_csv(run2.review_queue, dtype=str)
    assert not any(set(g["id"]) >= pair for _, g in queue.groupby("labeling_set_id"))
    # the logs keep only what run 2 does not contain: the active segments, and run 2's match_id reservation
    events_log, customers_log = AppendLog(wh.events_log), AppendLog(wh.customers_log)
    assert events_log.segments() == [state["events_through"] + 1]
    assert customers_log.segments() == [state["customers_through"] + 1]
    assert customers_log.read_through(10**9) == [{"reserved_through": state["reserved_through"]}]
    with app(wh.root) as client:
        assert client.app.state.served.run_id == run2.run_id
        body = client.get(f"/recommendations/{user}", headers=WRITER).json()   # a key: events_applied is shown
        assert body["events_applied"] == 0 and item not in [i["item_id"] for i in body["items"]]
        assert client.get("/recommendations/rt-visitor").json()["cold_start"] is False
        r = client.get(f"/customer360/{new['match_id']}", headers=WRITER).json()
        assert [c["id"] for c in r["customers"]] == ["900002-auto"]
        later = client.post("/customers/match", params={"commit": "true"}, headers=WRITER,
                            json={"first_name": "Zebulon", "last_name": "Amsterdam-Ruiz", "date_of_birth": "1922-02-02",
                                  "id": "900003-auto"}).json()
        assert int(later["match_id"]) > state["reserved_through"]  # above what a running nightly may hand out

    run_nightly(cfg, warehouse=str(wh.root), env=ENV)  # nothing new was posted: the events and records carry on
    run3 = wh.current()
    assert json.loads(run3.realtime.read_text())["events"] == 2
    assert len(pd.read_parquet(run3.events)) == 2
    kept3 = ids(run3)
    assert {k: kept3[k] for k in ("900001-property", "900002-auto", "900003-auto")} == \
        {"900001-property": int(joined["match_id"]), "900002-auto": int(new["match_id"]),
         "900003-auto": int(later["match_id"])}
