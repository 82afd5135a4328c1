"""Ids held as one numpy string array instead of a Python object per id.

A loaded model knows every user it was trained on; at a million users a `list[str]` and its `{id: row}` dict cost
about a second and a hundred MB per process to build, in every API worker. `IdArray` is the sequence of ids and
`IdIndex` the row of each id, both over the array as loaded from the model's `.npz` (lookups by binary search).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np


class IdArray(Sequence[str]):
    """A read-only sequence of str ids backed by a numpy unicode array (items come back as `str`)."""

    def __init__(self, ids: np.ndarray):
        self.array = np.asarray(ids, dtype=str)
        self._positions: IdIndex | None = None

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.array[i].tolist()
        return str(self.array[i])

    def __iter__(self) -> Iterator[str]:
        return iter(self.array.tolist())

    def __contains__(self, value) -> bool:
        return isinstance(value, str) and value in self.positions()

    def __eq__(self, other) -> bool:
        if isinstance(other, IdArray):
            return np.array_equal(self.array, other.array)
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and self.array.tolist() == list(other)
        return NotImplemented

    def __add__(self, other) -> list[str]:
        return self.array.tolist() + list(other)

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)

    def __repr__(self) -> str:
        return f"IdArray({len(self)} ids)"

    def positions(self) -> "IdIndex":
        """The {id: position} mapping over this array (built once)."""
        if self._positions is None:
            self._positions = IdIndex(self.array)
        return self._positions


class IdIndex(Mapping[str, int]):
    """{id: position in `ids`} by binary search over the ids (sorted once if they are not already)."""

    def __init__(self, ids: np.ndarray):
        self._ids = np.asarray(ids, dtype=str)
        in_order = len(self._ids) < 2 or bool(np.all(self._ids[:-1] < self._ids[1:]))
        self._order = None if in_order else np.argsort(self._ids, kind="stable")
        self._sorted = self._ids if in_order else self._ids[self._order]

    def _find(self, key) -> int | None:
        if not isinstance(key, str) or not len(self._sorted):
            return None
        i = int(np.searchsorted(self._sorted, key))
        if i == len(self._sorted) or self._sorted[i] != key:
            return None
        return i if self._order is None else int(self._order[i])

    def __getitem__(self, key) -> int:
        found = self._find(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key) -> bool:
        return self._find(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids.tolist())

    def __len__(self) -> int:
        return len(self._ids)
