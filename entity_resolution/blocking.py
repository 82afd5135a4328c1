"""Blocking chosen from the data: candidate rules built from the configured fields, their comparison counts
measured with Splink's blocking analysis, and a set chosen that stays within a budget while no single missing or
wrong field hides a true pair. Also the rules training uses: deterministic rules for the prior, EM blocks.

A rule is a tuple of standardized columns that must all be equal (a name's nickname-free form, an identifier's
head, ...); `base` maps such a column to the field it comes from, and robustness is reasoned about per field.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from splink import block_on
from splink.blocking_analysis import count_comparisons_from_blocking_rules

from c360.entity_resolution import rule_counts
from c360.entity_resolution.config import Field, MatchConfig

# strong on their own: a rule of one of these is a candidate by itself; others pair up
SINGLE_TYPES = ("identifier", "phone", "email", "date")
# precise: few non-matches agree on one (an EM block on one is precise enough alone); never paired in a candidate
STRONG_TYPES = ("identifier", "phone", "email")
MAX_RULES = 12
# comparisons per record the automatic budget allows (the cost of scoring grows with it; recall saturates early)
COMPARISONS_PER_RECORD = 20
MIN_BUDGET = 200_000
# the share of true matches the deterministic rules are taken to find (the prior is their pairs / this)
RECALL = 0.7
ALL_BUT_ONE_RECALL = 0.9
# counts are exact up to this many records; above, Splink samples this many records a side
EXACT_COUNT_RECORDS = 50_000


@dataclass(frozen=True)
class Rule:
    """An equi-join blocking rule on standardized columns, or a SQL condition (a user override)."""

    columns: tuple[str, ...] = ()
    sql: str | None = None

    def creator(self):
        return self.sql if self.sql is not None else block_on(*self.columns)

    def fields(self, base: dict[str, str]) -> frozenset[str]:
        """The fields this rule needs to agree (unknown for SQL rules: every field)."""
        if self.sql is not None:
            return frozenset(base.values())
        return frozenset(base.get(c, c) for c in self.columns)

    def label(self) -> str:
        return self.sql if self.sql is not None else " AND ".join(f"l.{c} = r.{c}" for c in self.columns)


def key(f: Field) -> str:
    """The column a field blocks on: a name its nickname-free form, an identifier its head (all but the last two
    characters: it also catches a typo there), else the field itself."""
    suffix = "_canon" if f.type == "name" and f.nicknames else "_head" if f.type == "identifier" else ""
    return f"{f.name}{suffix}"


def keys(cfg: MatchConfig) -> dict[str, str]:
    """Blocking column -> its field, one per field (`key`)."""
    return {key(f): f.name for f in cfg.fields}


def configured(cfg: MatchConfig) -> list[Rule]:
    """The config's rules (an override): SQL conditions as given, field lists on the fields' nickname-free names
    (identifiers agree in full)."""
    def column(name: str) -> str:
        f = cfg.get(name)
        return key(f) if f is not None and f.type == "name" else name
    return [Rule(sql=r) if isinstance(r, str) else Rule(tuple(column(c) for c in r)) for r in cfg.blocking.rules]


def strong(cfg: MatchConfig) -> set[str]:
    """The fields of STRONG_TYPES."""
    return {f.name for f in cfg.of_type(*STRONG_TYPES)}


def candidates(cfg: MatchConfig) -> list[Rule]:
    """Single strong keys (identifiers, phones, emails, dates) and every pair of keys from different fields."""
    base = keys(cfg)
    types = {f.name: f.type for f in cfg.fields}
    rules = [Rule((k,)) for k, f in base.items() if types[f] in SINGLE_TYPES]
    pairable = [k for k, f in base.items() if types[f] not in STRONG_TYPES]
    rules += [Rule((a, b)) for a, b in itertools.combinations(pairable, 2) if base[a] != base[b]]
    return rules


def exact_identifiers(cfg: MatchConfig) -> list[Rule]:
    """Identifiers agreeing in full: EM blocks only (the most precise blocks there are; prediction blocks on the
    head, which also catches a typo in the last two characters)."""
    return [Rule((f.name,)) for f in cfg.of_type("identifier")]


def budget(cfg: MatchConfig, n_records: int) -> float:
    """The most comparisons the chosen rules may generate together (configured, else per record)."""
    if cfg.blocking.max_comparisons:
        return cfg.blocking.max_comparisons
    return float(max(MIN_BUDGET, COMPARISONS_PER_RECORD * n_records))


def _splinks_proportion(n_records: int, sampled: float) -> float:
    """The share of records Splink's own count samples (1: it counts exactly; a `sampled` table is counted
    exactly and scaled back, `_scale`)."""
    return 1.0 if sampled < 1 else min(1.0, EXACT_COUNT_RECORDS / max(n_records, 1))


def _scale(count: int, sampled: float) -> int:
    """A count on a Bernoulli sample of `sampled` of the records, scaled back by 1 / sampled**2."""
    return int(round(count * (1.0 / (sampled * sampled)))) if sampled < 1 else int(count)


def count(sdfs, rules: list[Rule], link_type: str, n_records: int, sampled: float = 1.0) -> list[dict]:
    """Splink's blocking analysis of `rules` in order: per rule its marginal and the cumulative comparisons.
    `sampled` < 1: the tables are a Bernoulli sample of that fraction of the records, counted exactly and scaled
    back by 1 / fraction**2 (Splink's own estimate when it samples)."""
    rows = count_comparisons_from_blocking_rules(
        sdfs, blocking_rules=[r.creator() for r in rules], link_type=link_type,
        source_dataset_column_name="source_dataset", record_sample_proportion=_splinks_proportion(n_records, sampled))
    if sampled >= 1:
        return rows
    return [{**r, "marginal_comparison_count": _scale(r["marginal_comparison_count"], sampled),
             "cumulative_comparison_count": _scale(r["cumulative_comparison_count"], sampled), "is_estimate": True}
            for r in rows]


def count_each(sdfs, rules: list[Rule], link_type: str, n_records: int, sampled: float = 1.0) -> list[int]:
    """Comparisons each rule generates on its own: Splink's blocking analysis, a rule at a time. Where the count is
    exact (not Splink's sample) on DuckDB tables, the equi-join rules are counted by grouping, in one query: the same
    numbers (rule_counts), without making the pairs."""
    sdfs = list(sdfs)
    exact = _splinks_proportion(n_records, sampled) == 1.0
    grouped = [r for r in rules if r.sql is None] if exact and rule_counts.countable(sdfs, link_type) else []
    found = dict(zip(grouped, rule_counts.count(sdfs, [r.columns for r in grouped]), strict=True))
    return [_scale(found[r], sampled) if r in found else
            int(count(sdfs, [r], link_type, n_records, sampled)[0]["marginal_comparison_count"]) for r in rules]


@dataclass(frozen=True)
class Counter:
    """Where a run's blocking analysis counts: Splink tables of its `records` (or of a Bernoulli sample of them,
    `sampled` < 1, see `count`)."""

    tables: tuple
    link_type: str
    records: int
    sampled: float = 1.0

    def count(self, rules: list[Rule]) -> list[dict]:
        return count(list(self.tables), rules, self.link_type, self.records, self.sampled)

    def each(self, rules: list[Rule]) -> list[int]:
        return count_each(list(self.tables), rules, self.link_type, self.records, self.sampled)

    def on_tables(self, rules: list[Rule]) -> dict:
        """The cumulative count of `rules` on the tables as they are (a sample's own counts, not scaled back)."""
        return count(list(self.tables), rules, self.link_type, EXACT_COUNT_RECORDS)[-1]


def agreement(cfg: MatchConfig, model: dict, null_share: dict[str, float]) -> dict[str, float]:
    """Per field, the chance that a true match agrees exactly on its blocking column: the trained m of the levels
    that equality implies (a nickname counts as agreement on the nickname-free form, a last-two-digits typo on an
    identifier's head), times the chance both values are present. Households' shared contact comparison yields
    phone (phone levels), address (phone-and-address, similar address) and ZIP (any agreeing level)."""
    levels = {c["output_column_name"]: [lv for lv in c["comparison_levels"] if not lv.get("is_null_level")]
              for c in model["comparisons"]}

    def m(name: str, labels: tuple[str, ...] = (), first: bool = False) -> float | None:
        lv = levels.get(name)
        if not lv:
            return None
        picked = [lv[0]] if first else []
        picked += [x for x in lv if any(t in (x.get("label_for_charts") or "") for t in labels)]
        return float(sum(x.get("m_probability") or 0.0 for x in picked))

    out = {}
    for column, name in keys(cfg).items():
        f = cfg.get(name)
        value = m(name, ("nickname match",) if f.nicknames and f.type == "name" else
                  ("all but the last two characters agree",) if f.type == "identifier" else (), first=True)
        if value is None and "contact" in levels:
            value = m("contact", {"home_phone": ("phone and address agree", "phone agrees"),
                                  "address": ("phone and address agree", "Jaro-Winkler"),
                                  "zip": ("agree",)}.get(f.role or "", ("agree",)))
        present = 1.0 - null_share.get(column, 0.0)
        out[name] = min(1.0, (value if value is not None else 0.5)) * present * present
    return out


def _caught(rules: list[Rule], fields: list[str], base: dict[str, str]) -> np.ndarray:
    """(rule, agreement pattern) -> whether the rule catches a pair agreeing on exactly the pattern's fields."""
    patterns = np.arange(2 ** len(fields), dtype=np.int64)
    bit = {f: 1 << i for i, f in enumerate(fields)}
    masks = np.array([sum(bit[f] for f in r.fields(base)) for r in rules], dtype=np.int64)
    return (patterns[None, :] & masks[:, None]) == masks[:, None]


def _pattern_probability(fields: list[str], agree: dict[str, float]) -> np.ndarray:
    patterns = np.arange(2 ** len(fields), dtype=np.int64)
    p = np.ones(len(patterns))
    for i, f in enumerate(fields):
        on = (patterns >> i) & 1 == 1
        p *= np.where(on, agree[f], 1.0 - agree[f])
    return p


def estimated_recall(rules: list[Rule], base: dict[str, str], agree: dict[str, float]) -> float | None:
    """The share of true matches some rule compares, if fields err independently with the trained rates."""
    if not rules or any(r.sql is not None for r in rules):
        return None
    fields = sorted(agree)
    caught = _caught(rules, fields, base).any(axis=0)
    return float(_pattern_probability(fields, agree)[caught].sum())


def choose(rules: list[Rule], counts: list[int], base: dict[str, str], agree: dict[str, float],
           limit: float, min_gain: float = 2e-5) -> list[int]:
    """Indexes of the chosen rules, greedily: the rule that adds the most estimated recall per comparison (rules
    below 1% of the budget count as that much), while the total stays within `limit`, until nothing adds
    `min_gain` or MAX_RULES are chosen."""
    fields = sorted(agree)
    caught = _caught(rules, fields, base)
    prob = _pattern_probability(fields, agree)
    covered = np.zeros(len(prob), dtype=bool)
    chosen: list[int] = []
    total, floor = 0, limit / 100
    while len(chosen) < MAX_RULES:
        best, best_score = None, 0.0
        for i, n in enumerate(counts):
            if i in chosen or n <= 0 or total + n > limit:
                continue
            gain = float(prob[caught[i] & ~covered].sum())
            score = gain / max(n, floor)
            if gain >= min_gain and score > best_score:
                best, best_score = i, score
        if best is None:
            break
        chosen.append(best)
        total += counts[best]
        covered |= caught[best]
    return chosen


def uncovered(rules: list[Rule], base: dict[str, str]) -> list[str]:
    """Fields whose error alone hides a true pair from every rule (every rule needs them); unknown (none listed)
    when a rule is SQL."""
    if any(r.sql is not None for r in rules):
        return []
    fields = set(base.values())
    return sorted(f for f in fields if all(f in r.fields(base) for r in rules))


def deterministic(cfg: MatchConfig) -> list[Rule]:
    """Near-certain matches, to estimate the prior: identifier + date, names + date, names + postcode, email (none
    when the data has none of these fields: then `all_but_one`)."""
    def has(*names):
        return all(cfg.get(n) is not None for n in names)
    out = []
    ids = [f.name for f in cfg.of_type("identifier")]
    dates = [f.name for f in cfg.of_type("date")]
    postcodes = [f.name for f in cfg.of_type("postcode")]
    if ids and dates:
        out.append(Rule((ids[0], dates[0])))
    if has("first_name", "last_name"):
        out += [Rule(("first_name", "last_name", d)) for d in dates[:1]]
        out += [Rule(("first_name", "last_name", p)) for p in postcodes[:1]]
    out += [Rule((f.name,)) for f in cfg.of_type("email")]
    return out


def all_but_one(cfg: MatchConfig, null_share: dict[str, float]) -> list[Rule]:
    """Records agreeing on every well-filled field (under 20% missing) but at most one: one error per duplicate is
    common, agreeing on all the rest is near certain."""
    filled = [f.name for f in cfg.fields if null_share.get(f.name, 1.0) < 0.2] or [cfg.fields[0].name]
    if len(filled) < 3:
        return [Rule(tuple(filled))]
    return [Rule(tuple(x for x in filled if x != skip)) for skip in filled]


def em_blocks(compared, rules: list[Rule], counts: list[int], base: dict[str, str], strong: set[str],
              sparse: set[str], min_pairs: int = 100, max_blocks: int = 3) -> list[Rule]:
    """EM sessions that together estimate every comparison: a session blocked on some fields cannot estimate the
    comparisons reading them. Prefers the rule that estimates the most comparisons still to do, then precise rules
    (two fields, or one `strong` field such as an identifier: fewer non-matches in the block), then fewer pairs.
    Rules on `sparse` fields (mostly missing) are left out: their few pairs are mostly not matches."""
    todo = {c.name: c.fields for c in compared}
    out: list[Rule] = []
    usable = [(r, n) for r, n in zip(rules, counts, strict=True)
              if n >= min_pairs and not (r.fields(base) & sparse)]

    def value(item):
        r, n = item
        need = r.fields(base)
        trains = sum(1 for reads in todo.values() if not (reads & need))
        return trains, len(need) >= 2 or bool(need & strong), -n

    while todo and len(out) < max_blocks:
        options = [it for it in usable if it[0] not in out]
        if not options:
            break
        best = max(options, key=value)
        if value(best)[0] == 0:
            break
        out.append(best[0])
        need = best[0].fields(base)
        todo = {k: v for k, v in todo.items() if v & need}
    return out
