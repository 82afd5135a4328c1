"""One record matched against a published run in about a millisecond: the run's Splink model, its blocking keys as an
in-memory index, the run's threshold and households rule.

`RealtimeMatcher.load(MatchOutput)` reads what `match()` wrote beside `matched.parquet` (the model, the config
in the report, the chosen threshold) and indexes every matched record by the model's blocking rules. `match(record)`
standardizes the record, looks its candidates up in the index, scores each pair and decides as the nightly's
clustering would: the best pair at or above the threshold that the households rule does not veto names the
record's match_id. `add` puts a committed record into the index, so the next record can match it.

Two scorers answer the same question (the contract test requires identical probabilities):
- `CompiledScorer` (served): each comparison level's SQL condition of the model, parsed once with sqlglot into a
  Python function (equality, NULL tests, AND/OR/NOT, Jaro-Winkler, Levenshtein, Damerau-Levenshtein, casts and
  arithmetic, evaluated with SQL's three-valued logic), and Splink's Fellegi-Sunter weights: log2(m/u) per level,
  term-frequency adjustments, the prior. About 0.1 ms for a record and its candidates.
- `SplinkScorer`: `linker.inference.score_pairs` of a DuckDB linker over the run's records, about 55 ms a call
  (measured on the shipped data: Splink builds and plans its SQL pipeline per call). Used where a model has a
  condition the compiler does not know, and as the reference.

`standardize_record` is `standardize.standardize` for one record without pandas (one-row frames cost ~12 ms);
a contract test holds the two equal.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import operator
import re
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlglot
from sqlglot import exp

from c360.entity_resolution.comparisons import build_comparisons
from c360.entity_resolution.config import Field, MatchConfig, parse_config
from c360.entity_resolution.standardize import _CANON, SEPARATORS, standardize
from c360.errors import InputError
from c360.io import read_json_file
from c360.layout import MatchOutput

log = logging.getLogger("c360.er.realtime")

SOURCE_DATASET = "input0"   # what standardize names a single input (the published run's records and new ones)
LEVEL_NOT_OBSERVED = "level not observed in training dataset"   # Splink's m/u text for a level never seen
NOT_OBSERVED_PROBABILITY = 1e-6                                  # ... and the probability it stands for


class CompileError(ValueError):
    """A model construct the compiled scorer does not evaluate (the Splink scorer is used instead)."""


# ---- one record standardized like standardize.standardize ---------------------------------------------------

_WS = re.compile(r"\s+")
_DOT0 = re.compile(r"^(-?\d+)\.0$")
_SEPARATORS = re.compile(SEPARATORS)
_NON_DIGITS = re.compile(r"\D")
_DIGITS = re.compile(r"\d+")
_EMAIL = re.compile(r"[^@]+@[^@]+")
_TRAILING_DOT0 = re.compile(r"\.0$")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def _clean(v: Any) -> str | None:
    """standardize.clean_text of one value."""
    if _missing(v):
        return None
    s = _DOT0.sub(r"\1", _WS.sub(" ", str(v).strip().lower()))
    return s or None


def _formatted(v: Any, f: Field, digits_only: bool) -> str | None:
    s = _clean(v)
    if s is None:
        return None
    s = (_NON_DIGITS if digits_only else _SEPARATORS).sub("", s.upper())
    if not s:
        return None
    if f.pad and _DIGITS.fullmatch(s):
        s = s.zfill(f.pad)
    if f.pattern:
        rx = re.compile(f.pattern)
        m = rx.fullmatch(s)
        s = m.group(1 if rx.groups else 0) if m else None
    return s


_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _parse_date(raw: str, fmt: str):
    """pd.to_datetime(raw, format=fmt, errors="coerce") of one value (None for NaT). A plain ISO date within pandas'
    nanosecond range is built directly (pandas' scalar path costs ~0.3 ms, most of a request); anything else goes
    to pandas."""
    m = _ISO_DATE.fullmatch(raw) if fmt == "%Y-%m-%d" else None
    if m is not None and 1678 <= int(m.group(1)) <= 2261:
        try:
            return datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None
    d = pd.to_datetime(pd.Series([raw], dtype="string"), format=fmt, errors="coerce").iloc[0]
    return None if pd.isna(d) else d


def _standardize_field(v: Any, f: Field, cfg: MatchConfig) -> dict[str, Any]:
    if f.type == "date":
        d = None
        if not _missing(v):
            d = _parse_date(_TRAILING_DOT0.sub("", str(v).strip()), f.date_format or cfg.date_format)
        if d is None:
            return {f.name: None, f"{f.name}_swapped": None}
        return {f.name: d.strftime("%Y-%m-%d"), f"{f.name}_swapped": d.strftime("%Y-%d-%m") if d.day <= 12 else None}
    if f.type in ("identifier", "postcode", "phone"):
        s = _formatted(v, f, digits_only=f.type == "phone")
        out = {f.name: s}
        if f.type == "identifier":
            out[f"{f.name}_head"] = s[:-2] if s is not None and len(s) >= 5 else None
        return out
    if f.type == "email":
        s = _clean(v)
        s = s.replace(" ", "") if s is not None else None
        s = s if s is not None and _EMAIL.fullmatch(s) else None
        return {f.name: s, f"{f.name}_user": s.split("@")[0] if s is not None else None}
    if f.type == "numeric":
        x = pd.to_numeric(pd.Series([v], dtype=object), errors="coerce").astype("float64").iloc[0]
        return {f.name: None if math.isnan(x) else float(x)}
    s = _clean(v)
    out = {f.name: s}
    if f.type == "name" and f.nicknames:
        out[f"{f.name}_canon"] = _CANON.get(s, s) if s is not None else None
    return out


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


def standardize_record(record: dict[str, Any], cfg: MatchConfig) -> tuple[dict[str, Any], list[str]]:
    """(the record's standardized columns, as `standardize` makes them; the input columns whose present value could
    not be read). `record` maps input columns (cfg.columns) to values; absent columns are missing."""
    out: dict[str, Any] = {"unique_id": str(record.get(cfg.id)), "source_dataset": SOURCE_DATASET}
    bad: list[str] = []
    for f in cfg.fields:
        v = record.get(f.column)
        cols = _standardize_field(v, f, cfg)
        out.update(cols)
        if cols[f.name] is None and not _missing(v) and str(v).strip() != "" and f.column not in bad:
            bad.append(f.column)
    return out, bad


# ---- SQL conditions compiled to Python ------------------------------------------------------------------------

def jaro_winkler(a: str, b: str) -> float:
    """DuckDB's jaro_winkler_similarity (rapidfuzz's: integer half-transpositions, boost above 0.7, prefix <= 4)."""
    la, lb = len(a), len(b)
    if not la or not lb:
        return 0.0
    if a == b:
        return 1.0
    window = max(max(la, lb) // 2 - 1, 0)
    fa, fb, m = [False] * la, [False] * lb, 0
    for i, c in enumerate(a):
        for j in range(max(0, i - window), min(i + window + 1, lb)):
            if not fb[j] and b[j] == c:
                fa[i] = fb[j] = True
                m += 1
                break
    if not m:
        return 0.0
    t = k = 0
    for i in range(la):
        if fa[i]:
            while not fb[k]:
                k += 1
            t += a[i] != b[k]
            k += 1
    sim = (m / la + m / lb + (m - t // 2) / m) / 3
    if sim > 0.7:
        prefix = 0
        for x, y in zip(a[:4], b[:4], strict=False):
            if x != y:
                break
            prefix += 1
        sim += prefix * 0.1 * (1 - sim)
    return sim


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def damerau_levenshtein(a: str, b: str) -> int:
    """DuckDB's damerau_levenshtein: the unrestricted distance (Lowrance-Wagner), not optimal string alignment."""
    inf = len(a) + len(b)
    d = [[inf] * (len(b) + 2)] + [[inf] + [0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i + 1][1] = i
    for j in range(len(b) + 1):
        d[1][j + 1] = j
    last: dict[str, int] = {}
    for i in range(1, len(a) + 1):
        db = 0
        for j in range(1, len(b) + 1):
            i1, j1 = last.get(b[j - 1], 0), db
            cost = 1
            if a[i - 1] == b[j - 1]:
                cost, db = 0, j
            d[i + 1][j + 1] = min(d[i][j] + cost, d[i + 1][j] + 1, d[i][j + 1] + 1,
                                  d[i1][j1] + (i - i1 - 1) + 1 + (j - j1 - 1))
        last[a[i - 1]] = i
    return d[len(a) + 1][len(b) + 1]


def _to_float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


_FUNCTIONS: dict[str, tuple[int, Callable]] = {
    "jaro_winkler": (2, jaro_winkler), "jaro_winkler_similarity": (2, jaro_winkler), "jarowinklersimilarity":
    (2, jaro_winkler), "levenshtein": (2, levenshtein), "damerau_levenshtein": (2, damerau_levenshtein),
    "abs": (1, abs), "lower": (1, str.lower), "upper": (1, str.upper), "length": (1, len),
}
_COMPARE = {exp.EQ: operator.eq, exp.NEQ: operator.ne, exp.GT: operator.gt, exp.GTE: operator.ge,
            exp.LT: operator.lt, exp.LTE: operator.le}
_ARITHMETIC = {exp.Add: operator.add, exp.Sub: operator.sub, exp.Mul: operator.mul, exp.Div: operator.truediv}

Row = Any         # the left record: {column: value}
Pair = Callable[[dict, int], Any]   # f(left record, index of the right record) -> value


class ConditionCompiler:
    """SQL boolean expressions over `<col>_l` / `<col>_r` (or `l.<col>` / `r.<col>`) → f(left, right index), with
    SQL's NULL semantics (None is unknown). `right(col)` gives the column list of the indexed records."""

    def __init__(self, dialect: str, right: Callable[[str], list], columns: set[str]):
        self.dialect, self.right, self.columns = dialect, right, columns

    def compile(self, sql: str) -> Pair:
        try:
            tree = sqlglot.parse_one(sql, read=self.dialect)
        except sqlglot.errors.ParseError as exc:
            raise CompileError(f"cannot parse {sql!r}: {exc}") from None
        return self._node(tree)

    def column_of(self, node: exp.Expression) -> tuple[str, str] | None:
        """('l' | 'r', column) for a column reference, else None."""
        if not isinstance(node, exp.Column):
            return None
        name, table = node.name, node.table
        if table in ("l", "r"):
            side, col = table, name
        elif name.endswith(("_l", "_r")):
            side, col = name[-1], name[:-2]
        else:
            raise CompileError(f"column {name!r} names no side (_l / _r)")
        if col not in self.columns:
            raise CompileError(f"column {col!r} is not a standardized column")
        return side, col

    def _node(self, node: exp.Expression) -> Pair:  # noqa: C901 - one branch per SQL construct
        if isinstance(node, exp.Paren):
            return self._node(node.this)
        ref = self.column_of(node) if isinstance(node, exp.Column) else None
        if ref is not None:
            side, col = ref
            if side == "l":
                return lambda left, i, c=col: left.get(c)
            values = self.right(col)
            return lambda left, i, v=values: v[i]
        if isinstance(node, exp.Null):
            return lambda left, i: None
        if isinstance(node, exp.Boolean):
            value = node.this
            return lambda left, i: value
        if isinstance(node, exp.Literal):
            value = node.this if node.is_string else float(node.this)
            return lambda left, i: value
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
            inner = self._node(node.this)
            return lambda left, i: inner(left, i) is None
        if isinstance(node, exp.Not):
            inner = self._node(node.this)

            def negate(left, i):
                v = inner(left, i)
                return None if v is None else not v
            return negate
        if isinstance(node, (exp.And, exp.Or)):
            parts = [self._node(p) for p in node.flatten()]
            decisive = isinstance(node, exp.Or)  # OR stops at the first TRUE, AND at the first FALSE

            def logic(left, i):
                unknown = False
                for p in parts:
                    v = p(left, i)
                    if v is None:
                        unknown = True
                    elif bool(v) is decisive:
                        return decisive
                return None if unknown else not decisive
            return logic
        for kind, op in (*_COMPARE.items(), *_ARITHMETIC.items()):
            if isinstance(node, kind):
                a, b = self._node(node.this), self._node(node.expression)

                def binary(left, i, a=a, b=b, op=op):
                    x, y = a(left, i), b(left, i)
                    if x is None or y is None:
                        return None
                    try:
                        return op(x, y)
                    except (TypeError, ZeroDivisionError):
                        return None
                return binary
        if isinstance(node, (exp.Cast, exp.TryCast)):
            to = node.to.this
            if to not in (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT, exp.DataType.Type.DECIMAL):
                raise CompileError(f"cast to {to} is not supported")
            inner = self._node(node.this)
            return lambda left, i: None if (v := inner(left, i)) is None else _to_float(v)
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.key).lower()
            if name not in _FUNCTIONS:
                raise CompileError(f"function {name!r} is not supported")
            arity, fn = _FUNCTIONS[name]
            args = node.expressions if isinstance(node, exp.Anonymous) else \
                [a for a in (node.this, node.args.get("expression")) if a is not None]
            if len(args) != arity:
                raise CompileError(f"{name} takes {arity} argument(s)")
            compiled = [self._node(a) for a in args]

            def call(left, i, fn=fn, compiled=compiled):
                values = [c(left, i) for c in compiled]
                return None if any(v is None for v in values) else fn(*values)
            return call
        raise CompileError(f"SQL construct {type(node).__name__} ({node.sql()!r}) is not supported")


