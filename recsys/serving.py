"""What a visitor is recommended now: the serving decision over a published run's pieces, apart from HTTP.

`Serving` holds what one served run answers from: its served table (the stored top-N of the served model,
`served_table`), its models and their versions, item names and parks, the cold-start items and the session model.
`Serving.plan` decides, for one visitor, `k`, a model, items to leave out, where the visitor stands (`at`) and their
activity since the run (their live events, or None when the caller may not see it), which answer they get:

1. on a trip (live visits within the session model's gap of now, or `at`), the session model's next attractions of
   the trip's park (`trip`); an attraction the session model does not know: the served model's of its park;
2. live events since the run: the model's scores for the history plus those events (`folded`, no retraining);
3. the served model's stored top-k (`stored`: the served table's bytes as they are, never parsed), or what is
   left of them after `exclude`;
4. a visitor no model knows: the popular items (`cold`);
5. otherwise the model scores the visitor now (`scored`).

A plan that needs scoring (1, 2, 5) is run off the event loop by its caller (`Plan.blocking`); the others are ready.
`Serving.stored_json` is the plan of the hot path: a visitor whose activity is not used (no live events, hence no
trip), the served model, no `exclude` nor `at`: the whole response body from one lookup of the served table.

The person (`people`, `c360.recsys.people`: the run's identities and the accounts committed since that joined one of
their persons for certain; None: every account its own person). The models trained on histories shared within a
person, so an account's stored answer is already its person's. When answering a caller who may see a visitor's
activity (`live` given: a key), the live events of every account of its person count, each other account's weighed
as in training (`People.weights_for`), and no attraction the person visited under any account since the run is
answered (trip or fold-in); an account no model has a row for whose person has rows (one committed since the run) is
answered from their rows' weighted mean, not as a stranger. Such an answer is scored from other accounts' activity:
`Plan.person` names the person for the caller's audit line. A caller without a key gets none of it: no other
account's events, and an account committed since the run is a stranger to them (the popular items, as for any id no
model knows: the person's history would tell where the person went), whatever the person it joined.

`identity` (`Serving.identity_json`): to a caller with a key, the person's match_id and account_count, and its
accounts' ids to `pii` only; null for an account with no other one, and always null without a key (the person is
not named to the public, and the match_id opens the person's customer 360; accounts joined at full weight still
answer alike, from one shared history).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import orjson
import pandas as pd

from .base import topk
from .foldin import history, recommend_with_events
from .people import NULL, person_history
from .trips import Session, score_sessions

MAX_K = 100


class Unanswerable(ValueError):
    """A request no answer fits (an unknown model or attraction, `at` with another model): `field` names the
    parameter at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def ranked_items(names: Mapping[str, str], frame: pd.DataFrame) -> list[dict[str, Any]]:
    """ITEM_ID/SCORE rows → answer items with attraction names (ranks renumbered from 1)."""
    return [{"item_id": item, "name": names.get(item), "score": float(score), "rank": rank}
            for rank, (item, score) in enumerate(zip(frame["ITEM_ID"].tolist(), frame["SCORE"].tolist(), strict=True),
                                                 start=1)]


def current_trip(visits: list[tuple[int, str]], gap_minutes: float, now: float) -> list[tuple[int, str]]:
    """The visitor's trip now: of their live events (TIMESTAMP, ITEM_ID) in time order, those after the last gap
    longer than `gap_minutes` (the gap the session model cut its training trips at, not the calendar day: a trip
    past midnight stays one), and only when the last of them is at most `gap_minutes` before `now` (else the
    visitor has left: no trip). Events stamped after `now` (a client's clock ahead) count as now."""
    if not visits:
        return []
    gap = gap_minutes * 60
    if now - visits[-1][0] > gap:
        return []
    start = len(visits) - 1
    while start > 0 and visits[start][0] - visits[start - 1][0] <= gap:
        start -= 1
    return visits[start:]


def trip_session(user_id: str, trip: list[tuple[int, str]], at: str | None, now: float) -> Session:
    """The trip so far as a Session: its attractions once each, at their first event, in time order; `at` (where
    the visitor stands now) moved to the end, at `now` (never before the trip's last event)."""
    first: dict[str, int] = {}
    for ts, item in trip:
        first.setdefault(item, ts)
    if at is not None:
        last = max(first.values(), default=0)
        first.pop(at, None)
        first[at] = max(int(now), last)
    return Session(tuple(first), tuple(first.values()), user_id)


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


