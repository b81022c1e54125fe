"""Transactional outbox: domain events written with the change they announce, delivered by the worker.

Publishing
    ``publish(event_type, payload, aggregate=..., aggregate_id=...)`` inserts an :class:`OutboxEvent`
    row in the caller's transaction, so the event exists if and only if the change committed.
    Calling it outside ``transaction.atomic()`` raises :class:`NotInTransaction`.

Subscribing
    ``@subscribe("services.application.accepted")`` registers ``handler(event)``. A pattern is an
    exact event type, ``"*"`` (every event) or a prefix ending in ``".*"`` (``"kernel.*"`` matches
    ``kernel.notification.requested`` but not ``kernelx.y``). Handlers are found by importing each
    installed app's ``handlers``, ``services`` and ``tasks`` modules (see :func:`autodiscover`).

Delivery (at-least-once)
    The worker claims due events in id order, runs every matching handler in its own transaction
    and records an :class:`OutboxDelivery` per (event, handler) in that same transaction: a handler
    that succeeded is not run again when a sibling handler fails and the event is retried. A handler
    may still run twice (the worker dies after the handler's side effect left the building, or its
    lease expires), so handlers must be idempotent — key external effects on ``event.id``.
    Failed events are retried with exponential backoff (``OUTBOX_BACKOFF_BASE`` seconds doubling
    up to ``OUTBOX_BACKOFF_MAX``) and become ``dead`` after ``OUTBOX_MAX_ATTEMPTS`` failures; an
    administrator re-queues them with :func:`requeue`.

Order
    Events of one aggregate (same ``aggregate`` and ``aggregate_id``, both non-empty) are delivered
    in id order: an event waits while an earlier event of its aggregate is pending (also while that
    one waits for a retry). A dead event no longer holds its aggregate back — it needs an operator,
    and stalling every later event of the aggregate behind it would turn one bad handler into an
    outage. Events without an aggregate are unordered.
"""

from __future__ import annotations

import logging
import random
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.db.models import Min, Q
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from django_tasks_db.utils import exclusive_transaction
from prometheus_client import Counter, Gauge

from dgov.kernel.models import OutboxDelivery, OutboxEvent, WorkerHeartbeat
from dgov.kernel.observability import current_request_id
from dgov.kernel.services import audit

logger = logging.getLogger(__name__)

__all__ = [
    "NotInTransaction",
    "DrainResult",
    "publish",
    "subscribe",
    "unsubscribe",
    "handlers_for",
    "autodiscover",
    "claim_batch",
    "process_event",
    "drain",
    "requeue",
    "prune_delivered",
    "refresh_gauges",
    "record_heartbeat",
    "worker_status",
]

EVENTS_PUBLISHED = Counter(
    "dgov_outbox_events_published_total", "Domain events committed to the outbox", ["event_type"]
)
EVENTS_DELIVERED = Counter(
    "dgov_outbox_events_delivered_total", "Outbox events delivered to all their handlers", ["event_type"]
)
EVENTS_FAILED = Counter(
    "dgov_outbox_events_failed_total", "Outbox delivery attempts in which a handler failed", ["event_type"]
)
EVENTS_DEAD = Counter(
    "dgov_outbox_events_dead_total", "Outbox events given up after the last retry", ["event_type"]
)
OUTBOX_BACKLOG = Gauge(
    "dgov_outbox_backlog", "Outbox events not delivered, by status", ["status"], multiprocess_mode="mostrecent"
)

# Kernel modules whose handlers the worker needs; other apps are found by autodiscover_modules.
_KERNEL_HANDLER_MODULES = ("dgov.kernel.services.notify", "dgov.kernel.tasks")


class NotInTransaction(RuntimeError):
    """publish() was called outside transaction.atomic(): the event could outlive a rolled-back change."""


@dataclass(frozen=True)
class Subscription:
    """One registered handler and the event-type pattern it listens to."""

    pattern: str
    name: str
    func: Callable[[OutboxEvent], object]

    def matches(self, event_type: str) -> bool:
        """True when this subscription's pattern covers ``event_type``."""
        if self.pattern == "*":
            return True
        if self.pattern.endswith(".*"):
            return event_type.startswith(self.pattern[:-1])
        return event_type == self.pattern


