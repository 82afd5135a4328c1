"""The recommenders' Spark path: visits read and aggregated by Spark into Parquet, the matrix built from its columns,
Spark ALS and FM trained on Spark frames of it, their recommendations for every user ranked and written by Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from c360.errors import InputError
from c360.io import csv_parts, read_table
from c360.recsys.base import InteractionData
from c360.recsys.data import aggregate_events, aggregate_files, load_interactions
from c360.recsys.interactions import InteractionsFile, matrix_from_parquet
from c360.recsys.models import load_model, train
from c360.recsys.recs import recommend_all, recs_counts, write_recs
from c360.recsys.spark_events import write_interactions


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow
def test_spark_aggregates_personalize_files_like_pandas_and_refuses_the_same_bad_input(spark, tmp_path):
    good = write(tmp_path, "i.csv", "USER_ID,ITEM_ID,TIMESTAMP,EVENT_VALUE\nu1,a,10,1\nu1,a,5,2\nu2,b,7,1\nu10,a,3,4\n")
    out, items = aggregate_files(good, None, tmp_path / "agg.parquet", spark=spark)
    assert items is None and out.is_dir() and list(out.glob("part-*.parquet"))
    by_spark = pd.read_parquet(out)
    by_pandas, _ = load_interactions(good, engine="pandas")
    pd.testing.assert_frame_equal(by_spark, by_pandas)
    pd.testing.assert_frame_equal(load_interactions(good, engine="spark", spark=spark)[0], by_pandas)
    for name, text, message in (
            ("m.csv", "USER_ID,TIMESTAMP\nu1,1\n", r"missing column\(s\) ITEM_ID"),
            ("e.csv", "", "e.csv: file is empty"),
            ("v.csv", "USER_ID,ITEM_ID,EVENT_VALUE\nu1,a,lots\n", "EVENT_VALUE must be numeric.*'lots'"),
            ("n.csv", "USER_ID,ITEM_ID,EVENT_VALUE\nu1,a,-1\n", "EVENT_VALUE must be >= 0"),
            ("t.csv", "USER_ID,ITEM_ID,TIMESTAMP\nu1,a,noon\n", "TIMESTAMP must be integer epoch seconds"),
            ("u.csv", "USER_ID,ITEM_ID\nu1,\n", "empty USER_ID or ITEM_ID in 1 row")):
        with pytest.raises(InputError, match=message):
            aggregate_files(write(tmp_path, name, text), None, tmp_path / f"{name}.parquet", spark=spark)
        assert not (tmp_path / f"{name}.parquet").exists()
    with pytest.raises(InputError, match="not a sigir17 directory"):
        aggregate_files(tmp_path, None, tmp_path / "s.parquet", fmt="sigir17", spark=spark)


def test_events_added_by_spark_equal_aggregating_again(spark, tmp_path):
    visits = write(tmp_path, "i.csv", "USER_ID,ITEM_ID,TIMESTAMP,EVENT_VALUE\nu1,a,10,1\nu2,b,7,1\n")
    events = pd.DataFrame({"USER_ID": ["u1", "u3"], "ITEM_ID": ["a", "a"], "TIMESTAMP": [4, 9],
                           "EVENT_VALUE": [2.0, 1.0]})
    events.to_parquet(tmp_path / "events.parquet", index=False)
    out = write_interactions(spark, visits, tmp_path / "agg.parquet", extra_events=tmp_path / "events.parquet")
    before, _ = load_interactions(visits, engine="pandas")
    expected = aggregate_events(pd.concat([before, events], ignore_index=True), engine="pandas")
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)


def test_matrix_from_parquet_parts_equals_the_frame_path(spark, random_interactions, tmp_path):
    df, items = random_interactions
    spark.createDataFrame(df.sample(frac=1.0, random_state=1)).repartition(3).write.parquet(str(tmp_path / "parts"))
    from_file = InteractionData.from_file(InteractionsFile(tmp_path / "parts"), items, "PARK")
    from_frame = InteractionData.from_frame(df, items, "PARK")
    assert from_file.user_ids == from_frame.user_ids and from_file.item_ids == from_frame.item_ids
    assert (from_file.matrix != from_frame.matrix).nnz == 0 and from_file.fingerprint == from_frame.fingerprint
    np.testing.assert_array_equal(from_file.popularity, from_frame.popularity)
    assert from_file.source.path == tmp_path / "parts" and from_frame.source is None
    # ids in code point order as Python sorts them, duplicates summed, bad files named
    pd.DataFrame({"USER_ID": ["b", "B", "é", "a1", "a10", "a2", "b"], "ITEM_ID": ["x"] * 7,
                  "EVENT_VALUE": [1, 2, 3, 4, 5, 6, 7]}).to_parquet(tmp_path / "odd.parquet")
    users, _, matrix = matrix_from_parquet(tmp_path / "odd.parquet")
    assert users == sorted(["b", "B", "é", "a1", "a10", "a2"]) and matrix[users.index("b"), 0] == 8
    pd.DataFrame({"USER_ID": ["u"], "EVENT_VALUE": [1.0]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"bad.parquet: missing column\(s\) ITEM_ID"):
        matrix_from_parquet(tmp_path / "bad.parquet")


def test_spark_orders_ids_as_the_model_does(spark):
    from c360.recsys.algorithms.spark_frames import id_index

    ids = ["b", "B", "é", "a1", "a10", "a2", "Ω", "_x", "1"]
    frame = spark.createDataFrame(pd.DataFrame({"USER_ID": ids}))
    index = id_index(frame, "USER_ID", "user", len(ids)).toPandas().sort_values("user")
    assert index["USER_ID"].tolist() == sorted(ids) and index["user"].tolist() == list(range(len(ids)))


def _check_spark_recs(model, path, interactions: pd.DataFrame, k: int):
    """recs written by Spark: CSV parts with the header, ranks from 1, never a training item, the model's own top-k."""
    assert path.is_dir() and csv_parts(path)
    assert all(p.read_text().startswith("USER_ID,ITEM_ID,RANK,SCORE\n") for p in csv_parts(path))
    recs = read_table(path, dtype={"USER_ID": str, "ITEM_ID": str})
    assert list(recs.columns) == ["USER_ID", "ITEM_ID", "RANK", "SCORE"]
    assert recs.merge(interactions, on=["USER_ID", "ITEM_ID"]).empty
    assert recs.groupby("USER_ID")["RANK"].apply(lambda r: r.tolist() == list(range(1, len(r) + 1))).all()
    assert set(recs["USER_ID"]) == set(model.user_ids)
    numpy_recs = model.recommend(model.user_ids, k)
    both = recs.merge(numpy_recs, on=["USER_ID", "RANK"], suffixes=("_spark", "_numpy"))
    assert len(both) == len(recs) == len(numpy_recs)
    np.testing.assert_allclose(both["SCORE_spark"], both["SCORE_numpy"], rtol=1e-5, atol=1e-6)
    assert (both["ITEM_ID_spark"] == both["ITEM_ID_numpy"]).mean() > 0.99        # near-ties may swap
    assert recs_counts(path) == {"rows": len(recs), "users": recs["USER_ID"].nunique()}


