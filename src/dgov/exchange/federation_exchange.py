"""Federated exchange (级联交换): catalogue, share requests and data calls between dgov instances.

Built on the signed protocol of :mod:`dgov.exchange.federation`. Each instance plays both parts:

Provider side (answering a peer; ``/api/v1/federation/…``)
    :func:`catalogue_document` — the published resources offering a data service, with their
    servable items (metadata only); :func:`receive_request` — a peer's department files a share
    request, which becomes an ordinary :class:`~dgov.exchange.models.ShareRequest` whose consumer
    is the department's local *mirror*, decided like any other (at once for 无条件共享, in the
    provider's inbox for 有条件共享); :func:`request_statuses` — the peer polls its requests;
    :func:`serve` — a data call of a peer's client, answered by the local gateway functions
    (``services.gateway_read`` / ``gateway_verify``) with a :class:`PeerPrincipal` for the mirror,
    so grant checks, item filtering, rate limits and the exchange and access logs apply unchanged.

Consumer side (calling a peer)
    :func:`sync_catalogue` pulls a peer's catalogue into :class:`~dgov.exchange.models.RemoteResource`;
    :func:`request_remote` files an official's request with the peer (a
    :class:`~dgov.exchange.models.RemoteShareRequest` keeps it here); :func:`sync_requests` polls
    their status; :func:`remote_read` / :func:`remote_verify` serve a local client's data call to
    a peer's resource through this instance's gateway (logged here, forwarded signed, logged there).
    :func:`sync_due` is the worker's periodic job (``FEDERATION_SYNC_SECONDS``, default 300).

Exchange-log operations of federation: ``fed-catalog``, ``fed-request``, ``fed-status`` on both
sides; data calls are ``read``/``verify`` as on the local gateway. Entries of one exchange carry the
same ``request_id`` on both sides (the signed request's nonce). A peer's department appears as its
mirror code ``<peer>:<department>``, a peer's client as ``<peer>:<client id>``.
"""

from __future__ import annotations

import datetime
import logging
import re
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from dgov.catalog import services as catalog_services
from dgov.exchange import discovery, federation, log, services
from dgov.exchange.federation import API_PREFIX, IncomingCall, MirrorError, PeerError, Refused, log_federation
from dgov.exchange.models import ItemMode, Peer, RemoteResource, RemoteShareRequest, ShareRequest
from dgov.kernel.models import Organization
from dgov.kernel.services import audit

__all__ = [
    "CATALOG_FORMAT",
    "PeerPrincipal",
    "catalogue_document",
    "receive_request",
    "remote_read",
    "remote_requests_of",
    "remote_resources",
    "remote_verify",
    "request_remote",
    "request_statuses",
    "serve",
    "sync_catalogue",
    "sync_due",
    "sync_peer",
    "sync_requests",
]

CATALOG_FORMAT = "dgov-federation-catalog-v1"
MAX_IDS = 100
Status = ShareRequest.Status
logger = logging.getLogger(__name__)
_CODE = re.compile(r"[a-z_]{1,32}")


def _clip(value, limit: int) -> str:
    """Text of at most ``limit`` characters ('' for None and non-scalars)."""
    return str(value)[:limit] if isinstance(value, (str, int, float)) else ""


def _iso(value) -> str | None:
    """ISO text of a date or datetime (None stays None)."""
    return value.isoformat() if value is not None else None


# --- Provider side --------------------------------------------------------------------------------


def catalogue_document() -> dict:
    """The resources this instance offers peers: published, shareable, with a data service; metadata only."""
    out = []
    for resource, items in discovery.service_resources():
        snapshot = resource.published_version.snapshot
        out.append(
            {
                "code": resource.code,
                "name": snapshot.get("name", resource.name),
                "provider": {"code": resource.provider.code, "name": resource.provider.name},
                "sharing_type": snapshot.get("sharing_type", resource.sharing_type),
                "sharing_conditions": snapshot.get("sharing_conditions", ""),
                "summary": snapshot.get("summary", ""),
                "version": resource.published_version.number,
                "items": [
                    {
                        "code": item["code"],
                        "name": item.get("name", ""),
                        "data_type": item.get("data_type", ""),
                        "sharing_type": item.get("sharing_type", ""),
                    }
                    for item in items
                ],
            }
        )
    return {"format": CATALOG_FORMAT, "instance": federation.instance_code(), "resources": out}


