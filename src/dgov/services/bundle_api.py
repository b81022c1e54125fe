"""The 一件事 API at /api/v1/services/: combined forms, bundle cases and proactive offers (主动服务).

=======  ====================================  =====================================================
method   path                                  what
=======  ====================================  =====================================================
GET      ``bundles/{code}``                    the bundle's combined form schema and one set of materials
POST     ``bundles/{code}/cases``              submit the combined form → one case, one application per item
GET      ``bundle-cases``                      the caller's bundle cases
GET      ``bundle-cases/{number}``             one own case with its member applications
GET      ``offers``                            the caller's proactive offers (verified person accounts)
GET      ``offers/{id}``                       one own offer with its facts (ID numbers masked)
POST     ``offers/{id}/accept``                confirm: the pre-filled form plus ``data`` is submitted
POST     ``offers/{id}/decline``               decline the offer
=======  ====================================  =====================================================

Callers: logged-in users (session) and users' bearer tokens. Errors are problem+json: 400 with
per-field ``errors`` under the combined field names, 404 for a bundle, case or offer the caller
may not see (no IDOR), 409 for an offer already answered or expired.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.utils.translation import gettext
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from dgov.api.auth import bearer_auth, session_auth
from dgov.kernel.models import Division
from dgov.services import bundles, offers
from dgov.services.models import Bundle, BundleCase, ProactiveOffer

router = Router(tags=["services"], auth=[bearer_auth, session_auth])


class CaseIn(Schema):
    """The combined form's data (combined field names) and, optionally, the division code where to apply."""

    data: dict[str, Any]
    division: str | None = Field(default=None, max_length=12)


class MaterialOut(Schema):
    """One material of the bundle's one set of materials."""

    key: str
    name: str
    kind: str
    exempt: bool
    required: bool
    items: list[str]


class ItemRef(Schema):
    """A member item."""

    code: str
    name: str


class BundleOut(Schema):
    """A bundle with its combined form."""

    code: str
    name: str
    life_event: str
    description: str
    items: list[ItemRef]
    form_schema: dict[str, Any]
    shared_fields: list[str]
    materials: list[MaterialOut]


class MemberOut(Schema):
    """A member application of a bundle case and its progress."""

    number: str
    item: str
    item_name: str
    department: str
    status: str
    current_tasks: list[str]
    promised_due: datetime.date | None
    completed_at: datetime.datetime | None


class CaseOut(Schema):
    """A bundle case with its members."""

    number: str
    bundle: str
    bundle_name: str
    status: str
    submitted_at: datetime.datetime
    completed_at: datetime.datetime | None
    applications: list[MemberOut]


class OfferOut(Schema):
    """A proactive offer (主动服务)."""

    id: int
    bundle: str
    bundle_name: str
    event_kind: str
    status: str
    offered_at: datetime.datetime
    expires_on: datetime.date
    case: str | None
    facts: list[tuple[str, str]]


class AcceptIn(Schema):
    """The fields the offer did not pre-fill (combined field names) and, optionally, the division code."""

    data: dict[str, Any] = Field(default_factory=dict)
    division: str | None = Field(default=None, max_length=12)


def _division(code: str | None):
    """The division of a code, None when not given; 400 when unknown."""
    if not code:
        return None
    division = Division.objects.filter(code=code).first()
    if division is None:
        raise HttpError(400, gettext("未知的行政区划代码。"))
    return division


def _applicant(request: HttpRequest):
    """The calling user (API clients cannot apply)."""
    user = request.auth
    if not hasattr(user, "kind"):
        raise PermissionDenied(gettext("只有登录的个人或企业用户可以提交申请。"))
    return user


def _case_out(case: BundleCase) -> dict:
    """A case as CaseOut data."""
    return {
        "number": case.number,
        "bundle": case.bundle.code,
        "bundle_name": case.bundle.name,
        "status": case.status,
        "submitted_at": case.submitted_at,
        "completed_at": case.completed_at,
        "applications": [
            {
                "number": app.number,
                "item": app.item.basic_code,
                "item_name": app.item.name,
                "department": app.department.name,
                "status": app.status,
                "current_tasks": [task.name for task in app.open_tasks],
                "promised_due": app.promised_due,
                "completed_at": app.completed_at,
            }
            for app in bundles.case_members(case)
        ],
    }


