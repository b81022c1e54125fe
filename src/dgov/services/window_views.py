"""Window pages (一窗受理) under /workbench/services/window/: pick an item, accept, receipt, list, 补正, 出件.

Thin views over :mod:`dgov.services.window`. Only window staff (:func:`window.may_accept_at_window`)
see them (403 for anyone else); an application outside the official's window scope is a 404. The
holder's ID number or USCC travels by POST only and is never sent back: a form with errors comes
back without it, and every later page shows it masked. The item's form fields are posted with the
prefix ``form-`` so they cannot collide with the window's own fields.
"""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from dgov.kernel.masking import mask_name
from dgov.kernel.models import Division
from dgov.kernel.services import divisions as division_services
from dgov.licenses.models import HolderKind
from dgov.services import applications, catalogue, materials, window
from dgov.services.models import Application, GuideMaterial, ServiceItem
from dgov.services.process_views import _form_fields, _posted

FORM_PREFIX = "form-"
RECENT_DAYS = 30
"""The window list's "recent" range, in calendar days."""
# Service-side error keys shown beside the one "证件号码" input of the page.
_NUMBER_KEYS = ("id_number", "uscc", "holder_number")


def _staff(request):
    """The window official, or PermissionDenied."""
    if not window.may_accept_at_window(request.user):
        raise PermissionDenied(gettext("窗口受理仅向部门工作人员开放。"))
    return request.user


def _masked_name(app: Application) -> str:
    """The holder's name as shown: a person's masked (张*), an enterprise's as it is."""
    return mask_name(app.holder_name) if app.holder_kind != HolderKind.ENTERPRISE else app.holder_name


def _form_values(schema: dict, post) -> dict:
    """The item form's posted values (inputs named ``form-<field>``)."""
    unprefixed = {key[len(FORM_PREFIX) :]: post.get(key) for key in post if key.startswith(FORM_PREFIX)}
    return _posted(schema, unprefixed)


def _prefixed_fields(schema: dict, values: dict, errors: dict) -> list[dict]:
    """The item form's fields for ``services/_form_field.html``, with prefixed input names."""
    fields = _form_fields(schema, values, errors)
    for field in fields:
        field["name"] = FORM_PREFIX + field["name"]
    return fields


def _scans(request, guide: list[GuideMaterial]) -> list[window.Scan]:
    """The uploaded files of the scannable materials, read up to one byte over the size limit."""
    limit = materials.max_bytes() + 1
    scans = []
    for material in guide:
        for upload in request.FILES.getlist(window.material_field(material)):
            scans.append(window.Scan(material.pk, upload.name or "", upload.content_type or "", upload.read(limit)))
    return scans


def _divisions(official) -> list[Division]:
    """Where a window may send an application: its own division and the counties (or cities) directly below."""
    own = official.department.division
    below = division_services.children(own.code)  # current divisions, looking through placeholders (市辖区)
    return [own, *(division for division in below if division.level <= Division.Level.COUNTY)]


@login_required
def home(request):
    """Window home: search the active items and pick one to accept (一窗受理)."""
    _staff(request)
    query = request.GET.get("q", "").strip()[:100]
    items = catalogue.search_items(query)[:50]
    for item in items:
        item.department_name = catalogue.department_label(item.department_kind)
    return render(request, "services/window.html", {"items": items, "query": query})


def _material_rows(guide: list[GuideMaterial], errors: dict, *, require: bool = True) -> list[dict]:
    """The guide's materials for the form: file inputs for scannable ones, notes for the others."""
    rows = []
    for material in guide:
        field = window.material_field(material)
        rows.append(
            {
                "material": material,
                "field": field,
                "scannable": material.kind in window.SCANNABLE,
                "required": require and material.kind == GuideMaterial.Kind.FILE and material.required,
                "errors": errors.get(field, []),
            }
        )
    return rows