@dataclass
class DrainResult:
    """What one drain pass did."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0

    def __iadd__(self, other: DrainResult) -> DrainResult:
        self.claimed += other.claimed
        self.delivered += other.delivered
        self.failed += other.failed
        self.dead += other.dead
        return self


_subscriptions: list[Subscription] = []
_registry_lock = threading.Lock()


def _validate_pattern(pattern: str) -> None:
    if not pattern or len(pattern) > 100:
        raise ValueError("event type pattern must be 1-100 characters")
    star = pattern.find("*")
    if star != -1 and not (pattern == "*" or (pattern.endswith(".*") and star == len(pattern) - 1)):
        raise ValueError(f"unsupported pattern {pattern!r}: use an exact type, '*' or a 'prefix.*'")


def subscribe(event_type: str, *, name: str | None = None):
    """Register the decorated ``handler(event)`` for an event type, ``"*"`` or a ``"prefix.*"`` pattern.

    ``name`` identifies the handler in delivery records (default: module.qualname); keep it stable,
    since a renamed handler counts as a new one and runs again for events that are being retried.
    """
    _validate_pattern(event_type)

    def decorator(func):
        sub = Subscription(event_type, name or f"{func.__module__}.{func.__qualname__}", func)
        with _registry_lock:
            # Re-registering the same name (a module imported twice) replaces the old entry.
            _subscriptions[:] = [
                s for s in _subscriptions if not (s.name == sub.name and s.pattern == sub.pattern)
            ]
            _subscriptions.append(sub)
        return func

    return decorator


def unsubscribe(handler: Callable | str) -> None:
    """Remove a handler (the function or its registered name) from every pattern."""
    with _registry_lock:
        _subscriptions[:] = [s for s in _subscriptions if s.func is not handler and s.name != handler]


def handlers_for(event_type: str) -> list[Subscription]:
    """The subscriptions that receive ``event_type``, in registration order, one per handler name."""
    seen: set[str] = set()
    result = []
    with _registry_lock:
        subs = list(_subscriptions)
    for sub in subs:
        if sub.matches(event_type) and sub.name not in seen:
            seen.add(sub.name)
            result.append(sub)
    return result


def autodiscover() -> None:
    """Import every installed app's handlers/services/tasks modules so their @subscribe calls run."""
    import importlib

    for module in _KERNEL_HANDLER_MODULES:
        importlib.import_module(module)
    autodiscover_modules("handlers", "services", "tasks")


def publish(event_type: str, payload: dict, *, aggregate: str = "", aggregate_id: str = "") -> OutboxEvent:
    """Write a domain event into the outbox inside the caller's transaction (raises outside one)."""
    using = router.db_for_write(OutboxEvent)
    if not transaction.get_connection(using).in_atomic_block:
        raise NotInTransaction(
            f"publish({event_type!r}) must run inside transaction.atomic() with the change it announces"
        )
    if not event_type or "*" in event_type or len(event_type) > 100:
        raise ValueError(f"invalid event type {event_type!r}")
    if not isinstance(payload, dict):
        raise TypeError("event payload must be a dict")
    rid = current_request_id()
    event = OutboxEvent.objects.using(using).create(
        event_type=event_type,
        payload=payload,
        aggregate=aggregate,
        aggregate_id=str(aggregate_id),
        request_id="" if rid == "-" else rid,
    )
    transaction.on_commit(lambda: EVENTS_PUBLISHED.labels(event_type).inc(), using=using)
    return event


def _setting(name: str, default):
    return getattr(settings, name, default)


def backoff_delay(attempts: int) -> float:
    """Seconds to wait before retry number ``attempts`` (1-based): doubling, capped, with ±20 % jitter."""
    base = float(_setting("OUTBOX_BACKOFF_BASE", 2.0))
    cap = float(_setting("OUTBOX_BACKOFF_MAX", 3600.0))
    delay = min(base * (2 ** max(attempts - 1, 0)), cap)
    # Jitter spreads retries of many events that failed together (a provider outage) over time.
    return delay * random.uniform(0.8, 1.2)


def _aggregate_key(event: OutboxEvent) -> tuple[str, str] | None:
    return (event.aggregate, event.aggregate_id) if event.aggregate and event.aggregate_id else None


