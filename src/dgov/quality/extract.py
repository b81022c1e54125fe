"""Loading a registry's records into DuckDB for evaluation (数据抽取).

DuckDB's SQLite and PostgreSQL scanners are extensions that are downloaded on first use, which an
offline government network cannot do, and personal values are sealed (SM4-GCM) in the database
anyway. So the records are read through Django's connection — SQLite and PostgreSQL alike — in
keyset-paginated chunks of plain tuples, the sealed personal values are decrypted in Python, and
each record becomes one line of newline-delimited JSON in a private temporary directory::

    {"_id": 7, "_uid": "…", "_v": 1, "_division": "370102", "_created_at": "…", "_updated_at": "…",
     "d": {<public values, the stored JSON text as is>}, "p": {<decrypted personal values>}}

DuckDB then reads the file in parallel into a table ``records`` of the registry's fields as text
(exactly as stored) plus the columns ``_id``, ``_uid``, ``_schema_version``, ``_division``,
``_created_at`` and ``_updated_at``. The database file and the JSON file live in the temporary
directory and are removed with it when the run ends; nothing decrypted is kept elsewhere. Deleted
records are left out. The work directory is ``settings.QUALITY_WORK_DIR`` (default: the system's
temporary directory); it should be on an encrypted volume, like the database's own files.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _

from dgov.kernel.crypto import CryptoError
from dgov.kernel.fields import decrypt_value
from dgov.quality.engine import EngineError
from dgov.quality.rules import Column, literal, quote
from dgov.registry.models import Record
from dgov.registry.schema import FieldDef

__all__ = ["META_COLUMNS", "SourceError", "columns_for", "load_registry", "lock_down", "open_connection"]

CHUNK = 5000
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
    """A DuckDB database in ``workdir``: no extension downloads, spills to ``workdir``, platform time zone."""
    con = duckdb.connect(str(workdir / "quality.duckdb"))
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


def _uid_text(value) -> str:
    """A record uid as canonical text (SQLite stores 32 hex digits, PostgreSQL a uuid)."""
    if isinstance(value, str) and len(value) == 32:
        # Slicing is twenty times cheaper than uuid.UUID() for the common case.
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}".lower()
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def _moment(value) -> str:
    """A stored timestamp as ISO text with its offset (SQLite returns naive UTC text)."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.replace(" ", "T")
        return text if ("+" in text[10:] or text.endswith("Z")) else text + "+00:00"
    return value.isoformat()


def _json_text(value) -> str:
    """A JSON column's value as JSON text (PostgreSQL drivers may return it parsed)."""
    if value is None or value == "":
        return "{}"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _rows(registry_id: int, chunk: int):
    """The registry's live records as tuples, by id, in chunks of ``chunk`` (keyset pagination)."""
    table = connection.ops.quote_name(Record._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(Record._meta.get_field(name).column)
        for name in ("id", "uid", "schema_version", "division_code", "created_at", "updated_at", "data", "sealed")
    )
    registry_column = connection.ops.quote_name(Record._meta.get_field("registry").column)
    deleted = connection.ops.quote_name(Record._meta.get_field("deleted_at").column)
    sql = (
        f"SELECT {columns} FROM {table} WHERE {registry_column} = %s AND {deleted} IS NULL AND id > %s "
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


def write_ndjson(registry, path: Path, *, personal: bool, progress: Callable[[int], None] | None = None) -> int:
    """Write the registry's live records to ``path`` as NDJSON (personal values decrypted); returns the count."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for rows in _rows(registry.pk, CHUNK):
            lines = []
            for record_id, uid, version, division, created, updated, data, sealed in rows:
                try:
                    private = decrypt_value(sealed) if (personal and sealed) else "{}"
                except CryptoError as exc:
                    raise SourceError(
                        _("信息库“%(code)s”记录 %(uid)s 的个人信息无法解密：%(error)s")
                        % {"code": registry.code, "uid": _uid_text(uid), "error": exc}
                    ) from None
                lines.append(
                    f'{{"_id":{int(record_id)},"_uid":"{_uid_text(uid)}","_v":{int(version)},'
                    f'"_division":{json.dumps(division or "")},"_created_at":"{_moment(created)}",'
                    f'"_updated_at":"{_moment(updated)}","d":{_json_text(data)},"p":{private}}}\n'
                )
            out.writelines(lines)
            count += len(rows)
            if progress is not None:
                progress(len(rows))
    return count


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
    count = write_ndjson(registry, path, personal=bool(personal), progress=progress)
    projections = [
        "_id",
        "_uid",
        "CAST(_v AS INTEGER) AS _schema_version",
        "_division",
        "CAST(NULLIF(_created_at, '') AS TIMESTAMPTZ) AS _created_at",
        "CAST(NULLIF(_updated_at, '') AS TIMESTAMPTZ) AS _updated_at",
    ]
    extracts = []
    for source, names in (("d", public), ("p", personal)):
        if not names:
            continue
        paths = ", ".join(literal(f"$.{name}") for name in names)
        extracts.append(f"json_extract_string({source}, [{paths}]) AS _{source}v")
        projections.extend(f"_{source}v[{i}] AS {quote(name)}" for i, name in enumerate(names, start=1))
    columns = (
        "{'_id': 'BIGINT', '_uid': 'VARCHAR', '_v': 'INTEGER', '_division': 'VARCHAR', "
        "'_created_at': 'VARCHAR', '_updated_at': 'VARCHAR', 'd': 'JSON', 'p': 'JSON'}"
    )
    reader = f"read_json({literal(str(path))}, format = 'newline_delimited', columns = {columns})"
    inner = f"SELECT *{''.join(', ' + e for e in extracts)} FROM {reader}"
    try:
        con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT {', '.join(projections)} FROM ({inner})")
    except duckdb.Error as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise SourceError(
            _("信息库“%(code)s”的记录无法读取：%(error)s") % {"code": registry.code, "error": first[:500]}
        ) from None
    finally:
        path.unlink(missing_ok=True)
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
