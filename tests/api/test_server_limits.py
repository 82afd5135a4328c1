"""`c360 serve`'s connection limits and closed docs, against real uvicorn processes over raw loopback sockets.

One server runs with small limits from a config file (a 4 KB request-head cap, 1 s head and body timeouts) and the
docs left at their default (closed); a second one with the default limits (a 1 MiB body cap) and the docs enabled.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import yaml

from c360.api.server import LimitedHttpToolsProtocol, uvicorn_options
from c360.settings import ApiSettings, load_settings
from tests import http
from tests.conftest import REPO, free_port

from .conftest import wait_ready

CAP = 4096
TIMEOUT = 1.0
WRITER_KEY = "limits-writer"
MARGIN = 3.0  # scheduling slack on a loaded machine


def _start(warehouse, tmp_path, name: str, api: dict) -> tuple[subprocess.Popen, int]:
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"api": api}))
    port = free_port()
    env = {**os.environ, "C360_API_KEYS": f"limits-key:reader,{WRITER_KEY}:writer", "C360_GRAPH": "networkx"}
    proc = subprocess.Popen([sys.executable, "-m", "c360", "serve", "--warehouse", str(warehouse), "--config",
                             str(config), "--port", str(port), "--log-level", "warning"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


@pytest.fixture(scope="module")
def servers(warehouse, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    started = [_start(warehouse, tmp, "limited", {"max_header_bytes": CAP, "header_timeout_s": TIMEOUT,
                                                  "body_timeout_s": TIMEOUT}),
               _start(warehouse, tmp, "docs", {"docs": True})]
    try:
        for proc, port in started:
            wait_ready(proc, port)
        yield {"limited": started[0][1], "docs": started[1][1], "docs_pid": started[1][0].pid}
    finally:
        for proc, _ in started:
            proc.terminate()
        for proc, _ in started:
            proc.wait(timeout=30)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _read_until_closed(sock: socket.socket, limit: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (or `limit` seconds pass: AssertionError)."""
    sock.settimeout(limit)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out
        except socket.timeout:
            raise AssertionError(f"connection still open after {limit} s; received {out[:200]!r}") from None
        if not chunk:
            return out
        out += chunk


def _get(port: int, path: str = "/readyz", extra: bytes = b"") -> bytes:
    with _connect(port) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"Connection: close\r\n\r\n")
        return _read_until_closed(sock)