def claim_batch(worker_id: str, *, limit: int | None = None, now=None) -> list[OutboxEvent]:
    """Lease up to ``limit`` due events to ``worker_id``, honouring per-aggregate order.

    PostgreSQL: rows are locked with SKIP LOCKED, so concurrent workers claim disjoint batches.
    SQLite: the claim runs in an exclusive transaction (one writer at a time), which serializes it.
    """
    limit = limit or int(_setting("OUTBOX_BATCH_SIZE", 100))
    now = now or timezone.now()
    lease = timedelta(seconds=float(_setting("OUTBOX_LEASE_SECONDS", 300)))
    using = router.db_for_write(OutboxEvent)
    connection = transaction.get_connection(using)
    with exclusive_transaction(using):
        qs = (
            OutboxEvent.objects.using(using)
            .filter(status=OutboxEvent.Status.PENDING, next_attempt_at__lte=now)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .order_by("id")
        )
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        candidates = list(qs[:limit])
        if not candidates:
            return []
        ids = [e.id for e in candidates]
        keys = {k for k in map(_aggregate_key, candidates) if k}
        blockers: dict[tuple[str, str], int] = {}
        if keys:
            cond = Q()
            for agg, agg_id in keys:
                cond |= Q(aggregate=agg, aggregate_id=agg_id)
            # Any pending event of the same aggregate that is older and not in this batch (waiting for
            # a retry, or leased to another worker) holds back the later ones.
            rows = (
                OutboxEvent.objects.using(using)
                .filter(cond, status=OutboxEvent.Status.PENDING, id__lt=ids[-1])
                .exclude(id__in=ids)
                .order_by()
                .values("aggregate", "aggregate_id")
                .annotate(first=Min("id"))
            )
            blockers = {(r["aggregate"], r["aggregate_id"]): r["first"] for r in rows}
        claimed = [
            e
            for e in candidates
            if (k := _aggregate_key(e)) is None or k not in blockers or e.id < blockers[k]
        ]
        if claimed:
            until = now + lease
            OutboxEvent.objects.using(using).filter(id__in=[e.id for e in claimed]).update(
                locked_by=worker_id, locked_until=until
            )
            for e in claimed:
                e.locked_by, e.locked_until = worker_id, until
    return claimed


