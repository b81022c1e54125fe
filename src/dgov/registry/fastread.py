"""Registry read fast path: ``GET /api/v1/registries/data/{registry}/{version}/{uid}`` for API clients.

Reading one record by its identifier is what other government systems do most, thousands of times
a second across a province. Through the full Django stack (a dozen middlewares, URL resolution,
Ninja's parameter and response models, ORM instances) the request costs several milliseconds of
one core. This WSGI middleware answers exactly that request for an API client (HTTP Basic) with the
same rules and the same answer as :func:`dgov.registry.api.read_by_id`, doing only what the read
needs (ADR 0013):

* the client is authenticated by :func:`dgov.identity.services.authenticate_client` (its own
  short cache), and must hold ``registry:read``;
* the registry, schema version and the client's read scope (:func:`services.reader_scope`) come
  from the same caches as the API's, the last one kept a few seconds per (registry, client);
* the record's row is read by the process's :class:`GroupFetcher`, one statement for all the reads
  waiting at that moment; personal values are decrypted and masked as :func:`services.read_record`
  does (unmasked only with ``registry:unmask``);
* the read is recorded in the access-log journal (:mod:`dgov.registry.accesslog`) before the answer
  leaves; ``dgov worker`` moves the journal into ``AccessLog``.

Anything else — another method or path, a session, bearer token or malformed credentials, an
unknown registry or version, a record that is missing, deleted or outside the client's scope, a
query parameter other than ``purpose``, any error — is passed on untouched to Django, which gives
the full answer (401/403/404 problem+json, the refusal's audit record). The fast path therefore only
ever answers 200, with a body equal to Django's. ``DGOV_REGISTRY_FAST_READ=0`` turns it off.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import threading
import time
import uuid
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from ninja.errors import HttpError
from ninja.responses import NinjaJSONEncoder

from dgov.kernel.batching import BatchThread
from dgov.kernel.fields import decrypt_value
from dgov.kernel.observability import HTTP_LATENCY, HTTP_REQUESTS

logger = logging.getLogger(__name__)

PREFIX = "/api/v1/registries/data/"
SCOPE_CACHE_SECONDS = 5.0
ROUTE = "api/v1/registries/data/<registryname>/<versionnumber>/<ID>"
# The two metric series of this route, looked up once (a labels() call costs a lock and a dict look-up).
_ANSWERED = HTTP_REQUESTS.labels("GET", ROUTE, "200")
_LATENCY = HTTP_LATENCY.labels("GET", ROUTE)
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cache-Control", "private, no-store"),
)


class RegistryReadFastPath:
    """WSGI middleware: answer clients' reads of one record by uid directly, pass everything else on."""

    def __init__(self, app, *, enabled: bool | None = None):
        self.app = app
        self.enabled = getattr(settings, "REGISTRY_FAST_READ", True) if enabled is None else enabled
        self._scopes: dict[tuple, tuple[float, str | None]] = {}
        self._lock = threading.Lock()
        self.answered = 0

    def __call__(self, environ, start_response):
        """Answer the request here when it is a client's read by uid that succeeds; else call Django."""
        path = environ.get("PATH_INFO", "")
        if self.enabled and environ.get("REQUEST_METHOD") == "GET" and path.startswith(PREFIX):
            started = time.perf_counter()
            try:
                body = self.read(environ, path)
            except Exception:  # noqa: BLE001 - Django answers instead, and reports the error its way
                logger.exception("registry fast read failed; passing the request on")
                body = None
            if body is not None:
                headers = [
                    ("Content-Type", "application/json; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                    *SECURITY_HEADERS,
                ]
                start_response("200 OK", headers)
                _ANSWERED.inc()
                _LATENCY.observe(time.perf_counter() - started)
                self.answered += 1
                return [body]
        return self.app(environ, start_response)

    # --- the read ---------------------------------------------------------------------------------

    def read(self, environ, path: str) -> bytes | None:
        """The answer's body, or None when Django must answer.

        This thread checks the request (:meth:`job`); the process's :class:`ReadBatcher` then
        reads the record, builds the answer and records the read, together with the other reads
        waiting at that moment.
        """
        job = self.job(environ, path)
        if job is None:
            return None
        ok, body = reader.submit(job)
        if not ok:
            raise RuntimeError("the record could not be read")  # Django answers instead
        return body

    def job(self, environ, path: str) -> ReadJob | None:
        """The checked read this request asks for, or None when Django must answer it.

        ``environ`` needs only ``QUERY_STRING``, ``HTTP_AUTHORIZATION`` and ``HTTP_X_PURPOSE``.
        """
        from dgov.api.auth import parse_basic, principal_scopes
        from dgov.identity.services import authenticate_client
        from dgov.registry import api as registry_api
        from dgov.registry import services
        from dgov.registry.api import READ_SCOPE, UNMASK_SCOPE

        parts = path[len(PREFIX) :].split("/")
        if len(parts) != 3 or not all(parts):
            return None
        code, version_text, ident = parts
        try:
            uid = uuid.UUID(ident)
        except ValueError:
            return None  # a lookup by identifier value: the API resolves it
        purpose = self._purpose(environ)
        if purpose is None:
            return None
        credentials = parse_basic(environ.get("HTTP_AUTHORIZATION", ""))
        if credentials is None:
            return None
        client = authenticate_client(*credentials)
        if client is None:
            return None
        scopes = principal_scopes(client)
        if READ_SCOPE not in scopes:
            return None
        try:
            registry = registry_api._registry(unquote(code))
            number = registry_api._version(registry, unquote(version_text))
        except HttpError:
            return None
        prefix = self._reader_scope(registry, client, services)
        if prefix is None:
            return None
        return ReadJob(uid, registry, number, prefix, client, UNMASK_SCOPE in scopes, purpose)

    @staticmethod
    def _purpose(environ) -> str | None:
        """The declared purpose (``X-Purpose`` header, else ``purpose`` parameter); None for other parameters."""
        query = environ.get("QUERY_STRING", "")
        params = parse_qsl(query, keep_blank_values=True) if query else []
        if any(name != "purpose" for name, _value in params):
            return None
        header = environ.get("HTTP_X_PURPOSE", "")
        if header:
            return unquote(header).strip()[:255]
        return (params[-1][1].strip() if params else "")[:255]

    def _reader_scope(self, registry, client, services) -> str | None:
        """services.reader_scope, kept a few seconds per (registry, schema, client)."""
        key = (registry.pk, registry.current_schema_id, client.pk, client.organization_id)
        now = time.monotonic()
        hit = self._scopes.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        prefix = services.reader_scope(registry, client)
        with self._lock:
            if len(self._scopes) > 10000:
                self._scopes.clear()
            self._scopes[key] = (now + SCOPE_CACHE_SECONDS, prefix)
        return prefix


class GroupFetcher(BatchThread):
    """Reads the records that waiting requests ask for with one statement per batch.

    A statement per request was most of the fast path's database cost (ADR 0013): one thread per
    process takes the uids that wait at that moment and selects their rows together —
    ``uid = ANY(%s)``, prepared once, on PostgreSQL; ``IN (…)`` elsewhere — in autocommit mode,
    so every read sees the latest committed row.
    """

    name = "dgov-registry-read"
    COLUMNS = (
        "registry",
        "schema_version",
        "version",
        "data",
        "sealed",
        "division_code",
        "created_at",
        "updated_at",
        "deleted_at",
        "id",
        "uid",
    )

    _base_sql = ""

    def _select(self, connection) -> str:
        """``SELECT <columns> FROM <record table> WHERE <uid column>`` (built once from the model).

        ``deleted_at`` is read as a flag. On PostgreSQL the two timestamps come as the API's ISO
        text in UTC (``to_char``; see :func:`_iso`), which spares parsing them into datetimes
        (in Python: Django's time-zone loader replaces psycopg's compiled one) and formatting
        them back.
        """
        if not self._base_sql:
            from dgov.registry.models import Record

            meta = Record._meta
            quote = connection.ops.quote_name
            columns = []
            for name in self.COLUMNS:
                column = quote(meta.get_field(name).column)
                if name == "deleted_at":
                    column = f"({column} IS NOT NULL)"
                elif name in ("created_at", "updated_at") and connection.vendor == "postgresql":
                    column = f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')"""
                columns.append(column)
            self._base_sql = (
                f"SELECT {', '.join(columns)} FROM {quote(meta.db_table)} WHERE {quote(meta.get_field('uid').column)}"
            )
        return self._base_sql

    def handle(self, items: list[uuid.UUID]) -> list:
        """The rows of the uids (None for a missing one), in order, without the trailing uid."""
        from dgov.registry.models import Record

        connection = connections[DEFAULT_DB_ALIAS]  # this thread's own
        meta = Record._meta
        base = self._select(connection)
        connection.ensure_connection()
        if not connection.get_autocommit():
            connection.set_autocommit(True)
        if connection.vendor == "postgresql":
            import psycopg

            with psycopg.Cursor(connection.connection) as cursor:
                cursor.execute(base + " = ANY(%s)", [list(items)], prepare=True)
                return in_order(items, cursor.fetchall())
        uid_field = meta.get_field("uid")
        params = [uid_field.get_db_prep_value(uid, connection) for uid in items]
        with connection.cursor() as cursor:
            cursor.execute(base + " IN (" + ", ".join(["%s"] * len(params)) + ")", params)
            rows = cursor.fetchall()
        found = {str(uid_field.to_python(row[-1])): row[:-1] for row in rows}
        return [found.get(str(uid)) for uid in items]


class ReadJob(NamedTuple):
    """One checked read waiting for its record: what :meth:`ReadBatcher.handle` needs to answer it."""

    uid: uuid.UUID
    registry: object  # dgov.registry.models.Registry
    number: int  # the schema version asked for
    prefix: str  # the client's division scope ("" for the whole province)
    client: object  # dgov.identity.models.ApiClient
    unmask: bool
    purpose: str


class ReadBatcher(GroupFetcher):
    """Answers the reads waiting at each moment together: one SELECT, the bodies, one journal write.

    The request threads only check their request (:meth:`RegistryReadFastPath.read`); this thread
    reads the records (:class:`GroupFetcher`), decrypts, masks and serializes each answer, and
    records every read of the batch in the access-log journal with a single ``write`` before any of
    the answers is released. Fewer hand-overs of the interpreter lock per read is most of what
    makes the fast path fast under concurrency (ADR 0013). A read whose record is missing,
    deleted, of another registry or outside the client's scope — or that fails — gets None, and
    Django answers it; if the journal cannot be written, every read of the batch goes to Django.
    """

    name = "dgov-registry-read"

    def handle(self, items: list[ReadJob]) -> list:
        """The answer body of each job (None where Django must answer), its read recorded."""
        from dgov.registry import accesslog

        bodies, entries = render_all(items, super().handle([job.uid for job in items]))
        if entries and not accesslog.log_reads(entries):
            return [None] * len(items)
        return bodies


def in_order(uids: list, rows) -> list:
    """The rows (each ending with its uid) in the order of ``uids``, without the uid; None for a missing one."""
    found = {row[-1]: row[:-1] for row in rows}
    return [found.get(uid) for uid in uids]


def render_all(jobs: list[ReadJob], rows: list) -> tuple[list[bytes | None], list]:
    """(body or None per job, access-log entries of the answered ones) — :func:`_render` over a batch.

    A read that fails is left to Django, which answers it and reports the error its way; on the
    event loop a cold schema or key cache (Django refuses the database there) is left to Django
    quietly, and Django's answer warms the cache.
    """
    from django.core.exceptions import SynchronousOnlyOperation

    bodies: list[bytes | None] = []
    entries = []
    for job, row in zip(jobs, rows, strict=True):
        answer = None
        if row is not None:
            try:
                answer = _render(job, row)
            except SynchronousOnlyOperation:
                answer = None
            except Exception:  # noqa: BLE001 - Django answers this read
                logger.exception("registry fast read of %s failed; passing it on", job.uid)
        bodies.append(None if answer is None else answer[0])
        if answer is not None:
            entries.append(answer[1])
    return bodies, entries


def _render(job: ReadJob, row) -> tuple[bytes, object] | None:
    """(body, access-log entry) of one read — the answer of :func:`dgov.registry.api.read_by_id` — or None."""
    from dgov.registry import services

    (
        registry_id,
        schema_version,
        version,
        data,
        sealed,
        division_code,
        created_at,
        updated_at,
        deleted,
        record_id,
    ) = row
    registry = job.registry
    if registry_id != registry.pk or deleted:
        return None
    if job.prefix and not division_code.startswith(job.prefix):
        return None
    values = json.loads(data) if isinstance(data, str) else dict(data or {})
    if sealed:
        values.update(json.loads(decrypt_value(sealed)))
    fields = services.registry_fields(registry, job.number)
    # Masking follows the current schema's rules, as on the Django path (whether a field is
    # personal never changes between versions; how it is masked may).
    current = _field_map(services.registry_fields(registry))
    content = {}
    for field in fields:
        if field.name not in values:
            continue
        value = values[field.name]
        rule = current.get(field.name, field)
        hide = rule.is_personal and not job.unmask and value is not None
        content[field.name] = services.mask_value(rule, value) if hide else value
    shown = sorted(content)
    entry = services.access_log_entry(
        registry,
        record_id=record_id,
        values=values,
        actor=job.client,
        purpose=job.purpose,
        channel="api",
        fields=shown + ["<unmasked>"] if job.unmask else shown,
    )
    answer = {
        "uuid": str(job.uid),
        "content": content,
        "version": version,
        "schemaVersion": schema_version,
        "createdAt": _iso(created_at),
        "modifiedAt": _iso(updated_at),
    }
    return json.dumps(answer, cls=NinjaJSONEncoder).encode(), entry


_field_maps: dict[int, tuple[list, dict]] = {}


def _field_map(fields: list) -> dict:
    """``services.field_map`` of a cached field list, itself kept as long as that list is the cached one."""
    hit = _field_maps.get(id(fields))
    if hit is not None and hit[0] is fields:
        return hit[1]
    from dgov.registry import services

    mapping = services.field_map(fields)
    if len(_field_maps) > 1000:
        _field_maps.clear()
    _field_maps[id(fields)] = (fields, mapping)
    return mapping


reader = ReadBatcher()
"""The process's reader; :class:`RegistryReadFastPath` hands it every checked read."""


def _iso(value) -> str | None:
    """A time from the database as ISO 8601 text in UTC, like the API's ``datetime.isoformat()``.

    ``value`` is a datetime, SQLite's text, or the ``YYYY-MM-DDTHH:MM:SS.ffffff`` UTC text the
    PostgreSQL statement selects (``isoformat`` leaves out a zero fraction, so this does too).
    """
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 26 and value[10] == "T":
        return (value[:19] if value.endswith(".000000") else value) + "+00:00"
    if isinstance(value, str):
        value = parse_datetime(value)
    if timezone.is_naive(value):
        value = value.replace(tzinfo=datetime.UTC)
    return value.isoformat()


# --- The fast path on an event loop (the RSGI server, dgov.rsgi) -----------------------------------


class AsyncReader:
    """The registry read fast path for :mod:`dgov.rsgi`: the same checks and answers on the server's event loop.

    A request's check (:meth:`RegistryReadFastPath.job`) runs on the loop when the caches it needs
    are warm; when one is not (Django refuses database calls on the loop), it runs on the
    server's thread pool. The reads waiting at each turn of the loop are read with one
    ``SELECT … uid = ANY(…)`` on the process's own asynchronous PostgreSQL connection, then
    rendered together as :class:`ReadBatcher` does and journaled by one writer thread — no thread
    hand-over per request, which is where the thread-per-request server spent a third of its time
    (ADR 0013). On another
    database the whole read runs on the thread pool. Anything that is not a plain success returns
    None, and the request goes to Django.
    """

    def __init__(self, fast: RegistryReadFastPath):
        self.fast = fast
        self._pending: list[tuple[ReadJob, object]] = []
        self._scheduled = False
        self._connection = None
        self._postgres: bool | None = None
        self._writer = None
        self._writer_pid = 0
        self._tasks: set = set()  # running batches (the loop keeps only weak references to tasks)

    def wants(self, method: str, path: str) -> bool:
        """Whether a request with this method and (decoded) path may be a fast read."""
        return self.fast.enabled and method == "GET" and path.startswith(PREFIX)

    async def read(self, environ: dict, path: str, pool) -> bytes | None:
        """The answer's body, or None when Django must answer (``environ`` as for :meth:`RegistryReadFastPath.job`)."""
        from django.core.exceptions import SynchronousOnlyOperation

        loop = asyncio.get_running_loop()
        if self._postgres is None:
            self._postgres = connections[DEFAULT_DB_ALIAS].vendor == "postgresql"
        if not self._postgres:
            return await loop.run_in_executor(pool, self.fast.read, environ, path)
        try:
            job = self.fast.job(environ, path)
        except SynchronousOnlyOperation:  # a cold cache: the check needs the database
            job = await loop.run_in_executor(pool, self.fast.job, environ, path)
        if job is None:
            return None
        future = loop.create_future()
        self._pending.append((job, future))
        if not self._scheduled:
            self._scheduled = True
            task = loop.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _flush(self) -> None:
        """Read, render and journal every read waiting now; resolve each request's future."""
        await asyncio.sleep(0)  # the requests that arrived in the same turn join this batch
        batch, self._pending, self._scheduled = self._pending, [], False
        try:
            bodies = await self._answers([job for job, _future in batch])
        except Exception:  # noqa: BLE001 - every read of the batch goes to Django, which reports its way
            logger.exception("registry fast read batch of %d failed; passing it on", len(batch))
            await self._reset()
            bodies = [None] * len(batch)
        for (_job, future), body in zip(batch, bodies, strict=True):
            if not future.done():
                future.set_result(body)

    async def _answers(self, jobs: list[ReadJob]) -> list[bytes | None]:
        """The bodies of the jobs (None where Django must answer), their reads journaled."""
        from dgov.registry import accesslog

        connection = await self._connect()
        async with connection.cursor() as cursor:
            await cursor.execute(
                reader._select(connections[DEFAULT_DB_ALIAS]) + " = ANY(%s)", [[job.uid for job in jobs]], prepare=True
            )
            rows = in_order([job.uid for job in jobs], await cursor.fetchall())
        bodies, entries = render_all(jobs, rows)
        # The journal is written on a thread of its own: a slow disk delays only the answers that
        # wait for their line, never the loop that checks and reads the next requests.
        if entries and not await asyncio.get_running_loop().run_in_executor(
            self._journal_writer(), accesslog.log_reads, entries
        ):
            return [None] * len(jobs)
        return bodies

    def _journal_writer(self):
        """This process's single journal-writing thread (made on first use, again after a fork)."""
        from concurrent.futures import ThreadPoolExecutor

        if self._writer is None or self._writer_pid != os.getpid():
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="dgov-journal")
            self._writer_pid = os.getpid()
        return self._writer

    async def _connect(self):
        """The process's asynchronous connection (autocommit: every read sees the latest committed row)."""
        import psycopg

        if self._connection is None or self._connection.closed:
            params = dict(connections[DEFAULT_DB_ALIAS].get_connection_params())
            for name in ("cursor_factory", "context", "prepare_threshold"):
                params.pop(name, None)
            self._connection = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        return self._connection

    async def _reset(self) -> None:
        """Drop the connection after a failure; the next batch opens a new one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                logger.debug("closing the fast path's connection failed", exc_info=True)

    async def close(self) -> None:
        """Close the connection and stop the journal writer (server shutdown)."""
        await self._reset()
        writer, self._writer = self._writer, None
        if writer is not None and self._writer_pid == os.getpid():
            writer.shutdown(wait=True)
