"""Inputs (sigir17 and Personalize), bad input, holdout split, metrics and auto selection."""

from __future__ import annotations

import pandas as pd
import pytest

from c360.errors import InputError
from c360.recsys.auto import choose
from c360.recsys.data import load_interactions, load_sigir17
from c360.recsys.evaluate import evaluate
from c360.recsys.metrics import ranking_metrics
from c360.recsys.split import holdout_split


def test_sigir17_attractions_are_park_and_poi():
    inter, items = load_sigir17(engine="pandas")
    assert len(items) == 113 and items["ITEM_ID"].is_unique            # not the book's 31
    assert {"NAME", "PARK", "THEME", "LAT", "LONG", "RIDE_DURATION"} <= set(items.columns)
    assert inter["ITEM_ID"].str.match(r"^(caliAdv|disHolly|epcot):\d+$").all()
    assert inter["ITEM_ID"].nunique() == 55 and not inter.duplicated(["USER_ID", "ITEM_ID"]).any()
    assert set(inter["ITEM_ID"]) <= set(items["ITEM_ID"])
    assert inter["EVENT_VALUE"].sum() == 138110                          # every photo counted once


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_personalize_input_and_bad_input(tmp_path):
    good = write(tmp_path, "i.csv", "USER_ID,ITEM_ID,TIMESTAMP,EVENT_VALUE\nu1,a,10,1\nu1,a,5,2\nu2,b,7,1\n")
    inter, items = load_interactions(good, None, engine="pandas")
    assert items is None and inter["EVENT_VALUE"].tolist() == [3.0, 1.0] and inter["TIMESTAMP"].tolist() == [5, 7]
    no_value = write(tmp_path, "n.csv", "USER_ID,ITEM_ID,TIMESTAMP\nu1,a,1\nu1,a,2\n")
    assert load_interactions(no_value, engine="pandas")[0]["EVENT_VALUE"].tolist() == [2.0]
    with pytest.raises(InputError, match=r"missing column\(s\) ITEM_ID"):
        load_interactions(write(tmp_path, "m.csv", "USER_ID,TIMESTAMP\nu1,1\n"), engine="pandas")
    with pytest.raises(InputError, match="e.csv: file is empty"):
        load_interactions(write(tmp_path, "e.csv", ""), engine="pandas")
    with pytest.raises(InputError, match="EVENT_VALUE must be numeric.*'lots'"):
        load_interactions(write(tmp_path, "v.csv", "USER_ID,ITEM_ID,EVENT_VALUE\nu1,a,lots\n"), engine="pandas")
    with pytest.raises(InputError, match="--format"):
        load_interactions(good, fmt="movielens")
    with pytest.raises(InputError, match="not a sigir17 directory"):
        load_interactions(tmp_path, fmt="sigir17", engine="pandas")


def test_holdout_split_is_per_user_and_seeded(random_interactions):
    df, _ = random_interactions
    train, test = holdout_split(df, 0.2, seed=1)
    again = holdout_split(df, 0.2, seed=1)
    pd.testing.assert_frame_equal(test, again[1])
    assert len(train) + len(test) == len(df)
    assert set(test["USER_ID"]) <= set(train["USER_ID"])                  # every user keeps an item
    n = df.groupby("USER_ID").size()
    held = test.groupby("USER_ID").size().reindex(n.index, fill_value=0)
    assert (held[n == 1] == 0).all() and (held[n == 5] == 1).all() and (held[n == 6] == 1).all()
    assert not holdout_split(df, 0.2, seed=2)[1].equals(test)


def test_metrics_by_hand():
    recs = pd.DataFrame({"USER_ID": ["u"] * 3 + ["v"] * 3, "ITEM_ID": ["a", "b", "c", "a", "b", "c"],
                         "RANK": [1, 2, 3] * 2})
    test = pd.DataFrame({"USER_ID": ["u", "v", "v"], "ITEM_ID": ["b", "a", "c"]})
    m = ranking_metrics(recs, test, k=3, n_items=4)
    assert m["precision@3"] == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert m["recall@3"] == pytest.approx(1.0)
    ndcg_u = (1 / 1.5849625) / 1.0
    ndcg_v = (1 + 1 / 2) / (1 + 1 / 1.5849625)
    assert m["ndcg@3"] == pytest.approx((ndcg_u + ndcg_v) / 2, rel=1e-6)
    assert m["map@3"] == pytest.approx((0.5 + (1 + 2 / 3) / 2) / 2)
    assert m["coverage@3"] == 0.75


@pytest.mark.slow
def test_auto_considers_context_popularity_and_picks_the_best(random_interactions):
    df, items = random_interactions
    best, rows = choose(df, items, item_group_col="PARK", seed=0)
    labels = [r["label"] for r in rows]
    assert "popularity(item_group_col=PARK)" in labels and "popularity" in labels
    assert best["ndcg@10"] == max(r["ndcg@10"] for r in rows)


@pytest.mark.slow
def test_evaluate_reports_every_metric(random_interactions):
    df, items = random_interactions
    result = evaluate(["popularity", "item-knn", "auto"], df, items, item_group_col="PARK", seed=0)
    for algo in ("popularity", "item-knn", "auto"):
        m = result["algorithms"][algo]
        assert {"precision@10", "recall@10", "ndcg@10", "map@10", "coverage@10", "train_seconds"} <= set(m)
        assert 0 < m["ndcg@10"] <= 1
    assert result["algorithms"]["auto"]["chosen"]
    assert result["split"]["test_rows"] > 0
