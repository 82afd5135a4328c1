"""The nightly's side of real time: what the API logged since the published run goes into this run, and once this
run is published its logs drop what it contains.

- events (POST /events): the run seals the events log, trains on the published run's events plus every sealed
  segment (kept in `recsys/events.parquet`, so the next run carries them on after the log is dropped);
- customers (POST /customers/match?commit=true): the run seals the customers log; the committed records join the
  merged records as match input (a record now also in the sources is taken from there), and the match_ids they
  were given join the published ones as the ids to keep stable. Under the same lock the run reserves the match_ids
  it may hand out (at most one per input record above the highest id it knows): the API gives new customers ids
  above that until the run is published, so a record committed while the nightly runs never shares an id with a
  cluster the nightly creates.

`runs/<id>/realtime.json` records the sealed segments, so a resumed run reads the same ones and the publish drops
exactly those.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from c360.io import atomic_path, read_json_file, write_json_file
from c360.jobs.pipeline import RunContext
from c360.journal import Journal
from c360.layout import RunLayout

log = logging.getLogger("c360.nightly")

EVENT_COLUMNS = ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_VALUE"]
RESERVED = "reserved_through"   # a customers-log line: match_ids up to this one are a nightly's to give


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
    """Logged events (user_id, item_id, timestamp, event_value) in the interactions schema."""
    df = pd.DataFrame.from_records(records, columns=["user_id", "item_id", "timestamp", "event_value"])
    return pd.DataFrame({"USER_ID": df["user_id"].astype(str), "ITEM_ID": df["item_id"].astype(str),
                         "TIMESTAMP": df["timestamp"].astype("int64"),
                         "EVENT_VALUE": df["event_value"].astype("float64")})


def run_events(ctx: RunContext) -> pd.DataFrame:
    """Every real-time event this run trains on (written once into the run; a resumed run reads it back)."""
    run, state = ctx.run, _state(ctx.run)
    if "events_through" in state:
        return pd.read_parquet(run.events) if run.events.is_file() else events_frame([])
    journal = Journal(ctx.warehouse.events_log)
    through = journal.seal()
    current = ctx.warehouse.current()
    parts = [p for p in (_carried(current.events if current else None),
                         events_frame(journal.read_through(through))) if p is not None and len(p)]
    events = pd.concat(parts, ignore_index=True) if parts else events_frame([])
    if len(events):
        _write_parquet(events, run.events)
    _update_state(run, events_through=through, events=len(events))
    log.info("real-time events: %d (log sealed through segment %d)", len(events), through)
    return events


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
    """Logged customer commits as the match config's input columns (c360.entity_resolution.realtime.input_record),
    their ids again as RECORD_ID and the match_ids they were given."""
    from c360.entity_resolution.realtime import input_record

    rows = [{**input_record(r["fields"], cfg, str(r["id"])), RECORD_ID: str(r["id"]), MATCH_ID: int(r["match_id"])}
            for r in records if "id" in r]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=[RECORD_ID, MATCH_ID])


def match_inputs(ctx: RunContext, merged: str | Path, previous: Path | None) -> tuple[Path, Path | None]:
    """(what the match step matches, the match_ids to keep stable): the merged records and `previous` as they are
    when no customer was committed in real time; else the merged records plus the committed ones (`er/input.parquet`:
    a directory holding the merged table's part files, linked, and one part of the committed records not in it)
    and `previous` plus their match_ids (`er/previous_ids.parquet`). The merged table and the previous output are
    read by DuckDB (SQL over the files): neither is loaded into pandas."""
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
    if committed is None or not len(committed):
        return Path(merged), previous
    import duckdb

    con = duckdb.connect()
    ids = pd.DataFrame({"id": committed[RECORD_ID].astype(str), "match_id": committed[MATCH_ID].astype("int64")})
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
    from c360.layout import MatchOutput

    report = MatchOutput(matched).report
    return read_json_file(report).get("id", "id") if report.is_file() else "id"


def _seal_customers(ctx: RunContext, merged_rows: int, previous: Path | None, cfg) -> pd.DataFrame | None:
    """Seal the customers log and reserve this run's new match_ids in one step under its lock; the committed records
    this run contains (the published run's plus the sealed segments) are written into it."""
    run = ctx.run
    current = ctx.warehouse.current()
    carried = _carried(current.committed if current else None)
    journal = Journal(ctx.warehouse.customers_log)
    with journal.exclusive() as writer:
        through = writer.seal()
        sealed = journal.read_through(through)
        new = committed_frame(sealed, cfg)
        parts = [p for p in (carried, new) if p is not None and len(p)]
        committed = pd.concat(parts, ignore_index=True).drop_duplicates(RECORD_ID, keep="last") if parts else None
        known = [int(r[RESERVED]) for r in sealed if RESERVED in r]
        if committed is not None:
            known.append(int(committed[MATCH_ID].max()))
        if previous is not None and Path(previous).exists():
            known.append(int(pd.read_parquet(previous, columns=["match_id"])["match_id"].max()))
        reserved = max(known, default=0) + merged_rows + (len(committed) if committed is not None else 0)
        writer.append([{RESERVED: reserved}])
    if committed is not None:
        _write_parquet(committed, run.committed)
    _update_state(run, customers_through=through, committed=0 if committed is None else len(committed),
                  reserved_through=reserved)
    return committed


def drop_published(ctx: RunContext) -> None:
    """After the run is published: delete the log segments it contains (a failure only leaves them for later)."""
    state = _state(ctx.run)
    for key, path in (("events_through", ctx.warehouse.events_log), ("customers_through", ctx.warehouse.customers_log)):
        if key not in state:
            continue
        try:
            dropped = Journal(path).drop_through(int(state[key]))
            if dropped:
                log.info("dropped %d segment(s) of %s that run %s contains", len(dropped), path, ctx.run_id)
        except OSError as exc:
            log.warning("could not drop the published segments of %s: %s", path, exc)
