"""Splink's Fellegi-Sunter weights of a trained model (its JSON): per comparison its levels, each with log2(m/u),
Splink's defaults for a level training never reached, and the term-frequency adjustments' parameters; the prior's
weight and a weight's probability.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from c360.entity_resolution.online.sql_compile import CompileError, is_exact_on

LEVEL_NOT_OBSERVED = "level not observed in training dataset"   # Splink's m/u text for a level never seen
NOT_OBSERVED_PROBABILITY = 1e-6                                  # ... and the probability it stands for


@dataclass(frozen=True)
class Level:
    value: int                      # Splink's comparison vector value (null level -1, else levels counted down to 0)
    label: str
    sql: str
    is_null: bool
    weight: float                   # log2 of the Bayes factor m/u (0 for the null level)
    tf_column: str | None = None
    tf_weight: float = 1.0
    tf_min_u: float = 0.0
    tf_log2_u: float = 0.0          # log2 of the u of the exact-match level on tf_column

    @property
    def is_else(self) -> bool:
        return self.sql.strip().upper() == "ELSE"


@dataclass(frozen=True)
class Comparison:
    name: str
    levels: tuple[Level, ...]


def _probability(value, default: float) -> float | None:
    if value == LEVEL_NOT_OBSERVED:
        return NOT_OBSERVED_PROBABILITY
    return float(value) if value is not None else default


def _default_m_values(levels: int) -> list[float]:
    """Splink's m for a level training never reached (lowest level first): 0.95 for the top level, the rest split
    evenly (Splink keeps these out of its public API; tests/realtime/test_matcher.py checks the scores against
    Splink's own)."""
    rest = 0.05 / (levels - 1)
    return [rest] * (levels - 1) + [0.95]


def _default_u_values(levels: int) -> list[float]:
    """Splink's u for a level training never reached: the m above at match weights from -5 to 3, and 10 on top."""
    weights = [-5.0] if levels == 2 else [-5 + 8 * i / (levels - 2) for i in range(levels - 1)]
    return [m / 2.0 ** w for m, w in zip(_default_m_values(levels), [*weights, 10.0], strict=True)]


def model_comparisons(model: dict) -> list[Comparison]:
    """The comparisons of a Splink model (JSON) with Splink's weights: m/u as trained, Splink's defaults for a level
    training never reached, a level never observed counted as 1e-6."""
    dialect = model.get("sql_dialect", "duckdb")
    out = []
    for c in model["comparisons"]:
        raw = c["comparison_levels"]
        n = sum(1 for lv in raw if not lv.get("is_null_level"))
        default_m, default_u = _default_m_values(n), _default_u_values(n)
        counter, levels = n - 1, []
        for lv in raw:
            is_null = bool(lv.get("is_null_level"))
            value = -1 if is_null else counter
            counter -= 0 if is_null else 1
            weight = 0.0
            if not is_null:
                m = _probability(lv.get("m_probability"), default_m[value])
                u = _probability(lv.get("u_probability"), default_u[value])
                weight = math.inf if u == 0 else math.log2(m / u)
            levels.append(Level(value=value, label=lv.get("label_for_charts") or lv["sql_condition"],
                                sql=lv["sql_condition"], is_null=is_null, weight=weight,
                                tf_column=lv.get("tf_adjustment_column"),
                                tf_weight=float(lv.get("tf_adjustment_weight", 1.0)),
                                tf_min_u=float(lv.get("tf_minimum_u_value", 0.0))))
        out.append(Comparison(c["output_column_name"], tuple(_with_tf_u(levels, raw, dialect))))
    return out


def _with_tf_u(levels: list[Level], raw: list[dict], dialect: str) -> list[Level]:
    """Each tf level with the u of the level that is an exact match on its tf column (as Splink looks it up)."""
    out = []
    for level in levels:
        if level.tf_column and not level.is_else and level.value != -1 and level.tf_weight != 0:
            exact = next((lv for lv, r in zip(levels, raw, strict=True)
                          if not lv.is_null and is_exact_on(r["sql_condition"], level.tf_column, dialect)), None)
            if exact is None:
                raise CompileError(f"no exact-match level for the term frequencies of {level.tf_column}")
            m = [r for lv, r in zip(levels, raw, strict=True) if lv is exact][0]
            u = _probability(m.get("u_probability"), 0.0)
            level = dataclasses.replace(level, tf_log2_u=math.log2(u))
        out.append(level)
    return out



def prior_weight(p: float) -> float:
    """The match weight of the prior probability that two random records match."""
    if p <= 0:
        return -math.inf
    return math.inf if p >= 1 else math.log2(p / (1 - p))


def probability(match_weight: float) -> float:
    """Splink's match probability of a match weight."""
    if match_weight >= 0:
        return 1.0 / (1.0 + 2.0 ** -match_weight)
    p = 2.0 ** match_weight
    return p / (1.0 + p)
