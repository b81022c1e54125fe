"""Request ids, structured JSON logs and Prometheus metrics."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import threading
import time
import uuid

from prometheus_client import Counter, Histogram

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("dgov_request_id", default="-")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

HTTP_REQUESTS = Counter("dgov_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "dgov_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def current_request_id() -> str:
    """Return the id of the request being served ('-' outside a request)."""
    return _request_id.get()


class RequestIdMiddleware:
    """Give every request an id (from X-Request-ID when it is well formed) and echo it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        token = _request_id.set(rid)
        request.request_id = rid
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = rid
        return response


class MetricsMiddleware:
    """Count requests and time them per route pattern (not per URL, to bound label cardinality)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(time.perf_counter() - start)
        return response


class RequestIdFilter(logging.Filter):
    """Attach the current request id to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """Format a log record as one JSON object per line."""

    _SKIP = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON object; a record carrying a ready ``_json_line`` (access log) as it is."""
        ready = getattr(record, "_json_line", None)
        if ready is not None:
            return ready
        data = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", current_request_id()),
        }
        for key, value in vars(record).items():
            if key not in self._SKIP and not key.startswith("_"):
                data[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)

    converter = time.gmtime


class BufferedStreamHandler(logging.StreamHandler):
    """A stream handler that writes informational lines in batches and warnings at once.

    Under load the access log is one line per request; writing each line as it comes costs a
    system call and a hand-over of the interpreter lock per request on the request's own thread.
    This handler keeps records below ``WARNING`` in memory and a background thread writes what
    has gathered every ``flush_interval`` seconds (0.1 by default, ``DGOV_LOG_FLUSH_SECONDS``; 0
    turns buffering off) — as web servers buffer their access logs. A record of level ``WARNING``
    or above is written at once, after the lines gathered before it, so order is kept; so is
    everything at ``max_pending`` lines, and at exit (``logging.shutdown`` flushes handlers).
    """

    def __init__(self, stream=None, flush_interval: float | None = None, max_pending: int = 2000):
        super().__init__(stream)
        if flush_interval is None:
            flush_interval = float(os.environ.get("DGOV_LOG_FLUSH_SECONDS", "0.1") or 0)
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self._pending: list[str] = []
        self._flusher_pid = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record and keep it, or write it (with what is kept) when it must not wait."""
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - logging must never fail the caller
            self.handleError(record)
            return
        # Handler.handle holds self.lock around emit, so _pending is only touched under the lock.
        self._pending.append(line)
        if record.levelno >= logging.WARNING or self.flush_interval <= 0 or len(self._pending) >= self.max_pending:
            self._write_pending()
        elif self._flusher_pid != os.getpid():
            self._start_flusher()

    def flush(self) -> None:
        """Write every kept line now."""
        self.acquire()
        try:
            self._write_pending()
        finally:
            self.release()

    def _write_pending(self) -> None:
        """Write the kept lines in one go (the caller holds the lock)."""
        if not self._pending:
            return
        text, self._pending = "".join(self._pending), []
        try:
            self.stream.write(text)
            super().flush()
        except Exception:  # noqa: BLE001 - a log line must never fail a request
            if logging.raiseExceptions:
                sys.stderr.write("dgov: a log write failed\n")

    def _start_flusher(self) -> None:
        """Start this process's background writer (again after a fork: threads do not survive one)."""
        self._flusher_pid = os.getpid()
        threading.Thread(target=self._flush_loop, name="dgov-log-flush", daemon=True).start()

    def _flush_loop(self) -> None:
        """Write the kept lines every ``flush_interval`` seconds."""
        pid = os.getpid()
        while self._flusher_pid == pid:
            time.sleep(self.flush_interval)
            self.flush()


# --- WSGI access log ---------------------------------------------------------------------------

ACCESS_LOGGER = logging.getLogger("dgov.access")

