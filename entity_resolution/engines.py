"""The two engines a match runs on: Spark (DataFrames, any Hadoop path) and DuckDB (SQL over the files, the
one-machine default). Both answer the same questions in SQL over named tables; only aggregates, small samples and
the trained model come back to the driver.

The base class asks the questions (input checks, standardization, null shares, skew, samples, written outputs);
each engine supplies the core: run a query into a named table, fetch a small result, read a file, write Parquet.
Every table an engine makes is handed out as a `Table` (tables.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from c360 import hadoop_fs
from c360.entity_resolution import standardize_sql as Q
from c360.entity_resolution.config import MatchConfig
from c360.entity_resolution.tables import Table
from c360.errors import InputError
from c360.io import atomic_path, csv_parts, spark_write, table_kind

# Spark SQL settings while a match runs: strptime-like dates (a value the new parser rejects is missing, not an
# error); plan descriptions cut short (Spark describes every query's plan to its listeners: deep plans, such as
# the connected-components loop over the standardized tables, spent minutes building those strings)
SPARK_CONF = {"spark.sql.legacy.timeParserPolicy": "CORRECTED", "spark.sql.maxPlanStringLength": "20000"}
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"


def is_remote(path: str | Path) -> bool:
    return "://" in str(path) and not str(path).startswith("file:")


class Engine:
    """Named tables, SQL over them, small results back (see the module doc)."""

    name = ""
    dialect: Q.Dialect

    def __init__(self, tag: str):
        self.tag = tag   # unique table names: a shared session may hold an earlier run's
        self.db_api: Any = None
        self._on_close: list = []

    def on_close(self, fn) -> None:
        """Run `fn` when the engine closes (a setting to restore)."""
        self._on_close.append(fn)

    def close(self) -> None:
        """Drop this run's tables, undo its settings."""
        self._drop()
        for fn in reversed(self._on_close):
            fn()

    def size_for(self, records: int) -> None:
        """Settings for a run over `records` input records (Spark: its shuffle partitions)."""

    def _handle(self, physical: str) -> Table:
        return Table(physical, self, self.types(physical))

    # ---- core (subclasses) ----------------------------------------------------------------------------------
    def table(self, name: str, sql: str, persist: bool = False) -> Table:
        """Make `sql` the table `name` (+ tag: its physical name); `persist`: computed once, kept."""
        raise NotImplementedError

    def rows(self, sql: str) -> list[tuple]:
        """A small result as tuples."""
        raise NotImplementedError

    def frame(self, sql: str) -> pd.DataFrame:
        """A small result as pandas."""
        raise NotImplementedError

    def types(self, table: str) -> dict[str, str]:
        """column -> type of a table (by its physical name)."""
        raise NotImplementedError

    def _read(self, path: str, kind: str, name: str) -> Table:
        raise NotImplementedError

    def read_parquet(self, path: str | Path, name: str) -> Table:
        """A Parquet file or directory of parts (a written output) as the table `name`."""
        return self._read(str(path), "parquet", name)

    def write_parquet(self, sql: str, path: Path | str) -> None:
        """Write the result of `sql` as Parquet at `path` (a local Path; on Spark also a Hadoop URI), atomically."""
        raise NotImplementedError

    def small_table(self, name: str, df: pd.DataFrame) -> Table:
        """A small pandas frame (labels) as a table."""
        raise NotImplementedError

    def _drop(self) -> None:
        raise NotImplementedError

    # ---- shared --------------------------------------------------------------------------------------------
    def one(self, sql: str) -> tuple:
        return self.rows(sql)[0]

    def read_input(self, path: str | Path, cfg: MatchConfig, name: str) -> tuple[Table, bool]:
        """(the raw table, whether it is a CSV read as text) of one input; a missing file, an empty one or missing
        configured columns raise InputError naming the file."""
        p = str(path)
        if not is_remote(p):
            if not Path(p).exists():
                raise InputError(f"{p}: file not found")
            if Path(p).is_file() and Path(p).stat().st_size == 0:
                raise InputError(f"{p}: file is empty")
        kind = table_kind(p)
        try:
            table = self._read(p, kind, name)   # its columns' types: a bad file fails here on Spark
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - each engine's reader raises its own errors
            raise InputError(f"{p}: cannot read {kind}: {str(exc).splitlines()[0]}") from exc
        missing = [c for c in cfg.columns if c not in table.columns]
        if missing:
            raise InputError(f"{p}: missing column(s) {', '.join(missing)} (found: {', '.join(table.columns)})")
        return table, kind == "csv"

    def check_input(self, path, table: Table, cfg: MatchConfig, csv: bool) -> dict:
        """Rows, present values per configured column (one aggregate); no rows, duplicate or missing ids raise
        InputError naming the file."""
        d, types = self.dialect, table.columns
        uid = Q.raw_text(cfg.id, types[cfg.id], d, csv)
        present = Q.present_counts(cfg, d, types, csv)
        row = self.one(f"SELECT count(*), sum(CASE WHEN {uid} IS NULL THEN 1 ELSE 0 END), "
                       f"{', '.join(present.values())} FROM {table}")
        if row[0] == 0:
            raise InputError(f"{path}: table has no rows")
        dup = [r[0] for r in self.rows(f"SELECT {uid} AS k FROM {table} WHERE {uid} IS NOT NULL GROUP BY {uid} "
                                       f"HAVING count(*) > 1 ORDER BY k LIMIT 5")]
        if dup:
            raise InputError(f"{path}: duplicate values in id column {cfg.id}: {', '.join(map(str, dup))}")
        if row[1]:
            raise InputError(f"{path}: id column {cfg.id} has missing values")
        return {"rows": int(row[0]), "present": {c: int(v or 0) for c, v in zip(present, row[2:], strict=True)}}

    def standardize(self, raw: Table, cfg: MatchConfig, csv: bool, source_dataset: str, name: str) -> Table:
        """The standardized table of a raw table (computed once: every later step reads it)."""
        sql = Q.standardize_query(cfg, self.dialect, raw.name, raw.columns, source_dataset, csv)
        return self.table(name, sql, persist=True)

    def present_shares(self, tables: list[Table], columns: list[str]) -> dict[str, int]:
        """Non-missing values per column over the union of `tables` (one aggregate)."""
        union = " UNION ALL ".join(f"SELECT {', '.join(Q.quote(c, self.dialect) for c in columns)} FROM {t}"
                                   for t in tables)
        row = self.one(f"SELECT {', '.join(f'count({Q.quote(c, self.dialect)})' for c in columns)} FROM ({union}) u")
        return {c: int(v) for c, v in zip(columns, row, strict=True)}

    def value_counts_summaries(self, tables: list[Table], columns: list[str]) -> dict[str, tuple[int, int, int]]:
        """Per column, (most frequent value's count, distinct values, non-missing values) over `tables`: one query
        for all of them (on Spark one job where a query per column took about 0.2 s each)."""
        if not columns:
            return {}
        parts = []
        for i, column in enumerate(columns):
            c = Q.quote(column, self.dialect)
            union = " UNION ALL ".join(f"SELECT {c} AS v FROM {t}" for t in tables)
            parts.append(f"SELECT {i} AS i, max(n) AS top, count(*) AS distinct_values, sum(n) AS total FROM "
                         f"(SELECT v, count(*) AS n FROM ({union}) u WHERE v IS NOT NULL GROUP BY v) g{i}")
        found = {int(r[0]): r[1:] for r in self.rows(" UNION ALL ".join(parts))}
        return {c: tuple(int(v or 0) for v in found[i]) for i, c in enumerate(columns)}

    def sample(self, table: Table, columns: list[str], fraction: float, seed: int) -> pd.DataFrame:
        """A Bernoulli sample of some columns (bounded: the caller picks `fraction` for at most ~50k rows)."""
        raise NotImplementedError