@pytest.mark.slow
@pytest.mark.parametrize("algo, params", [
    ("spark-als", {"factors": 4, "iterations": 5, "alpha": 1.0}),
    ("fm", {"iterations": 10, "factors": 4, "negatives": 1}),
])
def test_spark_models_train_from_the_file_and_spark_writes_their_recs(spark, random_interactions, tmp_path,
                                                                        algo, params):
    df, items = random_interactions
    df.assign(TIMESTAMP=1).to_csv(tmp_path / "i.csv", index=False)
    out, _ = aggregate_files(tmp_path / "i.csv", None, tmp_path / "interactions.parquet", spark=spark)
    model = train(algo, InteractionsFile(out), items, params=params, show_progress=False)
    assert model.data.source is not None and model.user_ids == sorted(df["USER_ID"].unique())
    path = write_recs(model, tmp_path / "recs.csv", k=5)
    _check_spark_recs(model, path, df, 5)
    # saved and loaded as before: serving, fold-in and similar items without Spark; a loaded model's recs by the driver
    model.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.recommend(["u1", "u2"], 5), model.recommend(["u1", "u2"], 5))
    assert len(loaded.recommend_from_interactions({"p0:0": 3.0}, 4)) == 4
    assert len(loaded.similar_items("p0:0", 3)) == 3
    driver = write_recs(loaded, tmp_path / "driver.csv", k=5)
    assert driver.is_file() and len(read_table(driver)) == len(read_table(path))


def test_driver_recs_are_written_in_chunks_equal_to_one_frame(random_interactions, tmp_path):
    df, items = random_interactions
    model = train("item-knn", df, items, item_group_col="PARK", show_progress=False)
    users = [*model.user_ids[:7], "stranger", *model.user_ids[7:20]]
    path = write_recs(model, tmp_path / "recs.csv", users, k=4, chunk_users=3)
    chunked = pd.read_csv(path, dtype={"USER_ID": str, "ITEM_ID": str})
    whole = recommend_all(model, users, k=4)
    pd.testing.assert_frame_equal(chunked.sort_values(["USER_ID", "RANK"], ignore_index=True),
                                  whole.sort_values(["USER_ID", "RANK"], ignore_index=True), check_dtype=False)
    assert recs_counts(path) == {"rows": len(whole), "users": 21}