# Variables every WSGI environ may carry; anything else copied from the server's own process
# environment (Granian starts each environ from os.environ) is removed before the application sees
# it: secrets such as DGOV_MASTER_KEY do not belong in request.META, and an inherited HTTP_PROXY
# would look like a header the client sent ("httpoxy").
_WSGI_KEYS = frozenset(
    {
        "CONTENT_LENGTH",
        "CONTENT_TYPE",
        "GATEWAY_INTERFACE",
        "PATH_INFO",
        "QUERY_STRING",
        "REMOTE_ADDR",
        "REMOTE_HOST",
        "REMOTE_PORT",
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "SERVER_SOFTWARE",
        "RAW_URI",
        "REQUEST_URI",
    }
)


class AccessLogApp:
    """WSGI middleware around the whole site: request id, a clean environ, one JSON access-log line per request.

    It runs before Django (and before the registry read fast path), so every answer — pages, API,
    fast path, errors — gets an ``X-Request-ID`` header and one ``dgov.access`` log line with the
    same id as the application's own log lines. An incoming well-formed ``X-Request-ID`` is kept
    (a load balancer's id joins its logs to ours); otherwise a new one is made.
    """

    def __init__(self, app, *, inherited: frozenset[str] | None = None):
        self.app = app
        self.inherited = frozenset(os.environ) - _WSGI_KEYS if inherited is None else inherited

    def __call__(self, environ, start_response):
        """Serve one request through the wrapped application and log it when its body is done."""
        for key in self.inherited:
            environ.pop(key, None)
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        rid = incoming if _VALID_ID.match(incoming) else os.urandom(16).hex()
        environ["HTTP_X_REQUEST_ID"] = rid
        started = time.perf_counter()
        seen: dict = {}

        def logged_start_response(status, headers, exc_info=None):
            seen["status"] = status
            if not any(name.lower() == "x-request-id" for name, _value in headers):
                headers = [*headers, ("X-Request-ID", rid)]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            body = self.app(environ, logged_start_response)
        except BaseException:
            self._log(environ, rid, "500", started, None)
            raise
        if isinstance(body, list):
            self._log(environ, rid, seen.get("status", "500"), started, sum(len(part) for part in body))
            return body
        return _LoggedBody(body, lambda size: self._log(environ, rid, seen.get("status", "500"), started, size))

    @staticmethod
    def _log(environ, rid: str, status: str, started: float, size: int | None) -> None:
        """Write the access-log line (never failing the request).

        The JSON line is built here, once, and carried on the record as ``_json_line``, which
        :class:`JsonFormatter` writes as it is: one request costs one small ``json.dumps``.
        """
        if not ACCESS_LOGGER.isEnabledFor(logging.INFO):
            return
        try:
            code = str(status).split(" ", 1)[0]
            now = time.time()
            method = environ.get("REQUEST_METHOD", "-")
            path = environ.get("PATH_INFO", "-")
            line = json.dumps(
                {
                    "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
                    "level": "INFO",
                    "logger": ACCESS_LOGGER.name,
                    "msg": f"{method} {path} {code}",
                    "request_id": rid,
                    "remote": environ.get("REMOTE_ADDR", "-"),
                    "method": method,
                    "path": path,
                    "query": environ.get("QUERY_STRING", ""),
                    "status": int(code) if code.isdigit() else code,
                    "bytes": size,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "user_agent": environ.get("HTTP_USER_AGENT", "-"),
                },
                ensure_ascii=False,
            )
            # Logger.info would also look up the caller's frame, which nothing in the line uses.
            record = ACCESS_LOGGER.makeRecord(ACCESS_LOGGER.name, logging.INFO, "", 0, line, None, None)
            record._json_line = line
            ACCESS_LOGGER.handle(record)
        except Exception:  # noqa: BLE001 - a log line must never fail a request
            logging.getLogger(__name__).exception("access log failed")


class _LoggedBody:
    """A response body iterable that logs the request once the server has sent all of it and closed it."""

    def __init__(self, inner, done):
        self.inner = inner
        self.done = done
        self.size = 0

    def __iter__(self):
        for chunk in self.inner:
            self.size += len(chunk)
            yield chunk

    def close(self):
        """Close the inner body (Django's request_finished runs here), then log."""
        try:
            close = getattr(self.inner, "close", None)
            if close is not None:
                close()
        finally:
            self.done(self.size)
