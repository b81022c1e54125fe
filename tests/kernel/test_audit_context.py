"""The audit context middleware: client IP, request id, user agent and actor of a real request."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.http import JsonResponse
from django.test import override_settings
from django.urls import path

from dgov.kernel.audit_context import audit_context, current_audit_context
from dgov.kernel.services import audit


def audited_view(request):
    """Make an audited change, as a service called from a view would."""
    with transaction.atomic():
        entry = audit.record("test.ping.create", detail={"via": "view"})
    fields = ("seq", "actor_kind", "actor_id", "actor_label", "ip", "request_id", "user_agent")
    return JsonResponse({name: getattr(entry, name) for name in fields})


urlpatterns = [path("audited/", audited_view)]

pytestmark = pytest.mark.urls(__name__)


@pytest.fixture(autouse=True)
def _no_checkpoint_file(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "checkpoints.jsonl"


def test_request_context_reaches_the_record(client, official):
    client.force_login(official)
    headers = {"HTTP_X_REQUEST_ID": "req-abc.123", "HTTP_USER_AGENT": "Firefox/128"}
    response = client.get("/audited/", REMOTE_ADDR="198.51.100.23", **headers)
    assert response.status_code == 200
    data = response.json()
    assert data["ip"] == "198.51.100.23"
    assert data["request_id"] == "req-abc.123" == response["X-Request-ID"]
    assert data["user_agent"] == "Firefox/128"
    assert (data["actor_kind"], data["actor_id"]) == ("user", str(official.pk))
    assert current_audit_context().ip == ""  # reset after the request
    assert audit.verify().ok


def test_anonymous_request_gets_a_generated_request_id(client, db):
    response = client.get("/audited/", REMOTE_ADDR="203.0.113.4", HTTP_USER_AGENT="x" * 400)
    data = response.json()
    assert (data["actor_kind"], data["ip"]) == ("anonymous", "203.0.113.4")
    assert len(data["request_id"]) == 32 and data["request_id"] == response["X-Request-ID"]
    assert len(data["user_agent"]) == 256


def test_forwarded_for_is_ignored_without_trusted_proxies(client, db):
    data = client.get("/audited/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4").json()
    assert data["ip"] == "10.0.0.5"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_forwarded_for_is_honoured_from_a_trusted_proxy(client, db):
    forwarded = "203.0.113.9, 10.0.0.7"
    data = client.get("/audited/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=forwarded).json()
    assert data["ip"] == "203.0.113.9"
    # The client can write anything left of what the proxies appended; the right-most untrusted hop wins.
    spoofed = client.get(
        "/audited/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="127.0.0.1, 198.51.100.1, 10.0.0.7"
    ).json()
    assert spoofed["ip"] == "198.51.100.1"
    direct = client.get("/audited/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="203.0.113.9").json()
    assert direct["ip"] == "192.0.2.1"


def test_audit_context_block_for_commands_and_workers(db):
    with audit_context(actor="system:worker", ip="127.0.0.1"):
        with audit_context(request_id="task-42"), transaction.atomic():
            entry = audit.record("test.job.run")
        assert current_audit_context().request_id == ""
    assert (entry.actor_kind, entry.actor_label, entry.ip, entry.request_id) == (
        "system",
        "system:worker",
        "127.0.0.1",
        "task-42",
    )
    assert current_audit_context().actor is None
