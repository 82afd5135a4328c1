"""Spark MLlib ALS and FM behind the same interface; exported so that serving needs no Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from c360.recsys.data import aggregate_events, load_sigir17
from c360.recsys.models import load_model, train


@pytest.mark.slow
def test_spark_als_ranks_obvious_item_first_and_serves_without_spark(spark, separable, tmp_path):
    df, items = separable
    model = train("spark-als", df, items, params={"factors": 2, "iterations": 10, "regularization": 0.01,
                                                  "alpha": 1.0}, show_progress=False)
    assert model.recommend(["a0"], 1)["ITEM_ID"].iloc[0] == "A2"
    implicit_model = train("als", df, items, params={"factors": 2, "iterations": 15, "regularization": 0.01,
                                                     "alpha": 1.0}, show_progress=False)
    assert implicit_model.recommend(["a0"], 1)["ITEM_ID"].iloc[0] == "A2"
    model.save(tmp_path / "sals")
    loaded = load_model(tmp_path / "sals")
    pd.testing.assert_frame_equal(model.recommend(model.user_ids, 3), loaded.recommend(loaded.user_ids, 3))
    assert loaded.recommend_from_interactions({"A1": 2.0}, 1)["ITEM_ID"].iloc[0] == "A2"
    seen = set(zip(df["USER_ID"], df["ITEM_ID"], strict=True))
    recs = loaded.recommend(loaded.user_ids, 5)
    assert not any((u, i) in seen for u, i in zip(recs["USER_ID"], recs["ITEM_ID"], strict=True))


@pytest.mark.slow
def test_fm_export_matches_spark_predictions(spark, random_interactions, tmp_path):
    df, items = random_interactions
    model = train("fm", df, items, params={"iterations": 20, "factors": 4, "negatives": 1}, show_progress=False)
    assert model.extra["side_features"] is True
    # numpy scores of the exported weights == Spark's own pipeline predictions
    from c360.recsys.algorithms.spark_fm import fm_rows

    sample = pd.DataFrame({"USER_ID": ["u1", "u1", "u7"], "ITEM_ID": ["p0:3", "p2:25", "p1:12"]})
    rows = fm_rows(sample, model.item_side[["ITEM_ID", "PARK", "THEME"]])
    spark_pred = model.pipeline_model.transform(spark.createDataFrame(rows)).toPandas()["prediction"].to_numpy()
    ours = [model.score_rows(np.array([model.user_index[u]]))[0, model.item_index[i]]
            for u, i in zip(sample["USER_ID"], sample["ITEM_ID"], strict=True)]
    np.testing.assert_allclose(ours, spark_pred, rtol=1e-6, atol=1e-6)
    model.save(tmp_path / "fm")
    loaded = load_model(tmp_path / "fm")
    pd.testing.assert_frame_equal(model.recommend(["u1", "u2"], 5), loaded.recommend(["u1", "u2"], 5))
    assert len(loaded.recommend_from_interactions({"p0:0": 3.0}, 4)) == 4


def test_spark_sql_aggregation_equals_pandas(spark):
    a, items = load_sigir17(engine="spark", spark=spark, parks=["epcot"])
    b, _ = load_sigir17(engine="pandas", parks=["epcot"])
    pd.testing.assert_frame_equal(a, b)
    events = pd.DataFrame({"USER_ID": ["u", "u", "v"], "ITEM_ID": ["x", "x", "x"], "EVENT_VALUE": [1.0, 2.0, 1.0],
                           "TIMESTAMP": [5, 3, 1]})
    out = aggregate_events(events, engine="spark", spark=spark)
    assert out.to_dict("records") == [{"USER_ID": "u", "ITEM_ID": "x", "EVENT_VALUE": 3.0, "TIMESTAMP": 3},
                                      {"USER_ID": "v", "ITEM_ID": "x", "EVENT_VALUE": 1.0, "TIMESTAMP": 1}]


def test_factor_chunks_follow_the_sessions_result_size_limit():
    """factors_to_numpy collects in chunks of at most 8 MiB and at most a quarter of the session's effective
    spark.driver.maxResultSize (0: unlimited; unset: Spark's 1g), whatever set it."""
    from types import SimpleNamespace

    from c360.recsys.algorithms.spark_frames import CHUNK_BYTES, chunk_bytes, session_chunk_bytes

    assert CHUNK_BYTES == 8 << 20
    assert chunk_bytes("16m") == 4 << 20 and chunk_bytes("2m") == 512 << 10
    assert chunk_bytes("100") == chunk_bytes("1k") == 64 << 10   # however small the limit
    assert chunk_bytes("1g") == chunk_bytes(None) == chunk_bytes("0") == chunk_bytes("lots") == CHUNK_BYTES

    def session(conf: dict):
        return SimpleNamespace(sparkContext=SimpleNamespace(getConf=lambda: SimpleNamespace(get=conf.get)))

    assert session_chunk_bytes(session({"spark.driver.maxResultSize": "16m"})) == 4 << 20
    assert session_chunk_bytes(session({})) == CHUNK_BYTES