def _status_document(request: ShareRequest) -> dict:
    """A share request as its (remote) consumer sees it: status, decision and the grant."""
    grant = getattr(request, "grant", None) if request.status == Status.GRANTED else None
    return {
        "id": request.pk,
        "resource": request.resource.code,
        "status": request.status,
        "reason": request.reason,
        "due_on": _iso(request.due_on),
        "decided_at": _iso(request.decided_at),
        "grant": None
        if grant is None
        else {
            "items": grant.items,
            "valid_from": _iso(grant.valid_from),
            "valid_until": _iso(grant.valid_until),
            "state": services.grant_state(grant),
        },
    }


def _wanted_items(raw, offered: set[str]) -> tuple[dict[str, str], list[str]]:
    """``({code: mode}, errors)`` of requested items against the offered ones."""
    errors = []
    wanted = {str(k)[:64]: str(v)[:8] for k, v in raw.items()} if isinstance(raw, dict) else {}
    if not wanted:
        errors.append(_("至少选择一个信息项"))
    unknown = sorted(code for code in wanted if code not in offered)
    if unknown:
        errors.append(_("信息项不存在：%(codes)s") % {"codes": "、".join(unknown[:20])})
    if any(mode not in ItemMode.values for mode in wanted.values()):
        errors.append(_("信息项的使用方式须为 full 或 verify"))
    return wanted, errors


def _period(start, end, errors: list[str]) -> tuple[datetime.date, datetime.date | None]:
    """The period of a request (start defaults to today); appends an error when it is not valid."""
    today = timezone.localdate()
    if isinstance(start, str):
        start = parse_date(start[:10]) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", start[:10]) else None
    if isinstance(end, str):
        end = parse_date(end[:10]) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", end[:10]) else None
    start = start or today
    if end is None or end < start or end < today:
        errors.append(_("使用期限止须不早于起始日和今天"))
    return start, end


def receive_request(call: IncomingCall, payload: dict) -> dict:
    """A peer's department files a share request here; it becomes a ShareRequest of the department's mirror.

    Decided like a local request (无条件 granted at once, 有条件 to the provider's inbox with its
    working-day deadline, 不予 refused with the catalogue's basis). Audited ``exchange.request.<status>``
    with the peer as the actor; logged ``fed-request``. Refusals raise :class:`Refused` (logged).
    """
    peer = call.peer
    payload = payload if isinstance(payload, dict) else {}
    department = payload.get("consumer") if isinstance(payload.get("consumer"), dict) else {}
    entry = {
        "peer_code": peer.code,
        "consumer_code": federation.mirror_code(peer, _clip(department.get("code"), 32)),
        "resource_code": _clip(payload.get("resource"), 40),
        "request_id": call.nonce,
    }

    def refuse(status: int, code: str, message: str, errors=()) -> Refused:
        log_federation("fed-request", result="denied", code=code, status=status, **entry)
        return Refused(status, code, message, errors=list(errors))

    resource = catalog_services.find_resource(entry["resource_code"]) if entry["resource_code"] else None
    offered = {item["code"] for item in discovery._served_items(resource)} if resource is not None else set()
    available = services.requestable_items(resource) if offered else {}
    if not offered or not available:
        raise refuse(404, "resource_not_found", _("信息资源不存在或未发布"))
    entry["provider_code"] = resource.provider.code
    wanted, errors = _wanted_items(payload.get("items"), offered)
    entry["fields"] = sorted(wanted)
    purpose = _clip(payload.get("purpose"), 1000).strip()
    legal_basis = _clip(payload.get("legal_basis"), 1000).strip()
    if not purpose:
        errors.append(_("须写明用途"))
    if not legal_basis:
        errors.append(_("须写明法律依据"))
    period_start, period_end = _period(payload.get("period_start"), payload.get("period_end"), errors)
    if errors:
        raise refuse(400, "invalid_request", _("共享申请不符合要求"), errors)
    try:
        mirror = federation.ensure_mirror(peer, department)
    except MirrorError as exc:
        raise refuse(409 if exc.code == "mirror_conflict" else 400, exc.code, exc.message) from None
    entry["consumer_code"], entry["purpose"] = mirror.code, purpose
    with transaction.atomic():
        request = services.file_request(
            resource,
            consumer=mirror,
            available=available,
            wanted=wanted,
            purpose=purpose,
            legal_basis=legal_basis,
            period_start=period_start,
            period_end=period_end,
            requested_by=None,
            audit_actor=f"peer:{peer.code}",
            detail={"peer": peer.code, "requested_by": _clip(payload.get("requested_by"), 150)},
        )
        if request.status == Status.GRANTED:
            entry["grant_id"] = request.grant.pk
        log_federation("fed-request", result="ok", code=request.status, status=201, **entry)
    return _status_document(ShareRequest.objects.select_related("resource").get(pk=request.pk))


