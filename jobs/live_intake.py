"""The nightly's side of real time: what the API logged since the published run goes into this run, and once this
run is published its logs drop what it contains.

- events (POST /events): the run seals the events log, trains on the published run's events plus the sealed
  segments after the published run's position (kept in `recsys/events.parquet`, so the next run carries them on
  after the log is dropped). Each logged event is checked again (c360.events.event_problem): one no rule allows (a
  line an older version logged, or one written by hand) is quarantined into the run (`quarantine.jsonl`, counted
  in the manifest and the report), never trained on and never failing the run. An event whose user's event_id was
  seen before (in the carried events or earlier in the log: a retried request; the key is (user_id, event_id), as in
  the API) is dropped, the first copy kept whatever the item or timestamp of the others;
- customers (POST /customers/match?commit=true): the run seals the customers log; the committed records join the
  merged records as match input (a record now also in the sources is taken from there), and the match_ids they
  were given join the published ones as the ids to keep stable. Under the same lock the run reserves the match_ids
  it may hand out (at most one per input record above the highest id it knows): the API gives new customers ids
  above that until the run is published, so a record committed while the nightly runs never shares an id with a
  cluster the nightly creates.

`runs/<id>/realtime.json` records the position each log was sealed at (a segment of the file journal, an offset of
a Kafka topic: c360.realtime_log) and the log's name, so a resumed run reads the same records, the publish drops
exactly those, and the next run reads only what follows: a run that ended between its publish and the drop, or a
drop that failed, leaves records the next run neither reads again nor keeps (it drops them first).
A bad customers-log line (c360.commits.commit_problem) is quarantined the same way.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from pathlib import Path

import orjson
import pandas as pd

from c360.commits import RESERVED, CommitOrder, commit_problem
from c360.events import EARLIEST_TIMESTAMP, event_problem
from c360.io import atomic_path, read_json_file, write_json_file
from c360.jobs.pipeline import RunContext
from c360.layout import MatchOutput, RunLayout
from c360.realtime_log import RealtimeLog, position_of, warehouse_log

log = logging.getLogger("c360.nightly")

EVENT_COLUMNS = ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_VALUE"]
EVENT_ID = "EVENT_ID"   # events.parquet's idempotency key with USER_ID, beside EVENT_COLUMNS (null: none given)
POSTED_BY = "POSTED_BY"   # ... and the short hash of the API key that posted each event (null: logged without one)


def _state(run: RunLayout) -> dict:
    return read_json_file(run.realtime) if run.realtime.is_file() else {}


def _update_state(run: RunLayout, **values) -> None:
    write_json_file(run.realtime, {**_state(run), **values})


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def _carried(path: Path | None) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path is not None and path.is_file() else None


def events_frame(records: list[dict]) -> pd.DataFrame:
    """Logged events (user_id, item_id, timestamp, event_value[, event_id, key]; checked by c360.events) in the
    interactions schema, EVENT_ID and POSTED_BY (the hash of the API key that posted it) beside it."""
    df = pd.DataFrame.from_records(records, columns=["user_id", "item_id", "timestamp", "event_value", "event_id",
                                                    "key"])
    return pd.DataFrame({"USER_ID": df["user_id"].astype(str), "ITEM_ID": df["item_id"].astype(str),
                         "TIMESTAMP": df["timestamp"].astype("int64"),
                         "EVENT_VALUE": df["event_value"].fillna(1.0).astype("float64"),
                         EVENT_ID: df["event_id"].astype("string"), POSTED_BY: df["key"].astype("string")})


def _log(ctx: RunContext, name: str) -> RealtimeLog:
    """The warehouse's real-time log `name` (events, customers) where the settings say (realtime.log)."""
    return warehouse_log(ctx.warehouse, name, ctx.settings.realtime)


