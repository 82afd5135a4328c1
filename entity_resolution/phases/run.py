"""A match run's parameters and its engine session (MatchRun), and the timing of its phases."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from c360 import hadoop_fs
from c360.entity_resolution import engines as E
from c360.entity_resolution.config import MatchConfig, load_config
from c360.entity_resolution.tables import Table
from c360.errors import InputError
from c360.layout import MatchOutput

log = logging.getLogger("c360.entity_resolution.match")


@dataclass(frozen=True)
class MatchRun:
    """One match run: what it was asked (inputs, config, output, threshold, labels, previous output, sampling) and
    the engine it runs in (open until `close`, or the end of a `with` block)."""

    inputs: tuple[str | Path, ...]   # as given, for the report
    cfg: MatchConfig
    output: MatchOutput
    db: E.Engine
    threshold: float | None = None   # None: the config's, else chosen (labels, or threshold.unlabelled)
    labels: tuple | None = None
    previous: Path | str | None = None   # a local Path or a Hadoop URI (Spark); None: an existing output
    u_max_pairs: float = 2e6
    seed: int = 42
    started: float = 0.0

    @classmethod
    def open(cls, inputs, config: str | Path | None = None, engine: str = "spark", *, out="matched.parquet",
             previous=None, threshold: float | None = None, labels=None, spark=None, **params) -> MatchRun:
        """Check the parameters (InputError naming the option), load the config, open the engine (`spark`: the
        session to use, else the shared one)."""
        started = time.time()
        inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
        if not inputs or len(inputs) > 2:
            raise InputError("--input must be given once or twice")
        if threshold is not None and not 0 < float(threshold) < 1:
            raise InputError(f"--threshold must be between 0 and 1 (got {threshold})")
        output = MatchOutput(output_path(out, engine, "--out"))
        previous = output_path(previous, engine, "--previous") if previous else None
        cfg = load_config(config)
        # unique table names: a shared Spark session may hold an earlier run's
        db = E.open_engine(engine, f"_{uuid.uuid4().hex[:8]}", spark)
        return cls(tuple(inputs), cfg, output, db, threshold, tuple(labels) if labels else None, previous,
                   started=started, **params)

    def __enter__(self) -> MatchRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Drop the run's tables and undo its engine settings (a Spark session lives on)."""
        self.db.close()

    @property
    def engine(self) -> str:
        return self.db.name

    @property
    def spark(self):
        """The Spark session (None on DuckDB)."""
        return getattr(self.db, "spark", None)

    @property
    def link_type(self) -> str:
        return "link_and_dedupe" if len(self.inputs) == 2 else "dedupe_only"

    def register(self, table: Table, name: str):
        """An engine table registered with Splink (a SplinkDataFrame) under a name unique to the run."""
        return self.db.db_api.register(table.name, table_name=f"{name}{self.db.tag}")

    def small_splink_table(self, df: pd.DataFrame, name: str):
        """A small pandas frame (labelled pairs) as an engine table registered with Splink."""
        return self.db.db_api.register(self.db.small_table(name, df).name, table_name=f"{name}_splink{self.db.tag}")


def output_path(path: str | Path, engine: str, option: str) -> Path | str:
    """A match output's path as the engine takes it: a local Path, or on Spark any Hadoop URI (hdfs://, s3a://,
    file://) as given; DuckDB writes local paths (file: URIs included), another URI is an InputError naming
    `option`."""
    if not hadoop_fs.is_uri(path):
        return Path(path)
    if engine == "spark":
        return str(path)
    local = hadoop_fs.local_path(path)
    if local is None:
        raise InputError(f"{option} {path}: the {engine} engine reads and writes local paths only "
                         f"(a Hadoop URI such as hdfs:// or s3a:// needs --engine spark)")
    return local


@contextlib.contextmanager
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    """Add the seconds the block takes to `timings[phase]`."""
    start = time.time()
    try:
        yield
    finally:
        timings[phase] = timings.get(phase, 0.0) + time.time() - start


class Warnings(list):
    """A phase's warnings: problems the run survived, logged as they happen and listed in the report."""

    def warn(self, message: str) -> None:
        log.warning(message)
        self.append(message)