def request_statuses(call: IncomingCall, ids) -> dict:
    """The status of a peer's requests (only those of its own mirrors; other ids are left out); logged."""
    wanted = [int(i) for i in ids if isinstance(i, int) or (isinstance(i, str) and i.isdigit())][:MAX_IDS]
    rows = (
        ShareRequest.objects.filter(
            pk__in=wanted, consumer__kind=federation.MIRROR_KIND, consumer__code__startswith=f"{call.peer.code}:"
        )
        .select_related("resource", "grant")
        .order_by("pk")
    )
    out = [_status_document(row) for row in rows]
    log_federation(
        "fed-status",
        result="ok",
        status=200,
        peer_code=call.peer.code,
        consumer_code=call.peer.code,
        request_id=call.nonce,
    )
    return {"requests": out}


@dataclass(frozen=True)
class PeerPrincipal:
    """A peer's client calling the gateway for the peer's department (its mirror), as the gateway functions take it."""

    client_id: str
    organization: Organization
    scopes: frozenset = field(default_factory=lambda: frozenset({services.SCOPE}))

    is_authenticated = True

    def audit_identity(self) -> tuple[str, str, str]:
        """How the audit log names this principal."""
        return "peer", self.client_id, f"peer:{self.client_id}"


def _data_request(payload, operation: str) -> dict:
    """The checked fields of a forwarded data call; ValueError when malformed."""
    if not isinstance(payload, dict):
        raise ValueError("payload")
    consumer = payload.get("consumer") if isinstance(payload.get("consumer"), dict) else {}
    out = {
        "consumer": _clip(consumer.get("code"), 32),
        "client": _clip(payload.get("client"), 48),
        "resource": _clip(payload.get("resource"), 40),
        "identifier": _clip(payload.get("identifier"), 64),
    }
    if not all(out.values()):
        raise ValueError("missing")
    if operation == "read":
        items = payload.get("items") or []
        if not isinstance(items, list) or len(items) > 200 or not all(isinstance(i, str) for i in items):
            raise ValueError("items")
        out["items"] = [i[:64] for i in items]
    else:
        value = payload.get("value")
        if payload.get("op") not in services.VERIFY_OPS or not isinstance(payload.get("item"), str):
            raise ValueError("op")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ValueError("value")
        out.update(item=payload["item"][:64], op=payload["op"], value=value)
    return out


def serve(call: IncomingCall, operation: str, payload) -> dict:
    """Answer a peer client's data call (``read``/``verify``) through the local gateway for the department's mirror.

    Raises :class:`Refused` (mirror unknown: 403 ``no_grant``; malformed: 400) or the gateway's
    :class:`~dgov.exchange.services.GatewayRefusal` (logged by the gateway).
    """
    peer = call.peer
    try:
        asked = _data_request(payload, operation)
    except ValueError:
        log_federation(
            operation, result="error", code="bad_request", status=400, peer_code=peer.code, request_id=call.nonce
        )
        raise Refused(400, "bad_request", _("级联数据请求格式不正确")) from None
    client_id = f"{peer.code}:{asked['client']}"[:64]  # the rate-limit bucket and log column hold 64
    mirror = federation.find_mirror(peer, asked["consumer"])
    if mirror is None:
        log_federation(
            operation,
            result="denied",
            code="no_grant",
            status=403,
            consumer_code=federation.mirror_code(peer, asked["consumer"]),
            client_id=client_id,
            resource_code=asked["resource"],
            request_id=call.nonce,
        )
        raise Refused(403, "no_grant", _("没有该信息资源的有效共享授权"))
    principal = PeerPrincipal(client_id=client_id, organization=mirror)
    if operation == "read":
        return services.gateway_read(
            principal, asked["resource"], asked["identifier"], fields=asked["items"] or None, request_id=call.nonce
        )
    return services.gateway_verify(
        principal,
        asked["resource"],
        identifier=asked["identifier"],
        item=asked["item"],
        op=asked["op"],
        value=asked["value"],
        request_id=call.nonce,
    )


