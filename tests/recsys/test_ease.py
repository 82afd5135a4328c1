"""EASE: the closed form, the obvious item, cold users, bad parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from c360.errors import InputError
from c360.recsys.algorithms.ease import ease_weights
from c360.recsys.models import load_model, train
from c360.recsys.recs import recommend_all


def test_ease_closed_form(random_interactions):
    df, items = random_interactions
    model = train("ease", df, items, params={"l2": 2.0}, show_progress=False)
    X = (model.matrix > 0).toarray().astype(np.float64)
    G = X.T @ X
    lam = 2.0 * np.mean(np.diag(G))
    B = np.eye(len(G)) - np.linalg.inv(G + lam * np.eye(len(G))) @ np.diag(
        1.0 / np.diag(np.linalg.inv(G + lam * np.eye(len(G)))))
    np.testing.assert_allclose(model.weights, B, atol=1e-10)
    assert np.all(np.diag(model.weights) == 0.0)
    # B solves min ||X - X B||^2 + lam ||B||^2 with diag(B) = 0: the gradient is zero off the diagonal
    grad = G @ model.weights - G + lam * model.weights
    off = ~np.eye(len(G), dtype=bool)
    np.testing.assert_allclose(grad[off], 0.0, atol=1e-8)


@pytest.mark.parametrize("params", [{"l2": 0.1}, {"l2": 1.0, "user_alpha": 1.0}])
def test_obvious_item_first_ease(separable, params):
    df, items = separable
    model = train("ease", df, items, params=params, show_progress=False)
    assert model.recommend(["a0"], 1)["ITEM_ID"].iloc[0] == "A2"
    assert model.recommend_from_interactions({"B1": 1.0}, 1)["ITEM_ID"].iloc[0] == "B2"
    assert model.similar_items("A1", 1)["ITEM_ID"].iloc[0] in {"A2", "A3"}


def test_ease_unknown_users_get_popular_items(random_interactions):
    df, items = random_interactions
    model = train("ease", df, items, show_progress=False)
    assert model.recommend(["nobody"], k=5).empty
    recs = recommend_all(model, ["u1", "stranger"], k=4)
    assert list(recs[recs.USER_ID == "stranger"]["ITEM_ID"]) == list(model.popular_items(4)["ITEM_ID"])
    assert model.recommend_from_interactions({"unknown-item": 1.0}, 3)["ITEM_ID"].tolist() == \
        model.popular_items(3)["ITEM_ID"].tolist()


def test_ease_bad_parameters(random_interactions):
    df, items = random_interactions
    with pytest.raises(InputError, match="l2 must be > 0"):
        train("ease", df, items, params={"l2": 0}, show_progress=False)
    with pytest.raises(InputError, match="unknown parameter"):
        train("ease", df, items, params={"lambda": 3}, show_progress=False)
    with pytest.raises(InputError, match="l2 must be > 0"):
        ease_weights(train("popularity", df, items).matrix, -1.0)


@pytest.mark.parametrize("algo,params", [("ease", {"l2": 1.0, "user_alpha": 1.0}), ("item-knn", {"similarity": "rp3"}),
                                         ("blend", {"alpha": 0.6, "base": "item-knn",
                                                    "base_params": {"similarity": "rp3"},
                                                    "mix": [["ease", {"l2": 2.0}]]})])
def test_auto_fast_validation_ndcg_equals_ranking_metrics(algo, params, random_interactions):
    from c360.recsys.auto import validation_ndcg
    from c360.recsys.metrics import ranking_metrics
    from c360.recsys.split import holdout_split

    df, items = random_interactions
    fit, valid = holdout_split(df, 0.3, 1)
    model = train(algo, fit, items, params=params, item_group_col="PARK", show_progress=False)
    users = sorted(valid["USER_ID"].unique())
    rows = np.array([model.user_index[u] for u in users])
    fast = validation_ndcg(model, model.score_rows(rows), rows, users, valid, 10)
    assert fast == pytest.approx(ranking_metrics(model.recommend(users, 10), valid, 10)["ndcg@10"], abs=1e-12)


def test_blend_of_rp3_and_ease_round_trip(random_interactions, tmp_path):
    df, items = random_interactions
    params = {"alpha": 0.6, "base": "item-knn", "base_params": {"similarity": "rp3"}, "mix": [["ease", {"l2": 2.0}]]}
    model = train("blend", df, items, params=params, item_group_col="PARK", show_progress=False)
    assert [m.name for m in model.components] == ["item-knn", "ease"]
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.params == model.params
    pd.testing.assert_frame_equal(model.recommend(model.user_ids, 10), loaded.recommend(loaded.user_ids, 10))
    pd.testing.assert_frame_equal(model.recommend_from_interactions({"p1:10": 2.0}, 5),
                                  loaded.recommend_from_interactions({"p1:10": 2.0}, 5))
    with pytest.raises(InputError, match="mix entry"):
        train("blend", df, items, params={"mix": ["ease"]}, show_progress=False)


@pytest.mark.slow
def test_auto_considers_ease_and_mixes_and_is_reproducible(random_interactions):
    from c360.recsys.auto import choose

    df, items = random_interactions
    best, rows = choose(df, items, item_group_col="PARK", seed=3)
    labels = [r["label"] for r in rows]
    assert any(label.startswith("ease(") for label in labels)
    assert any("item-knn(similarity=rp3" in label and ",ease(" in label for label in labels)
    again, rows_again = choose(df, items, item_group_col="PARK", seed=3)
    assert again["label"] == best["label"] and [r["ndcg@10"] for r in rows] == [r["ndcg@10"] for r in rows_again]
    model = train("auto", df, items, item_group_col="PARK", seed=3, show_progress=False)
    assert model.extra["auto"]["chosen"] == best["label"]
