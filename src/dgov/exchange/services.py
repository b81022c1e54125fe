"""Sharing and exchange services (共享交换): requests, decisions, grants, the gateway's checks, the log.

Workflow
    An **official of the consumer department** requests items of a *published* catalogue resource
    (:func:`request_share`: items with a mode — ``full`` or ``verify`` —, purpose, legal basis
    法律依据, period). The request's sharing type is the most restrictive of the resource's and the
    requested items' (a 有条件共享 item in a 无条件共享 resource makes the request conditional):

    * 无条件共享 → granted at once (a :class:`Grant` for the period);
    * 有条件共享 → ``submitted`` to the provider, due in ``EXCHANGE_APPROVAL_DAYS`` working days
      (default 5, the kernel calendar with 调休); **officials of the provider department** approve
      (:func:`approve`) or refuse with a reason (:func:`refuse`); the consumer may withdraw it;
    * 不予共享 → refused at once, the reason being the catalogue's stated basis.

    A grant is valid from the start of the period's first day to the end of its last day
    (Asia/Shanghai). Provider officials revoke grants (:func:`revoke`, with a reason);
    :func:`expire_grants` (``dgov exchange expire``) marks and audits grants whose period ended.
    Every step is one transaction with its audit record (``exchange.request.*``,
    ``exchange.grant.*``); refused attempts are audited as ``denied``.

Gateway (:func:`gateway_read`, :func:`gateway_verify`)
    The caller is a client with a client-credentials token (its department is the consumer) and
    the ``exchange:call`` scope. Each call takes a token of the client's bucket (rate limit), finds
    the resource's live published version, merges the consumer's live grants for it, looks the
    record up in the registry the items are linked to (by the registry's identifier field), and
    returns only granted ``full`` items (or, for a verification, only a boolean). Every call that
    reaches the gateway — served or refused — is appended to the exchange log
    (:mod:`dgov.exchange.log`); a served read is also written to the registry's access log, so
    the citizen's “who read my data” shows it.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.catalog.models import InformationResource, SharingType
from dgov.exchange import dataservice, log, lookups
from dgov.exchange.models import ExchangeLogEntry, Grant, ItemMode, RateBucket, ShareRequest
from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.kernel.services.calendar import add_working_days
from dgov.registry import services as registry_services
from dgov.registry.schema import RecordValidationError, clean_value, field_map

__all__ = [
    "SCOPE",
    "GatewayRefusal",
    "InvalidTransition",
    "approve",
    "approval_inbox",
    "can_see_entry",
    "daily_counts",
    "expire_grants",
    "file_request",
    "client_department",
    "gateway_read",
    "gateway_read_many",
    "gateway_verify",
    "grant_state",
    "grants_of",
    "live_grant_items",
    "max_records",
    "max_response_bytes",
    "log_entries_for",
    "log_enabled",
    "log_exchange",
    "receipt",
    "refuse",
    "request_share",
    "requestable_items",
    "requests_of",
    "revoke",
    "take_token",
    "verify_log",
    "withdraw",
]

SCOPE = "exchange:call"
Status = ShareRequest.Status
_STRICTNESS = {SharingType.UNCONDITIONAL: 0, SharingType.CONDITIONAL: 1, SharingType.NONE: 2}
VERIFY_OPS = ("eq", "lt", "gt", "exists")
_ORDERED_TYPES = ("integer", "decimal", "date", "datetime")

log_exchange = log.append
verify_log = log.verify
receipt = log.receipt


class InvalidTransition(ValidationError):
    """The request or grant is not in a state that allows this step."""


# --- Actors -------------------------------------------------------------------------------------


def department_of(actor) -> Organization | None:
    """The department an actor works for (an official's department, a client's organization)."""
    return registry_services.department_of(actor)


def _is_official(actor) -> bool:
    """A logged-in official (a person, not a client) with a department."""
    return bool(
        getattr(actor, "is_authenticated", False)
        and getattr(actor, "kind", "") in ("official", "admin")
        and getattr(actor, "department_id", None)
        and not hasattr(actor, "client_id")
    )


def _official_of(actor, department_id: int) -> bool:
    """Whether the actor is an official of that department."""
    return _is_official(actor) and actor.department_id == department_id


def _deny(action: str, *, actor, target, message: str) -> PermissionDenied:
    """Audit a refused step in its own transaction and return the PermissionDenied to raise."""
    with transaction.atomic():
        audit.record(action, actor=actor, target=target, outcome="denied", detail={"reason": message[:300]})
    return PermissionDenied(message)


def _audit_actor(actor):
    """The actor as the audit service takes it."""
    if actor is None or isinstance(actor, str) or hasattr(actor, "get_username"):
        return actor
    return str(actor)


# --- Requests and decisions -----------------------------------------------------------------------


def resource_code(key: str) -> str:
    """The resource code of a key as URLs and forms carry it (``101001000-000001`` → ``101001000/000001``)."""
    return key if "/" in key else key.replace("-", "/", 1)


def requestable_items(resource: InformationResource) -> dict[str, dict]:
    """The items of the resource's live published version, by code (empty when nothing is published)."""
    if resource.published_version_id is None or resource.status == InformationResource.Status.RETIRED:
        return {}
    return {item["code"]: item for item in resource.published_version.snapshot.get("items", [])}