def _offer_out(offer: ProactiveOffer, form: bundles.CombinedForm | None = None) -> dict:
    """An offer as OfferOut data (``form``: its bundle's combined form, when the caller has it)."""
    return {
        "id": offer.pk,
        "bundle": offer.bundle.code,
        "bundle_name": offer.bundle.name,
        "event_kind": offer.event_kind,
        "status": offer.status,
        "offered_at": offer.offered_at,
        "expires_on": offer.expires_on,
        "case": offer.case.number if offer.case_id else None,
        "facts": offers.offer_facts(offer, form),
    }


def _offer(request: HttpRequest, offer_id: int) -> ProactiveOffer:
    """An own offer, else 404."""
    offer = offers.visible_offer(request.auth, offer_id)
    if offer is None:
        raise Http404
    return offer


@router.get("/bundles/{code}", response=BundleOut, summary="一件事合并表单")
def bundle(request: HttpRequest, code: str):
    """An active bundle's combined form schema (shared fields once, others as ``<item code>.<field>``) and materials."""
    found = Bundle.objects.filter(code=code, is_active=True).first()
    if found is None:
        raise Http404
    form = bundles.combined_form(found)
    return {
        "code": found.code,
        "name": found.name,
        "life_event": found.life_event,
        "description": found.description,
        "items": [{"code": item.basic_code, "name": item.name} for item in form.items],
        "form_schema": form.schema,
        "shared_fields": form.shared,
        "materials": bundles.bundle_materials(found, form.items),
    }


@router.post("/bundles/{code}/cases", response={201: CaseOut}, summary="提交一件事")
def submit(request: HttpRequest, code: str, payload: CaseIn):
    """Submit the combined form: one case, one application per item at its competent department (all or nothing)."""
    user = _applicant(request)
    found = Bundle.objects.filter(code=code, is_active=True).first()
    if found is None:
        raise Http404
    case = bundles.submit_bundle(
        found, applicant=user, data=payload.data, actor=user, division=_division(payload.division)
    )
    return Status(201, _case_out(case))


@router.get("/bundle-cases", response=list[CaseOut], summary="我的一件事")
def cases(request: HttpRequest):
    """The caller's bundle cases, newest first (at most 50)."""
    return [_case_out(case) for case in bundles.with_members(bundles.cases_of(request.auth))[:50]]


@router.get("/bundle-cases/{number}", response=CaseOut, summary="一件事详情")
def case_detail(request: HttpRequest, number: str):
    """One own bundle case with the progress of each member application."""
    case = bundles.cases_of(request.auth).filter(number=number).first()
    if case is None:
        raise Http404
    return _case_out(case)


@router.get("/offers", response=list[OfferOut], summary="为您推荐")
def offer_list(request: HttpRequest):
    """The caller's proactive offers (verified person accounts; empty for anyone else)."""
    forms: dict[int, bundles.CombinedForm] = {}  # one combined form per bundle, not one per offer
    listed = []
    for offer in offers.offers_for(request.auth)[:50]:
        if offer.bundle_id not in forms:
            forms[offer.bundle_id] = bundles.combined_form(offer.bundle)
        listed.append(_offer_out(offer, forms[offer.bundle_id]))
    return listed


@router.get("/offers/{offer_id}", response=OfferOut, summary="推荐服务详情")
def offer_detail(request: HttpRequest, offer_id: int):
    """One own offer with its facts (ID numbers masked)."""
    return _offer_out(_offer(request, offer_id))


@router.post("/offers/{offer_id}/accept", response={201: CaseOut}, summary="确认办理")
def accept(request: HttpRequest, offer_id: int, payload: AcceptIn):
    """Confirm an own offer: the pre-filled combined form plus ``data`` becomes a bundle case (409 when closed)."""
    offer = _offer(request, offer_id)
    try:
        case = offers.accept_offer(offer, actor=request.auth, data=payload.data, division=_division(payload.division))
    except offers.OfferClosed as exc:
        raise HttpError(409, str(exc)) from None
    return Status(201, _case_out(case))


@router.post("/offers/{offer_id}/decline", response=OfferOut, summary="谢绝推荐服务")
def decline(request: HttpRequest, offer_id: int):
    """Decline an own offer (409 when already answered)."""
    try:
        offer = offers.decline_offer(_offer(request, offer_id), actor=request.auth)
    except offers.OfferClosed as exc:
        raise HttpError(409, str(exc)) from None
    return _offer_out(offer)
