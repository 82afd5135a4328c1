"""`c360 recsys train | recommend | evaluate` end to end through the real console entry point."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_train_recommend_evaluate(tmp_path, random_interactions):
    df, items = random_interactions
    inter = tmp_path / "interactions.csv"
    df.assign(TIMESTAMP=1).to_csv(inter, index=False)
    items.to_parquet(tmp_path / "items.parquet")
    model_dir = tmp_path / "model"
    out = run_cli("recsys", "train", "--interactions", str(inter), "--items", str(tmp_path / "items.parquet"),
                  "--algo", "item-knn", "--param", "similarity=cosine", "--item-group-col", "PARK",
                  "--aggregate", "pandas", "--no-progress", "--out", str(model_dir))
    assert "trained item-knn" in out.stdout
    meta = json.loads((model_dir / "params.json").read_text())
    assert meta["params"]["similarity"] == "cosine" and meta["fingerprint"].startswith("sha256:")
    (tmp_path / "users.csv").write_text("USER_ID\nu1\nu2\nstranger\n")
    run_cli("recsys", "recommend", "--model", str(model_dir), "--users", str(tmp_path / "users.csv"), "--k", "3",
            "--out", str(tmp_path / "recs.csv"))
    recs = pd.read_csv(tmp_path / "recs.csv", dtype=str)
    assert list(recs.columns) == ["USER_ID", "ITEM_ID", "RANK", "SCORE"]
    assert recs.groupby("USER_ID").size().to_dict() == {"u1": 3, "u2": 3, "stranger": 3}
    seen = set(zip(df["USER_ID"], df["ITEM_ID"], strict=True))
    assert not any((u, i) in seen for u, i in zip(recs["USER_ID"], recs["ITEM_ID"], strict=True))
    run_cli("recsys", "evaluate", "--interactions", str(inter), "--items", str(tmp_path / "items.parquet"),
            "--algos", "popularity,item-knn,als", "--item-group-col", "PARK", "--aggregate", "pandas",
            "--no-progress", "--param", "factors=8", "--out", str(tmp_path / "metrics.json"))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["algorithms"]) == {"popularity", "item-knn", "als"}
    assert metrics["split"]["holdout"] == 0.2 and metrics["algorithms"]["als"]["ndcg@10"] > 0


@pytest.mark.slow
def test_cli_errors_name_the_problem(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    bad = run_cli("recsys", "train", "--interactions", str(empty), "--algo", "als", "--aggregate", "pandas",
                  "--out", str(tmp_path / "m"), check=False)
    assert bad.returncode == 2 and "empty.csv: file is empty" in bad.stderr
    algo = run_cli("recsys", "train", "--interactions", str(empty), "--algo", "svd", "--out", str(tmp_path / "m"),
                   check=False)
    assert algo.returncode == 2 and "--algo: unknown algorithm 'svd'" in algo.stderr
    value = tmp_path / "v.csv"
    value.write_text("USER_ID,ITEM_ID,EVENT_VALUE\nu1,a,many\n")
    bad_value = run_cli("recsys", "evaluate", "--interactions", str(value), "--aggregate", "pandas",
                        "--out", str(tmp_path / "m.json"), check=False)
    assert bad_value.returncode == 2 and "EVENT_VALUE must be numeric" in bad_value.stderr
    missing = tmp_path / "c.csv"
    missing.write_text("USER,ITEM_ID\nu1,a\n")
    bad_cols = run_cli("recsys", "train", "--interactions", str(missing), "--algo", "popularity",
                       "--aggregate", "pandas", "--out", str(tmp_path / "m"), check=False)
    assert bad_cols.returncode == 2 and "missing column(s) USER_ID" in bad_cols.stderr
    assert not (tmp_path / "m").exists()
    no_model = run_cli("recsys", "recommend", "--model", str(tmp_path), "--out", str(tmp_path / "r.csv"), check=False)
    assert no_model.returncode == 2 and "not a saved model" in no_model.stderr


@pytest.mark.slow
def test_train_ease_through_the_cli(tmp_path, random_interactions):
    df, items = random_interactions
    inter = tmp_path / "interactions.csv"
    df.assign(TIMESTAMP=1).to_csv(inter, index=False)
    items.to_parquet(tmp_path / "items.parquet")
    out = run_cli("recsys", "train", "--interactions", str(inter), "--items", str(tmp_path / "items.parquet"),
                  "--algo", "ease", "--param", "l2=2", "--param", "user_alpha=1", "--item-group-col", "PARK",
                  "--aggregate", "pandas", "--no-progress", "--out", str(tmp_path / "model"))
    assert "trained ease" in out.stdout
    meta = json.loads((tmp_path / "model" / "params.json").read_text())
    assert meta["algo"] == "ease" and meta["params"]["l2"] == 2 and meta["params"]["user_alpha"] == 1


def test_the_evaluation_table_keeps_the_choice_out_of_its_columns():
    from c360.recsys.evaluate import format_metrics

    blend = "blend(" + ", ".join(f"item-knn(k={k}, similarity=bm25)" for k in (20, 50, 100)) + ")"
    result = {"algorithms": {"popularity": {"ndcg@10": 0.1, "train_seconds": 0.01},
                             "auto": {"ndcg@10": 0.2, "train_seconds": 3.5, "chosen": blend}}}
    table, choice = format_metrics(result).rsplit("\n", 1)
    assert "chosen" not in table and "NaN" not in table and max(map(len, table.splitlines())) < 50
    assert choice == f"auto chose: {blend}"
