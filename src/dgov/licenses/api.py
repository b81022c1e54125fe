"""The e-licence API (电子证照接口) at /api/v1/licences/: the catalogue, issuance and licence operations.

=======  ==================================  ===================================================
method   path                                what
=======  ==================================  ===================================================
GET      ``/types``                          the licence catalogue (证照目录)
GET      ``/types/{code}``                   one licence type with its items, validity and layout
GET      ``/``                               licences in the caller's scope: filters, paging
POST     ``/search``                         licences of a holder (ID number or USCC in the body)
POST     ``/``                               issue one licence (201)
POST     ``/bulk``                           issue many, all or nothing (201; 400 lists every bad row)
GET      ``/{identifier}``                   one licence, holder data masked (audited)
GET      ``/{identifier}/credential``        its current credential, ``application/vc+jwt`` (audited)
POST     ``/{identifier}/vary``              change data items (变更)
POST     ``/{identifier}/renew``             extend validity (延续)
POST     ``/{identifier}/suspend``           suspend (暂停)
POST     ``/{identifier}/resume``            lift a suspension (恢复)
POST     ``/{identifier}/revoke``            revoke (撤销)
=======  ==================================  ===================================================

Callers: officials and administrators (session or bearer token) and API clients (HTTP Basic or a
client-credentials token) holding ``licences:read`` (reads) or ``licences:issue`` (issuance and
changes; it implies reading). Clients act for their department: they issue in its name and see
the licences it issued; the provincial data administration sees all. Another department's type
or licence is refused with 403 (audited). Errors are problem+json: 400 for data the services
refuse (every problem listed in ``errors``), 404 for unknown types and licences, 422 for bodies
that do not match the schema.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from dgov.api.auth import bearer_auth, client_auth, session_auth
from dgov.api.problems import problem_response
from dgov.licenses import access, catalogue, services, wallet
from dgov.licenses.models import Licence, LicenceType, LicenceUse
from dgov.registry.services import department_of

router = Router(tags=["licences"], auth=[client_auth, bearer_auth, session_auth])

READ_SCOPE = "licences:read"
ISSUE_SCOPE = "licences:issue"
MAX_LIMIT = 500


# --- Schemas -------------------------------------------------------------------------------------------


class TypeOut(Schema):
    """A licence type of the catalogue."""

    code: str
    name: str
    name_en: str
    description: str
    department: str
    department_name: str
    issuer_kind: str
    holder_kind: str
    items: list[dict[str, Any]]
    validity: dict[str, int]
    layout: dict[str, Any]
    sharing_type: str
    version: int
    status: str


class LicenceOut(Schema):
    """A licence as the API shows it: holder data and personal items masked."""

    identifier: str
    type: str
    type_name: str
    type_version: int
    number: str
    issuer: str
    issuer_name: str
    holder_kind: str
    holder_name: str
    holder_id: str
    issued_at: str
    valid_from: str
    valid_until: str | None
    status: str
    status_reason: str
    version: int
    source: str


class LicenceDetail(LicenceOut):
    """A licence with its (masked) data items and history."""

    data: dict[str, Any]
    events: list[dict[str, Any]]
    credential_id: str


class LicencePage(Schema):
    """A page of licences."""

    count: int
    limit: int
    offset: int
    results: list[LicenceOut]


class IssueIn(Schema):
    """One licence to issue; ``issuer`` (department code) defaults to the caller's department."""

    type: str = Field(..., max_length=32)
    issuer: str | None = Field(None, max_length=64)
    holder_name: str = Field(..., max_length=200)
    holder_id: str = Field(..., max_length=32)
    data: dict[str, Any] = Field(default_factory=dict)
    number: str | None = Field(None, max_length=64)
    valid_from: datetime.date | None = None
    valid_until: datetime.date | None = None
    alg: str | None = Field(None, pattern="^(ES256|SM2)$")


class BulkRow(Schema):
    """One row of a bulk issuance."""

    holder_name: str = Field("", max_length=200)
    holder_id: str = Field("", max_length=32)
    data: dict[str, Any] = Field(default_factory=dict)
    number: str | None = Field(None, max_length=64)
    valid_from: str | None = Field(None, max_length=10)
    valid_until: str | None = Field(None, max_length=10)


