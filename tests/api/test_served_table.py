"""The served table (c360.recsys.served_table): built from recs.csv or Spark part files with DuckDB, memory-mapped,
answering what the old per-user dict answered; built once per run however many workers need it at once."""

from __future__ import annotations

import multiprocessing
import os

import orjson
import pandas as pd
import pytest

from c360.errors import InputError
from c360.layout import RunLayout
from c360.recsys.served_table import ServedTable, build_served_table, served_table_of

RECS = pd.DataFrame({
    "USER_ID": ["u2", "u1", "u1", "u1", "ü-\"quoted\"", "u2", "007"],
    "ITEM_ID": ["p:2", "p:3", "p:1", "p:9", "p:1", "p:1", "p:2"],
    "RANK": [1, 2, 1, 3, 1, 2, 1],
    "SCORE": [0.5, 0.30000000000000004, 0.9272409778812573, 1e-07, 2.0, 0.25, 1.0]})
ITEMS = pd.DataFrame({"ITEM_ID": ["p:1", "p:2", "p:3"], "NAME": ['Space "Mountain"', "Café ☕", None],
                      "PARK": ["p", "p", "p"]})


def expected(recs: pd.DataFrame, items: pd.DataFrame) -> dict[str, list[dict]]:
    """What the API answered before the table: per user, items in RANK order, names from items.csv ("" when empty,
    None when the item is not in it), ranks from 1."""
    names = dict(zip(items["ITEM_ID"], items["NAME"].fillna(""), strict=True))
    out: dict[str, list[dict]] = {}
    for row in recs.sort_values(["USER_ID", "RANK"]).itertuples():
        entry = out.setdefault(row.USER_ID, [])
        entry.append({"item_id": row.ITEM_ID, "name": names.get(row.ITEM_ID), "score": row.SCORE,
                      "rank": len(entry) + 1})
    return out


@pytest.fixture()
def files(tmp_path):
    RECS.to_csv(tmp_path / "recs.csv", index=False)
    ITEMS.to_csv(tmp_path / "items.csv", index=False)
    return tmp_path / "recs.csv", tmp_path / "items.csv"


def test_table_answers_what_the_recs_say(files, tmp_path):
    recs, items = files
    table = ServedTable.open(build_served_table(recs, items, tmp_path / "served"))
    want = expected(RECS, ITEMS)
    assert len(table) == 4 and set(table) == set(want) and dict(table) == want
    assert want["u1"][0]["name"] == 'Space "Mountain"' and want["u1"][1]["name"] == ""
    assert table["u1"][2]["name"] is None  # p:9 is not in items.csv
    for user, entry in want.items():
        assert table.count(user) == len(entry)
        for k in range(1, len(entry) + 1):
            assert orjson.loads(table.items_json(user, k)) == entry[:k]
        assert table.items_json(user, len(entry) + 1) is None  # fewer stored than asked: the model scores
    assert table.items_json("nobody", 1) is None and "nobody" not in table and table.get("nobody") is None
    with pytest.raises(TypeError):
        table["u1"] = []  # read-only


def test_spark_part_files_give_the_same_table(files, tmp_path):
    recs, items = files
    parts = tmp_path / "recs-parts.csv"
    parts.mkdir()
    RECS.iloc[:3].to_csv(parts / "part-00000-x.csv", index=False)  # u1 split across both parts
    RECS.iloc[3:].to_csv(parts / "part-00001-x.csv", index=False)
    (parts / "_SUCCESS").write_text("")
    one = ServedTable.open(build_served_table(recs, items, tmp_path / "one"))
    split = ServedTable.open(build_served_table(parts, items, tmp_path / "split"))
    assert dict(split) == dict(one)
    for name in ("items.bin", "keys.bin"):
        assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def test_small_batches_and_many_users(tmp_path, monkeypatch):
    """Users straddling the build's batches keep their rows together; every user is found through the hash index."""
    import c360.recsys.served_table as served

    monkeypatch.setattr(served, "BATCH_ROWS", 7)
    users = [f"user-{i}" for i in range(300)]
    recs = pd.DataFrame({"USER_ID": [u for u in users for _ in range(3)],
                         "ITEM_ID": [f"p:{j}" for _ in users for j in (3, 1, 2)],
                         "RANK": [r for _ in users for r in (3, 1, 2)],
                         "SCORE": [s for i in range(300) for s in (i / 1000, i + 0.5, i + 0.25)]})
    recs.sample(frac=1, random_state=0).to_csv(tmp_path / "recs.csv", index=False)
    table = ServedTable.open(build_served_table(tmp_path / "recs.csv", None, tmp_path / "served"))
    assert dict(table) == expected(recs, pd.DataFrame({"ITEM_ID": [], "NAME": []}))
    assert all(table.count(u) == 3 and [it["item_id"] for it in table[u]] == ["p:1", "p:2", "p:3"] for u in users)


def test_bad_recs_name_the_file_and_column(tmp_path):
    RECS.drop(columns=["RANK"]).to_csv(tmp_path / "recs.csv", index=False)
    with pytest.raises(InputError, match=r"recs\.csv: missing column\(s\) RANK"):
        build_served_table(tmp_path / "recs.csv", None, tmp_path / "served")
    with pytest.raises(InputError, match="file not found"):
        build_served_table(tmp_path / "nope.csv", None, tmp_path / "served")
    assert not (tmp_path / "served").exists()
    with pytest.raises(InputError, match="not a served table"):
        ServedTable.open(tmp_path)


def _open_in_child(root: str) -> int:
    table = served_table_of(RunLayout(root))
    return os.stat(table.directory / "meta.json").st_ino


@pytest.mark.slow
def test_workers_build_a_missing_table_once_and_rebuild_a_stale_one(files, tmp_path):
    recs, items = files
    run = RunLayout(tmp_path / "run")
    run.recs.parent.mkdir(parents=True)
    os.replace(recs, run.recs)
    os.replace(items, run.items)
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        inodes = pool.map(_open_in_child, [str(run.root)] * 3)
    assert len(set(inodes)) == 1  # one build: a second one would have replaced meta.json
    assert os.stat(run.served_table / "meta.json").st_ino == inodes[0]
    assert dict(served_table_of(run)) == expected(RECS, ITEMS)
    assert list(run.tmp.iterdir()) == []  # the build's spill directory is gone

    newer = RECS.assign(SCORE=RECS["SCORE"] * 2)
    newer.to_csv(run.recs, index=False)  # rewritten recs: the table is rebuilt from them
    assert dict(served_table_of(run)) == expected(newer, ITEMS)
