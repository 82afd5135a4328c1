"""`session`: the next attraction from where the visitor is now, learned from trips in time order.

One set of trip statistics (transition counts, trips holding two attractions, visits by hour and by position in the
trip) and walking minutes between attractions feed the scorers of the candidates (the current attraction's park,
less the trip's own attractions):
- `transitions`: first-order transitions from the current attraction, ties broken by popularity (the baseline);
- `logistic`: logistic regression over the candidate FEATURES (transitions from the current and the previous
  attraction, position in the trip, time since its start and since the last attraction, walking minutes, ...);
- `gbm`: gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier) over the same features;
- `ensemble`: both re-rankers, their scores standardized within the step and added;
- `gru`: a learned sequence model (`session_gru`): a small GRU over the trip so far, a softmax over the candidates
  (its inputs per candidate include the other folds' transition counts, like the re-rankers' features);
- `gru_ensemble`: the two re-rankers and the GRU, standardized within the step and added.
`model="auto"` (the default) fits every scorer on all training trips but each user's last one and keeps the one with
the best hit@k on those last ones (ties: the simpler), then refits it on every training trip; the test trips of an
evaluation are never seen. A re-ranker's training rows take their count features from the other folds' trips
(K-fold): with counts that include the row's own trip the trees learn "count - 1 = the answer" (measured on the
shipped parks: with leave-one-trip-out counts the gbm fell below in-park popularity; with 5 folds it is the best).

Fitted trees are kept as flat node arrays and evaluated in numpy, the GRU is plain weight arrays: loading and serving
need no scikit-learn, and a saved model holds no pickle.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

import c360.recsys.algorithms.session_gru as session_gru
from c360.errors import InputError

from ..base import InteractionData, Recommender
from ..metrics import next_item_metrics
from ..registry import register
from ..trips import DEFAULT_GAP_MINUTES, Session, aggregate, group_col, time_split, trips
from ..walking import WALKING_SPEED_KMH, walking_matrix

SCORERS = ("transitions", "logistic", "gbm", "ensemble", "gru", "gru_ensemble")
# the parts of an ensemble: their scores standardized within the step and added
ENSEMBLES = {"ensemble": ("logistic", "gbm"), "gru_ensemble": ("logistic", "gbm", "gru")}
# the prefix of each learned scorer's arrays (saved in the model npz)
PREFIXES = {"logistic": "lr_", "gbm": "gbm_", "gru": session_gru.PREFIX}
MODELS = ("auto", *SCORERS)
FEATURES = ("next_share", "next_log_count", "back_share", "prev_next_share", "together", "popularity",
            "hour_share", "mean_position", "position", "elapsed_log_min", "gap_log_min", "walk_min", "walk_rank",
            "walk_min_session", "visited_before", "out_log_count")
# the statistics are dense item x item arrays: a park has tens of attractions, a chain of parks a few hundred
MAX_ITEMS = 5000


@dataclasses.dataclass
class _Trip:
    items: np.ndarray        # item indices in visit order
    times: np.ndarray        # first-visit epoch seconds
    history: np.ndarray      # bool per item: attractions of the visitor's earlier (training) trips


@dataclasses.dataclass
class TripStats:
    """Counts over a set of trips: what every scorer reads (scaled when counted on a fold of the trips)."""

    next: np.ndarray         # [i, j]: trips where j directly follows i
    together: np.ndarray     # [i, j]: trips holding both (diagonal: trips holding i)
    hours: np.ndarray        # [i, h]: first visits of i in UTC hour h
    position: np.ndarray     # mean position of i in its trips (0 first .. 1 last)

    @classmethod
    def count(cls, trip_list: list[_Trip], n: int, scale: float = 1.0) -> "TripStats":
        trip_list = [t for t in trip_list if len(t.items)]
        sizes = np.array([len(t.items) for t in trip_list], dtype=np.int64)
        items = np.concatenate([t.items for t in trip_list]) if trip_list else np.empty(0, np.int64)
        times = np.concatenate([t.times for t in trip_list]) if trip_list else np.empty(0, np.int64)
        trip = np.repeat(np.arange(len(sizes)), sizes)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        nxt = np.zeros((n, n))
        follows = np.flatnonzero(trip[1:] == trip[:-1])
        np.add.at(nxt, (items[follows], items[follows + 1]), 1.0)
        incidence = sp.csr_matrix((np.ones(len(items)), (trip, items)), shape=(len(sizes), n))
        together = (incidence.T @ incidence).toarray()
        hours = np.zeros((n, 24))
        np.add.at(hours, (items, (times // 3600) % 24), 1.0)
        relative = (np.arange(len(items)) - offsets[trip]) / np.maximum(sizes[trip] - 1, 1)
        position = np.bincount(items, weights=relative, minlength=n) / np.maximum(np.bincount(items, minlength=n), 1)
        return cls(nxt * scale, together * scale, hours * scale, position)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"stats_next": self.next, "stats_together": self.together, "stats_hours": self.hours,
                "stats_position": self.position}

    @classmethod
    def from_arrays(cls, a) -> "TripStats":
        return cls(a["stats_next"], a["stats_together"], a["stats_hours"], a["stats_position"])


@dataclasses.dataclass
class _Steps:
    """Steps of trips: after the first `length[s]` attractions of a trip (at `start[s]` in the concatenated
    `items`/`times`), the next attraction `target[s]` (-1: unknown, a trip so far being served)."""

    items: np.ndarray
    times: np.ndarray
    start: np.ndarray
    length: np.ndarray
    target: np.ndarray
    history: np.ndarray      # (trips x items) bool: the visitor's earlier attractions
    trip: np.ndarray         # per step: its row of `history`

    @classmethod
    def of(cls, trip_list: list[_Trip], n: int, whole: bool = False) -> "_Steps":
        """Every step of every trip (after 1 .. L-1 attractions, the next one known), or each whole trip so far."""
        sizes = np.array([len(t.items) for t in trip_list], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        items = np.concatenate([t.items for t in trip_list]) if trip_list else np.empty(0, np.int64)
        times = np.concatenate([t.times for t in trip_list]) if trip_list else np.empty(0, np.int64)
        history = np.array([t.history for t in trip_list]) if trip_list else np.zeros((0, n), dtype=bool)
        if whole:
            keep = np.flatnonzero(sizes > 0)
            start, length, trip, target = offsets[keep], sizes[keep], keep, np.full(len(keep), -1)
        else:
            trip = np.repeat(np.arange(len(sizes)), np.maximum(sizes - 1, 0))
            first = np.concatenate([[0], np.cumsum(np.maximum(sizes - 1, 0))[:-1]]).astype(np.int64)
            length = np.arange(len(trip)) - first[trip] + 1 if len(trip) else np.empty(0, np.int64)
            start = offsets[trip]
            target = items[start + length] if len(trip) else np.empty(0, np.int64)
        return cls(items.astype(np.int64), times.astype(np.int64), start.astype(np.int64),
                   length.astype(np.int64), np.asarray(target, dtype=np.int64), history, trip.astype(np.int64))

    def __len__(self) -> int:
        return len(self.start)

    def part(self, lo: int, hi: int) -> "_Steps":
        return dataclasses.replace(self, start=self.start[lo:hi], length=self.length[lo:hi],
                                   target=self.target[lo:hi], trip=self.trip[lo:hi])


@dataclasses.dataclass
class _Rows:
    """The candidates of a batch of steps, one row each: its step, its item, its FEATURES (None when not built)."""

    step: np.ndarray
    item: np.ndarray
    X: np.ndarray | None


class _Features:
    """Candidates of steps (the current attraction's park, less the trip so far) and their FEATURES, from one
    TripStats, for many steps at once: the trip-so-far aggregates loop over positions in the trip, not steps."""

    def __init__(self, stats: TripStats, walk: np.ndarray, group_codes: np.ndarray):
        self.stats, self.codes = stats, group_codes
        self.walk = walk.astype(np.float64)
        out = stats.next.sum(axis=1)
        self.out_count = out
        self.share = stats.next / np.maximum(out, 1.0)[:, None]
        self.pop = np.diag(stats.together).copy()
        self.together_share = stats.together / np.maximum(self.pop, 1.0)[:, None]
        hours, total = stats.hours, np.maximum(stats.hours.sum(axis=1), 1.0)
        # share of an attraction's visits in the hour before, the hour of and the hour after each hour
        self.hour_share = (np.roll(hours, 1, axis=1) + hours + np.roll(hours, -1, axis=1)) / total[:, None]
        codes = np.unique(group_codes)
        self.group_pop_max = np.zeros(codes.max() + 1 if len(codes) else 1)
        for code in codes:
            self.group_pop_max[code] = max(self.pop[group_codes == code].max(), 1.0)

    def rows(self, steps: _Steps, features: bool = True, chunk_cells: int = 4_000_000) -> _Rows:
        n = len(self.pop)
        size = max(1, chunk_cells // max(n, 1))
        parts = [self._rows(steps.part(lo, lo + size), features) for lo in range(0, len(steps), size)]
        if not parts:
            return _Rows(np.empty(0, np.int64), np.empty(0, np.int64),
                         np.empty((0, len(FEATURES))) if features else None)
        offsets = np.cumsum([0] + [len(steps.part(lo, lo + size)) for lo in range(0, len(steps), size)][:-1])
        return _Rows(np.concatenate([r.step + off for r, off in zip(parts, offsets, strict=True)]),
                     np.concatenate([r.item for r in parts]),
                     np.vstack([r.X for r in parts]) if features else None)

    def _rows(self, steps: _Steps, features: bool) -> _Rows:
        n, S = len(self.pop), len(steps)
        items, times, start, length = steps.items, steps.times, steps.start, steps.length
        last = start + length - 1
        current = items[last]
        visited = np.zeros((S, n), dtype=bool)
        together = np.zeros((S, n)) if features else None
        walk_min = np.full((S, n), np.nan) if features else None
        for k in range(int(length.max(initial=0))):
            live = np.flatnonzero(length > k)
            item = items[start[live] + k]
            visited[live, item] = True
            if features:
                together[live] += self.together_share[item]
                walk_min[live] = np.fmin(walk_min[live], self.walk[item])
        step, cand = np.nonzero((self.codes[None, :] == self.codes[current][:, None]) & ~visited)
        if not features:
            return _Rows(step, cand, None)
        c = current[step]
        has_prev = length >= 2
        prev = items[np.where(has_prev, last - 1, last)]
        walk = self.walk[c, cand]
        X = np.column_stack([
            self.share[c, cand],
            np.log1p(self.stats.next[c, cand]),
            self.share[cand, c],
            np.where(has_prev[step], self.share[prev[step], cand], 0.0),
            together[step, cand] / length[step],
            self.pop[cand] / self.group_pop_max[self.codes[c]],
            self.hour_share[cand, ((times[last] // 3600) % 24)[step]],
            self.stats.position[cand],
            length[step].astype(np.float64),
            np.log1p(np.maximum(times[last] - times[start], 0) / 60.0)[step],
            np.where(has_prev, np.log1p(np.maximum(times[last] - times[np.where(has_prev, last - 1, last)], 0) / 60.0),
                     -1.0)[step],
            walk,
            _rank_within(step, walk),
            walk_min[step, cand],
            steps.history[steps.trip[step], cand].astype(np.float64),
            np.log1p(self.out_count[c]),
        ])
        return _Rows(step, cand, X)

    def transitions(self, steps: _Steps, rows: _Rows) -> np.ndarray:
        """Transition count from the current attraction; popularity (< 1) breaks ties and covers unseen ones."""
        current = steps.items[steps.start + steps.length - 1][rows.step]
        return self.stats.next[current, rows.item] + self.pop[rows.item] / (self.pop.max() + 1.0)


def _rank_within(step: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each row's rank (0 = smallest, NaN last, ties by row order) among the rows of its step, over the step's size."""
    order = np.lexsort((np.arange(len(step)), values, step))
    size = np.bincount(step, minlength=step.max(initial=-1) + 1)
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    rank = np.empty(len(step))
    rank[order] = np.arange(len(step)) - first[step[order]]
    return rank / np.maximum(size[step], 1)


def _standard_within(step: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Scores shifted and scaled to mean 0, standard deviation 1 within each step (a constant step: all 0)."""
    count = np.maximum(np.bincount(step), 1)
    mean = np.bincount(step, weights=scores) / count
    sd = np.sqrt(np.bincount(step, weights=(scores - mean[step]) ** 2) / count)
    return (scores - mean[step]) / np.where(sd > 0, sd, 1.0)[step]


def _target_ranks(steps: _Steps, rows: _Rows, scores: np.ndarray) -> np.ndarray:
    """Rank (from 1; ties by item order) of each step's target among its candidates; inf when not a candidate."""
    target = steps.target[rows.step]
    is_target = rows.item == target
    at = np.full(len(steps), np.nan)
    at[rows.step[is_target]] = scores[is_target]
    mine = at[rows.step]
    ahead = (scores > mine) | ((scores == mine) & (rows.item < target))
    ranks = 1.0 + np.bincount(rows.step, weights=ahead, minlength=len(steps))
    return np.where(np.isnan(at), np.inf, ranks)


# ---------------------------------------------------------------- re-rankers as plain arrays

def _logistic_fit(X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    mean = np.nan_to_num(np.nanmean(X, axis=0))
    scale = np.nan_to_num(np.nanstd(X, axis=0))
    scale[scale == 0] = 1.0
    Z = np.nan_to_num((X - mean) / scale)
    lr = LogisticRegression(C=1.0, max_iter=1000, random_state=seed).fit(Z, y)
    return {"lr_coef": lr.coef_.ravel(), "lr_intercept": np.array([lr.intercept_[0]]), "lr_mean": mean,
            "lr_scale": scale}


def _logistic_score(a, X: np.ndarray) -> np.ndarray:
    return np.nan_to_num((X - a["lr_mean"]) / a["lr_scale"]) @ a["lr_coef"] + a["lr_intercept"][0]


def _gbm_fit(X: np.ndarray, y: np.ndarray, params: dict, seed: int) -> dict[str, np.ndarray]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    model = HistGradientBoostingClassifier(
        max_iter=int(params["gbm_iterations"]), learning_rate=float(params["gbm_learning_rate"]),
        max_leaf_nodes=int(params["gbm_leaves"]), min_samples_leaf=int(params["gbm_min_leaf"]),
        l2_regularization=float(params["gbm_l2"]), early_stopping=False, random_state=seed)
    # OpenMP threads spin while they wait: on 2 cores busy with other work (Spark) one Epcot fit took 55-80 s
    # with the default threads and 7 s with one; the trees are small, one thread is the safe default
    with threadpool_limits(limits=int(params["gbm_threads"]), user_api="openmp"):
        model.fit(X, y)
    # scikit-learn keeps each boosting round's tree as a TreePredictor whose `nodes` is a structured array
    # (numerical splits: x <= num_threshold goes left, NaN goes where missing_go_to_left says; leaf values
    # already shrunk by the learning rate); tests check `_gbm_score` against decision_function
    nodes = [round_[0].nodes for round_ in model._predictors]
    flat = np.concatenate(nodes)
    sizes = [len(x) for x in nodes]
    return {"gbm_feature": flat["feature_idx"].astype(np.int64), "gbm_threshold": flat["num_threshold"],
            "gbm_missing_left": flat["missing_go_to_left"].astype(bool), "gbm_left": flat["left"].astype(np.int64),
            "gbm_right": flat["right"].astype(np.int64), "gbm_leaf": flat["is_leaf"].astype(bool),
            "gbm_value": flat["value"], "gbm_tree_start": np.cumsum([0] + sizes[:-1]),
            "gbm_node_tree_start": np.repeat(np.cumsum([0] + sizes[:-1]), sizes),
            "gbm_baseline": np.array([float(np.ravel(model._baseline_prediction)[0])]),
            LIVE_GBM: model}


# the fitted scikit-learn estimator rides along in a scorer's arrays while it is in memory (scoring in compiled code
# during training and evaluation); it is never saved, a loaded model scores with `_gbm_score`
LIVE_GBM = "gbm_live"


def _gbm_raw(a, X: np.ndarray) -> np.ndarray:
    live = a.get(LIVE_GBM)
    if live is None:
        return _gbm_score(a, X)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        return live.decision_function(X)


def _gbm_score(a, X: np.ndarray, batch: int = 8192) -> np.ndarray:
    """Raw score (log-odds) of the flat tree ensemble: every (row, tree) pair walks down one level per iteration,
    only the pairs not at a leaf yet."""
    starts = a["gbm_tree_start"]
    feature, threshold, leaf = a["gbm_feature"], a["gbm_threshold"], a["gbm_leaf"]
    out = np.empty(len(X))
    for lo in range(0, len(X), batch):
        x = X[lo:lo + batch]
        node = np.tile(starts, len(x))
        row = np.repeat(np.arange(len(x)), len(starts))
        active = np.flatnonzero(~leaf[node])
        while active.size:
            at = node[active]
            value = x[row[active], feature[at]]
            left = np.where(np.isnan(value), a["gbm_missing_left"][at], value <= threshold[at])
            child = a["gbm_node_tree_start"][at] + np.where(left, a["gbm_left"][at], a["gbm_right"][at])
            node[active] = child
            active = active[~leaf[child]]
        out[lo:lo + batch] = a["gbm_value"][node].reshape(len(x), len(starts)).sum(axis=1) + a["gbm_baseline"][0]
    return out


@register
class SessionModel(Recommender):
    """Next attraction from the trip so far (see the module docstring). The park of a session is the group
    (`item_group_col`, default PARK when the items have it: `sessions.group_col`) of its current attraction."""

    name = "session"
    scores_trips = True   # session_scores: the trip itself, not the fold-in of the base class
    defaults = {"model": "auto", "folds": 5, "seed": 0, "validation_k": 5, "gap_minutes": DEFAULT_GAP_MINUTES,
                "walking_speed_kmh": WALKING_SPEED_KMH, "gbm_iterations": 200, "gbm_learning_rate": 0.05,
                "gbm_leaves": 15, "gbm_min_leaf": 40, "gbm_l2": 1.0, "gbm_threads": 1, **session_gru.DEFAULTS}

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["model"] not in MODELS:
            raise InputError(f"session: model must be one of {', '.join(MODELS)}, not {self.params['model']!r}")
        if int(self.params["folds"]) < 2:
            raise InputError(f"session: folds must be >= 2, not {self.params['folds']}")
        self._trip_rows: pd.DataFrame | None = None
        self._walk_pairs: pd.DataFrame | None = None
        self.scorer = "transitions"
        self.scorer_arrays: dict[str, np.ndarray] = {}

    # ---------------------------------------------------------------- training
    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None, show_progress: bool = True,
            walks: pd.DataFrame | None = None) -> "SessionModel":
        """Train on events or trips (USER_ID, ITEM_ID, TIMESTAMP, optional SESSION_ID and EVENT_VALUE; without
        SESSION_ID trips are cut by `gap_minutes`); `walks` (FROM_ITEM, TO_ITEM, MINUTES) where measured."""
        if "TIMESTAMP" not in interactions.columns:
            raise InputError("session: interactions need a TIMESTAMP column (trips are ordered by time)")
        rows = interactions if "POSITION" in interactions.columns else trips(interactions, self.params["gap_minutes"])
        rows = rows.sort_values(["START", "USER_ID", "SESSION_ID", "POSITION"], ignore_index=True)
        col = self.params["item_group_col"] = group_col(self.params.get("item_group_col"), items)
        data = InteractionData.from_frame(aggregate(rows), items, col)
        if len(data.item_ids) > MAX_ITEMS:
            raise InputError(f"session: {len(data.item_ids)} items; the dense trip statistics support up to {MAX_ITEMS}")
        self._trip_rows, self._walk_pairs = rows, walks
        try:
            return self.fit_data(data, items, show_progress)
        finally:
            self._trip_rows = self._walk_pairs = None

    def _fit(self, items, show_progress):
        if self._trip_rows is None:
            raise InputError("session: trains on trips (fit with events that have TIMESTAMP), "
                             "not on a user x item matrix alone")
        self.walk = walking_matrix(self.item_ids, items, self._walk_pairs, float(self.params["walking_speed_kmh"]))
        self._codes = np.unique(self.item_groups, return_inverse=True)[1]
        rows = self._trip_rows
        chosen, table = self.params["model"], {}
        self._scorers()
        if chosen == "auto":
            fit_rows, valid_rows = time_split(rows)
            valid_trips = self._trips(valid_rows, history_from=fit_rows)
            fit_trips = self._trips(fit_rows)
            k = int(self.params["validation_k"])
            features = _Features(TripStats.count(fit_trips, len(self.item_ids)), self.walk, self._codes)
            rows_xy = self._training_rows(fit_trips)
            steps = _Steps.of(valid_trips, len(self.item_ids))
            candidates = features.rows(steps)
            fitted: dict[str, dict] = {}
            for name in self._scorers():       # an ensemble reuses its parts, fitted before it
                fitted[name] = ({k: v for part in ENSEMBLES[name] for k, v in fitted[part].items()}
                                if name in ENSEMBLES else self._train_scorer(name, *rows_xy, fit_trips))
                scores = self._score_rows(features, name, fitted[name], steps, candidates)
                ranks = _target_ranks(steps, candidates, scores)
                table[name] = next_item_metrics(ranks, (k, 10))
            if table and table["transitions"]["steps"]:
                chosen = max(table, key=lambda s: (round(table[s][f"hit@{k}"], 12), -SCORERS.index(s)))
            else:
                chosen = "transitions"
        all_trips = self._trips(rows)
        self.stats = TripStats.count(all_trips, len(self.item_ids))
        rows_xy = self._training_rows(all_trips) if chosen not in ("transitions", "gru") else (None, None)
        self.scorer, self.scorer_arrays = chosen, self._train_scorer(chosen, *rows_xy, all_trips)
        self._last_trips(rows)
        self.extra["session"] = {"chosen": chosen, "requested": self.params["model"], "validation": table,
                                 "trips": int(rows.groupby(["USER_ID", "SESSION_ID"]).ngroups)}

    def _scorers(self) -> tuple[str, ...]:
        """The scorers `auto` chooses from: the GRU ones only up to `session_gru.MAX_ITEMS` items; a GRU asked for
        with more items is an error."""
        if len(self.item_ids) <= session_gru.MAX_ITEMS:
            return SCORERS
        if "gru" in self.params["model"]:
            raise InputError(f"session: model={self.params['model']} supports up to {session_gru.MAX_ITEMS} items, "
                             f"not {len(self.item_ids)}")
        return tuple(s for s in SCORERS if "gru" not in s)

    def _trips(self, rows: pd.DataFrame, history_from: pd.DataFrame | None = None) -> list[_Trip]:
        """Trips (rows in trip order, as `sessions.trips` writes them) as item indices, unknown items dropped,
        with each visitor's earlier attractions: all of `history_from` when given, else the visitor's trips before
        this one within `rows`."""
        index, n = self.item_index, len(self.item_ids)
        seen: dict[str, np.ndarray] = {}
        if history_from is not None:
            known = history_from[history_from["ITEM_ID"].isin(index)]
            for user, items in known.groupby("USER_ID")["ITEM_ID"]:
                seen[user] = np.zeros(n, dtype=bool)
                seen[user][items.map(index).to_numpy()] = True
        rows = rows[rows["ITEM_ID"].isin(index)]
        items = rows["ITEM_ID"].map(index).to_numpy(np.int64)
        times = rows["TIMESTAMP"].to_numpy(np.int64)
        users = rows["USER_ID"].to_numpy()
        key = pd.factorize(rows["USER_ID"] + "\x1f" + rows["SESSION_ID"], sort=False)[0]
        bounds = np.flatnonzero(np.diff(key, prepend=-1, append=-1))
        out = []
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            user = users[lo]
            history = seen.get(user)
            out.append(_Trip(items[lo:hi], times[lo:hi],
                             history.copy() if history is not None else np.zeros(n, dtype=bool)))
            if history_from is None:
                seen.setdefault(user, np.zeros(n, dtype=bool))[items[lo:hi]] = True
        return out

    def _train_scorer(self, name: str, X: np.ndarray | None, y: np.ndarray | None,
                      trip_list: list[_Trip]) -> dict[str, np.ndarray]:
        """The arrays of scorer `name` fitted on the candidate rows (X, y) of `_training_rows` (the re-rankers) or
        on the trips themselves (`gru`)."""
        seed = int(self.params["seed"])
        parts = ENSEMBLES.get(name, (name,))
        out = {}
        if "gru" in parts:
            out.update(self._gru_fit(trip_list, seed))
        if X is None or len(y) == 0 or y.all() or not y.any():
            return out      # nothing to learn from (no arrays at all: `_score_rows` falls back to transitions)
        if "logistic" in parts:
            out.update(_logistic_fit(X, y, seed))
        if "gbm" in parts:
            out.update(_gbm_fit(X, y, self.params, seed))
        return out

    def _gru_fit(self, trip_list: list[_Trip], seed: int) -> dict[str, np.ndarray]:
        """The GRU; with `gru_transitions`, its candidates also read transition counts of the other folds' trips."""
        if not self.params["gru_transitions"]:
            return session_gru.fit(trip_list, self.walk, self._codes, self.params, seed)
        folds, n = int(self.params["folds"]), len(self.item_ids)
        fold = np.random.default_rng(seed).integers(folds, size=len(trip_list))
        priors = np.stack([session_gru.transition_inputs(TripStats.count(
            [t for t, g in zip(trip_list, fold, strict=True) if g != f], n, scale=folds / (folds - 1)).next)
            for f in range(folds)])
        return session_gru.fit(trip_list, self.walk, self._codes, self.params, seed, priors, fold)

    def _training_rows(self, trip_list: list[_Trip]) -> tuple[np.ndarray, np.ndarray]:
        """One row per (step, candidate) of every trip, count features from the other folds' trips; steps whose
        next attraction is no candidate (another park) are left out."""
        folds, n = int(self.params["folds"]), len(self.item_ids)
        fold = np.random.default_rng(int(self.params["seed"])).integers(folds, size=len(trip_list))
        X, y = [], []
        for f in range(folds):
            stats = TripStats.count([t for t, g in zip(trip_list, fold, strict=True) if g != f], n,
                                    scale=folds / (folds - 1))
            steps = _Steps.of([t for t, g in zip(trip_list, fold, strict=True) if g == f], n)
            rows = _Features(stats, self.walk, self._codes).rows(steps)
            hit = rows.item == steps.target[rows.step]
            answered = np.bincount(rows.step[hit], minlength=len(steps)) > 0
            keep = answered[rows.step]
            X.append(rows.X[keep])
            y.append(hit[keep])
        return np.vstack(X), np.concatenate(y)

    # ---------------------------------------------------------------- scoring
    def _score_rows(self, features: _Features, name: str, arrays, steps: _Steps, rows: _Rows) -> np.ndarray:
        """Scores of the candidate rows; the re-rankers run once on all of them."""
        if name == "transitions" or not arrays:
            return features.transitions(steps, rows)
        if name == "logistic":
            return _logistic_score(arrays, rows.X)
        if name == "gbm":
            return _gbm_raw(arrays, rows.X)
        if name == "gru":
            prefixes = [_Trip(steps.items[lo:lo + size], steps.times[lo:lo + size], steps.history[trip])
                        for lo, size, trip in zip(steps.start, steps.length, steps.trip, strict=True)]
            priors = (session_gru.transition_inputs(features.stats.next)[None]
                      if len(arrays[session_gru.PREFIX + "w_cand"]) > 2 else None)
            return session_gru.last_logits(arrays, prefixes, self.walk, self._codes, priors)[rows.step, rows.item]
        parts = [p for p in ENSEMBLES[name] if any(k.startswith(PREFIXES[p]) for k in arrays)]
        return sum(_standard_within(rows.step, self._score_rows(features, part, arrays, steps, rows)) for part in parts)

    def session_scores(self, sessions: Sequence[Session]) -> np.ndarray:
        """Scores (len(sessions) x n_items) of the next attraction after each trip so far; -inf for items that are
        not candidates (another park, already visited). A session with no known attraction gets popularity."""
        features = _Features(self.stats, self.walk, self._codes)
        index, n = self.item_index, len(self.item_ids)
        trip_list = []
        for s in sessions:
            known = [(index[i], t) for i, t in zip(s.items, s.times, strict=True) if i in index]
            history = np.zeros(n, dtype=bool)
            if s.user is not None and s.user in self.user_index:
                history[self.matrix[self.user_index[s.user]].indices] = True
            trip_list.append(_Trip(np.array([i for i, _ in known], dtype=np.int64),
                                   np.array([t for _, t in known], dtype=np.int64), history))
        out = np.full((len(sessions), n), -np.inf)
        out[[j for j, t in enumerate(trip_list) if not len(t.items)]] = features.pop / (features.pop.max() + 1.0)
        steps = _Steps.of(trip_list, n, whole=True)
        if len(steps):
            rows = features.rows(steps, features=self.scorer not in ("transitions", "gru") and bool(self.scorer_arrays))
            out[steps.trip[rows.step], rows.item] = self._score_rows(features, self.scorer, self.scorer_arrays,
                                                                     steps, rows)
        return out

    def as_transitions(self) -> "SessionModel":
        """This model scoring with plain first-order transitions (its own counts, same candidates): the baseline a
        learned scorer has to beat, at no extra training."""
        twin = copy.copy(self)
        twin.scorer, twin.scorer_arrays = "transitions", {}
        return twin

    def _scores(self, rows):
        """Users known from training: the next attraction after their last training trip."""
        item_ids, sessions = np.array(self.item_ids, dtype=object), []
        for r in rows:
            lo, hi = self.last_indptr[r], self.last_indptr[r + 1]
            sessions.append(Session(tuple(item_ids[self.last_items[lo:hi]]),
                                    tuple(int(t) for t in self.last_times[lo:hi]), self.user_ids[r]))
        return self.session_scores(sessions)

    def _last_trips(self, rows: pd.DataFrame) -> None:
        last = rows[rows.groupby("USER_ID")["START"].transform("max") == rows["START"]]
        last = last[last["SESSION_ID"] == last.groupby("USER_ID")["SESSION_ID"].transform("max")]
        by_user = {u: g for u, g in last.groupby("USER_ID")}
        items, times, indptr = [], [], [0]
        for user in self.user_ids:
            g = by_user.get(user)
            if g is not None:
                items += [self.item_index[i] for i in g["ITEM_ID"]]
                times += g["TIMESTAMP"].tolist()
            indptr.append(len(items))
        self.last_items = np.array(items, dtype=np.int64)
        self.last_times = np.array(times, dtype=np.int64)
        self.last_indptr = np.array(indptr, dtype=np.int64)

    # ---------------------------------------------------------------- persistence
    def _arrays(self):
        saved = {k: v for k, v in self.scorer_arrays.items() if k != LIVE_GBM}
        return {**self.stats.arrays(), **saved, "walk": self.walk, "scorer": np.array(self.scorer),
                "last_items": self.last_items, "last_times": self.last_times, "last_indptr": self.last_indptr}

    def _restore(self, a):
        self.stats = TripStats.from_arrays(a)
        self.walk = a["walk"]
        self.scorer = str(a["scorer"])
        prefixes = tuple(PREFIXES[p] for p in ENSEMBLES.get(self.scorer, (self.scorer,)) if p in PREFIXES)
        self.scorer_arrays = {k: a[k] for k in a if k.startswith(prefixes)} if prefixes else {}
        self.last_items, self.last_times, self.last_indptr = a["last_items"], a["last_times"], a["last_indptr"]
        self._codes = np.unique(self.item_groups, return_inverse=True)[1]
