"""Loading a registry's records into DuckDB for evaluation (数据抽取).

DuckDB's SQLite and PostgreSQL scanners are extensions that are downloaded on first use, which an
offline government network cannot do, and personal values are sealed (SM4-GCM) in the database
anyway. So the records are read through Django's connection — SQLite and PostgreSQL alike — in
keyset-paginated chunks of plain text tuples (the database renders uids and timestamps as text,
so no Python objects are built for them), the sealed personal values are decrypted, and each
record becomes one line of newline-delimited JSON in a private temporary directory::

    {"_id": 7, "_uid": "…", "_v": 1, "_division": "370102", "_created_at": "…", "_updated_at": "…",
     "d": {<public values, the stored JSON text as is>}, "p": {<decrypted personal values>}}

Decryption (one SM4-GCM operation per record, most of a load's time) runs in worker processes
(:mod:`dgov.quality.extract_worker`) when the registry is large and the machine has more than one
core: this process reads the records and hands each worker batches of (line prefix, sealed value),
with the data keys they need; each worker writes its own NDJSON file. Settings:
``QUALITY_EXTRACT_WORKERS`` (default: the number of cores, at most 4; 0 or 1 decrypts here) and
``QUALITY_EXTRACT_PARALLEL_MIN`` (records read here before workers are started, default 50,000).

DuckDB then reads the files in parallel into a table ``records`` of the registry's fields as text
(exactly as stored) plus the columns ``_id``, ``_uid``, ``_schema_version``, ``_division``,
``_created_at`` and ``_updated_at``. The DuckDB database is in memory and spills to the temporary
directory when it outgrows its memory limit (``QUALITY_DUCKDB_MEMORY_LIMIT``); the JSON files are
removed once read, the directory when the run ends; nothing decrypted is kept elsewhere. Deleted
records are left out. The work directory is ``settings.QUALITY_WORK_DIR`` (default: the system's
temporary directory); it should be on an encrypted volume, like the database's own files.
"""

from __future__ import annotations

import contextlib
import os
import pickle  # noqa: S403 - private pipes to the decryption workers this module starts
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _

from dgov.kernel.crypto import CryptoError
from dgov.kernel.fields import PREFIX, decrypt_value, sealed_kid
from dgov.quality.engine import EngineError
from dgov.quality.rules import Column, literal, quote
from dgov.registry.models import Record
from dgov.registry.schema import FieldDef

__all__ = ["META_COLUMNS", "SourceError", "columns_for", "load_registry", "lock_down", "open_connection"]

CHUNK = 5000
WORKER_BATCH = 1000  # rows per message to a decryption worker
PARALLEL_MIN = 50_000
PIPE_BYTES = 1 << 20
META_COLUMNS = {
    "_id": "integer",
    "_uid": "string",
    "_schema_version": "integer",
    "_division": "division_code",
    "_created_at": "datetime",
    "_updated_at": "datetime",
}


class SourceError(EngineError):
    """A registry whose records cannot be read (undecryptable personal values, malformed stored data)."""


def open_connection(workdir: Path):
    """A DuckDB database in memory: no extension downloads, spills to ``workdir``, platform time zone.

    In memory rather than in a file: loading a million records into a database file costs seconds
    of compression and writes, and DuckDB spills an in-memory database's tables to its temporary
    directory just the same once they outgrow the memory limit.
    """
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute(f"SET temp_directory = {literal(str(workdir / 'spill'))}")
    con.execute(f"SET TimeZone = {literal(settings.TIME_ZONE)}")
    threads = getattr(settings, "QUALITY_DUCKDB_THREADS", None)
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    memory = getattr(settings, "QUALITY_DUCKDB_MEMORY_LIMIT", "")
    if memory:
        con.execute(f"SET memory_limit = {literal(memory)}")
    return con


def lock_down(con) -> None:
    """After loading: no file system or network access, configuration frozen (custom SQL runs next)."""
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def columns_for(fields: Sequence[FieldDef]) -> dict[str, Column]:
    """The columns of a loaded registry: the meta columns and every field (with type, personal flag, choices)."""
    columns = {name: Column(name, kind) for name, kind in META_COLUMNS.items()}
    for field in fields:
        columns[field.name] = Column(field.name, field.type, field.is_personal, tuple(field.choices), field.label)
    return columns


