"""Small networking helpers shared by the process wrappers."""
from __future__ import annotations

import socket
import time
from pathlib import Path


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it; a tiny race remains until it is bound)
    and that this process has not handed out before: the OS may pick the same free port twice in
    a row, and a proxy given it for two listeners cannot start."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no fresh free TCP port after 100 tries")


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path | str, max_lines: int = 80, max_bytes: int = 64 * 1024) -> str:
    """The last lines of a log file, or a note that it is missing/empty."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"<{p} does not exist>"
    lines = data.splitlines()[-max_lines:]
    return "\n".join(lines) if lines else f"<{p} is empty>"


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Polls predicate() until it returns a truthy value (returned) or the deadline passes
    (TimeoutError). Intervals grow gently from `interval` to 0.5 s."""
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)
