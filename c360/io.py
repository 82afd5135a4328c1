"""Reading tables by extension and writing files atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pandas as pd

from c360.errors import InputError

# The one CSV dialect of the files the pipeline writes and reads back (recs.csv, items.csv and their Spark parts): a
# header row, comma-separated, RFC 4180 quoting (a quote inside a quoted field doubled). Every reader states it, and
# the columns and types, instead of detecting them: a user id holding quotes and commas once made DuckDB's detection
# shift the columns, and every later run failed on the same file.
CSV_DELIMITER, CSV_QUOTE, CSV_ESCAPE = ",", '"', '"'
SPARK_CSV_OPTIONS = {"header": "true", "sep": CSV_DELIMITER, "quote": CSV_QUOTE, "escape": CSV_ESCAPE}

# Files a person opens in a spreadsheet (a graph export with --spreadsheet-safe, the reviewers' labeling files): a
# text the spreadsheet would run as a formula gets a leading `'`, as OWASP advises, and so does a text that itself
# starts with `'`, which keeps the escape reversible (`from_spreadsheet` strips exactly one).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SPREADSHEET_ESCAPE = "'"


def spreadsheet_safe(text: str) -> str:
    """`text` as a spreadsheet cell shows it and never runs it (see FORMULA_STARTS)."""
    return SPREADSHEET_ESCAPE + text if text.startswith((*FORMULA_STARTS, SPREADSHEET_ESCAPE)) else text


def from_spreadsheet(text: str) -> str:
    """The inverse of `spreadsheet_safe`."""
    return text[1:] if text.startswith(SPREADSHEET_ESCAPE) else text


def table_kind(path: str | os.PathLike) -> str:
    """Return "csv" or "parquet" from a file name, or raise InputError naming the file."""
    name = str(path).lower()
    if name.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if name.endswith((".parquet", ".pq")) or (Path(path).is_dir() and any(Path(path).glob("*.parquet"))):
        return "parquet"
    raise InputError(f"{path}: unsupported file type (expected .csv, .csv.gz or .parquet)")


def csv_parts(path: str | os.PathLike) -> list[Path]:
    """The CSV files of a table: the file itself, or a directory's part files in name order (Spark's layout:
    `part-*.csv[.gz]`, each with its header; `_SUCCESS`, `.crc` and other hidden files are skipped)."""
    p = Path(path)
    if not p.is_dir():
        return [p]
    parts = sorted(f for f in p.iterdir()
                   if f.is_file() and not f.name.startswith(("_", ".")) and f.name.lower().endswith((".csv", ".csv.gz")))
    if not parts:
        raise InputError(f"{p}: directory holds no CSV part files")
    return parts


def csv_header(path: str | os.PathLike) -> list[str]:
    """The header row of a CSV file in the pipeline's dialect (gzip by its name); [] for an empty file."""
    import csv
    import gzip

    p = Path(path)
    with (gzip.open(p, "rt", newline="") if p.name.lower().endswith(".gz") else open(p, newline="")) as fh:
        return next(csv.reader(fh, delimiter=CSV_DELIMITER, quotechar=CSV_QUOTE, doublequote=True), [])


def spark_write(df, path: str | os.PathLike, fmt: str = "parquet", **options) -> Path | str:
    """Write a Spark DataFrame as a directory of part files at `path`, atomically (a temporary sibling directory
    renamed into place: readers see the old output or the whole new one). A Hadoop URI (hdfs://, s3a://, file://)
    goes through Hadoop's FileSystem the same way (`c360.hadoop_fs.spark_write`) and is returned as given."""
    from c360 import hadoop_fs

    target = str(path)
    if hadoop_fs.is_uri(target):
        return hadoop_fs.spark_write(df, target, fmt, **options)
    with atomic_path(target) as tmp:
        df.write.mode("overwrite").options(**options).format(fmt).save(str(tmp))
    return Path(target)


def read_table(path: str | os.PathLike, **csv_kwargs) -> pd.DataFrame:
    """Read a CSV or Parquet file into pandas; missing, empty or unreadable files raise InputError."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    kind = table_kind(p)
    try:
        if kind == "parquet":
            df = pd.read_parquet(p)
        else:
            if p.is_file() and p.stat().st_size == 0:
                raise InputError(f"{p}: file is empty")
            parts = csv_parts(p)
            df = pd.concat([pd.read_csv(f, **csv_kwargs) for f in parts], ignore_index=True) if len(parts) > 1 \
                else pd.read_csv(parts[0], **csv_kwargs)
    except InputError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{p}: file is empty") from exc
    except Exception as exc:  # parser errors, corrupt parquet
        raise InputError(f"{p}: cannot read {kind}: {exc}") from exc
    return df


def require_columns(df: pd.DataFrame, columns: list[str] | tuple[str, ...], source: str) -> None:
    """Raise InputError naming the source and the missing columns."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"{source}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, df.columns))})"
        )


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; move it into place only if the block succeeds.

    Works for files and directories. On error nothing is left at `target` (an existing
    target is kept untouched), so no half-written output is ever visible.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp = tmp_dir / target.name
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written for {target}")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """While the block runs, what this process (and every process it starts, e.g. Spark's JVM) creates is its
    owner's only (umask 077): the nightly's files hold customers' data. The umask is the process's: the previous
    one is restored after."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def make_private(root: str | os.PathLike) -> None:
    """Make every directory under `root` (and it) 0700 and every file 0600; symbolic links are left alone (a file
    written by a process that ignored the umask, e.g. a Spark executor on another machine's settings)."""
    def chmod(path: str, mode: int) -> None:
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile (a journal's dropped segment)
            if not os.path.islink(path):
                os.chmod(path, mode)

    chmod(str(root), 0o700)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            chmod(os.path.join(dirpath, name), 0o700)
        for name in filenames:
            chmod(os.path.join(dirpath, name), 0o600)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a pandas frame as CSV or Parquet (by extension), atomically."""
    path = Path(path)
    kind = table_kind(path)
    with atomic_path(path) as tmp:
        if kind == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def json_text(data, default=None) -> str:
    """`data` as the indented JSON text every JSON file of the project is written with."""
    import json

    return json.dumps(data, indent=2, default=default) + "\n"


def parse_json(text: str, where: str | os.PathLike):
    """Parse JSON text read from `where`; InputError naming it when the text is not JSON."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: invalid JSON: {exc}") from exc


def write_json_file(path: str | os.PathLike, data, default=None) -> Path:
    """Write `data` as indented JSON, atomically; `default` converts values json cannot (as in json.dumps)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json_text(data, default))
    return path


def read_json_file(path: str | os.PathLike, missing: str = "not found"):
    """Parse a JSON file; InputError naming the file when it is missing (`missing` says how) or invalid."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {missing}")
    return parse_json(path.read_text(), path)


def read_yaml_file(path: str | os.PathLike, missing: str = "not found"):
    """Parse a YAML file (empty file: {}); InputError naming the file when it is missing or invalid."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {missing}")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML: {exc}") from exc
