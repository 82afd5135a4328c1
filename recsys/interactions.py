"""Aggregated interactions stored as Parquet (one file, or a directory of Spark part files), and the user x item
matrix built from them column-wise: pyarrow reads USER_ID, ITEM_ID and EVENT_VALUE, the sorted distinct ids give
integer codes (`pyarrow.compute.index_in`, vectorized, batch by batch), and the codes become a CSR matrix. No Python object is made
per interaction row; only the id lists (one string per user and per item) are Python objects.

Spark models read the same file with `spark.read.parquet` (`InteractionsFile.spark_frame`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from c360.errors import InputError

ID_COLUMNS = ("USER_ID", "ITEM_ID")
VALUE_COLUMN = "EVENT_VALUE"
BATCH_ROWS = 1 << 18       # rows per record batch read (a few MB of ids)


@dataclasses.dataclass(frozen=True)
class InteractionsFile:
    """Aggregated interactions in Parquet: USER_ID, ITEM_ID, optional EVENT_VALUE (default 1) and TIMESTAMP."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))
        if not self.path.exists():
            raise InputError(f"{self.path}: file not found")

    def spark_frame(self, spark):
        """The interactions as a Spark DataFrame (read by Spark, nothing through the driver)."""
        return spark.read.parquet(str(self.path))

    def to_frame(self):
        """The whole table in pandas (for the driver-side steps that need rows: holdout split, auto's validation)."""
        import pandas as pd

        return pd.read_parquet(self.path)

    def counts(self) -> dict[str, int]:
        """Rows, distinct users and distinct items (pyarrow over the id columns; no rows as Python objects)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(self.path, columns=list(ID_COLUMNS))
        return {"interactions": table.num_rows, "users": int(pc.count_distinct(table["USER_ID"]).as_py()),
                "items": int(pc.count_distinct(table["ITEM_ID"]).as_py())}

    def matrix(self) -> tuple[list[str], list[str], sp.csr_matrix]:
        """(sorted user ids, sorted item ids, float32 CSR user x item matrix; duplicate pairs summed)."""
        return matrix_from_parquet(self.path)


def parquet_files(path: str | Path) -> list[Path]:
    """The Parquet files of a table: the file itself, or a directory's part files in name order (Spark's layout;
    `_SUCCESS`, `.crc` and other hidden files skipped)."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    files = sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith(("_", "."))
                   and f.name.endswith((".parquet", ".pq")))
    if not files:
        raise InputError(f"{path}: directory holds no Parquet part files")
    return files


def _batches(files: list[Path], columns: list[str]):
    """Record batches of `columns`, file after file, in file order (every pass sees the rows in the same order)."""
    import pyarrow.parquet as pq

    for f in files:
        yield from pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS, columns=columns, use_threads=False)


def _as_strings(values, source: str, name: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    if values.null_count:
        raise InputError(f"{source}: empty {name} in {values.null_count} row(s) of a batch")
    return values if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) \
        else pc.cast(values, pa.string())


def matrix_from_parquet(path: str | Path) -> tuple[list[str], list[str], sp.csr_matrix]:
    """Read the id and value columns of an interactions Parquet file (or directory) into a CSR matrix, in batches:
    one pass for the distinct ids, one for the codes and values (the peak holds one batch, the codes and the
    matrix, whatever the number of rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    files = parquet_files(path)
    try:
        schema = pq.read_schema(files[0])
        n = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    except Exception as exc:  # not Parquet
        raise InputError(f"{path}: cannot read parquet: {exc}") from exc
    names = list(schema.names)
    missing = [c for c in ID_COLUMNS if c not in names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(names)})")
    if n == 0:
        raise InputError(f"{path}: no interaction rows")
    has_value = VALUE_COLUMN in names
    if has_value and not (pa.types.is_integer(schema.field(VALUE_COLUMN).type)
                          or pa.types.is_floating(schema.field(VALUE_COLUMN).type)):
        raise InputError(f"{path}: column EVENT_VALUE must be numeric")
    distinct = {c: [] for c in ID_COLUMNS}
    for batch in _batches(files, list(ID_COLUMNS)):
        for c in ID_COLUMNS:
            distinct[c].append(pc.unique(_as_strings(batch.column(c), str(path), c)))
    ids = {}
    for c in ID_COLUMNS:
        values = pc.unique(pa.chunked_array(distinct[c], type=pa.string()))
        ids[c] = values.take(pc.sort_indices(values))   # byte order of UTF-8 = code point order = sorted()
    del distinct
    rows, cols = np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32)
    values = np.ones(n, dtype=np.float32)
    at = 0
    for batch in _batches(files, [*ID_COLUMNS, *([VALUE_COLUMN] if has_value else [])]):
        end = at + batch.num_rows
        for c, out in (("USER_ID", rows), ("ITEM_ID", cols)):
            codes = pc.index_in(_as_strings(batch.column(c), str(path), c), value_set=ids[c])
            out[at:end] = codes.to_numpy(zero_copy_only=False)
        if has_value:
            value = batch.column(VALUE_COLUMN)
            if value.null_count:
                raise InputError(f"{path}: column EVENT_VALUE must be numeric (empty in {value.null_count} row(s))")
            values[at:end] = pc.cast(value, pa.float32()).to_numpy(zero_copy_only=False)
        at = end
    users, items = ids["USER_ID"].to_pylist(), ids["ITEM_ID"].to_pylist()
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(items)), dtype=np.float32)
    del rows, cols, values
    matrix.sum_duplicates()
    matrix.sort_indices()
    return users, items, matrix


def fingerprint(user_ids: list[str], item_ids: list[str], matrix: sp.csr_matrix) -> str:
    """sha256 of the ids and the (sorted, duplicate-free) matrix: identifies the training data."""
    h = hashlib.sha256()
    for ids in (user_ids, item_ids):
        h.update("\n".join(ids).encode())
        h.update(b"\0")
    m = matrix.tocsr()
    for array in (m.indptr, m.indices, m.data):     # hashed in place (buffer protocol), no copy
        h.update(str(array.dtype).encode())
        h.update(np.ascontiguousarray(array))
    return "sha256:" + h.hexdigest()
