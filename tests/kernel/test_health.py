"""Liveness, readiness (database + worker heartbeat) and metrics endpoints."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dgov.kernel.models import WorkerHeartbeat


def beat(age_seconds=0, *, stopped=False, worker_id="w1"):
    now = timezone.now()
    return WorkerHeartbeat.objects.create(
        worker_id=worker_id,
        hostname="test",
        pid=1,
        started_at=now - timedelta(hours=1),
        last_seen=now - timedelta(seconds=age_seconds),
        stopped_at=now if stopped else None,
    )


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_without_worker_is_unavailable(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"database": "ok", "worker": "missing"}}


@pytest.mark.django_db
def test_readyz_with_fresh_heartbeat_is_ready(client):
    beat(age_seconds=1)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "worker": "ok"}}


@pytest.mark.django_db
def test_readyz_with_stale_heartbeat(client, settings):
    settings.WORKER_HEARTBEAT_MAX_AGE = 30
    beat(age_seconds=31)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["worker"] == "stale"
    beat(age_seconds=2, worker_id="w2")  # a second, live worker makes the node ready
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_readyz_ignores_stopped_workers(client):
    beat(age_seconds=1, stopped=True)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["worker"] == "missing"


@pytest.mark.django_db
def test_metrics_exposes_outbox_backlog(client):
    from django.db import transaction

    from dgov.kernel.services.events import publish

    with transaction.atomic():
        publish("test.health.backlog", {})
    body = client.get("/metrics").content.decode()
    assert 'dgov_outbox_backlog{status="pending"} 1.0' in body
    assert "dgov_outbox_events_published_total" in body


@pytest.mark.django_db
def test_metrics_token_is_required_when_configured(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    denied = client.get("/metrics")
    assert denied.status_code == 403 and denied["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


@pytest.mark.django_db
def test_metrics_in_production_without_token_answers_loopback_only(client, settings):
    settings.METRICS_TOKEN = ""
    settings.PRODUCTION = True
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
