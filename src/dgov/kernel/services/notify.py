"""Notifications (消息通知): in-app messages at once, SMS and e-mail from the background worker.

``notify()`` runs in the caller's transaction. It stores the in-app :class:`Notification` right
away and publishes one outbox event, ``kernel.notification.requested``, carrying the rendered SMS
and e-mail (encrypted with SM4-GCM under the ``kernel.notify`` data key, because recipients' phone
numbers and message text are personal data and the outbox payload is plain JSON). The worker
delivers it through two handlers — one per channel — so a failing SMS provider never re-sends
the e-mail, and a slow gateway never blocks a request. The outbox was chosen over a django-task
because it commits atomically with the change that caused the message and gives per-channel
retry records; see :mod:`dgov.kernel.services.events`.

Gateway errors that retrying cannot fix (an invalid phone number, an unknown template) are
audited as failures and not retried; flow control and outages are retried with backoff. Every
send is audited with the system actor ``system:worker``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from dgov.kernel.fields import decrypt_value, encrypt_value
from dgov.kernel.masking import mask_phone
from dgov.kernel.models import Notification, OutboxEvent
from dgov.kernel.notify import GatewayError, email_gateway, get_template, sms_gateway
from dgov.kernel.services import audit
from dgov.kernel.services.events import publish, subscribe

__all__ = [
    "CHANNELS",
    "NOTIFICATION_REQUESTED",
    "notify",
    "mark_read",
    "mark_all_read",
    "unread_count",
    "deliver_sms",
    "deliver_email",
]

CHANNELS = ("in_app", "sms", "email")
NOTIFICATION_REQUESTED = "kernel.notification.requested"
SYSTEM_ACTOR = "system:worker"
_KEY_PURPOSE = "kernel.notify"


def _seal(data: dict) -> str:
    return encrypt_value(json.dumps(data, ensure_ascii=False), purpose=_KEY_PURPOSE)


def _unseal(sealed: str) -> dict:
    return json.loads(decrypt_value(sealed))


def _mask(channel: str, value: str) -> str:
    if channel == "sms":
        return mask_phone(value)
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def _contacts(recipient) -> tuple[object | None, str, str]:
    """(user or None, phone, e-mail) of a User or of a dict with "phone" / "email"."""
    if isinstance(recipient, get_user_model()):
        # The account model may keep the mobile number as "phone" or "mobile" (encrypted field).
        phone = getattr(recipient, "phone", "") or getattr(recipient, "mobile", "") or ""
        return recipient, str(phone), recipient.email or ""
    if isinstance(recipient, dict):
        return None, str(recipient.get("phone") or ""), str(recipient.get("email") or "")
    raise TypeError("recipient must be a User or a dict with 'phone' and/or 'email'")


def notify(
    recipient,
    template: str,
    context: dict,
    *,
    channels: Iterable[str] = CHANNELS,
    actor=None,
) -> Notification | None:
    """Notify a User (or a dict with phone/email) with a registered template; returns the in-app message.

    In-app messages need a User; SMS needs a phone and a template with an SMS code; e-mail needs
    an address. Channels a recipient cannot receive are skipped. Phone numbers and addresses are
    validated by the gateway in the worker, so a bad number stored on an account never breaks the
    operation that notifies; validate typed-in numbers with ``dgov.kernel.notify.normalize_phone``.
    """
    channels = tuple(dict.fromkeys(channels))
    unknown = set(channels) - set(CHANNELS)
    if unknown:
        raise ValueError(f"unknown notification channels: {', '.join(sorted(unknown))}")
    tpl = get_template(template)
    rendered = tpl.render(context)
    user, phone, email = _contacts(recipient)

    outgoing: dict[str, dict] = {}
    if "sms" in channels and phone and rendered.sms_code:
        outgoing["sms"] = {"to": phone, "code": rendered.sms_code, "params": rendered.sms_params}
    if "email" in channels and email:
        outgoing["email"] = {"to": email, "subject": rendered.email_subject, "body": rendered.email_body}

    with transaction.atomic():
        note = None
        if "in_app" in channels and user is not None:
            note = Notification.objects.create(
                user=user,
                template=template,
                title=rendered.title[:200],
                body=rendered.body,
                link=rendered.link,
            )
        event = None
        if outgoing:
            event = publish(
                NOTIFICATION_REQUESTED,
                {"template": template, "channels": sorted(outgoing), "sealed": _seal(outgoing)},
                aggregate="identity.user" if user is not None else "",
                aggregate_id=str(user.pk) if user is not None else "",
            )
        audit.record(
            "kernel.notification.request",
            actor=actor,
            target=note if note is not None else user,
            detail={
                "template": template,
                "channels": (["in_app"] if note is not None else []) + sorted(outgoing),
                "event_id": event.pk if event is not None else None,
            },
        )
    return note


def _deliver(event: OutboxEvent, channel: str, send) -> None:
    data = _unseal(event.payload["sealed"]).get(channel)
    if not data:
        return
    detail = {
        "channel": channel,
        "template": event.payload.get("template", ""),
        "event_id": event.pk,
        "to": _mask(channel, data["to"]),
    }
    try:
        provider_id = send(data)
    except GatewayError as exc:
        if exc.retryable:
            raise
        # Retrying will not fix a bad number or template: record the refusal and settle the event.
        audit.record(
            f"kernel.notification.{channel}.send",
            actor=SYSTEM_ACTOR,
            outcome="failed",
            detail={**detail, "error_code": exc.code, "provider_id": exc.request_id},
        )
        return
    audit.record(
        f"kernel.notification.{channel}.send",
        actor=SYSTEM_ACTOR,
        detail={**detail, "provider_id": provider_id},
    )


@subscribe(NOTIFICATION_REQUESTED, name="kernel.notify.sms")
def deliver_sms(event: OutboxEvent) -> None:
    """Send the SMS part of a notification through the configured SMS gateway."""
    _deliver(event, "sms", lambda d: sms_gateway().send(d["to"], d["code"], d["params"]))


@subscribe(NOTIFICATION_REQUESTED, name="kernel.notify.email")
def deliver_email(event: OutboxEvent) -> None:
    """Send the e-mail part of a notification through the configured e-mail gateway."""
    _deliver(event, "email", lambda d: email_gateway().send(d["to"], d["subject"], d["body"]))


def mark_read(notification: Notification, *, actor) -> Notification:
    """Mark one of the actor's own in-app messages as read (idempotent)."""
    if actor is None or getattr(actor, "pk", None) != notification.user_id:
        raise PermissionDenied("only the recipient can mark a notification as read")
    with transaction.atomic():
        now = timezone.now()
        updated = Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        if updated:
            audit.record("kernel.notification.read", actor=actor, target=notification)
            notification.read_at = now
        else:
            notification.refresh_from_db(fields=["read_at"])
    return notification


def mark_all_read(user, *, actor) -> int:
    """Mark all of the actor's unread in-app messages as read; returns how many changed."""
    if actor is None or getattr(actor, "pk", None) != user.pk:
        raise PermissionDenied("only the recipient can mark notifications as read")
    with transaction.atomic():
        count = Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
        if count:
            audit.record("kernel.notification.read_all", actor=actor, target=user, detail={"count": count})
    return count


def unread_count(user) -> int:
    """Number of the user's unread in-app messages."""
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()
