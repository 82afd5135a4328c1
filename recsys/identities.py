"""Identities: which app accounts (USER_ID) are one person, how surely, and histories shared between them.

A visitor may have several accounts. Entity resolution (`c360 er match`) puts the records of one person under one
`match_id`; an identities CSV (USER_ID, PERSON_ID, optional LINK_PROBABILITY) says the same by hand. Each account
then trains on its own history plus its person's other accounts' histories, each weighed by how sure the link is:

    w_ab = min(f(p_a), f(p_b)),   f(p) = W_MIN + (1 - W_MIN) * clip((logit(p) - logit(t)) / MARGIN, 0, 1)

where p is a record's link probability and t the threshold. A link at the threshold lends W_MIN of the other
history, one MARGIN nats of log-odds above it lends all of it, one below it merges nothing (weight 0); a link with
no probability (a CSV without the column, a match output without its pairs) weighs 1. The lower of the two ends
counts: one doubtful account neither floods nor is flooded by the person's other accounts.

Accounts absent from the identities are their own person. `share_histories` is a data transformation before
training, so every algorithm, unchanged, serves accounts from their person's history and never recommends an item
the person has under any account (they are nonzeros of the account's training row).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from c360.errors import InputError
from c360.io import atomic_path, csv_header, csv_parts, read_json_file, read_table, table_kind
from c360.layout import MatchOutput

from .interactions import InteractionsFile, parquet_files

# f's floor: the weight of a link exactly at the threshold (a doubtful merge lends a quarter of the other history)
W_MIN = 0.25
# f reaches 1 this many nats of log-odds above the threshold (t = 0.9: p = 0.998 and above count fully)
MARGIN = 4.0
# the threshold of an identities CSV with LINK_PROBABILITY (a match output's report gives its own)
DEFAULT_THRESHOLD = 0.5
log = logging.getLogger("c360.recsys.identities")
# the most accounts one person may have; a person of more is a bad match: its accounts stay apart
MAX_ACCOUNTS = 20
IDENTITIES_FILE = "identities.parquet"      # the identities a model trained with, in its directory
COLUMNS = ["USER_ID", "PERSON_ID", "LINK_PROBABILITY", "WEIGHT"]
META_KEY = b"c360.identities"               # Parquet metadata of a saved table: threshold, w_min, margin, source
PAIR_COLUMNS = ["unique_id_l", "unique_id_r", "match_probability"]
_EPS = 1e-12


def link_weight(p, threshold: float | None, w_min: float = W_MIN, margin: float = MARGIN) -> np.ndarray:
    """f(p) per record: 0 below the threshold, `w_min` at it, rising to 1 at `margin` nats of log-odds above it;
    1 where p is unknown (NaN) or there is no threshold."""
    p = np.asarray(p, dtype=np.float64)
    out = np.ones(p.shape)
    known = ~np.isnan(p)
    if threshold is None or not known.any():
        return out
    logit = lambda x: np.log(x) - np.log1p(-x)  # noqa: E731
    rise = (logit(np.clip(p[known], _EPS, 1 - _EPS)) - logit(min(max(threshold, _EPS), 1 - _EPS))) / margin
    weight = w_min + (1 - w_min) * np.clip(rise, 0.0, 1.0)
    out[known] = np.where(p[known] < threshold, 0.0, weight)
    return out


def _check_parameters(threshold: float | None, w_min: float, margin: float) -> None:
    if threshold is not None and not 0 <= threshold <= 1:
        raise InputError(f"identities: threshold must be in [0, 1] (got {threshold!r})")
    if not 0 <= w_min <= 1:
        raise InputError(f"identities: w_min must be in [0, 1] (got {w_min!r})")
    if not margin > 0:
        raise InputError(f"identities: margin must be > 0 nats (got {margin!r})")


@dataclasses.dataclass(frozen=True, eq=False)
class Identities:
    """Account -> person, with each account's link probability and weight f(p): `table` has COLUMNS, one row per
    account (LINK_PROBABILITY NaN when unknown; WEIGHT 0: below the threshold, its own person). Accounts not in
    the table are their own person."""

    table: pd.DataFrame
    threshold: float | None = None
    w_min: float = W_MIN
    margin: float = MARGIN
    source: str = ""

    def __len__(self) -> int:
        return len(self.table)

    @functools.cached_property
    def _linked(self) -> pd.DataFrame:
        return self.table.loc[self.table["WEIGHT"] > 0, ["USER_ID", "PERSON_ID", "WEIGHT"]]

    @functools.cached_property
    def _weight(self) -> dict[str, float]:
        return dict(zip(self._linked["USER_ID"], self._linked["WEIGHT"], strict=True))

    @functools.cached_property
    def _person(self) -> dict[str, str]:
        return dict(zip(self._linked["USER_ID"], self._linked["PERSON_ID"], strict=True))

    @functools.cached_property
    def _accounts(self) -> dict[str, list[str]]:
        return {p: sorted(g) for p, g in self._linked.groupby("PERSON_ID")["USER_ID"]}

    def person_of(self, account: str) -> str:
        """The person key of an account (the account itself when it is not linked)."""
        return self._person.get(str(account), str(account))

    def accounts_of(self, account: str) -> list[str]:
        """The accounts of the account's person, itself first (just itself when it is not linked)."""
        account = str(account)
        if account not in self._person:
            return [account]
        return [account, *(b for b in self._accounts[self._person[account]] if b != account)]

    def weights_for(self, account: str) -> dict[str, float]:
        """{b: w_ab} for every account b of the person (the account itself weighs 1): how much of b's history
        serves `account`."""
        account = str(account)
        w_a = self._weight.get(account, 1.0)
        return {b: 1.0 if b == account else min(w_a, self._weight[b]) for b in self.accounts_of(account)}

    @functools.cached_property
    def pairs(self) -> pd.DataFrame:
        """Every ordered pair of two linked accounts of one person: USER_ID (served), OTHER_ID (lending), WEIGHT."""
        linked = self._linked
        both = linked.merge(linked, on="PERSON_ID", suffixes=("", "_OTHER"))
        both = both[both["USER_ID"] != both["USER_ID_OTHER"]]
        return pd.DataFrame({"USER_ID": both["USER_ID"].to_numpy(), "OTHER_ID": both["USER_ID_OTHER"].to_numpy(),
                             "WEIGHT": np.minimum(both["WEIGHT"].to_numpy(), both["WEIGHT_OTHER"].to_numpy())})

    def summary(self) -> dict[str, int]:
        """Accounts read, accounts that share a person with another one, and those persons."""
        shared = self.pairs["USER_ID"]
        return {"accounts": len(self.table), "shared_accounts": int(shared.nunique()),
                "persons": int(self.table.loc[self.table["USER_ID"].isin(shared), "PERSON_ID"].nunique())}


