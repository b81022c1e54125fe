"""Change subscriptions with SM2-signed webhooks (变更订阅与推送) of sharing and exchange.

Subscribing
    An official of the consumer department, or one of its clients with the ``exchange:call`` scope
    (:func:`subscribe`), subscribes to a published resource on which the department holds a live
    grant, naming a callback URL (https; http only for loopback hosts or outside production, as for
    OIDC redirect URIs). Subscriptions are ``active``, ``paused`` (by the consumer, or by the worker
    after ``EXCHANGE_WEBHOOK_PAUSE_AFTER`` consecutive failed attempts) or ``ended`` (final).

Producing (:func:`on_record_event`, the outbox subscriber in ``dgov.exchange.handlers``)
    A record of the registry the resource's items are linked to is created, updated, deleted or
    restored (or records are imported in bulk): for every active subscription on that registry
    whose consumer holds a live grant, a :class:`Delivery` is created — for an update only when a
    changed field is one of the granted items. Keyed on (subscription, event id), so a repeated
    outbox delivery creates nothing twice.

Payload — identifiers and the kind of change, never values
    ``{"format": "dgov-webhook-v1", "delivery", "subscription", "event", "event_id", "occurred_at",
    "resource", "record", "items", "version"}`` (``count`` instead of ``record`` for
    ``records.imported``). ``items`` are the changed item codes among the granted ones. The
    consumer reads values through the gateway, which checks the grant and writes the logs.

Sending (:func:`send_due`, a ``WORKER_PERIODIC_JOBS`` job of ``dgov worker``)
    Due deliveries are leased, re-checked (subscription active, grant live — otherwise ``dead``
    with the refusal code) and POSTed with urllib: no redirects, no proxies, a timeout, the answer
    read up to 64 KiB. Any 2xx is success. Headers: ``Content-Type: application/json``,
    ``X-Dgov-Event``, ``X-Dgov-Delivery`` (the delivery uid), ``X-Dgov-Timestamp`` (Unix seconds),
    ``X-Dgov-Key-Id`` and ``X-Dgov-Signature`` (base64 DER SM2 signature with SM3 and user id
    ``1234567812345678``, key purpose ``exchange-webhook``) over::

        "dgov-webhook-v1" US timestamp US delivery-uid US body        (US = U+001F, UTF-8 bytes)

    A failed attempt is retried after ``EXCHANGE_WEBHOOK_BACKOFF`` seconds (default 30 s, 2 min,
    10 min, 1 h, 6 h, each ±20 % jitter); the attempt after the last step failing makes it
    ``dead``. Every attempt is appended to the exchange log (operation ``webhook``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import logging
import random
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.catalog.models import InformationResource
from dgov.exchange import log
from dgov.exchange import services as exchange_services
from dgov.exchange.models import Delivery, Grant, Subscription
from dgov.kernel import outbound
from dgov.kernel.services import audit
from dgov.kernel.services.audit import canonical_json, format_timestamp

__all__ = [
    "FORMAT",
    "KEY_PURPOSE",
    "SIGNATURE_UID",
    "backoff_delay",
    "deliveries_of",
    "end",
    "on_record_event",
    "pause",
    "public_keys",
    "resume",
    "retry_now",
    "send_due",
    "signing_bytes",
    "subscribe",
    "subscriptions_of",
    "verify_signature",
]

FORMAT = "dgov-webhook-v1"
KEY_PURPOSE = "exchange-webhook"
SIGNATURE_UID = "1234567812345678"
SEP = "\x1f"
RESPONSE_CAP = 64 * 1024
DEFAULT_BACKOFF = (30, 120, 600, 3600, 21600)
LEASE_SECONDS = 300
# Registry event types → the webhook's event names.
RECORD_EVENTS = {
    "registry.record.created": "record.created",
    "registry.record.updated": "record.updated",
    "registry.record.deleted": "record.deleted",
    "registry.record.restored": "record.restored",
    "registry.records.imported": "records.imported",
}
Status = Subscription.Status
State = Delivery.State
logger = logging.getLogger(__name__)


# --- Who may manage subscriptions -----------------------------------------------------------------


def _consumer_of(actor):
    """The department a subscriber acts for: an official's, or a client's with ``exchange:call``; else None."""
    if getattr(actor, "client_id", None):
        scopes = getattr(actor, "scopes", None) or ()
        return exchange_services.department_of(actor) if exchange_services.SCOPE in scopes else None
    if exchange_services._is_official(actor):
        return exchange_services.department_of(actor)
    return None


def _label(actor) -> str:
    """A short name of the actor for the subscription row."""
    client_id = getattr(actor, "client_id", None)
    if client_id:
        return f"client:{client_id}"[:150]
    if hasattr(actor, "get_username"):
        return actor.get_username()[:150]
    return str(actor)[:150]


# The outbound checks a callback URL must pass, in the order its errors are reported.
_CALLBACK_CHECKS = ("empty", "length", "fragment", "userinfo", "port", "scheme", "insecure")


def check_callback_url(url: str) -> str:
    """A callback URL a subscription may use (https; http for loopback or outside production); else ValidationError."""
    url = (url or "").strip()
    problem = outbound.url_problem(url, _CALLBACK_CHECKS, max_length=1000)
    if problem is None:
        return url
    if problem in ("empty", "length"):
        message = _("回调地址不能为空且不超过 1000 个字符")
    elif problem in ("fragment", "userinfo"):
        message = _("回调地址不能包含 # 片段或用户名密码")
    elif problem == "port":
        message = _("回调地址的端口不正确")
    elif problem == "insecure":
        message = _("生产环境的回调地址必须使用 https")
    else:
        message = _("回调地址必须是完整的 https 地址")
    raise ValidationError({"callback_url": [message]}, code="bad_url")


def _linked_registry(resource: InformationResource) -> str:
    """The registry the resource's published items are linked to ('' when none), as the gateway picks it."""
    for item in exchange_services.requestable_items(resource).values():
        if item.get("registry") and item.get("registry_field"):
            return item["registry"]
    return ""


