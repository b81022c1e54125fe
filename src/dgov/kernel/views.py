"""Operational views: liveness and readiness reveal no data and need no login; /metrics is guarded.

/metrics answers a request that carries ``Authorization: Bearer <DGOV_METRICS_TOKEN>`` when that
token is configured; without a token it answers only loopback clients (a scraper on the same host
or behind the local proxy) in production, and everyone in the embedded mode.
"""

import hmac
import logging
import os

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

LOOPBACK = {"127.0.0.1", "::1"}

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


def _metrics_allowed(request) -> bool:
    """True when the scraper presents the metrics token, or (without one) may read metrics at all."""
    token = settings.METRICS_TOKEN
    if token:
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(presented.encode(), token.encode())
    return not settings.PRODUCTION or request.META.get("REMOTE_ADDR") in LOOPBACK


def metrics(request):
    """Prometheus text exposition of every dgov process's metrics (outbox backlog read fresh)."""
    from dgov.kernel.services.events import refresh_gauges

    if not _metrics_allowed(request):
        response = HttpResponse("forbidden\n", status=403, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response

    try:
        refresh_gauges()
    except Exception:  # noqa: BLE001 - metrics must answer even when the database does not
        logger.warning("outbox gauges not refreshed", exc_info=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
