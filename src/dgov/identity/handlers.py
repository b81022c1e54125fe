"""Outbox subscribers of the identity app (found by ``dgov.kernel.services.events.autodiscover``).

Real-name levels follow the population library: when a ``population.person`` record's status or
ID number changes, or the record is deleted, the accounts verified against it are re-checked
(:func:`dgov.identity.realname.recheck_person_record`). The registry announces its writes as
outbox events, so the registry needs to know nothing about accounts; the re-check judges the
record as it is when the worker runs, so a delivery that is repeated or late does no harm.
"""

from __future__ import annotations

from dgov.identity import realname
from dgov.kernel.services.events import subscribe

# Changes of these fields can take a verified account's footing away.
RECHECKED_FIELDS = frozenset({"status", "id_number"})


@subscribe("registry.record.updated", name="identity.realname.recheck_updated")
def recheck_updated_person(event) -> None:
    """A person's status or ID number changed (an edit or an accepted correction): re-check their accounts."""
    payload = event.payload or {}
    fields = set(payload.get("fields") or ())
    if payload.get("registry") == realname.PERSON_REGISTRY and fields & RECHECKED_FIELDS:
        realname.recheck_person_record(payload.get("uid"), changed=fields)


@subscribe("registry.record.deleted", name="identity.realname.recheck_deleted")
def recheck_deleted_person(event) -> None:
    """A person's record was deleted: the accounts verified against it drop to level 1."""
    payload = event.payload or {}
    if payload.get("registry") == realname.PERSON_REGISTRY:
        realname.recheck_person_record(payload.get("uid"))
