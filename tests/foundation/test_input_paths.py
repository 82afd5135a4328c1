"""A missing input path is reported at once, naming the option and the path, before Spark starts or data is
generated (`er merge` ran Spark for 9 s and `nightly --visits` generated customers for 19 s before saying so)."""

from __future__ import annotations

import time

import pytest

from c360.cli import build_parser
from c360.errors import InputError
from tests.conftest import run_cli

MISSING = "no-such-input"

# one command per family that reads input paths; each would start Spark or generate data before failing late
COMMANDS = {
    "er merge": ["er", "merge", "--sources", MISSING, "--out", "merged.parquet"],
    "er match": ["er", "match", "--input", MISSING, "--out", "matched.parquet"],
    "nightly": ["nightly", "--visits", MISSING],
    "recsys train": ["recsys", "train", "--interactions", MISSING, "--algo", "popularity", "--out", "model"],
    "recsys evaluate": ["recsys", "evaluate", "--format", "sigir17", "--interactions", MISSING, "--out", "m.json"],
    "graph export": ["graph", "export", "--matched", MISSING, "--out", "graph"],
}


@pytest.mark.parametrize("command", [pytest.param(c, marks=pytest.mark.slow) if c == "nightly" else c
                                     for c in COMMANDS])   # the nightly's modules take 1-2 s to import
def test_a_missing_input_is_named_before_any_work(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args([*COMMANDS[command], *(["--warehouse", "wh"] if command == "nightly" else [])])
    with pytest.raises(InputError, match=f"--[a-z]+.* {MISSING}: no such file or directory"):
        args.func(args)   # the first call also imports the command's modules (the nightly's: 1-2 s)
    started = time.perf_counter()
    with pytest.raises(InputError):
        args.func(args)
    assert time.perf_counter() - started < 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == []   # no warehouse, no generated data, no output


def test_the_cli_exits_2_naming_the_path(tmp_path):
    proc = run_cli("er", "merge", "--sources", str(tmp_path / MISSING), "--out", str(tmp_path / "m.parquet"),
                   check=False, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"c360 er: error: --sources {tmp_path / MISSING}: no such file or directory"
