"""Customer 360 + recommendations: shared core (settings, layout, Spark session, CLI, I/O helpers).

Installed, the repository's folders are this package's subpackages (c360.recsys, c360.graph, c360.api, ...;
see pyproject.toml's package-dir). A source checkout is used through its editable install (`make venv`:
`pip install -e .`), which maps the same names onto the checkout's folders. Importing the package does nothing
else: no environment variable, no search path is changed.
"""

__version__ = "0.1.0"
