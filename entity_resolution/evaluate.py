"""Pairwise precision/recall/F1 and cluster sizes of matched output against a truth file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from c360.io import read_json_file, read_table, require_columns


def _pairs(groups: pd.Series) -> int:
    s = groups.value_counts()
    return int((s * (s - 1) // 2).sum())


def bcubed(clusters: pd.Series, truth: pd.Series) -> dict:
    """B-cubed precision/recall/F1: per record, the share of its cluster that is truly it (precision) and the share
    of its true entity found in its cluster (recall), averaged over records (Bagga and Baldwin, 1998)."""
    c, t = clusters.astype(str).to_numpy(), truth.astype(str).to_numpy()
    frame = pd.DataFrame({"c": c, "t": t})
    both = frame.groupby(["c", "t"])["c"].transform("size").to_numpy()
    p = float((both / frame.groupby("c")["c"].transform("size").to_numpy()).mean()) if len(frame) else 1.0
    r = float((both / frame.groupby("t")["t"].transform("size").to_numpy()).mean()) if len(frame) else 1.0
    return {"bcubed_precision": p, "bcubed_recall": r, "bcubed_f1": 2 * p * r / (p + r) if p + r else 0.0}


def _pairs_touching(groups: pd.Series, focus: pd.Series) -> int:
    """Pairs within each group that hold at least one focus record: C(k,2) - C(k-s,2) for k records, s in focus."""
    f = pd.DataFrame({"g": groups.to_numpy(), "s": focus.to_numpy().astype(int)}).groupby("g")["s"].agg(["size", "sum"])
    k, rest = f["size"], f["size"] - f["sum"]
    return int((k * (k - 1) // 2 - rest * (rest - 1) // 2).sum())


def evaluate_source(matched, truth, source: str, id_col: str | None = None) -> dict:
    """Pairwise precision/recall/F1 over the pairs that hold a record of `source` (the accounts: account-account and
    account-customer pairs), plus the share of that source's people with a wrong merge (a cluster holding one of
    their records and another person's). {} when the matched table has no record of `source`."""
    j = _joined(matched, truth, id_col, extra=["source"])
    focus = j["source"].astype(str) == source
    if not focus.any():
        return {}
    predicted = _pairs_touching(j["match_id"], focus)
    true = _pairs_touching(j["person_id"], focus)
    correct = _pairs_touching(j["match_id"].astype(str) + "|" + j["person_id"].astype(str), focus)
    p = correct / predicted if predicted else 1.0
    r = correct / true if true else 1.0
    people = j.groupby("match_id")["person_id"].transform("nunique") > 1
    wrong = j.loc[focus & people, "person_id"].nunique()
    persons = j.loc[focus, "person_id"].nunique()
    return {"source": source, "records": int(focus.sum()), "persons": int(persons), "precision": p, "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0, "true_pairs": true, "predicted_pairs": predicted,
            "persons_wrongly_merged": int(wrong), "wrong_merge_share": wrong / persons if persons else 0.0}


def _joined(matched, truth, id_col: str | None, extra: list[str] = ()) -> pd.DataFrame:
    """The matched records (id, match_id and `extra` columns) joined with their truth rows."""
    if isinstance(matched, (str, Path)):
        from c360.layout import MatchOutput
        matched = MatchOutput.local(matched).matched
    id_col = id_col or _id_column(matched)
    m = read_table(matched) if isinstance(matched, (str, Path)) else matched
    t = read_table(truth) if isinstance(truth, (str, Path)) else truth
    require_columns(m, [id_col, "match_id", *extra], str(matched) if isinstance(matched, (str, Path)) else "matched")
    require_columns(t, ["record_id", "person_id"], str(truth) if isinstance(truth, (str, Path)) else "truth")
    return m[[id_col, "match_id", *extra]].assign(record_id=m[id_col].astype(str)).merge(
        t.assign(record_id=t["record_id"].astype(str)), on="record_id", how="inner")


def source_ids(matched, source: str) -> set[str]:
    """The record ids of a match run's output (a path: its records file) whose `source` is `source`."""
    from c360.layout import MatchOutput

    path = MatchOutput.local(matched).matched
    id_col = _id_column(matched)
    m = read_table(path)
    require_columns(m, [id_col, "source"], str(path))
    return set(m.loc[m["source"].astype(str) == source, id_col].astype(str))


def _id_column(matched) -> str:
    """The record id column of a match run's output: its report's config says (else "id")."""
    from c360.layout import MatchOutput

    if isinstance(matched, (str, Path)) and MatchOutput(matched).report.is_file():
        return str(read_json_file(MatchOutput(matched).report).get("id", "id"))
    return "id"


