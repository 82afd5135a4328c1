"""The plain Splink model of Splink's own examples, built from a data set's roles/columns mapping.

Follows Splink's FEBRL3 example (docs/demos/examples/duckdb/febrl3): NameComparison for names,
DateOfBirthComparison for birth dates, Damerau-Levenshtein (2) for identifiers, exact matches with term-frequency
adjustments for everything else; one blocking rule per identifying column (identifier, first name, last name, birth
date, postcode); the prior from deterministic rules (identifier; names + birth date; swapped names + birth date) at
recall 0.9; u by random sampling (1e6 pairs); EM blocked on birth date, then postcode; predictions above 0.2, and
clusters at match probability 0.95 as in the "deduplicate 50k synthetic" tutorial. The same code runs on every data
set: nothing is tuned to one.
"""

from __future__ import annotations

import time

import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.blocking_analysis import count_comparisons_from_blocking_rules

NAME_ROLES = ("first_name", "last_name")


def _columns(mapping: dict) -> dict[str, str]:
    """role or custom-column name -> source column (custom columns map to themselves)."""
    cols = dict(mapping["roles"])
    for c in mapping.get("columns") or {}:
        cols[c] = c
    return cols


def _comparisons(mapping: dict) -> list:
    roles, custom = mapping["roles"], mapping.get("columns") or {}
    out = []
    for role in NAME_ROLES:
        if role in roles:
            out.append(cl.NameComparison(roles[role]))
    if "date_of_birth" in roles:
        out.append(cl.DateOfBirthComparison(roles["date_of_birth"], input_is_string=True,
                                            datetime_format=mapping.get("date_format", "%Y-%m-%d"),
                                            invalid_dates_as_null=True))
    for role in ("ssn", "home_phone"):
        if role in roles:
            out.append(cl.DamerauLevenshteinAtThresholds(roles[role], [2]))
    if "email" in roles:
        out.append(cl.EmailComparison(roles["email"]))
    for role, col in roles.items():
        if role not in (*NAME_ROLES, "date_of_birth", "ssn", "home_phone", "email"):
            out.append(cl.ExactMatch(col).configure(term_frequency_adjustments=True))
    for col, spec in custom.items():
        kind = spec.get("type", "exact")
        out.append(cl.NameComparison(col) if kind == "name" else
                   cl.ExactMatch(col).configure(term_frequency_adjustments=True))
    return out


def _rules(mapping: dict) -> tuple[list, list, list]:
    """(prediction blocking rules, deterministic rules, EM blocks) of the example, for the columns present."""
    r = mapping["roles"]
    first, last, dob, ssn, zip_ = (r.get(k) for k in ("first_name", "last_name", "date_of_birth", "ssn", "zip"))
    predict = [block_on(c) for c in (ssn, first, last, dob, zip_) if c]
    deterministic = [block_on(ssn)] if ssn else []
    if first and last:
        deterministic.append(block_on(first, last, *([dob] if dob else [])))
        if dob:
            deterministic.append(f"l.{first} = r.{last} and l.{last} = r.{first} and l.{dob} = r.{dob}")
    em = [block_on(c) for c in (dob, zip_) if c] or [block_on(c) for c in (last, first) if c]
    return predict, deterministic, em


def _safe(name: str) -> str:
    """Column names the SQL engines reserve (RLdata's birth year is "by") get a prefix."""
    from sqlglot import exp
    return f"col_{name}" if exp.column(name).sql("duckdb") != name else name


def _renamed(mapping: dict) -> dict:
    out = dict(mapping, roles={k: _safe(v) for k, v in mapping["roles"].items()})
    out["columns"] = {_safe(c): spec for c, spec in (mapping.get("columns") or {}).items()}
    return out


def run(inputs: list[str], mapping: dict) -> tuple[pd.DataFrame, dict]:
    """Match `inputs` (one file: dedupe; two: link and dedupe); return (id, match_id) and {pairs, seconds}."""
    t0 = time.time()
    frames = [pd.read_csv(p, dtype=str) for p in inputs]
    frames = [f.rename(columns={c: _safe(c) for c in f.columns if c != mapping["id"]}) for f in frames]
    mapping = _renamed(mapping)
    id_col = mapping["id"]
    keep = [id_col, *dict.fromkeys(_columns(mapping).values())]
    frames = [f[keep].assign(source_dataset=f"input{i}") for i, f in enumerate(frames)]
    for f in frames:
        for c in keep[1:]:
            f[c] = f[c].str.strip().str.lower()
    predict, deterministic, em = _rules(mapping)
    settings = SettingsCreator(
        link_type="link_and_dedupe" if len(frames) > 1 else "dedupe_only", unique_id_column_name=id_col,
        comparisons=_comparisons(mapping), blocking_rules_to_generate_predictions=predict,
        retain_intermediate_calculation_columns=False, retain_matching_columns=False)
    db = DuckDBAPI()
    sdfs = [db.register(f) for f in frames]
    linker = Linker(sdfs if len(sdfs) > 1 else sdfs[0], settings, log_level="ERROR")
    try:
        linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.9)
    except ValueError:
        pass
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
    for rule in em:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except Exception:  # noqa: BLE001 - the tutorial's block may find nothing on this data set
            pass
    pred = linker.inference.predict(threshold_match_probability=0.2)
    counts = count_comparisons_from_blocking_rules(
        sdfs, blocking_rules=predict, link_type=settings.link_type, unique_id_column_name=id_col,
        source_dataset_column_name="source_dataset", record_sample_proportion=1.0)
    n_pairs = int(counts[-1]["cumulative_comparison_count"])
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, threshold_match_probability=0.95)
    c = clusters.as_pandas_dataframe()[[id_col, "cluster_id"]]
    return (c.rename(columns={id_col: "id", "cluster_id": "match_id"}),
            {"comparisons": n_pairs, "seconds": time.time() - t0})