def _normalize_items(items) -> dict[str, str]:
    """``{code: mode}`` from a dict or a list of codes (mode full)."""
    if isinstance(items, dict):
        return {str(k): str(v) for k, v in items.items()}
    return {str(code): ItemMode.FULL for code in items or ()}


def _start_of(day: datetime.date) -> datetime.datetime:
    """The first moment of a local (Asia/Shanghai) day."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _make_grant(request: ShareRequest, *, now) -> Grant:
    """The grant of a request for its items and period (inside the caller's transaction)."""
    return Grant.objects.create(
        consumer=request.consumer,
        resource=request.resource,
        request=request,
        items=dict(request.items),
        valid_from=_start_of(request.period_start),
        valid_until=_start_of(request.period_end + datetime.timedelta(days=1)),
        granted_at=now,
    )


def request_share(
    resource: InformationResource,
    *,
    actor,
    items,
    purpose: str,
    legal_basis: str,
    period_end: datetime.date,
    period_start: datetime.date | None = None,
) -> ShareRequest:
    """File a consumer department's request; grant at once (无条件), send for approval (有条件) or refuse (不予)."""
    consumer = department_of(actor) if _is_official(actor) else None
    if consumer is None:
        raise _deny(
            "exchange.request.submit",
            actor=_audit_actor(actor),
            target=resource,
            message=_("只有部门工作人员可以申请共享"),
        )
    if consumer.pk == resource.provider_id:
        raise ValidationError({"resource": [_("不能申请本部门提供的信息资源")]}, code="own_resource")
    available = requestable_items(resource)
    if not available:
        raise ValidationError({"resource": [_("该信息资源尚未发布或已停用")]}, code="not_published")
    wanted = _normalize_items(items)
    errors: dict[str, list[str]] = {}
    if not wanted:
        errors["items"] = [_("至少选择一个信息项")]
    unknown = sorted(code for code in wanted if code not in available)
    if unknown:
        errors["items"] = [_("信息项不存在：%(codes)s") % {"codes": "、".join(unknown)}]
    if any(mode not in ItemMode.values for mode in wanted.values()):
        errors.setdefault("items", []).append(_("信息项的使用方式须为 full 或 verify"))
    purpose, legal_basis = (purpose or "").strip(), (legal_basis or "").strip()
    if not purpose:
        errors["purpose"] = [_("须写明用途")]
    if not legal_basis:
        errors["legal_basis"] = [_("须写明法律依据")]
    today = timezone.localdate()
    period_start = period_start or today
    if period_end is None or period_end < period_start or period_end < today:
        errors["period_end"] = [_("使用期限止须不早于起始日和今天")]
    if errors:
        raise ValidationError(errors, code="invalid_request")
    return file_request(
        resource,
        consumer=consumer,
        available=available,
        wanted=wanted,
        purpose=purpose,
        legal_basis=legal_basis,
        period_start=period_start,
        period_end=period_end,
        requested_by=actor,
        audit_actor=actor,
    )


def file_request(
    resource: InformationResource,
    *,
    consumer: Organization,
    available: dict[str, dict],
    wanted: dict[str, str],
    purpose: str,
    legal_basis: str,
    period_start: datetime.date,
    period_end: datetime.date,
    requested_by,
    audit_actor,
    detail: dict | None = None,
) -> ShareRequest:
    """Store a checked request and decide it by its sharing type; audited ``exchange.request.<status>``.

    The sharing type is the strictest of the resource's and the wanted items' (``available`` are
    the published items): 无条件共享 is granted at once, 有条件共享 waits for the provider (due in
    ``EXCHANGE_APPROVAL_DAYS`` working days), 不予共享 is refused with the catalogue's basis.
    Shared by officials' requests (:func:`request_share`) and peers' forwarded ones
    (:mod:`dgov.exchange.federation_exchange`); ``detail`` adds to the audit record.
    """
    types = [resource.sharing_type, *(available[code]["sharing_type"] for code in wanted)]
    sharing_type = max(types, key=lambda t: _STRICTNESS.get(t, 2))
    now = timezone.now()
    with transaction.atomic():
        request = ShareRequest(
            consumer=consumer,
            resource=resource,
            items=wanted,
            purpose=purpose,
            legal_basis=legal_basis,
            period_start=period_start,
            period_end=period_end,
            sharing_type=sharing_type,
            requested_by=requested_by,
            submitted_at=now,
        )
        detail = {"resource": resource.code, "items": wanted, "sharing_type": sharing_type, **(detail or {})}
        if sharing_type == SharingType.UNCONDITIONAL:
            request.status, request.decided_at = Status.GRANTED, now
            request.save()
            grant = _make_grant(request, now=now)
            detail["grant"] = grant.pk
        elif sharing_type == SharingType.CONDITIONAL:
            days = int(getattr(settings, "EXCHANGE_APPROVAL_DAYS", 5))
            request.due_on = add_working_days(timezone.localdate(), days)
            request.save()
            detail["due_on"] = request.due_on.isoformat()
        else:
            refused = [available[c]["name"] for c in wanted if available[c]["sharing_type"] == SharingType.NONE]
            basis = resource.sharing_conditions if resource.sharing_type == SharingType.NONE else ""
            request.status, request.decided_at = Status.REFUSED, now
            request.reason = basis or _("所申请的信息项为不予共享：%(items)s") % {"items": "、".join(refused)}
            request.save()
        audit.record(f"exchange.request.{request.status}", actor=audit_actor, target=request, detail=detail)
    return request


def _locked_request(request: ShareRequest) -> ShareRequest:
    """The request re-read with a row lock (inside a transaction)."""
    return ShareRequest.objects.select_for_update().select_related("resource", "consumer").get(pk=request.pk)


def approve(request: ShareRequest, *, actor, reason: str = "") -> Grant:
    """A provider official grants a submitted (有条件共享) request for its items and period."""
    if not _official_of(actor, request.resource.provider_id):
        raise _deny(
            "exchange.request.approve", actor=actor, target=request, message=_("只有信息资源提供部门的工作人员可以审批")
        )
    with transaction.atomic():
        locked = _locked_request(request)
        if locked.status != Status.SUBMITTED:
            raise InvalidTransition(_("只有待审批的申请可以审批"), code="not_submitted")
        now = timezone.now()
        locked.status, locked.decided_by, locked.decided_at, locked.reason = Status.GRANTED, actor, now, reason.strip()
        locked.save(update_fields=["status", "decided_by", "decided_at", "reason"])
        grant = _make_grant(locked, now=now)
        audit.record(
            "exchange.request.approve",
            actor=actor,
            target=locked,
            detail={"resource": locked.resource.code, "grant": grant.pk, "items": locked.items},
        )
    request.refresh_from_db()
    return grant


def refuse(request: ShareRequest, *, actor, reason: str) -> ShareRequest:
    """A provider official refuses a submitted request; the reason is required."""
    if not _official_of(actor, request.resource.provider_id):
        raise _deny(
            "exchange.request.refuse", actor=actor, target=request, message=_("只有信息资源提供部门的工作人员可以审批")
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("拒绝须写明原因")]}, code="reason_required")
    with transaction.atomic():
        locked = _locked_request(request)
        if locked.status != Status.SUBMITTED:
            raise InvalidTransition(_("只有待审批的申请可以审批"), code="not_submitted")
        locked.status, locked.decided_by, locked.decided_at, locked.reason = (
            Status.REFUSED,
            actor,
            timezone.now(),
            reason,
        )
        locked.save(update_fields=["status", "decided_by", "decided_at", "reason"])
        audit.record("exchange.request.refuse", actor=actor, target=locked, detail={"reason": reason[:300]})
    request.refresh_from_db()
    return request


