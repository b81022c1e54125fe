"""RSGI entry point: ``dgov.rsgi:application``, what ``dgov serve`` runs under Granian (ADR 0013).

Granian's RSGI interface hands each request to a coroutine on one event loop per worker process.
Two kinds of request are served here:

* registry reads by API clients (``GET /api/v1/registries/data/{registry}/{version}/{uid}``) are
  answered on the loop by :class:`dgov.registry.fastread.AsyncReader` — the same checks, answer
  and access-log journal as the WSGI fast path, without a thread per request;
* everything else runs through the access log and Django (``site_application``) on a pool of
  ``DGOV_WEB_THREADS`` threads per process: this module builds the
  WSGI environ from the request (the body spooled to memory, or to disk beyond 1 MiB), calls the
  application in a pool thread, and sends its answer — whole when it is small, streamed from that
  same thread when it is long (exports), so a streaming response runs in one thread from start
  to finish, as Django expects of its database connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from dgov.wsgi import django_application  # first: it sets Django up

# isort: split
from dgov.kernel.observability import _VALID_ID, AccessLogApp
from dgov.registry import fastread

SPOOL_BYTES = 1 << 20  # request bodies up to this stay in memory
WHOLE_BYTES = 4 << 20  # answers up to this are sent in one piece; longer ones are streamed


class _Answer:
    """What a WSGI call produced when it was small enough to send in one piece."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list, body: bytes):
        self.status, self.headers, self.body = status, headers, body


