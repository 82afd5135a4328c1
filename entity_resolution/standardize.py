"""Read and validate match inputs, then standardize role columns (unparseable values become missing, counted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from c360.entity_resolution.names import NICKNAMES
from c360.entity_resolution.roles import RolesConfig
from c360.errors import InputError
from c360.io import read_table, require_columns

_CANON = {v.lower(): k.lower() for k, v in NICKNAMES.items()}


def read_input(path: str | Path, cfg: RolesConfig) -> pd.DataFrame:
    """Read one input; missing role/id columns, duplicate ids or no rows raise InputError naming the file."""
    df = read_table(path)
    require_columns(df, [cfg.id, *cfg.roles.values()], str(path))
    if len(df) == 0:
        raise InputError(f"{path}: table has no rows")
    dup = df[cfg.id][df[cfg.id].duplicated()].astype(str).unique()[:5]
    if len(dup):
        raise InputError(f"{path}: duplicate values in id column {cfg.id}: {', '.join(dup)}")
    if df[cfg.id].isna().any():
        raise InputError(f"{path}: id column {cfg.id} has missing values")
    return df


def _clean_text(s: pd.Series) -> pd.Series:
    out = s.astype("string").str.strip().str.lower().str.replace(r"\s+", " ", regex=True)
    return out.where(out != "", None)


def standardize(df: pd.DataFrame, cfg: RolesConfig, source_dataset: str) -> tuple[pd.DataFrame, dict]:
    """Return (Splink-ready frame with role columns, {column: unparseable count})."""
    r = cfg.roles
    out = pd.DataFrame({"unique_id": df[cfg.id].astype(str), "source_dataset": source_dataset})
    bad: dict[str, int] = {}
    for role in ("first_name", "last_name", "address", "city", "state", "email", "company"):
        if role in r:
            out[role] = _clean_text(df[r[role]]).astype(object).where(lambda s: s.notna(), None)
    if "first_name" in r:
        out["first_name_canon"] = out["first_name"].map(lambda v: _CANON.get(v, v) if isinstance(v, str) else None)
    if "street_number" in r:
        out["street_number"] = _clean_text(df[r["street_number"]]).astype(object)
    if "date_of_birth" in r:
        raw = df[r["date_of_birth"]]
        s = raw.astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
        d = pd.to_datetime(s, format=cfg.date_format, errors="coerce")
        bad[r["date_of_birth"]] = int((raw.notna() & (s != "") & d.isna()).sum())
        out["date_of_birth"] = d.dt.strftime("%Y-%m-%d").astype(object).where(d.notna(), None)
        swapped = d.dt.strftime("%Y-%d-%m").where(d.notna() & (d.dt.day <= 12), None)
        out["dob_swapped"] = swapped.astype(object).where(swapped.notna(), None)
    for role, digits in (("ssn", 9), ("home_phone", 10), ("zip", 5)):
        if role not in r:
            continue
        raw = df[r[role]]
        s = raw.astype("string").str.strip()
        if role == "zip":
            s = s.str.replace(r"\.0$", "", regex=True).str.zfill(5).str[:5]
        ok = s.str.fullmatch(r"[\d\-\s().+]+").fillna(False)
        dig = s.str.replace(r"\D", "", regex=True)
        if role == "home_phone":
            dig = dig.where(dig.str.len() != 11, dig.str[1:])
        valid = ok & (dig.str.len() == digits)
        bad[r[role]] = int((raw.notna() & (s != "") & ~valid).sum())
        out[role] = dig.astype(object).where(valid, None)
    if "ssn" in r:
        out["ssn7"] = out["ssn"].map(lambda v: v[:7] if isinstance(v, str) else None)
    for c in out.columns:
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out, {k: v for k, v in bad.items() if v}


def all_roles_missing(std: pd.DataFrame) -> np.ndarray:
    cols = [c for c in std.columns if c not in ("unique_id", "source_dataset")]
    return std[cols].isna().all(axis=1).to_numpy()