# --- Consumer side: catalogue -------------------------------------------------------------------------


def _log_call(operation: str, peer: Peer, *, result: str, code: str = "", status: int = 200, **fields):
    """Log this instance's side of a call to a peer (provider ``<peer>`` unless given)."""
    fields.setdefault("provider_code", peer.code)
    return log.append(operation=operation, result=result, code=code, status=status, **fields)


def _clean_items(raw) -> list[dict]:
    """A peer's catalogue items, clipped to what this instance stores."""
    out = []
    for item in raw if isinstance(raw, list) else ():
        if isinstance(item, dict) and _clip(item.get("code"), 64):
            out.append(
                {
                    "code": _clip(item.get("code"), 64),
                    "name": _clip(item.get("name"), 200),
                    "data_type": _clip(item.get("data_type"), 4),
                    "sharing_type": _clip(item.get("sharing_type"), 16),
                }
            )
    return out[:500]


@dataclass
class SyncReport:
    """What one catalogue pull changed."""

    created: int = 0
    updated: int = 0
    withdrawn: int = 0

    @property
    def changed(self) -> bool:
        """Whether anything changed."""
        return bool(self.created or self.updated or self.withdrawn)


def sync_catalogue(peer: Peer, *, actor=None) -> SyncReport:
    """Pull a peer's catalogue into RemoteResource (new, changed, withdrawn); logged ``fed-catalog``, audited on change.

    Raises PeerError when the peer gives no verified catalogue (the failure is logged).
    """
    try:
        answer = federation.call_peer(peer, "GET", API_PREFIX + "catalog")
    except PeerError as exc:
        _log_call("fed-catalog", peer, result="error", code=exc.code, status=502)
        raise
    data = answer.data or {}
    if answer.status != 200 or data.get("format") != CATALOG_FORMAT or data.get("instance") != peer.code:
        _log_call(
            "fed-catalog",
            peer,
            result="denied" if answer.status < 500 else "error",
            code=answer.code or "peer_error",
            status=answer.status,
            request_id=answer.nonce,
        )
        raise PeerError(answer.code or "peer_error")
    now = timezone.now()
    report = SyncReport()
    entries = [e for e in data.get("resources") or [] if isinstance(e, dict) and _clip(e.get("code"), 40)]
    with transaction.atomic():
        existing = {r.code: r for r in RemoteResource.objects.select_for_update().filter(peer=peer)}
        seen = set()
        for raw in entries[:10_000]:
            provider = raw.get("provider") if isinstance(raw.get("provider"), dict) else {}
            values = {
                "name": _clip(raw.get("name"), 200),
                "provider_code": _clip(provider.get("code"), 32),
                "provider_name": _clip(provider.get("name"), 128),
                "sharing_type": _clip(raw.get("sharing_type"), 16),
                "sharing_conditions": _clip(raw.get("sharing_conditions"), 2000),
                "summary": _clip(raw.get("summary"), 2000),
                "items": _clean_items(raw.get("items")),
                "version": raw.get("version") if isinstance(raw.get("version"), int) and raw["version"] > 0 else 1,
            }
            code = _clip(raw["code"], 40)
            seen.add(code)
            row = existing.get(code)
            if row is None:
                RemoteResource.objects.create(peer=peer, code=code, fetched_at=now, **values)
                report.created += 1
                continue
            changed = row.withdrawn_at is not None or any(getattr(row, k) != v for k, v in values.items())
            for name, value in values.items():
                setattr(row, name, value)
            row.fetched_at, row.withdrawn_at = now, None
            row.save()
            report.updated += int(changed)
        for code, row in existing.items():
            if code not in seen and row.withdrawn_at is None:
                row.withdrawn_at = now
                row.save(update_fields=["withdrawn_at"])
                report.withdrawn += 1
        if report.changed:
            audit.record(
                "exchange.peer.sync",
                actor=actor,
                target=peer,
                detail={"created": report.created, "updated": report.updated, "withdrawn": report.withdrawn},
            )
        _log_call("fed-catalog", peer, result="ok", status=200, request_id=answer.nonce)
    return report


