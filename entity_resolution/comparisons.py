"""Splink comparisons built from the configured fields: one per field, with levels fitted to its type.

Each comparison knows which fields it reads (`Compared.fields`): an EM session blocked on a field cannot estimate
the comparisons that read it, so the training planner needs this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import splink.comparison_level_library as cll
from splink.comparison_library import CustomComparison

from c360.entity_resolution.config import Field, MatchConfig

# term-frequency adjustments are worth it where values are skewed: the most common value is this many times more
# frequent than the average value
TF_SKEW = 5.0
# fields a household shares (compared as one when households are on: they must count once, not twice)
CONTACT_ROLES = ("home_phone", "address", "zip")


@dataclass(frozen=True)
class Compared:
    """A Splink comparison and the fields (standardized columns) it reads."""

    comparison: CustomComparison
    fields: frozenset[str]

    @property
    def name(self) -> str:
        return self.comparison.create_output_column_name()


def skewed_counts(top: int, distinct: int, total: int) -> bool:
    """True when the most common non-missing value (`top` times) is >= TF_SKEW times as frequent as the average
    one (`total` values over `distinct` ones): an aggregate an engine computes."""
    if distinct < 2:
        return False
    return top >= TF_SKEW * total / distinct


def skewed(values: pd.Series) -> bool:
    """skewed_counts of a pandas column."""
    counts = values.dropna().value_counts()
    return skewed_counts(int(counts.iloc[0]) if len(counts) else 0, len(counts), int(counts.sum()))


def tf_from_data(cfg: MatchConfig) -> list[str]:
    """The fields whose term-frequency adjustments the data decides (not configured; not of a type that never
    takes them unless configured: numbers, identifiers, emails)."""
    return [f.name for f in cfg.fields if f.tf is None and f.type not in ("numeric", "identifier", "email")]


def term_frequencies(cfg: MatchConfig, std: pd.DataFrame | Callable[[str], bool]) -> dict[str, bool]:
    """field name -> whether its exact level gets term-frequency adjustments (configured, else from the data:
    `std` the standardized frame, or a function telling whether a standardized column is skewed)."""
    is_skewed = std if callable(std) else (lambda name: skewed(std[name]))
    decided = set(tf_from_data(cfg))
    return {f.name: is_skewed(f.name) if f.name in decided else bool(f.tf) for f in cfg.fields}


def _dl1(col: str):
    """Damerau-Levenshtein distance <= 1, with plain Levenshtein <= 2 checked first: the same level (one edit or one
    adjacent transposition is at most two Levenshtein edits) but the slow Damerau-Levenshtein runs only on the few
    near pairs — on Spark the jar's Damerau-Levenshtein is ~15x slower than the built-in Levenshtein."""
    return cll.CustomLevel(f"levenshtein({col}_l, {col}_r) <= 2 AND damerau_levenshtein({col}_l, {col}_r) <= 1",
                           f"Damerau-Levenshtein distance of {col} <= 1")


def _exact(col: str, tf: bool):
    return cll.ExactMatchLevel(col, term_frequency_adjustments=tf)


def _swap_level(cfg: MatchConfig, f: Field):
    """First and last name exchanged (only between the first_name and last_name roles)."""
    other = {"first_name": "last_name", "last_name": "first_name"}.get(f.role or "")
    if not other or cfg.get(other) is None:
        return None
    first, last = ("first_name", "last_name")
    return cll.CustomLevel(f"{first}_l = {last}_r AND {last}_l = {first}_r", "first and last swapped")


def levels(cfg: MatchConfig, f: Field, tf: bool) -> tuple[list, set[str]]:
    """The comparison levels of one field (null first, else last) and the fields they read."""
    c, reads = f.name, {f.name}
    if f.type == "name":
        swap = _swap_level(cfg, f)
        if swap is not None:
            reads |= {"first_name", "last_name"}
        out = [cll.NullLevel(c), _exact(c, tf),
               *([cll.CustomLevel(f"{c}_canon_l = {c}_canon_r", "nickname match")] if f.nicknames else []),
               cll.JaroWinklerLevel(c, 0.92), *([swap] if swap is not None else []),
               cll.JaroWinklerLevel(c, 0.8), cll.ElseLevel()]
    elif f.type == "fuzzy":
        out = [cll.NullLevel(c), _exact(c, tf), cll.JaroWinklerLevel(c, 0.9), cll.JaroWinklerLevel(c, 0.7),
               cll.ElseLevel()]
    elif f.type == "date":
        out = [cll.NullLevel(c), _exact(c, tf),
               cll.CustomLevel(f"{c}_l = {c}_swapped_r OR {c}_swapped_l = {c}_r", "day and month transposed"),
               _dl1(c), cll.ElseLevel()]
    elif f.type == "identifier":
        out = [cll.NullLevel(c), _exact(c, False), _dl1(c),
               cll.CustomLevel(f"{c}_head_l = {c}_head_r", "all but the last two characters agree"), cll.ElseLevel()]
    elif f.type in ("phone", "postcode"):
        out = [cll.NullLevel(c), _exact(c, tf), _dl1(c), cll.ElseLevel()]
    elif f.type == "email":
        out = [cll.NullLevel(c), _exact(c, False), cll.CustomLevel(f"{c}_user_l = {c}_user_r", "same user name"),
               cll.JaroWinklerLevel(c, 0.88), cll.ElseLevel()]
    elif f.type == "numeric":
        diff = f"abs(cast({c}_l as double) - cast({c}_r as double))"
        out = [cll.NullLevel(c), cll.CustomLevel(f"{diff} = 0", f"{c} equal"),
               *[cll.CustomLevel(f"{diff} <= {t:g}", f"{c} within {t:g}") for t in f.thresholds],
               cll.ElseLevel()]
    else:  # exact
        out = [cll.NullLevel(c), _exact(c, tf), cll.ElseLevel()]
    return out, reads


def _contact(cfg: MatchConfig) -> Compared | None:
    """Households: phone, address and ZIP as one comparison (relatives share them: they must count once)."""
    present = [r for r in CONTACT_ROLES if cfg.get(r) is not None]
    if not present:
        return None
    lv = [cll.CustomLevel(" AND ".join(f"({c}_l IS NULL OR {c}_r IS NULL)" for c in present),
                          "all contact fields missing").configure(is_null_level=True)]
    if {"home_phone", "address"} <= set(present):
        lv.append(cll.CustomLevel("home_phone_l = home_phone_r AND address_l = address_r", "phone and address agree"))
    if "home_phone" in present:
        lv.append(cll.ExactMatchLevel("home_phone").configure(label_for_charts="phone agrees"))
    if "address" in present:
        lv.append(cll.JaroWinklerLevel("address", 0.9))
    if "zip" in present:
        lv.append(cll.ExactMatchLevel("zip").configure(label_for_charts="zip agrees"))
    lv.append(cll.ElseLevel())
    return Compared(CustomComparison(comparison_levels=lv, output_column_name="contact"), frozenset(present))


def build_comparisons(cfg: MatchConfig, std: pd.DataFrame | Callable[[str], bool]) -> list[Compared]:
    """One comparison per field (households: the contact fields as one), term frequencies decided per field."""
    tf = term_frequencies(cfg, std)
    out = []
    contact = _contact(cfg) if cfg.households else None
    for f in cfg.fields:
        if contact is not None and f.role in CONTACT_ROLES:
            continue
        lv, reads = levels(cfg, f, tf[f.name])
        out.append(Compared(CustomComparison(comparison_levels=lv, output_column_name=f.name), frozenset(reads)))
    if contact is not None:
        out.append(contact)
    return out
