"""Shared helpers for the benchmarks in bench/: bounded timing loops, plain-text tables, local servers."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# Benchmarks run from a checkout without installing the package.
_SRC = Path(__file__).resolve().parent.parent / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))


def rate(func: Callable[[], object], seconds: float) -> float:
    """Call ``func`` repeatedly for about ``seconds``; return calls per second."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        func()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def best_rates(contenders: dict[str, Callable[[], object]], seconds: float, rounds: int) -> dict[str, float]:
    """Measure each contender in interleaved rounds; keep each one's best round.

    Interleaving spreads background load over all contenders, and the best round is the one
    least disturbed by it, so the ratio between contenders is what the code itself does.
    """
    best = dict.fromkeys(contenders, 0.0)
    for _ in range(rounds):
        for name, func in contenders.items():
            best[name] = max(best[name], rate(func, seconds / rounds))
    return best


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Format rows as a left/right aligned text table (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [[_fmt(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _fmt(value: object) -> str:
    """Format a table cell."""
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, path: str, seconds: float = 60) -> None:
    """Wait until a local server answers ``GET path`` with 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the web server did not come up")


def stop_process(proc: subprocess.Popen | None) -> None:
    """Stop a process started in its own session (a server, a worker): SIGTERM, then SIGKILL after 30 s."""
    if proc is None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def start_web_server(
    env: dict, port: int, *, workers: int, threads: int, extra: dict | None = None, cpu: str = "",
    ready_path: str = "/api/v1/meta",
) -> subprocess.Popen:
    """Start the web server as ``dgov serve`` does (:func:`dgov.server.web_command`) on ``port``; wait until it answers.

    ``extra`` adds environment variables; ``cpu`` pins the server to those CPUs with ``taskset``.
    """
    import shutil

    src = str(Path(__file__).resolve().parent.parent / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    from dgov import server as dgov_server

    server_env = {
        **env,
        "DGOV_BIND": f"127.0.0.1:{port}",
        "DGOV_WEB_WORKERS": str(workers),
        "DGOV_WEB_THREADS": str(threads),
        **(extra or {}),
    }
    cmd = dgov_server.web_command(server_env)
    if cpu and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    proc = subprocess.Popen(
        cmd, env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_for(port, ready_path)
    return proc