def subscribe(resource: InformationResource, *, actor, callback_url: str, description: str = "") -> Subscription:
    """Subscribe the actor's department to changes of a resource it holds a live grant on."""
    consumer = _consumer_of(actor)
    if consumer is None:
        raise exchange_services._deny(
            "exchange.subscription.create",
            actor=exchange_services._audit_actor(actor),
            target=resource,
            message=_("只有使用部门的工作人员或具有 exchange:call 权限的应用可以订阅"),
        )
    url = check_callback_url(callback_url)
    registry_code = _linked_registry(resource)
    if not registry_code:
        raise ValidationError(
            {"resource": [_("该信息资源未发布或不提供接口数据服务，不能订阅")]}, code="not_subscribable"
        )
    granted, grant_id, refusal = exchange_services.live_grant_items(consumer, resource)
    if grant_id is None:
        raise exchange_services._deny(
            "exchange.subscription.create",
            actor=exchange_services._audit_actor(actor),
            target=resource,
            message=_("没有该信息资源的有效共享授权，不能订阅（%(code)s）") % {"code": refusal},
        )
    now = timezone.now()
    with transaction.atomic():
        subscription = Subscription.objects.create(
            consumer=consumer,
            resource=resource,
            grant_id=grant_id,
            registry_code=registry_code,
            callback_url=url,
            description=(description or "").strip()[:200],
            created_by=_label(actor),
            created_at=now,
            updated_at=now,
        )
        audit.record(
            "exchange.subscription.create",
            actor=exchange_services._audit_actor(actor),
            target=subscription,
            detail={"resource": resource.code, "grant": grant_id, "callback_host": urlsplit(url).hostname},
        )
    return subscription


def subscriptions_of(actor) -> QuerySet[Subscription]:
    """The subscriptions of the actor's department (none for anyone else), newest first."""
    consumer = _consumer_of(actor)
    if consumer is None:
        return Subscription.objects.none()
    return Subscription.objects.filter(consumer=consumer).select_related("resource", "resource__provider")


