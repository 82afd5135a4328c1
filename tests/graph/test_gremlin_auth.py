"""The Gremlin Server started by `c360 gremlin start` authenticates every connection and answers bytecode only."""

from __future__ import annotations

import pytest
from gremlin_python.driver.client import Client
from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection
from gremlin_python.driver.protocol import ConfigurationError, GremlinServerError
from gremlin_python.process.anonymous_traversal import traversal

from c360.graph.gremlin_store import GremlinStore, ws_url
from c360.graph.store import GraphUnavailable
from tests.conftest import GREMLIN_PASSWORD, GREMLIN_USERNAME


def _g(url: str, **auth):
    conn = DriverRemoteConnection(ws_url(url), "g", **auth)
    return conn, traversal().with_remote(conn)


def test_unauthenticated_connection_is_refused(gremlin_url):
    conn, g = _g(gremlin_url)
    try:
        with pytest.raises(ConfigurationError, match="requires authentication"):
            g.inject(1).next()
    finally:
        conn.close()


@pytest.mark.parametrize("username,password", [(GREMLIN_USERNAME, "wrong-password"), ("intruder", GREMLIN_PASSWORD)],
                         ids=["wrong-password", "unknown-user"])  # ids without the secret: the same in every worker
def test_wrong_credentials_are_refused(gremlin_url, username, password):
    conn, g = _g(gremlin_url, username=username, password=password)
    try:
        with pytest.raises(GremlinServerError, match="401.*[Uu]sername and/or password are incorrect"):
            g.inject(1).next()
    finally:
        conn.close()
    with pytest.raises(GraphUnavailable, match="refused the connection's credentials"):
        GremlinStore(gremlin_url, username=username, password=password, retries=0)._vertex_ids("no-such-label")


@pytest.mark.parametrize("script", ["1+1", "Runtime.getRuntime().exec('id')", "g.V().drop()"])
def test_string_scripts_are_refused_for_the_authenticated_user(gremlin_url, script):
    client = Client(ws_url(gremlin_url), "g", username=GREMLIN_USERNAME, password=GREMLIN_PASSWORD)
    try:
        with pytest.raises(GremlinServerError, match="string scripts are disabled"):
            client.submit(script).all().result()
        with pytest.raises(GremlinServerError, match="string scripts are disabled"):  # nor the gremlin-lang engine
            client.submit(script, request_options={"language": "gremlin-lang"}).all().result()
    finally:
        client.close()


def test_lambdas_and_io_are_refused_in_bytecode(gremlin_url):
    conn, g = _g(gremlin_url, username=GREMLIN_USERNAME, password=GREMLIN_PASSWORD)
    try:
        with pytest.raises(GremlinServerError, match="lambdas are disabled"):
            g.inject(1).map(lambda: "it.get() + 1").next()
        with pytest.raises(GremlinServerError, match="step not allowed: io"):
            g.io("/etc/passwd").read().iterate()
        assert g.inject(2).next() == 2  # the connection still serves bytecode
    finally:
        conn.close()


def test_bytecode_traversal_works_with_credentials(gremlin_url):
    conn, g = _g(gremlin_url, username=GREMLIN_USERNAME, password=GREMLIN_PASSWORD)
    try:
        assert g.inject(1, 2).fold().next() == [1, 2]
        assert isinstance(g.V().count().next(), int)
    finally:
        conn.close()
    with GremlinStore(gremlin_url) as store:  # credentials from the settings (C360_GREMLIN_USERNAME / _PASSWORD)
        assert store.ping()