def remote_resources(*, query: str = "", peer: Peer | None = None) -> QuerySet[RemoteResource]:
    """Peers' resources officials may request (not withdrawn, peer active), by peer and code; ``query`` narrows."""
    rows = RemoteResource.objects.filter(withdrawn_at__isnull=True, peer__status=Peer.Status.ACTIVE).select_related(
        "peer"
    )
    if peer is not None:
        rows = rows.filter(peer=peer)
    query = (query or "").strip()[:100]
    if query:
        rows = rows.filter(Q(name__icontains=query) | Q(code__icontains=query) | Q(provider_name__icontains=query))
    return rows.order_by("peer__code", "code")


def find_remote_resource(peer_code: str, resource_code: str) -> RemoteResource | None:
    """A requestable resource of an active peer, or None."""
    return remote_resources().filter(peer__code=peer_code, code=resource_code).first()


# --- Consumer side: requests ----------------------------------------------------------------------------


def remote_requests_of(department: Organization | None) -> QuerySet[RemoteShareRequest]:
    """A department's requests filed with peers, newest first."""
    if department is None:
        return RemoteShareRequest.objects.none()
    return RemoteShareRequest.objects.filter(consumer=department).select_related("peer")


def _unavailable() -> ValidationError:
    """The error shown when a peer gives no verified answer."""
    return ValidationError(_("对端平台暂时无法访问或应答无效，请稍后再试"), code="peer_unavailable")


def request_remote(
    remote: RemoteResource,
    *,
    actor,
    items,
    purpose: str,
    legal_basis: str,
    period_end: datetime.date | None,
    period_start: datetime.date | None = None,
) -> RemoteShareRequest:
    """An official files a request for a peer's resource: forwarded signed, kept here with the peer's answer."""
    consumer = services.department_of(actor) if services._is_official(actor) else None
    if consumer is None or federation.is_mirror(consumer):
        with transaction.atomic():
            audit.record(
                "exchange.remote_request.submit",
                actor=actor if hasattr(actor, "get_username") else str(actor),
                target=remote.peer,
                outcome="denied",
                detail={"resource": remote.code},
            )
        raise PermissionDenied(_("只有部门工作人员可以申请共享"))
    peer = remote.peer
    if peer.status != Peer.Status.ACTIVE or remote.withdrawn_at is not None:
        raise ValidationError({"resource": [_("该信息资源尚未发布或已停用")]}, code="not_published")
    offered = {item["code"] for item in remote.items}
    wanted, errors = _wanted_items(services._normalize_items(items), offered)
    purpose, legal_basis = (purpose or "").strip()[:1000], (legal_basis or "").strip()[:1000]
    if not purpose:
        errors.append(_("须写明用途"))
    if not legal_basis:
        errors.append(_("须写明法律依据"))
    period_start, period_end = _period(period_start, period_end, errors)
    if errors:
        raise ValidationError(errors, code="invalid_request")
    payload = {
        "consumer": {"code": consumer.code, "name": consumer.name, "uscc": consumer.uscc},
        "resource": remote.code,
        "items": wanted,
        "purpose": purpose,
        "legal_basis": legal_basis,
        "period_start": period_start.isoformat(),
        "period_end": period_end.isoformat(),
        "requested_by": actor.get_username(),
    }
    entry = {
        "consumer_code": consumer.code,
        "client_id": f"user:{actor.get_username()}"[:64],
        "provider_code": federation.mirror_code(peer, remote.provider_code)[:32],
        "resource_code": remote.code,
        "fields": sorted(wanted),
        "purpose": purpose,
    }
    try:
        answer = federation.call_peer(peer, "POST", API_PREFIX + "requests", payload=payload)
    except PeerError as exc:
        _log_call("fed-request", peer, result="error", code=exc.code, status=502, **entry)
        raise _unavailable() from None
    entry["request_id"] = answer.nonce
    data = answer.data or {}
    if answer.status != 201 or not isinstance(data.get("id"), int) or data.get("status") not in Status.values:
        _log_call(
            "fed-request",
            peer,
            result="denied" if 400 <= answer.status < 500 else "error",
            code=answer.code or "peer_error",
            status=answer.status,
            **entry,
        )
        messages = [_clip(m, 300) for m in data.get("errors") or [] if isinstance(m, str)][:20]
        if answer.status == 400 and messages:
            raise ValidationError(messages, code="invalid_request")
        raise ValidationError(
            _("对端平台未受理该申请（%(code)s）") % {"code": answer.code or answer.status},
            code=answer.code or "peer_refused",
        )
    now = timezone.now()
    with transaction.atomic():
        row = RemoteShareRequest(
            consumer=consumer,
            peer=peer,
            resource_code=remote.code,
            resource_name=remote.name,
            provider_code=remote.provider_code,
            provider_name=remote.provider_name,
            items=wanted,
            purpose=purpose,
            legal_basis=legal_basis,
            period_start=period_start,
            period_end=period_end,
            remote_id=data["id"],
            requested_by=actor,
            submitted_at=now,
            synced_at=now,
            status=Status.SUBMITTED,
        )
        _apply_status(row, data)
        row.save()
        audit.record(
            "exchange.remote_request.submit",
            actor=actor,
            target=row,
            detail={
                "peer": peer.code,
                "resource": remote.code,
                "items": wanted,
                "remote_id": row.remote_id,
                "status": row.status,
            },
        )
        _log_call("fed-request", peer, result="ok", code=row.status, status=201, **entry)
    return row


