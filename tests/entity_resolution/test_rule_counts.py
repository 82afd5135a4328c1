"""The blocking analysis counted by grouping (entity_resolution/rule_counts.py) gives Splink's numbers exactly: on the
prepared inputs of real match runs (FEBRL, public; the generator's insurance records; two inputs linked and
deduplicated) for every candidate rule and every single column, and on small tables made to hit the edges (missing
keys, repeated ids, the same id in both inputs)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from splink import DuckDBAPI

from c360.entity_resolution import blocking as B
from c360.entity_resolution import phases as P
from c360.entity_resolution import rule_counts
from c360.entity_resolution.generate import generate
from c360.entity_resolution.phases.run import MatchRun
from tests.entity_resolution.febrl import FEBRL, write_febrl1


def _splinks(tables, rules: list[B.Rule], link_type: str) -> list[int]:
    """Splink's own count, one rule at a time (the path count_each takes where grouping does not apply)."""
    return [int(B.count(list(tables), [r], link_type, 1)[0]["marginal_comparison_count"]) for r in rules]


def _every_rule(prepared: P.Prepared, columns: bool) -> list[B.Rule]:
    """The run's candidates (single keys and pairs) and exact identifiers, and with `columns` every standardized
    column alone (skewed and sparse columns among them)."""
    names = [c for c in prepared.columns if c not in ("unique_id", "source_dataset")] if columns else []
    return [r for r, _ in prepared.em_candidates] + [B.Rule((c,)) for c in names]


def _prepared_counts(inputs, config=None, columns: bool = True) -> tuple[list[int], list[int], list[int], str]:
    with MatchRun.open(inputs, config, engine="duckdb", out=inputs[0].parent / "unused.parquet") as run:
        prepared = P.prepare(run)
        rules = _every_rule(prepared, columns)
        tables = prepared.counter.tables
        splinks = _splinks(tables, rules, run.link_type)
        grouped = rule_counts.count(list(tables), [r.columns for r in rules])
        measured = [n for _, n in prepared.em_candidates]
        return splinks, grouped, measured, run.link_type


@pytest.mark.slow
def test_febrl_one_and_two_inputs(tmp_path):
    write_febrl1(tmp_path)
    config = tmp_path / "febrl.yaml"
    config.write_text(yaml.safe_dump(FEBRL))
    splinks, grouped, measured, link_type = _prepared_counts([tmp_path / "febrl1.csv"], config)
    assert link_type == "dedupe_only" and grouped == splinks and sum(splinks) > 0
    assert measured == splinks[:len(measured)]   # what the run itself measured: the grouped counts
    df = pd.read_csv(tmp_path / "febrl1.csv", dtype=str)
    halves = [tmp_path / "a.csv", tmp_path / "b.csv"]
    df.iloc[::2].to_csv(halves[0], index=False)
    df.iloc[1::2].to_csv(halves[1], index=False)
    splinks, grouped, _, link_type = _prepared_counts(halves, config, columns=False)
    assert link_type == "link_and_dedupe" and grouped == splinks and sum(splinks) > 0


@pytest.mark.slow
def test_generated_insurance_records(tmp_path):
    from tests.entity_resolution.test_structure import _merged_with_pandas

    generate(300, seed=5, out_dir=tmp_path / "src")
    _merged_with_pandas(tmp_path / "src").to_parquet(tmp_path / "merged.parquet", index=False)
    splinks, grouped, measured, _ = _prepared_counts([tmp_path / "merged.parquet"])
    assert grouped == splinks and measured == splinks[:len(measured)] and sum(splinks) > 0


@pytest.mark.parametrize("link_type", ["dedupe_only", "link_and_dedupe"])
def test_edges_missing_keys_repeated_ids_one_id_in_two_inputs(link_type):
    db = DuckDBAPI()
    a = pd.DataFrame({"unique_id": ["1", "2", "2", "3", "4", "5", None],
                      "source_dataset": ["x"] * 7,
                      "k": ["p", "p", "p", None, "q", "q", "p"], "j": ["u", "u", None, "u", "u", "v", "u"]})
    b = a.assign(source_dataset="y", unique_id=["1", "9", "9", "8", "8", "7", "6"])
    tables = [db.register(a, table_name="edges_a")]
    if link_type == "link_and_dedupe":
        tables.append(db.register(b, table_name="edges_b"))
    rules = [B.Rule(("k",)), B.Rule(("j",)), B.Rule(("k", "j")), B.Rule(("source_dataset",))]
    assert rule_counts.countable(tables, link_type)
    assert rule_counts.count(tables, [r.columns for r in rules]) == _splinks(tables, rules, link_type)


def test_count_each_leaves_to_splink_what_grouping_does_not_cover():
    """SQL rules, Splink's own sample (more records than EXACT_COUNT_RECORDS) and link_only go to Splink."""
    db = DuckDBAPI()
    df = pd.DataFrame({"unique_id": [str(i) for i in range(40)], "source_dataset": ["x", "y"] * 20,
                       "k": [str(i % 3) for i in range(40)]})
    t = db.register(df, table_name="leave_t")
    sql = B.Rule(sql="l.k = r.k AND l.unique_id <> r.unique_id")
    assert B.count_each([t], [B.Rule(("k",)), sql], "dedupe_only", 40) == _splinks([t], [B.Rule(("k",)), sql],
                                                                                   "dedupe_only")
    assert not rule_counts.countable([t], "link_only")
    sampled = B.count_each([t], [B.Rule(("k",))], "dedupe_only", B.EXACT_COUNT_RECORDS * 4)
    assert sampled == [int(B.count([t], [B.Rule(("k",))], "dedupe_only",
                                   B.EXACT_COUNT_RECORDS * 4)[0]["marginal_comparison_count"])]
    assert not rule_counts.countable([db.register(df.drop(columns="source_dataset"), table_name="no_sd")],
                                     "dedupe_only")
