"""The docs' requests run against tests/api's published warehouse (its session fixtures, imported here), served by
a real `c360 serve` with one key per role, as the quick start configures them."""

from __future__ import annotations

import pytest

from tests.api.conftest import (  # noqa: F401 - tests/api's session fixtures, shared here
    match_model,
    private_copy,
    serve_two_workers,
    session_model,
    trained,
    wait_ready,
    warehouse,
)
from tests.docs.docs_pages import docs_key


@pytest.fixture()
def served_docs(tmp_path, warehouse):  # noqa: F811 - the fixture imported above
    """(base URL, {role: key}) of `c360 serve` over a private copy of the published warehouse (the examples write)."""
    from c360.api.dependencies import ROLE_GRANTS

    keys = {role: docs_key(role) for role in ROLE_GRANTS}
    wh = private_copy(tmp_path, warehouse, "run-1")
    spec = ",".join(f"{key}:{role}" for role, key in keys.items())
    proc, port, url = serve_two_workers(wh, tmp_path / "serve.log", {"C360_API_KEYS": spec})
    try:
        wait_ready(proc, port)
        yield url, keys
    finally:
        proc.terminate()
        proc.wait(timeout=30)
