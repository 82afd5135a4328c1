"""Trips in time order: session cutting, the time-ordered split (no future trip in training), the session model,
session recommendations (never a repeat, always in the trip's park) and their input errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from c360.errors import InputError
from c360.recsys import sigir17
from c360.recsys import trips as trip_data
from c360.recsys.algorithms import session_gru
from c360.recsys.algorithms.session import SCORERS, SessionModel, _gbm_fit, _gbm_score, _Trip
from c360.recsys.evaluate import evaluate_sessions
from c360.recsys.metrics import next_item_metrics
from c360.recsys.models import load_model, train
from c360.recsys.recs import read_sessions, recommend_sessions
from c360.recsys.walking import haversine_m, walking_matrix
from tests.conftest import run_cli

DAY, MINUTE = 86_400, 60


@pytest.fixture(scope="module")
def park_trips():
    """Three parks of 6 attractions; 240 visitors with 1-3 trips each, days apart, attractions 20 minutes apart.
    Inside a trip the next attraction is the following one of the park (i -> i+1) 80% of the time."""
    rng = np.random.default_rng(5)
    rows = []
    for u in range(240):
        park = u % 3
        for trip in range(rng.integers(1, 4)):
            start = 1_500_000_000 + u * 3 * DAY + trip * DAY + int(rng.integers(0, 3600))
            item = int(rng.integers(6))
            visited = []
            for step in range(int(rng.integers(2, 6))):
                visited.append(item)
                rows.append((f"u{u}", f"p{park}:{item}", start + step * 20 * MINUTE, f"u{u}-t{trip}"))
                options = [i for i in range(6) if i not in visited]
                if not options:
                    break
                nxt = (item + 1) % 6
                item = nxt if nxt in options and rng.random() < 0.8 else int(rng.choice(options))
    events = pd.DataFrame(rows, columns=["USER_ID", "ITEM_ID", "TIMESTAMP", "SESSION_ID"])
    items = pd.DataFrame({"ITEM_ID": [f"p{p}:{i}" for p in range(3) for i in range(6)],
                          "PARK": [f"p{p}" for p in range(3) for _ in range(6)],
                          "LAT": [33.80 + 0.001 * i for _ in range(3) for i in range(6)],
                          "LONG": [-117.92 + 0.001 * p for p in range(3) for _ in range(6)]})
    return events, items


@pytest.fixture(scope="module")
def session_model(park_trips):
    events, items = park_trips
    return train("session", events, items, params={"gbm_iterations": 30}, show_progress=False)


# ---------------------------------------------------------------- sessions in the data

@pytest.mark.slow
def test_shipped_visits_are_trips_by_seq_id():
    visits = sigir17.load_visits(parks=["epcot"])
    rows = trip_data.trips(visits)
    assert rows["SESSION_ID"].str.startswith("epcot:").all()
    assert rows["SESSION_ID"].nunique() == visits["SEQ_ID"].nunique()
    assert not rows.duplicated(["SESSION_ID", "ITEM_ID"]).any()          # an attraction once per trip
    # in trip order: positions count up from 0 and first-visit times never go back
    for _, g in rows.groupby("SESSION_ID"):
        assert g["POSITION"].tolist() == list(range(len(g))) and g["TIMESTAMP"].is_monotonic_increasing
    photos = visits.groupby(["SESSION_ID", "ITEM_ID"]).size()
    assert rows.set_index(["SESSION_ID", "ITEM_ID"])["EVENT_VALUE"].sort_index().tolist() == \
        photos.sort_index().astype(float).tolist()


def test_without_session_id_trips_are_cut_by_time_gap():
    events = pd.DataFrame({"USER_ID": ["a"] * 4 + ["b"], "ITEM_ID": ["x", "y", "x", "z", "x"],
                           "TIMESTAMP": [0, 10 * MINUTE, 12 * 60 * MINUTE, 12 * 60 * MINUTE + 5, 0]})
    rows = trip_data.trips(events, gap_minutes=60)
    assert rows.groupby("SESSION_ID")["ITEM_ID"].agg(list).to_dict() == \
        {"a#1": ["x", "y"], "a#2": ["x", "z"], "b#1": ["x"]}
    assert trip_data.trips(events, gap_minutes=24 * 60)["SESSION_ID"].nunique() == 2
    with pytest.raises(InputError, match="session-gap"):
        trip_data.trips(events, gap_minutes=0)


def test_personalize_file_with_and_without_session_id(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("USER_ID,ITEM_ID,TIMESTAMP,SESSION_ID\nu1,a,100,s1\nu1,b,200,s1\nu1,a,300,s2\n")
    data = trip_data.load_trips(path)
    assert sorted(data.trips["SESSION_ID"].unique()) == ["s1", "s2"] and data.walks is None
    path.write_text("USER_ID,ITEM_ID,TIMESTAMP,SESSION_ID\nu1,a,100,s1\nu1,b,200,\n")
    with pytest.raises(InputError, match="events.csv: empty SESSION_ID"):
        trip_data.load_trips(path)
    path.write_text("USER_ID,ITEM_ID\nu1,a\n")
    with pytest.raises(InputError, match="events.csv: missing column TIMESTAMP"):
        trip_data.load_trips(path)


@pytest.mark.slow
def test_time_split_puts_no_future_trip_into_training():
    data = trip_data.load_trips(fmt="sigir17")
    train_rows, test_rows = trip_data.time_split(data.trips)
    # each user's test is exactly one trip: their latest
    assert (test_rows.groupby("USER_ID")["SESSION_ID"].nunique() == 1).all()
    assert set(test_rows["USER_ID"]) == set(data.trips["USER_ID"])
    latest = data.trips.groupby("USER_ID")["START"].max()
    first = test_rows.groupby("USER_ID")["START"].first()
    assert (first == latest.reindex(first.index)).all()
    # nothing a user did from the start of their test trip on is in training
    test_start = test_rows.groupby("USER_ID")["TIMESTAMP"].min()
    train_last = train_rows.groupby("USER_ID")["TIMESTAMP"].max()
    assert (train_last < test_start.reindex(train_last.index)).all()
    assert not set(zip(train_rows["USER_ID"], train_rows["SESSION_ID"], strict=True)) & \
        set(zip(test_rows["USER_ID"], test_rows["SESSION_ID"], strict=True))
    # all the rest trains, but for the few events of trips that overlap a user's last one (two parks, one day)
    later = data.trips.merge(test_start.rename("CUT").reset_index(), on="USER_ID")
    overlapping = (later["TIMESTAMP"] >= later["CUT"]).sum() - len(test_rows)
    assert 0 < overlapping < 100 and len(train_rows) + len(test_rows) + overlapping == len(data.trips)


def test_time_split_drops_overlapping_events():
    # trip s1 goes on after trip s2 (the last one) started: its late event must not train
    events = pd.DataFrame({"USER_ID": ["u"] * 4, "ITEM_ID": ["a", "b", "c", "d"], "TIMESTAMP": [0, 500, 100, 200],
                           "SESSION_ID": ["s1", "s1", "s2", "s2"]})
    train_rows, test_rows = trip_data.time_split(trip_data.trips(events))
    assert train_rows["ITEM_ID"].tolist() == ["a"] and test_rows["ITEM_ID"].tolist() == ["c", "d"]


def test_held_out_steps_of_both_protocols():
    events = pd.DataFrame({"USER_ID": ["u"] * 4, "ITEM_ID": ["a", "b", "c", "a"], "TIMESTAMP": [1, 2, 3, 4],
                           "SESSION_ID": ["s"] * 4})
    test = trip_data.trips(events)
    contexts, targets = trip_data.held_out_sessions(test, "next-trip")
    assert [c.items for c in contexts] == [("a",), ("a", "b")] and targets == ["b", "c"]
    contexts, targets = trip_data.held_out_sessions(test, "next-item")
    assert [c.items for c in contexts] == [("a", "b")] and targets == ["c"]
    with pytest.raises(InputError, match="--protocol: unknown protocol 'later'"):
        trip_data.held_out_sessions(test, "later")


def test_next_item_metrics():
    m = next_item_metrics(np.array([1, 3, 6, np.inf]), (5, 10))
    assert m["hit@5"] == 0.5 and m["hit@10"] == 0.75 and m["steps"] == 4
    assert m["mrr@5"] == pytest.approx((1 + 1 / 3) / 4) and m["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 6) / 4)


# ---------------------------------------------------------------- walking

def test_walking_minutes_from_cost_tables_else_distance():
    items = sigir17.load_items()
    epcot = items[items["PARK"] == "epcot"]
    ids = epcot["ITEM_ID"].tolist()
    walks = sigir17.load_walk_times()
    measured = walking_matrix(ids, epcot, walks)
    table = walks.set_index(["FROM_ITEM", "TO_ITEM"])["MINUTES"]
    a, b = ids[0], ids[3]
    assert measured[0, 3] == pytest.approx(table[(a, b)], rel=1e-6) and measured[0, 0] == 0
    # the cost tables walk 5 km/h; the fallback walks the straight line at the same speed
    fallback = walking_matrix(ids, epcot)
    lat, lon = epcot["LAT"].to_numpy(), epcot["LONG"].to_numpy()
    assert fallback[0, 3] == pytest.approx(haversine_m(lat[0], lon[0], lat[3], lon[3]) / (5000 / 60), rel=1e-5)
    assert np.nanmedian(np.abs(fallback - measured) / np.maximum(measured, 1e-9)) < 0.05
    assert np.isnan(walking_matrix(["x", "y"], None)[0, 1])       # no coordinates, no table: unknown


# ---------------------------------------------------------------- the session model

def test_session_model_learns_transitions_and_chooses_on_earlier_trips(session_model):
    model = session_model
    info = model.extra["session"]
    assert info["chosen"] in SCORERS and set(info["validation"]) == set(SCORERS)
    recs = recommend_sessions(model, [trip_data.Session(("p1:2",), (1_600_000_000,), None, "s")], k=3)
    assert recs["ITEM_ID"].iloc[0] == "p1:3"


def test_session_recs_never_repeat_and_stay_in_the_park(session_model):
    model = session_model
    trips = [trip_data.Session(("p0:1", "p0:2", "p0:4"), (0, 600, 1200), "u0", "a"),
             trip_data.Session(("p2:0",), (0,), None, "b"),
             trip_data.Session(("p1:5", "p2:3"), (0, 900), "nobody", "c")]   # moved on to park p2
    recs = recommend_sessions(model, trips, k=10)
    park = {"a": "p0", "b": "p2", "c": "p2"}
    for trip in trips:
        got = recs[recs["SESSION_ID"] == trip.session_id]
        assert not set(got["ITEM_ID"]) & set(trip.items)
        assert got["ITEM_ID"].str.startswith(park[trip.session_id] + ":").all()
        assert got["RANK"].tolist() == list(range(1, len(got) + 1)) and got["SCORE"].is_monotonic_decreasing
    assert len(recs[recs["SESSION_ID"] == "a"]) == 3 and len(recs[recs["SESSION_ID"] == "c"]) == 5


def test_user_models_answer_sessions_too(park_trips):
    events, items = park_trips
    pop = train("popularity", trip_data.aggregate(trip_data.trips(events)), items, item_group_col="PARK",
                show_progress=False)
    recs = recommend_sessions(pop, [trip_data.Session(("p1:0", "p1:1"), (0, 1), "u1", "s")], k=10)
    assert len(recs) == 4 and recs["ITEM_ID"].str.startswith("p1:").all() and \
        not {"p1:0", "p1:1"} & set(recs["ITEM_ID"])


@pytest.mark.parametrize("scorer", SCORERS)
def test_saved_session_model_answers_the_same(park_trips, tmp_path, scorer):
    events, items = park_trips
    model = train("session", events, items, params={"model": scorer, "gbm_iterations": 20, "gru_epochs": 5},
                  show_progress=False)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, SessionModel) and loaded.scorer == scorer
    trips = [trip_data.Session(("p0:1", "p0:2"), (0, 600), "u0", "a"), trip_data.Session(("p2:3",), (0,), None, "b")]
    # numpy scorers score the same bits; the live trees in compiled code to rounding
    np.testing.assert_allclose(model.session_scores(trips), loaded.session_scores(trips), rtol=0,
                               atol=0 if "gbm" not in scorer and "ensemble" not in scorer else 1e-9)
    pd.testing.assert_frame_equal(recommend_sessions(model, trips, 4), recommend_sessions(loaded, trips, 4))
    users = ["u0", "u1"]
    pd.testing.assert_frame_equal(model.recommend(users, 3), loaded.recommend(users, 3))


# ---------------------------------------------------------------- the GRU scorer

def _tiny_trips(rng, n=6):
    """Trips over two parks (items 0-3 and 4-5) with times and earlier-trip attractions."""
    trips = []
    for size in (2, 3, 4, 1, 3, 2):
        pool = np.arange(4) if size > 2 else np.arange(4, 6)
        items = rng.choice(pool, size=size, replace=False)
        times = 1_500_000_000 + np.cumsum(rng.integers(60, 3000, size=size))
        trips.append(_Trip(items, times, rng.random(n) < 0.3))
    return trips


def test_gru_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    codes, walk = np.array([0, 0, 0, 0, 1, 1]), rng.random((6, 6)) * 10
    walk[0, 2] = np.nan                                   # unknown walking time
    priors = np.stack([session_gru.transition_inputs(rng.integers(0, 5, (6, 6)).astype(float)) for _ in range(2)])
    batch = session_gru.make_batch(_tiny_trips(rng), walk, codes, priors, np.array([0, 1, 0, 1, 1, 0]))
    assert (batch.target >= 0).sum() > 5
    params = session_gru.init_params(6, 3, 4, rng, batch.cand_inputs.shape[-1])
    params = {k: v + rng.normal(0.0, 0.3, v.shape) for k, v in params.items()}
    dropout = (rng.random((*batch.items.shape, 4)) >= 0.5) / 0.5
    for keep in (None, dropout):
        _, grad = session_gru.loss_and_grad(params, batch, 0.01, keep)
        eps = 1e-6
        for name, value in params.items():
            for idx in np.ndindex(value.shape):
                old = value[idx]
                value[idx] = old + eps
                up, _ = session_gru.loss_and_grad(params, batch, 0.01, keep)
                value[idx] = old - eps
                down, _ = session_gru.loss_and_grad(params, batch, 0.01, keep)
                value[idx] = old
                assert grad[name][idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8), (name, idx)


def test_gru_batch_masks_visited_and_other_parks():
    rng = np.random.default_rng(2)
    trips = _tiny_trips(rng)
    batch = session_gru.make_batch(trips, np.ones((6, 6)), np.array([0, 0, 0, 0, 1, 1]))
    for b, trip in enumerate(trips):
        for t in range(len(trip.items)):
            allowed = set(range(4) if trip.items[t] < 4 else range(4, 6)) - set(trip.items[:t + 1])
            assert set(np.flatnonzero(batch.candidates[b, t])) == allowed
            nxt = trip.items[t + 1] if t + 1 < len(trip.items) else -1
            assert batch.target[b, t] == nxt
        assert not batch.candidates[b, len(trip.items):].any()


@pytest.mark.slow
def test_gru_is_deterministic_given_the_seed(park_trips):
    events, items = park_trips
    params = {"model": "gru", "gru_epochs": 5}
    a, b, c = (train("session", events, items, params=params, seed=s, show_progress=False) for s in (0, 0, 1))
    assert a.scorer == "gru" and set(a.scorer_arrays) == {"gru_" + k for k in session_gru.PARAM_NAMES}
    for key, value in a.scorer_arrays.items():
        np.testing.assert_array_equal(value, b.scorer_arrays[key])
    assert not np.array_equal(a.scorer_arrays["gru_out"], c.scorer_arrays["gru_out"])


def test_gru_learns_the_chain_and_never_repeats(park_trips):
    events, items = park_trips
    model = train("session", events, items, params={"model": "gru"}, show_progress=False)
    trips = [trip_data.Session(("p1:2",), (1_600_000_000,), None, "a"),
             trip_data.Session(("p0:1", "p0:2", "p0:4"), (0, 600, 1200), "u0", "b"),
             trip_data.Session(("p1:5", "p2:3"), (0, 900), "nobody", "c")]
    recs = recommend_sessions(model, trips, k=10)
    assert recs.loc[recs["SESSION_ID"] == "a", "ITEM_ID"].iloc[0] == "p1:3"
    for trip, park in zip(trips, ("p1", "p0", "p2"), strict=True):
        got = recs[recs["SESSION_ID"] == trip.session_id]
        assert not set(got["ITEM_ID"]) & set(trip.items) and got["ITEM_ID"].str.startswith(park + ":").all()
        assert len(got) == 6 - len([i for i in trip.items if i.startswith(park)])


def test_gru_is_left_out_above_its_item_limit(park_trips, monkeypatch):
    events, items = park_trips
    monkeypatch.setattr(session_gru, "MAX_ITEMS", 10)        # the fixture has 18 attractions
    model = train("session", events, items, params={"gbm_iterations": 10}, show_progress=False)
    assert not {"gru", "gru_ensemble"} & set(model.extra["session"]["validation"])
    with pytest.raises(InputError, match="model=gru supports up to 10 items, not 18"):
        train("session", events, items, params={"model": "gru"}, show_progress=False)


def test_flat_trees_score_like_scikit_learn():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    X = rng.random((2000, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) > 0.7
    params = {"gbm_iterations": 25, "gbm_learning_rate": 0.1, "gbm_leaves": 7, "gbm_min_leaf": 20, "gbm_l2": 0.0,
              "gbm_threads": 1}
    arrays = _gbm_fit(X, y, params, seed=0)
    reference = HistGradientBoostingClassifier(max_iter=25, learning_rate=0.1, max_leaf_nodes=7, min_samples_leaf=20,
                                               l2_regularization=0.0, early_stopping=False, random_state=0)
    with threadpool_limits(limits=1, user_api="openmp"):     # as the model fits (idle OpenMP threads spin)
        reference.fit(X, y)
    np.testing.assert_allclose(_gbm_score(arrays, X, batch=333), reference.decision_function(X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(arrays["gbm_live"].decision_function(X), reference.decision_function(X), atol=1e-12)


def test_session_model_needs_times(park_trips):
    events, items = park_trips
    with pytest.raises(InputError, match="TIMESTAMP"):
        SessionModel().fit(events.drop(columns=["TIMESTAMP"]), items)
    with pytest.raises(InputError, match="model must be one of"):
        SessionModel(model="rnn")


@pytest.mark.slow
def test_time_ordered_evaluation_reports_baselines(park_trips):
    events, items = park_trips
    data = trip_data.TripData(trip_data.trips(events), items)
    result = evaluate_sessions(["popularity", "session"], data, "next-trip", k=1,
                               params={"session": {"gbm_iterations": 20}})
    algos = result["algorithms"]
    assert set(algos) == {"popularity", "session", "transitions"}
    assert result["split"]["steps"] == algos["session"]["steps"] > 0 and result["split"]["item_group_col"] == "PARK"
    # the chain is learnable (a park has 6 attractions: hit@5 is all but certain, hit@1 is not)
    assert algos["transitions"]["hit@1"] > algos["popularity"]["hit@1"] + 0.3
    assert algos["session"]["hit@1"] > algos["popularity"]["hit@1"] + 0.3
    assert algos["session"]["hit@5"] == pytest.approx(1.0)
    last = evaluate_sessions(["popularity"], data, "next-item")
    assert last["split"]["steps"] < result["split"]["steps"]


# ---------------------------------------------------------------- the CLI and bad --sessions rows

@pytest.mark.slow
def test_cli_session_train_recommend_evaluate(tmp_path, park_trips):
    events, items = park_trips
    inter, item_file = tmp_path / "interactions.csv", tmp_path / "items.csv"
    events.to_csv(inter, index=False)
    items.to_csv(item_file, index=False)
    model_dir = tmp_path / "model"
    out = run_cli("recsys", "train", "--interactions", str(inter), "--items", str(item_file), "--algo", "session",
                  "--param", "gbm_iterations=20", "--no-progress", "--out", str(model_dir))
    assert "trained session (auto chose" in out.stdout
    sessions_file = tmp_path / "sessions.csv"
    sessions_file.write_text("SESSION_ID,ITEM_ID,TIMESTAMP,USER_ID\nv1,p0:1,100,u0\nv1,p0:2,900,u0\nv2,p2:4,50,\n")
    run_cli("recsys", "recommend", "--model", str(model_dir), "--sessions", str(sessions_file), "--k", "3",
            "--out", str(tmp_path / "recs.csv"))
    recs = pd.read_csv(tmp_path / "recs.csv", dtype={"SESSION_ID": str, "ITEM_ID": str})
    assert list(recs.columns) == ["SESSION_ID", "ITEM_ID", "RANK", "SCORE"]
    assert recs.groupby("SESSION_ID").size().to_dict() == {"v1": 3, "v2": 3}
    assert not {"p0:1", "p0:2"} & set(recs.loc[recs["SESSION_ID"] == "v1", "ITEM_ID"])
    assert recs.loc[recs["SESSION_ID"] == "v2", "ITEM_ID"].str.startswith("p2:").all()

    bad = tmp_path / "bad.csv"
    bad.write_text("SESSION_ID,ITEM_ID,TIMESTAMP\nv1,p0:1,100\nv1,p9:9,200\n")
    proc = run_cli("recsys", "recommend", "--model", str(model_dir), "--sessions", str(bad), "--out",
                   str(tmp_path / "r.csv"), check=False)
    assert proc.returncode == 2 and "bad.csv: column ITEM_ID" in proc.stderr and "'p9:9'" in proc.stderr
    bad.write_text("SESSION_ID,ITEM_ID\nv1,p0:1\n")
    proc = run_cli("recsys", "recommend", "--model", str(model_dir), "--sessions", str(bad), "--out",
                   str(tmp_path / "r.csv"), check=False)
    assert proc.returncode == 2 and "bad.csv: missing column(s) TIMESTAMP" in proc.stderr
    assert not (tmp_path / "r.csv").exists()

    run_cli("recsys", "evaluate", "--interactions", str(inter), "--items", str(item_file), "--protocol", "next-trip",
            "--algos", "popularity,session", "--param", "gbm_iterations=20", "--no-progress",
            "--out", str(tmp_path / "metrics.json"))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["split"]["protocol"] == "next-trip"
    assert set(metrics["algorithms"]) == {"popularity", "session", "transitions"}


def test_read_sessions_errors_name_file_and_column(tmp_path, session_model):
    path = tmp_path / "s.csv"
    cases = {"SESSION_ID,ITEM_ID,TIMESTAMP\nv1,p0:1,soon\n": "s.csv: column TIMESTAMP must be epoch seconds",
             "SESSION_ID,ITEM_ID,TIMESTAMP\nv1,,5\n": "s.csv: column ITEM_ID is empty in 1 row",
             "SESSION_ID,ITEM_ID,TIMESTAMP\n": "s.csv: no session rows",
             "SESSION_ID,ITEM_ID,TIMESTAMP,USER_ID\nv1,p0:1,1,a\nv1,p0:2,2,b\n": "s.csv: column USER_ID"}
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            read_sessions(path, session_model)