class BulkIn(Schema):
    """Many licences of one type, all or nothing."""

    type: str = Field(..., max_length=32)
    issuer: str | None = Field(None, max_length=64)
    rows: list[BulkRow] = Field(..., max_length=services.MAX_BULK_ROWS)
    alg: str | None = Field(None, pattern="^(ES256|SM2)$")


class BulkOut(Schema):
    """What a bulk issuance issued."""

    issued: int
    identifiers: list[str]


class SearchIn(Schema):
    """A holder lookup (the ID number travels in the body, never in a URL)."""

    holder_id: str = Field(..., min_length=1, max_length=32)
    type: str | None = Field(None, max_length=32)
    status: str | None = Field(None, max_length=10)


class VaryIn(Schema):
    """Changed data items and the reason."""

    changes: dict[str, Any]
    reason: str = Field(..., min_length=1, max_length=300)
    alg: str | None = Field(None, pattern="^(ES256|SM2)$")


class RenewIn(Schema):
    """The new end of validity (default: the type's rule) and the reason."""

    valid_until: datetime.date | None = None
    reason: str = Field("", max_length=300)
    alg: str | None = Field(None, pattern="^(ES256|SM2)$")


class ReasonIn(Schema):
    """The reason of a suspension, resumption or revocation."""

    reason: str = Field("", max_length=300)


# --- Helpers -------------------------------------------------------------------------------------------


def _principal(request: HttpRequest, scope: str):
    """The caller, when it may use the licence API with ``scope`` (clients: the scope or licences:issue)."""
    principal = request.auth
    if hasattr(principal, "client_id"):
        if not (principal.has_scope(scope) or principal.has_scope(ISSUE_SCOPE)):
            raise PermissionDenied(gettext("当前凭证没有 %(scope)s 权限范围。") % {"scope": scope})
        return principal
    if getattr(principal, "kind", "") in ("official", "admin") or getattr(principal, "is_superuser", False):
        return principal
    raise PermissionDenied(gettext("电子证照接口仅向工作人员和部门应用开放。"))


def _type(code: str) -> LicenceType:
    """A licence type by code (404 unknown)."""
    found = LicenceType.objects.select_related("department").filter(code=(code or "").strip().upper()).first()
    if found is None:
        raise HttpError(404, gettext("证照类型不存在。"))
    return found


def _issuer(principal, code: str | None):
    """The department to issue for: the caller's own (another is refused: 403)."""
    department = department_of(principal)
    if department is None or not department.is_active:
        raise PermissionDenied(gettext("只有部门的工作人员或应用可以签发证照。"))
    if code and code != department.code:
        raise PermissionDenied(gettext("只能以本部门名义签发证照。"))
    return department


def _licence(identifier: str, principal, *, action: str = "licenses.licence.view") -> Licence:
    """A licence the caller may see (404 unknown; 403, audited as ``action``, another department's)."""
    licence = access.find_licence(identifier)
    if licence is None:
        raise HttpError(404, gettext("证照不存在。"))
    if not access.may_view(principal, licence):
        raise access.refuse_view(principal, licence, action=action)
    return licence


def _type_out(licence_type: LicenceType) -> dict[str, Any]:
    """A type as :class:`TypeOut`."""
    return {
        "code": licence_type.code,
        "name": licence_type.name,
        "name_en": licence_type.name_en,
        "description": licence_type.description,
        "department": licence_type.department.code,
        "department_name": licence_type.department.name,
        "issuer_kind": licence_type.issuer_kind,
        "holder_kind": licence_type.holder_kind,
        "items": licence_type.items or [],
        "validity": licence_type.validity or {},
        "layout": catalogue.effective_layout(licence_type),
        "sharing_type": licence_type.sharing_type,
        "version": licence_type.version,
        "status": licence_type.status,
    }


def _licence_out(licence: Licence) -> dict[str, Any]:
    """A licence as :class:`LicenceOut` (holder masked)."""
    return {
        "identifier": licence.identifier,
        "type": licence.licence_type.code,
        "type_name": licence.licence_type.name,
        "type_version": licence.type_version,
        "number": licence.number,
        "issuer": licence.issuer.code,
        "issuer_name": licence.issuer.name,
        "holder_kind": licence.holder_kind,
        "holder_name": access.masked_holder_name(licence),
        "holder_id": access.masked_holder_id(licence),
        "issued_at": licence.issued_at.isoformat(),
        "valid_from": licence.valid_from.isoformat(),
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
        "status": licence.status,
        "status_reason": licence.status_reason,
        "version": licence.version,
        "source": licence.source,
    }


