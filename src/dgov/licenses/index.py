"""The e-licence base library (电子证照基础库): the index record of every issued licence in ``licence.index``.

The library (``dgov/registry/libraries/licence_index.json``) belongs to the provincial data
administration (大数据局, the authority of every field); the e-licence system writes it *as the
platform*: records are created and changed through :mod:`dgov.registry.services` with the system
actor ``system:licences`` in the name of the registry's owner, so the registry's authority rules,
history, blind indexes and audit apply as to any other writer.

Issuance creates the record (in bulk for bulk issuance: one registry import per batch); variation,
renewal and status changes update it. The writes happen in the issuing transaction, in a savepoint:
when the library is not installed nothing is written, and when the registry refuses a write (a
misconfigured library) the licence is still issued, the refusal is logged, and ``dgov licences
reindex`` writes the missing or outdated records later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from dgov.licenses.models import HolderKind, Licence
from dgov.registry import services as registry_services
from dgov.registry.models import Registry

__all__ = ["ACTOR", "REGISTRY_CODE", "index_values", "installed", "record_changed", "record_issued", "reindex"]

logger = logging.getLogger(__name__)

REGISTRY_CODE = "licence.index"
ACTOR = "system:licences"


def installed() -> Registry | None:
    """The ``licence.index`` registry, or None when the base library is not installed."""
    try:
        return registry_services.get_registry(REGISTRY_CODE)
    except registry_services.RegistryNotFound:
        return None


def index_status(licence: Licence, today=None) -> str:
    """The library's status of a licence: valid, suspended, revoked, or expired (past its validity)."""
    today = today or timezone.localdate()
    if licence.status == Licence.Status.VALID and licence.valid_until is not None and licence.valid_until < today:
        return "expired"
    return licence.status


def index_values(licence: Licence) -> dict:
    """The index record of one licence (its type and issuer loaded)."""
    values = {
        "licence_id": licence.identifier,
        "type_code": licence.licence_type.code,
        "type_name": licence.licence_type.name,
        "licence_no": licence.number,
        "holder_name": licence.holder_name,
        "issuer": licence.issuer.name,
        "issuer_code": licence.issuer.uscc,
        "issued_on": timezone.localtime(licence.issued_at).date().isoformat(),
        "valid_from": licence.valid_from.isoformat(),
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
        "status": index_status(licence),
        "division_code": licence.division_code or licence.issuer.division.code,
    }
    if licence.holder_kind == HolderKind.PERSON:
        values["holder_id_number"] = licence.holder_id
    else:
        values["holder_uscc"] = licence.holder_id
    return values


def _failed(what: str, identifiers: Sequence[str], exc: Exception) -> None:
    """Log a refused index write (the licence stands; ``dgov licences reindex`` repairs the library)."""
    logger.error(
        "licence index: %s of %d licence(s) (first %s) refused by the registry: %s",
        what,
        len(identifiers),
        identifiers[0] if identifiers else "-",
        exc,
    )


def record_issued(licences: Sequence[Licence]) -> int:
    """Create the index records of newly issued licences (one import for many); returns how many were written."""
    registry = installed()
    if registry is None or not licences:
        return 0
    rows = [index_values(licence) for licence in licences]
    try:
        with transaction.atomic():
            if len(rows) == 1:
                registry_services.create_record(registry, rows[0], actor=ACTOR, source=registry.owner)
                return 1
            return registry_services.bulk_create_records(registry, rows, actor=ACTOR, source=registry.owner)
    except (ValidationError, PermissionDenied) as exc:
        _failed("creation", [licence.identifier for licence in licences], exc)
        return 0


def record_changed(licence: Licence) -> bool:
    """Update (or create, when missing) the index record of a changed licence; whether it was written."""
    registry = installed()
    return registry is not None and _write_changed(registry, licence)


def _write_changed(registry: Registry, licence: Licence) -> bool:
    """Update or create the index record of ``licence`` in the installed library; whether it was written."""
    values = index_values(licence)
    try:
        with transaction.atomic():
            registry_services.update_or_create_record(
                registry, {"licence_id": values.pop("licence_id")}, values, actor=ACTOR, source=registry.owner
            )
    except (ValidationError, PermissionDenied) as exc:
        _failed("update", [licence.identifier], exc)
        return False
    return True


def reindex(queryset=None, *, progress=None) -> int:
    """Write (create or bring up to date) the index record of every licence, e.g. after installing the library."""
    registry = installed()
    if registry is None:
        return 0
    licences = (queryset if queryset is not None else Licence.objects.all()).select_related(
        "licence_type", "issuer", "issuer__division"
    )
    written = 0
    for licence in licences.order_by("pk").iterator(chunk_size=500):
        written += _write_changed(registry, licence)
        if progress is not None:
            progress(1)
    return written