class DuckDBEngine(Engine):
    """DuckDB: an in-process database that spills to disk; files read with read_parquet / read_csv."""

    name = "duckdb"
    dialect = Q.DUCKDB

    def __init__(self, tag: str):
        import duckdb
        from splink import DuckDBAPI

        super().__init__(tag)
        self._tmp = tempfile.TemporaryDirectory(prefix="c360-er-duckdb-")
        self.con = duckdb.connect()
        self.con.execute(f"SET temp_directory = '{self._tmp.name}'")
        self.con.execute("SET preserve_insertion_order = false")
        self.db_api = DuckDBAPI(connection=self.con)

    def table(self, name, sql, persist=False):
        physical = f"{name}{self.tag}"
        kind = "TABLE" if persist else "VIEW"
        self.con.execute(f"CREATE OR REPLACE {kind} {physical} AS {sql}")
        return self._handle(physical)

    def rows(self, sql):
        return self.con.sql(sql).fetchall()

    def frame(self, sql):
        return self.con.sql(sql).df()

    def types(self, table):
        return {r[0]: r[1] for r in self.con.sql(f"DESCRIBE {table}").fetchall()}

    def _read(self, path, kind, name):
        if kind == "parquet":
            files = sorted(str(f) for f in Path(path).rglob("*.parquet")) if Path(path).is_dir() else [path]
            if not files:
                raise InputError(f"{path}: directory holds no Parquet part files")
            src = f"read_parquet({_list(files)}, union_by_name = true)"
        else:
            src = f"read_csv({_list([str(f) for f in csv_parts(path)])}, header = true, all_varchar = true, " \
                  "union_by_name = true)"
        return self.table(name, f"SELECT * FROM {src}")

    def write_parquet(self, sql, path):
        if hadoop_fs.is_uri(path):
            local = hadoop_fs.local_path(path)
            if local is None:
                raise InputError(f"{path}: the duckdb engine writes local paths only (use --engine spark)")
            path = local
        with atomic_path(path) as tmp:
            self.con.execute(f"COPY ({sql}) TO {Q.DUCKDB.lit(str(tmp))} (FORMAT PARQUET)")

    def small_table(self, name, df):
        physical = f"{name}{self.tag}"
        self.con.register(f"{physical}_df", df)
        self.con.execute(f"CREATE OR REPLACE TABLE {physical} AS SELECT * FROM {physical}_df")
        self.con.unregister(f"{physical}_df")
        return self._handle(physical)

    def sample(self, table, columns, fraction, seed):
        cols = ", ".join(Q.quote(c, self.dialect) for c in columns)
        if fraction >= 1:
            return self.frame(f"SELECT {cols} FROM {table}")
        return self.frame(f"SELECT {cols} FROM {table} USING SAMPLE {fraction * 100:.6f}% (bernoulli, {seed})")

    def _drop(self):
        self.con.close()
        self._tmp.cleanup()