def _published(ctx: RunContext, key: str, journal: RealtimeLog) -> tuple[RunLayout | None, int]:
    """(the published run, the position of `journal` under `key` that it contains: 0 for none)."""
    current = ctx.warehouse.current()
    return current, position_of(_state(current) if current else {}, key, journal)


def _base(run: RunLayout, current: RunLayout | None) -> str | None:
    """The run published when this one first read a log (what `base_run` returns)."""
    state = _state(run)
    return state["published"] if "published" in state else (current.run_id if current else None)


def _read_sealed(journal: RealtimeLog, through: int, after: int) -> tuple[int, list]:
    """(the position read after, the records after `after` up to `through`). A log sealed before the published run's
    position was removed and started again (segment 1, offset 0): all of it is new."""
    if through < after:
        log.warning("%s: sealed at position %d, before the published run's %d: reading all of it",
                    journal.name, through, after)
        after = 0
    return after, journal.read_through(through, after=after)


def _checked(records: list, problem_of) -> tuple[list, list[tuple[object, str]]]:
    """(the records `problem_of` finds nothing wrong with, [(record, problem)] of the others)."""
    good, bad = [], []
    for record in records:
        problem = problem_of(record)
        if problem is None:
            good.append(record)
        else:
            bad.append((record, problem))
    return good, bad


def _quarantine(run: RunLayout, log_name: str, bad: list[tuple[object, str]]) -> None:
    """Write the records of `log_name` this run refused into the run's quarantine (JSON lines of log, problem and
    the record as logged, owner-readable only), beside those of the other log."""
    if bad:
        log.warning("quarantined %d line(s) of the %s log that no rule allows into %s", len(bad), log_name,
                    run.quarantine)
    path = run.quarantine
    kept = [line for line in (path.read_bytes().splitlines() if path.is_file() else [])
            if orjson.loads(line).get("log") != log_name]
    lines = kept + [orjson.dumps({"log": log_name, "problem": problem, "record": record}) for record, problem in bad]
    if not lines:
        return
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(b"".join(line + b"\n" for line in lines))


def _problem_counts(bad: list[tuple[object, str]]) -> dict[str, int]:
    """How many records were refused for each field ("user_id", "timestamp", ...)."""
    return dict(Counter(problem.split(":", 1)[0] for _, problem in bad))


def run_events(ctx: RunContext) -> pd.DataFrame:
    """Every real-time event this run trains on (written once into the run; a resumed run reads it back)."""
    run, state = ctx.run, _state(ctx.run)
    if "events_through" in state:
        return pd.read_parquet(run.events) if run.events.is_file() else events_frame([])
    journal = _log(ctx, "events")
    current, after = _published(ctx, "events_through", journal)
    try:
        _drop_quietly(journal, after)   # records left behind by a run that ended before its drop, or whose drop failed
        through = journal.seal()
        after, logged = _read_sealed(journal, through, after)
    finally:
        journal.close()
    now, bounds = time.time(), ctx.settings.realtime.bounds()
    good, bad = _checked(logged, lambda r: event_problem(r, now, bounds, earliest=EARLIEST_TIMESTAMP))
    _quarantine(run, "events", bad)
    carried = _carried(current.events if current else None)
    parts = [p for p in (carried, events_frame(good)) if p is not None and len(p)]
    events = pd.concat(parts, ignore_index=True) if parts else events_frame([])
    events = events.reindex(columns=[*EVENT_COLUMNS, EVENT_ID, POSTED_BY])
    repeated = events[EVENT_ID].notna() & events.duplicated(["USER_ID", EVENT_ID], keep="first")
    events = events[~repeated].reset_index(drop=True).astype({EVENT_ID: "string", POSTED_BY: "string"})
    if len(events):
        _write_parquet(events, run.events)
    _update_state(run, published=_base(run, current), events_through=through, events_through_log=journal.name,
                  events_after=after,
                  events=len(events), quarantined=len(bad), quarantined_by_field=_problem_counts(bad),
                  duplicates=int(repeated.sum()))
    log.info("real-time events: %d (%s sealed at %d; %d new, %d quarantined, %d repeated event_ids)",
             len(events), journal.name, through, len(good), len(bad), int(repeated.sum()))
    return events


