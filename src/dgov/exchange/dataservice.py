"""Department data services (部门数据服务): the gateway's second backend, proxying to a department's own HTTP service.

Registering
    An official of the **provider department** of a published catalogue resource whose items are
    not linked to a registry (or the operator, ``dgov exchange service add``) registers one HTTP
    data service for it (:func:`register`): endpoint URL (https; http only for loopback hosts or
    outside production; no user:password, no fragment), timeout, optionally a bearer secret dgov
    presents (stored encrypted under key purpose ``exchange.dataservice``, never shown again).
    :func:`change`, :func:`suspend` (with a reason), :func:`resume` and the health probe
    :func:`check` go with it; every step is audited (``exchange.dataservice.*``).

Proxying (:func:`proxy_read`, :func:`proxy_read_many`, :func:`proxy_verify`)
    The gateway's ``gateway_read``/``gateway_read_many``/``gateway_verify`` hand a call over when
    :func:`routes` says the resource has a data service. The same checks as for registry-backed
    resources run here in the same order (client-credentials token, ``exchange:call``, rate limit,
    published resource, live grant), then the service must be ``active`` (503
    ``service_suspended``). Only the granted items asked for are requested, and anything else the
    service answers is dropped. Verification fetches the one item and compares in dgov (the value
    never leaves). Failures: 502 ``upstream_error`` (no answer, a redirect, an HTTP status other
    than 200/404), 504 ``upstream_timeout``, 502 ``upstream_bad_answer`` (not the contract's JSON,
    or larger than ``EXCHANGE_MAX_RESPONSE_BYTES``); their details never quote the service. Every
    call is appended to the exchange log like registry calls, with the service's record ids.

The contract (docs/exchange.md, "Department data services")
    dgov POSTs canonical JSON ``{"identifier", "items", "consumer", "operation"}`` (a batch:
    ``identifiers``; the probe: an empty batch, operation ``check``) with the headers
    ``X-Dgov-Request-Id``, ``X-Dgov-Consumer``, ``X-Dgov-Operation``, ``X-Dgov-Timestamp``,
    ``X-Dgov-Key-Id``, ``X-Dgov-Signature`` and, when configured, ``Authorization: Bearer``. The
    signature is the webhooks' (:func:`dgov.exchange.subscriptions.signing_bytes`, same platform
    key) over ``"dgov-dataservice-v1" US timestamp US request-id US body``. The service answers
    200 ``{"record": "<its id>", "items": {...}}`` or 404 (no such record); a batch 200
    ``{"records": [... | null]}`` in the order asked. dgov follows no redirect and uses no proxy.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import logging
import ssl
import time
import unicodedata
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.catalog import services as catalog_services
from dgov.catalog.models import InformationResource, SharingType
from dgov.exchange import services as exchange_services
from dgov.exchange import subscriptions
from dgov.exchange.models import DataService
from dgov.kernel import outbound
from dgov.kernel.services import audit
from dgov.kernel.services.audit import canonical_json

__all__ = [
    "FORMAT",
    "CheckResult",
    "UpstreamFailure",
    "change",
    "check",
    "check_endpoint_url",
    "default_timeout",
    "find_service",
    "forget_routes",
    "provider_resources",
    "proxy_read",
    "proxy_read_many",
    "proxy_verify",
    "public_keys",
    "register",
    "resume",
    "routes",
    "services_of",
    "suspend",
    "verify_request_signature",
]

FORMAT = "dgov-dataservice-v1"
# The platform signs its outbound requests (webhooks, data-service calls) with one key, told
# apart by the signed prefix; receivers pin the keys published for webhooks
# (``subscriptions.KEY_PURPOSE``, read at call time: the two modules import each other).
MAX_TIMEOUT = 30
CHUNK = 64 * 1024
Status = DataService.Status
logger = logging.getLogger(__name__)

# 编制指南 data types whose values are ordered (lt/gt verification).
_ORDERED_TYPES = frozenset("INYBFDT")


# --- Registration ---------------------------------------------------------------------------------


def default_timeout() -> int:
    """Seconds dgov waits for a service when none is given (``EXCHANGE_DATASERVICE_TIMEOUT``, default 10)."""
    return int(getattr(settings, "EXCHANGE_DATASERVICE_TIMEOUT", 10))


# The outbound checks an endpoint URL must pass, in the order its errors are reported.
_ENDPOINT_CHECKS = ("empty", "length", "fragment", "userinfo", "port", "whitespace", "scheme", "insecure")


def check_endpoint_url(url: str) -> str:
    """An endpoint URL a data service may use (https; http for loopback or outside production); else ValidationError."""
    url = (url or "").strip()
    problem = outbound.url_problem(url, _ENDPOINT_CHECKS, max_length=1000)
    if problem is None:
        return url
    if problem in ("empty", "length"):
        message = _("服务地址不能为空且不超过 1000 个字符")
    elif problem in ("fragment", "userinfo"):
        message = _("服务地址不能包含 # 片段或用户名密码")
    elif problem == "port":
        message = _("服务地址的端口不正确")
    elif problem == "whitespace":
        message = _("服务地址不能包含空白或控制字符")
    elif problem == "insecure":
        message = _("生产环境的服务地址必须使用 https")
    else:
        message = _("服务地址必须是完整的 https 地址")
    raise ValidationError({"endpoint_url": [message]}, code="bad_url")


def _clean_timeout(value) -> int:
    """Whole seconds from 1 to ``MAX_TIMEOUT`` (the default when empty)."""
    if value in (None, ""):
        return default_timeout()
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = 0
    if not 1 <= seconds <= MAX_TIMEOUT:
        raise ValidationError(
            {"timeout": [_("超时须为 1 到 %(max)s 秒的整数") % {"max": MAX_TIMEOUT}]}, code="bad_timeout"
        )
    return seconds


def _clean_credential(value: str) -> str:
    """A bearer secret that fits an HTTP header: 8–500 visible ASCII characters (empty: none)."""
    value = (value or "").strip()
    if not value:
        return ""
    if not 8 <= len(value) <= 500 or any(not 0x21 <= ord(ch) <= 0x7E for ch in value):
        raise ValidationError(
            {"credential": [_("访问凭证须为 8 到 500 个可见 ASCII 字符（不含空格）")]}, code="bad_credential"
        )
    return value


def _label(actor) -> str:
    """A short name of the actor for the service row."""
    if isinstance(actor, str):
        return actor[:150]
    if hasattr(actor, "get_username"):
        return actor.get_username()[:150]
    return str(actor)[:150]


def _may_manage(actor, provider_id: int) -> bool:
    """The operator (a ``system:…`` actor such as the CLI) or an official of the provider department."""
    if isinstance(actor, str):
        return actor.startswith("system:")
    return exchange_services._official_of(actor, provider_id)


def _require(actor, provider_id: int, action: str, target) -> None:
    """Raise an audited PermissionDenied unless the actor may manage the provider's data services."""
    if not _may_manage(actor, provider_id):
        raise exchange_services._deny(
            action,
            actor=exchange_services._audit_actor(actor),
            target=target,
            message=_("只有信息资源提供部门的工作人员可以管理其数据服务"),
        )


