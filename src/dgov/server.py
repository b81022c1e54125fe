"""The web server command line for ``dgov serve`` (and benchmarks): Granian serving ``dgov.rsgi``.

Granian (a Rust HTTP/1.1 and HTTP/2 server) runs :mod:`dgov.rsgi` on an event loop per worker
process: registry reads on the loop, the WSGI application (Django) on a pool of threads. Its HTTP
layer costs a fraction of a pure-Python server's, which is what lets the registry API answer
reads at the latency its issue asks for (ADR 0013). Everything is read from
the environment, so a container or systemd unit changes it without editing code:

    DGOV_BIND            address to listen on: host:port, [v6]:port or unix:/path (default 127.0.0.1:8000)
    DGOV_WEB_WORKERS     worker processes (default 2)
    DGOV_WEB_THREADS     threads per worker for Django (the WSGI application; default 4)
    DGOV_WEB_LIFETIME    seconds before a worker is replaced, so a slow leak never becomes an outage
                         (default 86400; 0 = never)
    DGOV_WEB_MAX_RSS     MiB of resident memory after which a worker is replaced (default 0 = no limit)
    DGOV_LOG_LEVEL       the server's own log level (default info)

Access logs are written by the application (:class:`dgov.kernel.observability.AccessLogApp`) as
JSON lines carrying the request id, like every other log line; the server's own messages are
JSON too (``LOG_CONFIG``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

DEFAULT_BIND = "127.0.0.1:8000"
TARGET = "dgov.rsgi:application"

LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "dgov.kernel.observability.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "loggers": {"_granian": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    """An integer setting from ``env``; a clear error when it is not one."""
    value = (env.get(name) or "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {value!r}") from None


def bind_arguments(bind: str) -> list[str]:
    """Granian's listen arguments for one bind address (host:port, [v6]:port or unix:/path)."""
    bind = bind.strip()
    if "," in bind:
        raise ValueError("DGOV_BIND takes one address; put a load balancer in front for more")
    if bind.startswith("unix:"):
        return ["--uds", bind[len("unix:") :]]
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"bind address must be host:port or unix:/path, not {bind!r}")
    return ["--host", host.strip("[]"), "--port", port]


def web_command(env: Mapping[str, str] | None = None, *, python: str | None = None, log_config: Path | None = None):
    """The command line that serves dgov with the settings in ``env`` (default: this process's environment)."""
    env = os.environ if env is None else env
    workers = _int(env, "DGOV_WEB_WORKERS", 2)
    threads = _int(env, "DGOV_WEB_THREADS", 4)
    if workers < 1 or threads < 1:
        raise ValueError("workers and threads must be at least 1")
    lifetime = _int(env, "DGOV_WEB_LIFETIME", 86400)
    max_rss = _int(env, "DGOV_WEB_MAX_RSS", 0)
    level = (env.get("DGOV_LOG_LEVEL") or "info").strip().lower()
    cmd = [python or sys.executable, "-m", "granian", "--interface", "rsgi", "--no-ws"]
    cmd += bind_arguments(env.get("DGOV_BIND") or DEFAULT_BIND)
    cmd += ["--workers", str(workers)]  # DGOV_WEB_THREADS sizes dgov.rsgi's thread pool
    cmd += ["--respawn-failed-workers", "--workers-kill-timeout", "30"]
    if lifetime > 0:
        cmd += ["--workers-lifetime", str(max(lifetime, 60))]
    if max_rss > 0:
        cmd += ["--workers-max-rss", str(max_rss)]
    cmd += ["--no-access-log", "--log-level", level]
    if log_config is not None:
        cmd += ["--log-config", str(log_config)]
    cmd.append(TARGET)
    return cmd


def write_log_config(directory: Path) -> Path:
    """Write the server's JSON logging configuration into ``directory``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "granian-logging.json"
    path.write_text(json.dumps(LOG_CONFIG, indent=2))
    return path
