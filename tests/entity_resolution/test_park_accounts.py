"""Park accounts, a source like the insurance tables: generated for the visitors of the visits (keyed by account),
declared once, merged as records, matched onto the insurance records' people (no JVM: the merge's pandas
interpreter, the DuckDB engine; the Spark merge of accounts runs in the nightly tests)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from c360.entity_resolution import sources as S
from c360.entity_resolution.evaluate import evaluate, evaluate_source
from c360.entity_resolution.generate import generate
from c360.entity_resolution.match import match
from c360.errors import InputError
from c360.recsys import sigir17

VISITORS = 400


@pytest.fixture(scope="module")
def epcot(tmp_path_factory):
    root = tmp_path_factory.mktemp("sigir17")
    for sub, name in (("userVisits-sigir17", "userVisits-epcot-allPOI.csv"), ("poiList-sigir17", "POI-epcot.csv")):
        (root / sub).mkdir()
        shutil.copy(sigir17.DEFAULT_DIR / sub / name, root / sub / name)
    return root


@pytest.fixture(scope="module")
def generated(tmp_path_factory, epcot):
    out = tmp_path_factory.mktemp("accounts")
    info = generate(300, seed=5, out_dir=out, visits=epcot, visitors=VISITORS)
    return out, info


def test_accounts_table_visits_keyed_by_account_and_truth(generated, epcot, tmp_path):
    d, info = generated
    accounts = pd.read_csv(d / S.PARK_ACCOUNTS.file, dtype=str)
    assert tuple(accounts.columns) == S.PARK_ACCOUNTS.columns
    assert accounts["account_id"].is_unique and len(accounts) == info["accounts"]
    visits = sigir17.load_visits(d / "visits")
    assert set(visits["USER_ID"]) == set(accounts["account_id"])            # every account has visits
    raw = sigir17.load_visits(epcot)
    kept = raw[raw["PHOTO_ID"].isin(set(visits["PHOTO_ID"]))]
    assert kept["USER_ID"].nunique() == VISITORS and len(kept) == len(visits)   # all the visits of the visitors drawn
    assert raw[raw["USER_ID"].isin(set(kept["USER_ID"]))].shape[0] == len(visits)
    truth = pd.read_csv(d / "truth.csv", dtype=str)
    acc = truth[truth["record_id"].isin(set(accounts["account_id"]))]
    assert len(acc) == len(accounts)
    per_person = acc.groupby("person_id").size()
    assert per_person.max() <= 3 and (per_person > 1).any() and len(per_person) == VISITORS
    assert info["insured_visitors"] > 0 and set(acc["person_id"].astype(int)).intersection(range(300))
    # one trip stays on one account; a visitor's trips may spread over several
    assert visits.groupby("SESSION_ID")["USER_ID"].nunique().max() == 1
    # the insurance tables of a seed do not depend on the accounts
    plain = generate(300, seed=5, out_dir=tmp_path)
    for t in S.SOURCE_TABLES:
        assert (tmp_path / t.file).read_bytes() == (d / t.file).read_bytes()
    assert plain["records"] + len(accounts) == info["records"]
    labels = pd.read_csv(d / "labels.csv", dtype=str)
    assert labels["id"].isin(set(accounts["account_id"])).any()          # the reviewer judged accounts too


def test_a_users_accounts_table_is_configuration(tmp_path):
    table = S.AccountTable.configured(str(tmp_path / "app_users.csv"),
                                      {"id": "uid", "first_name": "given", "email": "mail"})
    frame = pd.DataFrame({"uid": ["u1", "u2"], "given": ["Ann", "Bo"], "mail": ["a@x.org", None], "extra": [1, 2]})
    merged = table.to_merged_pandas(frame)
    assert list(merged.columns) == ["id", "first_name", "email", "source"]
    # the park accounts' line, the one the match attaches, the graph exports as accounts and the recommenders share
    assert merged["source"].eq(S.PARK_ACCOUNTS.line).all() and merged["id"].tolist() == ["u1", "u2"]   # ids kept
    with pytest.raises(InputError, match="nightly.accounts.columns: unknown name"):
        S.AccountTable.configured("f.csv", {"id": "uid", "nickname": "nick"})
    with pytest.raises(InputError, match="no id"):
        S.AccountTable.configured("f.csv", {"first_name": "given"})
    with pytest.raises(InputError, match=r"app_users.csv.*mail"):
        table.to_merged_pandas(frame.drop(columns=["mail"]))
    # no setting puts a user's accounts on another line, where nothing would treat them as accounts
    from pydantic import ValidationError

    from c360.settings import AccountsSettings
    with pytest.raises(ValidationError, match="line"):
        AccountsSettings(file="f.csv", columns={"id": "uid"}, line="app")


def test_accounts_attach_to_one_person_and_are_scored_on_their_own(generated, tmp_path):
    d, _ = generated
    merged = tmp_path / "merged.parquet"
    S.merged_frame(d).to_parquet(merged, index=False)
    truth = pd.read_csv(d / "truth.csv", dtype=str)
    res = match([merged], engine="duckdb", labels=[d / "labels.csv"], out=tmp_path / "matched.parquet")
    out = pd.read_parquet(tmp_path / "matched.parquet")
    assert len(out) == res.records and out["match_id"].notna().all()
    accounts = evaluate_source(tmp_path / "matched.parquet", d / "truth.csv", "park")
    assert accounts["records"] == (out["source"] == "park").sum()
    assert accounts["f1"] >= 0.95 and accounts["wrong_merge_share"] <= 0.02
    assert evaluate(tmp_path / "matched.parquet", d / "truth.csv")["f1"] >= 0.95
    # attach: the insurance records' clusters are those the insurance links make; no account joins two of them
    ins = out[out["source"] != "park"]
    anchors = ins.groupby("match_id")["id"].apply(frozenset)
    assert anchors.map(len).sum() == len(ins)
    people_per_cluster = out.merge(truth, left_on="id", right_on="record_id").groupby("match_id")["person_id"]
    assert (people_per_cluster.nunique() > 1).mean() < 0.02


def test_evaluate_source_counts_pairs_that_hold_an_account():
    matched = pd.DataFrame({"id": ["a", "b", "c", "x", "y"], "match_id": [1, 1, 1, 2, 2],
                            "source": ["auto", "park", "park", "auto", "auto"]})
    truth = pd.DataFrame({"record_id": ["a", "b", "c", "x", "y"], "person_id": [1, 1, 2, 3, 3]})
    out = evaluate_source(matched, truth, "park")
    # pairs with an account: predicted a-b, a-c, b-c (3); true a-b (1); correct a-b (1); x-y has no account
    assert (out["predicted_pairs"], out["true_pairs"]) == (3, 1)
    assert out["precision"] == pytest.approx(1 / 3) and out["recall"] == 1.0
    assert out["persons_wrongly_merged"] == 2 and out["persons"] == 2
    assert evaluate_source(matched.assign(source="auto"), truth, "park") == {}