def _owned(subscription: Subscription, actor, action: str) -> None:
    """Raise (audited) PermissionDenied unless the actor acts for the subscription's consumer."""
    consumer = _consumer_of(actor)
    if consumer is None or consumer.pk != subscription.consumer_id:
        raise exchange_services._deny(
            action,
            actor=exchange_services._audit_actor(actor),
            target=subscription,
            message=_("只有订阅部门可以管理该订阅"),
        )


def _set_status(subscription: Subscription, *, actor, action: str, allowed: tuple, new: str, reason: str = ""):
    """Move a subscription between states (locked, audited)."""
    _owned(subscription, actor, action)
    with transaction.atomic():
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if locked.status not in allowed:
            raise exchange_services.InvalidTransition(_("订阅当前状态不允许该操作"), code="bad_state")
        previous = locked.status
        locked.status, locked.status_reason, locked.updated_at = new, reason[:300], timezone.now()
        fields = ["status", "status_reason", "updated_at"]
        if new == Status.ACTIVE:
            locked.consecutive_failures = 0
            fields.append("consecutive_failures")
        locked.save(update_fields=fields)
        dropped = 0
        if new == Status.ENDED:
            # Nothing more will be sent for an ended subscription.
            dropped = Delivery.objects.filter(subscription=locked, state__in=[State.PENDING, State.FAILED]).update(
                state=State.DEAD, next_attempt_at=None, last_error="subscription_ended"
            )
        audit.record(
            action,
            actor=exchange_services._audit_actor(actor),
            target=locked,
            detail={"from": previous, "to": new, "reason": reason[:300], "dropped": dropped},
        )
    subscription.refresh_from_db()
    return subscription


def pause(subscription: Subscription, *, actor, reason: str = "") -> Subscription:
    """Stop sending for a while; deliveries keep accumulating and go out on resume."""
    return _set_status(
        subscription,
        actor=actor,
        action="exchange.subscription.pause",
        allowed=(Status.ACTIVE,),
        new=Status.PAUSED,
        reason=reason,
    )


def resume(subscription: Subscription, *, actor) -> Subscription:
    """Resume a paused subscription (also one the worker paused after failures); the failure count restarts."""
    return _set_status(
        subscription, actor=actor, action="exchange.subscription.resume", allowed=(Status.PAUSED,), new=Status.ACTIVE
    )


def end(subscription: Subscription, *, actor, reason: str = "") -> Subscription:
    """End a subscription for good; its unsent deliveries become ``dead``."""
    return _set_status(
        subscription,
        actor=actor,
        action="exchange.subscription.end",
        allowed=(Status.ACTIVE, Status.PAUSED),
        new=Status.ENDED,
        reason=reason,
    )


def deliveries_of(
    subscription: Subscription,
    *,
    actor,
    state: str = "",
    since: datetime.date | None = None,
    until: datetime.date | None = None,
) -> QuerySet[Delivery]:
    """A subscription's deliveries (its consumer only), filtered by state and local creation days, newest first."""
    _owned(subscription, actor, "exchange.subscription.read")
    rows = Delivery.objects.filter(subscription=subscription)
    if state in State.values:
        rows = rows.filter(state=state)
    if since is not None:
        rows = rows.filter(created_at__gte=exchange_services._start_of(since))
    if until is not None:
        rows = rows.filter(created_at__lt=exchange_services._start_of(until + datetime.timedelta(days=1)))
    return rows.order_by("-created_at", "-id")


def retry_now(delivery: Delivery, *, actor) -> Delivery:
    """Send a failed or dead delivery again at the worker's next pass (the subscription must be active)."""
    subscription = delivery.subscription
    _owned(subscription, actor, "exchange.delivery.retry")
    with transaction.atomic():
        locked = Delivery.objects.select_for_update().select_related("subscription").get(pk=delivery.pk)
        if locked.state not in (State.FAILED, State.DEAD):
            raise exchange_services.InvalidTransition(_("只有失败的推送可以重试"), code="bad_state")
        if locked.subscription.status != Status.ACTIVE:
            raise exchange_services.InvalidTransition(_("订阅未生效，不能重试"), code="not_active")
        previous = locked.state
        locked.state, locked.next_attempt_at = State.FAILED, timezone.now()
        if previous == State.DEAD:
            # A fresh budget of one attempt: the next failure makes it dead again.
            locked.attempts = len(_schedule())
        locked.save(update_fields=["state", "next_attempt_at", "attempts"])
        audit.record(
            "exchange.delivery.retry",
            actor=exchange_services._audit_actor(actor),
            target=locked,
            detail={"subscription": subscription.pk, "from": previous},
        )
    delivery.refresh_from_db()
    return delivery


