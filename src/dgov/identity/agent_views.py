"""The account console's agent pages (经办人): thin views over dgov.identity.agents.

Enterprise accounts manage their agents (经办人管理: list, grant after re-authentication,
revoke); person accounts see the enterprises they act for (我代理的企业), switch to acting for one
(以企业身份办事) and back (返回个人身份), or renounce an authorization.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from dgov.identity import agents
from dgov.identity.models import EnterpriseAgent, User
from dgov.identity.views import reauth_required
from dgov.kernel.masking import mask_uscc


def _local_today() -> dt.date:
    """Today in the platform's time zone (Asia/Shanghai)."""
    return timezone.localdate()


def _end_of_day(day: dt.date) -> dt.datetime:
    """The last second of ``day`` in the platform's time zone, as an aware datetime."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=ZoneInfo(settings.TIME_ZONE))


class GrantForm(forms.Form):
    """Name and resident ID number of the agent, the scopes and the last day of the authorization."""

    name = forms.CharField(label=gettext_lazy("经办人姓名"), max_length=50)
    id_number = forms.CharField(
        label=gettext_lazy("经办人居民身份证号码"),
        max_length=24,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("授权范围"),
        choices=list(agents.AGENT_SCOPES.items()),
        widget=forms.CheckboxSelectMultiple,
    )
    valid_until = forms.DateField(
        label=gettext_lazy("授权截止日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        days = agents.agent_max_days()
        self.fields["valid_until"].help_text = _("含当日，最长 %(days)d 天。") % {"days": days}
        if not self.is_bound:
            self.initial.setdefault("valid_until", _local_today() + dt.timedelta(days=days - 1))


def _labels(agency: EnterpriseAgent) -> list[str]:
    """The labels of an authorization's scopes, in catalogue order."""
    return [str(label) for key, label in agents.AGENT_SCOPES.items() if key in agency.scopes]


def _enterprise(request) -> User:
    """The logged-in enterprise account, or 404 for other kinds of account."""
    if request.user.kind != User.Kind.ENTERPRISE:
        raise Http404(_("只有法人账号可以管理经办人。"))
    return request.user


def _agents_page(request, form: GrantForm, *, status: int = 200, show_form: bool = True):
    """Render the enterprise's agents page."""
    user = request.user
    now = timezone.now()
    rows = [
        {"agency": a, "in_force": a.in_force(now), "expired": a.valid_until <= now, "scopes": _labels(a)}
        for a in agents.agents_of(user)
    ]
    context = {
        "ready": agents.enterprise_ready(user),
        "rows": rows,
        "form": form,
        "uscc_masked": mask_uscc(user.enterprise_uscc),
        "show_form": show_form,
    }
    return render(request, "identity/agents.html", context, status=status)


@never_cache
@login_required
def agents_page(request):
    """经办人管理: the enterprise's authorizations and the form to grant one (which asks to re-authenticate)."""
    _enterprise(request)
    return _agents_page(request, GrantForm(), show_form=False)


@never_cache
@reauth_required
def grant(request):
    """Grant an authorization; as for other sensitive changes, the user must have re-authenticated recently."""
    enterprise = _enterprise(request)
    form = GrantForm(request.POST or None)
    if request.method != "POST":
        return _agents_page(request, form)
    if form.is_valid():
        data = form.cleaned_data
        try:
            agency = agents.grant_agency(
                enterprise,
                name=data["name"],
                id_number=data["id_number"],
                scopes=data["scopes"],
                valid_until=_end_of_day(data["valid_until"]),
                actor=request.user,
            )
        except agents.AgencyError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("已授权 %(name)s 为经办人。") % {"name": agency.agent.display_name})
            return redirect("identity:agents")
    return _agents_page(request, form, status=400)


def _own_agency(request, pk: int) -> EnterpriseAgent:
    """An authorization the logged-in account granted or holds; 404 for anyone else's (no IDOR)."""
    user = request.user
    agency = (
        EnterpriseAgent.objects.select_related("enterprise", "agent")
        .filter(pk=pk)
        .filter(**({"enterprise": user} if user.kind == User.Kind.ENTERPRISE else {"agent": user}))
        .first()
    )
    if agency is None:
        raise Http404(_("授权不存在。"))
    return agency


@require_POST
@login_required
def revoke(request, pk: int):
    """Revoke an authorization (the enterprise) or renounce it (the agent)."""
    agency = _own_agency(request, pk)
    try:
        agents.revoke_agency(agency, actor=request.user, reason=request.POST.get("reason", "")[:200])
    except agents.AgencyError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("授权已撤销。"))
    return redirect("identity:agents" if request.user.kind == User.Kind.ENTERPRISE else "identity:agencies")


@never_cache
@login_required
def agencies_page(request):
    """我代理的企业: the authorizations the person holds, with the switch to act for an enterprise."""
    if request.user.kind != User.Kind.PERSON:
        raise Http404(_("只有个人账号可以作为经办人。"))
    now = timezone.now()
    acting = agents.acting_agency(request)
    rows = [
        {
            "agency": a,
            "in_force": a.in_force(now),
            "acting": acting is not None and acting.pk == a.pk,
            "uscc_masked": mask_uscc(a.enterprise.enterprise_uscc),
            "scopes": _labels(a),
        }
        for a in agents.agencies_of(request.user)
    ]
    context = {"rows": rows, "acting": acting}
    return render(request, "identity/agencies.html", context)


@require_POST
@login_required
def act(request, pk: int):
    """以企业身份办事: act for the authorization's enterprise in this session."""
    if request.user.kind != User.Kind.PERSON:
        raise Http404(_("只有个人账号可以作为经办人。"))
    agency = _own_agency(request, pk)
    try:
        agents.start_acting(request, agency)
    except agents.AgencyError as exc:
        messages.error(request, exc.message)
        return redirect("identity:agencies")
    name = agency.enterprise_name or mask_uscc(agency.enterprise.enterprise_uscc)
    messages.success(request, _("您正在以“%(name)s”经办人身份办事。") % {"name": name})
    return redirect("identity:account")


@require_POST
@login_required
def stop(request):
    """返回个人身份: stop acting for an enterprise."""
    agents.stop_acting(request)
    messages.success(request, _("已返回个人身份。"))
    return redirect("identity:account")