class SparkEngine(Engine):
    """Spark: tables are temp views (persisted where `persist`), files read by spark.read from any Hadoop path."""

    name = "spark"
    dialect = Q.SPARK

    def __init__(self, tag: str, spark):
        from splink import SparkAPI

        super().__init__(tag)
        self.spark = spark
        self.db_api = SparkAPI(spark_session=spark, break_lineage_method="persist")
        self._persisted: list = []
        for key, value in SPARK_CONF.items():
            self.set_conf(key, value)

    def set_conf(self, key: str, value: str) -> None:
        """A Spark SQL setting while the engine is open (the session lives on: restored at close)."""
        old = self.spark.conf.get(key, None)
        self.spark.conf.set(key, value)
        self.on_close(lambda: self.spark.conf.unset(key) if old is None else self.spark.conf.set(key, old))

    def size_for(self, records):
        # few, small shuffle partitions: Splink runs many small SQL steps
        self.set_conf(SHUFFLE_PARTITIONS, str(max(2, min(64, records // 40_000))))

    def table(self, name, sql, persist=False):
        physical = f"{name}{self.tag}"
        df = self.spark.sql(sql)
        if persist:  # computed now, kept by the executors, lineage cut (later plans stay small)
            df = df.localCheckpoint(eager=True)
            self._persisted.append(df)
        df.createOrReplaceTempView(physical)
        return self._handle(physical)

    def rows(self, sql):
        return [tuple(r) for r in self.spark.sql(sql).collect()]

    def frame(self, sql):
        df = self.spark.sql(sql)
        return pd.DataFrame([tuple(r) for r in df.collect()], columns=df.columns)

    def types(self, table):
        return {f.name: f.dataType.simpleString() for f in self.spark.table(table).schema.fields}

    def _read(self, path, kind, name):
        reader = self.spark.read
        df = reader.parquet(path) if kind == "parquet" else reader.csv(path, header=True, inferSchema=False)
        physical = f"{name}{self.tag}"
        df.createOrReplaceTempView(physical)
        return self._handle(physical)

    def write_parquet(self, sql, path):
        spark_write(self.spark.sql(sql), path, "parquet")  # a Hadoop URI: through Hadoop's FileSystem

    def small_table(self, name, df):
        physical = f"{name}{self.tag}"
        self.spark.createDataFrame(df.astype(object).where(df.notna(), None)).createOrReplaceTempView(physical)
        return self._handle(physical)

    def sample(self, table, columns, fraction, seed):
        df = self.spark.table(table.name).select(*columns)
        if fraction < 1:
            df = df.sample(fraction=fraction, seed=seed)
        # partition by partition: no collect is bounded by spark.driver.maxResultSize
        return pd.DataFrame([tuple(r) for r in df.toLocalIterator()], columns=columns)

    def _drop(self):
        for df in self._persisted:
            df.unpersist()
        for t in self.spark.catalog.listTables():
            if t.isTemporary and t.name.endswith(self.tag):
                self.spark.catalog.dropTempView(t.name)


def _list(items: list[str]) -> str:
    return "[" + ", ".join(Q.DUCKDB.lit(i) for i in items) + "]"


def open_engine(engine: str, tag: str, spark=None) -> Engine:
    """The engine named `engine` (spark: the given session or the shared one)."""
    if engine == "duckdb":
        return DuckDBEngine(tag)
    if engine == "spark":
        from c360.spark import get_spark
        return SparkEngine(tag, spark or get_spark(app_name="c360-er-match"))
    raise InputError(f"--engine must be spark or duckdb (got {engine})")