def _identities(table: pd.DataFrame, threshold: float | None, w_min: float, margin: float,
                source: str) -> Identities:
    p = table["LINK_PROBABILITY"].astype("float64")
    weight = link_weight(p.to_numpy(), threshold, w_min, margin)
    table = pd.DataFrame({"USER_ID": table["USER_ID"].astype(str), "PERSON_ID": table["PERSON_ID"].astype(str),
                          "LINK_PROBABILITY": p.to_numpy(), "WEIGHT": weight})
    # a person of more than MAX_ACCOUNTS linked accounts is a bad match (a shared phone, a placeholder value): its
    # accounts stay apart, so sharing (n^2 pairs per person) and serving stay bounded
    linked = table["WEIGHT"] > 0
    sizes = table.loc[linked].groupby("PERSON_ID")["USER_ID"].transform("size")
    oversized = sizes.index[sizes > MAX_ACCOUNTS]
    if len(oversized):  # counts only: which accounts were merged is not for the log
        log.warning("%s: %d person(s) with more than %d accounts (a bad match): their %d accounts stay apart",
                    source or "identities", table.loc[oversized, "PERSON_ID"].nunique(), MAX_ACCOUNTS,
                    len(oversized))
        table.loc[oversized, "WEIGHT"] = 0.0
    return Identities(table.sort_values("USER_ID", ignore_index=True), threshold, w_min, margin, source)


