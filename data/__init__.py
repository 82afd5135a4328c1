"""Data shipped with c360 (installed as the package `c360.data`): the SIGIR'17 theme-park visits.

`sigir17_dir()` is where the shipped copy lives, in a checkout and in an installed wheel alike.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# what a sigir17 directory must hold (glob patterns, one match each): the visits and the attractions' lists; the
# walking times (costProf-sigir17/) are optional. Here, below every layer that reads such a directory (the
# recommenders, the accounts' generator, the nightly), so each checks a user's folder before it starts anything
SIGIR17_REQUIRED_FILES = ("userVisits-sigir17/userVisits-*-allPOI.csv", "poiList-sigir17/POI-*.csv")
SIGIR17_LAYOUT = "the sigir17 layout"


def sigir17_dir() -> Path:
    """The directory of the shipped SIGIR'17 data (see sigir17/SOURCE.md for the authors to cite)."""
    return Path(str(resources.files(__name__) / "sigir17"))