def event_counts(run: RunLayout) -> dict[str, int]:
    """The run's real-time event counts for the manifest: trained on, quarantined, repeated event_ids dropped."""
    state = _state(run)
    return {"realtime_events": int(state.get("events", 0)), "events_quarantined": int(state.get("quarantined", 0)),
            "events_repeated": int(state.get("duplicates", 0))}


def summary(run: RunLayout) -> dict:
    """What the report shows of the run's real-time logs (realtime.json)."""
    return _state(run)


def with_events(ctx: RunContext, interactions: pd.DataFrame) -> pd.DataFrame:
    """Aggregated interactions plus the run's real-time events, aggregated again (EVENT_VALUE summed, the first
    TIMESTAMP kept per user and item)."""
    from c360.recsys.data import aggregate_events

    events = run_events(ctx)
    if not len(events):
        return interactions
    return aggregate_events(pd.concat([interactions[EVENT_COLUMNS], events[EVENT_COLUMNS]], ignore_index=True),
                            engine="pandas")


RECORD_ID, MATCH_ID = "__record_id", "match_id"   # columns of committed.parquet beside the record's own


def committed_frame(records: list[dict], cfg) -> pd.DataFrame:
    """Logged customer commits as the match config's input columns (c360.entity_resolution.online.input_record),
    their ids again as RECORD_ID and the match_ids they were given."""
    from c360.entity_resolution.online import input_record

    rows = [{**input_record(r["fields"], cfg, str(r["id"])), RECORD_ID: str(r["id"]), MATCH_ID: int(r["match_id"])}
            for r in records if "id" in r]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=[RECORD_ID, MATCH_ID])


def match_inputs(ctx: RunContext, merged: str | Path, previous: Path | None,
                 moves: pd.DataFrame | None = None) -> tuple[Path, Path | None]:
    """(what the match step matches, the match_ids to keep stable): the merged records and `previous` as they are
    when no customer was committed in real time and no steward split a match; else the merged records plus the
    committed ones (`er/input.parquet`: a directory holding the merged table's part files, linked, and one part of the
    committed records not in it) and `previous` with the committed records' match_ids and then the ids of the parts
    stewards' decisions split off (`moves`: id, match_id; c360.jobs.review_intake) over it (`er/previous_ids.parquet`):
    a part a steward split off keeps its id, or is listed among the id changes, and no new cluster is given it. The
    merged table and the previous output are read by DuckDB (SQL over the files): neither is loaded into pandas."""
    import pyarrow.parquet as pq

    from c360.entity_resolution.config import load_config

    run, state = ctx.run, _state(ctx.run)
    cfg = load_config(ctx.settings.er.config)
    merged_parts = _parquet_parts(Path(merged))
    schema = pq.read_schema(merged_parts[0])
    merged_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in merged_parts)
    if "customers_through" in state:
        committed = _carried(run.committed)
    else:
        committed = _seal_customers(ctx, merged_rows, previous, cfg)
    committed = committed if committed is not None and len(committed) else None
    moves = moves if moves is not None and len(moves) else None
    if committed is None and moves is None:
        return Path(merged), previous
    import duckdb

    con = duckdb.connect()
    parts = [] if committed is None else [
        pd.DataFrame({"id": committed[RECORD_ID].astype(str), "match_id": committed[MATCH_ID].astype("int64")})]
    if moves is not None:
        parts.append(pd.DataFrame({"id": moves["id"].astype(str), "match_id": moves["match_id"].astype("int64")}))
    ids = pd.concat(parts, ignore_index=True).drop_duplicates("id", keep="last")
    con.register("committed_ids", ids)
    sql = "SELECT id, match_id FROM committed_ids"
    if previous is not None and Path(previous).exists():  # a committed record keeps the id it was given
        id_col = _published_id_column(Path(previous))
        sql = (f"SELECT CAST(\"{id_col}\" AS VARCHAR) AS id, CAST(match_id AS BIGINT) AS match_id "
               f"FROM read_parquet({_files(_parquet_parts(Path(previous)))}) "
               f"WHERE CAST(\"{id_col}\" AS VARCHAR) NOT IN (SELECT id FROM committed_ids) UNION ALL {sql}")
    run.previous_ids.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(run.previous_ids) as tmp:
        con.execute(f"COPY ({sql}) TO '{tmp}' (FORMAT PARQUET)")
    # its report, as a match output's: the id column, and the highest id the published lineage handed out (a retired
    # id is never handed out again: c360.entity_resolution.stable_ids)
    top = _published_max_id(Path(previous)) if previous is not None and Path(previous).exists() else 0
    top = max(top, int(moves["match_id"].max()) if moves is not None else 0)   # a split-off part's id is handed out
    write_json_file(MatchOutput(run.previous_ids).report, {"id": "id", "max_match_id": top})
    if committed is None:
        con.close()
        return Path(merged), run.previous_ids
    # a record the sources now have (the policy reached them) is matched from there, keeping its id
    known = {r[0] for r in con.execute(
        f"SELECT DISTINCT CAST(\"{cfg.id}\" AS VARCHAR) FROM read_parquet({_files(merged_parts)}) "
        f"WHERE CAST(\"{cfg.id}\" AS VARCHAR) IN (SELECT id FROM committed_ids)").fetchall()}
    con.close()
    fresh = committed[~committed[RECORD_ID].astype(str).isin(known)]
    records = fresh.assign(**{cfg.id: fresh[RECORD_ID]}).reindex(columns=schema.names)
    _write_input(run.match_input, merged_parts, records, schema)
    log.info("real-time customers: %d committed record(s), %d of them not in the sources", len(committed), len(fresh))
    return run.match_input, run.previous_ids


