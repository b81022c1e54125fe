"""The gateway's lookups, lean: one statement for the call's context, one for the record.

A gateway call used to cost about fifteen ORM queries and 15 ms of Python (docs/benchmarks.md):
the resource with four joined relations, the registry, the grants, the purpose of the grant's
request, the record through its keys, the rate-limit row. Here:

* :func:`call_context` reads the resource's state, its provider's code and every grant of the
  consumer on it (with each grant's liveness and its request's purpose) in **one** statement,
  built once from the models' metadata. Grants are never cached: a revocation stops the next call.
* :func:`published_items` keeps the items of a published catalogue version per process. A
  published version's snapshot never changes (a change is a new version, which the context query
  finds at once); the cache is dropped when this process saves or deletes a version.
* :func:`find_records` reads the live records with given identifiers (one, or a whole batch)
  through their blind index with one statement and decrypts their sealed values; registries come
  from the registry service's short-lived per-process cache
  (:func:`dgov.registry.services.cached_registry`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from dgov.catalog.models import InformationResource, ResourceVersion
from dgov.exchange.models import Grant, ItemMode, ShareRequest
from dgov.kernel.fields import blind_index, decrypt_value
from dgov.kernel.models import Organization
from dgov.registry import services as registry_services
from dgov.registry.models import Record, RecordKey
from dgov.registry.schema import RecordValidationError, clean_value, field_map, key_purpose


@dataclass
class CallContext:
    """What a gateway call needs to know about its resource and the consumer's grants on it."""

    resource_id: int
    resource_code: str
    provider_code: str
    retired: bool
    published_version_id: int | None
    granted: dict[str, str] = field(default_factory=dict)
    grant_id: int | None = None
    purpose: str = ""
    refusal: str = "no_grant"


