"""Data shipped with c360 (installed as the package `c360.data`): the SIGIR'17 theme-park visits.

`sigir17_dir()` is where the shipped copy lives, in a checkout and in an installed wheel alike.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sigir17_dir() -> Path:
    """The directory of the shipped SIGIR'17 data (see sigir17/SOURCE.md for the authors to cite)."""
    return Path(str(resources.files(__name__) / "sigir17"))