def _error_text(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text[:2000]


def _record_delivery(event: OutboxEvent, handler: str, *, error: str | None) -> None:
    delivery, _created = OutboxDelivery.objects.get_or_create(
        event=event, handler=handler, defaults={"status": OutboxDelivery.Status.FAILED}
    )
    delivery.attempts += 1
    if error is None:
        delivery.status = OutboxDelivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.last_error = ""
    else:
        delivery.status = OutboxDelivery.Status.FAILED
        delivery.last_error = error
    delivery.save()


def process_event(event: OutboxEvent) -> str:
    """Run the event's pending handlers and settle it; returns its new status (pending means retry)."""
    done = set(
        OutboxDelivery.objects.filter(event=event, status=OutboxDelivery.Status.DELIVERED).values_list(
            "handler", flat=True
        )
    )
    errors: list[str] = []
    for sub in handlers_for(event.event_type):
        if sub.name in done:
            continue
        try:
            # The handler's writes and its delivery record commit together, or not at all.
            with transaction.atomic():
                sub.func(event)
                _record_delivery(event, sub.name, error=None)
        except Exception as exc:
            logger.warning(
                "outbox handler failed",
                exc_info=True,
                extra={"event_id": event.id, "event_type": event.event_type, "handler": sub.name},
            )
            error = _error_text(exc)
            errors.append(f"{sub.name}: {error}")
            with transaction.atomic():
                _record_delivery(event, sub.name, error=error)

    now = timezone.now()
    fields = {"locked_by": "", "locked_until": None}
    if not errors:
        fields.update(status=OutboxEvent.Status.DELIVERED, delivered_at=now, last_error="")
        EVENTS_DELIVERED.labels(event.event_type).inc()
    else:
        attempts = event.attempts + 1
        fields.update(attempts=attempts, last_error="\n".join(errors)[:4000])
        EVENTS_FAILED.labels(event.event_type).inc()
        if attempts >= int(_setting("OUTBOX_MAX_ATTEMPTS", 8)):
            fields["status"] = OutboxEvent.Status.DEAD
            EVENTS_DEAD.labels(event.event_type).inc()
            logger.error("outbox event dead", extra={"event_id": event.id, "event_type": event.event_type})
        else:
            fields["next_attempt_at"] = now + timedelta(seconds=backoff_delay(attempts))
    with transaction.atomic():
        OutboxEvent.objects.filter(id=event.id).update(**fields)
    for key, value in fields.items():
        setattr(event, key, value)
    return event.status


def drain(
    worker_id: str, *, limit: int | None = None, should_stop: Callable[[], bool] | None = None
) -> DrainResult:
    """Claim one batch of due events and deliver it (one pass; call again while it claims something).

    ``should_stop`` is polled between events; when it turns true the rest of the batch is released.
    """
    result = DrainResult()
    events = claim_batch(worker_id, limit=limit)
    result.claimed = len(events)
    held_back: set[tuple[str, str]] = set()
    for event in events:
        key = _aggregate_key(event)
        if key in held_back or (should_stop is not None and should_stop()):
            # An earlier event of this aggregate failed in this batch, or the worker is stopping:
            # release the lease so the event is not stuck until it expires.
            OutboxEvent.objects.filter(id=event.id).update(locked_by="", locked_until=None)
            continue
        status = process_event(event)
        if status == OutboxEvent.Status.DELIVERED:
            result.delivered += 1
        else:
            result.failed += 1
            if status == OutboxEvent.Status.DEAD:
                result.dead += 1
            elif key:
                held_back.add(key)
    return result


def requeue(event: OutboxEvent, *, actor) -> OutboxEvent:
    """Put a dead event back in the queue with a fresh retry budget (administrators; audited)."""
    if hasattr(actor, "has_perm") and not actor.has_perm("kernel.change_outboxevent"):
        raise PermissionDenied("requeueing outbox events requires kernel.change_outboxevent")
    with transaction.atomic():
        locked = OutboxEvent.objects.select_for_update().get(pk=event.pk)
        if locked.status != OutboxEvent.Status.DEAD:
            raise ValueError(f"only dead events can be requeued (event {locked.pk} is {locked.status})")
        previous = {"attempts": locked.attempts, "last_error": locked.last_error[:500]}
        locked.status = OutboxEvent.Status.PENDING
        locked.attempts = 0
        locked.next_attempt_at = timezone.now()
        locked.locked_by, locked.locked_until = "", None
        locked.save(update_fields=["status", "attempts", "next_attempt_at", "locked_by", "locked_until"])
        audit.record(
            "kernel.outbox.requeue",
            actor=actor,
            target=locked,
            detail={"event_type": locked.event_type, **previous},
        )
    event.refresh_from_db()
    return event


def prune_delivered(*, older_than_days: int = 30, actor="system:worker") -> int:
    """Delete delivered events older than ``older_than_days`` days (and their delivery records)."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    with transaction.atomic():
        qs = OutboxEvent.objects.filter(status=OutboxEvent.Status.DELIVERED, delivered_at__lt=cutoff)
        count = qs.count()
        if count:
            qs.delete()
            audit.record(
                "kernel.outbox.prune",
                actor=actor,
                detail={"deleted": count, "older_than_days": older_than_days},
            )
    return count


def refresh_gauges() -> None:
    """Set the backlog gauge from the database (called by the worker each pass and by /metrics)."""
    for status in (OutboxEvent.Status.PENDING, OutboxEvent.Status.DEAD):
        OUTBOX_BACKLOG.labels(status.value).set(OutboxEvent.objects.filter(status=status).count())


def record_heartbeat(
    worker_id: str,
    *,
    hostname: str,
    pid: int,
    started_at,
    events_delivered: int = 0,
    events_failed: int = 0,
    tasks_run: int = 0,
    stopped: bool = False,
) -> WorkerHeartbeat:
    """Upsert the worker's heartbeat row (telemetry, not a domain change: deliberately not audited)."""
    now = timezone.now()
    with transaction.atomic():
        beat, _created = WorkerHeartbeat.objects.update_or_create(
            worker_id=worker_id,
            defaults={
                "hostname": hostname[:255],
                "pid": pid,
                "started_at": started_at,
                "last_seen": now,
                "stopped_at": now if stopped else None,
                "events_delivered": events_delivered,
                "events_failed": events_failed,
                "tasks_run": tasks_run,
            },
        )
    return beat


def worker_status(max_age: float | None = None) -> str:
    """Return "ok" (a running worker beat within ``max_age`` s), "stale" (only earlier) or "missing"."""
    max_age = float(settings.WORKER_HEARTBEAT_MAX_AGE if max_age is None else max_age)
    last = (
        WorkerHeartbeat.objects.filter(stopped_at__isnull=True)
        .order_by("-last_seen")
        .values_list("last_seen", flat=True)
        .first()
    )
    if last is None:
        return "missing"
    return "ok" if (timezone.now() - last).total_seconds() <= max_age else "stale"
