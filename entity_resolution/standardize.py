"""Read and validate match inputs, then standardize each configured field by its type (unparseable values become
missing, counted per column).

Derived columns the comparisons and blocking use: `<name>_canon` (a name's nickname-free form), `<name>_swapped`
(a date with day and month exchanged), `<name>_head` (an identifier without its last two characters) and
`<name>_user` (an email's part before the @).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from c360.entity_resolution.config import Field, MatchConfig
from c360.entity_resolution.names import NICKNAMES
from c360.errors import InputError
from c360.io import read_table, require_columns

_CANON = {v.lower(): k.lower() for k, v in NICKNAMES.items()}
SEPARATORS = r"[\s\-().+/_]"


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


def clean_text(s: pd.Series) -> pd.Series:
    """Trimmed, lower-case, single-spaced text; a float's '.0' from a numeric CSV column removed; '' is missing."""
    out = s.astype("string").str.strip().str.lower().str.replace(r"\s+", " ", regex=True)
    out = out.str.replace(r"^(-?\d+)\.0$", r"\1", regex=True)
    return out.where(out != "", None)


def _formatted(s: pd.Series, f: Field, digits_only: bool) -> pd.Series:
    """Identifier-like values: separators removed (phones: every non-digit), zero-padded, checked against the
    field's pattern (the value or its group 1 is kept; anything else is missing)."""
    v = clean_text(s).str.upper()
    v = v.str.replace(r"\D" if digits_only else SEPARATORS, "", regex=True)
    v = v.where(v != "", None)
    if f.pad:
        v = v.where(~v.str.fullmatch(r"\d+").fillna(False), v.str.zfill(f.pad))
    if f.pattern:
        rx = re.compile(f.pattern)
        group = 1 if rx.groups else 0
        v = v.map(lambda x: (m.group(group) if (m := rx.fullmatch(x)) else None) if isinstance(x, str) else None)
    return v.astype("string")


def _date(s: pd.Series, fmt: str) -> pd.Series:
    raw = s.astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
    return pd.to_datetime(raw, format=fmt, errors="coerce")


def standardize_field(df: pd.DataFrame, f: Field, cfg: MatchConfig) -> tuple[dict[str, pd.Series], int]:
    """The standardized column(s) of one field and how many present values could not be read."""
    raw = df[f.column]
    present = raw.notna() & (raw.astype("string").str.strip() != "").fillna(False)
    cols: dict[str, pd.Series] = {}
    if f.type == "date":
        d = _date(raw, f.date_format or cfg.date_format)
        cols[f.name] = d.dt.strftime("%Y-%m-%d").where(d.notna(), None)
        cols[f"{f.name}_swapped"] = d.dt.strftime("%Y-%d-%m").where(d.notna() & (d.dt.day <= 12), None)
    elif f.type in ("identifier", "postcode", "phone"):
        v = _formatted(raw, f, digits_only=f.type == "phone")
        cols[f.name] = v
        if f.type == "identifier":
            cols[f"{f.name}_head"] = v.where(v.str.len() >= 5).str[:-2]
    elif f.type == "email":
        v = clean_text(raw).str.replace(" ", "", regex=False)
        v = v.where(v.str.fullmatch(r"[^@]+@[^@]+").fillna(False))
        cols[f.name] = v
        cols[f"{f.name}_user"] = v.str.split("@").str[0]
    elif f.type == "numeric":
        cols[f.name] = pd.to_numeric(raw, errors="coerce").astype("float64")
    else:  # name, fuzzy, exact
        v = clean_text(raw)
        cols[f.name] = v
        if f.type == "name" and f.nicknames:
            cols[f"{f.name}_canon"] = v.map(lambda x: _CANON.get(x, x) if isinstance(x, str) else None)
    bad = int((present & cols[f.name].isna()).sum())
    return cols, bad


def standardize(df: pd.DataFrame, cfg: MatchConfig, source_dataset: str) -> tuple[pd.DataFrame, dict]:
    """Return (Splink-ready frame: unique_id, source_dataset, each field's columns; {column: unparseable count})."""
    out = {"unique_id": df[cfg.id].astype(str).to_numpy(), "source_dataset": source_dataset}
    bad: dict[str, int] = {}
    for f in cfg.fields:
        cols, n_bad = standardize_field(df, f, cfg)
        out.update({k: v.astype(object).to_numpy() for k, v in cols.items()})
        if n_bad:
            bad[f.column] = bad.get(f.column, 0) + n_bad
    frame = pd.DataFrame(out, index=range(len(df)))
    for c in frame.columns:
        if frame[c].dtype == object:
            frame[c] = frame[c].where(frame[c].notna(), None)
    return frame, bad