def withdraw(request: ShareRequest, *, actor) -> ShareRequest:
    """An official of the consumer department withdraws a request still waiting for approval."""
    if not _official_of(actor, request.consumer_id):
        raise _deny(
            "exchange.request.withdraw", actor=actor, target=request, message=_("只有申请部门的工作人员可以撤回")
        )
    with transaction.atomic():
        locked = _locked_request(request)
        if locked.status != Status.SUBMITTED:
            raise InvalidTransition(_("只有待审批的申请可以撤回"), code="not_submitted")
        locked.status, locked.decided_at = Status.WITHDRAWN, timezone.now()
        locked.save(update_fields=["status", "decided_at"])
        audit.record("exchange.request.withdraw", actor=actor, target=locked)
    request.refresh_from_db()
    return request


def revoke(grant: Grant, *, actor, reason: str) -> Grant:
    """A provider official revokes a grant with a reason; the gateway refuses it from now on."""
    if not _official_of(actor, grant.resource.provider_id):
        raise _deny(
            "exchange.grant.revoke", actor=actor, target=grant, message=_("只有信息资源提供部门的工作人员可以撤销授权")
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("撤销须写明原因")]}, code="reason_required")
    with transaction.atomic():
        locked = Grant.objects.select_for_update().get(pk=grant.pk)
        if locked.revoked_at is not None:
            raise InvalidTransition(_("该授权已撤销"), code="revoked")
        locked.revoked_at, locked.revoked_by, locked.revoke_reason = timezone.now(), actor, reason
        locked.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        audit.record("exchange.grant.revoke", actor=actor, target=locked, detail={"reason": reason[:300]})
    grant.refresh_from_db()
    return grant


