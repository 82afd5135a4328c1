"""The Recommender interface on the single-machine algorithms: exclusion, determinism, persistence, serving."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from c360.errors import InputError
from c360.recsys.models import ALGORITHMS, load_model, train
from c360.recsys.recs import recommend_all

FAST = [("popularity", {}), ("item-knn", {"similarity": "bm25"}), ("item-knn", {"similarity": "cosine"}),
        ("item-knn", {"similarity": "rp3"}), ("als", {"factors": 8, "iterations": 5}),
        ("ease", {"l2": 1.0}), ("ease", {"l2": 0.5, "user_alpha": 1.0}),
        ("blend", {"alpha": 0.5, "base": "item-knn"}), ("blend", {"alpha": 0.5, "base": "ease"})]


@pytest.mark.parametrize("algo,params", FAST)
def test_seen_items_never_recommended(algo, params, random_interactions):
    df, items = random_interactions
    model = train(algo, df, items, params=params, item_group_col="PARK", show_progress=False)
    recs = model.recommend(model.user_ids, k=10)
    seen = set(zip(df["USER_ID"], df["ITEM_ID"], strict=True))
    assert not any((u, i) in seen for u, i in zip(recs["USER_ID"], recs["ITEM_ID"], strict=True))
    assert recs.groupby("USER_ID")["RANK"].min().eq(1).all()
    assert set(recs["USER_ID"]) == set(model.user_ids)
    assert list(recs.columns) == ["USER_ID", "ITEM_ID", "RANK", "SCORE"]


@pytest.mark.parametrize("algo,params", FAST)
def test_same_seed_same_recommendations(algo, params, random_interactions):
    df, items = random_interactions
    a = train(algo, df, items, params=params, seed=5, show_progress=False).recommend(["u1", "u2", "u3"], k=5)
    b = train(algo, df, items, params=params, seed=5, show_progress=False).recommend(["u1", "u2", "u3"], k=5)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("algo,params", FAST)
def test_save_load_round_trip(algo, params, random_interactions, tmp_path):
    df, items = random_interactions
    model = train(algo, df, items, params=params, item_group_col="PARK", show_progress=False)
    model.save(tmp_path / "m", metrics={"ndcg@10": 0.5})
    loaded = load_model(tmp_path / "m")
    assert loaded.name == model.name and loaded.params == model.params
    pd.testing.assert_frame_equal(model.recommend(model.user_ids, 10), loaded.recommend(loaded.user_ids, 10))
    pd.testing.assert_frame_equal(model.similar_items("p0:0", 5), loaded.similar_items("p0:0", 5))
    pd.testing.assert_frame_equal(model.recommend_from_interactions({"p1:10": 2.0}, 5),
                                  loaded.recommend_from_interactions({"p1:10": 2.0}, 5))
    meta = (tmp_path / "m" / "params.json").read_text()
    assert '"fingerprint": "sha256:' in meta and '"ndcg@10": 0.5' in meta and '"versions"' in meta


def test_serving_contract(random_interactions):
    df, items = random_interactions
    model = train("als", df, items, params={"factors": 8, "iterations": 5}, show_progress=False)
    assert model.recommend(["nobody"], k=5).empty                      # unknown users are absent
    popular = model.popular_items(3)
    assert list(popular["RANK"]) == [1, 2, 3]
    counts = df.groupby("ITEM_ID")["USER_ID"].nunique().sort_values(ascending=False)
    assert popular["ITEM_ID"].iloc[0] == counts.index[0]
    fresh = model.recommend_from_interactions({"p0:0": 3.0, "p0:1": 1.0}, k=5)
    assert {"p0:0", "p0:1"}.isdisjoint(fresh["ITEM_ID"]) and len(fresh) == 5
    sims = model.similar_items("p0:0", 4)
    assert len(sims) == 4 and "p0:0" not in set(sims["ITEM_ID"]) and sims["SCORE"].is_monotonic_decreasing
    with pytest.raises(KeyError):
        model.similar_items("nope")
    exclude = model.recommend(["u1"], k=3, exclude={"u1": {model.recommend(["u1"], 1)["ITEM_ID"].iloc[0]}})
    assert model.recommend(["u1"], 1)["ITEM_ID"].iloc[0] not in set(exclude["ITEM_ID"])
    allrecs = recommend_all(model, ["u1", "stranger"], k=4)         # cold start: popular items
    assert list(allrecs[allrecs.USER_ID == "stranger"]["ITEM_ID"]) == list(model.popular_items(4)["ITEM_ID"])


def test_partial_fit_users_changes_only_that_user(random_interactions):
    df, items = random_interactions
    model = train("als", df, items, params={"factors": 8, "iterations": 5}, show_progress=False)
    before = model.recommend(["u2"], 5)
    model.update_users({"new": {"p2:20": 4.0}, "u1": {"p2:21": 1.0}})
    assert "new" in model.user_index and "p2:20" not in set(model.recommend(["new"], 5)["ITEM_ID"])
    pd.testing.assert_frame_equal(before, model.recommend(["u2"], 5))


def test_context_popularity_prefers_visited_park(separable):
    df, items = separable
    ctx = train("popularity", df, items, item_group_col="PARK", show_progress=False)
    assert ctx.recommend(["a0"], 1)["ITEM_ID"].iloc[0] in {"A2", "A3"}
    recs = ctx.recommend(["b0"], 3)   # b0 has seen all of park pb: only pa items remain, most popular first
    assert list(recs["ITEM_ID"]) == ["A1", "A2", "A3"]
    glob = train("popularity", df, items, show_progress=False)
    assert len(glob.recommend(["b0"], 3)) == 3


def test_obvious_item_first_implicit_als(separable):
    df, items = separable
    model = train("als", df, items, params={"factors": 2, "iterations": 15, "regularization": 0.01, "alpha": 1.0}, seed=0,
                  show_progress=False)
    assert model.recommend(["a0"], 1)["ITEM_ID"].iloc[0] == "A2"


def test_bad_parameters(random_interactions):
    df, items = random_interactions
    with pytest.raises(InputError, match="unknown parameter"):
        train("item-knn", df, items, params={"factorz": 3})
    with pytest.raises(InputError, match="--algo: unknown algorithm 'nope'"):
        train("nope", df, items)
    with pytest.raises(InputError, match="PARKS"):
        train("popularity", df, items, item_group_col="PARKS")
    with pytest.raises(InputError, match="--gpu"):
        ALGORITHMS["als"](gpu="maybe").fit(df, items, show_progress=False)
    assert np.isfinite(train("popularity", df, items).popularity).all()


def test_gpu_choice_says_why_and_records_the_device(random_interactions, tmp_path, caplog):
    """--gpu on without a usable GPU fails with gpu_status's reason; auto trains where it can and records why."""
    import logging

    from c360.recsys.base import PARAMS_FILE
    from c360.recsys.gpu import GpuStatus, gpu_status

    df, items = random_interactions
    status = gpu_status()
    assert isinstance(status, GpuStatus) and status.reason and gpu_status() is status  # cached per process
    device = "gpu" if status.available else "cpu"
    if not status.available:
        with pytest.raises(InputError, match="--gpu on: implicit has no CUDA support here: ") as err:
            train("als", df, items, params={"gpu": "on"}, show_progress=False)
        assert str(err.value).endswith(status.reason)
    with caplog.at_level(logging.INFO, logger="c360.recsys"):
        model = train("als", df, items, params={"gpu": "auto", "factors": 4}, show_progress=False)
    assert model.extra["device"] == device and model.extra["gpu_reason"] == status.reason
    assert f"implicit ALS on the {device.upper()} (--gpu auto: {status.reason})" in caplog.text
    meta = json.loads((model.save(tmp_path / "als") / PARAMS_FILE).read_text())
    assert meta["extra"]["device"] == device and meta["extra"]["gpu_reason"] == status.reason
    off = train("als", df, items, params={"gpu": "off", "factors": 4}, show_progress=False)
    assert off.extra["device"] == "cpu" and off.extra["gpu_reason"] == "--gpu off"


def test_no_progress_bars_off_a_terminal(random_interactions, capfd):
    """Under pytest stderr is a pipe, as in the nightly's log file: a bar asked for is not drawn there."""
    interactions, items = random_interactions
    train("als", interactions, items, params={"iterations": 2}, show_progress=True)
    assert "it/s" not in capfd.readouterr().err