# ---------------------------------------------------------------- reading


def read_identities(path: str | Path, user_ids: Iterable[str] | None = None, threshold: float | None = None,
                    w_min: float = W_MIN, margin: float = MARGIN) -> Identities:
    """Identities from an `er match` output (Parquet file, CSV or Spark directory: its id column, as its report
    names it, and match_id; link probabilities from the scored pairs beside it), an identities CSV or Parquet
    (USER_ID, PERSON_ID, optional LINK_PROBABILITY in [0, 1]), or a table `write_identities` saved.

    `user_ids`: the ids of a match output that are accounts (its other records, e.g. insurance policies, are
    ignored); an identities file lists accounts only and is read whole. `threshold`: the link probability below
    which nothing merges (default: the match report's; for an identities file DEFAULT_THRESHOLD).
    InputError naming the file and the column at fault."""
    path = MatchOutput.local(path).matched
    _check_parameters(threshold, w_min, margin)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    kind = table_kind(path)
    columns = _column_names(path, kind)
    if _saved_meta(path, kind) is not None:
        return load_identities(path)
    if {"USER_ID", "PERSON_ID"} & set(columns):
        missing = [c for c in ("USER_ID", "PERSON_ID") if c not in columns]
        if missing:
            raise InputError(f"{path}: missing column {missing[0]} (an identities file has USER_ID, PERSON_ID and "
                             f"optionally LINK_PROBABILITY; found: {', '.join(columns)})")
        t = DEFAULT_THRESHOLD if threshold is None and "LINK_PROBABILITY" in columns else threshold
        return _identities(_read_mapping(path, kind, columns), t, w_min, margin, str(path))
    wanted = None if user_ids is None else {str(u) for u in user_ids}
    return _read_match(path, kind, columns, wanted, threshold, w_min, margin)


def _column_names(path: Path, kind: str) -> list[str]:
    if kind == "csv":
        part = csv_parts(path)[0]
        if part.is_file() and part.stat().st_size == 0:
            raise InputError(f"{path}: file is empty")
        return csv_header(part)
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(parquet_files(path)[0]).names)
    except InputError:
        raise
    except Exception as exc:  # not Parquet
        raise InputError(f"{path}: cannot read parquet: {exc}") from exc


def _read_columns(path: Path, kind: str, columns: list[str], filters=None) -> pd.DataFrame:
    """Only `columns` of a table (ids as str in a CSV; an empty cell is NaN)."""
    if kind == "csv":
        df = read_table(path, dtype=str, keep_default_na=False, na_values=[""], usecols=columns)
        return df[columns]
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        tables = [pq.read_table(f, columns=columns, filters=filters) for f in parquet_files(path)]
        return pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except Exception as exc:
        raise InputError(f"{path}: cannot read parquet: {exc}") from exc


def _no_empty(df: pd.DataFrame, columns: list[str], path: Path) -> None:
    for col in columns:
        empty = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if empty.any():
            raise InputError(f"{path}: column {col} is empty in {int(empty.sum())} row(s)")


def _one_person_each(df: pd.DataFrame, id_col: str, person_col: str, path: Path) -> pd.DataFrame:
    """Rows deduplicated per id; InputError naming the column when an id has two persons."""
    persons = df.groupby(id_col)[person_col].nunique()
    if (persons > 1).any():
        bad = persons[persons > 1].index[0]
        two = sorted(df.loc[df[id_col] == bad, person_col].astype(str).unique())[:2]
        raise InputError(f"{path}: column {person_col}: {id_col} {bad!r} is mapped to two persons "
                         f"({two[0]!r} and {two[1]!r})")
    return df


