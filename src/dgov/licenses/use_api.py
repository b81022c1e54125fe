"""The licence-use API (用证接口) at /api/v1/licences/use: departments read licences their holders let them use.

=======  ==================================  ===================================================
method   path                                what
=======  ==================================  ===================================================
POST     ``/licences/use``                   read one licence for a purpose (用证), under consent
GET      ``/licences/use/consents``          the consents in force for the caller's department
=======  ==================================  ===================================================

Callers: API clients of a department (HTTP Basic or a client-credentials token) holding
``licences:use``, and officials (session or bearer token). The licence is named by its identifier,
or by the holder's ID number (or USCC) and the type code — in the body, never in a URL. The answer
is the licence's data only when an active consent of the holder covers the caller's department (and
the service item, when the consent names one) and the licence is valid now; types of unconditional
sharing are answered without consent, the holder's personal data masked and no credential. Every
answer is a use in the holder's log and an audit record; a client's call is also an exchange-log
entry (``exchange.seq``/``hash`` for a receipt). Refusals are problem+json with a stable ``code``
(and ``exchange_seq`` for clients): see :func:`dgov.licenses.wallet.use_licence`.
"""

from __future__ import annotations

from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Router, Schema

from dgov.api.auth import bearer_auth, client_auth, session_auth
from dgov.api.problems import Problem, problem_response
from dgov.licenses import wallet
from dgov.registry.services import department_of

router = Router(tags=["licences"], auth=[client_auth, bearer_auth, session_auth])

_SLUGS = {400: "bad-request", 403: "forbidden", 404: "not-found", 429: "too-many-requests", 503: "service-unavailable"}


class UseIn(Schema):
    """Which licence, for what: an identifier, or the holder's ID number (or USCC) with the type code."""

    identifier: str | None = Field(None, max_length=128, description="证照标识")
    holder_id: str | None = Field(None, max_length=32, description="持证主体证件号码（公民身份号码或统一社会信用代码）")
    type: str | None = Field(None, max_length=32, description="证照类型代码（与 holder_id 一起使用）")
    purpose: str = Field(..., min_length=1, max_length=300, description="用证用途")
    service_code: str | None = Field(None, max_length=64, description="服务事项编码（授权限定事项时必填）")


class ConsentRef(Schema):
    """The consent a use relied on."""

    id: int
    purpose: str
    service_code: str
    valid_until: str


class UseRef(Schema):
    """The use as recorded in the holder's use log."""

    id: int
    at: str
    channel: str


class ExchangeRef(Schema):
    """The exchange-log entry that recorded a client's call (for its receipt)."""

    seq: int
    hash: str


class UseOut(Schema):
    """A licence as answered to the department that uses it."""

    identifier: str
    version: int
    type: str
    type_name: str
    number: str
    issuer: str
    issuer_name: str
    issuer_uscc: str
    holder_kind: str
    holder_name: str = Field(description="有授权时为原文；无条件共享而无授权时，自然人姓名脱敏")
    holder_id: str = Field(description="有授权时为原文；无条件共享而无授权时，公民身份号码脱敏")
    valid_from: str
    valid_until: str | None
    status: str
    data: dict[str, Any] = Field(description="证照数据项；无授权时个人信息项脱敏")
    credential: str | None = Field(description="可验证凭证（VC-JOSE），仅在有授权时提供")
    basis: Literal["consent", "unconditional"]
    consent: ConsentRef | None
    use: UseRef
    exchange: ExchangeRef | None


class ConsentOut(Schema):
    """A consent in force for the caller's department."""

    id: int
    identifier: str
    type: str
    type_name: str
    issuer: str
    purpose: str
    service_code: str
    valid_from: str
    valid_until: str


def _refused(request: HttpRequest, exc: wallet.UseRefused):
    """A refusal as problem+json with its ``code`` (and ``exchange_seq``); 429 with Retry-After."""
    headers = {"Retry-After": "1"} if exc.status == 429 else None
    return problem_response(
        request,
        exc.status,
        detail=exc.message,
        slug=_SLUGS.get(exc.status),
        headers=headers,
        code=exc.code,
        exchange_seq=exc.seq,
    )


def _out(result: wallet.UseResult) -> dict[str, Any]:
    """A served use as :class:`UseOut`."""
    licence = result.licence
    consent = result.consent
    return {
        "identifier": licence.identifier,
        "version": licence.version,
        "type": licence.licence_type.code,
        "type_name": licence.licence_type.name,
        "number": licence.number,
        "issuer": licence.issuer.code,
        "issuer_name": licence.issuer.name,
        "issuer_uscc": licence.issuer.uscc,
        "holder_kind": licence.holder_kind,
        "holder_name": result.holder_name,
        "holder_id": result.holder_id,
        "valid_from": licence.valid_from.isoformat(),
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
        "status": licence.status,
        "data": result.data,
        "credential": result.credential,
        "basis": result.basis,
        "consent": None
        if consent is None
        else {
            "id": consent.pk,
            "purpose": consent.purpose,
            "service_code": consent.service_code,
            "valid_until": consent.valid_until.isoformat(),
        },
        "use": {"id": result.use.pk, "at": result.use.at.isoformat(), "channel": result.use.channel},
        "exchange": result.exchange,
    }


@router.post("", response={200: UseOut, 400: Problem, 403: Problem, 404: Problem, 429: Problem}, summary="用证")
def use(request: HttpRequest, body: UseIn):
    """Read one licence for a purpose under the holder's consent (or unconditional sharing); logged and audited."""
    try:
        result = wallet.use_licence(
            request.auth,
            purpose=body.purpose,
            identifier=body.identifier or "",
            holder_id=body.holder_id or "",
            type_code=body.type or "",
            service_code=body.service_code or "",
        )
    except wallet.UseRefused as exc:
        return _refused(request, exc)
    return _out(result)


@router.get("/consents", response=list[ConsentOut], summary="本部门获得的用证授权")
def consents(request: HttpRequest):
    """The consents in force that let the caller's department use a licence, the soonest to end first."""
    principal = request.auth
    if getattr(principal, "client_id", "") and wallet.USE_SCOPE not in (getattr(principal, "scopes", None) or ()):
        raise PermissionDenied(gettext("当前凭证没有 %(scope)s 权限范围。") % {"scope": wallet.USE_SCOPE})
    department = department_of(principal)
    if department is None or not department.is_active:
        raise PermissionDenied(gettext("只有部门的工作人员或应用可以使用证照。"))
    return [
        {
            "id": consent.pk,
            "identifier": consent.licence.identifier,
            "type": consent.licence.licence_type.code,
            "type_name": consent.licence.licence_type.name,
            "issuer": consent.licence.issuer.code,
            "purpose": consent.purpose,
            "service_code": consent.service_code,
            "valid_from": consent.valid_from.isoformat(),
            "valid_until": consent.valid_until.isoformat(),
        }
        for consent in wallet.consents_for_department(department)[:500]
    ]