def _linked(items: dict[str, dict]) -> bool:
    """Whether any published item is linked to a registry field (then the registry serves the resource)."""
    return any(item.get("registry") and item.get("registry_field") for item in items.values())


def register(
    resource: InformationResource,
    *,
    actor,
    endpoint_url: str,
    timeout=None,
    credential: str = "",
    description: str = "",
) -> DataService:
    """Register the provider department's HTTP service for a published resource not backed by a registry."""
    _require(actor, resource.provider_id, "exchange.dataservice.create", resource)
    url = check_endpoint_url(endpoint_url)
    seconds = _clean_timeout(timeout)
    secret = _clean_credential(credential)
    items = exchange_services.requestable_items(resource)
    if not items:
        raise ValidationError({"resource": [_("该信息资源尚未发布或已停用")]}, code="not_published")
    if resource.sharing_type == SharingType.NONE:
        raise ValidationError({"resource": [_("不予共享的信息资源不能登记数据服务")]}, code="not_shareable")
    if _linked(items):
        raise ValidationError({"resource": [_("该信息资源的信息项已关联信息库，由信息库提供数据服务")]}, code="linked")
    now = timezone.now()
    try:
        with transaction.atomic():
            service = DataService.objects.create(
                resource=resource,
                provider_id=resource.provider_id,
                endpoint_url=url,
                description=(description or "").strip()[:200],
                timeout=seconds,
                credential=secret,
                created_by=_label(actor),
                created_at=now,
                updated_by=_label(actor),
                updated_at=now,
            )
            audit.record(
                "exchange.dataservice.create",
                actor=exchange_services._audit_actor(actor),
                target=service,
                detail={
                    "resource": resource.code,
                    "endpoint_host": urlsplit(url).hostname,
                    "timeout": seconds,
                    "credential": bool(secret),
                },
            )
    except IntegrityError:
        raise ValidationError({"resource": [_("该信息资源已登记数据服务")]}, code="exists") from None
    forget_routes()
    transaction.on_commit(forget_routes)
    return service