def _read_mapping(path: Path, kind: str, columns: list[str]) -> pd.DataFrame:
    """USER_ID, PERSON_ID, LINK_PROBABILITY (NaN when the file has none) of an identities file."""
    has_p = "LINK_PROBABILITY" in columns
    df = _read_columns(path, kind, ["USER_ID", "PERSON_ID", *(["LINK_PROBABILITY"] if has_p else [])])
    if df.empty:
        raise InputError(f"{path}: no identity rows")
    _no_empty(df, ["USER_ID", "PERSON_ID", *(["LINK_PROBABILITY"] if has_p else [])], path)
    df = df.assign(USER_ID=df["USER_ID"].astype(str), PERSON_ID=df["PERSON_ID"].astype(str))
    _one_person_each(df, "USER_ID", "PERSON_ID", path)
    if has_p:
        p = pd.to_numeric(df["LINK_PROBABILITY"], errors="coerce")
        bad = p.isna() | (p < 0) | (p > 1)
        if bad.any():
            raise InputError(f"{path}: column LINK_PROBABILITY must be a probability in [0, 1] "
                             f"(found {df.loc[bad, 'LINK_PROBABILITY'].iloc[0]!r})")
        df = df.assign(LINK_PROBABILITY=p.astype("float64"))
    else:
        df = df.assign(LINK_PROBABILITY=np.nan)
    # an account listed twice (same person): its surest link
    return df.groupby(["USER_ID", "PERSON_ID"], as_index=False)["LINK_PROBABILITY"].max()


def _read_match(path: Path, kind: str, columns: list[str], wanted: set[str] | None, threshold: float | None,
                w_min: float, margin: float) -> Identities:
    """The accounts of an `er match` output: PERSON_ID = match_id, LINK_PROBABILITY from its scored pairs."""
    output = MatchOutput(path)
    report = read_json_file(output.report) if Path(output.report).is_file() else {}
    id_col = str(report.get("id", "id"))
    for col, why in ((id_col, "the record id" + (" its report names" if report else "")),
                     ("match_id", "an `er match` output, or USER_ID and PERSON_ID for an identities file")):
        if col not in columns:
            raise InputError(f"{path}: missing column {col} ({why}; found: {', '.join(columns)})")
    records = _read_columns(path, kind, [id_col, "match_id"])
    if records.empty:
        raise InputError(f"{path}: no rows")
    _no_empty(records, [id_col], path)
    records = records.assign(**{id_col: records[id_col].astype(str)})
    accounts = records if wanted is None else records[records[id_col].isin(wanted)]
    if wanted is not None and accounts.empty:
        raise InputError(f"{path}: column {id_col}: none of the {len(wanted)} accounts is a record of this match "
                         f"output")
    _no_empty(accounts, ["match_id"], path)
    accounts = _one_person_each(accounts, id_col, "match_id", path).drop_duplicates(id_col)
    table = pd.DataFrame({"USER_ID": accounts[id_col].to_numpy(), "PERSON_ID": _key(accounts["match_id"])})
    t = threshold if threshold is not None else report.get("threshold")
    t = None if t is None else float(t)
    pairs = Path(output.pairs)
    p = np.full(len(table), np.nan)
    if t is not None and pairs.exists():
        p = _link_probabilities(pairs, records.dropna(subset=["match_id"]), id_col, accounts, t,
                                report.get("threshold"))
    return _identities(table.assign(LINK_PROBABILITY=p), t, w_min, margin, str(path))


def _key(match_ids: pd.Series) -> np.ndarray:
    """match_id as a person key (an int64 without '.0')."""
    values = match_ids.to_numpy()
    if np.issubdtype(values.dtype, np.floating) and np.all(values == np.round(values)):
        values = values.astype(np.int64)
    return values.astype(str)


