"""Outbox subscribers of data quality (found by ``dgov.kernel.services.events.autodiscover``).

Registry writes mark the registry's active rectification orders for a re-check
(:func:`dgov.quality.rectification.note_registry_change`); the periodic job
:func:`dgov.quality.rectification.recheck_due` then requests the run. Working from the outbox
keeps the registry's write path untouched (its events are written anyway) and the handler is
idempotent: marking twice only moves the mark to the later time.
"""

from __future__ import annotations

from dgov.kernel.services.events import subscribe
from dgov.quality import rectification


@subscribe("registry.record.updated", name="quality.orders.mark_updated")
def mark_updated(event) -> None:
    """A record's fields changed: mark the orders whose rules read one of them (or no field at all)."""
    payload = event.payload or {}
    if payload.get("registry"):
        rectification.note_registry_change(payload["registry"], fields=list(payload.get("fields") or ()))


@subscribe("registry.record.created", name="quality.orders.mark_created")
@subscribe("registry.record.deleted", name="quality.orders.mark_deleted")
@subscribe("registry.record.restored", name="quality.orders.mark_restored")
@subscribe("registry.records.imported", name="quality.orders.mark_imported")
def mark_any(event) -> None:
    """Records came or went: any rule of the registry may judge differently now."""
    payload = event.payload or {}
    if payload.get("registry"):
        rectification.note_registry_change(payload["registry"])