def _apply_status(row: RemoteShareRequest, data: dict) -> bool:
    """Copy a peer's status document onto a remote request; whether anything changed."""
    grant = data.get("grant") if isinstance(data.get("grant"), dict) else {}
    grant = (
        {
            "items": {str(k)[:64]: str(v)[:8] for k, v in grant.get("items", {}).items()}
            if isinstance(grant.get("items"), dict)
            else {},
            "valid_from": _clip(grant.get("valid_from"), 40),
            "valid_until": _clip(grant.get("valid_until"), 40),
            "state": _clip(grant.get("state"), 16),
        }
        if grant
        else {}
    )
    due_on = parse_date(_clip(data.get("due_on"), 10)) if data.get("due_on") else None
    decided = data.get("decided_at")
    decided_at = parse_datetime(decided[:40]) if isinstance(decided, str) else None
    new = {
        "status": data.get("status") if data.get("status") in Status.values else row.status,
        "reason": _clip(data.get("reason"), 2000),
        "due_on": due_on,
        "decided_at": decided_at,
        "grant": grant,
    }
    changed = any(getattr(row, k) != v for k, v in new.items())
    for name, value in new.items():
        setattr(row, name, value)
    return changed


def _open_requests(peer: Peer) -> list[RemoteShareRequest]:
    """Requests whose status may still change at the peer: submitted, or granted with a grant not yet ended."""
    rows = RemoteShareRequest.objects.filter(peer=peer, status__in=[Status.SUBMITTED, Status.GRANTED])
    return [
        r for r in rows if r.status == Status.SUBMITTED or (r.grant or {}).get("state") not in ("revoked", "expired")
    ]


def sync_requests(peer: Peer) -> int:
    """Poll a peer for the status of this instance's open requests; update and audit changes; how many changed."""
    rows = _open_requests(peer)
    changed = 0
    for start in range(0, len(rows), MAX_IDS):
        chunk = {row.remote_id: row for row in rows[start : start + MAX_IDS]}
        path = API_PREFIX + "requests?ids=" + ",".join(str(i) for i in sorted(chunk))
        try:
            answer = federation.call_peer(peer, "GET", path)
        except PeerError as exc:
            _log_call("fed-status", peer, result="error", code=exc.code, status=502)
            raise
        data = answer.data or {}
        if answer.status != 200 or not isinstance(data.get("requests"), list):
            _log_call(
                "fed-status",
                peer,
                result="error",
                code=answer.code or "peer_error",
                status=answer.status,
                request_id=answer.nonce,
            )
            raise PeerError(answer.code or "peer_error")
        now = timezone.now()
        with transaction.atomic():
            for doc in data["requests"]:
                row = chunk.get(doc.get("id")) if isinstance(doc, dict) else None
                if row is None:
                    continue
                before = row.status, (row.grant or {}).get("state")
                if _apply_status(row, doc):
                    changed += 1
                    audit.record(
                        "exchange.remote_request.update",
                        actor=None,
                        target=row,
                        detail={
                            "peer": peer.code,
                            "from": list(before),
                            "to": [row.status, (row.grant or {}).get("state")],
                        },
                    )
                row.synced_at = now
                row.save()
            _log_call("fed-status", peer, result="ok", status=200, request_id=answer.nonce)
    return changed


