"""One record matched against a published run in about a millisecond: the run's Splink model, its blocking keys as an
in-memory index, the run's threshold and households rule.

`RealtimeMatcher.load(MatchOutput)` reads what `match()` wrote beside `matched.parquet` (the model, the config
in the report, the chosen threshold) and indexes every matched record by the model's blocking rules. `match(record)`
standardizes the record (`standardize.standardize_record`), looks its candidates up in the index, scores each pair
and decides as the nightly's clustering would: the best pair at or above the threshold that the households rule does
not veto names the record's match_id. `add` puts a committed record into the index, so the next record can match it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from c360.entity_resolution.config import MatchConfig, parse_config
from c360.entity_resolution.online.index import RecordIndex
from c360.entity_resolution.online.scorers import CompiledScorer, Scored, Scorer, SplinkScorer
from c360.entity_resolution.online.sql_compile import CompileError, ConditionCompiler, equality_columns
from c360.entity_resolution.online.weights import model_comparisons, probability
from c360.entity_resolution.standardize import SOURCE_DATASET, standardize, standardize_record
from c360.errors import InputError
from c360.io import read_json_file
from c360.layout import MatchOutput


def input_record(fields: dict[str, Any], cfg: MatchConfig, record_id: str | None = None) -> dict[str, Any]:
    """A record given by role (first_name, ...) and column names as the config's input columns read it: each role
    under the column the config maps it to, the id under the id column; other names pass through unchanged."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        f = next((f for f in cfg.fields if f.role == name), None)
        out[f.column if f is not None else name] = value
    if record_id is not None:
        out[cfg.id] = record_id
    return out


# what lets a pair the households rule holds apart link (phases.score.relatives_guard: the first-name comparison at
# its lowest level vetoes; a null first name does not)
HOUSEHOLDS_NEED = "the first names must agree or be close (a record without a first name is not held back)"


@dataclass
class MatchAnswer:
    """What one record matched: its match_id (None: no record at or above the threshold), the best pair's
    probability, candidate match_ids with their best probability, and why (no personal data)."""

    match_id: int | None
    match_probability: float
    candidates: list[tuple[int, float]]
    explanation: dict[str, Any]
    std: dict[str, Any]
    reason: str = ""                          # why match_id is what it is, in words
    held_back: dict[str, Any] | None = None   # the best pair at or above the threshold that a rule kept apart