def _detail(licence: Licence, principal, *, audited: bool = True) -> dict[str, Any]:
    """A licence as :class:`LicenceDetail` (a read is audited when it carries personal data; a change's answer not)."""
    view = access.view_licence(licence, actor=principal, audited=audited)
    return {
        **_licence_out(licence),
        "data": {item["name"]: item["value"] for item in view.items},
        "events": [
            {
                "at": event.at.isoformat(),
                "action": event.action,
                "version": event.version,
                "actor": event.actor,
                "reason": event.reason,
                "changed": event.changed,
            }
            for event in view.events
        ],
        "credential_id": next(c.credential_id for c in view.credentials if c.version == licence.version),
    }


def _reload(licence: Licence) -> Licence:
    """The licence as stored now, with its type and issuer."""
    return access.find_licence(licence.identifier)


# --- Routes: catalogue -----------------------------------------------------------------------------------


@router.get("/types", response=list[TypeOut], summary="证照目录")
def list_types(request: HttpRequest, status: str | None = None):
    """Every licence type (``status``: active or retired to filter)."""
    _principal(request, READ_SCOPE)
    types = LicenceType.objects.select_related("department").order_by("code")
    if status:
        types = types.filter(status=status)
    return [_type_out(licence_type) for licence_type in types]


@router.get("/types/{code}", response=TypeOut, summary="证照类型")
def get_type(request: HttpRequest, code: str):
    """One licence type: items, validity rule, effective layout."""
    _principal(request, READ_SCOPE)
    return _type_out(_type(code))


# --- Routes: licences ------------------------------------------------------------------------------------


@router.get("/", response=LicencePage, summary="查询证照")
def list_licences(
    request: HttpRequest,
    identifier: str = Query("", max_length=128),
    number: str = Query("", max_length=64),
    type: str = Query("", max_length=32),  # noqa: A002 - the public parameter name
    status: str = Query("", max_length=10),
    issuer: str = Query("", max_length=64),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
    offset: int = Query(0, ge=0),
):
    """Licences in the caller's scope (its department's; all for the data administration), newest first."""
    principal = _principal(request, READ_SCOPE)
    found = access.search(
        principal, identifier=identifier, number=number, type_code=type, status=status, issuer_code=issuer
    ).order_by("-issued_at", "-id")
    return {
        "count": found.count(),
        "limit": limit,
        "offset": offset,
        "results": [_licence_out(licence) for licence in found[offset : offset + limit]],
    }


@router.post("/search", response=list[LicenceOut], summary="按持证主体查询证照")
def search_licences(request: HttpRequest, body: SearchIn):
    """Licences of a holder in the caller's scope, by the blind index of their ID number or USCC."""
    principal = _principal(request, READ_SCOPE)
    found = access.search(principal, holder_id=body.holder_id, type_code=body.type or "", status=body.status or "")
    return [_licence_out(licence) for licence in found.order_by("-issued_at", "-id")[: access.SEARCH_LIMIT]]


@router.post("/", response={201: LicenceDetail}, summary="签发证照")
def issue(request: HttpRequest, body: IssueIn):
    """Issue one licence in the name of the caller's department."""
    principal = _principal(request, ISSUE_SCOPE)
    licence_type = _type(body.type)
    issuer = _issuer(principal, body.issuer)
    licence = services.issue(
        licence_type,
        issuer=issuer,
        holder_name=body.holder_name,
        holder_id=body.holder_id,
        data=body.data,
        actor=principal,
        number=body.number,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        source="api",
        alg=body.alg,
    )
    return Status(201, _detail(_reload(licence), principal, audited=False))


