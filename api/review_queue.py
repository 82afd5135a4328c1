"""The review queue of a served run: the labeling sets its nightly drew for stewards (`er/review.csv`, the file
`c360 er review` writes), the decisions they post (the decisions log, c360.decisions) and what those do at once.

- Sets are served in an order shuffled once per run (seeded by the run id), so the sets answered before the next
  nightly are a random part of the draw, and `c360.jobs.review_intake` can weight them as such.
- A decision is logged durably (c360.append_log: fsync'd, every worker tails it) under the log's lock, after reading
  what others logged: posting the same answer about the same pair again writes nothing (idempotent).
- Its effect, decided by the worker that logs it and written into the line so every worker applies the same:
  `match` between records of two matches joins them (the larger keeps its id; the other answers 308 to it);
  `non-match` between records of one match splits it along the weakest links between the two (a minimum cut of its
  links at or above the threshold, from the run's scored pairs; the larger part keeps the id, the other gets a
  new one reserved in the customers log, so no commit is ever given it). The matcher's index (POST
  /customers/match) and the graph (GET /customer360) follow at once; the next nightly trains on the decision and
  decides again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pandas as pd

from c360.decisions import MATCH, NON_MATCH, UNSURE, decision_problem, pair_key
from c360.entity_resolution.labels import CONTEXT
from c360.graph.schema import ACCOUNT_SOURCE, VISITOR
from c360.graph.schema import MATCH as MATCH_VERTEX
from c360.io import from_spreadsheet, read_json_file
from c360.layout import RunLayout, Warehouse
from c360.realtime_log import RealtimeLog, warehouse_log
from c360.settings import RealtimeSettings

from .live_updates import LiveCustomers, _LogFollower, sealed_through

log = logging.getLogger("c360.api.review")

MAX_SPLIT_RECORDS = 500   # a larger match is split by moving the one record asked about (no cut computed)


class UnknownSet(LookupError):
    """A decision names a set or a record position the served queue does not have."""


@dataclass(frozen=True)
class ReviewSet:
    """One labeling set: its records (the drawn pair first) with their fields, and how it was drawn."""

    set_id: str
    ids: tuple[str, ...]
    fields: tuple[dict[str, Any], ...]
    chosen_by: tuple[str, ...]
    match_probability: float | None
    stratum: str
    sample: dict[str, Any]     # weight, inclusion_probability, sample, drawn (sets of its stratum in the draw)

    def pair(self, positions: Iterable[int] | None) -> tuple[str, str]:
        """The record ids at two positions (None: the drawn pair); UnknownSet when out of range or equal."""
        i, j = (0, 1) if positions is None else tuple(positions)
        if not (0 <= i < len(self.ids) and 0 <= j < len(self.ids)) or i == j:
            raise UnknownSet(f"set {self.set_id}: pair must be two different positions below {len(self.ids)}")
        return self.ids[i], self.ids[j]


def read_queue(path: Path, id_col: str) -> list[ReviewSet]:
    """The sets of a run's review file, in its order (none when the run has no such file)."""
    if not path.is_file():
        return []
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    meta = {"labeling_set_id", "label", id_col, "match_probability", "chosen_by", "inclusion_probability", "weight",
            "sample"}
    fields = [c for c in df.columns if c not in meta]
    drawn = df[df["chosen_by"] != CONTEXT].drop_duplicates("labeling_set_id")
    per_stratum = drawn["chosen_by"].value_counts().to_dict()
    sets = []
    for set_id, rows in df.groupby("labeling_set_id", sort=False):
        rows = pd.concat([rows[rows["chosen_by"] != CONTEXT], rows[rows["chosen_by"] == CONTEXT]])
        first = rows.iloc[0]
        p = pd.to_numeric(first["match_probability"], errors="coerce")
        sets.append(ReviewSet(
            set_id=str(set_id), ids=tuple(rows[id_col].astype(str).map(from_spreadsheet)),
            fields=tuple({k: from_spreadsheet(v) for k, v in r.items() if not pd.isna(v)}
                         for r in rows[fields].to_dict("records")),
            chosen_by=tuple(rows["chosen_by"].astype(str)), match_probability=None if pd.isna(p) else float(p),
            stratum=str(first["chosen_by"]),
            sample={"weight": float(first["weight"]), "inclusion_probability": float(first["inclusion_probability"]),
                    "sample": str(first["sample"]), "drawn": int(per_stratum.get(first["chosen_by"], 1))}))
    return sets


