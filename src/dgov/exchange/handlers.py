"""Outbox subscribers of sharing and exchange (found by ``dgov.kernel.services.events.autodiscover``).

Registry record events become webhook deliveries of the subscriptions on that registry
(:func:`dgov.exchange.subscriptions.on_record_event`); the event carries field names only, and the
handler is idempotent (one delivery per subscription and event).
"""

from __future__ import annotations

from dgov.exchange import subscriptions
from dgov.kernel.services.events import subscribe


@subscribe("registry.record.created", name="exchange.webhook.record_created")
@subscribe("registry.record.updated", name="exchange.webhook.record_updated")
@subscribe("registry.record.deleted", name="exchange.webhook.record_deleted")
@subscribe("registry.record.restored", name="exchange.webhook.record_restored")
@subscribe("registry.records.imported", name="exchange.webhook.records_imported")
def queue_webhooks(event) -> None:
    """A record of a registry changed: queue a delivery for every subscription that may hear of it."""
    subscriptions.on_record_event(event)
