"""Local daemons the CLI starts (Gremlin Server, a Spark standalone cluster): ports and process liveness."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """True while the process runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def stop_process_group(pgid: int, wait_s: float = 30.0, alive: Callable[[int], bool] = pid_alive) -> None:
    """SIGTERM the process group `pgid`, wait up to `wait_s` while `alive(pgid)`, then SIGKILL (5 s more)."""
    for sig, grace in ((signal.SIGTERM, wait_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and alive(pgid):
            time.sleep(0.2)
        if not alive(pgid):
            return


def require_tool(tool: str, hint: str) -> str:
    """The path of `tool` on PATH; ToolMissingError with `hint` (how to install it) when it is not there."""
    import shutil

    from c360.errors import ToolMissingError

    path = shutil.which(tool)
    if not path:
        raise ToolMissingError(f"'{tool}' not found on PATH: {hint}")
    return path


def running_pid(pid_file: Path) -> int | None:
    """The pid a daemon's pid file names while that process is alive, else None (a stale or unreadable file is
    removed)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        pid_file.unlink(missing_ok=True)
        return None
    if pid > 0 and pid_alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def log_tail(path: Path, n: int = 30) -> str:
    """The last `n` lines of a daemon's log ("" when it cannot be read): what an error about it quotes."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""