class ReviewQueue(_LogFollower):
    """A worker's view of the queue and the decisions log (thread-safe); see the module doc."""

    def __init__(self, sets: list[ReviewSet], journal: RealtimeLog, after: int, customers: LiveCustomers,
                 pairs: Path | None, threshold: float, run_id: str, embedded: bool):
        self.sets = {s.set_id: s for s in sets}
        self.order = [s.set_id for s in sets]
        random.Random(run_id).shuffle(self.order)
        self.journal, self.customers, self.pairs, self.threshold = journal, customers, pairs, threshold
        self.run_id, self.embedded = run_id, embedded
        self._tail = journal.tail(after)
        self._lock = threading.RLock()
        self.latest: dict[tuple[str, str], dict] = {}   # the decision about each pair (the last logged)
        self.decided: set[str] = set()                  # sets with any decision
        self.merged: dict[int, int] = {}                # a match id a decision emptied into another -> that one
        self.skipped = 0
        self._pending: list[dict] = []                  # graph writes not done yet (store down)
        # the worker threads the queue's requests may hold: one (they wait for one lock, in the event loop; forty of
        # them waiting in threads took the whole threadpool, and every lookup of the worker waited behind a split)
        self.deciding = anyio.CapacityLimiter(1)
        with self._lock:
            self._catch_up(replay=True)
            self._flush()

    @classmethod
    def of_run(cls, warehouse: Warehouse, run: RunLayout, customers: LiveCustomers, embedded: bool,
               settings: RealtimeSettings | None = None) -> ReviewQueue:
        report = read_json_file(run.match.report)
        id_col = str(report.get("id", customers.matcher.cfg.id))
        pairs = Path(run.match.pairs)
        journal = warehouse_log(warehouse, "decisions", settings)
        return cls(read_queue(run.review_queue, id_col), journal, sealed_through(run, "decisions_through", journal),
                   customers, pairs if pairs.exists() else None, float(report["threshold"]), run.run_id, embedded)

    # ---- reading ----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the decisions any worker logged since the last call. Never waits for a decision being made (its effect
        is computed under the lock: a scan of the scored pairs, a minimum cut): a lookup then answers from the
        decisions before it, as it would have a moment earlier."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._catch_up(replay=False)
            self._flush()
        finally:
            self._lock.release()

    def close(self) -> None:
        self.journal.close()

    def survivor(self, match_id: int) -> int | None:
        """The match a decision joined `match_id` into (following later joins), or None; as of the last refresh (it
        is asked on the event loop: reading the logs is for threads)."""
        seen, mid = set(), self.merged.get(match_id)
        while mid is not None and mid in self.merged and mid not in seen:
            seen.add(mid)
            mid = self.merged[mid]
        return mid

    def pending(self, n: int) -> list[ReviewSet]:
        """The next `n` sets nobody decided, in the queue's order."""
        self.refresh()
        with self._lock:
            return [self.sets[s] for s in self.order if s not in self.decided][:n]

    def remaining(self) -> int:
        with self._lock:
            return sum(s not in self.decided for s in self.order)

    def match_of(self, record_id: str) -> int | None:
        """The match a record is in now (the run's, then commits and decisions)."""
        row = self.customers.matcher.index.row_of.get(record_id)
        return None if row is None else int(self.customers.matcher.index.match_ids[row])

    def explain(self, left: str, right: str) -> dict[str, Any] | None:
        """The model's reasons for a pair (comparison levels and their weights), None when a record is unknown."""
        return self.customers.matcher.explain_pair(left, right)

    # ---- deciding ---------------------------------------------------------------------------------------------
    def decide(self, answers: list[tuple[str, tuple[str, str], str]], key: str | None) -> list[dict]:
        """Log each (set_id, (left, right), label) unless it repeats the pair's decision; return per answer
        `{labeling_set_id, left, right, label, status: logged | duplicate, effect}` in the order given. UnknownSet
        before anything is logged when a set is not in the queue."""
        for set_id, _, _ in answers:
            if set_id not in self.sets:
                raise UnknownSet(f"labeling_set_id {set_id!r} is not in the served run's review queue")
        out = []
        with self.journal.exclusive() as writer, self._lock:
            self._catch_up(replay=False)   # records other workers committed too: a join or split moves them
            for set_id, (left, right), label in answers:
                known = self.latest.get(pair_key(left, right))
                # an answer logged against the run before may not have applied here (see _here): answered again
                if known is not None and known["label"] == label and known.get("run") == self.run_id:
                    out.append({**self._answer(known), "status": "duplicate"})
                    continue
                record = {"set": set_id, "left": left, "right": right, "label": label,
                          "decided_at": round(time.time(), 3), "run": self.run_id,
                          "sample": self._sample_of(set_id, left, right),
                          "effect": self._effect(left, right, label), **({"key": key} if key else {})}
                writer.append([record])
                self._apply(self._tail.read(), replay=False)  # exactly the line just written: the lock is ours
                if not self.embedded and record["effect"]:
                    self._pending.append(record["effect"])   # a server store: this worker writes it, once
                out.append({**self._answer(record), "status": "logged"})
            self._flush()
        return out

    @staticmethod
    def _answer(record: dict) -> dict:
        return {"labeling_set_id": record["set"], "left": record["left"], "right": record["right"],
                "label": record["label"], "effect": record.get("effect")}

    def _sample_of(self, set_id: str, left: str, right: str) -> dict[str, Any]:
        """How the pair was chosen (for the nightly's weights): the set's draw, or `context` for any other pair."""
        s = self.sets[set_id]
        drawn = {left, right} == set(s.ids[:2])
        return {**s.sample, "chosen_by": s.stratum if drawn else CONTEXT,
                "match_probability": s.match_probability if drawn else None}

    def _members(self, match_id: int) -> list[str]:
        index = self.customers.matcher.index
        ids = index.column("unique_id")
        return [ids[r] for r in np.flatnonzero(np.asarray(index.match_ids) == match_id)]

    def _effect(self, left: str, right: str, label: str) -> dict | None:
        """What a decision changes now (see the module doc); None when nothing."""
        ml, mr = self.match_of(left), self.match_of(right)
        if label == UNSURE or ml is None or mr is None:
            return None
        if label == MATCH and ml != mr:
            a, b = self._members(ml), self._members(mr)
            (keep, _), (gone, moved) = sorted(((ml, a), (mr, b)), key=lambda m: (-len(m[1]), m[0]))
            return {"from": gone, "to": keep, "moved": sorted(moved), "new_match": False}
        if label == NON_MATCH and ml == mr:
            members = self._members(ml)
            side_l, side_r = self._cut(members, left, right)
            moved = side_r if len(side_l) >= len(side_r) else side_l
            return {"from": ml, "to": self.customers.reserve(), "moved": sorted(moved), "new_match": True}
        return None

    def _cut(self, members: list[str], left: str, right: str) -> tuple[set[str], set[str]]:
        """The two sides of the match's weakest cut between `left` and `right` (by the links' match weights)."""
        if self.pairs is None or len(members) > MAX_SPLIT_RECORDS:
            return set(members) - {right}, {right}
        import duckdb
        import networkx as nx

        con = duckdb.connect()
        try:
            con.register("members", pd.DataFrame({"id": members}))
            src = Path(self.pairs).as_posix() + ("/**/*.parquet" if Path(self.pairs).is_dir() else "")
            links = con.execute(   # the path a parameter: a warehouse's path may hold a quote
                "SELECT CAST(unique_id_l AS VARCHAR), CAST(unique_id_r AS VARCHAR), match_probability "
                "FROM read_parquet(?) WHERE match_probability >= ? AND CAST(unique_id_l AS VARCHAR) IN "
                "(SELECT id FROM members) AND CAST(unique_id_r AS VARCHAR) IN (SELECT id FROM members)",
                [src, self.threshold]).fetchall()
        finally:
            con.close()
        g = nx.DiGraph()
        g.add_nodes_from(members)
        for a, b, p in links:
            if {a, b} == {left, right}:
                continue   # the link the steward refused
            w = float(np.log2(min(p, 1 - 1e-12) / max(1 - p, 1e-12)))
            g.add_edge(a, b, capacity=max(w, 1e-6))
            g.add_edge(b, a, capacity=max(w, 1e-6))
        if not nx.has_path(g, left, right):   # the refused link was the only one: its components
            side = nx.node_connected_component(g.to_undirected(), left)
            return set(side), set(members) - set(side)
        _, (side_l, side_r) = nx.minimum_cut(g, left, right)
        return set(side_l), set(side_r)

    # ---- applying ---------------------------------------------------------------------------------------------
    def _catch_up(self, replay: bool) -> None:
        """Apply the decisions logged since the last call, having read the customers log after them: a record a
        decision moves was committed (by any worker) before the decision was logged, so every worker knows it
        when it applies the decision (read before the decisions, it could be missed, and stay behind there only)."""
        entries = self._tail.read()
        self.customers.refresh()
        self._apply(entries, replay=replay)

    def _apply(self, entries: list[dict], replay: bool) -> None:
        for e in entries:
            problem = decision_problem(e)
            if problem is not None:
                self.skipped += 1
                log.error("%s: skipped a line that is no decision (%s)", self.journal.dir, problem)
                continue
            self.latest[pair_key(e["left"], e["right"])] = e
            self.decided.add(e["set"])
            effect = self._here(e)
            if effect:
                self._move(effect)
                if replay or self.embedded:
                    self._pending.append(effect)

    def _here(self, line: dict) -> dict | None:
        """The part of a logged effect that still applies: the records still in the match the decision found them in,
        ids the served run merged followed to their survivor; None when nothing is left. Within one run this is the
        effect itself (every worker applies the lines in order); a line of the run before, logged after its nightly
        sealed the log, is replayed on the next run, which may have put those records elsewhere or merged the ids."""
        effect = line.get("effect")
        if not effect:
            return None
        follow = self.customers.follow or int
        frm, to = follow(int(effect["from"])), follow(int(effect["to"]))
        moved = [rid for rid in effect["moved"] if self.match_of(rid) == frm] if frm != to else []
        if len(moved) < len(effect["moved"]):
            log.warning("a decision of run %s moves %d of its %d records in run %s (the others are elsewhere now)",
                        line.get("run"), len(moved), len(effect["moved"]), self.run_id)
        return {**effect, "from": frm, "to": to, "moved": moved} if moved else None

    def _move(self, effect: dict) -> None:
        """The matcher's index (and its per-match counts) follows a decision."""
        c = self.customers
        index = c.matcher.index
        with c._lock:
            for rid in effect["moved"]:
                row = index.row_of.get(rid)
                if row is None:
                    continue
                old = int(index.match_ids[row])
                index.match_ids[row] = int(effect["to"])
                account = index.record(row).get("source") == ACCOUNT_SOURCE
                c.sizes[old] -= 1
                c.sizes[int(effect["to"])] += 1
                c.accounts[old] -= account
                c.accounts[int(effect["to"])] += account
            c.matcher.max_match_id = max(c.matcher.max_match_id, int(effect["to"]))
        if not effect["new_match"] and not c.sizes[int(effect["from"])]:
            self.merged[int(effect["from"])] = int(effect["to"])

    def _flush(self) -> None:
        """Write pending moves into the graph store, if it is up (else on a later call)."""
        if not self._pending:
            return
        store = self.customers.connection.get()
        if store is None:
            return
        try:
            while self._pending:
                store.relink(*self._graph_move(self._pending[0]))
                self._pending.pop(0)
        except Exception as exc:  # noqa: BLE001 - retried by the next request
            log.warning("steward decisions not written to the graph yet: %s", exc)

    def _graph_move(self, effect: dict):
        from c360.graph.neptune_csv import Element

        c, index = self.customers, self.customers.matcher.index
        vertices = []
        for rid in effect["moved"]:
            row = index.row_of.get(rid)
            account = row is not None and index.record(row).get("source") == ACCOUNT_SOURCE
            vertices.append(VISITOR.vertex_id(rid) if account else rid)

        def counts(mid: int) -> dict:
            return {"records": int(c.sizes[mid] - c.accounts[mid]), "accounts": int(c.accounts[mid])}

        to, frm = int(effect["to"]), int(effect["from"])
        target = Element(str(to), MATCH_VERTEX.name, {**counts(to), **({"name": self._name(effect["moved"])}
                                                                        if effect["new_match"] else {})})
        return vertices, target, [Element(str(frm), MATCH_VERTEX.name, counts(frm))]

    def _name(self, ids: list[str]) -> str:
        """A split-off part's name: its first record's first and last name, as the export names a match."""
        index = self.customers.matcher.index
        row = index.row_of.get(ids[0])
        rec = index.record(row) if row is not None else {}
        name = " ".join(str(rec[k]).title() for k in ("first_name", "last_name") if rec.get(k))
        return name or str(ids[0])