# --- Producing deliveries -----------------------------------------------------------------------


def _event_items(resource: InformationResource, registry_code: str) -> dict[str, str]:
    """``{registry field: item code}`` for the resource's published items linked to ``registry_code``."""
    return {
        item["registry_field"]: code
        for code, item in exchange_services.requestable_items(resource).items()
        if item.get("registry") == registry_code and item.get("registry_field")
    }


def on_record_event(event) -> int:
    """Create the deliveries a registry record event calls for (the outbox handler); returns how many."""
    kind = RECORD_EVENTS.get(event.event_type)
    payload = event.payload or {}
    registry_code = payload.get("registry") or ""
    if kind is None or not registry_code:
        return 0
    changed = set(payload.get("fields") or ())
    now = timezone.now()
    made = 0
    subscriptions = Subscription.objects.filter(
        registry_code=registry_code, status__in=[Status.ACTIVE, Status.PAUSED]
    ).select_related("resource", "consumer")
    for subscription in subscriptions:
        if event.created_at < subscription.created_at:
            continue  # the change happened before the subscription (a backlog the worker is catching up on)
        granted, grant_id, _refusal = exchange_services.live_grant_items(subscription.consumer, subscription.resource)
        if grant_id is None:
            continue
        by_field = _event_items(subscription.resource, registry_code)
        visible = {field: code for field, code in by_field.items() if code in granted}
        if not visible:
            continue
        if kind == "record.updated":
            items = sorted(code for field, code in visible.items() if field in changed)
            if not items:
                continue
        elif kind in ("record.created", "records.imported"):
            items = sorted(code for field, code in visible.items() if not changed or field in changed)
        else:
            items = []
        body = {
            "format": FORMAT,
            "subscription": subscription.pk,
            "event": kind,
            "event_id": event.id,
            "occurred_at": format_timestamp(event.created_at),
            "resource": subscription.resource.code,
            "items": items,
        }
        if kind == "records.imported":
            body["count"] = int(payload.get("count") or 0)
        else:
            body["record"] = str(payload.get("uid") or "")
            body["version"] = payload.get("version")
        delivery_uid = uuid.uuid4()
        body["delivery"] = str(delivery_uid)
        try:
            with transaction.atomic():
                Delivery.objects.create(
                    uid=delivery_uid,
                    subscription=subscription,
                    event_id=event.id,
                    event_type=kind,
                    payload=body,
                    next_attempt_at=now,
                    created_at=now,
                )
        except IntegrityError:
            continue  # this event was handled before (an at-least-once repeat)
        made += 1
    return made


# --- Signing ------------------------------------------------------------------------------------


def signing_bytes(timestamp: str, delivery_uid: str, body: bytes, *, prefix: str = FORMAT) -> bytes:
    """The bytes a webhook's SM2 signature covers: ``FORMAT US timestamp US delivery US body``.

    ``prefix`` separates the platform's other signed outbound requests from webhooks: the
    department data-service calls (:mod:`dgov.exchange.dataservice`) sign
    ``dgov-dataservice-v1 US timestamp US request-id US body`` with the same key.
    """
    return SEP.join((prefix, timestamp, delivery_uid)).encode("utf-8") + SEP.encode("utf-8") + body


def verify_signature(
    *,
    public_key_pem: str | bytes,
    timestamp: str,
    delivery_uid: str,
    body: bytes,
    signature_b64: str,
    prefix: str = FORMAT,
) -> bool:
    """Whether a webhook's ``X-Dgov-Signature`` verifies with the published public key (what a receiver does)."""
    from dgov.kernel.crypto import SM2PublicKey

    try:
        key = SM2PublicKey.from_pem(public_key_pem)
        signed = signing_bytes(timestamp, delivery_uid, body, prefix=prefix)
        return bool(key.verify(base64.b64decode(signature_b64), signed))
    except Exception:  # noqa: BLE001 - a malformed key or signature is simply not valid
        return False