def evaluate(matched, truth, id_col: str | None = None) -> dict:
    """Compare match_id clusters with truth person_id; both may be paths or DataFrames. `id_col`: the record id
    column of `matched` (default: the one its match report names, else "id").

    Returns pairwise {"precision", "recall", "f1"}, cluster-level {"bcubed_precision", "bcubed_recall",
    "bcubed_f1"}, {"true_pairs", "predicted_pairs", "correct_pairs", "cluster_sizes"} and, when the truth has
    households, {"household_pairs_linked", "household_precision", "relative_pairs"}.
    """
    j = _joined(matched, truth, id_col)  # a file: URI is local; another URI an InputError naming it
    predicted, true = _pairs(j["match_id"]), _pairs(j["person_id"])
    correct = _pairs(j["match_id"].astype(str) + "|" + j["person_id"].astype(str))
    p = correct / predicted if predicted else 1.0
    r = correct / true if true else 1.0
    out = {"records": len(j), "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
           **bcubed(j["match_id"], j["person_id"]),
           "true_pairs": true, "predicted_pairs": predicted, "correct_pairs": correct,
           "cluster_sizes": {str(k): int(v) for k, v in
                             j.groupby("match_id").size().value_counts().sort_index().items()}}
    if "household_id" in j.columns:
        # pairs of different people in one household (relatives) that the matcher put together
        same_house = _pairs(j["match_id"].astype(str) + "|" + j["household_id"].astype(str))
        relatives_linked = same_house - correct
        house_pred = same_house
        out["household_pairs_linked"] = int(relatives_linked)
        out["household_precision"] = (correct_in_house := same_house - relatives_linked) / house_pred \
            if house_pred else 1.0
        out["relative_pairs"] = int(_pairs(j["household_id"]) - true)
        del correct_in_house
    return out


def cluster_agreement(matched_a, matched_b, id_col: str = "id") -> dict:
    """How close two matchings of the same records are: pairwise precision/recall/F1 of b's clusters with a's taken
    as truth, and how many records sit in a cluster that is not exactly the same set in both."""
    a = read_table(matched_a) if isinstance(matched_a, (str, Path)) else matched_a
    b = read_table(matched_b) if isinstance(matched_b, (str, Path)) else matched_b
    j = a[[id_col, "match_id"]].merge(b[[id_col, "match_id"]], on=id_col, suffixes=("_a", "_b"))
    m = evaluate(j[[id_col, "match_id_b"]].rename(columns={"match_id_b": "match_id"}),
                 j[[id_col, "match_id_a"]].rename(columns={id_col: "record_id", "match_id_a": "person_id"}), id_col)
    same = (j.groupby("match_id_a")["match_id_b"].transform("nunique") == 1) & \
        (j.groupby("match_id_b")["match_id_a"].transform("nunique") == 1)
    return {"records": len(j), "precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
            "pairs_a": m["true_pairs"], "pairs_b": m["predicted_pairs"], "pairs_both": m["correct_pairs"],
            "records_in_different_clusters": int((~same).sum())}


def blocking_recall(matched, truth) -> dict:
    """Share of true same-person record pairs (truth person_id) that satisfy at least one prediction blocking rule
    of a match run (read from its report), i.e. that Splink scored at all; computed with DuckDB on the run's inputs,
    standardized as the run did. Returns {"true_pairs", "candidate_pairs_true", "recall", "per_rule": {rule: true
    pairs it keeps}}."""
    import duckdb

    from c360.entity_resolution.config import parse_config
    from c360.entity_resolution.standardize import read_input, standardize
    from c360.layout import MatchOutput

    report = read_json_file(MatchOutput.local(matched).report, "match report not found (run c360 er match first)")
    cfg = parse_config(report["match_config"], report["config"])
    inputs = report["inputs"]
    many = len(inputs) > 1
    std = pd.concat([standardize(read_input(p, cfg), cfg, f"input{i}" if many else "input0")[0]
                     for i, p in enumerate(inputs)], ignore_index=True)
    t = read_table(truth) if isinstance(truth, (str, Path)) else truth
    t = t[["record_id", "person_id"]].astype(str)
    rules = [r["rule"] for r in report["blocking"]["rules"]]
    con = duckdb.connect()
    con.register("std", std)
    con.register("truth", t)
    hits = ", ".join(f"coalesce({r}, false) AS r{i}" for i, r in enumerate(rules))
    row = con.execute(f"""
        WITH recs AS (SELECT s.*, t.person_id FROM std s JOIN truth t ON s.unique_id = t.record_id),
        pairs AS (SELECT {hits} FROM recs l JOIN recs r ON l.person_id = r.person_id
                  AND (l.source_dataset, l.unique_id) < (r.source_dataset, r.unique_id))
        SELECT count(*), count(*) FILTER (WHERE {' OR '.join(f'r{i}' for i in range(len(rules)))}),
               {', '.join(f'count(*) FILTER (WHERE r{i})' for i in range(len(rules)))} FROM pairs""").fetchone()
    true_pairs, kept = int(row[0]), int(row[1])
    return {"true_pairs": true_pairs, "candidate_pairs_true": kept, "recall": kept / true_pairs if true_pairs else 1.0,
            "per_rule": {r: int(n) for r, n in zip(rules, row[2:], strict=True)}}