def _line_sql() -> str:
    """SELECT list of the records read: id, the NDJSON line up to ``"p":`` rendered by the database, sealed, uid.

    The database renders the meta columns and the stored public JSON into the line's text, so this
    process builds no uuid, datetime or string objects per record: it only hands each line's
    prefix and sealed value on. Timestamps are written as UTC without an offset (DuckDB reads them
    as UTC); division codes are JSON-quoted by the database.
    """
    q = {
        name: connection.ops.quote_name(Record._meta.get_field(name).column)
        for name in ("id", "uid", "schema_version", "division_code", "created_at", "updated_at", "data", "sealed")
    }
    if connection.vendor == "postgresql":
        uid = f"{q['uid']}::text"
        moments = [
            f"coalesce(to_char({q[name]} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '')"
            for name in ("created_at", "updated_at")
        ]
        division = f"to_json(coalesce({q['division_code']}, ''))::text"
        data = f"coalesce({q['data']}::text, '{{}}')"
    else:  # SQLite: uids as 32 hex digits, timestamps as naive UTC text, JSON as text
        column = q["uid"]
        dashed = " || '-' || ".join(
            f"substr({column}, {start}, {length})" for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
        )
        uid = f"lower(CASE WHEN length({column}) = 32 THEN {dashed} ELSE {column} END)"
        moments = [f"coalesce(replace({q[name]}, ' ', 'T'), '')" for name in ("created_at", "updated_at")]
        division = f"json_quote(coalesce({q['division_code']}, ''))"
        data = f"coalesce(nullif({q['data']}, ''), '{{}}')"
    line = (
        f"""'{{"_id":' || {q["id"]} || ',"_uid":"' || {uid} || '","_v":' || {q["schema_version"]}"""
        f""" || ',"_division":' || {division} || ',"_created_at":"' || {moments[0]}"""
        f""" || '","_updated_at":"' || {moments[1]} || '","d":' || {data} || ',"p":'"""
    )
    return f"{q['id']}, {line}, {q['sealed']}, {uid}"


def _rows(registry_id: int, chunk: int):
    """The registry's live records as (id, line prefix, sealed, uid) tuples, by id, in chunks (keyset pagination)."""
    table = connection.ops.quote_name(Record._meta.db_table)
    registry_column = connection.ops.quote_name(Record._meta.get_field("registry").column)
    deleted = connection.ops.quote_name(Record._meta.get_field("deleted_at").column)
    sql = (
        f"SELECT {_line_sql()} FROM {table} WHERE {registry_column} = %s AND {deleted} IS NULL AND id > %s "
        f"ORDER BY id LIMIT {int(chunk)}"
    )
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [registry_id, last])
            rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _undecryptable(registry, uid: str, error) -> SourceError:
    """The error of a record whose personal values cannot be decrypted."""
    return SourceError(
        _("信息库“%(code)s”记录 %(uid)s 的个人信息无法解密：%(error)s")
        % {"code": registry.code, "uid": uid, "error": error}
    )


def _worker_count() -> int:
    """How many decryption workers a large load uses (0: decrypt in this process)."""
    wanted = getattr(settings, "QUALITY_EXTRACT_WORKERS", None)
    if wanted is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        wanted = min(cores, 4)
    wanted = int(wanted)
    return wanted if wanted > 1 else 0


