"""`c360 nightly` end to end on small data with a local Spark session: publish, failure safety, resume, gates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from c360.errors import InputError
from c360.jobs.nightly import run_nightly
from c360.jobs.pipeline import StepFailed
from c360.layout import Warehouse
from tests.conftest import free_port, run_cli
from tests.jobs.conftest import write_config

STEP_NAMES = ["validate", "merge", "match", "recsys_evaluate", "recsys_train", "graph_export", "graph_load", "gates"]
ENV = {"C360_GRAPH": "networkx", "C360_SPARK_MASTER": "local[2]"}


def current_run(warehouse: Path) -> Path | None:
    run = Warehouse(warehouse).current()
    return run.root if run else None


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


# a user's accounts table: its own column names, mapped onto the merged names by configuration
ACCOUNT_COLUMNS = {"id": "uid", "first_name": "given", "last_name": "family", "date_of_birth": "born",
                   "email": "mail", "home_phone": "tel", "zip": "postcode"}


def _users_own_accounts(tmp_path: Path, visits: Path) -> tuple[Path, Path]:
    """(an insurance directory without truth.csv, with its visits keyed by account under visits/; an accounts table
    of the user's own columns, elsewhere): the generator's, renamed."""
    from c360.entity_resolution.generate import generate

    own = tmp_path / "own"
    generate(150, seed=4, out_dir=own, visits=visits, visitors=300)
    (own / "truth.csv").unlink()
    park = pd.read_csv(own / "park_accounts.csv", dtype=str)
    (own / "park_accounts.csv").unlink()
    renamed = {"account_id": "uid", "first_name": "given", "last_name": "family", "birth_date": "born",
               "email": "mail", "phone": "tel", "zip": "postcode"}
    accounts_csv = tmp_path / "app_users.csv"
    park.rename(columns=renamed).to_csv(accounts_csv, index=False)
    return own, accounts_csv


def match_ids(run_dir: Path) -> dict[str, int]:
    df = pd.read_parquet(run_dir / "er" / "matched.parquet", columns=["id", "match_id"])
    return dict(zip(df["id"], df["match_id"], strict=True))


@pytest.mark.slow
def test_end_to_end_publishes_a_servable_version(spark, tmp_path, epcot_visits):
    """Generated insurance data (in the warehouse), auto recommender, networkx graph, published. Spark validates,
    merges and aggregates the visits; the match runs on DuckDB and the graph is exported in-process (the whole
    nightly on Spark, its match and export included, is test_cluster.py's, locally and on a standalone cluster)."""
    wh = tmp_path / "wh"
    cfg = write_config(tmp_path / "c.yaml", epcot_visits, None,
                       algorithms=("popularity", "item-knn", "als"), serve="auto", session=True)
    result = run_nightly(str(cfg), warehouse=str(wh), env=ENV)
    assert result["status"] == "succeeded"
    run = current_run(wh)
    assert run == Path(result["run_dir"]).resolve() and (wh / "current").is_symlink()
    m = manifest(run)
    assert m["status"] == "succeeded" and list(m["steps"]) == STEP_NAMES
    assert all(s["status"] == "succeeded" and s["seconds"] >= 0 for s in m["steps"].values())
    assert all(g["passed"] for g in m["gates"].values()) and set(m["gates"]) >= {"er_f1", "recsys_ndcg", "graph_store"}
    assert m["steps"]["match"]["metrics"]["engine"] == "duckdb" and m["steps"]["match"]["metrics"]["f1"] > 0.9
    assert m["served_model"] == "auto" and set(m["models"]) == {"popularity", "item-knn", "als", "auto", "session"}
    # the session model: evaluated time-ordered (gate and report), trained on every trip, saved beside the others
    assert m["gates"]["recsys_session"]["detail"].startswith("next-trip (time-ordered) hit@5: session vs popularity")
    assert m["models"]["session"]["chosen"] in ("transitions", "logistic", "gbm", "ensemble", "gru", "gru_ensemble")
    assert set(m["steps"]["recsys_evaluate"]["metrics"]["hit@5"]) == {"popularity", "transitions", "session"}
    assert m["steps"]["validate"]["rows"]["auto_customer"] > 0
    # the files of DESIGN.md's publishing contract
    for rel in ("recsys/recs.csv", "recsys/auto/params.json", "recsys/als", "recsys/session/params.json",
                "recsys/trips.parquet", "er/matched.parquet",
                "graph/vertex-customer-00000.csv", "graph/edge-SameAs-00000.csv", "graph/graph.json", "report.html"):
        assert (run / rel).exists(), rel
    assert not (run / "tmp").exists()
    assert (wh / "inputs").is_dir()  # generated insurance data lives in the warehouse, reused by the next run
    recs = pd.read_csv(run / "recsys" / "recs.csv", dtype={"USER_ID": str, "ITEM_ID": str})
    assert list(recs.columns) == ["USER_ID", "ITEM_ID", "RANK", "SCORE"] and recs["RANK"].min() == 1
    seen = pd.read_parquet(run / "recsys" / "interactions.parquet")
    assert recs.merge(seen, on=["USER_ID", "ITEM_ID"]).empty
    report = (run / "report.html").read_text()
    # histogram, NDCG and hit@5 charts (precision/recall only when the labels move it); tests/jobs/test_report.py
    assert report.count("<img") >= 3 and "Quality gates" in report and "ndcg@10" in report
    assert "Next attraction, time-ordered (next-trip" in report and "recsys_session" in report
    # --gpu auto says where implicit ALS trained and why, in the manifest and the report
    als = m["models"]["als"]
    assert als["device"] == "cpu" and als["gpu_reason"] and "Trained models" in report
    assert als["gpu_reason"].replace("'", "&#x27;") in report
    # what was published is what the API serves
    from c360.api.state import load_state

    state = load_state(run, "networkx")
    try:
        assert state.run_id == m["run_id"] and "auto" in state.models
        some_match = int(pd.read_parquet(run / "er" / "matched.parquet")["match_id"].iloc[0])
        assert state.graph.customer360(str(some_match))["match_id"] == str(some_match)
        # park accounts: generated for 1000 visitors, matched onto the insurance records' people, their histories
        # shared within a person; the 360 of a person with accounts shows them and their visits
        assert m["steps"]["validate"]["rows"]["park_accounts"] == m["steps"]["merge"]["rows"]["park"] > 1000
        assert m["gates"]["er_accounts_f1"]["passed"] and m["steps"]["match"]["metrics"]["accounts_f1"] > 0.9
        identities = pd.read_parquet(run / "recsys" / "identities.parquet")
        shared = identities[identities.duplicated("PERSON_ID", keep=False) & (identities["WEIGHT"] > 0)]
        assert len(shared) >= 2 and (run / "recsys" / "auto" / "identities.parquet").is_file()
        pid, person = next(iter(shared.groupby("PERSON_ID")["USER_ID"]))
        person = list(person)
        visited = set(seen.loc[seen["USER_ID"].isin(person), "ITEM_ID"])
        assert recs[recs["USER_ID"].isin(person)]["ITEM_ID"].isin(visited).sum() == 0   # never one the person has
        view = state.graph.customer360(str(pid))
        assert {a["user_id"] for a in view["accounts"]} >= set(person) and view["visits"]
    finally:
        state.close()


@pytest.mark.slow
def test_failures_keep_current_and_resume_continues(spark, tmp_path, epcot_visits, insurance):
    """Bad input, a failed gate and an unreachable Gremlin server each fail the run, name the step and the cause,
    and leave `current` serving; --resume reruns from the failed step; match_ids are stable across runs."""
    wh = tmp_path / "wh"
    good = write_config(tmp_path / "good.yaml", epcot_visits, insurance, serve="popularity")
    first = run_nightly(str(good), warehouse=str(wh), env=ENV)
    run1 = Path(first["run_dir"])
    assert current_run(wh) == run1.resolve()

    # 1. a bad input file: validation names the file and the column; current keeps serving run 1
    bad_dir = tmp_path / "bad-insurance"
    shutil.copytree(insurance, bad_dir)
    auto = pd.read_csv(bad_dir / "source_auto_customer.csv", dtype=str)
    auto.drop(columns=["lname"]).to_csv(bad_dir / "source_auto_customer.csv", index=False)
    bad = write_config(tmp_path / "bad.yaml", epcot_visits, bad_dir, serve="popularity")
    with pytest.raises(StepFailed) as err:
        run_nightly(str(bad), warehouse=str(wh), env=ENV, run_id="bad-input")
    assert err.value.step == "validate"
    assert "source_auto_customer.csv" in str(err.value) and "lname" in str(err.value)
    assert current_run(wh) == run1.resolve()
    m = manifest(wh / "runs" / "bad-input")
    assert m["status"] == "failed" and m["steps"]["validate"]["status"] == "failed"
    assert "step 'validate'" in m["error"] and (wh / "runs" / "bad-input" / "report.html").is_file()

    # the file is fixed; --resume finishes the same run and publishes it; match_ids kept from run 1
    auto.to_csv(bad_dir / "source_auto_customer.csv", index=False)
    resumed = run_nightly(str(bad), warehouse=str(wh), env=ENV, resume="bad-input")
    assert resumed["status"] == "succeeded" and current_run(wh) == (wh / "runs" / "bad-input").resolve()
    assert match_ids(wh / "runs" / "bad-input") == match_ids(run1)
    assert f"compare with run <a href='../{run1.name}/report.html'>" in (wh / "runs" / "bad-input" / "report.html").read_text()

    # 2. a failed gate publishes nothing. Its run: a user's own accounts table (configured: its file and columns)
    # and no truth, so both ER gates are on the labels (the accounts' on the labelled pairs that hold an account)
    own, accounts_csv = _users_own_accounts(tmp_path, epcot_visits)
    strict = write_config(tmp_path / "strict.yaml", own / "visits", own, serve="popularity",
                          gates={"er_f1_min": 1.01, "er_accounts_f1_min": 1.01},
                          nightly={"accounts": {"file": str(accounts_csv), "columns": ACCOUNT_COLUMNS}})
    with pytest.raises(StepFailed, match="er_f1") as err:
        run_nightly(str(strict), warehouse=str(wh), env=ENV, run_id="gate")
    assert err.value.step == "gates"
    assert current_run(wh) == (wh / "runs" / "bad-input").resolve()
    gate = manifest(wh / "runs" / "gate")
    assert gate["status"] == "failed" and gate["gates"]["er_f1"]["passed"] is False
    assert gate["gates"]["recsys_ndcg"]["passed"] is True
    accounts_gate, match_step = gate["gates"]["er_accounts_f1"], gate["steps"]["match"]
    assert accounts_gate["passed"] is False and 0.8 < accounts_gate["value"] <= 1
    assert "labels (pairs with an account)" in accounts_gate["detail"]
    rows = gate["steps"]["validate"]["rows"]
    assert rows["accounts"] == gate["steps"]["merge"]["rows"]["park"] >= 300   # matched as park accounts
    identities = pd.read_parquet(wh / "runs" / "gate" / "recsys" / "identities.parquet")   # histories shared
    assert identities.duplicated("PERSON_ID", keep=False).sum() >= 2
    assert match_step["metrics"]["accounts_f1"] == pytest.approx(accounts_gate["value"], abs=1e-4)

    # 3. the graph store is down: graph_load fails with a clear error, resume redoes only what is left
    down = {**ENV, "C360_GRAPH": f"gremlin://127.0.0.1:{free_port()}"}
    with pytest.raises(StepFailed) as err:
        run_nightly(str(good), warehouse=str(wh), env=down, run_id="down")
    assert err.value.step == "graph_load" and "127.0.0.1" in str(err.value)
    before = manifest(wh / "runs" / "down")["steps"]
    resumed = run_nightly(str(good), warehouse=str(wh), env=ENV, resume="down")
    after = manifest(wh / "runs" / "down")["steps"]
    assert resumed["status"] == "succeeded"
    for name in STEP_NAMES[:6]:  # finished steps were not redone
        assert after[name]["started_at"] == before[name]["started_at"]
    assert before["graph_load"]["status"] == "failed" and after["graph_load"]["status"] == "succeeded"
    assert match_ids(wh / "runs" / "down") == match_ids(run1)

    with pytest.raises(InputError, match="already succeeded"):
        run_nightly(str(good), warehouse=str(wh), env=ENV, resume="down")


@pytest.mark.jvm
def test_cli_bad_input_exits_nonzero_naming_step_and_file(tmp_path, epcot_visits):
    """Through the console entry point: exit code 2, the step and the bad file named, nothing published. (A missing
    table is named before the run starts: tests/foundation/test_input_paths.py.)"""
    from c360.entity_resolution.sources import SOURCE_TABLES

    empty = tmp_path / "empty-insurance"
    empty.mkdir()
    for table in SOURCE_TABLES:
        (empty / table.file).touch()
    wh = tmp_path / "wh"
    proc = run_cli("nightly", "--warehouse", str(wh), "--insurance", str(empty), "--visits", str(epcot_visits),
                   check=False, env=ENV)
    assert proc.returncode == 2, proc.stderr
    assert "step 'validate' failed" in proc.stderr and "source_auto_customer.csv: file is empty" in proc.stderr
    assert not (wh / "current").exists()
    (run,) = (wh / "runs").iterdir()
    assert manifest(run)["status"] == "failed"
