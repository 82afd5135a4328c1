"""Recommendations that follow the person: identities read from a match output or a CSV, link weights that keep a
doubtful merge small, histories shared before training, and `c360 recsys train --identities` end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from c360.errors import InputError
from c360.recsys.identities import (
    IDENTITIES_FILE,
    W_MIN,
    Identities,
    link_weight,
    load_identities,
    read_identities,
    share_histories,
    write_identities,
)
from c360.recsys.interactions import InteractionsFile
from c360.recsys.models import load_model, train
from c360.recsys.recs import recommend_all
from tests.conftest import run_cli

ACCOUNTS = ["acct-1", "acct-2", "acct-3", "acct-4", "acct-5", "acct-6", "acct-7"]
MATCHED = pd.DataFrame({
    "rid": ["acct-1", "acct-2", "acct-3", "pol-1", "acct-4", "acct-5", "acct-6", "acct-7", "pol-2"],
    "source": ["park"] * 3 + ["auto"] + ["park"] * 4 + ["property"],
    "match_id": np.array([10, 10, 10, 10, 11, 12, 12, 13, 13], dtype=np.int64)})
PAIRS = pd.DataFrame({
    "unique_id_l": ["acct-1", "acct-2", "acct-1", "acct-3", "acct-3", "acct-4"],
    "unique_id_r": ["pol-1", "pol-1", "acct-2", "pol-1", "acct-4", "pol-1"],
    "source_dataset_l": ["park"] * 6, "source_dataset_r": ["auto", "auto", "park", "auto", "park", "auto"],
    # acct-3 - acct-4 joins two clusters (another person); acct-4 - pol-1 is below the threshold
    "match_probability": [0.999, 0.92, 0.95, 0.9, 0.97, 0.5]})


def _match_output(root, parts: bool = False):
    matched = root / "matched.parquet"
    if parts:   # a Spark run: directories of Parquet parts
        for path, df in ((matched, MATCHED), (root / "matched.parquet.pairs.parquet", PAIRS)):
            path.mkdir()
            df.iloc[:4].to_parquet(path / "part-00000.parquet", index=False)
            df.iloc[4:].to_parquet(path / "part-00001.parquet", index=False)
            (path / "_SUCCESS").write_text("")
    else:
        MATCHED.to_parquet(matched, index=False)
        PAIRS.to_parquet(root / "matched.parquet.pairs.parquet", index=False)
    (root / "matched.parquet.report.json").write_text(json.dumps({"id": "rid", "threshold": 0.9}))
    return matched


def _f(p, t=0.9):
    return W_MIN + (1 - W_MIN) * min(max((math.log(p / (1 - p)) - math.log(t / (1 - t))) / 4.0, 0), 1)


@pytest.mark.parametrize("parts", [False, True], ids=["file", "spark-parts"])
def test_a_match_output_gives_persons_and_link_probabilities(tmp_path, parts):
    ids = read_identities(_match_output(tmp_path, parts), user_ids=ACCOUNTS + ["not-a-record"])
    table = ids.table.set_index("USER_ID")
    assert list(table.index) == ACCOUNTS   # the insurance records are no accounts
    assert table["PERSON_ID"].to_dict() == {"acct-1": "10", "acct-2": "10", "acct-3": "10", "acct-4": "11",
                                            "acct-5": "12", "acct-6": "12", "acct-7": "13"}
    p = table["LINK_PROBABILITY"]
    # the best pair at or above the threshold inside the cluster; a pair to another cluster does not count
    assert p["acct-1"] == 0.999 and p["acct-2"] == 0.95 and p["acct-3"] == 0.9
    assert math.isnan(p["acct-4"])                              # alone in its cluster
    assert p["acct-5"] == p["acct-6"] == p["acct-7"] == 0.9     # linked, no pair to show for it: the floor
    assert ids.threshold == 0.9 and ids.accounts_of("acct-2") == ["acct-2", "acct-1", "acct-3"]
    assert ids.person_of("acct-3") == "10" and ids.person_of("acct-99") == "acct-99"
    weights = ids.weights_for("acct-1")
    assert weights["acct-1"] == 1.0 and weights["acct-2"] == pytest.approx(_f(0.95))
    assert weights["acct-3"] == pytest.approx(W_MIN)
    assert ids.accounts_of("acct-7") == ["acct-7"]               # its person's other record is a policy


def test_a_match_output_as_csv_and_without_pairs(tmp_path):
    MATCHED.rename(columns={"rid": "id"}).to_csv(tmp_path / "matched.csv", index=False)
    ids = read_identities(tmp_path / "matched.csv", user_ids=ACCOUNTS)
    assert ids.threshold is None and (ids.table["WEIGHT"] == 1.0).all()   # no report, no pairs: certain links
    assert ids.accounts_of("acct-5") == ["acct-5", "acct-6"]


def test_an_identities_csv(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("USER_ID,PERSON_ID\na1,p1\na2,p1\na3,p2\na1,p1\n")
    ids = read_identities(path)
    assert ids.table["USER_ID"].tolist() == ["a1", "a2", "a3"] and (ids.table["WEIGHT"] == 1.0).all()
    assert ids.weights_for("a2") == {"a2": 1.0, "a1": 1.0}
    assert ids.accounts_of("a3") == ["a3"] and ids.accounts_of("stranger") == ["stranger"]
    path.write_text("USER_ID,PERSON_ID,LINK_PROBABILITY\na1,p1,0.999999\na2,p1,0.5\na3,p1,0.3\n")
    ids = read_identities(path)   # DEFAULT_THRESHOLD 0.5
    assert ids.weights_for("a1") == {"a1": 1.0, "a2": W_MIN}       # a3 is below the threshold: its own person
    assert ids.accounts_of("a3") == ["a3"] and ids.person_of("a3") == "a3"
    assert read_identities(path, threshold=0.2).weights_for("a1")["a3"] == pytest.approx(_f(0.3, 0.2))


def test_link_weights_floor_at_the_threshold_and_one_when_certain():
    w = link_weight([0.9, 0.9 - 1e-9, 0.95, 0.9999, 1.0, np.nan], 0.9)
    assert w[0] == W_MIN and w[1] == 0.0 and w[2] == pytest.approx(_f(0.95)) and w[3] == w[4] == 1.0
    assert w[5] == 1.0   # no probability
    assert (link_weight([0.1, 0.99], None) == 1.0).all()
    assert link_weight([0.95], 0.9, w_min=0.0, margin=1.0)[0] == pytest.approx(math.log(0.95 / 0.05 / 9))
    # a weak link lends little either way, whatever the other end's certainty
    ids = Identities(pd.DataFrame({"USER_ID": ["a", "b"], "PERSON_ID": ["p", "p"],
                                   "LINK_PROBABILITY": [0.9, 1.0], "WEIGHT": link_weight([0.9, 1.0], 0.9)}), 0.9)
    assert ids.weights_for("a")["b"] == ids.weights_for("b")["a"] == W_MIN


@pytest.mark.parametrize("text, column", [
    ("USER_ID,PERSON_ID\na1,p1\na1,p2\n", "column PERSON_ID: USER_ID 'a1' is mapped to two persons"),
    ("USER_ID,PERSON_ID\na1,p1\n,p1\n", "column USER_ID is empty in 1 row"),
    ("USER_ID,PERSON_ID\na1,\n", "column PERSON_ID is empty"),
    ("USER_ID,PERSON_ID,LINK_PROBABILITY\na1,p1,high\n", "column LINK_PROBABILITY must be a probability"),
    ("USER_ID,PERSON_ID,LINK_PROBABILITY\na1,p1,1.5\n", "column LINK_PROBABILITY must be a probability"),
    ("USER,PERSON_ID\na1,p1\n", "missing column USER_ID"),
    ("id,cluster\na1,p1\n", "missing column match_id"),
    ("match_id,x\n1,2\n", "missing column id "),
])
def test_bad_identities_name_the_file_and_column(tmp_path, text, column):
    path = tmp_path / "ids.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=r"ids\.csv: " + column.replace("(", r"\(")):
        read_identities(path)


def test_bad_match_outputs_name_the_file_and_column(tmp_path):
    matched = _match_output(tmp_path)
    MATCHED.drop(columns="rid").to_parquet(matched, index=False)
    with pytest.raises(InputError, match=r"matched\.parquet: missing column rid \(the record id its report names"):
        read_identities(matched)
    MATCHED.assign(rid=[None, *MATCHED["rid"][1:]]).to_parquet(matched, index=False)
    with pytest.raises(InputError, match=r"matched\.parquet: column rid is empty in 1 row"):
        read_identities(matched, user_ids=ACCOUNTS)
    MATCHED.assign(match_id=[None, *MATCHED["match_id"][1:]]).to_parquet(matched, index=False)
    with pytest.raises(InputError, match=r"matched\.parquet: column match_id is empty in 1 row"):
        read_identities(matched, user_ids=ACCOUNTS)
    MATCHED.to_parquet(matched, index=False)
    with pytest.raises(InputError, match=r"matched\.parquet: column rid: none of the 1 accounts"):
        read_identities(matched, user_ids=["nobody"])
    PAIRS.drop(columns="match_probability").to_parquet(tmp_path / "matched.parquet.pairs.parquet", index=False)
    with pytest.raises(InputError, match=r"pairs\.parquet: missing column\(s\) match_probability"):
        read_identities(matched, user_ids=ACCOUNTS)
    with pytest.raises(InputError, match=r"nothing\.parquet: file not found"):
        read_identities(tmp_path / "nothing.parquet")


def _ids(rows) -> Identities:
    table = pd.DataFrame(rows, columns=["USER_ID", "PERSON_ID", "LINK_PROBABILITY"])
    return Identities(table.assign(WEIGHT=link_weight(table["LINK_PROBABILITY"], 0.9)), 0.9)


def test_share_histories_numbers(tmp_path):
    df = pd.DataFrame({"USER_ID": ["a", "a", "b", "c", "solo"], "ITEM_ID": ["x", "y", "x", "z", "x"],
                       "EVENT_VALUE": [2.0, 1.0, 4.0, 8.0, 5.0], "TIMESTAMP": [30, 10, 20, 40, 50]})
    # a certain, b weak (at the threshold), c below it (its own person), d linked with no interactions
    ids = _ids([("a", "p", 1.0), ("b", "p", 0.9), ("c", "p", 0.5), ("d", "p", np.nan)])
    out = share_histories(df, ids)
    got = {(r.USER_ID, r.ITEM_ID): (r.EVENT_VALUE, r.TIMESTAMP) for r in out.itertuples()}
    assert got == {("a", "x"): (2.0 + W_MIN * 4.0, 20), ("a", "y"): (1.0, 10),
                   ("b", "x"): (4.0 + W_MIN * 2.0, 20), ("b", "y"): (W_MIN * 1.0, 10),
                   ("c", "z"): (8.0, 40), ("solo", "x"): (5.0, 50),
                   ("d", "x"): (2.0 + W_MIN * 4.0, 20), ("d", "y"): (1.0, 10)}   # d: 1 from a, floor from b
    assert list(out.columns) == ["USER_ID", "ITEM_ID", "EVENT_VALUE", "TIMESTAMP"]
    df.to_parquet(tmp_path / "i.parquet", index=False)
    pd.testing.assert_frame_equal(share_histories(InteractionsFile(tmp_path / "i.parquet"), ids), out)
    no_ts = share_histories(df.drop(columns=["TIMESTAMP", "EVENT_VALUE"]), ids)
    assert list(no_ts.columns) == ["USER_ID", "ITEM_ID", "EVENT_VALUE"]
    assert no_ts.set_index(["USER_ID", "ITEM_ID"])["EVENT_VALUE"][("b", "x")] == 1.0 + W_MIN


def test_saved_identities_read_back(tmp_path):
    ids = read_identities(_match_output(tmp_path), user_ids=ACCOUNTS)
    saved = write_identities(ids, tmp_path / "model" / IDENTITIES_FILE)
    back = load_identities(saved)
    pd.testing.assert_frame_equal(back.table, ids.table)
    assert (back.threshold, back.w_min, back.margin) == (0.9, ids.w_min, ids.margin)
    assert read_identities(saved).weights_for("acct-1") == ids.weights_for("acct-1")
    with pytest.raises(InputError, match="not a saved identities table"):
        load_identities(tmp_path / "matched.parquet")


def _park():
    """Park A: a handful of visitors; park B: more, so its attractions are the popular ones (a cold start)."""
    rows = [(f"b{u}", f"B{i}", 1.0) for u in range(12) for i in range(1, 4) if (u + i) % 4]
    rows += [(f"a{u}", f"A{i}", 1.0) for u in range(5) for i in range(1, 5) if (u + i) % 3]
    rows += [("acct-1", "A1", 3.0), ("acct-2", "A2", 2.0), ("acct-9", "A3", 1.0)]
    return pd.DataFrame(rows, columns=["USER_ID", "ITEM_ID", "EVENT_VALUE"])


def test_an_account_the_model_has_no_row_for_is_served_from_its_person(tmp_path):
    df = _park()
    model = train("item-knn", df, show_progress=False)          # trained without identities: acct-3 unknown
    ids = _ids([("acct-1", "p", 1.0), ("acct-2", "p", 1.0), ("acct-3", "p", 1.0)])
    recs = recommend_all(model, ["acct-3", "stranger"], k=3, identities=ids)
    person = recs[recs["USER_ID"] == "acct-3"]["ITEM_ID"].tolist()
    assert person and not {"A1", "A2"} & set(person) and person[0].startswith("A")
    assert recs[recs["USER_ID"] == "stranger"]["ITEM_ID"].tolist() == model.popular_items(3)["ITEM_ID"].tolist()


@pytest.mark.slow
def test_train_and_recommend_with_identities_through_the_cli(tmp_path):
    df = _park()
    df.assign(TIMESTAMP=1).to_csv(tmp_path / "interactions.csv", index=False)
    (tmp_path / "ids.csv").write_text("USER_ID,PERSON_ID\nacct-1,p1\nacct-2,p1\nacct-3,p1\n")
    out = run_cli("recsys", "train", "--interactions", str(tmp_path / "interactions.csv"), "--algo", "item-knn",
                  "--identities", str(tmp_path / "ids.csv"), "--aggregate", "pandas", "--no-progress",
                  "--out", str(tmp_path / "model"))
    assert "identities: 3 of 3 accounts share their person's history (1 person(s)" in out.stdout
    assert (tmp_path / "model" / IDENTITIES_FILE).is_file()
    model = load_model(tmp_path / "model")
    row = lambda u: dict(zip(np.array(model.item_ids)[model.matrix[model.user_index[u]].indices],  # noqa: E731
                             model.matrix[model.user_index[u]].data, strict=True))
    assert row("acct-3") == {"A1": 3.0, "A2": 2.0} and row("acct-1") == {"A1": 3.0, "A2": 2.0}
    assert row("acct-9") == {"A3": 1.0}                           # absent from the file: its own person
    (tmp_path / "users.csv").write_text("USER_ID\nacct-1\nacct-2\nacct-3\nacct-9\nstranger\n")
    run_cli("recsys", "recommend", "--model", str(tmp_path / "model"), "--users", str(tmp_path / "users.csv"),
            "--k", "3", "--out", str(tmp_path / "recs.csv"))
    recs = pd.read_csv(tmp_path / "recs.csv", dtype={"USER_ID": str, "ITEM_ID": str})
    assert list(recs.columns) == ["USER_ID", "ITEM_ID", "RANK", "SCORE"]
    by_user = {u: g.sort_values("RANK")["ITEM_ID"].tolist() for u, g in recs.groupby("USER_ID")}
    for account in ("acct-1", "acct-2", "acct-3"):   # never an item the person visited under any account
        assert by_user[account] and not {"A1", "A2"} & set(by_user[account])
    assert by_user["acct-3"][0].startswith("A")       # its person's tastes, not the popular park B
    assert by_user["stranger"][0].startswith("B")
    assert {"A1", "A2"} & set(by_user["acct-9"])
    refused = run_cli("recsys", "train", "--interactions", str(tmp_path / "interactions.csv"), "--algo", "session",
                      "--identities", str(tmp_path / "ids.csv"), "--aggregate", "pandas",
                      "--out", str(tmp_path / "m2"), check=False)
    assert refused.returncode == 2 and "--identities: not for --algo session" in refused.stderr


def test_a_person_of_more_than_max_accounts_is_a_bad_match_and_stays_apart(tmp_path):
    """A cluster of 25 accounts (a shared phone, a placeholder value) shares nothing: sharing is n^2 per person."""
    from c360.recsys.identities import MAX_ACCOUNTS

    path = tmp_path / "ids.csv"
    users = [f"a{i}" for i in range(MAX_ACCOUNTS + 5)]
    pd.DataFrame({"USER_ID": [*users, "x", "y"], "PERSON_ID": ["big"] * len(users) + ["p", "p"]}).to_csv(path, index=False)
    identities = read_identities(path)
    assert identities.summary() == {"accounts": len(users) + 2, "shared_accounts": 2, "persons": 1}
    assert identities.accounts_of("a0") == ["a0"] and identities.accounts_of("x") == ["x", "y"]


def test_the_nightly_setting_none_keeps_every_account_its_own_person(tmp_path):
    """`recsys.identities: none`: the nightly's models train per account (no identities, none written), whatever
    its match joined; the setting takes only `match` or `none`."""
    from types import SimpleNamespace

    from c360.jobs.steps import _identities
    from c360.settings import build_settings

    def joined(*_):
        raise AssertionError("with `none` the match output is not read")

    ctx = SimpleNamespace(settings=build_settings({"recsys": {"identities": "none"}}),
                          run=SimpleNamespace(identities=tmp_path / "identities.parquet"), output=joined)
    assert _identities(ctx) is None and not (tmp_path / "identities.parquet").exists()
    with pytest.raises(InputError, match="recsys.identities"):
        build_settings({"recsys": {"identities": "person"}})