class _Workers:
    """Decryption worker processes (:mod:`dgov.quality.extract_worker`), each writing its own NDJSON file."""

    def __init__(self, registry, paths: list[Path]):
        self.registry = registry
        self.paths = paths
        self.keys: set[str] = set()
        self.known: tuple[str, ...] = ()  # "v1:<kid>:" of the keys handed out
        self.turn = 0
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the same import path as this process
        self.processes = []
        try:
            for path in paths:
                process = subprocess.Popen(
                    [sys.executable, "-m", "dgov.quality.extract_worker"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=env,
                )
                self.processes.append(process)
                _widen_pipe(process.stdin)
                self._send(process, ("open", str(path)))
        except BaseException:
            self.stop()
            raise

    def _send(self, process, message) -> None:
        """Write one message to a worker; a worker that stopped early has its answer raised."""
        try:
            process.stdin.write(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except BrokenPipeError:
            self._answer(process)
            raise SourceError(_("解密进程意外退出")) from None

    def _answer(self, process) -> int:
        """A worker's final answer: its line count, or the error it met raised."""
        with contextlib.suppress(BrokenPipeError, OSError):
            process.stdin.close()
        try:
            kind, payload = pickle.load(process.stdout)  # noqa: S301 - from the worker started above
        except EOFError:
            code = process.wait()
            raise SourceError(_("解密进程意外退出（退出码 %(code)s）") % {"code": code}) from None
        if kind == "error":
            uid, message = payload
            raise _undecryptable(self.registry, uid, message)
        if kind == "crash":
            raise SourceError(_("解密进程出错：%(error)s") % {"error": str(payload)[-1000:]})
        return int(payload)

    def feed(self, batch: list[tuple[int, str, str, str]]) -> None:
        """Hand a batch to the next worker, with the data keys its rows need that it was not given yet."""
        unknown = [sealed for _id, _prefix, sealed, _uid in batch if sealed and not sealed.startswith(self.known)]
        if unknown:
            from dgov.kernel.services import keys as key_registry

            found = {}
            for kid in {sealed_kid(sealed) for sealed in unknown} - self.keys:
                # An unknown key is left out: the worker reports the record, as decrypting it here would.
                with contextlib.suppress(key_registry.UnknownKeyError):
                    found[kid] = key_registry.data_key_by_id(kid)
                self.keys.add(kid)
            self.known = tuple(f"{PREFIX}:{kid}:" for kid in self.keys)
            for process in self.processes:
                self._send(process, ("keys", found))
        process = self.processes[self.turn % len(self.processes)]
        self.turn += 1
        self._send(process, ("rows", batch))

    def finish(self) -> int:
        """Tell every worker the end and collect their answers; the number of lines they wrote."""
        for process in self.processes:
            self._send(process, ("end", None))
        for process in self.processes:
            with contextlib.suppress(BrokenPipeError, OSError):
                process.stdin.flush()  # a worker that stopped early has its answer read below
        total = 0
        for process in self.processes:
            total += self._answer(process)
            process.wait()
        return total

    def stop(self) -> None:
        """Stop the workers that still run (after a failure) and release their pipes."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                with contextlib.suppress(BrokenPipeError, OSError):
                    pipe.close()


def _widen_pipe(pipe) -> None:
    """Let this process run up to ~1 MiB ahead of a worker (several batches)."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or above the system's pipe-max-size: the default buffer works, only tighter


def write_ndjson(
    registry, path: Path, *, personal: bool, progress: Callable[[int], None] | None = None
) -> tuple[int, list[Path]]:
    """Write the registry's live records as NDJSON (personal values decrypted); returns (count, files written).

    The first ``QUALITY_EXTRACT_PARALLEL_MIN`` records are decrypted here; the rest, if any, by
    decryption workers (when there are personal fields and more than one core), each writing a
    file beside ``path``.
    """
    count = 0
    files = [path]
    workers = None
    worker_count = _worker_count() if personal else 0
    threshold = int(getattr(settings, "QUALITY_EXTRACT_PARALLEL_MIN", PARALLEL_MIN))
    try:
        with path.open("w", encoding="utf-8") as out:
            for rows in _rows(registry.pk, CHUNK):
                if worker_count and workers is None and count >= threshold:
                    parts = [path.with_name(f"{path.stem}.{i}{path.suffix}") for i in range(worker_count)]
                    workers = _Workers(registry, parts)
                    files.extend(parts)
                if workers is not None:
                    for start in range(0, len(rows), WORKER_BATCH):
                        workers.feed(rows[start : start + WORKER_BATCH])
                else:
                    lines = []
                    for _id, prefix, sealed, uid in rows:
                        try:
                            private = decrypt_value(sealed) if (personal and sealed) else "{}"
                        except CryptoError as exc:
                            raise _undecryptable(registry, uid, exc) from None
                        lines.append(f"{prefix}{private}}}\n")
                    out.writelines(lines)
                count += len(rows)
                if progress is not None:
                    progress(len(rows))
        if workers is not None:
            workers.finish()
    finally:
        if workers is not None:
            workers.stop()
    return count, files


def count_records(registry) -> int:
    """How many live records the registry has (for progress bars)."""
    return Record.objects.filter(registry=registry, deleted_at__isnull=True).count()


def load_registry(
    con,
    registry,
    fields: Sequence[FieldDef],
    workdir: Path,
    *,
    table: str = "records",
    progress: Callable[[int], None] | None = None,
) -> int:
    """Load the registry's live records into DuckDB table ``table`` (fields as text); returns the row count."""
    path = workdir / f"{table}.ndjson"
    personal = [field.name for field in fields if field.is_personal]
    public = [field.name for field in fields if not field.is_personal]
    files: list[Path] = [path]
    try:
        count, files = write_ndjson(registry, path, personal=bool(personal), progress=progress)
        projections = [
            "_id",
            "_uid",
            "CAST(_v AS INTEGER) AS _schema_version",
            "_division",
            "CAST(NULLIF(_created_at, '') AS TIMESTAMPTZ) AS _created_at",
            "CAST(NULLIF(_updated_at, '') AS TIMESTAMPTZ) AS _updated_at",
        ]
        # The two objects are read as structs of text fields: DuckDB converts each JSON value to text
        # as json_extract_string does (numbers and booleans as written, objects and arrays as JSON),
        # a missing key is NULL, and parsing straight into columns is cheaper than extracting paths.
        types = {"_id": "BIGINT", "_uid": "VARCHAR", "_v": "INTEGER", "_division": "VARCHAR"}
        types |= {"_created_at": "VARCHAR", "_updated_at": "VARCHAR"}
        for source, names in (("d", public), ("p", personal)):
            if not names:
                types[source] = "JSON"
                continue
            types[source] = "STRUCT(" + ", ".join(f"{quote(name)} VARCHAR" for name in names) + ")"
            projections.extend(f"{source}.{quote(name)} AS {quote(name)}" for name in names)
        columns = "{" + ", ".join(f"{literal(name)}: {literal(kind)}" for name, kind in types.items()) + "}"
        names = ", ".join(literal(str(file)) for file in files)
        inner = f"SELECT * FROM read_json([{names}], format = 'newline_delimited', columns = {columns})"
        # Timestamps are written as UTC text without an offset; read them as UTC.
        zone = con.execute("SELECT current_setting('TimeZone')").fetchone()[0]
        con.execute("SET TimeZone = 'UTC'")
        try:
            con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT {', '.join(projections)} FROM ({inner})")
        except duckdb.Error as exc:
            first = next((line for line in str(exc).splitlines() if line.strip()), "")
            raise SourceError(
                _("信息库“%(code)s”的记录无法读取：%(error)s") % {"code": registry.code, "error": first[:500]}
            ) from None
        finally:
            con.execute(f"SET TimeZone = {literal(zone)}")
    finally:
        for file in {path, *files, *workdir.glob(f"{table}.*.ndjson")}:  # also a failed load's worker files
            file.unlink(missing_ok=True)
    return count


def load_values(con, registry, fields: Sequence[FieldDef], field: str, workdir: Path, *, table: str) -> int:
    """A one-column table ``v`` of the distinct values of ``field`` (or ``_uid``) of another registry."""
    source = f"{table}_src"
    wanted = [f for f in fields if f.name == field]
    load_registry(con, registry, wanted, workdir, table=source)
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT DISTINCT CAST({quote(field)} AS VARCHAR) AS v "
        f"FROM {quote(source)} WHERE {quote(field)} IS NOT NULL"
    )
    con.execute(f"DROP TABLE {quote(source)}")
    return con.execute(f"SELECT count(*) FROM {quote(table)}").fetchall()[0][0]
