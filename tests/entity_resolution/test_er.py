"""Entity resolution end to end: generate → merge (Spark) → match (DuckDB) → evaluate, plus bad input (the Spark
match, its clusters against DuckDB's and an explanation of its model: test_hadoop_paths.py)."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from c360.entity_resolution.evaluate import blocking_recall, cluster_agreement, evaluate
from c360.entity_resolution.explain import explain_match, explain_pair
from c360.entity_resolution.generate import generate
from c360.entity_resolution.labels import evaluate_labels
from c360.entity_resolution.match import match
from c360.entity_resolution.merge import merge
from c360.errors import InputError
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def data(tmp_path_factory, spark):
    d = tmp_path_factory.mktemp("er")
    info = generate(600, seed=3, out_dir=d / "src")
    merged = merge(d / "src", d / "merged.parquet", spark=spark)
    return d, info, merged


@pytest.fixture(scope="module")
def duck(data):
    d, _, _ = data
    res = match([d / "merged.parquet"], engine="duckdb", labels=[d / "src" / "labels.csv"],
                out=d / "matched.parquet", u_max_pairs=3e5)
    return d, res


def test_generate_schemas_and_truth(data):
    d, info, _ = data
    auto = pd.read_csv(d / "src" / "source_auto_customer.csv")
    assert list(auto.columns) == ["policyid", "fname", "lname", "gender", "work", "dob", "birthdate", "phone",
                                  "ssn", "email", "priority", "policysince", "createddate"]
    prop = pd.read_csv(d / "src" / "source_property_customers.csv")
    assert list(prop.columns)[:7] == ["customer_id", "first_name", "last_name", "company", "date_of_birth",
                                      "home_phone", "social"]
    veh = pd.read_csv(d / "src" / "source_auto_vehicles.csv")
    assert set(veh["policyid"]) <= set(auto["policyid"]) and veh["vin"].str.len().eq(17).all()
    truth = pd.read_csv(d / "src" / "truth.csv")
    assert len(truth) == info["records"] == len(auto) + len(prop)
    assert truth.groupby("person_id").size().max() <= 4
    labels = pd.read_csv(d / "src" / "labels.csv")
    assert list(labels.columns[:3]) == ["labeling_set_id", "label", "id"]


def test_merge_renames_and_suffixes(data):
    d, info, merged = data
    m = pd.read_parquet(d / "merged.parquet")
    assert merged["rows"] == info["records"] == len(m)
    for c in ["id", "first_name", "last_name", "company", "date_of_birth", "home_phone", "ssn", "source",
              "address", "city", "state", "zip"]:
        assert c in m.columns
    for dropped in ["birthdate", "policysince", "createddate", "job", "industry2", "zipcode", "social", "fname"]:
        assert dropped not in m.columns
    assert m["id"].str.endswith("-auto").sum() == (m["source"] == "auto").sum()
    assert m["id"].str.endswith("-property").sum() == (m["source"] == "property").sum()
    assert m["address"].notna().mean() > 0.99


def test_duckdb_match_accuracy_households_and_report(data, duck):
    d, res = duck
    out = pd.read_parquet(d / "matched.parquet")
    assert out["match_id"].dtype == "int64" and len(out) == res.records
    metrics = evaluate(out, d / "src" / "truth.csv")
    assert metrics["f1"] > 0.97, metrics
    assert metrics["household_pairs_linked"] <= 0.02 * metrics["relative_pairs"], metrics
    report = pd.read_json(d / "matched.parquet.report.json", typ="series")
    assert 0 < report["prior_probability_two_random_records_match"] < 0.01
    assert sum(report["match_probability_histogram"]["counts"]) == res.pairs_scored


def test_stable_ids_rerun_and_append(data, duck, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="c360.entity_resolution.phases.train")
    d, _ = duck
    merged = pd.read_parquet(d / "merged.parquet")
    first = merged.iloc[: int(len(merged) * 0.8)]
    first.to_parquet(tmp_path / "part.parquet")
    out = tmp_path / "m.parquet"
    match([tmp_path / "part.parquet"], engine="duckdb", out=out, u_max_pairs=3e5)
    a = pd.read_parquet(out)
    match([tmp_path / "part.parquet"], engine="duckdb", out=out, u_max_pairs=3e5)
    b = pd.read_parquet(out)
    assert (a.set_index("id")["match_id"] == b.set_index("id")["match_id"]).mean() > 0.99
    match([d / "merged.parquet"], engine="duckdb", out=out, u_max_pairs=3e5)   # appended records
    c = pd.read_parquet(out).set_index("id")["match_id"]
    kept = (c.loc[a["id"]].to_numpy() == a["match_id"].to_numpy()).mean()
    assert kept > 0.98
    assert c.drop(a["id"]).min() > a["match_id"].max() or c.drop(a["id"]).isin(a["match_id"]).any()
    # levels EM never sees on clean data keep Splink's default m, as expected: one debug line, no Splink warning
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert not [m for level, m in messages if level >= logging.WARNING and ("not observed" in m or "trained" in m)]
    assert any(level == logging.DEBUG and m.startswith("m not trained for") for level, m in messages)


def test_labels_explain(duck, tmp_path):
    d, _ = duck
    rows = evaluate_labels(d / "matched.parquet", d / "src" / "labels.csv", tmp_path / "chart.html")
    assert max(r["f1"] for r in rows) > 0.9
    assert "<svg" in (tmp_path / "chart.html").read_text()
    m = pd.read_parquet(d / "matched.parquet")
    big = m.groupby("match_id").size().idxmax()
    ids = m.loc[m["match_id"] == big, "id"].tolist()
    html = explain_pair(d / "matched.parquet", ids[0], ids[1])
    assert "<html" in html.lower() and "first_name" in html
    assert "<script src" not in html and "cdn.jsdelivr" not in html   # vega inlined: the page draws offline
    assert "<html" in explain_match(d / "matched.parquet", int(big)).lower()


def test_roles_config_other_column_names(duck, tmp_path):
    d, _ = duck
    m = pd.read_parquet(d / "merged.parquet").rename(columns={
        "id": "rec_id", "first_name": "given_name", "last_name": "surname", "ssn": "soc_sec_id",
        "zip": "postcode", "home_phone": "phone"})
    m["dob"] = pd.to_datetime(m["date_of_birth"], errors="coerce").dt.strftime("%Y%m%d")
    m.to_csv(tmp_path / "other.csv", index=False)
    (tmp_path / "roles.yaml").write_text(
        "id: rec_id\nroles: {first_name: given_name, last_name: surname, date_of_birth: dob, ssn: soc_sec_id,\n"
        "        zip: postcode, home_phone: phone, address: address}\ndate_format: '%Y%m%d'\n"
        "households: true\n")  # the generator's relatives share phone, address and last name
    match([tmp_path / "other.csv"], config=tmp_path / "roles.yaml", engine="duckdb",
          out=tmp_path / "o.parquet", u_max_pairs=3e5)
    out = pd.read_parquet(tmp_path / "o.parquet")
    assert "rec_id" in out.columns
    metrics = evaluate(out, d / "src" / "truth.csv", id_col="rec_id")
    assert metrics["f1"] > 0.95


def test_bad_inputs(duck, tmp_path):
    d, _ = duck
    m = pd.read_parquet(d / "merged.parquet")
    out = tmp_path / "bad.parquet"
    m.drop(columns=["ssn"]).to_csv(tmp_path / "noss.csv", index=False)
    with pytest.raises(InputError, match=r"noss.csv.*ssn"):
        match([tmp_path / "noss.csv"], engine="duckdb", out=out)
    pd.concat([m, m.head(3)]).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(InputError, match=r"dup.csv.*id.*" + m["id"].iloc[0]):
        match([tmp_path / "dup.csv"], engine="duckdb", out=out)
    m.head(0).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(InputError, match="empty.csv"):
        match([tmp_path / "empty.csv"], engine="duckdb", out=out)
    assert not out.exists() and not list(tmp_path.glob(".bad*"))
    # unparseable cells are missing values, counted per column, never fatal
    m2 = m.copy()
    m2.loc[m2.index[:3], "date_of_birth"] = "1965-10-32"
    m2.loc[m2.index[3:5], "ssn"] = "12a-45-6789"
    m2.to_parquet(tmp_path / "cells.parquet")
    res = match([tmp_path / "cells.parquet"], engine="duckdb", out=out, u_max_pairs=3e5)
    assert res.unparseable["cells.parquet:date_of_birth"] >= 3 and res.unparseable["cells.parquet:ssn"] >= 2
    assert len(pd.read_parquet(out)) == len(m)


def test_merge_missing_column(data, spark, tmp_path):
    d, _, _ = data
    for f in d.joinpath("src").glob("source_*.csv"):
        (tmp_path / f.name).write_text(f.read_text())
    a = pd.read_csv(tmp_path / "source_auto_customer.csv").drop(columns=["lname"])
    a.to_csv(tmp_path / "source_auto_customer.csv", index=False)
    with pytest.raises(InputError, match=r"source_auto_customer.csv.*lname"):
        merge(tmp_path, tmp_path / "m.parquet", spark=spark)
    assert not (tmp_path / "m.parquet").exists()


def test_blocking_recall_and_cluster_agreement(data, duck):
    d, _ = duck
    b = blocking_recall(d / "matched.parquet", d / "src" / "truth.csv")
    assert b["true_pairs"] > 0 and b["recall"] >= 0.99, b  # blocking keeps >= 99% of true pairs as candidates
    assert len(b["per_rule"]) >= 4 and max(b["per_rule"].values()) < b["candidate_pairs_true"]  # rules add up
    m = pd.read_parquet(d / "matched.parquet")
    same = cluster_agreement(m, m)
    assert same["f1"] == 1.0 and same["records_in_different_clusters"] == 0
    split = m.copy()  # one record of a multi-record cluster taken out on its own
    split.loc[m.index[m["match_id"].duplicated(keep=False)][0], "match_id"] = m["match_id"].max() + 1
    diff = cluster_agreement(m, split)
    assert diff["precision"] == 1.0 and diff["recall"] < 1.0 and diff["records_in_different_clusters"] >= 2


def test_damerau_levenshtein_level_prefilter_is_exact():
    """The DL <= 1 level checks Levenshtein <= 2 first (fast on Spark); it must select exactly the same pairs."""
    import duckdb
    import numpy as np

    from c360.entity_resolution.comparisons import _dl1
    r = np.random.default_rng(0)
    base = ["".join(r.choice(list("0123456789-"), 10)) for _ in range(100)]
    muts = []
    for s in base:  # near variants: substitution, transposition, insertion, deletion, two edits
        i = int(r.integers(0, 9))
        muts += [s[:i] + "7" + s[i + 1:], s[:i] + s[i + 1] + s[i] + s[i + 2:], s[:i] + "3" + s[i:],
                 s[:i] + s[i + 1:], s[:i] + s[i + 1] + s[i] + s[i + 2:i + 4][::-1] + s[i + 4:]]
    strings = pd.DataFrame({"x": base + muts})
    sql = _dl1("x").get_comparison_level("duckdb").sql_condition
    n_pre, n_dl = duckdb.sql(f"SELECT count(*) FILTER (WHERE {sql}), count(*) FILTER "
                             "(WHERE damerau_levenshtein(x_l, x_r) <= 1) FROM (SELECT l.x AS x_l, r.x AS x_r "
                             "FROM strings l, strings r)").fetchall()[0]
    assert n_pre == n_dl > len(strings)


def test_cli_generate_and_evaluate(duck, tmp_path):
    d, _ = duck
    run_cli("er", "generate", "--customers", "50", "--out", str(tmp_path / "g"))
    assert (tmp_path / "g" / "truth.csv").exists()
    p = run_cli("er", "evaluate", "--matched", str(d / "matched.parquet"), "--truth", str(d / "src" / "truth.csv"),
                "--out", str(tmp_path / "m.json"))
    assert '"f1"' in p.stdout
    bad = run_cli("er", "match", "--input", str(tmp_path / "nope.csv"), "--engine", "duckdb", "--out",
                  str(tmp_path / "x.parquet"), check=False)
    assert bad.returncode == 2 and "nope.csv" in bad.stderr


def test_spark_merge_and_pandas_applier_agree(data):
    """The merge job (Spark) and the graph export (pandas) interpret the same declarations: same merged rows."""
    from c360.entity_resolution import sources as S

    d, _, _ = data
    spark_rows = pd.read_parquet(d / "merged.parquet")
    parts = [S.to_merged_pandas(t, pd.read_csv(d / "src" / t.file, dtype=str),
                                pd.read_csv(d / "src" / t.address.file, dtype=str)) for t in S.CUSTOMER_TABLES]
    pandas_rows = pd.concat(parts, ignore_index=True)
    pandas_rows = pandas_rows[S.merged_order(pandas_rows.columns)]
    assert list(pandas_rows.columns) == list(spark_rows.columns)
    a = spark_rows.sort_values("id").reset_index(drop=True).astype(object)
    b = pandas_rows.sort_values("id").reset_index(drop=True).astype(object)
    pd.testing.assert_frame_equal(a.where(a.notna(), None), b.where(b.notna(), None))


def test_m_is_estimated_from_labelled_matches_only(data, monkeypatch):
    """Splink's estimate_m_from_pairwise_labels takes every row as a match: the labelled non-matches of a
    labeling set (relatives in one household) must not reach it."""
    from c360.entity_resolution.labels import labels_to_pairs
    from c360.entity_resolution.phases.run import MatchRun
    from c360.entity_resolution.phases.train import matching_pairs

    d, _, _ = data
    every = labels_to_pairs(d / "src" / "labels.csv")
    assert (every["clerical_match_score"] == 0).any()  # the generated labels do hold non-matches
    only = matching_pairs(every)
    assert len(only) == int((every["clerical_match_score"] == 1).sum()) and (only["clerical_match_score"] == 1).all()

    seen = []
    real = MatchRun.small_splink_table

    def spy(run, frame, name):
        if name == "er_labels":
            seen.append(frame)
        return real(run, frame, name)

    monkeypatch.setattr(MatchRun, "small_splink_table", spy)
    match([d / "merged.parquet"], engine="duckdb", labels=[d / "src" / "labels.csv"],
          out=d / "matched-labels.parquet", u_max_pairs=1e5)
    assert len(seen) == 1 and len(seen[0]) and (seen[0]["clerical_match_score"] == 1).all()
