"""一件事 pages: the combined form, my bundle cases (tracking) and my proactive offers (confirm / decline).

Thin views: parse, authorize, call :mod:`dgov.services.bundles` / :mod:`dgov.services.offers`, render.
A case or offer of someone else is a 404 (no IDOR). The combined form is grouped: the shared
fields first (共同信息), then each item's own fields, then the one set of materials with uploads for
the file materials.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from dgov.services import bundles, offers
from dgov.services.models import Bundle
from dgov.services.process_views import _form_fields
from dgov.services.process_views import _posted as _posted_values


def _subschema(form: bundles.CombinedForm, names, skip) -> dict:
    """The part of the combined form's schema with these fields (minus ``skip``), in the given order."""
    props, required = form.schema["properties"], set(form.schema["required"])
    kept = [name for name in names if name not in skip]
    return {"properties": {name: props[name] for name in kept}, "required": [n for n in kept if n in required]}


def _groups(form: bundles.CombinedForm, values: dict, errors: dict, *, skip=frozenset()) -> list[dict]:
    """The combined form's fields grouped for display: shared fields, then each item's own ones."""

    def fields(names):
        return _form_fields(_subschema(form, names, skip), values, errors)

    groups = [{"title": gettext("共同信息"), "fields": fields(form.shared)}]
    groups += [{"title": item.name, "fields": fields(names)} for item, names in form.groups]
    return [group for group in groups if group["fields"]]


def _posted(form: bundles.CombinedForm, post, *, skip=frozenset()) -> dict:
    """The posted values of the combined form, pre-filled fields (``skip``) left out."""
    return _posted_values(_subschema(form, form.schema["properties"], skip), post)


def _files(request, materials: list[dict]) -> dict:
    """The uploaded material files by slot."""
    return {entry["slot"]: request.FILES[entry["slot"]] for entry in materials if entry["slot"] in request.FILES}


def _general_errors(form: bundles.CombinedForm, materials: list[dict], errors: dict) -> list[str]:
    """Messages not about one form field or material (the bundle, the division, a member's refusal)."""
    own = set(form.schema["properties"]) | {entry["slot"] for entry in materials}
    return [message for key, messages in errors.items() if key not in own for message in messages]


def _prefilled_errors(form: bundles.CombinedForm, prefilled: dict, errors: dict) -> list[str]:
    """Messages about pre-filled fields (not on the form), each with the field's label."""
    props = form.schema["properties"]
    return [f"{props[key].get('title', key)}：{message}" for key in prefilled for message in errors.get(key, [])]


def _material_rows(materials: list[dict], errors: dict) -> list[dict]:
    """The one set of materials with each upload slot's errors."""
    return [{**entry, "errors": errors.get(entry["slot"], [])} for entry in materials]


@login_required
def apply(request, code: str):
    """The bundle's combined form (一表申请): one submission creates one application per item."""
    bundle = get_object_or_404(Bundle, code=code, is_active=True)
    form = bundles.combined_form(bundle)
    materials = bundles.bundle_materials(bundle, form.items)
    values, errors = {}, {}
    if request.method == "POST":
        values = _posted(form, request.POST)
        try:
            case = bundles.submit_bundle(
                bundle, applicant=request.user, data=values, actor=request.user, files=_files(request, materials)
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            messages.success(request, gettext("一件事已提交，编号 %(number)s。") % {"number": case.number})
            return redirect("services:my_bundle_case", number=case.number)
    return render(
        request,
        "services/bundle_apply.html",
        {
            "bundle": bundle,
            "items": form.items,
            "groups": _groups(form, values, errors),
            "materials": _material_rows(materials, errors),
            "form_errors": _general_errors(form, materials, errors),
        },
        status=400 if errors else 200,
    )


@login_required
def my_case(request, number: str):
    """Track one own bundle case: its status and each member application's progress."""
    case = bundles.cases_of(request.user).filter(number=number).first()
    if case is None:
        raise Http404
    return render(request, "services/my_bundle_case.html", {"case": case, "members": bundles.case_members(case)})


@login_required
def my_offer(request, offer_id: int):
    """One own proactive offer: the facts, the fields still missing, confirm (确认办理) or decline (谢绝)."""
    offer = offers.visible_offer(request.user, offer_id)
    if offer is None:
        raise Http404
    form = bundles.combined_form(offer.bundle)
    prefilled = offers.offer_form_values(offer, form)
    materials = bundles.bundle_materials(offer.bundle, form.items)
    values, errors = {}, {}
    if request.method == "POST":
        values = _posted(form, request.POST, skip=prefilled)
        try:
            case = offers.accept_offer(offer, actor=request.user, data=values, files=_files(request, materials))
        except ValidationError as exc:
            errors = exc.message_dict
        except offers.OfferClosed as exc:
            messages.error(request, str(exc))
            return redirect("services:my_offer", offer_id=offer.pk)
        else:
            messages.success(request, gettext("已确认办理，一件事编号 %(number)s。") % {"number": case.number})
            return redirect("services:my_bundle_case", number=case.number)
    is_open = offers.is_open(offer)
    return render(
        request,
        "services/my_offer.html",
        {
            "offer": offer,
            "is_open": is_open,
            "facts": offers.offer_facts(offer, form),
            "groups": _groups(form, values, errors, skip=prefilled) if is_open else [],
            "materials": _material_rows(materials, errors) if is_open else [],
            "form_errors": _general_errors(form, materials, errors) + _prefilled_errors(form, prefilled, errors),
        },
        status=400 if errors else 200,
    )


@login_required
@require_POST
def decline_offer(request, offer_id: int):
    """Decline an own offer (谢绝)."""
    offer = offers.visible_offer(request.user, offer_id)
    if offer is None:
        raise Http404
    try:
        offers.decline_offer(offer, actor=request.user)
    except (offers.OfferClosed, PermissionDenied) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, gettext("已谢绝该推荐服务。"))
    return redirect("services:my_applications")