def _json(value):
    """A JSON column's value as Python (drivers give text or already-decoded values)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


_context_sql: dict[str, str] = {}


def _context_statement() -> str:
    """The context statement for this database (built once from the models' tables and columns)."""
    sql = _context_sql.get(connection.vendor)
    if sql is not None:
        return sql
    q = connection.ops.quote_name
    r, o, g, s = InformationResource._meta, Organization._meta, Grant._meta, ShareRequest._meta

    def c(meta, name: str) -> str:
        return q(meta.get_field(name).column)

    sql = (
        f"SELECT r.{c(r, 'id')}, r.{c(r, 'code')}, r.{c(r, 'status')}, r.{c(r, 'published_version')}, "
        f"o.{c(o, 'code')}, g.{c(g, 'id')}, g.{c(g, 'items')}, "
        f"(g.{c(g, 'revoked_at')} IS NOT NULL), (g.{c(g, 'valid_until')} <= %s), (g.{c(g, 'valid_from')} > %s), "
        f"s.{c(s, 'purpose')} "
        f"FROM {q(r.db_table)} r "
        f"JOIN {q(o.db_table)} o ON o.{c(o, 'id')} = r.{c(r, 'provider')} "
        f"LEFT JOIN {q(g.db_table)} g ON g.{c(g, 'resource')} = r.{c(r, 'id')} AND g.{c(g, 'consumer')} = %s "
        f"LEFT JOIN {q(s.db_table)} s ON s.{c(s, 'id')} = g.{c(g, 'request')} "
        f"WHERE r.{c(r, 'code')} = %s "
        f"ORDER BY g.{c(g, 'granted_at')} DESC, g.{c(g, 'id')} DESC"
    )
    _context_sql[connection.vendor] = sql
    return sql


def call_context(consumer_id: int, resource_code: str, now) -> CallContext | None:
    """The resource with this code and the consumer's live grants on it merged, or None when no such resource.

    Grants merge as :func:`dgov.exchange.services.live_grant_items` does: ``full`` wins over
    ``verify``; the newest live grant names the call (its id and its request's purpose). With no
    live grant ``refusal`` says why: ``grant_revoked``, ``grant_expired`` or ``no_grant``.
    """
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(_context_statement(), [stamp, stamp, consumer_id, resource_code])
        rows = cursor.fetchall()
    if not rows:
        return None
    resource_id, code, status, version_id, provider_code = rows[0][:5]
    context = CallContext(
        resource_id=resource_id,
        resource_code=code,
        provider_code=provider_code,
        retired=status == InformationResource.Status.RETIRED,
        published_version_id=version_id,
    )
    states = set()
    for *_resource, grant_id, items, revoked, expired, pending, purpose in rows:
        if grant_id is None:
            continue
        if revoked:
            states.add("revoked")
        elif expired:
            states.add("expired")
        elif not pending:
            if context.grant_id is None:
                context.grant_id, context.purpose = grant_id, purpose or ""
            for item, mode in (_json(items) or {}).items():
                if context.granted.get(item) != ItemMode.FULL:
                    context.granted[item] = mode
    if context.grant_id is None:
        context.refusal = (
            "grant_revoked" if "revoked" in states else "grant_expired" if "expired" in states else "no_grant"
        )
    return context


# --- Published items --------------------------------------------------------------------------------

_items_cache: dict[int, dict[str, dict]] = {}


@receiver([post_save, post_delete], sender=ResourceVersion)
def _forget_items(**kwargs) -> None:
    """Drop cached catalogue items when this process saves or deletes a published version."""
    _items_cache.clear()


def published_items(context: CallContext) -> dict[str, dict]:
    """The items of the resource's live published version by code (empty: nothing published, or retired)."""
    if context.published_version_id is None or context.retired:
        return {}
    items = _items_cache.get(context.published_version_id)
    if items is None:
        snapshot = (
            ResourceVersion.objects.filter(pk=context.published_version_id).values_list("snapshot", flat=True).first()
        )
        items = {item["code"]: item for item in (snapshot or {}).get("items", [])}
        if len(_items_cache) > 1000:
            _items_cache.clear()
        _items_cache[context.published_version_id] = items
    return items


# --- Records ------------------------------------------------------------------------------------------


class FoundRecord(NamedTuple):
    """A live record found by identifier: its row id, uid and current values (personal ones decrypted)."""

    pk: int
    uid: str
    values: dict


_record_sql: dict[str, str] = {}


def _record_statement() -> str:
    """The records-by-key statement for this database, up to ``IN (…)`` (built once from the models)."""
    sql = _record_sql.get(connection.vendor)
    if sql is not None:
        return sql
    q = connection.ops.quote_name
    rec, key = Record._meta, RecordKey._meta

    def c(meta, name: str) -> str:
        return q(meta.get_field(name).column)

    sql = (
        f"SELECT k.{c(key, 'digest')}, rec.{c(rec, 'id')}, rec.{c(rec, 'uid')}, rec.{c(rec, 'data')}, "
        f"rec.{c(rec, 'sealed')} "
        f"FROM {q(key.db_table)} k JOIN {q(rec.db_table)} rec ON rec.{c(rec, 'id')} = k.{c(key, 'record')} "
        f"WHERE k.{c(key, 'registry')} = %s AND k.{c(key, 'field')} = %s "
        f"AND rec.{c(rec, 'registry')} = %s AND rec.{c(rec, 'deleted_at')} IS NULL "
        f"AND k.{c(key, 'digest')} IN "
    )
    _record_sql[connection.vendor] = sql
    return sql


def find_records(registry, identifiers: list) -> list[FoundRecord | None]:
    """The live record of ``registry`` for each identifier, in order (None where there is none): one statement.

    Each value is cleaned by the identifier field's rules first (an ID number in any accepted
    spelling finds its record); a value that cannot be valid cannot be stored, so it finds
    nothing. Where several live records share a key the oldest is taken. Raises
    :class:`~dgov.registry.schema.RecordValidationError` when the registry's identifier field is
    not a key field (the registry cannot be looked up by identifier).
    """
    name = registry.identifier_field
    definition = field_map(registry_services.registry_fields(registry)).get(name)
    if definition is None or not (definition.unique or definition.lookup):
        raise RecordValidationError({name: ["not a key field"]})
    purpose = key_purpose(registry.code, definition)
    digests: list[str | None] = []
    for identifier in identifiers:
        try:
            cleaned = clean_value(definition, identifier)
        except RecordValidationError:
            cleaned = None
        digests.append(None if cleaned is None else blind_index(str(cleaned), purpose=purpose))
    wanted = sorted({digest for digest in digests if digest is not None})
    found: dict[str, tuple] = {}
    if wanted:
        marks = ", ".join(["%s"] * len(wanted))
        with connection.cursor() as cursor:
            cursor.execute(f"{_record_statement()}({marks})", [registry.pk, name, registry.pk, *wanted])
            for digest, *row in cursor.fetchall():
                if digest not in found or row[0] < found[digest][0]:
                    found[digest] = tuple(row)
    uid_field = Record._meta.get_field("uid")
    records: dict[str, FoundRecord] = {}
    for digest, (pk, uid, data, sealed) in found.items():
        values = dict(_json(data) or {})
        if sealed:
            values.update(json.loads(decrypt_value(sealed)))
        records[digest] = FoundRecord(pk, str(uid_field.to_python(uid)), values)
    return [records.get(digest) if digest is not None else None for digest in digests]


def find_record(registry, identifier) -> FoundRecord | None:
    """:func:`find_records` for one identifier."""
    return find_records(registry, [identifier])[0]