# ---- the model: levels, weights ---------------------------------------------------------------------------------

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
                          if not lv.is_null and _is_exact_on(r["sql_condition"], level.tf_column, dialect)), None)
            if exact is None:
                raise CompileError(f"no exact-match level for the term frequencies of {level.tf_column}")
            m = [r for lv, r in zip(levels, raw, strict=True) if lv is exact][0]
            u = _probability(m.get("u_probability"), 0.0)
            level = dataclasses.replace(level, tf_log2_u=math.log2(u))
        out.append(level)
    return out


def _is_exact_on(sql: str, column: str, dialect: str) -> bool:
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return False
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if not isinstance(tree, exp.EQ) or not all(isinstance(x, exp.Column) for x in (tree.this, tree.expression)):
        return False
    return {tree.this.name.lower(), tree.expression.name.lower()} == {f"{column}_l".lower(), f"{column}_r".lower()}


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


# ---- the index ---------------------------------------------------------------------------------------------------

class RecordIndex:
    """The run's standardized records as column lists, with the term frequencies Splink would compute from them and
    one hash index per blocking rule that is a conjunction of equalities (l.c = r.c AND ...)."""

    def __init__(self, std: pd.DataFrame, match_ids: np.ndarray, tf_columns: Iterable[str],
                 max_block_size: int | None = None):
        self.max_block_size = max_block_size   # a key shared by more records pairs nothing (None: no cap)
        self.skipped_keys = 0                  # lookups of such a key (each logged once per rule)
        self._warned: set[tuple[str, ...]] = set()
        self.columns = [c for c in std.columns if c != "source_dataset"]
        self._cols: dict[str, list] = {c: [None if _missing(v) else v for v in std[c].tolist()] for c in self.columns}
        self._cols["unique_id"] = [str(v) for v in self._cols["unique_id"]]
        self.match_ids: list[int] = [int(m) for m in match_ids]
        self.row_of: dict[str, int] = {u: i for i, u in enumerate(self._cols["unique_id"])}
        self.tf: dict[str, dict[Any, float]] = {}
        for col in tf_columns:
            counts = std[col].dropna().value_counts()
            total = float(counts.sum()) or 1.0
            self.tf[col] = {k: float(v) / total for k, v in counts.items()}
        self.keys: list[tuple[str, ...]] = []
        self._hash: list[dict[tuple, list[int]]] = []
        self.scans: list[Callable] = []       # blocking rules that are not equalities: evaluated on every record
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.match_ids)

    def column(self, col: str) -> list:
        return self._cols[col]

    def record(self, i: int) -> dict[str, Any]:
        return {c: self._cols[c][i] for c in self.columns}

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({c: self._cols[c] for c in self.columns}).assign(source_dataset=SOURCE_DATASET)

    def add_rule(self, columns: tuple[str, ...]) -> None:
        table: dict[tuple, list[int]] = {}
        cols = [self._cols[c] for c in columns]
        for i in range(len(self)):
            key = tuple(c[i] for c in cols)
            if None not in key:
                table.setdefault(key, []).append(i)
        self.keys.append(columns)
        self._hash.append(table)

    def candidates(self, left: dict[str, Any]) -> list[int]:
        """Rows some blocking rule pairs `left` with, in row order. A key shared by more than `max_block_size`
        records is skipped: too common to discriminate (a shared phone, a placeholder), its pairs would drown
        Splink's blocking as they would the scorer, and a match's work stays bounded whatever was committed."""
        found: set[int] = set()
        cap = self.max_block_size
        for columns, table in zip(self.keys, self._hash, strict=True):
            key = tuple(left.get(c) for c in columns)
            if None not in key:
                rows = table.get(key, ())
                if cap is not None and len(rows) > cap:
                    self._skipped(columns, len(rows))
                    continue
                found.update(rows)
        for rule in self.scans:
            found.update(i for i in range(len(self)) if rule(left, i) is True)
        return sorted(found)

    def _skipped(self, columns: tuple[str, ...], size: int) -> None:
        self.skipped_keys += 1
        if columns not in self._warned:   # the rule and the size only: a key's value is personal data
            self._warned.add(columns)
            log.warning("blocking rule on %s: a key shared by %d records (more than %d) pairs nothing in real time",
                        ", ".join(columns), size, self.max_block_size)

    def add(self, std: dict[str, Any], match_id: int) -> int:
        """Index one more record (committed in real time); returns its row."""
        with self._lock:
            i = len(self.match_ids)
            for c in self.columns:
                v = std.get(c)
                self._cols[c].append(None if _missing(v) else v)
            self.match_ids.append(int(match_id))
            self.row_of[str(std["unique_id"])] = i
            for columns, table in zip(self.keys, self._hash, strict=True):
                key = tuple(self._cols[c][i] for c in columns)
                if None not in key:
                    table.setdefault(key, []).append(i)
            return i


