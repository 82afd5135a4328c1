"""The published run's standardized records in memory: column lists, the term frequencies Splink would compute
from them, and one hash index per blocking rule that is a conjunction of equalities."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from c360.entity_resolution.standardize import SOURCE_DATASET, missing

log = logging.getLogger("c360.er.online")


class RecordIndex:
    """The run's standardized records as column lists, with the term frequencies Splink would compute from them and
    one hash index per blocking rule that is a conjunction of equalities (l.c = r.c AND ...)."""

    def __init__(self, std: pd.DataFrame, match_ids: np.ndarray, tf_columns: Iterable[str],
                 max_block_size: int | None = None):
        self.max_block_size = max_block_size   # a key shared by more records pairs nothing (None: no cap)
        self.skipped_keys = 0                  # lookups of such a key (each logged once per rule)
        self._warned: set[tuple[str, ...]] = set()
        self.columns = [c for c in std.columns if c != "source_dataset"]
        self._cols: dict[str, list] = {c: [None if missing(v) else v for v in std[c].tolist()] for c in self.columns}
        self._cols["unique_id"] = [str(v) for v in self._cols["unique_id"]]
        self.match_ids: list[int] = [int(m) for m in match_ids]
        self.row_of: dict[str, int] = {u: i for i, u in enumerate(self._cols["unique_id"])}
        self.tf: dict[str, dict[Any, float]] = {}
        for col in tf_columns:
            counts = std[col].dropna().value_counts()
            total = float(counts.sum()) or 1.0
            self.tf[col] = {k: float(v) / total for k, v in counts.items()}
        self.keys: list[tuple[str, ...]] = []
        self._hash: list[dict[tuple, list[int]]] = []
        self.scans: list[Callable] = []       # blocking rules that are not equalities: evaluated on every record
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.match_ids)

    def column(self, col: str) -> list:
        return self._cols[col]

    def record(self, i: int) -> dict[str, Any]:
        return {c: self._cols[c][i] for c in self.columns}

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({c: self._cols[c] for c in self.columns}).assign(source_dataset=SOURCE_DATASET)

    def add_rule(self, columns: tuple[str, ...]) -> None:
        table: dict[tuple, list[int]] = {}
        cols = [self._cols[c] for c in columns]
        for i in range(len(self)):
            key = tuple(c[i] for c in cols)
            if None not in key:
                table.setdefault(key, []).append(i)
        self.keys.append(columns)
        self._hash.append(table)

    def candidates(self, left: dict[str, Any]) -> list[int]:
        """Rows some blocking rule pairs `left` with, in row order. A key shared by more than `max_block_size`
        records is skipped: too common to discriminate (a shared phone, a placeholder), its pairs would drown
        Splink's blocking as they would the scorer, and a match's work stays bounded whatever was committed."""
        found: set[int] = set()
        cap = self.max_block_size
        for columns, table in zip(self.keys, self._hash, strict=True):
            key = tuple(left.get(c) for c in columns)
            if None not in key:
                rows = table.get(key, ())
                if cap is not None and len(rows) > cap:
                    self._skipped(columns, len(rows))
                    continue
                found.update(rows)
        for rule in self.scans:
            found.update(i for i in range(len(self)) if rule(left, i) is True)
        return sorted(found)

    def _skipped(self, columns: tuple[str, ...], size: int) -> None:
        self.skipped_keys += 1
        if columns not in self._warned:   # the rule and the size only: a key's value is personal data
            self._warned.add(columns)
            log.warning("blocking rule on %s: a key shared by %d records (more than %d) pairs nothing in real time",
                        ", ".join(columns), size, self.max_block_size)

    def add(self, std: dict[str, Any], match_id: int) -> int:
        """Index one more record (committed in real time); returns its row."""
        with self._lock:
            i = len(self.match_ids)
            for c in self.columns:
                v = std.get(c)
                self._cols[c].append(None if missing(v) else v)
            self.match_ids.append(int(match_id))
            self.row_of[str(std["unique_id"])] = i
            for columns, table in zip(self.keys, self._hash, strict=True):
                key = tuple(self._cols[c][i] for c in columns)
                if None not in key:
                    table.setdefault(key, []).append(i)
            return i
