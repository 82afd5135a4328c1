"""The served state: one published run loaded (manifest, item names, models, graph store, and its recommendations as
the served table every worker shares on disk: `c360.recsys.served_table`) and what was posted since (events,
committed customers: `api.live_updates`)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import orjson

from c360.entity_resolution.id_changes import IdChanges
from c360.errors import InputError
from c360.graph.store import open_store, parse_spec
from c360.io import read_json_file, read_table, require_columns
from c360.layout import RunLayout, Warehouse
from c360.recsys.identities import load_identities
from c360.recsys.people import People
from c360.recsys.served_table import ServedTable, served_table_of
from c360.recsys.serving import Serving, ranked_items, session_model_of
from c360.recsys.trips import DEFAULT_GROUP_COL
from c360.settings import RealtimeSettings

from .live_updates import LiveCustomers, LiveEvents
from .model_maps import share_factors
from .review_queue import ReviewQueue

log = logging.getLogger("c360.api.state")

POPULAR_CACHE = 100  # cold-start items precomputed once per state
REOPEN_AFTER_S = 1.0  # a store that failed to open is not retried sooner: requests queued behind it answer 503 at once


class GraphHandle:
    """The graph store connection of one served run, shared by its requests (thread-safe).

    The store is the one mutable part of serving: a store that could not be opened is retried by the next
    request that needs it, so the ServedState referencing this handle never changes.
    """

    def __init__(self, spec: str, run_dir: Path, retry_after_s: float = REOPEN_AFTER_S):
        self.spec, self.run_dir, self.retry_after_s = spec, Path(run_dir), retry_after_s
        self._lock = threading.Lock()
        self._store: Any = None
        self._closed = False
        self._failed_at: float | None = None
        self.error: str | None = None

    @classmethod
    def open(cls, spec: str, run_dir: Path, retry_after_s: float = REOPEN_AFTER_S) -> "GraphHandle":
        """A handle with a first attempt made now (a failure is kept in `error`, not raised)."""
        handle = cls(spec, run_dir, retry_after_s)
        handle.get()
        return handle

    @property
    def store(self) -> Any:
        """The open store, or None; never opens one."""
        return self._store

    def get(self) -> Any:
        """The open store, opening it if no attempt succeeded yet (at most one attempt per `retry_after_s`);
        None when it cannot be opened (see `error`)."""
        with self._lock:  # one opener at a time: a store that is down is not dialled by every waiting request
            if self._store is None and not self._closed and not self._failed_recently():
                self._store, self.error = open_graph(self.spec, self.run_dir)
                self._failed_at = None if self._store is not None else time.monotonic()
            return self._store

    def _failed_recently(self) -> bool:
        return self._failed_at is not None and time.monotonic() - self._failed_at < self.retry_after_s

    def ping(self) -> bool:
        """True when an open store answers (does not open one)."""
        store = self._store
        try:
            return bool(store is not None and store.ping())
        except Exception:  # noqa: BLE001 - any failure means not reachable
            return False

    def close(self) -> None:
        """Release the connection; later `get()` calls answer None."""
        with self._lock:
            store, self._store, self._closed = self._store, None, True
        if store is not None:
            try:
                store.close()
            except Exception:  # noqa: BLE001 - closing a dead connection must not fail a swap
                log.warning("closing graph store %s of %s failed", self.spec, self.run_dir.name, exc_info=True)


@dataclass(frozen=True)
class ServedState:
    """Everything a request needs, immutable once built; swapped as one reference on a new publish.

    Mappings are read-only views; `recs` is the run's served table (a read-only mapping over files every worker
    shares, `recs.items_json` answers with stored bytes), `popular_json` the cold-start items pre-serialized; the graph
    connection lives in its own `GraphHandle`, what was posted since the run in `events` and `customers` (None when
    the run has no match output; `customers_error` says why).
    """

    run_id: str
    layout: RunLayout
    manifest: Mapping[str, Any]
    served_model: str
    models: Mapping[str, Any]
    versions: Mapping[str, str]
    names: Mapping[str, str]
    recs: ServedTable
    popular: tuple[dict[str, Any], ...]
    popular_json: tuple[bytes, ...]
    connection: GraphHandle
    events: LiveEvents
    catalogue: frozenset[str] = frozenset()   # every item id an event may name (the served model's and items.csv)
    # item id -> its park (items.csv's PARK): a trip stays in it
    parks: Mapping[str, str] = dataclasses.field(default_factory=dict)
    customers: LiveCustomers | None = None
    customers_error: str | None = None
    session_algo: str | None = None   # the run's session model (next attraction of a trip), None when it has none
    # the accounts of one person (the run's identities, and accounts committed since that joined one); None: the run
    # has no identities, every account is its own person
    people: People | None = None
    # the published run's match ids merged, split or retired since the run before (c360.entity_resolution.id_changes)
    id_changes: IdChanges = dataclasses.field(default_factory=IdChanges)
    # the run's review queue and the stewards' decisions since (None when the run has no match output)
    review: ReviewQueue | None = None

    @property
    def session(self) -> Any:
        """The session model answering trips (GET /recommendations with a trip, /attractions/{id}/next), or None."""
        return self.models[self.session_algo] if self.session_algo is not None else None

    @functools.cached_property
    def serving(self) -> Serving:
        """The serving decision of GET /recommendations over this state's pieces (built on first use: a state
        replaced field by field gets its own)."""
        return Serving(run_id=self.run_id, served_model=self.served_model, models=self.models,
                       versions=self.versions, names=self.names, recs=self.recs, popular=self.popular,
                       popular_json=self.popular_json, catalogue=self.catalogue, parks=self.parks,
                       session_algo=self.session_algo, people=self.people)

    @property
    def run_dir(self) -> Path:
        return self.layout.root

    @property
    def graph_spec(self) -> str:
        return self.connection.spec

    @property
    def graph(self) -> Any:
        """The graph store if open, else None (requests use `connection.get()`, which retries an open)."""
        return self.connection.store

    @property
    def graph_error(self) -> str | None:
        return self.connection.error

    def close(self) -> None:
        """Release the graph store connection and the real-time logs' lock files."""
        self.connection.close()
        self.events.close()
        if self.customers is not None:
            self.customers.close()
        if self.review is not None:
            self.review.close()