def equality_columns(sql: str, dialect: str) -> tuple[str, ...] | None:
    """The columns of a blocking rule `l.a = r.a AND l.b = r.b ...`; None for any other rule."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return None
    parts = tree.flatten() if isinstance(tree, exp.And) else [tree]
    cols = []
    for p in parts:
        while isinstance(p, exp.Paren):
            p = p.this
        if not (isinstance(p, exp.EQ) and isinstance(p.this, exp.Column) and isinstance(p.expression, exp.Column)):
            return None
        a, b = p.this, p.expression
        if {a.table, b.table} != {"l", "r"} or a.name != b.name:
            return None
        cols.append(a.name)
    return tuple(cols)


# ---- the matcher -------------------------------------------------------------------------------------------------

@dataclass
class MatchAnswer:
    """What one record matched: its match_id (None: no record at or above the threshold), the best pair's
    probability, candidate match_ids with their best probability, and why (no personal data)."""

    match_id: int | None
    match_probability: float
    candidates: list[tuple[int, float]]
    explanation: dict[str, Any]
    std: dict[str, Any]


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
        dialect = model.get("sql_dialect", "duckdb")
        compiler = ConditionCompiler(dialect, index.column, set(index.columns))
        for rule in model.get("blocking_rules_to_generate_predictions") or []:
            sql = rule["blocking_rule"] if isinstance(rule, dict) else str(rule)
            columns = equality_columns(sql, rule.get("sql_dialect", dialect) if isinstance(rule, dict) else dialect)
            if columns is not None and all(c in index.columns for c in columns):
                index.add_rule(columns)
            else:  # evaluated on every record: correct, but linear in the records
                index.scans.append(compiler.compile(sql))
        threshold = float(report["threshold"])
        chosen: Scorer
        if scorer in ("auto", "compiled"):
            try:
                chosen = CompiledScorer(model, index)
            except CompileError:
                if scorer == "compiled":
                    raise
                chosen = SplinkScorer(model, cfg, index)
        elif scorer == "splink":
            chosen = SplinkScorer(model, cfg, index)
        else:
            raise InputError(f"scorer: expected auto, compiled or splink (got {scorer!r})")
        return cls(cfg, model, threshold, index, chosen)

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
        for s in scored:
            mid = self.index.match_ids[s.row]
            best_by_match[mid] = max(best_by_match.get(mid, 0.0), s.probability)
            if s.probability >= self.threshold and not self._guarded(s) and (
                    linked is None or s.probability > linked.probability):
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
        return MatchAnswer(match_id=self.index.match_ids[linked.row] if linked else None,
                           match_probability=shown.probability if shown else 0.0,
                           candidates=ranked, explanation=explanation, std=std)

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
        """The households rule of the nightly (match.relatives_guard): clearly different first names veto a link."""
        level = s.levels.get("first_name")
        return bool(self.guard and level is not None and level[0].value == 0)

    def add(self, std: dict[str, Any], match_id: int) -> None:
        """Index a committed record under `match_id` (it can be matched from now on)."""
        self.index.add(std, match_id)
        self.max_match_id = max(self.max_match_id, int(match_id))

    def knows(self, record_id: str) -> bool:
        return str(record_id) in self.index.row_of
