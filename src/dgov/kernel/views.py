"""Operational views (no login: they reveal no data; /metrics can be firewalled at the proxy)."""

import logging

from django.db import connection
from django.http import HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

logger = logging.getLogger(__name__)


def healthz(request):
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Readiness: the database answers and a background worker has beaten recently.

    ``checks.worker`` is "ok", "stale" (the newest running worker's heartbeat is older than
    WORKER_HEARTBEAT_MAX_AGE seconds) or "missing" (no running worker at all). Both make the
    node not ready — without a worker, notifications and events silently pile up — so a test
    client or a load balancer sees 503 until ``dgov worker`` runs (``dgov serve`` starts one).
    """
    from dgov.kernel.services.events import worker_status

    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any database failure means not ready
        checks["database"] = f"error: {exc.__class__.__name__}"
    if checks["database"] == "ok":
        try:
            checks["worker"] = worker_status()
        except Exception as exc:  # noqa: BLE001 - e.g. the heartbeat table is not migrated yet
            checks["worker"] = f"error: {exc.__class__.__name__}"
    else:
        checks["worker"] = "unknown"
    ready = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


def metrics(request):
    """Prometheus text exposition of the process's metrics (outbox backlog read fresh from the database)."""
    from dgov.kernel.services.events import refresh_gauges

    try:
        refresh_gauges()
    except Exception:  # noqa: BLE001 - metrics must answer even when the database does not
        logger.warning("outbox gauges not refreshed", exc_info=True)
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