def public_keys() -> list[dict]:
    """The webhook signing keys receivers may trust: kid, status (active/retired) and PEM; never revoked ones."""
    from dgov.kernel.services import keys

    return keys.published_keys(KEY_PURPOSE, uid=SIGNATURE_UID)


# --- Sending ------------------------------------------------------------------------------------


def _schedule() -> tuple[float, ...]:
    """The waits (seconds) after each failed attempt; one more failure than steps makes a delivery dead."""
    return tuple(float(s) for s in getattr(settings, "EXCHANGE_WEBHOOK_BACKOFF", DEFAULT_BACKOFF))


def backoff_delay(attempts: int) -> float | None:
    """Seconds before the next attempt after ``attempts`` failed ones (±20 % jitter); None when it is dead."""
    schedule = _schedule()
    if attempts < 1 or attempts > len(schedule):
        return None
    return schedule[attempts - 1] * random.uniform(0.8, 1.2)


_OPENER = outbound.direct_opener()  # no proxy, no redirects


@dataclass
class _Outcome:
    """What one HTTP attempt came to."""

    ok: bool
    status: int | None
    error: str


def _post(url: str, body: bytes, headers: dict[str, str]) -> _Outcome:
    """POST the body; 2xx is success. Reads at most RESPONSE_CAP bytes of any answer."""
    timeout = float(getattr(settings, "EXCHANGE_WEBHOOK_TIMEOUT", 10))
    if urlsplit(url).scheme not in ("http", "https"):
        return _Outcome(False, None, "bad_url")
    # The scheme is checked here and at subscription time; the opener follows no redirects.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(RESPONSE_CAP)
            status = response.status
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(Exception):  # the status is what counts
            exc.read(RESPONSE_CAP)
        exc.close()
        return _Outcome(False, exc.code, f"http_{exc.code}")
    except TimeoutError:
        return _Outcome(False, None, "timeout")
    except urllib.error.URLError as exc:
        reason = exc.reason
        return _Outcome(False, None, "timeout" if isinstance(reason, TimeoutError) else "connection")
    except (OSError, ValueError) as exc:
        return _Outcome(False, None, f"connection:{type(exc).__name__}")
    if 200 <= status < 300:
        return _Outcome(True, status, "")
    return _Outcome(False, status, f"http_{status}")


def _claim(now, limit: int) -> list[int]:
    """Lease up to ``limit`` due deliveries of active subscriptions (push their next attempt past the lease)."""
    from django.db import connection

    with transaction.atomic():
        due = Delivery.objects.filter(
            state__in=[State.PENDING, State.FAILED],
            next_attempt_at__lte=now,
            subscription__status=Status.ACTIVE,
        ).order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        ids = list(due.values_list("id", flat=True)[:limit])
        if ids:
            Delivery.objects.filter(id__in=ids).update(next_attempt_at=now + datetime.timedelta(seconds=LEASE_SECONDS))
    return ids


def _log_attempt(delivery: Delivery, subscription: Subscription, *, result: str, code: str, status: int, grant_id):
    """Append the attempt to the exchange log (operation ``webhook``)."""
    purpose = ""
    if grant_id is not None:
        purpose = Grant.objects.filter(pk=grant_id).values_list("request__purpose", flat=True).first() or ""
    payload = delivery.payload or {}
    log.append(
        operation="webhook",
        result=result,
        code=code,
        status=status,
        consumer_code=subscription.consumer.code,
        client_id=f"subscription:{subscription.pk}",
        provider_code=subscription.resource.provider.code,
        resource_code=subscription.resource.code,
        fields=payload.get("items") or [],
        purpose=purpose,
        records=[payload["record"]] if payload.get("record") else [],
        grant_id=grant_id,
        request_id=str(delivery.uid),
    )


