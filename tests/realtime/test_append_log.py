"""The append-only log behind POST /events and commits: durable appends, a crash's torn line, seal, drop, tail,
and writers in several threads and processes."""

from __future__ import annotations

import multiprocessing
import os
import threading

from c360.append_log import AppendLog


def lines(journal: AppendLog) -> list[dict]:
    return journal.read_through(10**9)


def test_append_seal_tail_and_drop(tmp_path):
    j = AppendLog(tmp_path / "log")
    tail = j.tail()
    assert tail.read() == [] and j.segments() == []
    j.append([{"n": 1}, {"n": 2}])
    assert tail.read() == [{"n": 1}, {"n": 2}] and tail.read() == []
    assert j.seal() == 1 and j.segments() == [1, 2]
    j.append([{"n": 3}])
    assert tail.read() == [{"n": 3}]  # the seal marker sends the reader on to segment 2, it is no record
    assert j.read_through(1) == [{"n": 1}, {"n": 2}] and j.read_through(2, after=1) == [{"n": 3}]
    late = j.tail(after=1)  # a run that contains segment 1 reads from 2 on
    assert late.read() == [{"n": 3}]
    assert j.drop_through(5) == [1]  # never the active segment
    assert j.segments() == [2]
    j.append([{"n": 4}])
    assert tail.read() == [{"n": 4}] and late.read() == [{"n": 4}]
    fresh = j.tail()  # segment 1 is gone: a new reader starts at what is left
    assert fresh.read() == [{"n": 3}, {"n": 4}]
    assert j.seal() == 2 and j.seal() == 3  # an empty segment seals too
    j.append([{"n": 5}])
    assert tail.read() == [{"n": 5}] and tail.records_read == 5


def test_a_line_torn_by_a_crash_is_never_read_and_cut_by_the_next_writer(tmp_path):
    j = AppendLog(tmp_path / "log")
    j.append([{"n": 1}])
    path = j.path(j.segments()[-1])
    with open(path, "ab") as f:  # a write the crash interrupted: no newline, its append never returned
        f.write(b'{"n": 2, "tru')
    tail = j.tail()
    assert tail.read() == [{"n": 1}] and lines(j) == [{"n": 1}]
    j.append([{"n": 3}])
    assert path.read_bytes() == b'{"n":1}\n{"n":3}\n'
    assert tail.read() == [{"n": 3}]


def test_concurrent_appends_from_threads_share_fsyncs_and_lose_nothing(tmp_path, monkeypatch):
    j = AppendLog(tmp_path / "log")
    syncs = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real(fd)))
    threads = [threading.Thread(target=lambda t=t: [j.append([{"t": t, "i": i}]) for i in range(50)])
               for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = lines(j)
    assert sorted((r["t"], r["i"]) for r in got) == [(t, i) for t in range(8) for i in range(50)]
    for t in range(8):  # each writer's records in its own order
        assert [r["i"] for r in got if r["t"] == t] == list(range(50))
    assert len(syncs) <= 401  # group commit: at most one fsync per append, and the new segment's directory


def _writer(directory: str, proc: int, n: int) -> None:
    j = AppendLog(directory)
    for i in range(n):
        j.append([{"p": proc, "i": i, "pad": "x" * (i % 50)}])


def test_appends_from_several_processes_interleave_whole_lines(tmp_path):
    directory = str(tmp_path / "log")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(directory, p, 100)) for p in range(3)]
    for p in procs:
        p.start()
    j = AppendLog(directory)
    tail, seen = j.tail(), []
    for _ in range(3):  # a seal while they write: nothing is lost or read twice
        seen += tail.read()
        j.seal()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    seen += tail.read()
    assert sorted((r["p"], r["i"]) for r in seen) == [(p, i) for p in range(3) for i in range(100)]
    assert sorted((r["p"], r["i"]) for r in lines(j)) == [(p, i) for p in range(3) for i in range(100)]


def test_segments_and_lock_are_the_owners_only_whatever_the_umask(tmp_path):
    import stat

    previous = os.umask(0o022)
    try:
        j = AppendLog(tmp_path / "warehouse" / "realtime" / "customers")
        j.append([{"id": "1-auto", "fields": {"ssn": "123-45-6789"}, "match_id": 1}])
        j.seal()
    finally:
        os.umask(previous)
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in (tmp_path / "warehouse").rglob("*")}
    assert modes == {"warehouse/realtime": 0o700, "warehouse/realtime/customers": 0o700,
                     "warehouse/realtime/customers/.lock": 0o600,
                     "warehouse/realtime/customers/000000000001.jsonl": 0o600,
                     "warehouse/realtime/customers/000000000002.jsonl": 0o600}
    assert stat.S_IMODE((tmp_path / "warehouse").stat().st_mode) == 0o700


def test_a_seal_marker_that_names_no_next_segment_is_a_bad_line_every_reader_skips(tmp_path, caplog):
    """A seal writes {"_sealed": the next segment} into the last one, after creating it: any other marker (a line
    written by hand) is logged and skipped like a line that is not JSON, and never moves a reader back or away."""
    import logging

    j = AppendLog(tmp_path / "log")
    tail = j.tail()
    j.append([{"n": 1}])
    with caplog.at_level(logging.ERROR, logger="c360.append_log"):
        with j.exclusive() as writer:
            writer.write(b'{"_sealed": "x"}\n{"_sealed": true}\n{"_sealed": -1}\n{"_sealed": 1}\n{"_sealed": 9}\n'
                         b'{"_sealed": 2}\n')   # the next number, but no such segment yet
        j.append([{"n": 2}])
        assert tail.read() == [{"n": 1}, {"n": 2}] and tail.read() == []
        assert j.read_through(10**9) == [{"n": 1}, {"n": 2}]
    # the tail: five markers of no next segment, one of a segment never created; read_through: the five
    assert len([r for r in caplog.records if r.name == "c360.append_log"]) == 6 + 5
    assert j.seal() == 1   # a real seal: the reader goes on to segment 2, after its marker
    j.append([{"n": 3}])
    assert tail.read() == [{"n": 3}] and tail.records_read == 3
    assert j.read_through(1) == [{"n": 1}, {"n": 2}] and j.read_through(2, after=1) == [{"n": 3}]
