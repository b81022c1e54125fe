"""Outbox subscribers of one-stop services (found by ``dgov.kernel.services.events.autodiscover``).

A record created in ``population.event`` (a birth, a marriage …) may offer a 一件事 bundle to the
people it concerns (主动服务, :mod:`dgov.services.offers`). The registry announces the creation with
field names only; the handler reads the record as it is when the worker runs. It is idempotent: an
offer exists once per (bundle, holder, event), so a repeated delivery creates nothing.

A closed application's decision document is drawn and signed here too, after the closing
transaction (:func:`dgov.services.results.render_result`).
"""

from __future__ import annotations

from dgov.kernel.services.events import subscribe
from dgov.services import offers, results


@subscribe("registry.record.created", name="services.offers.from_event")
def offer_from_event(event) -> None:
    """A base-library event record was created: offer the bundle its kind calls for (births, marriages)."""
    payload = event.payload or {}
    if payload.get("registry") == offers.EVENT_REGISTRY and payload.get("uid"):
        offers.offers_from_event(payload["registry"], payload["uid"])


@subscribe(results.RESULT_EVENT, name="services.results.render")
def render_result(event) -> None:
    """An application closed: draw, sign and store its decision document (a repeated delivery does nothing)."""
    payload = event.payload or {}
    if payload.get("application"):
        results.render_result(int(payload["application"]), decided_by=str(payload.get("decided_by", "")))