class Application:
    """The RSGI application: registry fast reads on the loop, the WSGI application on a thread pool."""

    def __init__(self, wsgi_app, *, threads: int | None = None, reader: fastread.AsyncReader | None = None):
        self.wsgi_app = wsgi_app
        self.threads = threads or max(1, int(os.environ.get("DGOV_WEB_THREADS", "4") or 4))
        self.reader = reader
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self.fast_answers = 0  # reads answered on the loop by this process

    @property
    def pool(self) -> ThreadPoolExecutor:
        """This process's thread pool (made on first use, again after a fork)."""
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="dgov-web")
            self._pool_pid = os.getpid()
        return self._pool

    def __rsgi_init__(self, loop) -> None:
        """Worker start: load every URL and view module, then take what is alive out of the cyclic collector's sight.

        A full collection walks every tracked object; a worker holds about 100,000 after start-up
        (modules, models, URL patterns, templates), and walking them took 50–80 ms on the CI
        machine — a pause that every request waiting at that moment would pay, whenever objects
        surviving requests (caches, connections) trigger one. ``gc.freeze()`` moves the start-up
        objects to a permanent generation that collections skip; requests' own garbage is
        collected as before.
        """
        from django.urls import get_resolver

        get_resolver().reverse_dict  # noqa: B018 - imports and compiles every URL pattern and view module
        gc.collect()
        gc.freeze()

    def __rsgi_del__(self, loop) -> None:
        """Server shutdown: close the fast path's connection, then the pool's threads and their connections."""
        if self.reader is not None:
            loop.run_until_complete(self.reader.close())
        self.shutdown()

    def shutdown(self) -> None:
        """Close every pool thread's database connections and stop the pool (shutdown, tests)."""
        pool, self._pool = self._pool, None
        if pool is None or self._pool_pid != os.getpid():
            return
        barrier = threading.Barrier(self.threads, timeout=10)

        def close_connections():
            from django.db import connections

            connections.close_all()
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()  # one call per thread: each waits until all have closed theirs

        for _ in range(self.threads):
            pool.submit(close_connections)
        pool.shutdown(wait=True)

    async def __rsgi__(self, scope, protocol) -> None:
        """Serve one request (websocket connections are not served)."""
        if scope.proto != "http":
            return
        fast = self.reader is not None and self.reader.wants(scope.method, scope.path)
        if fast and await self._fast(scope, protocol):
            return
        await self._wsgi(scope, protocol)

    # --- registry reads on the loop ---------------------------------------------------------------

    async def _fast(self, scope, protocol) -> bool:
        """Answer a registry read here; False when Django must answer it."""
        started = time.perf_counter()
        headers = scope.headers
        environ = {
            "REQUEST_METHOD": scope.method,
            "PATH_INFO": scope.path,
            "QUERY_STRING": scope.query_string,
            "HTTP_AUTHORIZATION": headers.get("authorization", ""),
            "HTTP_X_PURPOSE": headers.get("x-purpose", ""),
            "HTTP_USER_AGENT": headers.get("user-agent", "-"),
            "REMOTE_ADDR": scope.client.rpartition(":")[0].strip("[]"),
        }
        try:
            body = await self.reader.read(environ, scope.path, self.pool)
        except Exception:  # noqa: BLE001 - Django answers instead, and reports the error its way
            fastread.logger.exception("registry fast read failed; passing the request on")
            body = None
        if body is None:
            return False
        incoming = headers.get("x-request-id", "")
        rid = incoming if _VALID_ID.match(incoming) else os.urandom(16).hex()
        protocol.response_bytes(
            200,
            [("Content-Type", "application/json; charset=utf-8"), *fastread.SECURITY_HEADERS, ("X-Request-ID", rid)],
            body,
        )
        self.fast_answers += 1
        fastread._ANSWERED.inc()
        fastread._LATENCY.observe(time.perf_counter() - started)
        AccessLogApp._log(environ, rid, "200 OK", started, len(body))
        return True

    # --- everything else through WSGI ---------------------------------------------------------------

    async def _wsgi(self, scope, protocol) -> None:
        """Run the WSGI application on the pool and send its answer."""
        body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed below
        try:
            async for chunk in protocol:
                body.write(chunk)
            body.seek(0)
            environ = self._environ(scope, body)
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(self.pool, self._call, environ, protocol, loop)
            if answer is not None:
                protocol.response_bytes(answer.status, answer.headers, answer.body)
        finally:
            body.close()

    @staticmethod
    def _environ(scope, body) -> dict:
        """The WSGI environ of an RSGI request (PEP 3333; the path as WSGI's latin-1 text)."""
        server_host, _sep, server_port = scope.server.rpartition(":")
        client_host, _sep, client_port = scope.client.rpartition(":")
        environ = {
            "REQUEST_METHOD": scope.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": scope.path.encode("utf-8").decode("latin-1"),
            "QUERY_STRING": scope.query_string,
            "SERVER_NAME": server_host.strip("[]"),
            "SERVER_PORT": server_port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "REMOTE_ADDR": client_host.strip("[]"),
            "REMOTE_PORT": client_port,
            "SERVER_SOFTWARE": "Granian",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.scheme,
            "wsgi.input": body,
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for name, value in scope.headers.items():
            if name == "content-type":
                key = "CONTENT_TYPE"
            elif name == "content-length":
                key = "CONTENT_LENGTH"
            else:
                key = "HTTP_" + name.upper().replace("-", "_")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _call(self, environ: dict, protocol, loop) -> _Answer | None:
        """Call the WSGI application (in a pool thread): a short answer to send, or None once streamed."""
        started: dict = {}

        def start_response(status, headers, exc_info=None):
            if exc_info is not None and started.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            started["status"], started["headers"] = int(status.split(" ", 1)[0]), list(headers)

        result = self.wsgi_app(environ, start_response)
        try:
            chunks, size = [], 0
            iterator = iter(result)
            for chunk in iterator:
                if chunk:
                    chunks.append(chunk)
                    size += len(chunk)
                if size > WHOLE_BYTES:
                    break
            else:
                return _Answer(started["status"], started["headers"], b"".join(chunks))
            # A long answer (an export): stream it from this thread, waiting for each piece to be sent.
            started["sent"] = True
            transport = asyncio.run_coroutine_threadsafe(
                _open_stream(protocol, started["status"], started["headers"]), loop
            ).result()
            asyncio.run_coroutine_threadsafe(transport.send_bytes(b"".join(chunks)), loop).result()
            for chunk in iterator:
                if chunk:
                    asyncio.run_coroutine_threadsafe(transport.send_bytes(chunk), loop).result()
            return None
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


async def _open_stream(protocol, status: int, headers: list):
    """Start a streamed answer (on the loop, where the protocol object lives)."""
    return protocol.response_stream(status, headers)


def _reader() -> fastread.AsyncReader | None:
    """The fast path's reader when it is switched on (``DGOV_REGISTRY_FAST_READ``)."""
    fast = fastread.RegistryReadFastPath(None)
    return fastread.AsyncReader(fast) if fast.enabled else None


# What the pool runs: the access log and Django. The WSGI fast path is not in it — a read the loop
# passed on must not be tried a second time — and the environ is built here, not copied from the
# process environment, so there is nothing inherited to strip.
site_application = AccessLogApp(django_application, inherited=frozenset())

application = Application(site_application, reader=_reader())
