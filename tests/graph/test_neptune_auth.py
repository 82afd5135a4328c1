"""Neptune IAM: every WebSocket handshake is signed (SigV4, service neptune-db) when it is made, exactly as botocore's
own signer signs the same request."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest

pytest.importorskip("botocore")
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from c360.graph.gremlin_store import GremlinStore, _signing_transport_class  # noqa: E402
from c360.graph.neptune_auth import SigV4Signer, region_of, signed_url, signer_for  # noqa: E402

ENDPOINT = "wss://db-1.cluster-c1x2y3z4.eu-west-1.neptune.amazonaws.com:8182/gremlin"
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example")
T0 = dt.datetime(2026, 12, 1, 23, 0, 0, tzinfo=dt.timezone.utc)


class Clock:
    """botocore's clock, frozen at `now` and moved by hand."""

    def __init__(self, monkeypatch, now: dt.datetime):
        self.now = now
        monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: self.now)


def _botocore_reference(url: str) -> dict:
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(CREDS, "neptune-db", "eu-west-1").add_auth(request)
    return dict(request.headers.items())


def test_signature_is_botocores_for_the_https_gremlin_request(monkeypatch):
    Clock(monkeypatch, T0)
    headers = SigV4Signer("eu-west-1", CREDS).headers(ENDPOINT)
    expected = _botocore_reference("https://db-1.cluster-c1x2y3z4.eu-west-1.neptune.amazonaws.com:8182/gremlin")
    assert headers["Authorization"] == expected["Authorization"]
    assert headers["X-Amz-Date"] == expected["X-Amz-Date"] == "20261201T230000Z"
    assert headers["X-Amz-Security-Token"] == "session-token-example"
    assert headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/eu-west-1/neptune-db/aws4_request, SignedHeaders=host;")
    assert signed_url("ws://localhost:8182/gremlin") == "http://localhost:8182/gremlin"
    assert region_of("x.cluster-ro-abc.us-gov-west-1.neptune.amazonaws.com") == "us-gov-west-1"


class RecordingServer:
    """A real WebSocket endpoint (aiohttp) that records each handshake's headers."""

    def __init__(self):
        from aiohttp import web

        self.handshakes: list[dict] = []
        self.loop = asyncio.new_event_loop()

        async def ws(request):
            self.handshakes.append(dict(request.headers))
            sock = web.WebSocketResponse()
            await sock.prepare(request)
            async for _ in sock:
                pass
            return sock

        app = web.Application()
        app.router.add_get("/gremlin", ws)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_every_handshake_is_signed_when_it_is_made(monkeypatch):
    clock = Clock(monkeypatch, T0)
    server = RecordingServer()
    url = f"ws://127.0.0.1:{server.port}/gremlin"
    transport_class = _signing_transport_class()
    try:
        for _ in range(2):  # a connect, then a reconnect six minutes later (a signature lives about five)
            transport = transport_class(SigV4Signer("eu-west-1", CREDS), call_from_event_loop=None)
            transport.connect(url, {"User-Agent": "driver", "X-Extra": "kept"})
            transport.close()
            clock.now += dt.timedelta(minutes=6)
    finally:
        server.stop()
    first, second = server.handshakes
    assert first["X-Amz-Date"] == "20261201T230000Z" and second["X-Amz-Date"] == "20261201T230600Z"
    assert first["Authorization"] != second["Authorization"]
    assert first["X-Extra"] == second["X-Extra"] == "kept" and first["Host"] == f"127.0.0.1:{server.port}"
    clock.now = T0  # what arrived is what botocore signs for the request at that moment
    assert first["Authorization"] == _botocore_reference(f"http://127.0.0.1:{server.port}/gremlin")["Authorization"]


def test_when_to_sign(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    auto = signer_for(ENDPOINT, {}, None, None)  # a Neptune endpoint: signed, region from its name
    assert auto is not None and auto.region == "eu-west-1"
    assert signer_for(ENDPOINT, {"Authorization": "given"}, True, None) is None  # explicit override
    assert signer_for("ws://127.0.0.1:8182/gremlin", {}, None, None) is None
    assert signer_for(ENDPOINT, {}, False, None) is None
    forced = signer_for("wss://localhost:8182/gremlin", {}, True, "us-east-2")  # e.g. through a tunnel
    assert forced.region == "us-east-2" and forced.headers("wss://localhost:8182/gremlin")["Authorization"]
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert signer_for(ENDPOINT, {}, None, None).region == "ap-south-1"


def test_settings_turn_signing_on(monkeypatch):
    from c360.settings import load_settings

    s = load_settings(env={"C360_GREMLIN_IAM": "true", "C360_GREMLIN_REGION": "eu-west-1"})
    assert s.gremlin_iam is True and s.gremlin_region == "eu-west-1"
    assert load_settings(env={}).gremlin_iam is None


@pytest.mark.gremlin
def test_store_signs_its_connects_and_reconnects(gremlin_url, monkeypatch):
    """Against the real Gremlin Server (which ignores the signature): the pool's handshakes and a reconnect after a
    dropped connection each get a signature made then."""
    clock = Clock(monkeypatch, T0)
    dates = []

    class Recording(SigV4Signer):
        def headers(self, ws_url):
            h = super().headers(ws_url)
            dates.append(h["X-Amz-Date"])
            return h

    with GremlinStore(gremlin_url, signer=Recording("eu-west-1", CREDS), pool_size=1, backoff_s=0.05) as store:
        assert store.ping()
        clock.now += dt.timedelta(minutes=10)
        store._conn.close()  # the connection drops: the next call reconnects with a new signature
        assert store.ping()
    assert dates[0] == "20261201T230000Z" and dates[-1] == "20261201T231000Z"