@dataclasses.dataclass(frozen=True)
class Answer:
    """One visitor's recommendations: the model that answered, whether it knew the visitor, the items as their JSON
    array, how many live events were used (None: the caller may not see them) and the trip context."""

    model: str
    version: str
    cold_start: bool
    items_json: bytes
    events_applied: int | None
    context: dict[str, Any] | None = None

    def json(self, user_id: str, identity: bytes = NULL) -> bytes:
        """The answer as a JSON object, keys in the contract's order (user_id, model, model_version, cold_start,
        items, events_applied, context, identity), the items and the identity (JSON, as the caller may see it:
        `Serving.identity_json`) spliced in as they are."""
        return b"".join((b'{"user_id":', _json(user_id), b',"model":', _json(self.model), b',"model_version":',
                         _json(self.version), b',"cold_start":', b"true" if self.cold_start else b"false",
                         b',"items":', self.items_json, b',"events_applied":', _json(self.events_applied),
                         b',"context":', _json(self.context), b',"identity":', identity, b"}"))


@dataclasses.dataclass(frozen=True)
class Plan:
    """The answer decided for a visitor: ready (`answer`), or to be scored off the event loop (`score`, blocking).
    `kind`: trip, folded, stored, cold or scored; `reads_activity`: the answer is scored from the visitor's
    activity (their trip, their live events, those of their person's other accounts, or the person's history lent
    to an account committed since the run), which the API audits; `person`: the person's match_id when other
    accounts' activity was used."""

    kind: str
    answer: Answer | None = None
    score: Callable[[], Answer] | None = None
    reads_activity: bool = False
    person: str | None = None

    @property
    def blocking(self) -> bool:
        return self.answer is None

    def run(self) -> Answer:
        """The answer (blocking when `blocking`: scores now)."""
        return self.answer if self.answer is not None else self.score()


