"""`c360 serve` on a port that is already taken says so, naming the port and how to choose another (uvicorn's own
"address already in use" came after the settings were loaded, with exit code 1)."""

from __future__ import annotations

import socket

from tests.conftest import run_cli


def test_a_taken_port_is_named_with_the_way_out(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("serve", "--port", str(port), "--warehouse", str(tmp_path), check=False, timeout=60)
    assert proc.returncode == 2
    assert f"--port {port}: 127.0.0.1:{port} is already in use" in proc.stderr
    assert f"c360 serve --port {port + 1}" in proc.stderr and f"PORT={port + 1}" in proc.stderr
