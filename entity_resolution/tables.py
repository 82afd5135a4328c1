"""A table of a match run, as the engine holds it: the one handle every phase passes and returns (no table's rows
reach the driver through it, only counts and small frames)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from c360.entity_resolution.engines import Engine


@dataclass(frozen=True)
class Table:
    """A table or view of the engine `engine`: its physical name (unique to the run) and its columns' types. It
    formats as its name, so SQL can name it: f"SELECT ... FROM {table}"."""

    name: str
    engine: Engine = field(repr=False, compare=False)
    columns: dict[str, str] = field(compare=False)   # column -> the engine's type

    def __str__(self) -> str:
        return self.name

    def sql(self) -> str:
        """A query of every row and column."""
        return f"SELECT * FROM {self.name}"

    def count(self) -> int:
        return int(self.engine.one(f"SELECT count(*) FROM {self.name}")[0])

    def frame(self) -> pd.DataFrame:
        """Every row, in pandas (small tables only: labels, tests)."""
        return self.engine.frame(self.sql())
