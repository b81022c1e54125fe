"""Rate limit of the public licence verification endpoints (核验限流): requests per client IP per minute.

The verify page, the QR landing page and the verify API need no login, so each client address
may make ``LICENCE_VERIFY_RATE_PER_MINUTE`` verifications a minute (default 120; 0 turns the
limit off). The count is a fixed one-minute window in Django's cache: per process with the default
local-memory cache, shared by every web node once a shared cache (Redis, Memcached) is configured.
The client address is the audit log's (``X-Forwarded-For`` only from ``TRUSTED_PROXIES``).
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache

from dgov.kernel.audit_context import client_ip

__all__ = ["retry_after"]

WINDOW_SECONDS = 60


def limit() -> int:
    """Verifications allowed per client address and minute (0 = unlimited)."""
    return int(getattr(settings, "LICENCE_VERIFY_RATE_PER_MINUTE", 120))


def retry_after(request, scope: str = "verify") -> int:
    """Count one request of this client; 0 when it may go ahead, else the seconds until it may retry."""
    allowed = limit()
    if allowed <= 0:
        return 0
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"dgov:licences:{scope}:{client_ip(request.META)}:{window}"
    if cache.add(key, 1, timeout=WINDOW_SECONDS + 1):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=WINDOW_SECONDS + 1)
            count = 1
    if count <= allowed:
        return 0
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
