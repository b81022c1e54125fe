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
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from dgov.services import bundles, offers
from dgov.services.models import Bundle, ProactiveOffer


def _field(name: str, prop: dict, required: bool, values: dict, errors: dict) -> dict:
    """One field for ``services/_form_field.html``."""
    kind = prop.get("type", "string")
    if "enum" in prop:
        widget = "select"
    elif kind == "boolean":
        widget = "checkbox"
    elif kind in ("integer", "number"):
        widget = "number"
    else:
        widget = "date" if prop.get("format") == "date" else "text"
    return {
        "name": name,
        "label": prop.get("title", name),
        "help": prop.get("description", ""),
        "widget": widget,
        "value": values.get(name, ""),
        "required": required,
        "choices": prop.get("enum", []),
        "errors": errors.get(name, []),
    }


def _groups(form: bundles.CombinedForm, values: dict, errors: dict, *, skip=frozenset()) -> list[dict]:
    """The combined form's fields grouped for display: shared fields, then each item's own ones."""
    props = form.schema["properties"]
    required = set(form.schema["required"])

    def fields(names):
        return [_field(n, props[n], n in required, values, errors) for n in names if n not in skip]

    groups = [{"title": gettext("共同信息"), "fields": fields(form.shared)}]
    groups += [{"title": item.name, "fields": fields(names)} for item, names in form.groups]
    return [group for group in groups if group["fields"]]


def _posted(form: bundles.CombinedForm, post, *, skip=frozenset()) -> dict:
    """The posted values of the combined form (unchecked checkboxes become false)."""
    data = {}
    for name, prop in form.schema["properties"].items():
        if name in skip:
            continue
        if prop.get("type") == "boolean":
            data[name] = post.get(name, "") == "on"
        elif name in post:
            data[name] = post.get(name, "")
    return data


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
    is_open = offer.status == ProactiveOffer.Status.OFFERED and not _expired(offer)
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


def _expired(offer: ProactiveOffer) -> bool:
    """Whether the offer is past its last day (the expiry job may not have run yet)."""
    return offer.expires_on < timezone.localdate()


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