def _settle_failure(delivery: Delivery, subscription: Subscription, outcome: _Outcome, now) -> None:
    """Record a failed attempt: schedule the retry or give up; pause the subscription after too many in a row."""
    attempts = delivery.attempts + 1
    wait = backoff_delay(attempts)
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            state=State.FAILED if wait is not None else State.DEAD,
            attempts=attempts,
            last_attempt_at=now,
            last_status_code=outcome.status,
            last_error=outcome.error[:300],
            next_attempt_at=now + datetime.timedelta(seconds=wait) if wait is not None else None,
        )
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        locked.consecutive_failures += 1
        fields = ["consecutive_failures"]
        limit = int(getattr(settings, "EXCHANGE_WEBHOOK_PAUSE_AFTER", 10) or 0)
        if limit and locked.consecutive_failures >= limit and locked.status == Status.ACTIVE:
            locked.status = Status.PAUSED
            locked.status_reason = _("连续 %(n)s 次推送失败，已自动暂停") % {"n": locked.consecutive_failures}
            locked.updated_at = now
            fields += ["status", "status_reason", "updated_at"]
            audit.record(
                "exchange.subscription.auto_pause",
                actor="system:worker",
                target=locked,
                detail={"failures": locked.consecutive_failures, "last_error": outcome.error[:100]},
            )
        locked.save(update_fields=fields)


def _send_one(delivery_id: int, now: datetime.datetime) -> None:
    """Re-check, sign, POST and settle one leased delivery."""
    from dgov.kernel.services import keys

    delivery = Delivery.objects.select_related(
        "subscription", "subscription__consumer", "subscription__resource", "subscription__resource__provider"
    ).get(pk=delivery_id)
    subscription = delivery.subscription
    if subscription.status != Status.ACTIVE:
        # Paused (or ended) after the claim: put it back as it was.
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now)
        return
    granted, grant_id, refusal = exchange_services.live_grant_items(subscription.consumer, subscription.resource)
    if grant_id is None:
        with transaction.atomic():
            Delivery.objects.filter(pk=delivery.pk).update(
                state=State.DEAD, next_attempt_at=None, last_attempt_at=now, last_error=refusal
            )
            _log_attempt(delivery, subscription, result="denied", code=refusal, status=403, grant_id=None)
        return
    body_data = dict(delivery.payload or {})
    # Items whose grant ended since the event are dropped; nothing else about the record changes.
    body_data["items"] = [code for code in body_data.get("items") or [] if code in granted]
    delivery.payload = body_data
    body = canonical_json(body_data).encode("utf-8")
    timestamp = str(int(time.time()))
    kid, signature = keys.sign(KEY_PURPOSE, signing_bytes(timestamp, str(delivery.uid), body))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "dgov-webhook/1",
        "X-Dgov-Event": delivery.event_type,
        "X-Dgov-Delivery": str(delivery.uid),
        "X-Dgov-Timestamp": timestamp,
        "X-Dgov-Key-Id": kid,
        "X-Dgov-Signature": base64.b64encode(signature).decode("ascii"),
    }
    outcome = _post(subscription.callback_url, body, headers)
    if outcome.ok:
        with transaction.atomic():
            Delivery.objects.filter(pk=delivery.pk).update(
                state=State.DELIVERED,
                attempts=delivery.attempts + 1,
                last_attempt_at=now,
                last_status_code=outcome.status,
                last_error="",
                delivered_at=now,
                next_attempt_at=None,
            )
            Subscription.objects.filter(pk=subscription.pk).update(consecutive_failures=0)
            _log_attempt(delivery, subscription, result="ok", code="", status=outcome.status or 200, grant_id=grant_id)
        return
    _settle_failure(delivery, subscription, outcome, now)
    _log_attempt(
        delivery, subscription, result="error", code=outcome.error[:32], status=outcome.status or 0, grant_id=grant_id
    )


def send_due(*, limit: int = 50, now: datetime.datetime | None = None) -> int:
    """Send the due deliveries (the worker's periodic job); returns how many attempts were made.

    ``now`` (default: the current time) decides what is due and when retries are scheduled.
    """
    now = now or timezone.now()
    ids = _claim(now, limit)
    for delivery_id in ids:
        try:
            _send_one(delivery_id, now)
        except Exception:  # noqa: BLE001 - one bad delivery must not stop the others; its lease expires
            logger.exception("webhook delivery %s failed unexpectedly", delivery_id)
    return len(ids)