def _read_manifest(run: RunLayout) -> dict[str, Any]:
    path = run.manifest
    manifest = read_json_file(path, "manifest not found")
    if manifest.get("status") != "succeeded":
        raise InputError(f"{path}: run status is {manifest.get('status')!r}, not 'succeeded'")
    if not manifest.get("served_model") or manifest["served_model"] not in (manifest.get("models") or {}):
        raise InputError(f"{path}: served_model must name one of 'models'")
    return manifest


def _read_names(run: RunLayout) -> dict[str, str]:
    path = run.items
    if not path.is_file():
        return {}
    items = read_table(path, dtype=str)
    require_columns(items, ["ITEM_ID"], str(path))
    if "NAME" not in items.columns:
        return {}
    return dict(zip(items["ITEM_ID"].astype(str), items["NAME"].fillna("").astype(str), strict=True))


def _read_parks(run: RunLayout) -> dict[str, str]:
    """{ITEM_ID: park} from the run's items table (its PARK column; {} without one)."""
    path = run.items
    if not path.is_file():
        return {}
    items = read_table(path, dtype=str)
    if DEFAULT_GROUP_COL not in items.columns:
        return {}
    parks = items[["ITEM_ID", DEFAULT_GROUP_COL]].dropna()
    return dict(zip(parks["ITEM_ID"].astype(str), parks[DEFAULT_GROUP_COL].astype(str), strict=True))


def _read_id_changes(run: RunLayout) -> IdChanges:
    """The run's merged, split and retired match ids (empty when its match had no previous output, or the file
    cannot be read: ids then answer as they are, logged)."""
    try:
        return IdChanges.read(run.match.id_changes)
    except Exception as exc:  # noqa: BLE001 - a broken file must not keep the run offline
        log.error("run %s: id changes not read, old match ids answer 404: %s", run.run_id, exc)
        return IdChanges()


def open_graph(spec: str, run_dir: Path):
    """Open the configured GraphStore; returns (store, error message)."""
    try:
        return open_store(spec, run_dir), None
    except Exception as exc:  # noqa: BLE001 - unreachable/missing store: graph endpoints answer 503
        log.warning("graph store %s unavailable: %s", spec, exc)
        return None, f"{type(exc).__name__}: {exc}"