@dataclasses.dataclass(frozen=True)
class Serving:
    """The serving decision over one published run's pieces (read-only, shared by every request)."""

    run_id: str
    served_model: str
    models: Mapping[str, Any]
    versions: Mapping[str, str]
    names: Mapping[str, str]
    recs: Any                      # the served table: a Mapping user -> items with `items_json(user, k)`
    popular: tuple[dict[str, Any], ...]
    popular_json: tuple[bytes, ...]
    catalogue: frozenset[str] = frozenset()
    parks: Mapping[str, str] = dataclasses.field(default_factory=dict)
    session_algo: str | None = None
    people: Any = None             # c360.recsys.people.People of the run's identities; None: each account alone

    @property
    def session(self) -> Any:
        return self.models[self.session_algo] if self.session_algo is not None else None

    @functools.cached_property
    def _hot(self) -> tuple[bytes, bytes, bytes]:
        """The constant parts of a stored answer of the served model to a caller without a key: before the items of
        a known visitor, of a cold one, after the items (no identity: not public)."""
        head = (b',"model":' + _json(self.served_model) + b',"model_version":'
                + _json(self.versions[self.served_model]) + b',"cold_start":')
        return (head + b'false,"items":', head + b'true,"items":',
                b',"events_applied":null,"context":null,"identity":' + NULL + b"}")

    def identity_json(self, user_id: str, keyed: bool, pii: bool = False) -> bytes:
        """The `identity` of an answer to `user_id` as JSON: {match_id, accounts (the person's account ids, itself
        first: `pii` only, else null), account_count} to a caller with a key (`keyed`); null for an account with
        no other account, and for any caller without a key."""
        people = self.people
        if people is None or not keyed:
            return NULL
        return people.identity_json(user_id, pii) if pii else people.public_json(user_id)

    def accounts_of(self, user_id: str) -> list[str]:
        """The accounts of the visitor's person, itself first (just itself without identities)."""
        return [user_id] if self.people is None else self.people.accounts_of(user_id)

    # ------------------------------------------------------------------ the decision
    def check(self, model: str | None = None, at: str | None = None) -> str:
        """The model asked for (`model`, default the served one); Unanswerable for an unknown model or attraction,
        or `at` with a model other than the session model."""
        algo = model or self.served_model
        if algo not in self.models:
            raise Unanswerable("model", f"model: unknown model {algo!r} (published: {', '.join(sorted(self.models))})")
        if at is not None and at not in self.catalogue:
            raise Unanswerable("at", f"at: unknown attraction {at!r} (not an attraction of run {self.run_id})")
        trip_algo = self.session_algo
        if at is not None and model is not None and trip_algo is not None and model != trip_algo:
            raise Unanswerable("at", f"at: a trip is answered by the session model {trip_algo!r}, not {model!r} "
                                     "(leave out model)")
        return algo

    def plan(self, user_id: str, k: int, *, model: str | None = None, exclude: frozenset[str] | set[str] = frozenset(),
             at: str | None = None, live: Any = None, others: Mapping[str, Any] | None = None,
             now: float | None = None) -> Plan:
        """The answer for `user_id` (see the module's docstring). `live`: the visitor's events since the run (`items`
        {ITEM_ID: value}, `count`, `visits` [(TIMESTAMP, ITEM_ID)] in time order), None when the caller may not see
        them (nothing is scored from them and `events_applied` is null); `others`: those of the other accounts of
        the visitor's person ({account: events}, used only with `live`). Unanswerable for an unknown model or
        attraction, or `at` with a model other than the session model."""
        algo = self.check(model, at)
        trip_algo = self.session_algo
        shown = live is not None
        others = {b: ev for b, ev in (others or {}).items() if ev.count and b != user_id} if shown else {}
        if others:  # what the person visited under another account since the run is never answered
            exclude = set(exclude) | {item for ev in others.values() for item in ev.items}
        # an account committed since the run, answered from its person's rows: only to a caller who may see activity
        borrows = shown and self._borrows(algo, user_id)
        person = self.people.person_of(user_id) if others or borrows else None
        if trip_algo is not None and model in (None, trip_algo):
            now = time.time() if now is None else now
            trip = current_trip(live.visits, float(self.session.params["gap_minutes"]), now) if shown else []
            if trip or at is not None:
                session = trip_session(user_id, trip, at, now)
                return Plan("trip", score=functools.partial(self._trip, session, trip, at, k, exclude, shown),
                            reads_activity=bool(trip or others),  # others: their visits are left out
                            person=self.people.person_of(user_id) if others else None)
        if shown and (live.count or others):
            events, count = self._person_events(user_id, live, others)
            return Plan("folded", score=functools.partial(self._folded, algo, user_id, events, count, k, exclude,
                                                          borrows), reads_activity=True, person=person)
        applied = 0 if shown else None
        if algo == self.served_model:
            stored = None if exclude else self._stored_items(user_id, k, shown)  # the hot path: the bytes as they are
            if stored is not None:
                cold, items_json = stored
                return Plan("cold" if cold else "stored", Answer(algo, self.versions[algo], cold, items_json, applied))
            pre = self.recs.get(user_id)  # the user's entry decoded (exclude, or fewer stored than k)
            cold = False
            if pre is None and user_id not in self.models[algo].user_index and not (shown
                                                                                  and self._has_person(user_id)):
                cold, pre = True, self.popular
            if pre is not None:
                if exclude:
                    pre = [it for it in pre if it["item_id"] not in exclude]
                if len(pre) >= k:
                    items = [it if it["rank"] == r else {**it, "rank": r} for r, it in enumerate(pre[:k], start=1)]
                    return Plan("cold" if cold else "stored",
                                Answer(algo, self.versions[algo], cold, _json(items), applied))
        return Plan("scored", score=functools.partial(self._scored, algo, user_id, k, exclude, applied, shown),
                    reads_activity=borrows, person=person)

    def stored_json(self, user_id: str, k: int) -> bytes | None:
        """The whole answer of `plan(user_id, k)` to a caller without a key (no activity used, the served model, no
        `exclude` nor `at`, no identity) when it is stored: the served table's items, or the popular items for a
        visitor no model knows (an account committed since the run included); None when it must be scored (`plan`
        decides). One lookup of the served table, no item parsed."""
        stored = self._stored_items(user_id, k, False)
        if stored is None:
            return None
        cold, items_json = stored
        return b"".join((b'{"user_id":', _json(user_id), self._hot[1 if cold else 0], items_json, self._hot[2]))

    def _stored_items(self, user_id: str, k: int, shown: bool) -> tuple[bool, bytes] | None:
        """The served model's k items with nothing excluded, when they are stored: (False, the served table's bytes),
        or for a visitor no model knows (True, the popular items; for a caller who may see activity, `shown`, not
        for an account its person's rows answer); None when they must be decoded or scored."""
        stored = self.recs.items_json(user_id, k)
        if stored is not None:
            return False, stored
        if (k <= len(self.popular_json) and user_id not in self.recs
                and user_id not in self.models[self.served_model].user_index
                and not (shown and self._has_person(user_id))):
            return True, b"[" + b",".join(self.popular_json[:k]) + b"]"
        return None

    def _borrows(self, algo: str, user_id: str) -> bool:
        """Whether `algo` answers the visitor from their person's rows: it has no row of its own and its person has
        other accounts (one committed since the run)."""
        people = self.people
        return people is not None and user_id not in self.models[algo].user_index and people.has_others(user_id)

    def _has_person(self, user_id: str) -> bool:
        """Whether a visitor no model has a row for may be answered from their person's accounts: their person has
        other accounts, or accounts may have been committed that are not read yet (the caller reads them first)."""
        people = self.people
        return people is not None and (people.has_others(user_id) or people.behind())

    def _person_events(self, user_id: str, live: Any, others: Mapping[str, Any]) -> tuple[dict[str, float], int]:
        """The visitor's live events plus w_ab x those of each other account b of the person: ({ITEM_ID: value},
        how many events)."""
        events, count = dict(live.items), live.count
        if others:
            weights = self.people.weights_for(user_id)
            for b, ev in others.items():
                w = weights.get(b, 0.0)
                count += ev.count
                for item, value in ev.items.items():
                    events[item] = events.get(item, 0.0) + w * value
        return events, count

    def _history(self, model: Any, user_id: str, borrow: bool) -> dict[str, float]:
        """The visitor's training history: their row (already their person's), else, when `borrow` (a caller who may
        see activity), their person's rows' weighted mean (an account committed since the run); {} otherwise."""
        if user_id in model.user_index:
            return history(model, user_id)
        if self.people is None or not borrow:
            return {}
        return person_history(model, self.people.weights_for(user_id))

    # ------------------------------------------------------------------ the answers that score (blocking)
    def _items(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        return ranked_items(self.names, frame)

    def _folded(self, algo: str, user_id: str, events: dict[str, float], count: int, k: int,
                exclude: set[str], borrow: bool) -> Answer:
        """The model's scores for the training history (the person's, `_history`) plus the live events: visited
        items left out, ALS user factors solved again, item-kNN / EASE from the history vector."""
        model = self.models[algo]
        items = self._history(model, user_id, borrow)
        for item, value in events.items():
            items[item] = items.get(item, 0.0) + float(value)
        personal = any(item in model.item_index for item in items)
        frame = model.recommend_from_interactions(items, k=k, exclude=set(exclude))
        return Answer(algo, self.versions[algo], not personal, _json(self._items(frame)), count)

    def _scored(self, algo: str, user_id: str, k: int, exclude: set[str], applied: int | None,
                borrow: bool) -> Answer:
        """The model scores the visitor now (a visitor it has no row for from their person's rows, when `borrow`);
        the popular items for one it does not know."""
        model = self.models[algo]
        cold = False
        if user_id in model.user_index:
            frame = model.recommend([user_id], k=k, exclude={user_id: set(exclude)} if exclude else None)
        elif borrowed := self._history(model, user_id, borrow):
            frame = model.recommend_from_interactions(borrowed, k=k, exclude=set(exclude))
        else:
            frame, cold = model.popular_items(k, exclude=set(exclude)), True
        return Answer(algo, self.versions[algo], cold, _json(self._items(frame)), applied)

    def _trip(self, session: Session, trip: list[tuple[int, str]], at: str | None, k: int, exclude: set[str],
              shown: bool) -> Answer:
        """The next attractions of the trip, with its context (the trip itself only to a caller who may see it)."""
        answered_by, items, note = self._next_in_trip(session, k, exclude)
        trip_items = list(dict.fromkeys(item for _, item in trip))
        context: dict[str, Any] = {"session": {"items": trip_items, "events": len(trip)} if trip and shown else None,
                                   "at": at}
        if note is not None:
            context.update(park=self.parks.get(session.items[-1]), note=note)
        return Answer(answered_by, self.versions[answered_by], False, _json(items), len(trip) if shown else None,
                      context)

    def _next_in_trip(self, session: Session, k: int, exclude: set[str]):
        """(model, items, note): the session model's next attractions of the trip: its park only, never one of the
        trip (nor `exclude`). An attraction the session model does not know (a park it was not trained on: it would
        answer another park's attractions) is answered by the served model, restricted to the attraction's park
        (none when the run's items table does not name it); `note` says so."""
        model = self.session
        if session.items[-1] not in model.item_index:
            return self._in_park(session, k, exclude)
        scores = score_sessions(model, [session])
        if exclude:
            scores[0, [model.item_index[i] for i in exclude if i in model.item_index]] = -np.inf
        idx, vals = topk(scores, k)
        item_ids, items = model.item_ids, []
        for j, value in zip(idx[0].tolist(), vals[0].tolist(), strict=True):
            if np.isfinite(value):
                items.append({"item_id": item_ids[j], "name": self.names.get(item_ids[j]), "score": float(value),
                              "rank": len(items) + 1})
        return self.session_algo, items, None

    def _in_park(self, session: Session, k: int, exclude: set[str]):
        """The served model's scores for the user's history plus the trip, only the current attraction's park."""
        algo = self.served_model
        served, park = self.models[algo], self.parks.get(session.items[-1])
        outside = {i for i in served.item_ids if park is None or self.parks.get(i) != park}
        _, frame = recommend_with_events(served, session.user or "", dict.fromkeys(session.items, 1.0), k=k,
                                         exclude=set(exclude) | outside)
        note = (f"the session model does not know park {park!r}: the served model's attractions of that park"
                if park is not None else "the session model does not know the attraction's park, nor does the run")
        return algo, self._items(frame), note


def session_model_of(models: Mapping[str, Any], served: str) -> str | None:
    """The model that answers trips: one that scores a trip itself (`scores_trips`), the served one first when it
    is one; None when the run has none."""
    return next((a for a in sorted(models, key=lambda a: a != served) if models[a].scores_trips), None)