def _link_probabilities(pairs: Path, records: pd.DataFrame, id_col: str, accounts: pd.DataFrame, threshold: float,
                        report_threshold) -> np.ndarray:
    """Per account: the highest match_probability of a scored pair at or above the threshold joining it to another
    record of its cluster. An account in a cluster of several records with no such pair (a record committed in
    real time, a stricter `threshold` than the report's) gets the lower threshold (the floor, or below: no merge);
    an account alone in its cluster NaN (it shares nothing)."""
    kind = table_kind(pairs) if pairs.is_file() else "parquet"
    names = _column_names(pairs, kind)
    missing = [c for c in PAIR_COLUMNS if c not in names]
    if missing:
        raise InputError(f"{pairs}: missing column(s) {', '.join(missing)} (found: {', '.join(names)})")
    low = threshold if report_threshold is None else min(threshold, float(report_threshold))
    scored = _read_columns(pairs, kind, PAIR_COLUMNS, filters=[("match_probability", ">=", low)])
    scored = scored.assign(unique_id_l=scored["unique_id_l"].astype(str), unique_id_r=scored["unique_id_r"].astype(str))
    ids = set(accounts[id_col])
    scored = scored[scored["unique_id_l"].isin(ids) | scored["unique_id_r"].isin(ids)]
    cluster = records[[id_col, "match_id"]].drop_duplicates()
    for side in ("l", "r"):
        scored = scored.merge(cluster.rename(columns={id_col: f"unique_id_{side}", "match_id": f"m_{side}"}),
                              on=f"unique_id_{side}")
    scored = scored[scored["m_l"] == scored["m_r"]]
    ends = pd.concat([scored[[f"unique_id_{s}", "match_probability"]].set_axis(["ID", "P"], axis=1)
                      for s in ("l", "r")], ignore_index=True)
    best = ends.groupby("ID")["P"].max()
    p = accounts[id_col].map(best).to_numpy(dtype=np.float64)
    crowded = (accounts["match_id"].map(records.groupby("match_id").size()) > 1).to_numpy() & np.isnan(p)
    p[crowded] = low
    return p


# ---------------------------------------------------------------- the table a model keeps


def _saved_meta(path: Path, kind: str) -> dict | None:
    if kind != "parquet":
        return None
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(parquet_files(path)[0]).metadata or {}
    except Exception:
        return None
    return json.loads(meta[META_KEY]) if META_KEY in meta else None