def services_of(actor) -> QuerySet[DataService]:
    """The data services the actor manages: its department's (officials), every one (the operator)."""
    rows = DataService.objects.select_related("resource", "provider")
    if isinstance(actor, str) and actor.startswith("system:"):
        return rows
    if not exchange_services._is_official(actor):
        return DataService.objects.none()
    return rows.filter(provider_id=actor.department_id)


def find_service(resource_code: str) -> DataService | None:
    """The data service of the resource with this code (``/`` or ``-`` form), or None."""
    code = exchange_services.resource_code(resource_code)
    return DataService.objects.select_related("resource", "provider").filter(resource__code=code).first()


def change(
    service: DataService,
    *,
    actor,
    endpoint_url: str | None = None,
    timeout=None,
    credential: str | None = None,
    clear_credential: bool = False,
    description: str | None = None,
) -> DataService:
    """Change a service's endpoint, timeout, bearer secret (set or clear) or description (audited; never the secret)."""
    _require(actor, service.provider_id, "exchange.dataservice.change", service)
    updates: dict = {}
    if endpoint_url is not None:
        updates["endpoint_url"] = check_endpoint_url(endpoint_url)
    if timeout not in (None, ""):
        updates["timeout"] = _clean_timeout(timeout)
    if clear_credential:
        updates["credential"] = ""
    elif credential:
        updates["credential"] = _clean_credential(credential)
    if description is not None:
        updates["description"] = description.strip()[:200]
    with transaction.atomic():
        locked = DataService.objects.select_for_update().get(pk=service.pk)
        changed = sorted(name for name, value in updates.items() if getattr(locked, name) != value)
        if not changed:
            return service
        for name in changed:
            setattr(locked, name, updates[name])
        locked.updated_by, locked.updated_at = _label(actor), timezone.now()
        locked.save(update_fields=[*changed, "updated_by", "updated_at"])
        detail: dict = {"changed": changed}
        if "endpoint_url" in changed:
            detail["endpoint_host"] = urlsplit(locked.endpoint_url).hostname
        if "timeout" in changed:
            detail["timeout"] = locked.timeout
        audit.record(
            "exchange.dataservice.change", actor=exchange_services._audit_actor(actor), target=locked, detail=detail
        )
    service.refresh_from_db()
    return service


def _set_status(service: DataService, *, actor, action: str, new: str, reason: str = "") -> DataService:
    """Suspend or resume a service (locked, audited)."""
    _require(actor, service.provider_id, action, service)
    with transaction.atomic():
        locked = DataService.objects.select_for_update().get(pk=service.pk)
        if locked.status == new:
            raise exchange_services.InvalidTransition(_("数据服务当前状态不允许该操作"), code="bad_state")
        previous = locked.status
        locked.status, locked.status_reason = new, reason[:300]
        locked.updated_by, locked.updated_at = _label(actor), timezone.now()
        locked.save(update_fields=["status", "status_reason", "updated_by", "updated_at"])
        audit.record(
            action,
            actor=exchange_services._audit_actor(actor),
            target=locked,
            detail={"from": previous, "to": new, "reason": reason[:300]},
        )
    service.refresh_from_db()
    return service


def suspend(service: DataService, *, actor, reason: str) -> DataService:
    """Stop proxying to the service (callers get 503 ``service_suspended``); a reason is required."""
    reason = (reason or "").strip()
    if not reason:
        _require(actor, service.provider_id, "exchange.dataservice.suspend", service)
        raise ValidationError({"reason": [_("暂停须写明原因")]}, code="reason_required")
    return _set_status(service, actor=actor, action="exchange.dataservice.suspend", new=Status.SUSPENDED, reason=reason)