def _parquet_parts(path: Path) -> list[Path]:
    """The Parquet files of a table: the file itself, or a directory's part files (Spark's layout)."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*.parquet") if not p.name.startswith(("_", ".")))


def _files(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _write_input(target: Path, parts: list[Path], records: pd.DataFrame, schema) -> None:
    """The match input as a directory of parts: the merged table's files (hard links, copies across file systems)
    and the committed records in the merged table's schema."""
    import os
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.mkdir()
        for i, p in enumerate(parts):
            dest = tmp / f"part-{i:05d}-merged.parquet"
            try:
                os.link(p, dest)
            except OSError:
                shutil.copyfile(p, dest)
        # the merged table's columns and types, every one nullable: Spark writes constants (`source`) as non-null,
        # and a committed record may lack them
        nullable = pa.schema([f.with_nullable(True) for f in schema])
        table = pa.Table.from_pandas(records.astype(object).where(records.notna(), None), schema=nullable,
                                     preserve_index=False)
        pq.write_table(table, tmp / f"part-{len(parts):05d}-realtime.parquet")


def _published_id_column(matched: Path) -> str:
    report = MatchOutput(matched).report
    return read_json_file(report).get("id", "id") if report.is_file() else "id"


def _published_max_id(matched: Path) -> int:
    """The highest match_id the published output's lineage handed out (its report's; 0 without)."""
    report = MatchOutput(matched).report
    return int(read_json_file(report).get("max_match_id") or 0) if report.is_file() else 0


