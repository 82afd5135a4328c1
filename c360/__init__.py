"""Customer 360 + recommendations: shared core (settings, layout, Spark session, CLI, I/O helpers).

Installed, the repository's folders are this package's subpackages (c360.recsys, c360.graph, c360.api, ...;
see pyproject.toml). In a source checkout they are the folders beside this one, so the checkout's folder is
added to this package's search path: `python -m c360` and the tests then import the checkout's code whether
or not (and however) the project is installed.
"""

import os
from pathlib import Path

# implicit's CPU ALS parallelises itself; a second BLAS thread pool underneath only slows it down.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "recsys").is_dir() \
        and not (Path(__file__).resolve().parent / "recsys").is_dir():
    __path__.append(str(_checkout))  # noqa: F821 - __path__ is set for packages