def resume(service: DataService, *, actor) -> DataService:
    """Proxy to a suspended service again."""
    return _set_status(service, actor=actor, action="exchange.dataservice.resume", new=Status.ACTIVE)


def public_keys() -> list[dict]:
    """The platform's signing keys a service verifies requests with (the webhooks' keys)."""
    return subscriptions.public_keys()


def verify_request_signature(
    *, public_key_pem: str | bytes, timestamp: str, request_id: str, body: bytes, signature_b64: str
) -> bool:
    """Whether a data-service request's ``X-Dgov-Signature`` verifies (the reference check a department runs)."""
    return subscriptions.verify_signature(
        public_key_pem=public_key_pem,
        timestamp=timestamp,
        delivery_uid=request_id,
        body=body,
        signature_b64=signature_b64,
        prefix=FORMAT,
    )


# --- Talking to a service --------------------------------------------------------------------------


class UpstreamFailure(Exception):
    """A call to a data service that did not give a usable answer: the gateway code and a reason for operators."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def _max_answer() -> int:
    """The largest answer read from a service (``EXCHANGE_MAX_RESPONSE_BYTES``)."""
    return exchange_services.max_response_bytes()


def _remaining(connection: http.client.HTTPConnection, deadline: float) -> None:
    """Bound the next socket operation by what is left of the call's time (TimeoutError when nothing is)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    if connection.sock is not None:
        connection.sock.settimeout(left)


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """POST ``body``; return (status, answer). No redirects, no proxies, one deadline for the whole exchange."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamFailure("upstream_error", "bad url")
    deadline = time.monotonic() + timeout
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    cap = _max_answer()
    try:
        connection.request("POST", target, body=body, headers=headers)
        _remaining(connection, deadline)
        response = connection.getresponse()
        status = response.status
        if 300 <= status < 400:
            raise UpstreamFailure("upstream_error", f"redirect {status} (not followed)")
        declared = response.getheader("Content-Length") or ""
        if declared.isdigit() and int(declared) > cap:
            raise UpstreamFailure("upstream_bad_answer", "answer larger than EXCHANGE_MAX_RESPONSE_BYTES")
        chunks, size = [], 0
        while True:
            _remaining(connection, deadline)
            chunk = response.read1(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                raise UpstreamFailure("upstream_bad_answer", "answer larger than EXCHANGE_MAX_RESPONSE_BYTES")
            chunks.append(chunk)
        return status, b"".join(chunks)
    except UpstreamFailure:
        raise
    except TimeoutError:
        raise UpstreamFailure("upstream_timeout", f"no answer within {timeout:g} s") from None
    except ssl.SSLError as exc:
        raise UpstreamFailure("upstream_error", f"tls: {type(exc).__name__}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise UpstreamFailure("upstream_error", f"connection: {type(exc).__name__}") from None
    finally:
        connection.close()


def _call_service(service: DataService, payload: dict, *, request_id: str) -> tuple[int, object]:
    """Sign and POST one request to the service; (HTTP status, parsed JSON or None for a 404)."""
    from dgov.kernel.services import keys

    body = canonical_json(payload).encode("utf-8")
    timestamp = str(int(time.time()))
    signed = subscriptions.signing_bytes(timestamp, request_id, body, prefix=FORMAT)
    kid, signature = keys.sign(subscriptions.KEY_PURPOSE, signed)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Accept": "application/json",
        "User-Agent": "dgov-dataservice/1",
        "X-Dgov-Request-Id": request_id,
        "X-Dgov-Consumer": payload.get("consumer", ""),
        "X-Dgov-Operation": payload.get("operation", ""),
        "X-Dgov-Timestamp": timestamp,
        "X-Dgov-Key-Id": kid,
        "X-Dgov-Signature": base64.b64encode(signature).decode("ascii"),
    }
    if service.credential:
        headers["Authorization"] = f"Bearer {service.credential}"
    status, raw = _post(service.endpoint_url, body, headers, float(service.timeout or default_timeout()))
    if status == 404:
        return status, None
    if status != 200:
        raise UpstreamFailure("upstream_error", f"http {status}")
    try:
        return status, json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UpstreamFailure("upstream_bad_answer", "not JSON") from None


def _record_id(value, identifier: str) -> str:
    """The service's record id: 1–64 printable characters, never the identifier asked (that may be personal)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UpstreamFailure("upstream_bad_answer", "record id missing or not a string")
    text = str(value).strip()
    if not 1 <= len(text) <= 64 or not text.isprintable():
        raise UpstreamFailure("upstream_bad_answer", "record id empty, too long or not printable")
    if identifier and text == identifier.strip():
        raise UpstreamFailure("upstream_bad_answer", "record id is the identifier asked")
    return text


