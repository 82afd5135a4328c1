"""Two scorers of a standardized record against indexed records (the contract test requires identical
probabilities):

- `CompiledScorer` (served): each comparison level's SQL condition compiled to Python (`sql_compile`) and Splink's
  Fellegi-Sunter weights (`weights`): log2(m/u) per level, term-frequency adjustments, the prior. About 0.1 ms for a
  record and its candidates.
- `SplinkScorer`: `linker.inference.score_pairs` of a DuckDB linker over the run's records, about 55 ms a call
  (Splink builds and plans its SQL pipeline per call). Used where a model has a condition the compiler does not
  know, and as the reference.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from c360.entity_resolution.comparisons import build_comparisons
from c360.entity_resolution.config import MatchConfig
from c360.entity_resolution.online.index import RecordIndex
from c360.entity_resolution.online.sql_compile import CompileError, ConditionCompiler
from c360.entity_resolution.online.weights import Level, model_comparisons, prior_weight, probability
from c360.entity_resolution.standardize import SOURCE_DATASET


@dataclass
class Scored:
    """One candidate pair: the right record's row, its probability, weight and levels (comparison -> Level, tf
    adjustment)."""

    row: int
    probability: float
    match_weight: float
    levels: dict[str, tuple[Level, float]] = field(default_factory=dict)


class Scorer:
    """Scores a standardized record against indexed records (rows)."""

    name = ""

    def score(self, left: dict[str, Any], rows: list[int]) -> list[Scored]:
        raise NotImplementedError


class CompiledScorer(Scorer):
    """The model's levels compiled to Python (see the module docstring)."""

    name = "compiled"

    def __init__(self, model: dict, index: RecordIndex):
        self.comparisons = model_comparisons(model)
        self.prior = prior_weight(float(model["probability_two_random_records_match"]))
        compiler = ConditionCompiler(model.get("sql_dialect", "duckdb"), index.column, set(index.columns))
        self._levels = [[(lv, None if lv.is_else else compiler.compile(lv.sql)) for lv in c.levels]
                        for c in self.comparisons]
        self.index = index

    def score(self, left: dict[str, Any], rows: list[int]) -> list[Scored]:
        out = []
        tf = self.index.tf
        for i in rows:
            total, chosen = self.prior, {}
            for comparison, levels in zip(self.comparisons, self._levels, strict=True):
                level = next((lv for lv, condition in levels if condition is None or condition(left, i) is True), None)
                if level is None:  # no level holds (a comparison without ELSE): Splink's weight is NULL too
                    continue
                adjust = 0.0
                if level.tf_column and level.tf_weight and not level.is_null and not level.is_else:
                    col = level.tf_column
                    tl, tr = tf[col].get(left.get(col)), tf[col].get(self.index.column(col)[i])
                    if tl is not None or tr is not None:
                        top = max(x for x in (tl, tr, level.tf_min_u) if x is not None)
                        adjust = level.tf_weight * (level.tf_log2_u - math.log2(top))
                total += level.weight + adjust
                chosen[comparison.name] = (level, adjust)
            out.append(Scored(i, probability(total), total, chosen))
        return out


class SplinkScorer(Scorer):
    """`linker.inference.score_pairs` of a DuckDB linker over the indexed records (the model's comparisons rebuilt
    for DuckDB from the config, m/u and term frequencies kept)."""

    name = "splink"

    def __init__(self, model: dict, cfg: MatchConfig, index: RecordIndex):
        from splink import DuckDBAPI, Linker

        self.index = index
        table = index.frame()
        duck = duckdb_model(model, cfg, table)
        self.linker = Linker(DuckDBAPI().register(table), duck, log_level="WARNING")
        self.comparisons = model_comparisons(duck)
        self._lock = threading.Lock()  # one DuckDB connection

    def score(self, left: dict[str, Any], rows: list[int]) -> list[Scored]:
        if not rows:
            return []
        right = [{**self.index.record(i), "source_dataset": SOURCE_DATASET} for i in rows]
        with self._lock:
            frame = self.linker.inference.score_pairs([dict(left)], right).as_pandas_dataframe()
        by_id = {r["unique_id"]: i for r, i in zip(right, rows, strict=True)}
        out = []
        for rec in frame.to_dict("records"):
            chosen = {}
            for c in self.comparisons:
                gamma = int(rec[f"gamma_{c.name}"])
                level = next(lv for lv in c.levels if lv.value == gamma)
                adj = rec.get(f"mw_tf_adj_{c.name}")
                chosen[c.name] = (level, 0.0 if adj is None or pd.isna(adj) else float(adj))
            out.append(Scored(by_id[str(rec["unique_id_r"])], float(rec["match_probability"]),
                              float(rec["match_weight"]), chosen))
        return sorted(out, key=lambda s: rows.index(s.row))


def duckdb_model(model: dict, cfg: MatchConfig, std: pd.DataFrame) -> dict:
    """The model with every level's SQL rebuilt for DuckDB from the config's comparisons (a Spark run's model reads
    Spark SQL); CompileError when the rebuilt comparisons do not line up with the model's."""
    rebuilt = {c.name: c.comparison.get_comparison("duckdb").as_dict() for c in build_comparisons(cfg, std)}
    out = {**model, "sql_dialect": "duckdb", "blocking_rules_to_generate_predictions": [],
           "comparisons": []}
    for c in model["comparisons"]:
        new = rebuilt.get(c["output_column_name"])
        levels = c["comparison_levels"]
        if new is None or len(new["comparison_levels"]) != len(levels):
            raise CompileError(f"comparison {c['output_column_name']}: the config builds other levels")
        out["comparisons"].append({**c, "comparison_levels": [
            {**lv, "sql_condition": nl["sql_condition"]} for lv, nl in zip(levels, new["comparison_levels"],
                                                                           strict=True)]})
    return out
