"""One record matched against a published run: the served (compiled) scorer, the one-record standardizer and the
blocking index answer exactly as Splink, `standardize` and the blocking rules do."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pandas as pd
import pytest

from c360.entity_resolution import online as R
from c360.entity_resolution.comparisons import build_comparisons
from c360.entity_resolution.standardize import standardize
from c360.io import read_json_file, write_json_file
from c360.layout import MatchOutput


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> MatchOutput:
    """A DuckDB match of 400 generated people, merged as the merge job does."""
    from c360.entity_resolution.generate import generate
    from c360.entity_resolution.match import match
    from c360.graph.export import customers_from_sources, load_sources

    d = tmp_path_factory.mktemp("er")
    generate(400, seed=11, out_dir=d)
    customers_from_sources(load_sources(d)).to_parquet(d / "merged.parquet", index=False)
    match([d / "merged.parquet"], engine="duckdb", out=d / "matched.parquet")
    return MatchOutput(d / "matched.parquet")


@pytest.fixture(scope="module")
def matcher(run) -> R.RealtimeMatcher:
    return R.RealtimeMatcher.load(run)


def _none(v):
    return None if isinstance(v, float) and np.isnan(v) else v


def test_one_record_is_standardized_as_standardize_does(run, matcher):
    cfg = matcher.cfg
    df = pd.read_parquet(run.matched)
    odd = pd.DataFrame([  # what a request may carry: blanks, padding, case, numbers, formats, unreadable values
        {"id": "o1", "first_name": "  BoB ", "last_name": "O'Neil  Jr", "date_of_birth": "1980-02-30",
         "ssn": "123 45 6789", "home_phone": "+1 (555) 010-0199", "zip": "2134", "address": "12  Main St",
         "company": ""},
        {"id": "o2", "first_name": "", "last_name": None, "date_of_birth": "1975-11-07", "ssn": "12-34",
         "home_phone": "555-0100", "zip": "02134-1234", "address": None, "company": "Acme  Inc"},
        {"id": "o3", "first_name": "Liz", "last_name": "x", "date_of_birth": "07/11/1975", "ssn": "791-52-X555",
         "home_phone": "15550100199", "zip": 62701, "address": "9", "company": "7.0"},
        *({"id": f"d{i}", "last_name": "x", "date_of_birth": d} for i, d in enumerate(
            ["0999-01-01", "1677-12-31", "1678-01-01", "2261-12-31", "2262-05-01", "1980-2-5", "1980-02-05.0",
             "1980-02-29", "1981-02-29", "1980-06-13", "1980-06-12 "]))
    ])
    frames = [df.head(1500), odd.reindex(columns=df.columns)]
    for frame in frames:
        std, bad = standardize(frame, cfg, R.SOURCE_DATASET)
        for rec, expected in zip(frame.to_dict("records"), std.to_dict("records"), strict=True):
            mine, unreadable = R.standardize_record(rec, cfg)
            assert mine == {k: _none(v) for k, v in expected.items()}, rec
            if frame is frames[1]:
                assert set(unreadable) <= set(bad)
    assert R.standardize_record({"id": "o3", "date_of_birth": "07/11/1975", "ssn": "791-52-X555"}, cfg)[1] == \
        ["date_of_birth", "ssn"]


def _edited_pairs(rng: random.Random, alphabet: str, n: int, longest: int) -> list[tuple[str, str]]:
    """n strings and a copy of each with up to 3 deletions, swaps, substitutions or insertions."""
    pairs = []
    for _ in range(n):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, longest)))
        b = list(a)
        for _ in range(rng.randint(0, 3)):
            i = rng.randrange(len(b)) if b else 0
            op = rng.randrange(4)
            if op == 0 and b:
                del b[i]
            elif op == 1 and i < len(b) - 1:
                b[i], b[i + 1] = b[i + 1], b[i]
            elif op == 2 and b:
                b[i] = rng.choice(alphabet)
            else:
                b.insert(i, rng.choice(alphabet))
        pairs.append((a, "".join(b)))
    return pairs


def test_string_functions_are_duckdbs():
    """The metrics (rapidfuzz) give exactly DuckDB's values, to the last bit of Jaro-Winkler (a level's threshold,
    `>= 0.92`, compares exact doubles), on short and name-length strings, and on empty ones."""
    rng = random.Random(1)
    pairs = _edited_pairs(rng, "abcde", 4000, 9) + _edited_pairs(rng, "abcdefghijklmnopqrstuvwxyz '-", 4000, 24)
    pairs += _edited_pairs(rng, "aéü ", 1000, 12)
    pairs += [("martha", "marhta"), ("dwayne", "duane"), ("dixon", "dicksonx"), ("a", "b"), ("ab", "ba"),
              ("ebdd", "eeded"), ("", ""), ("a", ""), ("", "abc")]
    con = duckdb.connect()
    con.register("pairs", pd.DataFrame(pairs, columns=["a", "b"]))
    got = con.execute("SELECT jaro_winkler_similarity(a, b) AS jw, levenshtein(a, b) AS lev, "
                      "damerau_levenshtein(a, b) AS dl FROM pairs").df()
    for (a, b), (jw, lev, dl) in zip(pairs, got.itertuples(index=False), strict=True):
        assert R.jaro_winkler(a, b) == jw, (a, b)
        assert R.levenshtein(a, b) == lev and R.damerau_levenshtein(a, b) == dl, (a, b)


def _spark_model(model: dict, cfg, std: pd.DataFrame) -> dict:
    """The model as a Spark run writes it: every level's SQL in Spark's dialect (backticks, jaro_winkler)."""
    spark = {c.name: c.comparison.get_comparison("spark").as_dict() for c in build_comparisons(cfg, std)}
    comparisons = [{**c, "comparison_levels": [{**lv, "sql_condition": s["sql_condition"]} for lv, s in zip(
        c["comparison_levels"], spark[c["output_column_name"]]["comparison_levels"], strict=True)]}
        for c in model["comparisons"]]
    return {**model, "sql_dialect": "spark", "comparisons": comparisons}


def _splinks_answers(splink: R.SplinkScorer, queries: list[tuple[dict, list[int]]]) -> dict:
    """(query number, row) -> (levels, match weight, probability) by `linker.inference.score_pairs`, in one call for
    every query (a cartesian product; only each query's candidates are kept): the reference, computed as
    `SplinkScorer.score` computes it one query at a time (about 55 ms a call)."""
    left = [{**std, "unique_id": f"query-{n}"} for n, (std, _) in enumerate(queries)]
    rows = sorted({row for _, candidates in queries for row in candidates})
    right = [{**splink.index.record(i), "source_dataset": R.SOURCE_DATASET} for i in rows]
    frame = splink.linker.inference.score_pairs(left, right).as_pandas_dataframe()
    row_of = {r["unique_id"]: i for r, i in zip(right, rows, strict=True)}
    wanted = {(n, row) for n, (_, candidates) in enumerate(queries) for row in candidates}
    answers = {}
    for rec in frame.to_dict("records"):
        key = (int(str(rec["unique_id_l"]).removeprefix("query-")), row_of[str(rec["unique_id_r"])])
        if key in wanted:
            levels = {c.name: int(rec[f"gamma_{c.name}"]) for c in splink.comparisons}
            answers[key] = (levels, float(rec["match_weight"]), float(rec["match_probability"]))
    assert answers.keys() == wanted
    return answers


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
@pytest.mark.slow
def test_the_compiled_scorer_gives_splinks_probabilities(run, matcher, tmp_path, dialect):
    """Every candidate pair of 150 perturbed records: the same levels, weights and probabilities as
    linker.inference.score_pairs (a DuckDB linker over the run's records), and `SplinkScorer` (the fallback scorer)
    giving them one record at a time for the first 10."""
    model = read_json_file(run.model)
    if dialect == "spark":
        std, _ = standardize(pd.read_parquet(run.matched), matcher.cfg, R.SOURCE_DATASET)
        model = _spark_model(model, matcher.cfg, std)
        assert "`" in model["comparisons"][0]["comparison_levels"][0]["sql_condition"]
    compiled = R.CompiledScorer(model, matcher.index)
    splink = R.SplinkScorer(model, matcher.cfg, matcher.index)
    rng = random.Random(5)
    df = pd.read_parquet(run.matched)
    queries = []
    for rec in rng.sample(df.to_dict("records"), 150):
        rec = {**rec, "id": "query"}
        if rng.random() < 0.5:  # a typo, as the generator makes them
            rec["first_name"] = (rec["first_name"] or "x")[:-1] + "q"
        std, _ = R.standardize_record(rec, matcher.cfg)
        queries.append((std, matcher.index.candidates(std)))
    expected = _splinks_answers(splink, queries)
    for n, (std, rows) in enumerate(queries):
        for a in compiled.score(std, rows):
            levels, weight, probability = expected[(n, a.row)]
            assert {k: lv.value for k, (lv, _) in a.levels.items()} == levels
            assert a.match_weight == pytest.approx(weight, abs=1e-9)
            assert a.probability == pytest.approx(probability, abs=1e-12)
        if n < 10:
            for a, b in zip(compiled.score(std, rows), splink.score(std, rows), strict=True):
                assert a.row == b.row
                assert {k: lv.value for k, (lv, _) in a.levels.items()} == {k: lv.value for k, (lv, _) in b.levels.items()}
                assert (a.match_weight, a.probability) == pytest.approx((b.match_weight, b.probability), abs=1e-12)
    assert len(expected) > 300


def test_the_index_finds_the_pairs_the_blocking_rules_find(run, matcher):
    """For 60 records, the indexed candidates are exactly the records a prediction blocking rule pairs them with."""
    model = read_json_file(run.model)
    rules = [r["blocking_rule"] for r in model["blocking_rules_to_generate_predictions"]]
    assert len(matcher.index.keys) == len(rules) and not matcher.index.scans
    std = matcher.index.frame()
    queries = std.sample(60, random_state=2).assign(unique_id=lambda d: "q" + d["unique_id"])
    con = duckdb.connect()
    con.register("r_", std.assign(row=np.arange(len(std))))
    con.register("l_", queries)
    found = con.execute(f"SELECT l.unique_id, r.row FROM l_ l JOIN r_ r ON ({') OR ('.join(rules)})").df()
    expected = found.groupby("unique_id")["row"].apply(lambda s: sorted(set(s))).to_dict()
    for q in queries.to_dict("records"):
        assert matcher.index.candidates(q) == expected.get(q["unique_id"], []), q["unique_id"]


def test_a_record_of_a_customer_matches_its_match_id_and_a_committed_one_is_found(run, matcher):
    df = pd.read_parquet(run.matched)
    sizes = df.groupby("match_id")["id"].transform("size")
    hits = 0
    sample = df[sizes >= 2].sample(100, random_state=4)
    for rec in sample.to_dict("records"):
        answer = matcher.match({**rec, "id": None, "first_name": (rec["first_name"] or "") + "e"})
        hits += answer.match_id == rec["match_id"]
        assert answer.candidates and answer.candidates[0][1] == answer.match_probability or answer.match_id is None
    assert hits >= 95
    stranger = {"first_name": "Quentin", "last_name": "Zyxwvut", "date_of_birth": "1901-02-03", "ssn": "999-88-7777",
                "zip": "99999"}
    first = matcher.match(stranger)
    assert first.match_id is None and first.candidates == []
    matcher.add({**first.std, "unique_id": "rt-1"}, 10**6)
    again = matcher.match({**stranger, "first_name": "Quentn"})
    assert again.match_id == 10**6 and matcher.knows("rt-1") and matcher.max_match_id == 10**6
    parts = {c["comparison"]: c for c in again.explanation["comparisons"]}
    assert parts["last_name"]["level"].startswith("Exact match") and again.explanation["scorer"] == "compiled"
    assert "Zyxwvut" not in str(again.explanation)  # levels and weights, never the values


def test_a_model_the_compiler_cannot_read_is_scored_by_splink(run, monkeypatch, tmp_path):
    monkeypatch.delitem(R.FUNCTIONS, "jaro_winkler_similarity")
    monkeypatch.delitem(R.FUNCTIONS, "jarowinklersimilarity")
    with pytest.raises(R.CompileError, match="not supported"):
        R.RealtimeMatcher.load(run, scorer="compiled")
    fallback = R.RealtimeMatcher.load(run)
    assert isinstance(fallback.scorer, R.SplinkScorer)
    rec = pd.read_parquet(run.matched).iloc[0].to_dict()
    assert fallback.match({**rec, "id": None}).match_id == rec["match_id"]
    missing = MatchOutput(tmp_path / "none.parquet")
    write_json_file(missing.report, {})
    with pytest.raises(Exception, match="not found"):
        R.RealtimeMatcher.load(missing)


def test_a_key_shared_by_too_many_records_pairs_nothing(run):
    """1,000 committed records sharing one blocking key (a phone, say): a record with that key is scored against the
    same candidates as if none of them had it (the key is skipped above max_block_size), so a match's work stays
    flat; below the cap the key pairs as before."""
    column = next(cols[0] for cols in R.RealtimeMatcher.load(run).index.keys if len(cols) == 1)

    def loaded(value: str | None, count: int) -> R.RealtimeMatcher:
        m = R.RealtimeMatcher.load(run, max_block_size=50)
        base = m.index.frame().to_dict("records")
        for i in range(count):
            m.add({**base[(i * 7) % len(base)], "unique_id": f"shared-{i}", column: value}, 10**6 + i)
        return m

    def scored(m: R.RealtimeMatcher) -> int:
        probe = {**m.index.record(0), "unique_id": "probe", column: "shared-key-1"}
        return m.match({}, std=probe).explanation["candidates_scored"]

    shared = loaded("shared-key-1", 1000)
    alone = scored(loaded(None, 1000))
    assert scored(shared) == alone and shared.index.skipped_keys == 1 and alone < 50
    few = loaded("shared-key-1", 3)
    assert scored(few) > scored(loaded(None, 3)) and few.index.skipped_keys == 0
