"""Splink (Fellegi-Sunter) settings built from the roles present in the data."""

from __future__ import annotations

import splink.comparison_level_library as cll
from splink import SettingsCreator, block_on
from splink.comparison_library import CustomComparison


def _cmp(name: str, levels: list) -> CustomComparison:
    return CustomComparison(comparison_levels=levels, output_column_name=name)


def _dl1(col: str):
    """Damerau-Levenshtein distance <= 1, with plain Levenshtein <= 2 checked first: the same level (one edit or one
    adjacent transposition is at most two Levenshtein edits) but the slow Damerau-Levenshtein runs only on the few
    near pairs — on Spark the jar's Damerau-Levenshtein is ~15x slower than the built-in Levenshtein."""
    return cll.CustomLevel(f"levenshtein({col}_l, {col}_r) <= 2 AND damerau_levenshtein({col}_l, {col}_r) <= 1",
                           f"Damerau-Levenshtein distance of {col} <= 1")


def comparisons(cols: set[str]) -> list:
    """One comparison per role, with levels fitted to the role."""
    out = []
    if "first_name" in cols:
        out.append(_cmp("first_name", [
            cll.NullLevel("first_name"),
            cll.ExactMatchLevel("first_name", term_frequency_adjustments=True),
            cll.CustomLevel("first_name_canon_l = first_name_canon_r", "nickname match"),
            cll.JaroWinklerLevel("first_name", 0.92),
            *([cll.CustomLevel("first_name_l = last_name_r AND last_name_l = first_name_r",
                               "first and last swapped")] if "last_name" in cols else []),
            cll.JaroWinklerLevel("first_name", 0.8),
            cll.ElseLevel()]))
    if "last_name" in cols:
        out.append(_cmp("last_name", [
            cll.NullLevel("last_name"),
            cll.ExactMatchLevel("last_name", term_frequency_adjustments=True),
            cll.JaroWinklerLevel("last_name", 0.92),
            *([cll.CustomLevel("first_name_l = last_name_r AND last_name_l = first_name_r",
                               "first and last swapped")] if "first_name" in cols else []),
            cll.JaroWinklerLevel("last_name", 0.8),
            cll.ElseLevel()]))
    if "date_of_birth" in cols:
        out.append(_cmp("date_of_birth", [
            cll.NullLevel("date_of_birth"),
            cll.ExactMatchLevel("date_of_birth"),
            cll.CustomLevel("date_of_birth_l = dob_swapped_r OR dob_swapped_l = date_of_birth_r",
                            "day and month transposed"),
            _dl1("date_of_birth"),
            cll.ElseLevel()]))
    if "ssn" in cols:
        out.append(_cmp("ssn", [
            cll.NullLevel("ssn"),
            cll.ExactMatchLevel("ssn"),
            _dl1("ssn"),
            cll.CustomLevel("ssn7_l = ssn7_r", "last two digits differ"),
            cll.ElseLevel()]))
    contact = [c for c in ("home_phone", "address", "zip") if c in cols]
    if contact:
        # phone and address are one comparison: relatives share both, so they must count once, not twice
        levels = [cll.CustomLevel(" AND ".join(f"{c}_l IS NULL OR {c}_r IS NULL" for c in contact),
                                  "all contact fields missing").configure(is_null_level=True)]
        if "home_phone" in cols and "address" in cols:
            levels.append(cll.CustomLevel("home_phone_l = home_phone_r AND address_l = address_r",
                                          "phone and address agree"))
        if "home_phone" in cols:
            levels.append(cll.ExactMatchLevel("home_phone").configure(label_for_charts="phone agrees"))
        if "address" in cols:
            levels.append(cll.JaroWinklerLevel("address", 0.9))
        if "zip" in cols:
            levels.append(cll.ExactMatchLevel("zip").configure(label_for_charts="zip agrees"))
        levels.append(cll.ElseLevel())
        out.append(_cmp("contact", levels))
    if "email" in cols:
        out.append(_cmp("email", [cll.NullLevel("email"), cll.ExactMatchLevel("email"),
                                  cll.JaroWinklerLevel("email", 0.9), cll.ElseLevel()]))
    if "company" in cols:
        out.append(_cmp("company", [cll.NullLevel("company"), cll.ExactMatchLevel("company"), cll.ElseLevel()]))
    return out


def blocking_rules(cols: set[str]) -> list:
    """Candidate pairs: each rule keys on a different field so one error rarely hides a true pair."""
    rules = []
    if "ssn" in cols:
        rules.append(block_on("ssn7"))
    if {"date_of_birth", "last_name"} <= cols:
        rules.append(block_on("date_of_birth", "last_name"))
    if {"date_of_birth", "first_name"} <= cols:
        rules.append(block_on("date_of_birth", "first_name_canon"))
    if "home_phone" in cols:
        rules.append(block_on("home_phone"))
    if {"zip", "last_name"} <= cols:
        rules.append(block_on("zip", "last_name"))
    if {"zip", "first_name"} <= cols:
        rules.append(block_on("zip", "first_name_canon"))
    if "email" in cols:
        rules.append(block_on("email"))
    if not rules:
        rules.append(block_on(sorted(cols)[0]))
    return rules


def deterministic_rules(cols: set[str]) -> list:
    """Near-certain matches, used to estimate the prior (probability two random records match)."""
    rules = []
    if {"ssn", "date_of_birth"} <= cols:
        rules.append("l.ssn = r.ssn AND l.date_of_birth = r.date_of_birth")
    if {"first_name", "last_name", "date_of_birth"} <= cols:
        rules.append("l.first_name = r.first_name AND l.last_name = r.last_name AND "
                     "l.date_of_birth = r.date_of_birth")
    if not rules:
        rules = [blocking_rules(cols)[0]]
    return rules


def em_rules(cols: set[str]) -> list:
    rules = []
    if "ssn" in cols:
        rules.append(block_on("ssn"))
    if {"date_of_birth", "last_name"} <= cols:
        rules.append(block_on("date_of_birth", "last_name"))
    elif "home_phone" in cols:
        rules.append(block_on("home_phone"))
    return rules or blocking_rules(cols)[:1]


def settings(cols: set[str], link_type: str) -> SettingsCreator:
    return SettingsCreator(
        link_type=link_type, unique_id_column_name="unique_id",
        comparisons=comparisons(cols), blocking_rules_to_generate_predictions=blocking_rules(cols),
        retain_intermediate_calculation_columns=True, retain_matching_columns=True,
        additional_columns_to_retain=[c for c in ("first_name_canon",) if c in cols])