class RealtimeMatcher:
    """A published run's records, model, threshold and households rule, ready to match one record at a time."""

    def __init__(self, cfg: MatchConfig, model: dict, threshold: float, index: RecordIndex, scorer: Scorer):
        self.cfg, self.model, self.threshold, self.index, self.scorer = cfg, model, threshold, index, scorer
        self.guard = cfg.households and any(c.name == "first_name" for c in model_comparisons(model))
        self.max_match_id = max(index.match_ids, default=0)

    @classmethod
    def load(cls, output: MatchOutput | str | Path, scorer: str = "auto",
             max_block_size: int | None = None) -> RealtimeMatcher:
        """The matcher of a match output (`matched.parquet` and the model and report beside it); `scorer` auto
        (compiled, else Splink), compiled or splink; `max_block_size`: see RecordIndex.candidates. InputError when a
        file is missing."""
        if scorer not in ("auto", "compiled", "splink"):
            raise InputError(f"scorer: expected auto, compiled or splink (got {scorer!r})")
        o = MatchOutput.local(output)
        for p in (o.matched, o.report, o.model):
            if not p.exists():  # matched: a file, or a directory of Parquet parts (a Spark run)
                raise InputError(f"{p}: not found (the run has no match output)")
        report, model = read_json_file(o.report), read_json_file(o.model)
        cfg = parse_config(report["match_config"], str(o.report))
        matched = pd.read_parquet(o.matched)
        std, _ = standardize(matched.astype({cfg.id: str}), cfg, SOURCE_DATASET)
        tf_columns = {lv["tf_adjustment_column"] for c in model["comparisons"] for lv in c["comparison_levels"]
                      if lv.get("tf_adjustment_column")}
        index = RecordIndex(std, matched["match_id"].to_numpy(), tf_columns, max_block_size)
        _index_blocking_rules(index, model)
        matcher = cls(cfg, model, float(report["threshold"]), index, _scorer(scorer, model, cfg, index))
        # a retired id (above every id left) is never handed out again (c360.entity_resolution.stable_ids)
        matcher.max_match_id = max(matcher.max_match_id, int(report.get("max_match_id") or 0))
        return matcher

    @property
    def input_columns(self) -> list[str]:
        """The input columns a record may carry (the config's, without the id)."""
        return [c for c in self.cfg.columns if c != self.cfg.id]

    def standardize(self, record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        return standardize_record(record, self.cfg)

    def match(self, record: dict[str, Any], std: dict[str, Any] | None = None, candidates: int = 5,
              exact_fields: Collection[str] = ()) -> MatchAnswer:
        """Score the record against its candidates and decide as the nightly's clustering would.

        `exact_fields`: the comparisons of these fields (an SSN, a birth date, the contact fields) count only at
        their top level (all equal); any other level counts as if the values were missing. For callers who may not
        see those values: how close a guess came ("one edit away", "the ZIP agrees") is an oracle that recovers a
        value a digit at a time, while equal-or-unknown leaves only guesses of the whole value."""
        std = std if std is not None else self.standardize(record)[0]
        scored = self.scorer.score(std, self.index.candidates(std))
        if exact_fields:
            names = self._comparisons_of(exact_fields)
            scored = [self._top_level_only(s, names) for s in scored]
        best_by_match: dict[int, float] = {}
        linked: Scored | None = None
        guarded: Scored | None = None
        for s in scored:
            mid = self.index.match_ids[s.row]
            best_by_match[mid] = max(best_by_match.get(mid, 0.0), s.probability)
            if s.probability < self.threshold:
                continue
            if self._guarded(s):
                guarded = s if guarded is None or s.probability > guarded.probability else guarded
            elif linked is None or s.probability > linked.probability:
                linked = s
        best = max(scored, key=lambda s: s.probability, default=None)
        shown = linked or best
        ranked = sorted(best_by_match.items(), key=lambda kv: (-kv[1], kv[0]))[:candidates]
        explanation: dict[str, Any] = {"threshold": self.threshold, "candidates_scored": len(scored),
                                       "scorer": self.scorer.name}
        if shown is not None:
            explanation.update(
                match_weight=shown.match_weight, relatives_guard=self._guarded(shown),
                comparisons=[{"comparison": name, "level": level.label, "match_weight": level.weight + adjust}
                             for name, (level, adjust) in shown.levels.items()])
        held = guarded if linked is None else None
        return MatchAnswer(match_id=self.index.match_ids[linked.row] if linked else None,
                           match_probability=shown.probability if shown else 0.0,
                           candidates=ranked, explanation=explanation, std=std,
                           reason=self._reason(linked, held, best),
                           held_back=None if held is None else {
                               "match_id": self.index.match_ids[held.row], "match_probability": held.probability,
                               "rule": "relatives_guard", "needs": HOUSEHOLDS_NEED})

    def _reason(self, linked: Scored | None, held: Scored | None, best: Scored | None) -> str:
        """Why the answer names its match_id or none (match ids and probabilities only, never a record's values)."""
        t = self.threshold
        if linked is not None:
            return (f"linked: match {self.index.match_ids[linked.row]} scored {linked.probability:.7g}, at or above "
                    f"the threshold {t:g}")
        if held is not None:
            return (f"held back by the households rule (relatives_guard): match {self.index.match_ids[held.row]} "
                    f"scored {held.probability:.7g}, over the threshold {t:g}, but the first names clearly differ, "
                    f"as between relatives who share a birth date, SSN, phone or address (twins, a parent and a "
                    f"child); to link, {HOUSEHOLDS_NEED}")
        if best is None:
            return "no candidate: no record shares a blocking key with this one"
        return (f"below the threshold: the best candidate, match {self.index.match_ids[best.row]}, scored "
                f"{best.probability:.7g} < {t:g}")

    def explain_pair(self, left: str, right: str) -> dict[str, Any] | None:
        """The model's reasons for two indexed records (a steward's question): probability, match weight, whether
        the households rule holds them apart, and each comparison's level; None when either is unknown."""
        rows = [self.index.row_of.get(str(r)) for r in (left, right)]
        if None in rows:
            return None
        scored = self.scorer.score(self.index.record(rows[0]), [rows[1]])
        if not scored:
            return None
        s = scored[0]
        return {"match_probability": s.probability, "match_weight": s.match_weight, "threshold": self.threshold,
                "relatives_guard": self._guarded(s),
                "comparisons": [{"comparison": name, "level": level.label, "match_weight": level.weight + adjust}
                                for name, (level, adjust) in s.levels.items()]}

    def _comparisons_of(self, fields: Collection[str]) -> set[str]:
        """Names of the comparisons that read any of `fields` (by name, or a level's condition on `<field>_l`)."""
        fields = set(fields)
        return {c.name for c in self.scorer.comparisons
                if c.name in fields or any(f"{f}_l" in lv.sql for lv in c.levels for f in fields)}

    def _top_level_only(self, s: Scored, names: set[str]) -> Scored:
        """`s` with every comparison of `names` that is not at its top level moved to its null level."""
        levels, total = dict(s.levels), s.match_weight
        for c in self.scorer.comparisons:
            if c.name not in names or c.name not in levels:
                continue
            level, adjust = levels[c.name]
            top = max((lv.value for lv in c.levels if not lv.is_null), default=None)
            null = next((lv for lv in c.levels if lv.is_null), None)
            if level.is_null or level.value == top or null is None:
                continue
            total += null.weight - (level.weight + adjust)
            levels[c.name] = (null, 0.0)
        if total == s.match_weight:
            return s
        return Scored(s.row, probability(total), total, levels)

    def _guarded(self, s: Scored) -> bool:
        """The households rule of the nightly (phases.score.relatives_guard): clearly different first names veto a
        link."""
        level = s.levels.get("first_name")
        return bool(self.guard and level is not None and level[0].value == 0)

    def add(self, std: dict[str, Any], match_id: int) -> None:
        """Index a committed record under `match_id` (it can be matched from now on)."""
        self.index.add(std, match_id)
        self.max_match_id = max(self.max_match_id, int(match_id))

    def knows(self, record_id: str) -> bool:
        return str(record_id) in self.index.row_of


def _index_blocking_rules(index: RecordIndex, model: dict) -> None:
    """Index the model's prediction blocking rules: a conjunction of equalities as a hash index, any other rule as a
    condition evaluated on every record (correct, but linear in the records)."""
    dialect = model.get("sql_dialect", "duckdb")
    compiler = ConditionCompiler(dialect, index.column, set(index.columns))
    for rule in model.get("blocking_rules_to_generate_predictions") or []:
        sql = rule["blocking_rule"] if isinstance(rule, dict) else str(rule)
        columns = equality_columns(sql, rule.get("sql_dialect", dialect) if isinstance(rule, dict) else dialect)
        if columns is not None and all(c in index.columns for c in columns):
            index.add_rule(columns)
        else:
            index.scans.append(compiler.compile(sql))


def _scorer(kind: str, model: dict, cfg: MatchConfig, index: RecordIndex) -> Scorer:
    """The scorer `kind` asks for: compiled, splink, or auto (compiled, else Splink)."""
    if kind == "splink":
        return SplinkScorer(model, cfg, index)
    try:
        return CompiledScorer(model, index)
    except CompileError:
        if kind == "compiled":
            raise
        return SplinkScorer(model, cfg, index)
