"""Batch recommendations files: USER_ID,ITEM_ID,RANK,SCORE for all (or given) users, and
SESSION_ID,ITEM_ID,RANK,SCORE for trips so far (`--sessions`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from c360.errors import InputError
from c360.io import (
    CSV_DELIMITER,
    CSV_QUOTE,
    SPARK_CSV_OPTIONS,
    atomic_path,
    csv_header,
    csv_parts,
    read_table,
    require_columns,
    spark_write,
    table_kind,
    write_table,
)

from .base import topk
from .trips import Session, score_sessions

SESSION_COLUMNS = ["SESSION_ID", "ITEM_ID", "TIMESTAMP"]      # plus USER_ID, optional
SESSION_REC_COLUMNS = ["SESSION_ID", "ITEM_ID", "RANK", "SCORE"]
REC_COLUMNS = ["USER_ID", "ITEM_ID", "RANK", "SCORE"]
# recs.csv's schema, as DuckDB and Spark (DDL) both spell the types; with c360.io's CSV dialect, what every reader of
# the file states instead of detecting it
REC_TYPES = {"USER_ID": "STRING", "ITEM_ID": "STRING", "RANK": "BIGINT", "SCORE": "DOUBLE"}
REC_SPARK_SCHEMA = ", ".join(f"{c} {t}" for c, t in REC_TYPES.items())
CHUNK_USERS = 50_000     # users per batch the driver scores and appends to recs.csv (a few MB of rows at k=20)


def recommend_all(model, user_ids: list[str] | None = None, k: int = 20, identities=None) -> pd.DataFrame:
    """Top-k for every user of the model (or the given ones); an unknown account whose person the model knows
    (`identities`, `recsys.identities.recommend_linked`) from its person's history, other unknown users
    context-free popular items."""
    users = list(model.user_ids) if user_ids is None else [str(u) for u in user_ids]
    recs = model.recommend(users, k=k)
    unknown = [u for u in dict.fromkeys(users) if u not in model.user_index]
    if unknown and identities is not None:
        from .identities import recommend_linked

        linked, answered = recommend_linked(model, identities, unknown, k)
        recs, answered = pd.concat([recs, linked], ignore_index=True), set(answered)
        unknown = [u for u in unknown if u not in answered]
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


def write_recs(model, path: str | Path, user_ids: list[str] | None = None, k: int = 20,
               chunk_users: int = CHUNK_USERS, identities=None) -> Path:
    """Write recs.csv (USER_ID,ITEM_ID,RANK,SCORE) atomically. For all users of a Spark model trained in this
    process, Spark ranks and writes them: `path` is then a directory of CSV part files, each with the header
    (`c360.io.read_table` reads both). Otherwise the driver writes one file, `chunk_users` users at a time.
    `identities` (the model's, `recsys.identities`): given accounts the model has no row for are answered from
    their person's history."""
    if user_ids is None:
        frame = model.spark_recommendations(k)
        if frame is not None:
            return spark_write(frame.select(*REC_COLUMNS), path, "csv", **SPARK_CSV_OPTIONS)
    users = list(model.user_ids) if user_ids is None else [str(u) for u in user_ids]
    path = Path(path)
    if not path.name.lower().endswith(".csv"):       # Parquet or compressed CSV: one frame, written by extension
        return write_table(recommend_all(model, users, k, identities), path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as out:
            out.write(",".join(REC_COLUMNS) + "\n")
            for start in range(0, len(users), chunk_users):
                recommend_all(model, users[start:start + chunk_users], k, identities).to_csv(
                    out, header=False, index=False, sep=CSV_DELIMITER, quotechar=CSV_QUOTE, doublequote=True)
    return path


def recs_csv_parts(path: str | Path) -> list[Path]:
    """The CSV files of recs (a file or a directory of Spark parts), each checked to start with the header
    REC_COLUMNS (an empty part has none); InputError naming the file and the columns otherwise."""
    parts = csv_parts(path)
    for part in parts:
        header = csv_header(part) if part.stat().st_size else REC_COLUMNS
        if header != REC_COLUMNS:
            missing = [c for c in REC_COLUMNS if c not in header]
            detail = f"missing column(s) {', '.join(missing)}" if missing else "columns in another order, or extra ones"
            raise InputError(f"{part}: {detail} (found: {', '.join(header)}; expected: {', '.join(REC_COLUMNS)})")
    return parts


def read_recs(path: str | Path) -> pd.DataFrame:
    """A recs file (CSV file, directory of CSV parts, or Parquet) into pandas with REC_TYPES (a CSV's header
    checked: InputError naming the file and the columns)."""
    if table_kind(path) == "csv":
        recs_csv_parts(path)
    df = read_table(path, dtype={"USER_ID": str, "ITEM_ID": str}, keep_default_na=False)
    require_columns(df, REC_COLUMNS, str(path))
    return df.astype({"USER_ID": str, "ITEM_ID": str, "RANK": "int64", "SCORE": "float64"})


def recs_counts(path: str | Path) -> dict[str, int]:
    """Rows and users of a recs file (CSV file, directory of CSV parts, or Parquet), streaming only the RANK column
    (every user with recommendations has exactly one rank 1)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    rows = users = 0
    if table_kind(path) == "parquet":
        batches = pq.ParquetFile(path).iter_batches(columns=["RANK"]) if Path(path).is_file() else \
            (b for f in sorted(Path(path).glob("*.parquet")) for b in pq.ParquetFile(f).iter_batches(columns=["RANK"]))
    else:
        arrow = {"STRING": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}
        read = pv.ReadOptions(column_names=REC_COLUMNS, skip_rows=1)
        parse = pv.ParseOptions(delimiter=CSV_DELIMITER, quote_char=CSV_QUOTE, double_quote=True, escape_char=False,
                                newlines_in_values=True)
        convert = pv.ConvertOptions(column_types={c: arrow[t] for c, t in REC_TYPES.items()}, include_columns=["RANK"])
        batches = (b for part in recs_csv_parts(path) if part.stat().st_size
                   for b in pv.open_csv(part, read_options=read, parse_options=parse, convert_options=convert))
    for batch in batches:
        rank = batch.column(0)
        rows += len(rank)
        users += int(pc.sum(pc.equal(rank, 1)).as_py() or 0)
    return {"rows": rows, "users": users}


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
