"""Trips (sessions) in the visit data, and the time-ordered protocols that evaluate recommenders on them.

A trip is one visit to a park: its SESSION_ID where the data has one (the shipped visits' seqID, a Personalize
SESSION_ID column), else cut where one user's consecutive events are more than `gap_minutes` apart (480 by
default: the shipped seqIDs are cut at 8 hours). Inside a trip an attraction counts once, at its first event, so
a trip is the sequence of its distinct attractions in the order first visited: recommendations never repeat an
attraction of the session, so a revisit is nothing to predict.

Time-ordered protocols (`time_split`, then `held_out_sessions`):
- `next-trip`: train on every trip but each user's last (and on nothing of that user from the start of that trip
  on); on each last trip, after each attraction, rank the next one.
- `next-item`: the same split; only each last trip's last step counts (the user's very last new attraction, given
  the trip so far): leave-last-out.
Time is ordered per user: another user's training trip may be later in calendar time than a user's test trip.
Any model answers these protocols through `score_sessions`: a session model from the trip itself, a user model
from the user's training history plus the trip so far (folded in, no retraining).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from c360.errors import InputError

from . import sigir17
from .data import FORMATS, read_items, read_personalize_events

PROTOCOLS = ("random", "next-trip", "next-item")
TIME_PROTOCOLS = ("next-trip", "next-item")
DEFAULT_GAP_MINUTES = 480.0
# the items column that names an attraction's park: a session's recommendations stay in its park
DEFAULT_GROUP_COL = "PARK"
TRIP_COLUMNS = ["SESSION_ID", "USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_VALUE", "START", "POSITION"]


@dataclasses.dataclass(frozen=True)
class Session:
    """A trip so far: its distinct attractions in visit order, their first-visit times, the visitor if known."""

    items: tuple[str, ...]
    times: tuple[int, ...]
    user: str | None = None
    session_id: str | None = None


@dataclasses.dataclass(frozen=True)
class TripData:
    """What the session models train on: trips (TRIP_COLUMNS), the items table, walking minutes between items
    (FROM_ITEM, TO_ITEM, MINUTES) where the source measured them (None: from the items' LAT/LONG)."""

    trips: pd.DataFrame
    items: pd.DataFrame | None
    walks: pd.DataFrame | None = None


def group_col(item_group_col: str | None, items: pd.DataFrame | None) -> str | None:
    """The park column of the session protocols: `item_group_col`, else PARK when the items table has it."""
    if item_group_col:
        return item_group_col
    return DEFAULT_GROUP_COL if items is not None and DEFAULT_GROUP_COL in items.columns else None


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise InputError(f"--protocol: unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    return protocol


def cut_sessions(events: pd.DataFrame, gap_minutes: float = DEFAULT_GAP_MINUTES) -> pd.DataFrame:
    """events with SESSION_ID `USER_ID#n`: a user's n-th run of events with no gap above `gap_minutes`."""
    if not gap_minutes > 0:
        raise InputError(f"--session-gap: must be > 0 minutes, not {gap_minutes}")
    df = events.sort_values(["USER_ID", "TIMESTAMP"], kind="stable")
    gap = df.groupby("USER_ID")["TIMESTAMP"].diff()
    number = (gap.isna() | (gap > gap_minutes * 60)).groupby(df["USER_ID"]).cumsum()
    return df.assign(SESSION_ID=df["USER_ID"] + "#" + number.astype(int).astype(str)).sort_index()


def trips(events: pd.DataFrame, gap_minutes: float = DEFAULT_GAP_MINUTES) -> pd.DataFrame:
    """One row per (trip, attraction) at its first event: TRIP_COLUMNS, ordered by trip start, then position.

    events: USER_ID, ITEM_ID, TIMESTAMP, optional EVENT_VALUE (summed per trip and attraction) and SESSION_ID
    (a trip is one user's rows of one SESSION_ID; without the column, trips are cut by `gap_minutes`)."""
    missing = [c for c in ("USER_ID", "ITEM_ID", "TIMESTAMP") if c not in events.columns]
    if missing:
        raise InputError(f"events: missing column(s) {', '.join(missing)} (sessions need times)")
    df = events.assign(USER_ID=events["USER_ID"].astype(str), ITEM_ID=events["ITEM_ID"].astype(str),
                       TIMESTAMP=events["TIMESTAMP"].astype("int64"))
    if "EVENT_VALUE" not in df.columns:
        df["EVENT_VALUE"] = 1.0
    df = df if "SESSION_ID" in df.columns else cut_sessions(df, gap_minutes)
    df["SESSION_ID"] = df["SESSION_ID"].astype(str)
    out = (df.groupby(["USER_ID", "SESSION_ID", "ITEM_ID"], as_index=False, sort=False)
           .agg(TIMESTAMP=("TIMESTAMP", "min"), EVENT_VALUE=("EVENT_VALUE", "sum")))
    out["START"] = out.groupby(["USER_ID", "SESSION_ID"])["TIMESTAMP"].transform("min")
    out = out.sort_values(["START", "USER_ID", "SESSION_ID", "TIMESTAMP", "ITEM_ID"], ignore_index=True)
    out["POSITION"] = out.groupby(["USER_ID", "SESSION_ID"], sort=False).cumcount()
    out["EVENT_VALUE"] = out["EVENT_VALUE"].astype("float64")
    return out[TRIP_COLUMNS]


def load_trips(interactions: str | Path | None = None, items: str | Path | None = None, fmt: str = "personalize",
               gap_minutes: float = DEFAULT_GAP_MINUTES) -> TripData:
    """Trips, items and measured walking times from a sigir17 directory (trips = seqID, walks = costProf) or a
    Personalize interactions file (SESSION_ID when it has one, else cut by `gap_minutes`; walks from LAT/LONG)."""
    if fmt not in FORMATS:
        raise InputError(f"--format: unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "sigir17":
        root = Path(interactions) if interactions else sigir17.DEFAULT_DIR
        visits = sigir17.load_visits(root)
        table = read_items(items) if items else sigir17.load_items(root)
        walks = sigir17.load_walk_times(root)
        return TripData(trips(visits.assign(EVENT_VALUE=1.0), gap_minutes), table, walks if len(walks) else None)
    if interactions is None:
        raise InputError("--interactions: required for --format personalize")
    events = read_personalize_events(interactions, require_timestamp=True)
    return TripData(trips(events, gap_minutes), read_items(items) if items else None)


def aggregate(trip_rows: pd.DataFrame) -> pd.DataFrame:
    """The user x item interactions of trips (what user models train on): USER_ID, ITEM_ID, EVENT_VALUE, TIMESTAMP."""
    return (trip_rows.groupby(["USER_ID", "ITEM_ID"], as_index=False)
            .agg(EVENT_VALUE=("EVENT_VALUE", "sum"), TIMESTAMP=("TIMESTAMP", "min"))
            .sort_values(["USER_ID", "ITEM_ID"], ignore_index=True))


def time_split(trip_rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): test = each user's last trip (latest START, ties by SESSION_ID); train = every other trip,
    less any event of that user at or after the start of their test trip (overlapping trips leak nothing)."""
    keys = trip_rows[["USER_ID", "SESSION_ID", "START"]].drop_duplicates()
    last = keys.sort_values(["USER_ID", "START", "SESSION_ID"]).groupby("USER_ID").tail(1)
    is_test = pd.MultiIndex.from_frame(trip_rows[["USER_ID", "SESSION_ID"]]).isin(
        pd.MultiIndex.from_frame(last[["USER_ID", "SESSION_ID"]]))
    cutoff = trip_rows["USER_ID"].map(last.set_index("USER_ID")["START"])
    train = trip_rows[~is_test & (trip_rows["TIMESTAMP"] < cutoff)].reset_index(drop=True)
    return train, trip_rows[is_test].reset_index(drop=True)


def sessions_of(trip_rows: pd.DataFrame) -> list[Session]:
    """Every trip of `trip_rows` as a whole Session, in trip order."""
    out = []
    for (user, sid), g in trip_rows.groupby(["USER_ID", "SESSION_ID"], sort=False):
        out.append(Session(tuple(g["ITEM_ID"]), tuple(int(t) for t in g["TIMESTAMP"]), user, sid))
    return out


def held_out_sessions(test: pd.DataFrame, protocol: str) -> tuple[list[Session], list[str]]:
    """(trip so far, the next attraction) pairs of the test trips: after every attraction but the last (next-trip),
    or only before the last one (next-item). Trips of one attraction have nothing to predict."""
    check_protocol(protocol)
    if protocol not in TIME_PROTOCOLS:
        raise InputError(f"--protocol {protocol}: held-out sessions need a time-ordered protocol "
                         f"({', '.join(TIME_PROTOCOLS)})")
    contexts, targets = [], []
    for trip in sessions_of(test):
        lengths = range(1, len(trip.items)) if protocol == "next-trip" else range(len(trip.items) - 1, len(trip.items))
        for t in lengths:
            if t < 1:
                continue
            contexts.append(dataclasses.replace(trip, items=trip.items[:t], times=trip.times[:t]))
            targets.append(trip.items[t])
    return contexts, targets


# ---------------------------------------------------------------- scoring sessions with any model

def allowed_items(model, session: Session) -> np.ndarray:
    """Items `session` may be recommended (n_items bool): those of the park (item group) of its current
    attraction, less the session's own attractions. Without item groups, every item but the session's."""
    index = model.item_index
    groups = model.item_groups
    known = [index[i] for i in session.items if i in index]
    allowed = np.ones(len(groups), dtype=bool)
    if known and np.any(groups != ""):
        allowed = groups == groups[known[-1]]
    allowed[known] = False
    return allowed


def score_sessions(model, sessions: list[Session]) -> np.ndarray:
    """Scores (len(sessions) x n_items) of the next attraction: -inf for every item not allowed (another park,
    already in the session), from the model's `session_scores` (a session model scores the trip itself, any other
    folds it into the user's history: `Recommender.session_scores`)."""
    raw = model.session_scores(sessions)
    scores = np.asarray(raw, dtype=np.float64).copy()
    for j, s in enumerate(sessions):
        scores[j, ~allowed_items(model, s)] = -np.inf
    return scores


def target_ranks(model, sessions: list[Session], targets: list[str], batch: int = 4096) -> np.ndarray:
    """Rank (from 1) of each target among the allowed items, ties by item order as in `recommend`; inf when the
    model cannot recommend it (unknown to the model, or not allowed)."""
    index = model.item_index
    ranks = np.full(len(sessions), np.inf)
    for start in range(0, len(sessions), batch):
        scores = score_sessions(model, sessions[start:start + batch])
        for j, target in enumerate(targets[start:start + batch]):
            col = index.get(target)
            if col is None or not np.isfinite(scores[j, col]):
                continue
            row = scores[j]
            ranks[start + j] = 1 + np.sum(row > row[col]) + np.sum(row[:col] == row[col])
    return ranks
