"""Where an audited change comes from: client IP, request id, user agent and the acting user.

``AuditContextMiddleware`` puts these into a context variable for the duration of a request, and
``dgov.kernel.services.audit.record()`` reads them, so services never pass them around. Commands
and background workers set their own context with ``with audit_context(actor="system:worker"):``.

The client IP is ``REMOTE_ADDR``. ``X-Forwarded-For`` is honoured only when the direct peer is one
of ``settings.TRUSTED_PROXIES`` (addresses or CIDR networks, from ``DGOV_TRUSTED_PROXIES``); the
client is then the right-most address in the header that is not itself a trusted proxy, because
everything left of that point could have been written by the client.
"""

from __future__ import annotations

import contextvars
import dataclasses
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from django.conf import settings

__all__ = ["AuditContext", "AuditContextMiddleware", "audit_context", "client_ip", "current_audit_context"]

_UNSET: Any = object()


@dataclasses.dataclass(frozen=True)
class AuditContext:
    """The origin of the changes made in the current request, command or task."""

    ip: str = ""
    request_id: str = ""
    user_agent: str = ""
    # A User (possibly a lazy request.user), a "kind:label" string, or None for the system.
    actor: Any = None


_EMPTY = AuditContext()
_context: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar(
    "dgov_audit_context", default=None
)


def current_audit_context() -> AuditContext:
    """Return the audit context in force (an empty one outside requests and ``audit_context`` blocks)."""
    return _context.get() or _EMPTY


@contextmanager
def audit_context(
    *, ip: str = _UNSET, request_id: str = _UNSET, user_agent: str = _UNSET, actor: Any = _UNSET
) -> Iterator[AuditContext]:
    """Override parts of the audit context inside a ``with`` block (for commands and workers)."""
    given = {"ip": ip, "request_id": request_id, "user_agent": user_agent, "actor": actor}
    changes = {name: value for name, value in given.items() if value is not _UNSET}
    new = dataclasses.replace(current_audit_context(), **changes)
    token = _context.set(new)
    try:
        yield new
    finally:
        _context.reset(token)


@lru_cache(maxsize=8)
def _trusted_networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse the trusted proxy list once per distinct setting value."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in proxies)


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Return the address in ``value`` or None when it is not an IP address."""
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_ip(meta: dict) -> str:
    """Return the client's IP address for a request's META, trusting X-Forwarded-For only from proxies."""
    peer = _parse_ip(meta.get("REMOTE_ADDR") or "")
    if peer is None:
        return ""
    networks = _trusted_networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))
    if not networks or not any(peer in net for net in networks):
        return str(peer)
    client = peer
    for hop in reversed((meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")):
        address = _parse_ip(hop)
        if address is None:
            break
        client = address
        if not any(address in net for net in networks):
            break
    return str(client)


class AuditContextMiddleware:
    """Record the request's client IP, request id, user agent and user as the audit context."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        context = AuditContext(
            ip=client_ip(request.META),
            request_id=getattr(request, "request_id", "") or "",
            user_agent=(request.META.get("HTTP_USER_AGENT") or "")[:256],
            # request.user stays lazy: the session is read only if something is actually audited.
            actor=getattr(request, "user", None),
        )
        token = _context.set(context)
        try:
            return self.get_response(request)
        finally:
            _context.reset(token)
