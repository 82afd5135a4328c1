"""Customer 360 + recommendations: shared core (settings, Spark session, CLI, I/O helpers)."""

import os

# implicit's CPU ALS parallelises itself; a second BLAS thread pool underneath only slows it down.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