@login_required
@never_cache
def accept(request, code: str):
    """The acceptance form of one item: holder, the item's form, scans, delivery; POST accepts."""
    official = _staff(request)
    item = get_object_or_404(ServiceItem, basic_code=code, status=ServiceItem.Status.ACTIVE)
    schema = item.form_schema or {}
    guide = list(item.materials.select_related("licence_type"))
    divisions = _divisions(official)
    values: dict = {}
    errors: dict = {}
    posted = {"holder_kind": HolderKind.PERSON, "holder_name": "", "delivery": Application.Delivery.WINDOW}
    posted["division"] = divisions[0].code
    if request.method == "POST":
        posted = {key: request.POST.get(key, "").strip() for key in ("holder_kind", "holder_name", "delivery")}
        posted["division"] = request.POST.get("division", "").strip() or divisions[0].code
        number = request.POST.get("holder_number", "")
        values = _form_values(schema, request.POST)
        allowed = {division.code for division in divisions}
        try:
            if posted["division"] not in allowed:
                raise ValidationError({"division": [gettext("请选择本窗口可受理的地区。")]})
            app = window.accept_walk_in(
                item,
                actor=official,
                holder_kind=posted["holder_kind"],
                holder_name=posted["holder_name"],
                id_number=number if posted["holder_kind"] != HolderKind.ENTERPRISE else "",
                uscc=number if posted["holder_kind"] == HolderKind.ENTERPRISE else "",
                data=values,
                files=_scans(request, guide),
                delivery=posted["delivery"],
                division=posted["division"],
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            messages.success(request, gettext("已受理，申请编号 %(number)s。") % {"number": app.number})
            return redirect("services:window_receipt", number=app.number)
    number_errors = [message for key in _NUMBER_KEYS for message in errors.get(key, [])]
    shown = {"holder_kind", "holder_name", "delivery", "division", *_NUMBER_KEYS}
    shown |= {name for name in (schema.get("properties") or {})}
    shown |= {window.material_field(material) for material in guide}
    context = {
        "item": item,
        "department_name": catalogue.department_label(item.department_kind),
        "posted": posted,
        "holder_kinds": HolderKind.choices,
        "deliveries": Application.Delivery.choices,
        "divisions": divisions,
        "fields": _prefixed_fields(schema, values, errors),
        "materials": _material_rows(guide, errors),
        "errors": errors,
        "number_errors": number_errors,
        "other_errors": [message for key, found in errors.items() if key not in shown for message in found],
    }
    return render(request, "services/window_accept.html", context, status=400 if errors else 200)


def _scoped(official, number: str) -> Application:
    """An application in the official's window scope, else 404."""
    app = window.window_application(official, number)
    if app is None:
        raise Http404
    return app


@login_required
@never_cache
def receipt(request, number: str):
    """The acceptance receipt (受理回执), printable: number, item, due date and how to follow it online."""
    official = _staff(request)
    app = _scoped(official, number)
    context = {
        "app": app,
        "holder_name": _masked_name(app),
        "holder_number": window.masked_holder_number(app),
        "materials": app.materials.defer("sealed_content"),
    }
    return render(request, "services/window_receipt.html", context)


@login_required
def window_list(request):
    """Applications taken at the department's windows today or recently, with result hand-over (窗口出件)."""
    official = _staff(request)
    scope = "recent" if request.GET.get("range") == "recent" else "today"
    today = timezone.localdate()
    since = today - datetime.timedelta(days=RECENT_DAYS) if scope == "recent" else today
    rows = list(window.window_applications(official, since=since)[:200])
    for app in rows:
        app.masked_name = _masked_name(app)
        app.may_hand_over = app.delivery == Application.Delivery.WINDOW and app.is_closed and not app.picked_up
    return render(request, "services/window_list.html", {"applications": rows, "scope": scope})


@login_required
@require_POST
def hand_over(request, number: str):
    """Hand the result over at the window (POST); refusals come back as messages."""
    official = _staff(request)
    app = _scoped(official, number)
    try:
        window.hand_over_result(app, actor=official)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, gettext("办件 %(number)s 已出件。") % {"number": app.number})
    return redirect(f"{_list_url()}?range=recent")


def _list_url() -> str:
    """The window list's URL."""
    return reverse("services:window_list")


@login_required
@never_cache
def correction(request, number: str):
    """补正 at the window for an applicant who is there: the document's number, the form, scans (POST)."""
    official = _staff(request)
    app = _scoped(official, number)
    schema = app.item.form_schema or {}
    guide = [m for m in app.item.materials.all() if m.kind in window.SCANNABLE]
    errors: dict = {}
    values = applications.form_data(app)
    if request.method == "POST":
        values = _form_values(schema, request.POST)
        try:
            window.window_correction(
                app,
                actor=official,
                holder_number=request.POST.get("holder_number", ""),
                data=values,
                files=_scans(request, guide),
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            messages.success(request, gettext("补正材料已提交，办件已回到受理环节。"))
            return redirect(f"{_list_url()}?range=recent")
    last = app.tasks.filter(decision="correct").order_by("-completed_at").first()
    shown = {"holder_number", *(schema.get("properties") or {}), *(window.material_field(m) for m in guide)}
    context = {
        "app": app,
        "open": app.status == Application.Status.CORRECTION,
        "reason": (last.data or {}).get("opinion", "") if last else "",
        "holder_number": window.masked_holder_number(app),
        "fields": _prefixed_fields(schema, values, errors),
        "materials": _material_rows(guide, errors, require=False),
        "number_errors": errors.get("holder_number", []),
        "other_errors": [message for key, found in errors.items() if key not in shown for message in found],
    }
    return render(request, "services/window_correction.html", context, status=400 if errors else 200)
