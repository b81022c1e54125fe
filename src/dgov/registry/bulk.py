"""What bulk writes of records store per row, prepared with keys looked up once (批量写入的行封装).

A record row stores its public values as JSON (``Record.data``), its personal values sealed
together with SM4-GCM (``Record.sealed``) and, per identifier/unique/lookup field, the HMAC-SM3
blind index of the value (``RecordKey.digest``). :class:`RowSealer` computes all three for a row
of cleaned values with the data keys of one :class:`SealingKeys` — looked up once per batch by
``services.bulk_create_records``, or once per import by the parent of an import worker process,
which hands them to the worker through its private pipe (never to disk) so that the worker
computes digests and ciphertexts while the parent only checks and inserts.

A prepared row names the key ids it was made with; the engine uses it only while they are still
the active keys (a rotation during a long import makes it prepare the remaining rows itself).

:func:`sqlite_bulk_cache` enlarges SQLite's page cache for one connection while a bulk load runs:
the random inserts into the blind-index indexes then stay in memory instead of being spilled and
re-read. It changes nothing about how or when the transaction is made durable.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from django.db import connection

from dgov.kernel.fields import PII_PURPOSE, blind_index, encrypt_value
from dgov.registry.models import Record
from dgov.registry.schema import FieldDef, key_purpose

__all__ = ["Prepared", "RowSealer", "SealingKeys", "sqlite_bulk_cache"]

# Page cache for bulk loads on SQLite (KiB): about what the key and division indexes of a
# million-row load occupy (plus the record pages not yet written), so they are not re-read.
BULK_CACHE_KIB = 1 << 20


@dataclass(frozen=True)
class SealingKeys:
    """The data keys rows are prepared with: the blind-index key and the personal-data key (with its kid)."""

    index_kid: str = ""
    index_key: bytes = b""
    pii_kid: str = ""
    pii_key: bytes = b""

    @classmethod
    def active(cls, *, index: bool = True, pii: bool = True) -> SealingKeys:
        """The active keys (created on first use, like single writes do); only those asked for."""
        from dgov.kernel.services import keys

        index_kid, index_key = keys.data_key(keys.BLIND_INDEX_PURPOSE) if index else ("", b"")
        pii_kid, pii_key = keys.data_key(PII_PURPOSE) if pii else ("", b"")
        return cls(index_kid, index_key, pii_kid, pii_key)


class Prepared(NamedTuple):
    """One row as stored: data JSON text, sealed text (``""`` when no personal value), key rows, key ids used."""

    data: str
    sealed: str
    keys: tuple[tuple[str, str, bool], ...]
    index_kid: str
    pii_kid: str


def dumps_sealed(values: dict) -> str:
    """Personal values as the compact JSON that is sealed ("" when there is nothing to seal)."""
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"), sort_keys=True) if values else ""


class RowSealer:
    """Prepares rows of one registry: key digests, public JSON and sealed personal values."""

    def __init__(self, registry_code: str, fields: Iterable[FieldDef]):
        fields = list(fields)
        self.key_fields = tuple(
            (field.name, key_purpose(registry_code, field), bool(field.unique))
            for field in fields
            if field.unique or field.lookup
        )
        self.personal = frozenset(field.name for field in fields if field.is_personal)
        self.encoder = Record._meta.get_field("data").encoder

    def keys(self) -> SealingKeys:
        """The active keys this registry's rows need (no personal-data key without personal fields)."""
        return SealingKeys.active(index=bool(self.key_fields), pii=bool(self.personal))

    def digests(self, values: dict, keys: SealingKeys) -> tuple[tuple[str, str, bool], ...]:
        """``(field, digest, is_unique)`` for the key fields that have a value."""
        out = []
        for name, purpose, unique in self.key_fields:
            value = values.get(name)
            if value is not None and value != "":
                out.append((name, blind_index(str(value), purpose=purpose, key=keys.index_key), unique))
        return tuple(out)

    def seal(self, values: dict, keys: SealingKeys) -> tuple[str, str]:
        """``(public values as JSON text, personal values sealed with SM4-GCM or "")``."""
        personal_names = self.personal
        public, personal = {}, {}
        for name, value in values.items():
            if name in personal_names:
                personal[name] = value
            else:
                public[name] = value
        sealed = encrypt_value(dumps_sealed(personal), key=(keys.pii_kid, keys.pii_key)) if personal else ""
        return json.dumps(public, cls=self.encoder), sealed

    def prepare(self, values: dict, keys: SealingKeys) -> Prepared:
        """Everything stored for a row of cleaned values."""
        data, sealed = self.seal(values, keys)
        return Prepared(data, sealed, self.digests(values, keys), keys.index_kid, keys.pii_kid)

    @staticmethod
    def usable(prepared: Prepared | None, keys: SealingKeys) -> bool:
        """Whether a row prepared elsewhere was made with these (still active) keys."""
        return (
            prepared is not None
            and (not prepared.keys or prepared.index_kid == keys.index_kid)
            and (not prepared.sealed or prepared.pii_kid == keys.pii_kid)
        )


@contextlib.contextmanager
def sqlite_bulk_cache(kib: int = BULK_CACHE_KIB) -> Iterator[None]:
    """On SQLite, a page cache of at least ``kib`` KiB for this connection while the block runs.

    Only memory: the pages are allocated as the load touches them, and synchronous, journal and
    locking settings stay as they are, so the commit is exactly as durable as without it.
    """
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection  # a connection setting, not a query: not logged or counted as one
    before = raw.execute("PRAGMA cache_size").fetchone()[0]
    # Negative sizes are KiB, positive ones pages; compare in KiB (pages of 4 KiB at least).
    if (-before if before < 0 else before * 4) >= kib:
        yield
        return
    raw.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        with contextlib.suppress(sqlite3.Error):
            raw.execute(f"PRAGMA cache_size = {int(before)}")
