"""Notifications: in-app messages, SMS and e-mail through the simulated gateways, delivered by the worker."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from dgov.kernel.models import AuditRecord, Notification, OutboxEvent, SentMessage
from dgov.kernel.notify import (
    InvalidRecipient,
    NotificationTemplate,
    RateLimited,
    SimulatedEmailGateway,
    SimulatedSmsGateway,
    TemplateError,
    get_template,
    normalize_phone,
    register_template,
)
from dgov.kernel.services.notify import mark_all_read, mark_read, notify, unread_count


def drain_once():
    call_command("worker", "--once", "--no-tasks", verbosity=0)


@pytest.fixture
def person(django_user_model):
    user = django_user_model.objects.create_user(
        username="zhangsan", password="x-Passw0rd!", email="zhangsan@example.cn", display_name="张三"
    )
    # Whether or not the account model stores a phone, notify() reads the attribute.
    user.phone = "13812345678"
    return user


@pytest.mark.django_db
def test_notify_delivers_in_app_sms_and_email(person):
    with transaction.atomic():
        note = notify(person, "kernel.test", {"name": "张三"})
    assert note.user == person and note.title == "测试通知" and "张三" in note.body
    assert unread_count(person) == 1
    # Nothing leaves the building inside the request; the worker sends.
    assert not SentMessage.objects.exists() and mail.outbox == []
    event = OutboxEvent.objects.get(event_type="kernel.notification.requested")
    raw = json.dumps(event.payload, ensure_ascii=False)
    assert "13812345678" not in raw and "zhangsan@example.cn" not in raw and "张三" not in raw

    drain_once()

    sms = SentMessage.objects.get(channel="sms")
    assert sms.status == "sent" and sms.template_code == "DGOV_0001"
    assert sms.to == "+8613812345678"
    assert sms.body == "【数字政府】您好张三，这是一条来自数字政府平台的测试短信。"
    assert len(sms.provider_id) == 36
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["zhangsan@example.cn"] and message.subject == "【数字政府】测试邮件"
    assert "张三" in message.body
    assert SentMessage.objects.get(channel="email").provider_id == message.extra_headers["Message-ID"]
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.DELIVERED
    sends = AuditRecord.objects.filter(action__startswith="kernel.notification.", action__endswith=".send")
    assert {(r.action, r.outcome, r.actor_label) for r in sends} == {
        ("kernel.notification.sms.send", "success", "system:worker"),
        ("kernel.notification.email.send", "success", "system:worker"),
    }
    assert "13812345678" not in "".join(r.detail_json for r in sends)
    assert AuditRecord.objects.filter(action="kernel.notification.request").exists()


@pytest.mark.django_db
def test_recipient_is_encrypted_at_rest(person):
    SimulatedSmsGateway().send("13812345678", "DGOV_0001", {"name": "张三"})
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name('to')} FROM kernel_sentmessage")
        (stored,) = cursor.fetchone()
    assert "13812345678" not in str(stored)


@pytest.mark.django_db
def test_notify_dict_recipient_and_channel_selection():
    with transaction.atomic():
        note = notify(
            {"email": "li@example.cn", "phone": "13900001111"},
            "kernel.test",
            {"name": "李四"},
            channels=("email",),
        )
    assert note is None  # no user, no in-app message
    drain_once()
    assert len(mail.outbox) == 1 and not SentMessage.objects.filter(channel="sms").exists()


@pytest.mark.django_db
def test_notify_validates_its_arguments(person):
    with pytest.raises(LookupError):
        notify(person, "kernel.no-such-template", {})
    with pytest.raises(KeyError):
        notify(person, "kernel.test", {})  # {name} missing
    with pytest.raises(ValueError):
        notify(person, "kernel.test", {"name": "x"}, channels=("fax",))
    with pytest.raises(TypeError):
        notify("13812345678", "kernel.test", {"name": "x"})


@pytest.mark.django_db
def test_invalid_phone_is_not_retried_and_does_not_stop_email(person):
    person.phone = "12345"
    with transaction.atomic():
        notify(person, "kernel.test", {"name": "张三"})
    drain_once()
    event = OutboxEvent.objects.get(event_type="kernel.notification.requested")
    assert event.status == OutboxEvent.Status.DELIVERED  # a bad number is final, not a retry
    assert len(mail.outbox) == 1
    failure = AuditRecord.objects.get(action="kernel.notification.sms.send")
    assert failure.outcome == "failed" and "MOBILE_NUMBER_ILLEGAL" in failure.detail_json


@pytest.mark.django_db
def test_rate_limited_sms_is_retried_without_resending_email(person):
    SimulatedSmsGateway().send("13812345678", "DGOV_0001", {"name": "先发一条"})
    with transaction.atomic():
        notify(person, "kernel.test", {"name": "张三"})
    drain_once()
    event = OutboxEvent.objects.get(event_type="kernel.notification.requested")
    assert event.status == OutboxEvent.Status.PENDING and event.attempts == 1
    assert "BUSINESS_LIMIT_CONTROL" in event.last_error
    assert len(mail.outbox) == 1
    # A minute later the provider accepts it; the e-mail handler is not run again.
    SentMessage.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    OutboxEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    drain_once()
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.DELIVERED
    assert len(mail.outbox) == 1
    assert SentMessage.objects.filter(channel="sms", status="sent").count() == 2


@pytest.mark.parametrize(
    "raw", ["13812345678", "+86 138 1234 5678", "+8613812345678", "008613812345678", "8613812345678"]
)
def test_normalize_phone_accepts_mainland_formats(raw):
    assert normalize_phone(raw) == "+8613812345678"


@pytest.mark.parametrize("raw", ["", "12812345678", "1381234567", "138123456789", "+85291234567", "abc"])
def test_sms_gateway_rejects_invalid_phone(raw, db):
    with pytest.raises(InvalidRecipient) as exc:
        SimulatedSmsGateway().send(raw, "DGOV_0001", {"name": "x"})
    assert exc.value.code == "MOBILE_NUMBER_ILLEGAL" and not exc.value.retryable
    assert not SentMessage.objects.exists()


@pytest.mark.django_db
def test_sms_gateway_rate_limits_per_minute_and_hour():
    gateway = SimulatedSmsGateway()
    first = gateway.send("13700000000", "DGOV_0001", {"name": "a"})
    with pytest.raises(RateLimited) as exc:
        gateway.send("+86 137 0000 0000", "DGOV_0001", {"name": "b"})
    assert exc.value.code == "BUSINESS_LIMIT_CONTROL" and exc.value.retryable and exc.value.request_id
    assert SentMessage.objects.get(provider_id=exc.value.request_id).status == "rejected"
    # Another number is not affected.
    gateway.send("13700000001", "DGOV_0001", {"name": "c"})
    assert SentMessage.objects.get(provider_id=first).status == "sent"

    # Ten in the last hour (each more than a minute apart) exhaust the hourly quota.
    now = timezone.now()
    SentMessage.objects.all().delete()
    for i in range(10):
        gateway.send("13700000000", "DGOV_0001", {"name": str(i)})
        SentMessage.objects.filter(pk=SentMessage.objects.latest("id").pk).update(
            created_at=now - timedelta(minutes=5 + i)
        )
    with pytest.raises(RateLimited):
        gateway.send("13700000000", "DGOV_0001", {"name": "eleventh"})
    SentMessage.objects.filter(status="sent").update(created_at=now - timedelta(minutes=61))
    gateway.send("13700000000", "DGOV_0001", {"name": "next hour"})


@pytest.mark.django_db
def test_sms_gateway_template_errors_and_segments():
    gateway = SimulatedSmsGateway()
    with pytest.raises(TemplateError) as exc:
        gateway.send("13812345678", "NO_SUCH", {})
    assert exc.value.code == "SMS_TEMPLATE_ILLEGAL"
    with pytest.raises(TemplateError) as exc:
        gateway.send("13812345678", "DGOV_0002", {"code": "123456"})
    assert exc.value.code == "TEMPLATE_MISSING_PARAMETERS"
    with pytest.raises(TemplateError) as exc:
        SimulatedSmsGateway(sign_name="X").send("13812345678", "DGOV_0001", {"name": "x"})
    assert exc.value.code == "SIGNATURE_ILLEGAL"
    assert gateway.segments("字" * 70) == 1
    assert gateway.segments("字" * 71) == 2
    assert gateway.segments("字" * 134) == 2
    assert gateway.segments("字" * 135) == 3
    gateway.send("13812345678", "DGOV_0002", {"code": "123456", "minutes": 5})
    row = SentMessage.objects.get()
    assert row.body == "【数字政府】您的验证码为123456，5分钟内有效，请勿泄露给他人。" and row.segments == 1


@pytest.mark.django_db
def test_email_gateway_validates_and_sends_html():
    gateway = SimulatedEmailGateway()
    with pytest.raises(InvalidRecipient):
        gateway.send("not-an-address", "主题", "正文")
    with pytest.raises(TemplateError):
        gateway.send("a@example.cn", "bad\nsubject", "正文")
    message_id = gateway.send("a@example.cn", "主题", "正文", html="<p>正文</p>")
    assert mail.outbox[0].alternatives[0][1] == "text/html"
    assert SentMessage.objects.get(channel="email").provider_id == message_id


def test_template_registry():
    assert get_template("kernel.test").sms_params == ("name",)
    with pytest.raises(ValueError):
        register_template("kernel.test", NotificationTemplate(title="x", body="y"))
    with pytest.raises(ValueError):
        NotificationTemplate(title="x", body="y", sms_code="ONLY_CODE")


@pytest.mark.django_db
def test_mark_read_and_unread_count(person, django_user_model):
    other = django_user_model.objects.create_user(username="other", password="x-Passw0rd!")
    with transaction.atomic():
        first = notify(person, "kernel.test", {"name": "张三"}, channels=("in_app",))
        notify(person, "kernel.test", {"name": "张三"}, channels=("in_app",))
    assert not OutboxEvent.objects.exists()  # in-app only: nothing for the worker
    assert unread_count(person) == 2 and unread_count(other) == 0
    with pytest.raises(PermissionDenied):
        mark_read(first, actor=other)
    mark_read(first, actor=person)
    assert first.is_read and unread_count(person) == 1
    mark_read(first, actor=person)  # idempotent
    assert AuditRecord.objects.filter(action="kernel.notification.read").count() == 1
    assert mark_all_read(person, actor=person) == 1
    assert unread_count(person) == 0
    assert Notification.objects.filter(user=person, read_at__isnull=True).count() == 0