def sync_peer(peer: Peer, *, actor=None) -> dict:
    """Pull a peer's catalogue and poll its requests; records the outcome on the peer. ``{"ok", "code", ...}``."""
    outcome = {"ok": True, "code": "", "catalogue": None, "requests": 0}
    try:
        report = sync_catalogue(peer, actor=actor)
        outcome["catalogue"] = {"created": report.created, "updated": report.updated, "withdrawn": report.withdrawn}
        outcome["requests"] = sync_requests(peer)
    except PeerError as exc:
        outcome["ok"], outcome["code"] = False, exc.code
    Peer.objects.filter(pk=peer.pk).update(
        last_sync_at=timezone.now(), last_sync_ok=outcome["ok"], last_sync_code=outcome["code"][:40]
    )
    return outcome


_last_purge = 0.0


def sync_due(now: datetime.datetime | None = None) -> int:
    """Worker job: sync active peers not synced for ``FEDERATION_SYNC_SECONDS``, forget old nonces; peers synced."""
    global _last_purge
    interval = float(getattr(settings, "FEDERATION_SYNC_SECONDS", 300))
    now = now or timezone.now()
    if time.monotonic() - _last_purge >= 60:
        _last_purge = time.monotonic()
        federation.purge_nonces(now)
    cutoff = now - datetime.timedelta(seconds=interval)
    due = Peer.objects.filter(status=Peer.Status.ACTIVE).filter(
        Q(last_sync_at__isnull=True) | Q(last_sync_at__lte=cutoff)
    )
    done = 0
    for peer in due:
        outcome = sync_peer(peer)
        if not outcome["ok"]:
            logger.warning("federation sync with %s failed: %s", peer.code, outcome["code"])
        done += 1
    return done


# --- Consumer side: data calls ----------------------------------------------------------------------------


_PEER_AUTH_CODES = frozenset(
    {"signature_missing", "signature_invalid", "peer_suspended", "timestamp_out_of_window", "nonce_replayed"}
)
_MESSAGES = {
    "peer_not_found": lambda: _("级联对端不存在"),
    "peer_suspended": lambda: _("已暂停与该级联对端的交换"),
    "resource_not_found": lambda: _("信息资源不存在或未发布"),
    "peer_unavailable": lambda: _("级联对端暂时无法访问，请稍后再试"),
    "peer_answer_invalid": lambda: _("级联对端的应答签名无效"),
    "peer_refused": lambda: _("级联对端拒绝了本平台的请求"),
    "no_grant": lambda: _("没有该信息资源的有效共享授权"),
    "grant_expired": lambda: _("没有该信息资源的有效共享授权"),
    "grant_revoked": lambda: _("没有该信息资源的有效共享授权"),
    "item_not_granted": lambda: _("所请求的信息项未获授权"),
    "record_not_found": lambda: _("未找到对应记录"),
    "rate_limited": lambda: _("调用过于频繁，请稍后再试"),
}


def _message(code: str) -> str:
    """The message shown for a refusal code (never the peer's own text)."""
    make = _MESSAGES.get(code)
    return make() if make else _("级联对端未能完成请求")


class _RemoteCall(services._Call):
    """This instance's log context of one forwarded data call: the gateway's, with this instance's own messages."""

    def refuse(
        self, status: int, code: str, message: str = "", result: str = "denied", *, log_code: str = ""
    ) -> services.GatewayRefusal:
        """Log a refusal and return the exception to raise (the message is never the peer's own text)."""
        return super().refuse(status, code, message or _message(code), result, log_code=log_code)


