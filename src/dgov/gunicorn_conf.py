"""Gunicorn configuration for ``dgov serve`` (or directly: ``gunicorn -c python:dgov.gunicorn_conf``).

Threaded workers (gthread): Django views mostly wait on the database, so a few processes with a
few threads each use two cores well without the memory of many processes. Everything is read
from the environment so a container or systemd unit changes it without editing code:

    DGOV_BIND            address to listen on (default 127.0.0.1:8000; comma-separated for several)
    DGOV_WEB_WORKERS     worker processes (default 2)
    DGOV_WEB_THREADS     threads per process (default 4)
    DGOV_WEB_TIMEOUT     seconds before a silent worker is restarted (default 60)
    DGOV_FORWARDED_ALLOW_IPS  proxies trusted for X-Forwarded-* (default 127.0.0.1)

Access logs are JSON lines on stdout, one object per request, carrying the request id that
dgov's middleware puts in the X-Request-ID response header, so they join the application logs.
"""

from __future__ import annotations

import json
import logging
import os
import time

from gunicorn.glogging import Logger


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


bind = [b.strip() for b in os.environ.get("DGOV_BIND", "127.0.0.1:8000").split(",") if b.strip()]
workers = _env_int("DGOV_WEB_WORKERS", 2)
worker_class = "gthread"
threads = _env_int("DGOV_WEB_THREADS", 4)
timeout = _env_int("DGOV_WEB_TIMEOUT", 60)
graceful_timeout = 30
keepalive = 5
# Recycle processes now and then so a slow leak never becomes an outage; jitter avoids all at once.
max_requests = 5000
max_requests_jitter = 500
forwarded_allow_ips = os.environ.get("DGOV_FORWARDED_ALLOW_IPS", "127.0.0.1")
wsgi_app = "dgov.wsgi:application"
proc_name = "dgov-web"
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("DGOV_LOG_LEVEL", "info").lower()
logger_class = "dgov.gunicorn_conf.JsonLogger"
# gunicorn >= 25 opens a control socket under $HOME by default; several instances on one host
# (tests, a second checkout) would fight over that one path, so it is opt-in here.
_control_socket = os.environ.get("DGOV_GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not _control_socket
if _control_socket:
    control_socket = _control_socket


def child_exit(server, worker):
    """Drop a dead worker process's live gauges from the aggregated /metrics (multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


class _JsonErrorFormatter(logging.Formatter):
    """gunicorn's own messages (start, signals, worker boots) as JSON lines like the app's logs."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        data = {
            "ts": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class JsonLogger(Logger):
    """Gunicorn logger whose access log lines are JSON objects (values escaped properly)."""

    def setup(self, cfg):
        """Set up gunicorn's handlers, then make the error log JSON too."""
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(_JsonErrorFormatter())

    def access(self, resp, req, environ, request_time):
        """Write one JSON line for a finished request."""
        if not self.cfg.accesslog:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        headers = dict((k.lower(), v) for k, v in (resp.headers or []))
        record = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "level": "INFO",
            "logger": "gunicorn.access",
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING", ""),
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "request_id": headers.get("x-request-id", "-"),
            "user_agent": environ.get("HTTP_USER_AGENT", "-"),
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(json.dumps(record, ensure_ascii=False))
        except Exception:  # noqa: BLE001 - a log line must never fail a request
            self.exception("access log failed")