def _read_response(stream) -> bytes:
    """One whole response (head and a content-length body) from a kept-alive connection's buffered reader
    (`sock.makefile("rb")`): pipelined responses may arrive in one segment, and what follows one stays buffered."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = stream.readline()
        assert line, f"closed before a response head: {head!r}"
        head += line
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    body = stream.read(length)
    assert len(body) == length, "closed before the end of a response body"
    return head + body


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def test_a_normal_request_and_keep_alive_work(servers):
    port = servers["limited"]
    assert _status(_get(port, "/recommendations/nobody?k=3")) == 200
    with _connect(port) as sock:  # two requests on one connection
        for _ in range(2):
            sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert _status(_read_response(sock.makefile("rb"))) == 200
    # a head just under the cap is accepted
    assert _status(_get(port, extra=b"X-Pad: " + b"a" * (CAP - 200) + b"\r\n")) == 200


def test_a_response_leaves_in_one_write_and_pipelined_requests_keep_their_order(servers):
    """The head and the body of a response are written together (one segment: the first read holds both)."""
    port = servers["limited"]
    with _connect(port) as sock:
        sock.sendall(b"GET /recommendations/nobody?k=3 HTTP/1.1\r\nHost: t\r\n\r\n")
        first = sock.recv(65536)
        head, _, body = first.partition(b"\r\n\r\n")
        assert _status(first) == 200 and body.startswith(b'{"user_id":"nobody"') and body.endswith(b"}")
        # pipelined: three requests in one send, three whole responses in order
        sock.sendall(b"".join(b"GET /recommendations/nobody?k=%d HTTP/1.1\r\nHost: t\r\n\r\n" % k for k in (1, 2, 3)))
        stream = sock.makefile("rb")
        counts = [_read_response(stream).partition(b"\r\n\r\n")[2].count(b'"rank"') for _ in range(3)]
        assert counts == [1, 2, 3]
    # a HEAD (a head, no body) and a 404 still arrive whole
    with _connect(port) as sock:
        sock.sendall(b"HEAD /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert _status(_read_until_closed(sock)) in (200, 405)
    assert _status(_get(port, "/nowhere")) == 404


def test_a_refused_pipelined_head_comes_after_the_answers_before_it(servers):
    """A request, then in the same segment a head over the cap: the request is answered first, then the 431, then
    the connection closes (the refusal never takes the place of an earlier request's answer)."""
    port = servers["limited"]
    with _connect(port) as sock:
        sock.sendall(b"GET /recommendations/nobody?k=2 HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * (2 * CAP) + b"\r\n\r\n")
        stream = sock.makefile("rb")
        first = _read_response(stream)
        assert _status(first) == 200 and first.partition(b"\r\n\r\n")[2].count(b'"rank"') == 2
        assert _status(_read_response(stream)) == 431
        assert stream.read() == b""  # then closed


def test_a_head_over_the_cap_is_refused_and_the_server_keeps_serving(servers):
    port = servers["limited"]
    # complete in one write: measured when the head is complete
    response = _get(port, extra=b"X-Pad: " + b"a" * (2 * CAP) + b"\r\n")
    assert _status(response) == 431
    # 8 MB of one header, streamed: refused as soon as the incomplete head passes the cap, well before the end
    with _connect(port) as sock:
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: t\r\nX-Pad: ")
        sent, refused = 0, False
        try:
            while sent < 8 * 2**20:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            refused = True
        if not refused:  # everything fit into the socket buffers before the server closed: it must close now
            response = _read_until_closed(sock)
            assert _status(response) in (0, 431), response[:200]
    # other clients are still served
    assert _status(_get(port)) == 200


def _closed_within(sock: socket.socket, seconds: float) -> tuple[float, bytes]:
    start = time.monotonic()
    response = _read_until_closed(sock, limit=seconds + MARGIN)
    return time.monotonic() - start, response


def test_a_half_sent_request_head_is_timed_out(servers):
    port = servers["limited"]
    with _connect(port) as sock:
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: t\r\n")  # and never the blank line
        elapsed, response = _closed_within(sock, TIMEOUT)
    assert elapsed >= TIMEOUT * 0.8 and _status(response) in (0, 408), response[:200]
    assert _status(_get(port)) == 200


def test_a_connection_that_sends_nothing_is_closed(servers):
    with _connect(servers["limited"]) as sock:
        elapsed, response = _closed_within(sock, TIMEOUT)
    assert response == b""


def test_a_head_dripped_byte_by_byte_is_timed_out_from_its_start(servers):
    """Sending a byte now and then does not extend the deadline (the classic slow-headers attack)."""
    with _connect(servers["limited"]) as sock:
        start = time.monotonic()
        head = b"GET /readyz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100
        closed = False
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - start > TIMEOUT + MARGIN:
                break
        if not closed:
            _read_until_closed(sock, limit=max(0.1, TIMEOUT + MARGIN - (time.monotonic() - start)))
        assert time.monotonic() - start <= TIMEOUT + MARGIN


def test_a_keep_alive_connection_that_stalls_in_its_next_head_is_timed_out(servers):
    with _connect(servers["limited"]) as sock:
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert _status(_read_response(sock.makefile("rb"))) == 200
        sock.sendall(b"GET /readyz HTTP/1.1\r\n")
        elapsed, response = _closed_within(sock, TIMEOUT)
    assert _status(response) in (0, 408)


def _post_head(path: str, extra: bytes = b"") -> bytes:
    return b"POST " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" + extra + b"\r\n"


def test_a_dripped_body_is_timed_out_from_the_end_of_its_head(servers):
    """Headers, then a byte every 0.3 s: 408 and closed once the body deadline passes, however the bytes drip."""
    port = servers["limited"]
    with _connect(port) as sock:
        sock.sendall(_post_head("/events", b"X-API-Key: " + WRITER_KEY.encode() + b"\r\nContent-Length: 100\r\n"))
        start = time.monotonic()
        closed = False
        for _ in range(int((TIMEOUT + MARGIN) / 0.3)):
            try:
                sock.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.3)
            sock.settimeout(0.01)
            try:
                if sock.recv(65536, socket.MSG_PEEK) is not None:
                    break  # the server answered (or closed)
            except socket.timeout:
                pass
        response = b"" if closed else _read_until_closed(sock, limit=TIMEOUT + MARGIN)
        elapsed = time.monotonic() - start
    assert TIMEOUT * 0.8 <= elapsed <= TIMEOUT + MARGIN, elapsed
    assert _status(response) in (0, 408) and (closed or _status(response) == 408), response[:200]
    assert _status(_get(port, "/healthz")) == 200


def test_a_body_left_unread_after_a_401_is_cut_off_at_the_deadline(servers):
    """Refused before its body (no key), the rest of the body cannot hold the connection open."""
    with _connect(servers["limited"]) as sock:
        sock.sendall(_post_head("/events", b"Content-Length: 1000000\r\n") + b"[")
        assert _status(_read_response(sock.makefile("rb"))) == 401  # answered at once, the body not awaited
        elapsed, response = _closed_within(sock, TIMEOUT)
    assert response == b""


def _peak_rss_kib(pid: int) -> int:
    status = open(f"/proc/{pid}/status").read()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def test_a_large_unauthenticated_body_does_not_grow_the_worker(servers):
    """64 MB of events without a key: 401 before the body is read, the worker's peak memory unchanged (it grew by
    1.5 GB when the body was read and parsed before the key was checked); the body is discarded as it arrives."""
    port, pid = servers["docs"], servers["docs_pid"]  # one worker: the server process itself
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # resets the peak (VmHWM) to the current RSS
    except OSError:
        pass
    before = _peak_rss_kib(pid)
    one = b'{"user_id": "u1", "item_id": "epcot:1", "timestamp": 1764590400},'
    body = b"[" + one * (64 * 2**20 // len(one)) + one[:-1] + b"]"
    with _connect(port) as sock:
        sock.sendall(_post_head("/events", b"Content-Length: %d\r\n" % len(body)))
        view = memoryview(body)
        for at in range(0, len(body), 2**20):
            sock.sendall(view[at:at + 2**20])
        assert _status(_read_response(sock.makefile("rb"))) == 401
    grown = _peak_rss_kib(pid) - before
    assert grown < 32 * 1024, f"peak RSS grew by {grown} KiB"
    assert _status(_get(port, "/healthz")) == 200


def test_a_body_streamed_past_the_cap_is_413(servers):
    """Chunked (no Content-Length), with a valid key: 413 and closed once past api.max_body_bytes (1 MiB)."""
    cap = 2**20  # the default (test_settings_reach_uvicorn)
    with _connect(servers["docs"]) as sock:
        sock.sendall(_post_head("/events", b"X-API-Key: " + WRITER_KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\n"))
        chunk = b"%x\r\n" % 65536 + b" " * 65536 + b"\r\n"
        for _ in range(cap // 65536 + 2):  # a little over the cap, then nothing: the server must answer
            sock.sendall(chunk)
        response = _read_until_closed(sock)
    assert _status(response) == 413 and b"connection: close" in response.lower(), response[:300]
    with _connect(servers["docs"]) as sock:  # by its length: refused without a byte of the body
        sock.sendall(_post_head("/events", b"X-API-Key: " + WRITER_KEY.encode() + b"\r\nContent-Length: %d\r\n"
                                % (cap + 1)))
        assert _status(_read_until_closed(sock)) == 413


def test_docs_and_schema_are_closed_by_default(servers):
    base = f"http://127.0.0.1:{servers['limited']}"
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert http.get(base + path).status_code == 404, path


def test_docs_and_schema_are_served_when_enabled(servers):
    base = f"http://127.0.0.1:{servers['docs']}"
    r = http.get(base + "/openapi.json")
    assert r.status_code == 200 and "/recommendations/{user_id}" in r.json()["paths"]
    assert http.get(base + "/docs").status_code == 200
    # the default cap (16 KB) admits a 10 KB head
    assert _status(_get(servers["docs"], extra=b"X-Pad: " + b"a" * 10000 + b"\r\n")) == 200


def test_settings_reach_uvicorn():
    api = load_settings(env={}, overrides={"api": {"max_header_bytes": 8192, "header_timeout_s": 2.5,
                                                   "keep_alive_s": 3, "limit_concurrency": 50}}).api
    options = uvicorn_options(api)
    assert options["http"].func is LimitedHttpToolsProtocol
    assert options["http"].keywords == {"max_head_bytes": 8192, "head_timeout": 2.5, "body_timeout": 10.0}
    assert options["timeout_keep_alive"] == 3 and options["limit_concurrency"] == 50
    assert options["h11_max_incomplete_event_size"] == 8192
    defaults = ApiSettings()
    assert (defaults.docs, defaults.max_header_bytes, defaults.header_timeout_s) == (False, 16384, 10.0)
    assert (defaults.max_body_bytes, defaults.body_timeout_s) == (2**20, 10.0)
    assert defaults.limit_concurrency is not None


@pytest.fixture()
def proxy(servers, tmp_path):
    """deploy/nginx.conf in front of the limited server: upstream and listen port moved to loopback, the header
    timeout shortened, temporary files under tmp_path."""
    import shutil

    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx not installed")
    port = free_port()
    text = (REPO / "deploy" / "nginx.conf").read_text()
    for old, new in (("server api:8000;", f"server 127.0.0.1:{servers['limited']};"),
                     ("listen 80;", f"listen 127.0.0.1:{port};"),
                     ("client_header_timeout 10s;", f"client_header_timeout {TIMEOUT:g}s;"),
                     ("http {", "http {\n" + "".join(f"    {kind}_temp_path {tmp_path / kind};\n"
                                                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")))):
        assert old in text, old
        text = text.replace(old, new)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp_path), "-g",
                             f"daemon off; pid {tmp_path / 'nginx.pid'};"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.time() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_proxy_forwards_and_enforces_its_limits(proxy):
    assert _status(_get(proxy, "/recommendations/nobody?k=3")) == 200
    assert _status(_get(proxy, extra=b"X-Pad: " + b"a" * 1000 + b"\r\n")) == 200
    # a header line over 4 KB, or a head over 16 KB in lines of 3 KB
    assert _status(_get(proxy, extra=b"X-Pad: " + b"a" * 5000 + b"\r\n")) == 400
    assert _status(_get(proxy, extra=b"".join(b"X-Pad-%d: " % i + b"a" * 3000 + b"\r\n" for i in range(6)))) == 400
    with _connect(proxy) as sock:  # a body over client_max_body_size
        sock.sendall(b"POST /readyz HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n")
        assert _status(_read_response(sock.makefile("rb"))) == 413  # (nginx then lingers to drain the body: not awaited)
    with _connect(proxy) as sock:  # a half-sent head
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: t\r\n")
        _closed_within(sock, TIMEOUT)
    assert _status(_get(proxy)) == 200
