"""Portal and workbench pages (thin: parse, authorize, call services, render)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import CharField
from django.db.models.functions import Cast
from django.http import HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View, defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from dgov.api.problems import problem_response
from dgov.identity import services as identity_services
from dgov.kernel.models import Division
from dgov.kernel.services import audit as audit_service
from dgov.kernel.services import divisions as divisions_service
from dgov.kernel.services import organizations as organizations_service
from dgov.web import navigation
from dgov.web.forms import DivisionSearchForm, LoginForm

DIVISION_RESULTS_LIMIT = 50
WORKBENCH_CARD_LIMIT = 10

# What the platform offers, shown on the home page; an item links to its page once an app has
# registered a portal menu entry with the same key, and is plain text until then.
PLATFORM_FEATURES = [
    ("services", _("一网通办"), _("办事指南、在线申请、进度查询，材料一次提交、部门协同办理。")),
    ("licences", _("电子证照"), _("证照电子化签发、亮证与核验，减少群众重复提交纸质材料。")),
    ("hotline", _("12345 热线"), _("咨询、求助、投诉、建议统一受理，派单、督办、回访全程留痕。")),
    ("opendata", _("数据开放"), _("公共数据资源目录与开放数据集，依规向社会开放、供企业利用。")),
    ("divisions", _("行政区划"), _("全省省、市、县、乡、村五级行政区划代码查询。")),
]


def _wants_partial(request) -> bool:
    """True for an htmx request that replaces part of the page (not a history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def home(request):
    """The public portal's home page."""
    features = []
    links = {link.key: link.url for link in navigation.links("portal", user=request.user)}
    for key, title, text in PLATFORM_FEATURES:
        features.append({"key": key, "title": title, "text": text, "url": links.get(key)})
    return render(request, "web/home.html", {"features": features})


def _division_results(form: DivisionSearchForm) -> dict:
    """Divisions for a valid search form: by name/code, the children of one, or the demo province's."""
    q = form.cleaned_data.get("q") or ""
    parent_code = form.cleaned_data.get("parent") or ""
    parent = None
    if q:
        rows = divisions_service.find_divisions(q, limit=DIVISION_RESULTS_LIMIT + 1)
    else:
        parent = divisions_service.get_division(parent_code or settings.DEMO_PROVINCE_CODE)
        if parent is not None:
            rows = divisions_service.children(parent.code)
        elif parent_code:
            rows = []
        else:  # no demo province loaded: start from the provinces
            rows = divisions_service.find_divisions("", level=Division.Level.PROVINCE, limit=None)
    truncated = len(rows) > DIVISION_RESULTS_LIMIT
    rows = rows[:DIVISION_RESULTS_LIMIT]
    # One read to know which rows can be opened further (placeholders count: children() looks through them).
    with_children = set(
        Division.objects.filter(parent__in=rows, is_current=True)
        .values_list("parent_id", flat=True)
        .distinct()
    )
    back = None
    if parent is not None and parent_code:
        back = parent.parent.code if parent.parent is not None and not parent.parent.placeholder else ""
    return {
        "q": q,
        "parent": parent,
        "back": back,
        "divisions": [(d, d.pk in with_children) for d in rows],
        "shown": len(rows),
        "truncated": truncated,
        "limit": DIVISION_RESULTS_LIMIT,
    }


def divisions(request):
    """The administrative divisions: search as you type (htmx partial) or browse level by level."""
    form = DivisionSearchForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        context = {"form": form, "divisions": [], "invalid": True}
    else:
        if not form.is_bound:
            form = DivisionSearchForm({})
            form.is_valid()
        context = {"form": form, **_division_results(form)}
    template = "web/_division_results.html" if _wants_partial(request) else "web/divisions.html"
    response = render(request, template, context)
    # The same URL answers a fragment or a page: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


@method_decorator([sensitive_post_parameters("password"), csrf_protect, never_cache], name="dispatch")
class LoginView(View):
    """The password step of the login; officials land on their workbench, everyone else on the portal.

    A valid password either logs the user in or leads on to the second factor (identity app);
    every refusal shows one message, whether the name is unknown, the password wrong or the
    account locked.
    """

    template_name = "web/login.html"

    def _next_url(self, user) -> str:
        """The ?next= target when it is on this site, else the workbench (officials) or the portal."""
        candidate = self.request.POST.get("next") or self.request.GET.get("next") or ""
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={self.request.get_host()}, require_https=self.request.is_secure()
        ):
            return candidate
        if navigation.officials_only(user):
            return reverse("web:workbench")
        return resolve_url(settings.LOGIN_REDIRECT_URL)

    def _render(self, form):
        """The login page."""
        next_url = self.request.POST.get("next") or self.request.GET.get("next") or ""
        return render(self.request, self.template_name, {"form": form, "next": next_url})

    def get(self, request):
        """The empty form (a logged-in user goes straight on)."""
        if request.user.is_authenticated:
            return HttpResponseRedirect(self._next_url(request.user))
        return self._render(LoginForm())

    def post(self, request):
        """Check the password, then log in or go on to the second factor."""
        form = LoginForm(request.POST)
        if form.is_valid():
            user = identity_services.authenticate_password(
                request, form.cleaned_data["username"], form.cleaned_data["password"]
            )
            if user is not None:
                _step, url = identity_services.begin_login(request, user, next_url=self._next_url(user))
                return HttpResponseRedirect(url)
            form.add_error(None, identity_services.LOGIN_FAILED_MESSAGE)
        return self._render(form)