def _record(answer, identifier: str, asked: list[str]) -> tuple[str, dict]:
    """(record id, the asked items) of one record of an answer; anything not asked is dropped."""
    if not isinstance(answer, dict) or not isinstance(answer.get("items", {}), dict):
        raise UpstreamFailure("upstream_bad_answer", "record is not {record, items}")
    values = answer.get("items") or {}
    return _record_id(answer.get("record"), identifier), {code: values.get(code) for code in asked}


def fetch_one(service: DataService, identifier: str, asked: list[str], *, consumer: str, operation: str, request_id):
    """One record from the service: (record id, {item: value}), or None when it has none (404)."""
    payload = {"identifier": identifier, "items": asked, "consumer": consumer, "operation": operation}
    _status, answer = _call_service(service, payload, request_id=request_id)
    if answer is None:
        return None
    return _record(answer, identifier, asked)


def fetch_many(
    service: DataService, identifiers: list[str], asked: list[str], *, consumer: str, request_id, operation="read"
):
    """Several records from the service, in the order asked: a list of (record id, items) or None."""
    payload = {"identifiers": identifiers, "items": asked, "consumer": consumer, "operation": operation}
    status, answer = _call_service(service, payload, request_id=request_id)
    rows = answer.get("records") if isinstance(answer, dict) else None
    if status != 200 or not isinstance(rows, list) or len(rows) != len(identifiers):
        raise UpstreamFailure("upstream_bad_answer", "batch answer is not {records: [...]} of the length asked")
    return [None if row is None else _record(row, ident, asked) for row, ident in zip(rows, identifiers, strict=True)]


@dataclass
class CheckResult:
    """The outcome of a health probe."""

    ok: bool
    code: str
    reason: str
    elapsed_ms: int


def check(service: DataService, *, actor) -> CheckResult:
    """Probe the service with a signed empty batch (operation ``check``); record and audit the outcome."""
    _require(actor, service.provider_id, "exchange.dataservice.check", service)
    started = time.monotonic()
    request_id = f"check-{uuid.uuid4()}"
    try:
        rows = fetch_many(service, [], [], consumer="", request_id=request_id, operation="check")
        ok, code, reason = rows == [], "ok", ""
    except UpstreamFailure as exc:
        ok, code, reason = False, exc.code, exc.reason
    elapsed = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        DataService.objects.filter(pk=service.pk).update(
            last_check_at=timezone.now(), last_check_ok=ok, last_check_code=code[:32]
        )
        audit.record(
            "exchange.dataservice.check",
            actor=exchange_services._audit_actor(actor),
            target=service,
            detail={"ok": ok, "code": code, "reason": reason[:200], "elapsed_ms": elapsed, "request_id": request_id},
        )
    service.refresh_from_db()
    return CheckResult(ok, code, reason, elapsed)


# --- Routing ---------------------------------------------------------------------------------------

# Resource codes that have a data service, re-read every ROUTE_TTL seconds per process, so the
# registry-backed calls pay a set look-up, not a query. A stale "yes" costs one query (the proxy
# finds no service and hands the call back); a stale "no" lasts at most ROUTE_TTL seconds after a
# service was registered in another process.
_routes: tuple[float, frozenset[str]] = (float("-inf"), frozenset())


def _route_ttl() -> float:
    """Seconds a process trusts its list of proxied resources (``EXCHANGE_DATASERVICE_ROUTE_TTL``, default 5)."""
    return float(getattr(settings, "EXCHANGE_DATASERVICE_ROUTE_TTL", 5))


def forget_routes() -> None:
    """Drop this process's list of proxied resources (it is re-read on the next call)."""
    global _routes
    _routes = (float("-inf"), frozenset())


