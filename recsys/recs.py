"""Batch recommendations files: USER_ID,ITEM_ID,RANK,SCORE for all (or given) users, and
SESSION_ID,ITEM_ID,RANK,SCORE for trips so far (`--sessions`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from c360.errors import InputError
from c360.io import read_table, require_columns, write_table

from .base import topk
from .sessions import Session, score_sessions

SESSION_COLUMNS = ["SESSION_ID", "ITEM_ID", "TIMESTAMP"]      # plus USER_ID, optional
SESSION_REC_COLUMNS = ["SESSION_ID", "ITEM_ID", "RANK", "SCORE"]


def recommend_all(model, user_ids: list[str] | None = None, k: int = 20) -> pd.DataFrame:
    """Top-k for every user of the model (or the given ones); unknown users get context-free popular items."""
    users = list(model.user_ids) if user_ids is None else [str(u) for u in user_ids]
    recs = model.recommend(users, k=k)
    unknown = [u for u in dict.fromkeys(users) if u not in model.user_index]
    if unknown:
        popular = model.popular_items(k)
        cold = pd.concat([popular.assign(USER_ID=u) for u in unknown], ignore_index=True)
        recs = pd.concat([recs, cold[["USER_ID", "ITEM_ID", "RANK", "SCORE"]]], ignore_index=True)
    return recs[["USER_ID", "ITEM_ID", "RANK", "SCORE"]]


def read_users(path: str | Path) -> list[str]:
    """A users file with one USER_ID column."""
    df = read_table(path, dtype={"USER_ID": str})
    require_columns(df, ["USER_ID"], str(path))
    return df["USER_ID"].astype(str).tolist()


def write_recs(model, path: str | Path, user_ids: list[str] | None = None, k: int = 20) -> Path:
    """Write recs.csv (USER_ID,ITEM_ID,RANK,SCORE) atomically."""
    return write_table(recommend_all(model, user_ids, k), path)


def read_sessions(path: str | Path, model) -> list[Session]:
    """The trips so far of a sessions file (SESSION_ID, ITEM_ID, TIMESTAMP, optional USER_ID), in file order; each
    trip's attractions in time order, once each. InputError naming the file and the column or item at fault."""
    df = read_table(path, dtype={"SESSION_ID": str, "ITEM_ID": str, "USER_ID": str})
    require_columns(df, SESSION_COLUMNS, str(path))
    if df.empty:
        raise InputError(f"{path}: no session rows")
    for col in ("SESSION_ID", "ITEM_ID", "TIMESTAMP"):
        if df[col].isna().any():
            raise InputError(f"{path}: column {col} is empty in {int(df[col].isna().sum())} row(s)")
    ts = pd.to_numeric(df["TIMESTAMP"], errors="coerce")
    if ts.isna().any() or not np.all(np.isfinite(ts)):
        bad = df.loc[ts.isna() | ~np.isfinite(ts.fillna(np.inf)), "TIMESTAMP"].iloc[0]
        raise InputError(f"{path}: column TIMESTAMP must be epoch seconds (found {bad!r})")
    df = df.assign(TIMESTAMP=ts.astype("int64"), SESSION_ID=df["SESSION_ID"].astype(str),
                   ITEM_ID=df["ITEM_ID"].astype(str))
    unknown = df.loc[~df["ITEM_ID"].isin(model.item_index)]
    if len(unknown):
        examples = ", ".join(f"{r.ITEM_ID!r} (SESSION_ID {r.SESSION_ID!r})"
                             for r in unknown.drop_duplicates("ITEM_ID").head(3).itertuples())
        raise InputError(f"{path}: column ITEM_ID has {unknown['ITEM_ID'].nunique()} item(s) the model does not know: "
                         f"{examples}")
    has_user = "USER_ID" in df.columns
    if has_user:
        users = df.dropna(subset=["USER_ID"]).groupby("SESSION_ID")["USER_ID"].nunique()
        if (users > 1).any():
            raise InputError(f"{path}: column USER_ID: SESSION_ID {users[users > 1].index[0]!r} has several users")
    out = []
    for sid, g in df.sort_values("TIMESTAMP", kind="stable").groupby("SESSION_ID", sort=False):
        first = g.drop_duplicates("ITEM_ID")
        user = g["USER_ID"].dropna() if has_user else pd.Series(dtype=str)
        out.append(Session(tuple(first["ITEM_ID"]), tuple(int(t) for t in first["TIMESTAMP"]),
                           str(user.iloc[0]) if len(user) else None, str(sid)))
    order = {sid: i for i, sid in enumerate(dict.fromkeys(df["SESSION_ID"]))}
    return sorted(out, key=lambda s: order[s.session_id])


def recommend_sessions(model, sessions: list[Session], k: int = 20) -> pd.DataFrame:
    """Top-k next attractions per session: SESSION_ID, ITEM_ID, RANK (from 1), SCORE; only attractions of the
    session's park, never one already in the session (`sessions.score_sessions`)."""
    frames = []
    item_ids = np.array(model.item_ids, dtype=object)
    for start in range(0, len(sessions), 2048):
        batch = sessions[start:start + 2048]
        idx, vals = topk(score_sessions(model, batch), k)
        frame = pd.DataFrame({"SESSION_ID": np.repeat([s.session_id for s in batch], idx.shape[1]),
                              "ITEM_ID": item_ids[idx.ravel()],
                              "RANK": np.tile(np.arange(1, idx.shape[1] + 1), len(batch)), "SCORE": vals.ravel()})
        frames.append(frame[np.isfinite(frame["SCORE"])])
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(SESSION_REC_COLUMNS, (str, str, "int64", "float64"),
                                                                    strict=True)})
    return pd.concat(frames, ignore_index=True)[SESSION_REC_COLUMNS]


def write_session_recs(model, sessions_path: str | Path, path: str | Path, k: int = 20) -> Path:
    """Write SESSION_ID,ITEM_ID,RANK,SCORE for the trips of `sessions_path` atomically."""
    return write_table(recommend_sessions(model, read_sessions(sessions_path, model), k), path)
