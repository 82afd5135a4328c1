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


# a folder that is there but lacks the tables: named with the first missing file, before Spark starts or data is
# generated (`er merge` ran Spark for 8 s, `nightly --insurance` 12 s, `nightly --visits` left an empty
# inputs/insurance-...tmp folder in the warehouse)
EMPTY = "empty"
EMPTY_DIRS = {
    "er merge": (["er", "merge", "--sources", EMPTY, "--out", "merged.parquet"],
                 f"--sources {EMPTY}: missing source_auto_customer.csv, source_auto_address.csv, "
                 "source_property_customers.csv, source_property_addresses.csv"),
    "er generate --accounts": (["er", "generate", "--customers", "10", "--accounts", "--visits", EMPTY, "--out", "g"],
                               f"--visits {EMPTY}: missing userVisits-sigir17/userVisits-*-allPOI.csv, "
                               "poiList-sigir17/POI-*.csv (the sigir17 layout)"),
    "nightly --insurance": (["nightly", "--insurance", EMPTY, "--warehouse", "wh"],
                            f"--insurance (nightly.insurance) {EMPTY}: missing source_auto_customer.csv, "
                            "source_auto_address.csv, source_auto_vehicles.csv, source_property_customers.csv, "
                            "source_property_addresses.csv"),
    "nightly --visits": (["nightly", "--visits", EMPTY, "--warehouse", "wh"],
                         f"--visits (nightly.visits) {EMPTY}: missing userVisits-sigir17/userVisits-*-allPOI.csv, "
                         "poiList-sigir17/POI-*.csv (the sigir17 layout)"),
}


@pytest.mark.parametrize("command", [pytest.param(c, marks=pytest.mark.slow) if c.startswith("nightly") else c
                                     for c in EMPTY_DIRS])
def test_a_folder_without_its_tables_is_named_with_the_missing_files_before_any_work(command, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / EMPTY).mkdir()
    argv, message = EMPTY_DIRS[command]
    args = build_parser().parse_args(argv)
    with pytest.raises(InputError) as raised:
        args.func(args)
    assert str(raised.value) == message
    # nothing written: no warehouse (so no inputs/insurance-...tmp), no generated data, no output
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [EMPTY]


def test_the_cli_names_the_missing_table_without_starting_spark(tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    for name in ("source_auto_customer.csv", "source_auto_address.csv", "source_property_customers.csv"):
        (sources / name).write_text("id\n1\n")
    proc = run_cli("er", "merge", "--sources", str(sources), "--out", str(tmp_path / "m.parquet"),
                   check=False, timeout=60)
    assert proc.returncode == 2
    # the only line: no Spark or JVM output before it (a started session logs its default log level)
    assert proc.stderr.strip() == f"c360 er: error: --sources {sources}: missing source_property_addresses.csv"
    assert not (tmp_path / "m.parquet").exists()


def test_a_failed_generation_leaves_no_temporary_folder_in_the_warehouse(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from c360.entity_resolution import generate as generate_mod
    from c360.jobs import steps
    from c360.layout import Warehouse
    from c360.settings import load_settings

    def failing(n, seed, out_dir, visits=None, visitors=None):
        (out_dir / "source_auto_customer.csv").parent.mkdir(parents=True)
        (out_dir / "source_auto_customer.csv").write_text("policyid\n1\n")
        raise InputError("the visits could not be read")

    monkeypatch.setattr(generate_mod, "generate", failing)
    settings = load_settings(None, env={}, overrides={"warehouse": str(tmp_path / "wh")})
    ctx = SimpleNamespace(settings=settings, warehouse=Warehouse(tmp_path / "wh"))
    with pytest.raises(InputError, match="could not be read"):
        steps._insurance_dir(ctx, None, "sigir17")
    inputs = Warehouse(tmp_path / "wh").inputs
    assert not inputs.exists() or [p.name for p in inputs.rglob("*")] == []


def test_two_runs_generating_at_once_keep_one_whole_folder(tmp_path, monkeypatch):
    """Two nightlies of one warehouse generate the same data at once: each writes a folder of its own, the first
    to finish moves it into place, the other's is dropped (a shared temporary folder let one remove or move the
    other's half-written files)."""
    from types import SimpleNamespace

    from c360.entity_resolution import generate as generate_mod
    from c360.jobs import steps
    from c360.layout import Warehouse
    from c360.settings import load_settings

    settings = load_settings(None, env={}, overrides={"warehouse": str(tmp_path / "wh")})
    ctx = SimpleNamespace(settings=settings, warehouse=Warehouse(tmp_path / "wh"))
    out = ctx.warehouse.generated_insurance(settings.nightly.generate_customers, settings.nightly.seed)
    writers = []

    def generate(n, seed, out_dir, visits=None, visitors=None):
        writers.append(out_dir)
        out_dir.mkdir(parents=True)
        (out_dir / "truth.csv").write_text(f"written by {len(writers)}\n")
        if len(writers) == 1:   # the other run finishes while this one still writes
            assert steps._insurance_dir(ctx, None, "personalize") == out

    monkeypatch.setattr(generate_mod, "generate", generate)
    assert steps._insurance_dir(ctx, None, "personalize") == out
    assert len(writers) == 2 and writers[0] != writers[1]   # a folder each
    assert (out / "truth.csv").read_text() == "written by 2\n"   # the first to finish, whole
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]   # no temporary folder left