def _seal_customers(ctx: RunContext, merged_rows: int, previous: Path | None, cfg) -> pd.DataFrame | None:
    """Seal the customers log and reserve this run's new match_ids in one step under its lock; the committed records
    this run contains (the published run's plus the sealed segments) are written into it."""
    run = ctx.run
    journal = _log(ctx, "customers")
    current, after = _published(ctx, "customers_through", journal)
    carried = _carried(current.committed if current else None)
    _drop_quietly(journal, after)
    with journal.exclusive() as writer:
        through = writer.seal()
        after, logged = _read_sealed(journal, through, after)
        sealed, bad = _checked(logged, commit_problem)
        sealed, published_top = _in_log_order(sealed, previous)
        new = committed_frame(sealed, cfg)
        parts = [p for p in (carried, new) if p is not None and len(p)]
        committed = pd.concat(parts, ignore_index=True).drop_duplicates(RECORD_ID, keep="last") if parts else None
        known = [int(r[RESERVED]) for r in sealed if RESERVED in r] + [published_top]
        if committed is not None:
            known.append(int(committed[MATCH_ID].max()))
        reserved = max(known, default=0) + merged_rows + (len(committed) if committed is not None else 0)
        writer.append([{RESERVED: reserved}])
    journal.close()
    if committed is not None:
        _write_parquet(committed, run.committed)
    _quarantine(run, "customers", bad)
    _update_state(run, published=_base(run, current), customers_through=through,
                  customers_through_log=journal.name, customers_after=after,
                  committed=0 if committed is None else len(committed), customers_quarantined=len(bad),
                  reserved_through=reserved)
    return committed


def _in_log_order(lines: list[dict], previous: Path | None) -> tuple[list[dict], int]:
    """(the customers log's lines as every API worker applied them (c360.commits.CommitOrder, from the published run
    `previous`): the reservations, and each record id's first commit with the match_id the order gave it; the highest
    match_id of `previous`, 0 without one)."""
    ids = sorted({str(r["id"]) for r in lines if RESERVED not in r})
    known: set[str] = set()
    issued = top = 0
    if previous is not None and Path(previous).exists():
        import duckdb

        id_col = _published_id_column(Path(previous))
        src = f"read_parquet({_files(_parquet_parts(Path(previous)))})"
        con = duckdb.connect()
        try:
            top = int(con.execute(f"SELECT coalesce(max(match_id), 0) FROM {src}").fetchall()[0][0])
            if ids:
                con.register("line_ids", pd.DataFrame({"id": ids}))
                known = {r[0] for r in con.execute(f"SELECT DISTINCT CAST(\"{id_col}\" AS VARCHAR) FROM {src} "
                                                   f"WHERE CAST(\"{id_col}\" AS VARCHAR) IN (SELECT id FROM line_ids)")
                         .fetchall()}
        finally:
            con.close()
        issued = max(top, _published_max_id(Path(previous)))
    order = CommitOrder(issued, known.__contains__)
    out = []
    for r in lines:
        mid = order.decide(r)
        if RESERVED in r:
            out.append({**r, RESERVED: mid})
        elif mid is not None:
            out.append({**r, "match_id": mid})
    return out, top


def _drop_quietly(journal: RealtimeLog, through: int) -> None:
    """Delete the log's records up to position `through` (a published run contains them); a failure only leaves
    them: the next run reads after the published run's position and drops them then."""
    if through <= 0:
        return
    try:
        dropped = journal.drop_through(through)
        if dropped:
            log.info("dropped what the published run contains of %s (through %s)", journal.name, dropped[-1])
    except OSError as exc:
        log.warning("could not drop the published records of %s: %s", journal.name, exc)


def drop_published(ctx: RunContext) -> None:
    """After the run is published: delete what it contains of the logs (a failure only leaves it for later)."""
    state = _state(ctx.run)
    for key, name in (("events_through", "events"), ("customers_through", "customers"),
                      ("decisions_through", "decisions")):
        if key in state:
            journal = _log(ctx, name)
            try:
                _drop_quietly(journal, position_of(state, key, journal))
            finally:
                journal.close()


def base_run(run: RunLayout) -> str | None:
    """The run that was published when this one read the real-time logs (it read what that one had not), or None:
    nothing was published then, or the run never read them."""
    return _state(run).get("published")