def expire_grants(*, now: datetime.datetime | None = None) -> int:
    """Mark (and audit) grants whose period has ended; returns how many. Validity itself is checked live."""
    now = now or timezone.now()
    done = 0
    ids = list(
        Grant.objects.filter(valid_until__lte=now, expired_at__isnull=True, revoked_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    for pk in ids:
        with transaction.atomic():
            updated = Grant.objects.filter(pk=pk, expired_at__isnull=True).update(expired_at=now)
            if updated:
                audit.record("exchange.grant.expire", actor=None, target=("exchange.grant", pk))
                done += 1
    return done


def grant_state(grant: Grant, now: datetime.datetime | None = None) -> str:
    """``active``, ``pending`` (not yet valid), ``expired`` or ``revoked``."""
    now = now or timezone.now()
    if grant.revoked_at is not None:
        return "revoked"
    if grant.valid_until <= now:
        return "expired"
    if grant.valid_from > now:
        return "pending"
    return "active"


def live_grant_items(
    consumer: Organization, resource: InformationResource, now=None
) -> tuple[dict[str, str], int | None, str]:
    """The consumer's live grants on a resource merged: ``({code: mode}, grant id, refusal code)``.

    ``full`` wins over ``verify`` when grants overlap. With no live grant the refusal code says
    why: ``grant_revoked``, ``grant_expired`` or ``no_grant``.
    """
    now = now or timezone.now()
    grants = list(Grant.objects.filter(consumer=consumer, resource=resource).order_by("-granted_at"))
    live = [g for g in grants if grant_state(g, now) == "active"]
    if not live:
        states = {grant_state(g, now) for g in grants}
        code = "grant_revoked" if "revoked" in states else "grant_expired" if "expired" in states else "no_grant"
        return {}, None, code
    merged: dict[str, str] = {}
    for grant in live:
        for code, mode in grant.items.items():
            if merged.get(code) != ItemMode.FULL:
                merged[code] = mode
    return merged, live[0].pk, ""


# --- Queries for pages -----------------------------------------------------------------------------


def requests_of(department: Organization | None) -> QuerySet[ShareRequest]:
    """A consumer department's requests, newest first."""
    if department is None:
        return ShareRequest.objects.none()
    return ShareRequest.objects.filter(consumer=department).select_related("resource", "resource__provider")


def grants_of(department: Organization | None, *, as_provider: bool = False) -> QuerySet[Grant]:
    """Grants a department holds (consumer) or gave (provider), newest first."""
    if department is None:
        return Grant.objects.none()
    scope = Q(resource__provider=department) if as_provider else Q(consumer=department)
    return Grant.objects.filter(scope).select_related("resource", "consumer", "request")


def approval_inbox(actor) -> QuerySet[ShareRequest]:
    """Submitted requests for the actor's department's resources, the earliest deadline first."""
    department = department_of(actor) if _is_official(actor) else None
    if department is None:
        return ShareRequest.objects.none()
    return (
        ShareRequest.objects.filter(status=Status.SUBMITTED, resource__provider=department)
        .select_related("resource", "consumer", "requested_by")
        .order_by("due_on", "submitted_at")
    )


def log_entries_for(department: Organization | None, *, role: str = "", result: str = "", day=None):
    """Exchange-log entries where the department is the consumer or the provider (``role`` narrows it)."""
    if department is None:
        return ExchangeLogEntry.objects.none()
    if role == "consumer":
        scope = Q(consumer_code=department.code)
    elif role == "provider":
        scope = Q(provider_code=department.code)
    else:
        scope = Q(consumer_code=department.code) | Q(provider_code=department.code)
    entries = ExchangeLogEntry.objects.filter(scope)
    if result in ExchangeLogEntry.Result.values:
        entries = entries.filter(result=result)
    if day is not None:
        entries = entries.filter(at__gte=_start_of(day), at__lt=_start_of(day + datetime.timedelta(days=1)))
    return entries.order_by("-seq")


def daily_counts(entries: QuerySet[ExchangeLogEntry], days: int = 14) -> list[dict]:
    """Calls per day (local days) over the last ``days`` days: total and failures."""
    since = _start_of(timezone.localdate() - datetime.timedelta(days=days - 1))
    rows = (
        entries.filter(at__gte=since)
        .order_by()
        .annotate(day=TruncDate("at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(total=Count("seq"), failed=Count("seq", filter=~Q(result="ok")))
        .order_by("-day")
    )
    return list(rows)


def can_see_entry(actor, entry: ExchangeLogEntry) -> bool:
    """Consumer and provider (their officials or clients) may see an entry and download its receipt."""
    department = department_of(actor)
    return department is not None and department.code in (entry.consumer_code, entry.provider_code)


# --- Rate limit -----------------------------------------------------------------------------------


# A process takes tokens from the shared bucket a tenth of a second's worth at a time (at most 100)
# and spends them locally for up to LEASE_SECONDS, so a busy client costs one bucket update per lease
# rather than per call. Small rates (under 20/s) take one token per call, exactly as before.
LEASE_SECONDS = 1.0
_leases: dict[str, list] = {}
_leases_lock = threading.Lock()


def take_token(client_id: str, *, now: datetime.datetime | None = None) -> bool:
    """Take one token of the client's bucket (``EXCHANGE_RATE_PER_SECOND``, ``EXCHANGE_RATE_BURST``); False when empty.

    The bucket is a database row, so every web node shares it; a rate of 0 disables the limit. A
    process leases ``min(rate/10, burst/4, 100)`` tokens at a time from it (see ``LEASE_SECONDS``),
    so the limit holds across nodes to within one lease per process.
    """
    rate = float(getattr(settings, "EXCHANGE_RATE_PER_SECOND", 50))
    burst = float(getattr(settings, "EXCHANGE_RATE_BURST", 100))
    if rate <= 0:
        return True
    chunk = max(1, min(int(rate / 10), int(burst / 4), 100))
    if chunk > 1:
        with _leases_lock:
            lease = _leases.get(client_id)
            if lease is not None and lease[0] >= 1 and lease[1] > time.monotonic():
                lease[0] -= 1
                return True
    taken = _take_from_bucket(client_id, chunk, rate=rate, burst=burst, now=now or timezone.now())
    if taken and chunk > 1:
        with _leases_lock:
            if len(_leases) > 10000:
                _leases.clear()
            _leases[client_id] = [taken - 1, time.monotonic() + LEASE_SECONDS]
    return taken > 0


def _take_from_bucket(client_id: str, wanted: int, *, rate: float, burst: float, now) -> int:
    """Take up to ``wanted`` whole tokens from the client's bucket row (at least 1, or 0 when empty).

    The row is locked for the update. When the bucket is a transaction of its own, its commit on
    PostgreSQL does not wait for the write-ahead log to reach the disk: the row lock is released at
    once instead of after an fsync. A crash may forget the last few token takes — harmless for a
    rate limit.
    """
    connection = transaction.get_connection()
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if own_transaction and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        bucket = RateBucket.objects.select_for_update().filter(pk=client_id).first()
        if bucket is None:
            try:
                with transaction.atomic():
                    taken = min(wanted, int(burst))
                    RateBucket.objects.create(client_id=client_id, tokens=burst - taken, updated_at=now)
                return taken
            except IntegrityError:
                bucket = RateBucket.objects.select_for_update().get(pk=client_id)
        elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
        tokens = min(burst, bucket.tokens + elapsed * rate)
        taken = min(wanted, int(tokens))
        bucket.tokens = tokens - taken
        bucket.updated_at = now
        bucket.save(update_fields=["tokens", "updated_at"])
    return taken


# --- Gateway settings -----------------------------------------------------------------------------


def log_enabled() -> bool:
    """Whether gateway calls are written to the exchange log: always, unless a benchmark turns it off.

    ``EXCHANGE_LOG_ENABLED = False`` is honoured only together with ``EXCHANGE_BENCHMARK = True``
    (set by bench/bench_exchange_gateway.py's settings, never by the environment); otherwise it is
    ignored and the system check ``exchange.E001`` reports the misconfiguration.
    """
    if getattr(settings, "EXCHANGE_LOG_ENABLED", True):
        return True
    return not bool(getattr(settings, "EXCHANGE_BENCHMARK", False))


def max_response_bytes() -> int:
    """The largest gateway answer served (``EXCHANGE_MAX_RESPONSE_BYTES``, default 1 MiB)."""
    return int(getattr(settings, "EXCHANGE_MAX_RESPONSE_BYTES", 1024 * 1024))


def max_records() -> int:
    """The most records one batch query may ask for (``EXCHANGE_MAX_RECORDS``, default 100)."""
    return int(getattr(settings, "EXCHANGE_MAX_RECORDS", 100))


def _answer_size(answer: dict) -> int:
    """The size in bytes of an answer as the API renders it (JSON with non-ASCII characters escaped)."""
    return len(json.dumps(answer, cls=DjangoJSONEncoder).encode("ascii"))


def _exchange_ref(entry: ExchangeLogEntry | None) -> dict | None:
    """The ``exchange`` member of an answer: the log entry's seq and hash (None when not logged)."""
    return None if entry is None else {"seq": entry.seq, "hash": entry.hash}


# --- Gateway --------------------------------------------------------------------------------------


class GatewayRefusal(Exception):
    """A refused or failed gateway call (already logged): HTTP status, machine code, safe message."""

    def __init__(self, status: int, code: str, message: str, *, seq: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.seq = status, code, message, seq


@dataclass
class _Call:
    """What the log needs to know about one gateway call, filled in as the checks go."""

    principal: object
    operation: str
    resource_code: str
    request_id: str
    consumer_code: str = ""
    client_id: str = ""
    provider_code: str = ""
    purpose: str = ""
    fields: list[str] = field(default_factory=list)
    grant_id: int | None = None
    department: Organization | None = None

    def log(self, result: str, *, code: str = "", status: int = 200, records=(), reads=()) -> ExchangeLogEntry | None:
        """Append this call to the exchange log with the registry access-log rows ``reads``.

        Returns None when the log is turned off for a benchmark (the ``reads`` are stored all the
        same). An entry that cannot be written refuses the call: 503 ``log_unavailable``.
        """
        if not log_enabled():
            if reads:
                from dgov.registry.models import AccessLog

                AccessLog.objects.bulk_create([AccessLog(**read._asdict()) for read in reads])
            return None
        try:
            return log.append(
                operation=self.operation,
                result=result,
                code=code,
                status=status,
                consumer_code=self.consumer_code,
                client_id=self.client_id,
                provider_code=self.provider_code,
                resource_code=self.resource_code,
                fields=self.fields,
                purpose=self.purpose,
                records=list(records),
                grant_id=self.grant_id,
                request_id=self.request_id,
                reads=reads,
            )
        except log.LogUnavailable:
            raise GatewayRefusal(503, "log_unavailable", _("共享交换日志暂不可用，请稍后再试")) from None

    def refuse(
        self, status: int, code: str, message: str, result: str = "denied", *, log_code: str = ""
    ) -> GatewayRefusal:
        """Log the refusal (with ``log_code`` when the log should say more than the caller is told); the exception."""
        entry = self.log(result, code=log_code or code, status=status)
        return GatewayRefusal(status, code, message, seq=entry.seq if entry is not None else None)


@dataclass
class _Target:
    """The checked context of a call: the resource's context, grant items, registry and the item → field map."""

    context: lookups.CallContext
    granted: dict[str, str]
    items: dict[str, dict]
    registry: object


def _check_client(call: _Call, requested: list[str]) -> Organization:
    """The consumer department of a call by a client-credentials client with ``exchange:call``, within its rate.

    Logs and raises refusals (403 ``client_token_required`` / ``scope_missing``, 429
    ``rate_limited``). Shared by every backend of the gateway and by calls forwarded to peers.
    """
    principal = call.principal
    client_id = getattr(principal, "client_id", "")
    department = department_of(principal)
    call.client_id = client_id or ""
    call.department = department
    call.consumer_code = department.code if department is not None else ""
    call.fields = list(requested)
    if not client_id or department is None or getattr(principal, "scopes", None) is None:
        raise call.refuse(403, "client_token_required", _("共享交换网关只接受部门应用的客户端凭证令牌"))
    if SCOPE not in principal.scopes:
        raise call.refuse(403, "scope_missing", _("当前凭证没有 %(scope)s 权限范围") % {"scope": SCOPE})
    if not take_token(client_id):
        raise call.refuse(429, "rate_limited", _("调用过于频繁，请稍后再试"))
    return department


def _check_grant(call: _Call, requested: list[str]) -> tuple[lookups.CallContext, dict[str, dict]]:
    """:func:`_check_client`, then the resource and the consumer's live grant: (context, published items).

    Logs and raises refusals. One statement when the caches are warm: the resource's state with
    the consumer's grants (:func:`dgov.exchange.lookups.call_context`); the published items are
    read once per process and version. Shared by every backend of the gateway.
    """
    department = _check_client(call, requested)
    context = lookups.call_context(department.pk, call.resource_code, timezone.now())
    items = lookups.published_items(context) if context is not None else {}
    if not items:
        raise call.refuse(404, "resource_not_found", _("信息资源不存在或未发布"))
    call.provider_code = context.provider_code
    call.grant_id = context.grant_id
    if context.grant_id is None:
        raise call.refuse(403, context.refusal, _("没有该信息资源的有效共享授权"))
    call.purpose = context.purpose
    return context, items


def _check_call(call: _Call, requested: list[str]) -> _Target:
    """:func:`_check_grant`, then the registry the resource's items are linked to; log and raise refusals."""
    context, items = _check_grant(call, requested)
    linked = {code: item for code, item in items.items() if item.get("registry") and item.get("registry_field")}
    if not linked:
        raise call.refuse(404, "no_data_service", _("该信息资源不提供接口数据服务"), result="error")
    registry_code = next(iter(linked.values()))["registry"]
    try:
        registry = registry_services.cached_registry(registry_code)
    except registry_services.RegistryNotFound:
        raise call.refuse(404, "no_data_service", _("该信息资源不提供接口数据服务"), result="error") from None
    linked = {code: item for code, item in linked.items() if item["registry"] == registry_code}
    return _Target(context, context.granted, linked, registry)


def _find_all(call: _Call, target: _Target, identifiers: list) -> list[lookups.FoundRecord | None]:
    """The live record for each identifier in the target registry, in order (None where there is none)."""
    try:
        return lookups.find_records(target.registry, identifiers)
    except RecordValidationError:
        raise call.refuse(404, "no_data_service", _("该信息资源不提供接口数据服务"), result="error") from None


def _find(call: _Call, target: _Target, identifier: str) -> lookups.FoundRecord | None:
    """The live record with this identifier in the target registry (None when there is none)."""
    return _find_all(call, target, [identifier])[0]


def _begin_read(principal, resource_code: str, fields, request_id: str) -> tuple[_Call, _Target, list[str]]:
    """The checked start of a registry read: (call, target, the items it serves); refusals logged and raised."""
    call = _Call(principal, "read", resource_code, request_id)
    requested = sorted(set(fields)) if fields else []
    target = _check_call(call, requested)
    call.fields = _servable(call, target, requested)
    return call, target, call.fields


def _servable(call: _Call, target: _Target, requested: list[str]) -> list[str]:
    """The items a read serves: the requested ones (all must be granted ``full``) or every granted ``full`` item."""
    servable = sorted(c for c, m in target.granted.items() if m == ItemMode.FULL and c in target.items)
    if requested:
        if any(code not in servable for code in requested):
            raise call.refuse(403, "item_not_granted", _("所请求的信息项未获授权"))
        return requested
    if not servable:
        raise call.refuse(403, "item_not_granted", _("所请求的信息项未获授权"))
    return servable


def _too_large(call: _Call) -> GatewayRefusal:
    """Log and return the refusal of an answer over the size or record limit (422, ``too_large``)."""
    return call.refuse(422, "too_large", _("应答超出共享交换网关的大小限制，请减少信息项或记录数"))


def _reads(call: _Call, target: _Target, records: list[lookups.FoundRecord], fields: list[str], channel: str):
    """The registry access-log rows of the records served (the fields each record has among ``fields``)."""
    return [
        registry_services.access_log_entry(
            target.registry,
            record_id=record.pk,
            values=record.values,
            actor=call.principal,
            purpose=call.purpose,
            channel=channel,
            fields=sorted(name for name in fields if name in record.values),
            department=call.department,
        )
        for record in records
    ]


def _serve(call: _Call, target: _Target, served: list[str], records: list, answer: dict, *, channel="exchange"):
    """Check the answer's size, then log the call with the registry reads (committed together); fill ``exchange``."""
    answer["exchange"] = {"seq": 0, "hash": "0" * 64}  # the size of the real reference
    if _answer_size(answer) > max_response_bytes():
        raise _too_large(call)
    fields = [target.items[code]["registry_field"] for code in served]
    reads = _reads(call, target, records, fields, channel)
    entry = call.log("ok", status=200, records=[record.uid for record in records], reads=reads)
    answer["exchange"] = _exchange_ref(entry)
    return answer


def gateway_read(principal, resource_code: str, identifier: str, *, fields=None, request_id: str = "") -> dict:
    """Serve the granted items of one record to a client; log it (exchange log and registry access log).

    An answer larger than ``EXCHANGE_MAX_RESPONSE_BYTES`` is refused (422 ``too_large``) and logged.
    """
    # >>> Department data service (dgov.exchange.dataservice): proxied resources take the other backend.
    if dataservice.routes(resource_code):
        proxied = dataservice.proxy_read(principal, resource_code, identifier, fields=fields, request_id=request_id)
        if proxied is not None:
            return proxied
    # <<<
    call, target, served = _begin_read(principal, resource_code, fields, request_id)
    record = _find(call, target, identifier)
    if record is None:
        raise call.refuse(404, "record_not_found", _("未找到对应记录"), result="error")
    out = {code: record.values.get(target.items[code]["registry_field"]) for code in served}
    answer = {"resource": target.context.resource_code, "record": record.uid, "items": out}
    return _serve(call, target, served, [record], answer)


def gateway_read_many(
    principal, resource_code: str, identifiers: list[str], *, fields=None, request_id: str = ""
) -> dict:
    """Serve the granted items of several records (in the order asked; ``null`` where none exists); one log entry.

    More than ``EXCHANGE_MAX_RECORDS`` identifiers, or an answer larger than
    ``EXCHANGE_MAX_RESPONSE_BYTES``, is refused (422 ``too_large``) and logged.
    """
    # >>> Department data service (dgov.exchange.dataservice): proxied resources take the other backend.
    if dataservice.routes(resource_code):
        proxied = dataservice.proxy_read_many(
            principal, resource_code, identifiers, fields=fields, request_id=request_id
        )
        if proxied is not None:
            return proxied
    # <<<
    call, target, served = _begin_read(principal, resource_code, fields, request_id)
    if len(identifiers) > max_records():
        raise _too_large(call)
    rows, found = [], []
    for record in _find_all(call, target, identifiers):  # one statement for the whole batch
        if record is None:
            rows.append(None)
            continue
        values = record.values
        rows.append({"record": record.uid, "items": {c: values.get(target.items[c]["registry_field"]) for c in served}})
        found.append(record)
    answer = {"resource": target.context.resource_code, "records": rows}
    return _serve(call, target, served, found, answer)


def client_department(principal) -> Organization:
    """The consumer department of a discovery call: a client-credentials client with ``exchange:call``.

    Refusals raise :class:`GatewayRefusal` (403) without a log entry: discovery returns catalogue
    metadata only and is not an exchange of data.
    """
    department = department_of(principal)
    if not getattr(principal, "client_id", "") or department is None or getattr(principal, "scopes", None) is None:
        raise GatewayRefusal(403, "client_token_required", _("共享交换网关只接受部门应用的客户端凭证令牌"))
    if SCOPE not in principal.scopes:
        raise GatewayRefusal(403, "scope_missing", _("当前凭证没有 %(scope)s 权限范围") % {"scope": SCOPE})
    return department


def _comparable(definition, raw):
    """A stored or given value as something ordered (Decimal, date, datetime) or text."""
    if raw is None:
        return None
    if definition.type in ("integer", "decimal"):
        return Decimal(str(raw))
    if definition.type == "date":
        return datetime.date.fromisoformat(str(raw))
    if definition.type == "datetime":
        return datetime.datetime.fromisoformat(str(raw))
    return raw


def verify_answer(op: str, current, given) -> bool:
    """The answer of a verification: ``exists`` — ``current`` is not empty; ``eq``/``lt``/``gt`` — compared
    with ``given`` (False when there is no current value, or when the two cannot be compared)."""
    if op == "exists":
        return current not in (None, "", [], {})
    if current is None:
        return False
    try:
        if op == "eq":
            return current == given
        return current < given if op == "lt" else current > given
    except TypeError:  # values of different kinds (a department's service gave a date where a number was declared)
        return False


def gateway_verify(
    principal, resource_code: str, *, identifier: str, item: str, op: str, value=None, request_id: str = ""
) -> dict:
    """Answer a yes/no question about one item of one record (核验) without returning the value."""
    # >>> Department data service (dgov.exchange.dataservice): proxied resources take the other backend.
    if dataservice.routes(resource_code):
        proxied = dataservice.proxy_verify(
            principal, resource_code, identifier=identifier, item=item, op=op, value=value, request_id=request_id
        )
        if proxied is not None:
            return proxied
    # <<<
    call = _Call(principal, "verify", resource_code, request_id)
    target = _check_call(call, [item])
    if item not in target.items or item not in target.granted:
        raise call.refuse(403, "item_not_granted", _("所请求的信息项未获授权"))
    if op not in VERIFY_OPS:
        raise call.refuse(400, "bad_operator", _("不支持的核验操作"), result="error")
    registry_field = target.items[item]["registry_field"]
    definition = field_map(registry_services.registry_fields(target.registry)).get(registry_field)
    if definition is None:
        raise call.refuse(404, "no_data_service", _("该信息资源不提供接口数据服务"), result="error")
    if op in ("lt", "gt") and definition.type not in _ORDERED_TYPES:
        raise call.refuse(400, "bad_operator", _("该信息项不支持大小比较"), result="error")
    given = None
    if op != "exists":
        try:
            given = _comparable(definition, clean_value(definition, value))
        except (RecordValidationError, ValueError, InvalidOperation):
            raise call.refuse(400, "bad_value", _("核验值格式不正确"), result="error") from None
        if given is None:
            raise call.refuse(400, "bad_value", _("核验值格式不正确"), result="error")
    record = _find(call, target, identifier)
    if record is None:
        return {"result": False, "exchange": _exchange_ref(call.log("ok", code="no_record"))}
    stored = record.values.get(registry_field)
    try:
        current = _comparable(definition, stored)
    except (ValueError, InvalidOperation):
        current = None
    answer = verify_answer(op, current, given)
    entry = call.log(
        "ok", records=[record.uid], reads=_reads(call, target, [record], [registry_field], "exchange-verify")
    )
    return {"result": bool(answer), "exchange": _exchange_ref(entry)}