@router.post("/bulk", response={201: BulkOut}, summary="批量签发证照")
def issue_bulk(request: HttpRequest, body: BulkIn):
    """Issue many licences of one type, all or nothing; a 400 problem lists every bad row (``rows.N.column``)."""
    principal = _principal(request, ISSUE_SCOPE)
    licence_type = _type(body.type)
    issuer = _issuer(principal, body.issuer)
    rows = [row.dict() for row in body.rows]
    try:
        issued = services.issue_many(
            licence_type, rows, issuer=issuer, actor=principal, source="api:bulk", alg=body.alg
        )
    except services.BulkIssueError as exc:
        errors = [
            {"loc": ["rows", line - 1, column] if line else ["rows"], "msg": reason, "type": "invalid"}
            for line, column, reason in exc.problems
        ]
        detail = gettext("%(n)d 处错误，未签发任何证照") % {"n": len(errors)}
        return problem_response(request, 400, slug="invalid-data", detail=detail, errors=errors)
    return Status(201, {"issued": len(issued), "identifiers": [licence.identifier for licence in issued]})


@router.get("/{identifier}", response=LicenceDetail, summary="证照详情")
def get_licence(request: HttpRequest, identifier: str):
    """One licence with masked holder data, its items and history (audited when it carries personal data)."""
    principal = _principal(request, READ_SCOPE)
    licence = _licence(identifier, principal)
    answer = _detail(licence, principal)
    wallet.record_use(licence, actor=principal, channel=LicenceUse.Channel.API)  # shown in the holder's use log
    return answer


@router.get("/{identifier}/credential", summary="下载证照凭证（VC-JOSE）")
def get_credential(request: HttpRequest, identifier: str, version: int | None = Query(None, ge=1)):
    """The licence's current (or a given version's) credential as ``application/vc+jwt`` (audited)."""
    principal = _principal(request, READ_SCOPE)
    licence = _licence(identifier, principal, action="licenses.credential.download")
    try:
        credential = access.download_credential(licence, actor=principal, version=version)
    except licence.credentials.model.DoesNotExist:
        raise HttpError(404, gettext("凭证不存在。")) from None
    wallet.record_use(licence, actor=principal, channel=LicenceUse.Channel.API)
    return HttpResponse(credential.jws, content_type="application/vc+jwt")


def _changing(request: HttpRequest, identifier: str, action: str):
    """(principal, licence) for a change: licences:issue and a licence the caller may see (refusals audited)."""
    principal = _principal(request, ISSUE_SCOPE)
    return principal, _licence(identifier, principal, action=f"licenses.licence.{action}")


@router.post("/{identifier}/vary", response=LicenceDetail, summary="变更证照")
def vary(request: HttpRequest, identifier: str, body: VaryIn):
    """Change data items: a new version with a new credential (the old one is superseded)."""
    principal, licence = _changing(request, identifier, "vary")
    services.vary(licence, body.changes, actor=principal, reason=body.reason, alg=body.alg)
    return _detail(_reload(licence), principal, audited=False)


@router.post("/{identifier}/renew", response=LicenceDetail, summary="延续证照")
def renew(request: HttpRequest, identifier: str, body: RenewIn):
    """Extend validity: a new version valid until ``valid_until`` (default: the type's rule)."""
    principal, licence = _changing(request, identifier, "renew")
    services.renew(licence, actor=principal, valid_until=body.valid_until, reason=body.reason, alg=body.alg)
    return _detail(_reload(licence), principal, audited=False)


@router.post("/{identifier}/suspend", response=LicenceDetail, summary="暂停证照")
def suspend(request: HttpRequest, identifier: str, body: ReasonIn):
    """Suspend a valid licence (reason required)."""
    principal, licence = _changing(request, identifier, "suspend")
    services.suspend(licence, actor=principal, reason=body.reason)
    return _detail(_reload(licence), principal, audited=False)


@router.post("/{identifier}/resume", response=LicenceDetail, summary="恢复证照")
def resume(request: HttpRequest, identifier: str, body: ReasonIn):
    """Lift a suspension."""
    principal, licence = _changing(request, identifier, "resume")
    services.resume(licence, actor=principal, reason=body.reason)
    return _detail(_reload(licence), principal, audited=False)


@router.post("/{identifier}/revoke", response=LicenceDetail, summary="撤销证照")
def revoke(request: HttpRequest, identifier: str, body: ReasonIn):
    """Revoke a licence for good (reason required)."""
    principal, licence = _changing(request, identifier, "revoke")
    services.revoke(licence, actor=principal, reason=body.reason)
    return _detail(_reload(licence), principal, audited=False)