def _remote_call(principal, peer_code: str, operation: str, resource_code: str, body: dict, fields: list[str]):
    """Check, log and forward a local client's data call to a peer; the peer's verified answer data."""
    call = _RemoteCall(principal, operation, resource_code, "", provider_code=str(peer_code)[:32])
    department = services._check_client(call, fields)  # token, scope and rate limit, as for local resources
    client_id = call.client_id
    peer = federation.find_peer(peer_code)
    if peer is None:
        raise call.refuse(404, "peer_not_found")
    if peer.status != Peer.Status.ACTIVE:
        raise call.refuse(403, "peer_suspended")
    remote = RemoteResource.objects.filter(peer=peer, code=resource_code, withdrawn_at__isnull=True).first()
    if remote is None:
        raise call.refuse(404, "resource_not_found")
    call.provider_code = federation.mirror_code(peer, remote.provider_code)[:32]
    granted = (
        RemoteShareRequest.objects.filter(
            consumer=department, peer=peer, resource_code=resource_code, status=Status.GRANTED
        )
        .values_list("purpose", flat=True)
        .first()
    )
    call.purpose = granted or ""
    payload = {"consumer": {"code": department.code}, "client": client_id, "resource": resource_code, **body}
    try:
        answer = federation.call_peer(peer, "POST", f"{API_PREFIX}gateway/{operation}", payload=payload)
    except PeerError as exc:
        raise call.refuse(502, exc.code, result="error") from None
    call.request_id = answer.nonce
    data = answer.data or {}
    if answer.status == 200:
        return call, peer, data
    code = answer.code or "peer_error"
    if answer.status == 401 or code in _PEER_AUTH_CODES:
        raise call.refuse(502, "peer_refused", result="error", log_code=code)
    status = answer.status if answer.status in (400, 403, 404, 409, 422, 429) else 502
    raise call.refuse(status, code, result="denied" if status in (403, 429) else "error")


def _peer_ref(peer: Peer, data: dict) -> dict | None:
    """The peer's exchange-log reference of the call (instance, seq, hash) as it stated it."""
    ref = data.get("exchange") if isinstance(data.get("exchange"), dict) else None
    if ref is None:
        return None
    return {"instance": peer.code, "seq": ref.get("seq"), "hash": _clip(ref.get("hash"), 64)}


def remote_read(principal, peer_code: str, resource_code: str, identifier: str, *, fields=None) -> dict:
    """A local client reads granted items of a record of a peer's resource: logged here, forwarded, logged there.

    Refusals raise :class:`~dgov.exchange.services.GatewayRefusal` (logged here): local checks
    (token, scope, rate limit, peer, resource), the peer's refusals with their status and code
    (``no_grant``, ``item_not_granted`` …), and 502 ``peer_unavailable`` / ``peer_answer_invalid`` /
    ``peer_refused`` when the peer gives no verified answer or refuses this instance itself.
    """
    requested = sorted({str(f)[:64] for f in fields or ()})
    call, peer, data = _remote_call(
        principal, peer_code, "read", resource_code, {"identifier": identifier, "items": requested}, requested
    )
    items = data.get("items")
    if not isinstance(items, dict):
        raise call.refuse(502, "peer_answer_invalid", result="error")
    record = _clip(data.get("record"), 64)
    call.fields = sorted(items)
    entry = call.log("ok", records=[record] if record else [])
    return {
        "resource": resource_code,
        "record": record,
        "items": items,
        "exchange": services._exchange_ref(entry),
        "peer_exchange": _peer_ref(peer, data),
    }


def remote_verify(principal, peer_code: str, resource_code: str, *, identifier: str, item: str, op: str, value=None):
    """A local client's verification (核验) of an item of a peer's resource; the peer answers yes or no."""
    call, peer, data = _remote_call(
        principal,
        peer_code,
        "verify",
        resource_code,
        {"identifier": identifier, "item": item, "op": op, "value": value},
        [str(item)[:64]],
    )
    if not isinstance(data.get("result"), bool):
        raise call.refuse(502, "peer_answer_invalid", result="error")
    entry = call.log("ok")
    return {
        "result": data["result"],
        "exchange": services._exchange_ref(entry),
        "peer_exchange": _peer_ref(peer, data),
    }
