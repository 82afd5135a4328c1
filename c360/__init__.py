"""Customer 360 + recommendations: shared core (settings, Spark session, CLI, I/O helpers)."""

__version__ = "0.1.0"