class LogoutView(auth_views.LogoutView):
    """Logout by POST (a link could be triggered by any page the user visits)."""

    http_method_names = ["post", "options"]


@login_required
def workbench(request):
    """The officials' workbench: my department, its division, organizations in scope, recent audit."""
    user = request.user
    if not navigation.officials_only(user):
        raise PermissionDenied(gettext("工作台仅向工作人员和系统管理员开放。"))
    department = getattr(user, "department", None)
    context = {"department": department, "division": None, "organizations": [], "organizations_total": 0}
    if department is not None:
        division = department.division
        scope = organizations_service.organizations_in_scope(division.code)
        context.update(
            {
                "division": division,
                "organizations": list(
                    scope.order_by("level", "division__code", "code")[:WORKBENCH_CARD_LIMIT]
                ),
                "organizations_total": scope.count(),
            }
        )
    context["audit_records"] = _department_audit(department)
    return render(request, "web/workbench.html", context)


def _department_audit(department) -> list:
    """The latest audit records of actions taken by the officials of ``department``."""
    if department is None:
        return []
    # The audit log names actors by plain values (kind "user", id = primary key as text), not by
    # foreign key, so the department's officials are matched through a subquery on their ids.
    official_ids = (
        get_user_model()
        .objects.filter(department=department)
        .annotate(id_text=Cast("pk", CharField()))
        .values("id_text")
    )
    return audit_service.recent_records(actor_ids=official_ids, limit=WORKBENCH_CARD_LIMIT)


# --- Error pages: the base layout for people, problem+json for the API -----------------------------


def _is_api(request) -> bool:
    """True when the failed request was addressed to the JSON API."""
    return request.path.startswith("/api/")


def bad_request(request, exception):
    """400 page."""
    if _is_api(request):
        return problem_response(request, 400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    """403 page."""
    if _is_api(request):
        return problem_response(request, 403, detail=(str(exception) if exception.args else None))
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    """404 page."""
    if _is_api(request):
        return problem_response(request, 404, detail=gettext("请求的资源不存在。"))
    return defaults.page_not_found(request, exception)


def server_error(request):
    """500 page (rendered without context processors: the failure may be in them)."""
    if _is_api(request):
        return problem_response(
            request, 500, detail=gettext("服务器处理请求时出错，请凭请求编号联系管理员。")
        )
    return defaults.server_error(request)
