"""Standardization as SQL: the rules of `rules.py` interpreted as expressions of one engine's dialect (Spark SQL
or DuckDB), so the engine standardizes every row and the driver sees none.

`standardize_query(cfg, dialect, table, types, source_dataset)` is the SELECT of the standardized table (unique_id,
source_dataset, each field's columns); `present_counts` the aggregates counting the present raw values (with the
standardized columns' counts: the values each field could not read). The values are those of the Python
interpreter, `standardize` (tests/entity_resolution/test_engines_agree.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from c360.entity_resolution import rules
from c360.entity_resolution.config import Field, MatchConfig

# what `str.strip` and `\s+` collapse in the reference (the regex engines' `\s` differ: RE2 lacks \v)
_WS = r"[ \t\n\r\f\x0B]"
# strings pandas' CSV reader reads as missing (read_csv's default na_values): a CSV read as text maps them to NULL
PANDAS_NA = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
             "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
# pandas' datetime range: a date outside it is unreadable there, so here too
YEARS = (1678, 2261)
FLOAT_TYPES = ("float", "double", "real")


@dataclass(frozen=True)
class Dialect:
    """The few spellings Spark SQL and DuckDB disagree on."""

    name: str
    string: str           # the text type in CAST
    backref: str          # a regex replacement's group 1

    def lit(self, s: str) -> str:
        """A string literal (Spark reads backslash escapes in literals, DuckDB does not)."""
        if self.name == "spark":
            return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + s.replace("'", "''") + "'"

    def replace_all(self, x: str, pattern: str, repl: str) -> str:
        flags = ", 'g'" if self.name == "duckdb" else ""
        return f"regexp_replace({x}, {self.lit(pattern)}, {self.lit(repl)}{flags})"

    def full_match(self, x: str, pattern: str) -> str:
        rx = self.lit(f"^(?:{pattern})$")
        return f"regexp_like({x}, {rx})" if self.name == "spark" else f"regexp_matches({x}, {rx})"

    def extract(self, x: str, pattern: str, group: int) -> str:
        return f"regexp_extract({x}, {self.lit(f'^(?:{pattern})$')}, {group})"

    def to_date(self, x: str, fmt: str) -> str:
        if self.name == "spark":
            return f"to_date({x}, {self.lit(java_date_format(fmt))})"
        return f"CAST(try_strptime({x}, {self.lit(fmt)}) AS DATE)"

    def date_text(self, d: str, fmt: str) -> str:
        """A date as text in the strftime format `fmt` (one of _SPARK_TEXT's: Spark formats with its own letters)."""
        if self.name == "spark":
            return f"date_format({d}, {self.lit(_SPARK_TEXT[fmt])})"
        return f"strftime({d}, {self.lit(fmt)})"

    def to_double(self, x: str) -> str:
        return f"try_cast({x} AS DOUBLE)"


SPARK = Dialect("spark", "STRING", "$1")
DUCKDB = Dialect("duckdb", "VARCHAR", "\\1")

_SPARK_TEXT = {rules.ISO_DATE: "yyyy-MM-dd", rules.SWAPPED_DATE: "yyyy-dd-MM"}
_JAVA = {"Y": "yyyy", "y": "yy", "m": "M", "d": "d", "H": "H", "M": "m", "S": "s", "b": "MMM", "B": "MMMM",
         "j": "D", "f": "SSSSSS", "p": "a"}


def java_date_format(fmt: str) -> str:
    """A strftime format as Spark's datetime pattern. Months, days, hours... take one letter (1 or 2 digits, as
    strptime reads them) unless next to another directive (then a fixed 2 digits: `%Y%m%d` is yyyyMMdd; strptime
    would also read '1980015' there, Spark reads it as missing)."""
    out, i, literal = [], 0, []

    def flush():
        if literal:
            text = "".join(literal).replace("'", "''")
            out.append(text if re.fullmatch(r"[-/ .:,]*", text) else f"'{text}'")
            literal.clear()
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            d = fmt[i + 1]
            if d == "%":
                literal.append("%")
            else:
                flush()
                p = _JAVA.get(d)
                if p is None:
                    raise ValueError(f"date format {fmt!r}: %{d} has no Spark equivalent")
                adjacent = (i + 2 < len(fmt) and fmt[i + 2] == "%") or (i >= 2 and fmt[i - 2] == "%")
                out.append(p * 2 if len(p) == 1 and adjacent else p)
            i += 2
        else:
            literal.append(fmt[i])
            i += 1
    flush()
    return "".join(out)


def raw_text(col: str, dtype: str, dialect: Dialect, csv: bool) -> str:
    """An input column as the reference's text: floats holding integers without '.0' (as pandas prints them once
    clean_text drops it), NaN missing; from a CSV (read as text) pandas' missing-value strings are NULL."""
    q = quote(col, dialect)
    t = dtype.lower()
    if t.startswith(FLOAT_TYPES):
        return (f"CASE WHEN {q} IS NULL OR isnan({q}) THEN NULL "
                f"WHEN {q} = floor({q}) AND abs({q}) < 1e15 THEN CAST(CAST({q} AS BIGINT) AS {dialect.string}) "
                f"ELSE CAST({q} AS {dialect.string}) END")
    text = f"CAST({q} AS {dialect.string})"
    if csv:
        na = ", ".join(dialect.lit(s) for s in PANDAS_NA)
        return f"CASE WHEN {text} IN ({na}) THEN NULL ELSE {text} END"
    return text


def quote(col: str, d: Dialect) -> str:
    """A column name as a quoted identifier of the dialect."""
    q = "`" if d.name == "spark" else '"'
    return q + col.replace(q, q + q) + q


def clean_text(x: str, d: Dialect) -> str:
    """standardize.clean_text: trimmed, lower-case, single-spaced, an integer's '.0' dropped, '' missing."""
    v = f"trim(lower({d.replace_all(x, _WS + '+', ' ')}))"
    v = d.replace_all(v, r"^(-?\d+)\.0$", d.backref)
    return f"nullif({v}, '')"


def present(x: str, d: Dialect) -> str:
    """A raw text that is there: not missing, not blank."""
    return f"({x} IS NOT NULL AND {d.replace_all(x, _WS, '')} <> '')"


# ---- the operations of rules.OPERATIONS as SQL: each f(x, dialect, *args) -> expression(s) of the value x ----------
# (a list: expressions applied in turn). An expression that reads its value more than once reads it from a column
# of an earlier layer, so no expensive expression (a regex, a date parse) is evaluated twice.

def _lookup(x: str, d: Dialect, table: str) -> str:
    cases = " ".join(f"WHEN {d.lit(k)} THEN {d.lit(c)}" for k, c in sorted(rules.TABLES[table].items()) if k != c)
    return f"CASE {x} {cases} ELSE {x} END"


SQL = {
    "clean": clean_text,
    "strip": lambda x, d: d.replace_all(x, f"^{_WS}+|{_WS}+$", ""),
    "upper": lambda x, d: f"upper({x})",
    "remove": lambda x, d, pattern: d.replace_all(x, pattern, ""),
    "null_if_empty": lambda x, d: f"nullif({x}, '')",
    "zfill_digits": lambda x, d, width: (f"CASE WHEN {d.full_match(x, rules.DIGITS)} AND length({x}) < {width} "
                                         f"THEN lpad({x}, {width}, '0') ELSE {x} END"),
    "fullmatch": lambda x, d, pattern, group: f"CASE WHEN {d.full_match(x, pattern)} THEN {d.extract(x, pattern, group)} END",
    "drop_last": lambda x, d, n, shortest: f"CASE WHEN length({x}) >= {shortest} THEN substring({x}, 1, length({x}) - {n}) END",
    "lookup": _lookup,
    # pandas' datetime range: a date outside it is unreadable there, so here too
    "parse_date": lambda x, d, fmt: [d.to_date(x, fmt), f"CASE WHEN year({x}) BETWEEN {YEARS[0]} AND {YEARS[1]} THEN {x} END"],
    "date_text": lambda x, d, fmt: d.date_text(x, fmt),
    "day_at_most": lambda x, d, day: f"CASE WHEN dayofmonth({x}) <= {day} THEN {x} END",
    "to_double": lambda x, d: d.to_double(x),
}


def _r(k: int) -> str:
    """A reference to step k of the same field (filled in by `standardize_query`)."""
    return f"\x00{k}\x00"


_HOLE = "\x01"


@dataclass(frozen=True)
class Steps:
    """One field's standardization as steps: step k (from 1) is an expression of the field's earlier steps (`_r(j)`;
    step 0 is the raw text), evaluated in layer k. `outputs`: standardized column -> its step."""

    exprs: tuple[str, ...]
    outputs: dict


class _Builder:
    def __init__(self, d: Dialect):
        self.d, self.exprs = d, []

    def step(self, expr: str) -> str:
        """`expr` as the next step; a reference to it."""
        if re.fullmatch("\x00\\d+\x00", expr):
            return expr
        self.exprs.append(expr)
        return _r(len(self.exprs))

    def apply(self, x: str, ops: tuple[rules.Op, ...]) -> str:
        for op in ops:
            made = SQL[op.name](_HOLE, self.d, *op.args)
            for template in made if isinstance(made, list) else [made]:
                if template.count(_HOLE) > 1:
                    x = self.step(x)
                x = template.replace(_HOLE, x)
        return x


def field_steps(f: Field, cfg: MatchConfig, d: Dialect) -> Steps:
    """The steps of one field (see Steps): its rule (rules.field_rule) as SQL."""
    rule = rules.field_rule(f, cfg.date_format)
    b = _Builder(d)
    value = b.apply(_r(0), rule.steps)
    if len(rule.outputs) > 1:
        value = b.step(value)
    outputs = {f.name + suffix: int(b.step(b.apply(value, ops)).strip("\x00")) for suffix, ops in rule.outputs}
    return Steps(tuple(b.exprs), outputs)


def _step_name(i: int, k: int) -> str:
    return f"__f{i}_{k}"


def _fill(expr: str, i: int) -> str:
    return re.sub("\x00(\\d+)\x00", lambda m: _step_name(i, int(m.group(1))), expr)


def standardize_query(cfg: MatchConfig, d: Dialect, table: str, types: dict[str, str], source_dataset: str,
                      csv: bool = False) -> str:
    """The SELECT of the standardized table (unique_id, source_dataset, each field's columns) from the raw table
    `table` (`types`: its column -> type): one nested SELECT per step layer."""
    steps = [field_steps(f, cfg, d) for f in cfg.fields]
    base = [f"CAST({quote(cfg.id, d)} AS {d.string}) AS __uid"]
    base += [f"{raw_text(f.column, types[f.column], d, csv)} AS {_step_name(i, 0)}" for i, f in enumerate(cfg.fields)]
    sql = f"SELECT {', '.join(base)} FROM {table}"
    for layer in range(1, max(len(s.exprs) for s in steps) + 1):
        new = [f"{_fill(s.exprs[layer - 1], i)} AS {_step_name(i, layer)}"
               for i, s in enumerate(steps) if len(s.exprs) >= layer]
        sql = f"SELECT *, {', '.join(new)} FROM ({sql}) AS layer{layer}"
    out = ["__uid AS unique_id", f"{d.lit(source_dataset)} AS source_dataset"]
    out += [f"{_step_name(i, k)} AS {name}" for i, s in enumerate(steps) for name, k in s.outputs.items()]
    return f"SELECT {', '.join(out)} FROM ({sql}) AS steps"


def present_counts(cfg: MatchConfig, d: Dialect, types: dict[str, str], csv: bool = False) -> dict[str, str]:
    """Per input column a field reads: the aggregate counting its present raw values (with the standardized
    columns' non-missing counts this gives the values that could not be read, as `standardize` counts them)."""
    return {f.column: f"sum(CASE WHEN {present(raw_text(f.column, types[f.column], d, csv), d)} THEN 1 ELSE 0 END)"
            for f in cfg.fields}
