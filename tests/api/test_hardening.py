"""Findings of the security review, each with the test that failed before its fix."""

from __future__ import annotations

import pytest

from c360.api.masking import mask_ssn
from c360.errors import InputError
from c360.settings import load_settings

from .conftest import READER


@pytest.mark.parametrize("spec", ["s3cr3t-k3y:admin", "s3cr3t-k3y", "reader:s3cr3t-k3y", ":reader"])
def test_a_mistyped_api_keys_entry_is_reported_without_the_key(spec):
    with pytest.raises(InputError, match="C360_API_KEYS: entry 1") as err:
        load_settings(env={"C360_API_KEYS": spec})
    assert "s3cr3t" not in str(err.value)


@pytest.mark.parametrize("ssn,masked", [
    ("123-45-6789", "***-**-6789"), ("123456789", "***-**-6789"), (" 123-45-6789 ", "***-**-6789"),
    ("791-52-X555", "***-**-****"), ("12-345-6789", "***-**-****"), ("1234", "***-**-****"),
    ("123-45-67890", "***-**-****"), (None, None), ("", ""),
])
def test_mask_ssn_keeps_four_digits_only_of_a_well_formed_ssn(ssn, masked):
    assert mask_ssn(ssn) == masked


def test_head_health_checks(client):
    for path in ("/healthz", "/readyz"):
        r = client.head(path)
        assert r.status_code == 200 and r.content == b""


def test_a_key_with_blanks_around_it_is_the_same_key(client):
    key = READER["X-API-Key"]
    for value in (f" {key}", f"{key} ", f"\t{key}\t"):
        assert client.get("/customers/search", params={"last_name": "x"}, headers={"X-API-Key": value}).status_code == 200


def test_readyz_never_shows_the_store_error(tmp_path, warehouse):
    """/readyz needs no key: the store's exception text (file paths, the spec) stays in the server log."""
    from fastapi.testclient import TestClient

    from c360.api.app import create_app
    from c360.settings import Settings

    missing = tmp_path / "nowhere" / "secret-dir" / "g.json"
    app = create_app(Settings(warehouse=warehouse, graph=f"networkx:{missing}"), reload_interval=60)
    with TestClient(app) as c:
        body = c.get("/readyz").json()
    assert body["ready"] is True and body["graph"] is False
    assert "secret-dir" not in str(body) and "networkx" not in str(body)


def test_a_store_that_is_down_is_not_reopened_by_every_request(tmp_path, warehouse, monkeypatch):
    """One open attempt per cool-down, under a lock: 20 concurrent requests do not each dial (or unpickle) it."""
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from c360.api import state as state_mod
    from c360.api.app import create_app
    from c360.settings import Settings

    from .conftest import KEYS

    attempts = []
    real_open = state_mod.open_graph

    def counting_open(spec, run_dir):
        attempts.append(spec)
        return real_open(spec, run_dir)

    monkeypatch.setattr(state_mod, "open_graph", counting_open)
    app = create_app(Settings(warehouse=warehouse, graph=f"networkx:{tmp_path / 'down.json'}",
                              api_keys=dict(KEYS)), reload_interval=60)
    with TestClient(app) as c, ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: c.get("/customer360/1", headers=READER).status_code, range(20)))
    assert codes == [503] * 20
    assert len(attempts) <= 2, attempts  # the load itself, and at most one retry once the cool-down passed


def test_a_store_that_is_down_answers_503_without_its_spec(tmp_path, warehouse):
    """The 503 body names no file path or host of the store (the log has them)."""
    from fastapi.testclient import TestClient

    from c360.api.app import create_app
    from c360.settings import Settings

    from .conftest import KEYS

    app = create_app(Settings(warehouse=warehouse, graph=f"networkx:{tmp_path / 'hidden-dir' / 'g.json'}",
                              api_keys=dict(KEYS)), reload_interval=60)
    with TestClient(app) as c:
        r = c.get("/customer360/1", headers=READER)
    assert r.status_code == 503 and "hidden-dir" not in r.text and "networkx" not in r.text
