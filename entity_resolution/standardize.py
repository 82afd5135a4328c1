"""Read and validate match inputs; standardize them in Python by the rules of `rules.py` (unparseable values become
missing, counted per column): one record (`standardize_record`, the online matcher's, ~0.05 ms) or a pandas frame
(`standardize`: the same operations over each column's distinct values, dates and numbers parsed a column at a
time). `standardize_sql` interprets the same rules as SQL.

Derived columns the comparisons and blocking use: `<name>_canon` (a name's nickname-free form), `<name>_swapped`
(a date with day and month exchanged), `<name>_head` (an identifier without its last two characters) and
`<name>_user` (an email's part before the @).
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from c360.entity_resolution import rules
from c360.entity_resolution.config import Field, MatchConfig
from c360.errors import InputError
from c360.io import read_table, require_columns

SOURCE_DATASET = "input0"   # what a single input is named (a published run's records and new ones)


def read_input(path: str | Path, cfg: MatchConfig) -> pd.DataFrame:
    """Read one input; missing configured columns, duplicate ids or no rows raise InputError naming the file."""
    df = read_table(path)
    require_columns(df, cfg.columns, str(path))
    if len(df) == 0:
        raise InputError(f"{path}: table has no rows")
    dup = df[cfg.id][df[cfg.id].duplicated()].astype(str).unique()[:5]
    if len(dup):
        raise InputError(f"{path}: duplicate values in id column {cfg.id}: {', '.join(dup)}")
    if df[cfg.id].isna().any():
        raise InputError(f"{path}: id column {cfg.id} has missing values")
    return df


def missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


# ---- the operations of rules.OPERATIONS in Python: each f(args) -> g(present value) -> value or None ---------------

_WS = re.compile(r"\s+")
_INT_DOT0 = re.compile(r"^(-?\d+)\.0$")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)


def _clean(s: str) -> str | None:
    return _INT_DOT0.sub(r"\1", _WS.sub(" ", s.strip().lower())) or None


def _fullmatch(pattern: str, group: int) -> Callable:
    rx = re.compile(pattern)
    return lambda s: m.group(group) if (m := rx.fullmatch(s)) else None


def _zfill_digits(width: int) -> Callable:
    digits = re.compile(rules.DIGITS)
    return lambda s: s.zfill(width) if digits.fullmatch(s) else s


def _parse_date(fmt: str) -> Callable:
    """pd.to_datetime(text, format=fmt, errors="coerce"); a plain ISO date within pandas' nanosecond range is built
    directly (pandas' scalar path costs ~0.3 ms, most of a request)."""
    def parse(s: str):
        m = _ISO.fullmatch(s) if fmt == "%Y-%m-%d" else None
        if m is not None and 1678 <= int(m.group(1)) <= 2261:
            try:
                return datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return None
        return _parse_dates([s], fmt)[0]
    return parse


def _parse_dates(texts: list[str], fmt: str) -> list:
    parsed = pd.to_datetime(pd.Series(texts, dtype="string"), format=fmt, errors="coerce")
    return [None if pd.isna(d) else d for d in parsed]


def _to_double(v: Any) -> float | None:
    return _to_doubles([v])[0]


def _to_doubles(values: list) -> list:
    x = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype("float64")
    return [None if math.isnan(v) else v for v in x.tolist()]


PYTHON: dict[str, Callable[..., Callable[[Any], Any]]] = {
    "clean": lambda: _clean,
    "strip": lambda: str.strip,
    "upper": lambda: str.upper,
    "remove": lambda pattern: (lambda s, rx=re.compile(pattern): rx.sub("", s)),
    "null_if_empty": lambda: (lambda s: s or None),
    "zfill_digits": _zfill_digits,
    "fullmatch": _fullmatch,
    "drop_last": lambda n, shortest: (lambda s: s[:-n] if len(s) >= shortest else None),
    "lookup": lambda table: (lambda s, t=rules.TABLES[table]: t.get(s, s)),
    "parse_date": _parse_date,
    "date_text": lambda fmt: (lambda d: d.strftime(fmt)),
    "day_at_most": lambda day: (lambda d: d if d.day <= day else None),
    "to_double": lambda: _to_double,
}
# the same on many values at once, where pandas does it faster (a frame's column)
PYTHON_MANY: dict[str, Callable[..., Callable[[list], list]]] = {
    "to_double": lambda: _to_doubles,
}


def _one(op: rules.Op) -> Callable[[Any], Any]:
    return PYTHON[op.name](*op.args)


def _many(op: rules.Op) -> Callable[[list], list]:
    if op.name in PYTHON_MANY:
        return PYTHON_MANY[op.name](*op.args)
    if op.name == "parse_date":
        one, fmt = _one(op), op.args[0]

        def dates(texts: list) -> list:  # the fast path per value, the rest in one pandas call
            out = [one(s) if fmt == "%Y-%m-%d" and _ISO.fullmatch(s) else s for s in texts]
            rest = [i for i, v in enumerate(out) if isinstance(v, str)]
            for i, d in zip(rest, _parse_dates([out[i] for i in rest], fmt) if rest else [], strict=True):
                out[i] = d
            return out
        return dates
    one = _one(op)
    return lambda values: [one(v) for v in values]


@lru_cache(maxsize=None)
def _compiled(f: Field, date_format: str, many: bool) -> tuple[list, list[tuple[str, list]], bool]:
    """(the steps, (output column, its operations) per output, whether the rule reads text) of a field's rule, as
    functions of one value (`many`: of a list of present values)."""
    rule = rules.field_rule(f, date_format)
    make = _many if many else _one
    return ([make(op) for op in rule.steps], [(f.name + suffix, [make(op) for op in ops]) for suffix, ops in rule.outputs],
            rule.text)


def _chain(v: Any, functions: list) -> Any:
    for fn in functions:
        if v is None:
            return None
        v = fn(v)
    return v


def standardize_record(record: dict[str, Any], cfg: MatchConfig) -> tuple[dict[str, Any], list[str]]:
    """(the record's standardized columns, as `standardize` makes them; the input columns whose present value could
    not be read). `record` maps input columns (cfg.columns) to values; absent columns are missing."""
    out: dict[str, Any] = {"unique_id": str(record.get(cfg.id)), "source_dataset": SOURCE_DATASET}
    bad: list[str] = []
    for f in cfg.fields:
        steps, outputs, text = _compiled(f, cfg.date_format, False)
        v = record.get(f.column)
        value = None if missing(v) else _chain(str(v) if text else v, steps)
        for name, functions in outputs:
            out[name] = _chain(value, functions)
        if out[f.name] is None and not missing(v) and str(v).strip() != "" and f.column not in bad:
            bad.append(f.column)
    return out, bad


def _column_of(values: list, functions: list) -> list:
    """`_chain` of every value, each operation applied to the list of values still present."""
    for fn in functions:
        present = [i for i, v in enumerate(values) if v is not None]
        done = fn([values[i] for i in present]) if present else []
        values = [None] * len(values)
        for i, v in zip(present, done, strict=True):
            values[i] = v
    return values


def standardize_field(raw: pd.Series, f: Field, cfg: MatchConfig) -> tuple[dict[str, np.ndarray], int]:
    """The standardized column(s) of one field (object arrays, None for missing) and how many present values could
    not be read. A text rule runs once per distinct text."""
    steps, outputs, text = _compiled(f, cfg.date_format, True)
    texts = [None if t is pd.NA else t for t in raw.astype("string").tolist()]
    if text:
        distinct = list(dict.fromkeys(t for t in texts if t is not None))
        row_of = {t: i for i, t in enumerate(distinct)}
        rows = [None if t is None else row_of[t] for t in texts]
        values = _column_of(distinct, steps)
    else:
        rows = list(range(len(texts)))
        values = _column_of([None if missing(v) else v for v in raw.tolist()], steps)
    cols = {}
    for name, functions in outputs:
        done = _column_of(values, functions)
        cols[name] = np.array([None if r is None else done[r] for r in rows], dtype=object)
    main = cols[f.name]
    bad = sum(1 for t, v in zip(texts, main, strict=True) if v is None and t is not None and t.strip() != "")
    return cols, bad


def standardize(df: pd.DataFrame, cfg: MatchConfig, source_dataset: str) -> tuple[pd.DataFrame, dict]:
    """Return (Splink-ready frame: unique_id, source_dataset, each field's columns; {column: unparseable count})."""
    out = {"unique_id": df[cfg.id].astype(str).to_numpy(), "source_dataset": source_dataset}
    bad: dict[str, int] = {}
    for f in cfg.fields:
        cols, n_bad = standardize_field(df[f.column], f, cfg)
        out.update(cols)
        if n_bad:
            bad[f.column] = bad.get(f.column, 0) + n_bad
    frame = pd.DataFrame(out, index=range(len(df)))
    for c in frame.columns:
        if frame[c].dtype == object:
            frame[c] = frame[c].where(frame[c].notna(), None)
    return frame, bad
