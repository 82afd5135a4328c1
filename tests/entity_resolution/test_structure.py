"""Structure of the ER package: match runs as phases, only public Splink APIs, one schema for the sources."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import json
from pathlib import Path

import pandas as pd
import pytest

from c360.entity_resolution import match as MT
from c360.entity_resolution import phases as P
from c360.entity_resolution import sources as S
from c360.entity_resolution.generate import generate
from c360.entity_resolution.phases.run import MatchRun, timed
from c360.entity_resolution.tables import Table
from c360.layout import MatchOutput
from tests.conftest import REPO

ER_DIR = REPO / "entity_resolution"
LIBRARY = ("c360", "entity_resolution", "graph", "jobs", "api", "recsys")
SCHEMA_MODULE = ER_DIR / "sources.py"


def _merged_with_pandas(sources_dir: Path) -> pd.DataFrame:
    """merged_auto_property built by the schema's pandas applier (no Spark needed)."""
    parts = [S.to_merged_pandas(t, pd.read_csv(sources_dir / t.file, dtype=str),
                                pd.read_csv(sources_dir / t.address.file, dtype=str)) for t in S.CUSTOMER_TABLES]
    merged = pd.concat(parts, ignore_index=True)
    return merged[S.merged_order(merged.columns)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    generate(60, seed=11, out_dir=d / "src")
    _merged_with_pandas(d / "src").to_parquet(d / "merged.parquet", index=False)
    return d


@pytest.mark.slow
def test_match_phases_run_individually_in_order(tiny):
    """Each phase is a function of the run and the typed results before it; together they are match()."""
    out = tiny / "phased.parquet"
    timings: dict[str, float] = {}
    with MatchRun.open([tiny / "merged.parquet"], engine="duckdb", out=out, u_max_pairs=2e4) as run:
        assert run.link_type == "dedupe_only" and run.engine == "duckdb"
        with timed(timings, "prepare"):
            prepared = P.prepare(run)
        assert prepared.records == len(pd.read_parquet(tiny / "merged.parquet")) == prepared.inputs[0].std.count()
        assert isinstance(prepared.inputs[0].std, Table) and prepared.candidates and "prepare" in timings
        with timed(timings, "train"):
            trained = P.train(run, prepared)
        assert 0 < trained.prior < 1 and trained.model["comparisons"] and trained.summary["em_blocks"]
        with timed(timings, "block"):
            blocking = P.block(run, prepared, trained)
        assert blocking.rules and blocking.report["comparisons"] > 0
        assert len(blocking.model["blocking_rules_to_generate_predictions"]) == len(blocking.rules)
        with timed(timings, "predict"):
            scored = P.predict(run, prepared, blocking)
        assert {"unique_id_l", "unique_id_r", "match_probability", "gamma_first_name"} <= set(scored.columns)
        with timed(timings, "cluster"):
            clusters = P.cluster(run, prepared, scored)
            assigned = P.assign_ids(run, prepared, clusters)
        assert clusters.clusters.count() == prepared.records
        assert clusters.counts["pairs_linked"] <= clusters.counts["pairs_scored"] == scored.pairs.count()
        ids = assigned.result.frame()["match_id"]
        assert ids.dtype == "int64" and ids.min() == 1 and len(ids) == prepared.records
        assert not out.exists()  # nothing written before the write phase
        res = MT.result(run, P.write(run, prepared, trained, blocking, scored, clusters, assigned, timings))
    o = MatchOutput(out)
    assert all(p.exists() for p in (o.matched, o.report, o.model, o.pairs))
    assert res.report_path == str(o.report) and res.clusters == pd.read_parquet(out)["match_id"].nunique()
    report = json.loads(o.report.read_text())
    assert list(report["seconds"]) == ["prepare", "train", "block", "predict", "cluster", "total"]
    assert report["prior_probability_two_random_records_match"] == res.prior == trained.prior
    assert json.loads(o.model.read_text())["blocking_rules_to_generate_predictions"] == \
        blocking.model["blocking_rules_to_generate_predictions"]
    # the phases are match(): same clusters, same ids when run again through match()
    again = MT.match([tiny / "merged.parquet"], engine="duckdb", out=tiny / "whole.parquet", u_max_pairs=2e4)
    assert again.clusters == res.clusters and again.pairs_scored == res.pairs_scored
    key = ["id", "match_id"]
    whole = pd.read_parquet(tiny / "whole.parquet")[key].sort_values("id", ignore_index=True)
    assert whole.equals(pd.read_parquet(out)[key].sort_values("id", ignore_index=True))


def test_phase_results_are_frozen_and_a_run_closes_its_tables(tiny):
    """Phase results cannot be changed after the phase; the run's tables are gone once it is closed."""
    with MatchRun.open([tiny / "merged.parquet"], engine="duckdb", out=tiny / "frozen.parquet") as run:
        prepared = P.prepare(run)
        with pytest.raises(dataclasses.FrozenInstanceError):
            prepared.records = 0  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            run.threshold = 0.5  # type: ignore[misc]
        std = prepared.inputs[0].std
        assert str(std) == std.name and std.name.endswith(run.db.tag) and "unique_id" in std.columns
    with pytest.raises(Exception, match="closed"):
        std.count()


def test_timed_adds_up_a_phase():
    timings: dict[str, float] = {}
    for _ in range(2):
        with timed(timings, "cluster"):
            pass
    with pytest.raises(ValueError), timed(timings, "write"):
        raise ValueError("counted all the same")
    assert list(timings) == ["cluster", "write"] and all(v >= 0 for v in timings.values())


def _py_files(dirs=None):
    for p in sorted(REPO.rglob("*.py")):
        rel = p.relative_to(REPO)
        if rel.parts[0].startswith(".") or rel.parts[0] == "build" or any(x.endswith(".egg-info") for x in rel.parts):
            continue
        if dirs is None or rel.parts[0] in dirs:
            yield p


def test_er_uses_only_public_splink_apis():
    offences = []
    for p in sorted(ER_DIR.rglob("*.py")):
        text = p.read_text()
        for private in ("_settings_obj", "_execute_sql_against_backend"):
            if private in text:
                offences.append(f"{p.name}: {private}")
        for node in ast.walk(ast.parse(text)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offences += [f"{p.name}:{node.lineno}: imports {m}" for m in mods if m.startswith("splink.internals")]
    assert not offences, offences


RENAMES = {(old, new) for t in S.CUSTOMER_TABLES for old, new in t.renames.items()}
# source columns that exist only to be renamed; generic words (work, dob, phone) are left to the rename check
SOURCE_ONLY = {old for t in S.CUSTOMER_TABLES for old in t.renames} - set(S.MERGED_COLUMNS) - {"work", "dob", "phone"}


def _rename_offences(rel: str, source: str, library: bool) -> list[str]:
    """Rename dict entries or calls like withColumnRenamed("fname", "first_name"); in library code also any
    source-only column name that is not a key of a record literal (writers of sample rows)."""
    tree = ast.parse(source)
    offences, record_keys = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            pairs = [(k.value, v.value) for k, v in zip(node.keys, node.values, strict=True)
                     if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)]
            offences += [f"{rel}:{node.lineno}: {a!r}: {b!r}" for a, b in pairs if (a, b) in RENAMES]
            record_keys |= {id(k) for k in node.keys if k is not None}
        elif isinstance(node, ast.Call):
            args = [a.value for a in node.args if isinstance(a, ast.Constant)]
            offences += [f"{rel}:{node.lineno}: call with {a!r}, {b!r}" for a, b in itertools.pairwise(args)
                         if (a, b) in RENAMES]
    if library:
        offences += [f"{rel}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
                     if isinstance(n, ast.Constant) and n.value in SOURCE_ONLY and id(n) not in record_keys]
    return offences


def test_rename_check_catches_a_second_spelling():
    assert _rename_offences("x.py", 'df.rename(columns={"fname": "first_name"})', library=False)
    assert _rename_offences("x.py", 'df.withColumnRenamed("policyid", "id")', library=False)
    assert _rename_offences("x.py", 'pid = row["policyid"]', library=True)
    assert not _rename_offences("x.py", 'rows.append({"policyid": pid, "fname": first})', library=True)
    assert not _rename_offences("x.py", 'pid = row["policyid"]', library=False)


def test_schema_module_is_the_only_place_spelling_the_renames():
    """No .py file but sources.py spells a rename; library code names source-only columns only there (or as
    keys of the rows a sample-data writer builds)."""
    assert {"fname", "lname", "policyid", "customer_id", "social"} <= SOURCE_ONLY
    offences = []
    for p in _py_files():
        if p != SCHEMA_MODULE:
            rel = p.relative_to(REPO)
            offences += _rename_offences(str(rel), p.read_text(), library=rel.parts[0] in LIBRARY)
    assert not offences, offences


def test_schema_declarations_hang_together():
    assert [t.name for t in S.SOURCE_TABLES] == ["auto_customer", "auto_address", "auto_vehicles",
                                                  "property_customers", "property_addresses"]
    for t in S.SOURCE_TABLES:
        assert set(t.required) <= set(t.columns), t.name
        assert t.file == f"source_{t.name}.csv"
    for t in S.CUSTOMER_TABLES:
        assert set(t.renames) | set(t.drops) <= set(t.columns)
        assert t.key_column in t.address.columns and t.renames[t.key_column] == "id"
        kept = [t.renames.get(c, c) for c in t.columns if c not in t.drops]
        assert set(S.MATCH_COLUMNS) <= set(kept), t.name
    with pytest.raises(ValueError, match="declared"):
        S.AUTO_ADDRESS.frame({"policyid": [1]})


def test_pandas_applier_matches_generated_truth(tiny):
    m = pd.read_parquet(tiny / "merged.parquet")
    truth = pd.read_csv(tiny / "src" / "truth.csv")
    assert sorted(m["id"]) == sorted(truth["record_id"])
    assert list(m.columns[:len(S.MERGED_COLUMNS)]) == list(S.MERGED_COLUMNS)
    for t in S.CUSTOMER_TABLES:
        rows = m[m["source"] == t.line]
        for c in t.drops:  # a dropped column is empty on the line's rows (unless another line or the address has it)
            if c in m.columns and c not in S.ADDRESS_COLUMNS:
                assert rows[c].isna().all(), (t.line, c)
        assert (m.loc[m["source"] == t.line, "id"].str.endswith(t.suffix)).all()