def load_state(run: RunLayout | Path, graph_spec: str = "networkx", warehouse: Path | None = None,
               realtime: RealtimeSettings | None = None) -> ServedState:
    """Load one published run completely (blocking; call it off the event loop). Raises on a broken run.

    `warehouse` (default: the one the run lies in) holds the real-time logs, read here to their end (at most
    `realtime.max_pending_events`: the time to ready is bounded); `realtime`: the intake bounds."""
    from c360.recsys.models import load_model

    run = run if isinstance(run, RunLayout) else RunLayout(run)
    wh = Warehouse(warehouse if warehouse is not None else run.root.parent.parent)
    manifest = _read_manifest(run)
    run_id = str(manifest.get("run_id") or run.run_id)
    models, versions = {}, {}
    for algo, meta in manifest["models"].items():
        path = run.root / meta["path"] if meta.get("path") else run.model_dir(algo)
        try:
            models[algo] = share_factors(load_model(path), path)  # factors mapped: shared by the workers
        except Exception:
            if algo == manifest["served_model"]:
                raise
            log.warning("run %s: model %s at %s not loadable; not offered", run.run_id, algo, path, exc_info=True)
            continue
        versions[algo] = str(meta.get("version") or f"{run_id}:{algo}")
    names = _read_names(run)
    recs = served_table_of(run)  # built here, once for all workers, when the run was published without one
    served = manifest["served_model"]
    # the session model the nightly saves into the run (recsys/session/): one that scores trips itself, the served
    # one first when it is one; a run without one answers as before (no trip context, no next attractions)
    session_algo = session_model_of(models, served)
    popular = tuple(ranked_items(names, models[served].popular_items(POPULAR_CACHE)))
    popular_json = tuple(orjson.dumps(item) for item in popular)
    # the accounts the run's match joined (recsys/identities.parquet, written when it joined some): one person's
    # accounts share their live events and its committed accounts get its history
    people = (People(load_identities(run.identities), trained=models[served].user_index)
              if run.identities.is_file() else None)
    id_changes = _read_id_changes(run)
    connection = GraphHandle.open(graph_spec, run.root)
    customers, customers_error, review = None, None, None
    try:
        # a record committed into an id this run merged (logged while it ran) joins the survivor
        customers = LiveCustomers.of_run(wh, run, connection, embedded=not parse_spec(graph_spec).is_url,
                                         settings=realtime, on_account=people.join if people is not None else None,
                                         follow=id_changes.current if len(id_changes) else None)
        if people is not None:
            people.behind = customers.behind
    except InputError as exc:  # a run without a match output: POST /customers/match answers 503
        customers_error = str(exc)
        log.info("run %s: no customer matching in real time (%s)", run.run_id, exc)
    except Exception as exc:  # noqa: BLE001 - a broken match model must not keep the run's recommendations offline
        customers_error = f"{type(exc).__name__}: {exc}"
        log.error("run %s: the match model could not be loaded, no customer matching in real time: %s",
                  run.run_id, customers_error)
    if customers is not None:
        try:
            review = ReviewQueue.of_run(wh, run, customers, embedded=not parse_spec(graph_spec).is_url,
                                         settings=realtime)
        except Exception:  # noqa: BLE001 - a bad queue file must not keep matching or recommendations offline
            log.error("run %s: the review queue could not be loaded; GET /review/next answers 503", run.run_id,
                      exc_info=True)
    catalogue = frozenset(models[served].item_ids) | frozenset(names)
    state = ServedState(run_id=run_id, layout=run, manifest=MappingProxyType(manifest), served_model=served,
                        models=MappingProxyType(models), versions=MappingProxyType(versions),
                        names=MappingProxyType(names), recs=recs, popular=popular, popular_json=popular_json,
                        connection=connection, events=LiveEvents.of_run(wh, run, realtime, catalogue),
                        catalogue=catalogue, parks=MappingProxyType(_read_parks(run)), customers=customers,
                        customers_error=customers_error, session_algo=session_algo, people=people,
                        id_changes=id_changes, review=review)
    log.info("loaded run %s: model %s, %d users with recs, %d items", state.run_id, served, len(recs), len(names))
    return state
