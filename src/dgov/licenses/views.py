"""Officials' e-licence pages (电子证照) under /workbench/licences/.

Thin views: parse, authorize, call :mod:`dgov.licenses.services` (and its catalogue, bulk and
access modules), render. The pages are for officials and administrators; which licences a user
sees is decided by :mod:`dgov.licenses.access` (their department's, or all for the provincial
data administration), which types they may issue by :func:`dgov.licenses.services.may_issue`. A
licence detail is masked and its view audited; the holder lookup by ID number travels by POST.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from dgov.kernel import dataload
from dgov.licenses import access, bulk, catalogue, services, wallet
from dgov.licenses.forms import (
    BulkForm,
    CatalogueForm,
    HolderLookupForm,
    IssueForm,
    ReasonForm,
    RenewForm,
    SearchForm,
    VaryForm,
)
from dgov.licenses.models import Credential, Licence, LicenceType, LicenceUse
from dgov.registry.services import department_of
from dgov.web import navigation

PAGE_SIZE = 50
ACTIONS = ("vary", "renew", "suspend", "resume", "revoke")
CREDENTIAL_TYPE = "application/vc+jwt"


def _official(request):
    """The user, when an official or administrator; PermissionDenied for anyone else."""
    if not navigation.officials_only(request.user):
        raise PermissionDenied(gettext("电子证照页面仅向工作人员和系统管理员开放。"))
    return request.user


def _type(code: str) -> LicenceType:
    """A licence type by code (404 when unknown)."""
    found = LicenceType.objects.select_related("department").filter(code=code).first()
    if found is None:
        raise Http404(gettext("证照类型不存在。"))
    return found


def _licence(identifier: str, user) -> Licence:
    """A licence the user may see (404 unknown; 403, audited, outside their scope)."""
    licence = access.find_licence(identifier)
    if licence is None:
        raise Http404(gettext("证照不存在。"))
    if not access.may_view(user, licence):
        raise access.refuse_view(user, licence)
    return licence


def _issuer(user):
    """The department the user issues for (None for users without one)."""
    department = department_of(user)
    return department if department is not None and department.is_active else None


@login_required
def index(request):
    """Licence search within the user's scope: filters by GET, the holder lookup by POST."""
    user = _official(request)
    types = LicenceType.objects.order_by("code")
    form = SearchForm(request.GET or None, types=types)
    lookup = HolderLookupForm(request.POST or None)
    results = access.visible_licences(user)
    holder_search = False
    if request.method == "POST":
        if lookup.is_valid():
            results = access.search(user, holder_id=lookup.cleaned_data["holder_id"])
            holder_search = True
        else:
            results = results.none()
    elif form.is_valid():
        data = form.cleaned_data
        results = access.search(
            user,
            identifier=data["identifier"],
            number=data["number"],
            type_code=data["type"],
            status=data["status"],
        )
    page = Paginator(results.order_by("-issued_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(licence, access.masked_holder_name(licence)) for licence in page.object_list]
    context = {
        "form": form,
        "lookup": lookup,
        "page": page,
        "rows": rows,
        "holder_search": holder_search,
        "sees_all": access.sees_all(user),
        "may_issue": bool(access.issuable_types(user)),
        "query": request.GET.urlencode() if request.method == "GET" else "",
    }
    return render(request, "licenses/index.html", context)


@login_required
def types(request):
    """The licence catalogue: every type with its department, holder kind, version and status."""
    user = _official(request)
    context = {
        "types": LicenceType.objects.select_related("department").order_by("code"),
        "issuable": {t.pk for t in access.issuable_types(user)},
        "may_manage": catalogue.may_manage_catalogue(user),
        "form": CatalogueForm(),
    }
    return render(request, "licenses/types.html", context)


@login_required
def type_detail(request, code: str):
    """One licence type: items, validity, layout, and whether the user may issue it."""
    user = _official(request)
    licence_type = _type(code)
    department = _issuer(user)
    context = {
        "type": licence_type,
        "layout": catalogue.effective_layout(licence_type),
        "may_issue": department is not None and services.may_issue(user, licence_type, department),
        "may_manage": catalogue.may_manage_type(user, licence_type.department),
        "licences": access.visible_licences(user).filter(licence_type=licence_type).count(),
    }
    return render(request, "licenses/type.html", context)


@login_required
def template_csv(request, code: str):
    """The header line of a bulk file for the type."""
    _official(request)
    licence_type = _type(code)
    response = HttpResponse("\ufeff" + bulk.csv_template(licence_type), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{licence_type.code}.csv"'
    return response


@login_required
@require_POST
def types_load(request):
    """Load an uploaded catalogue file (all or nothing); show the report."""
    user = _official(request)
    form = CatalogueForm(request.POST, request.FILES)
    report = None
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > catalogue.MAX_BYTES:
                raise catalogue.TypeSetError(gettext("证照目录文件过大（上限 4 MiB）"))
            fmt = dataload.format_of(upload.name)
            entries = catalogue.parse_type_set(upload.read().decode("utf-8-sig"), fmt=fmt)
            report = catalogue.load_types(entries, actor=user, source=upload.name, dry_run=form.cleaned_data["dry_run"])
        except UnicodeDecodeError:
            form.add_error("file", gettext("证照目录文件应为 UTF-8 编码"))
        except catalogue.TypeSetError as exc:
            form.add_error("file", str(exc))
    if report is not None and report.ok and not form.cleaned_data["dry_run"]:
        messages.success(request, report.to_text())
        return redirect("licenses:types")
    context = {"form": form, "report": report, "dry_run": form.is_valid() and form.cleaned_data["dry_run"]}
    return render(request, "licenses/types_load.html", context, status=200 if report is None or report.ok else 422)


@login_required
def issue(request):
    """Issue one licence: choose a type the user's department may issue, then fill in holder and items."""
    user = _official(request)
    department = _issuer(user)
    choices = access.issuable_types(user)
    code = request.POST.get("type") or request.GET.get("type") or ""
    if not code:
        return render(request, "licenses/issue_pick.html", {"types": choices})
    licence_type = _type(code)
    if department is None or licence_type.pk not in {t.pk for t in choices}:
        if request.method == "POST" and department is not None:
            services.check_issuer(licence_type, department, user, action="licenses.licence.issue")  # audited refusal
        raise PermissionDenied(gettext("本部门无权签发该类证照。"))
    form = IssueForm(request.POST or None, licence_type=licence_type)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            licence = services.issue(
                licence_type,
                issuer=department,
                holder_name=data["holder_name"],
                holder_id=data["holder_id"],
                data=form.item_data(),
                actor=user,
                number=data["number"],
                valid_from=data["valid_from"],
                valid_until=data["valid_until"],
                source="page",
            )
        except services.LicenceError as exc:
            form.add_service_errors(exc.message_dict)
        else:
            messages.success(request, gettext("已签发证照 %(identifier)s") % {"identifier": licence.identifier})
            return redirect("licenses:licence", identifier=licence.identifier)
    status = 422 if request.method == "POST" else 200
    context = {"form": form, "type": licence_type, "issuer": department}
    return render(request, "licenses/issue.html", context, status=status)


@login_required
def bulk_issue(request):
    """Bulk issuance from an uploaded CSV: every bad row reported, nothing issued unless all are good."""
    user = _official(request)
    department = _issuer(user)
    choices = access.issuable_types(user)
    if department is None or not choices:
        raise PermissionDenied(gettext("本部门无权签发证照。"))
    form = BulkForm(request.POST or None, request.FILES or None, types=choices)
    report = None
    if request.method == "POST" and form.is_valid():
        licence_type = next(t for t in choices if t.code == form.cleaned_data["type"])
        upload = form.cleaned_data["file"]
        if upload.size > bulk.MAX_BYTES:
            form.add_error("file", gettext("文件过大（上限 64 MiB）"))
        else:
            report = bulk.issue_csv(
                licence_type, upload.read(), issuer=department, actor=user, source=f"import:{upload.name}"[:64]
            )
            if report.ok:
                messages.success(request, report.to_text())
                return redirect(f"{reverse('licenses:index')}?type={licence_type.code}")
    status = 422 if request.method == "POST" else 200
    return render(request, "licenses/bulk.html", {"form": form, "report": report, "types": choices}, status=status)


@login_required
def licence_detail(request, identifier: str):
    """One licence: masked holder data, items, history and credentials, and the actions (the view is audited)."""
    user = _official(request)
    licence = _licence(identifier, user)
    view = access.view_licence(licence, actor=user)
    wallet.record_use(licence, actor=user, channel=LicenceUse.Channel.PAGE)  # shown in the holder's use log
    may_change = services.may_issue(user, licence.licence_type, licence.issuer)
    context = {
        "view": view,
        "licence": licence,
        "may_change": may_change,
        "actions": _available_actions(licence) if may_change else [],
    }
    return render(request, "licenses/licence.html", context)


def _available_actions(licence: Licence) -> list[str]:
    """The actions a licence's status allows."""
    if licence.status == Licence.Status.VALID:
        return ["vary", "renew", "suspend", "revoke"]
    if licence.status == Licence.Status.SUSPENDED:
        return ["vary", "renew", "resume", "revoke"]
    return []


@login_required
def licence_action(request, identifier: str, action: str):
    """Vary, renew, suspend, resume or revoke a licence (GET: the form; POST: do it)."""
    user = _official(request)
    if action not in ACTIONS:
        raise Http404(gettext("未知的操作。"))
    licence = _licence(identifier, user)
    if not services.may_issue(user, licence.licence_type, licence.issuer):
        if request.method == "POST":
            services.check_change(action, licence, user)  # audited refusal
        raise PermissionDenied(gettext("无权变更该证照。"))
    if action == "vary":
        form = VaryForm(request.POST or None, licence=licence, data=services.licence_data(licence))
    elif action == "renew":
        form = RenewForm(request.POST or None)
    else:
        form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if action == "vary":
                services.vary(licence, form.item_data(), actor=user, reason=data["reason"])
            elif action == "renew":
                services.renew(licence, actor=user, valid_until=data["valid_until"], reason=data["reason"])
            else:
                getattr(services, action)(licence, actor=user, reason=data["reason"])
        except services.LicenceError as exc:
            if hasattr(form, "add_service_errors"):
                form.add_service_errors(exc.message_dict)
            else:
                for key, problems in exc.message_dict.items():
                    for problem in problems:
                        form.add_error(key if key in form.fields else None, problem)
        else:
            messages.success(request, gettext("操作已完成。"))
            return redirect("licenses:licence", identifier=licence.identifier)
    status = 422 if request.method == "POST" else 200
    context = {"licence": licence, "form": form, "action": action}
    return render(request, "licenses/action.html", context, status=status)


@login_required
def credential(request, identifier: str):
    """Download the current credential (``.jwt``, ``application/vc+jwt``); audited."""
    user = _official(request)
    licence = _licence(identifier, user)
    try:
        version = int(request.GET.get("version") or 0) or None
    except ValueError:
        raise Http404(gettext("凭证不存在。")) from None
    try:
        found = access.download_credential(licence, actor=user, version=version)
    except Credential.DoesNotExist:
        raise Http404(gettext("凭证不存在。")) from None
    wallet.record_use(licence, actor=user, channel=LicenceUse.Channel.PAGE)
    response = HttpResponse(found.jws, content_type=CREDENTIAL_TYPE)
    filename = access.credential_filename(licence, found.version)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
