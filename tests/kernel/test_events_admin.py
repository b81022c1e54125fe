"""Admin pages for outbox events and sent messages: read-only, masked, dead events re-queueable."""

import pytest
from django.db import transaction

from dgov.kernel.models import AuditRecord, OutboxEvent
from dgov.kernel.notify import SimulatedSmsGateway
from dgov.kernel.services import events


@pytest.fixture
def admin_client_(client, django_user_model):
    admin = django_user_model.objects.create_superuser(username="root", password="x-Passw0rd!", kind="admin")
    client.force_login(admin)
    return client


@pytest.mark.django_db
def test_requeue_action_and_pages(admin_client_):
    with transaction.atomic():
        dead = events.publish("test.admin.dead", {"k": 1})
        pending = events.publish("test.admin.pending", {})
    OutboxEvent.objects.filter(pk=dead.pk).update(
        status=OutboxEvent.Status.DEAD, attempts=8, last_error="boom"
    )

    page = admin_client_.get("/admin/kernel/outboxevent/")
    assert page.status_code == 200 and "test.admin.dead" in page.content.decode()
    assert admin_client_.get(f"/admin/kernel/outboxevent/{dead.pk}/change/").status_code == 200
    assert admin_client_.get("/admin/kernel/outboxevent/add/").status_code == 403

    response = admin_client_.post(
        "/admin/kernel/outboxevent/",
        {"action": "requeue_dead", "_selected_action": [dead.pk, pending.pk]},
        follow=True,
    )
    assert response.status_code == 200
    dead.refresh_from_db()
    assert dead.status == OutboxEvent.Status.PENDING and dead.attempts == 0
    assert (
        AuditRecord.objects.filter(action="kernel.outbox.requeue").count() == 1
    )  # the pending one untouched


@pytest.mark.django_db
def test_sent_messages_show_masked_recipient(admin_client_):
    SimulatedSmsGateway().send("13812345678", "DGOV_0001", {"name": "王五"})
    body = admin_client_.get("/admin/kernel/sentmessage/").content.decode()
    assert "13812345678" not in body and "5678" in body
    assert admin_client_.get("/admin/kernel/workerheartbeat/").status_code == 200
    assert admin_client_.get("/admin/kernel/notification/").status_code == 200