def routes(resource_code: str) -> bool:
    """Whether a gateway call on this resource code is for a department data service (cheap; may be stale)."""
    global _routes
    read_at, codes = _routes
    now = time.monotonic()
    if now - read_at > _route_ttl():
        codes = frozenset(DataService.objects.values_list("resource__code", flat=True))
        _routes = (now, codes)
    return resource_code in codes


def _service_for(resource_code: str) -> tuple[DataService, dict[str, dict]] | None:
    """The resource's data service and published items, or None when the registry path serves the call."""
    service = (
        DataService.objects.select_related("resource__provider", "resource__published_version")
        .filter(resource__code=resource_code)
        .first()
    )
    if service is None:
        return None
    items = exchange_services.requestable_items(service.resource)
    if _linked(items):
        return None  # a later version linked the items to a registry: the registry serves them
    return service, items


# --- Proxying gateway calls ------------------------------------------------------------------------


@dataclass
class _Target:
    """The checked context of a proxied call: the service, the resource's code, its items and the grant."""

    service: DataService
    resource_code: str
    items: dict[str, dict]
    granted: dict[str, str]
    consumer: str


def _begin(principal, operation: str, resource_code: str, request_id: str, requested: list[str]):
    """``(call, target)`` of a proxied call after the gateway's checks, or None when the resource is not proxied.

    The checks are the registry path's own (:func:`dgov.exchange.services._check_grant`: token,
    scope, rate limit, published resource, live grant — logged and raised), then the service must
    be active (503 ``service_suspended``).
    """
    found = _service_for(resource_code)
    if found is None:
        return None
    service, _items = found
    call = exchange_services._Call(principal, operation, resource_code, (request_id or str(uuid.uuid4()))[:64])
    context, items = exchange_services._check_grant(call, requested)
    if service.status != Status.ACTIVE:
        raise call.refuse(503, "service_suspended", _("提供部门的数据服务已暂停"), result="error")
    return call, _Target(service, context.resource_code, items, context.granted, call.consumer_code)


def _upstream(call, failure: UpstreamFailure, service: DataService):
    """Log a failed service call (502/504) and return the refusal; the reason goes to the operators' log only."""
    logger.warning(
        "data service #%s of %s failed (%s): %s", service.pk, call.resource_code, failure.code, failure.reason
    )
    if failure.code == "upstream_timeout":
        return call.refuse(504, failure.code, _("提供部门的数据服务未在规定时间内应答"), result="error")
    if failure.code == "upstream_bad_answer":
        return call.refuse(502, failure.code, _("提供部门的数据服务应答不符合约定"), result="error")
    return call.refuse(502, "upstream_error", _("提供部门的数据服务调用失败"), result="error")


def _serve(call, answer: dict, records: list[str]) -> dict:
    """Check the answer's size, log the call as served with the service's record ids, fill ``exchange``."""
    answer["exchange"] = {"seq": 0, "hash": "0" * 64}  # the size of the real reference
    if exchange_services._answer_size(answer) > exchange_services.max_response_bytes():
        raise exchange_services._too_large(call)
    answer["exchange"] = exchange_services._exchange_ref(call.log("ok", status=200, records=records))
    return answer


def _begin_read(principal, resource_code: str, request_id: str, fields):
    """``(call, target, served fields)`` of a proxied read after the checks of :func:`_begin`; None when not proxied.

    ``fields`` are the fields asked for (none: every granted one); the call logs the ones served.
    """
    requested = sorted(set(fields)) if fields else []
    begun = _begin(principal, "read", resource_code, request_id, requested)
    if begun is None:
        return None
    call, target = begun
    served = exchange_services._servable(call, target, requested)
    call.fields = served
    return call, target, served


def proxy_read(principal, resource_code: str, identifier: str, *, fields=None, request_id: str = "") -> dict | None:
    """Serve a read of a proxied resource; None when the resource is not proxied (the registry path serves it)."""
    begun = _begin_read(principal, resource_code, request_id, fields)
    if begun is None:
        return None
    call, target, served = begun
    try:
        row = fetch_one(
            target.service, identifier, served, consumer=target.consumer, operation="read", request_id=call.request_id
        )
    except UpstreamFailure as exc:
        raise _upstream(call, exc, target.service) from None
    if row is None:
        raise call.refuse(404, "record_not_found", _("未找到对应记录"), result="error")
    record, values = row
    return _serve(call, {"resource": target.resource_code, "record": record, "items": values}, [record])