def write_identities(identities: Identities, path: str | Path) -> Path:
    """Save the identities as one Parquet file (COLUMNS; threshold, w_min, margin and source in its metadata),
    atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(identities.table[COLUMNS], preserve_index=False)
    meta = {"threshold": identities.threshold, "w_min": identities.w_min, "margin": identities.margin,
            "source": identities.source}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def load_identities(path: str | Path) -> Identities:
    """The identities `write_identities` saved (weights as they were computed)."""
    import pyarrow.parquet as pq

    path = Path(path)
    meta = _saved_meta(path, "parquet") if path.exists() else None
    if meta is None:
        raise InputError(f"{path}: not a saved identities table (no {META_KEY.decode()} metadata)")
    table = pq.read_table(path, columns=COLUMNS).to_pandas()
    return Identities(table.astype({"USER_ID": str, "PERSON_ID": str, "LINK_PROBABILITY": "float64",
                                    "WEIGHT": "float64"}),
                      meta.get("threshold"), meta.get("w_min", W_MIN), meta.get("margin", MARGIN),
                      meta.get("source", ""))


def model_identities(model_dir: str | Path) -> Identities | None:
    """The identities a saved model trained with (None when it trained without)."""
    path = Path(model_dir) / IDENTITIES_FILE
    return load_identities(path) if path.is_file() else None


# ---------------------------------------------------------------- sharing histories


def share_histories(interactions: pd.DataFrame | InteractionsFile, identities: Identities) -> pd.DataFrame:
    """Aggregated interactions (USER_ID, ITEM_ID, EVENT_VALUE, optional TIMESTAMP) where every linked account's
    rows are its own history plus w_ab x each other account b's history of its person (values summed per item,
    TIMESTAMP the earliest). A linked account with no interactions gets its person's; other accounts are
    unchanged. Vectorized: two merges and one groupby over the linked accounts' rows."""
    df = interactions.to_frame() if isinstance(interactions, InteractionsFile) else interactions
    missing = [c for c in ("USER_ID", "ITEM_ID") if c not in df.columns]
    if missing:
        raise InputError(f"interactions: missing column(s) {', '.join(missing)} (found: {', '.join(df.columns)})")
    cols = ["USER_ID", "ITEM_ID", "EVENT_VALUE", *(["TIMESTAMP"] if "TIMESTAMP" in df.columns else [])]
    values = pd.to_numeric(df["EVENT_VALUE"], errors="coerce") if "EVENT_VALUE" in df.columns else 1.0
    if isinstance(values, pd.Series) and values.isna().any():
        raise InputError("interactions: column EVENT_VALUE must be numeric")
    df = df.assign(USER_ID=df["USER_ID"].astype(str), ITEM_ID=df["ITEM_ID"].astype(str),
                   EVENT_VALUE=values)[cols].astype({"EVENT_VALUE": "float64"})
    pairs = identities.pairs
    if pairs.empty:
        return df.sort_values(["USER_ID", "ITEM_ID"], ignore_index=True)
    linked = df["USER_ID"].isin(pairs["OTHER_ID"].unique())
    own = df[linked]
    lent = own.rename(columns={"USER_ID": "OTHER_ID"}).merge(pairs, on="OTHER_ID")
    lent = lent.assign(EVENT_VALUE=lent["EVENT_VALUE"] * lent["WEIGHT"])[cols]
    agg = {"EVENT_VALUE": ("EVENT_VALUE", "sum"), **({"TIMESTAMP": ("TIMESTAMP", "min")} if "TIMESTAMP" in cols
                                                     else {})}
    shared = pd.concat([own, lent], ignore_index=True).groupby(["USER_ID", "ITEM_ID"], as_index=False,
                                                               sort=False).agg(**agg)
    out = pd.concat([df[~linked], shared], ignore_index=True)
    return out.sort_values(["USER_ID", "ITEM_ID"], ignore_index=True)


# ---------------------------------------------------------------- serving


def recommend_linked(model, identities: Identities, users: Iterable[str],
                     k: int = 20) -> tuple[pd.DataFrame, list[str]]:
    """Top-k (USER_ID, ITEM_ID, RANK, SCORE) for the accounts the model has no row for whose person's other accounts
    have rows: their rows' w_ab-weighted mean (each row already the person's shared history) as fresh interactions,
    every item of them excluded. Returns (the rows, the accounts answered); the others are strangers."""
    import scipy.sparse as sp

    index = model.user_index
    item_ids = np.asarray(model.item_ids, dtype=object)
    frames, answered = [], []
    for user in dict.fromkeys(map(str, users)):
        if user in index:
            continue
        weights = {b: w for b, w in identities.weights_for(user).items() if b != user and b in index and w > 0}
        if not weights:
            continue
        w = np.fromiter(weights.values(), dtype=np.float64)
        history = (sp.csr_matrix(w / w.sum()) @ model.matrix[[index[b] for b in weights]]).tocsr()
        history.eliminate_zeros()
        items = dict(zip(item_ids[history.indices], history.data.astype(np.float64).tolist(), strict=True))
        frames.append(model.recommend_from_interactions(items, k).assign(USER_ID=user))
        answered.append(user)
    if not frames:
        return pd.DataFrame({"USER_ID": pd.Series(dtype=str), "ITEM_ID": pd.Series(dtype=str),
                             "RANK": pd.Series(dtype="int64"), "SCORE": pd.Series(dtype="float64")}), []
    return pd.concat(frames, ignore_index=True)[["USER_ID", "ITEM_ID", "RANK", "SCORE"]], answered