def proxy_read_many(
    principal, resource_code: str, identifiers: list[str], *, fields=None, request_id: str = ""
) -> dict | None:
    """Serve a batch read of a proxied resource (one service call, one log entry); None when not proxied."""
    begun = _begin_read(principal, resource_code, request_id, fields)
    if begun is None:
        return None
    call, target, served = begun
    if len(identifiers) > exchange_services.max_records():
        raise exchange_services._too_large(call)
    try:
        rows = fetch_many(
            target.service, list(identifiers), served, consumer=target.consumer, request_id=call.request_id
        )
    except UpstreamFailure as exc:
        raise _upstream(call, exc, target.service) from None
    records = [None if row is None else {"record": row[0], "items": row[1]} for row in rows]
    answer = {"resource": target.resource_code, "records": records}
    return _serve(call, answer, [row[0] for row in rows if row is not None])


def _typed(data_type: str, raw):
    """A value as something comparable for its 编制指南 data type (ValueError/InvalidOperation when it is not one)."""
    if raw is None or raw == "":
        return None
    if data_type in ("I", "N", "Y", "B", "F"):
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise ValueError("not a number")
        number = Decimal(str(raw).strip())
        if not number.is_finite() or (data_type == "I" and number != number.to_integral_value()):
            raise ValueError("not a finite number of the type")
        return number
    if data_type == "D":
        return datetime.date.fromisoformat(str(raw).strip())
    if data_type == "T":
        moment = datetime.datetime.fromisoformat(str(raw).strip())
        return timezone.make_aware(moment) if timezone.is_naive(moment) else moment
    if data_type == "L":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValueError("not a boolean")
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ValueError("not text")
    return unicodedata.normalize("NFKC", str(raw)).strip()


def proxy_verify(
    principal, resource_code: str, *, identifier: str, item: str, op: str, value=None, request_id: str = ""
) -> dict | None:
    """Answer a verification on a proxied resource: fetch the one item, compare in dgov; None when not proxied."""
    begun = _begin(principal, "verify", resource_code, request_id, [item])
    if begun is None:
        return None
    call, target = begun
    if item not in target.items or item not in target.granted:
        raise call.refuse(403, "item_not_granted", _("所请求的信息项未获授权"))
    if op not in exchange_services.VERIFY_OPS:
        raise call.refuse(400, "bad_operator", _("不支持的核验操作"), result="error")
    data_type = target.items[item].get("data_type") or "C"
    if op in ("lt", "gt") and data_type not in _ORDERED_TYPES:
        raise call.refuse(400, "bad_operator", _("该信息项不支持大小比较"), result="error")
    given = None
    if op != "exists":
        try:
            given = _typed(data_type, value)
        except (ValueError, InvalidOperation):
            raise call.refuse(400, "bad_value", _("核验值格式不正确"), result="error") from None
        if given is None:
            raise call.refuse(400, "bad_value", _("核验值格式不正确"), result="error")
    try:
        row = fetch_one(
            target.service, identifier, [item], consumer=target.consumer, operation="verify", request_id=call.request_id
        )
    except UpstreamFailure as exc:
        raise _upstream(call, exc, target.service) from None
    if row is None:
        return {"result": False, "exchange": exchange_services._exchange_ref(call.log("ok", code="no_record"))}
    record, values = row
    stored = values.get(item)
    try:
        current = _typed(data_type, stored)
    except (ValueError, InvalidOperation):
        current = None
    answer = exchange_services.verify_answer(op, stored if op == "exists" else current, given)
    return {"result": answer, "exchange": exchange_services._exchange_ref(call.log("ok", records=[record]))}


def provider_resources(actor) -> list[InformationResource]:
    """Published, shareable resources of the actor's department with no registry link (the form's suggestions)."""
    if not exchange_services._is_official(actor):
        return []
    rows = (
        catalog_services.visible_resources()
        .filter(provider_id=actor.department_id)
        .exclude(sharing_type=SharingType.NONE)
        .order_by("code")[:500]
    )
    return [r for r in rows if not _linked(exchange_services.requestable_items(r))]
