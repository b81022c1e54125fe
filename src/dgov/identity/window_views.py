"""The window page for real-name level 3 (现场核验) under /workbench/identity/in-person/.

Thin views over ``dgov.identity.realname``. Window staff (:func:`realname.may_record_in_person`)
look an account up by the resident ID number on the document in front of them or by the mobile
number (``action=lookup``), see masked values only, and record the check for one of the accounts
found (``action=record``) after ticking "已核验身份证件原件". The lookup travels by POST (never in a
URL); what it found is kept in the session for a few minutes as account ids and the blind index of
the ID number, so a record can only name an account that the official's own lookup found. Found by
phone, the official also types the document's ID number, which must be the account's.
"""

from __future__ import annotations

import time

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from dgov.identity import realname
from dgov.identity.models import User

SESSION_KEY = "identity.window_lookup"
LOOKUP_SECONDS = 600
"""How long the accounts of one lookup may be recorded for."""


class LookupForm(forms.Form):
    """The resident ID number on the document, or the account's mobile number."""

    query = forms.CharField(
        label=gettext_lazy("居民身份证号码或手机号码"),
        max_length=24,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "autofocus": True}),
    )


class RecordForm(forms.Form):
    """The official's confirmation for one account of the last lookup."""

    account = forms.IntegerField(widget=forms.HiddenInput)
    document_checked = forms.BooleanField(label=gettext_lazy("已核验身份证件原件"), required=True)
    id_number = forms.CharField(
        label=gettext_lazy("证件上的居民身份证号码"),
        max_length=24,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


def _window_staff(request):
    """The official, or PermissionDenied."""
    if not realname.may_record_in_person(request.user):
        raise PermissionDenied(_("只有所属部门的窗口工作人员可以办理现场核验。"))
    return request.user


def _saved_lookup(request) -> dict | None:
    """The last lookup of this session if it is recent: {"ids", "digest", "by", "at"}."""
    saved = request.session.get(SESSION_KEY)
    if not isinstance(saved, dict) or time.time() - float(saved.get("at", 0)) > LOOKUP_SECONDS:
        return None
    return saved


def _record(request, official, form: RecordForm) -> str:
    """Record the check for the form's account; returns an error message ("" on success)."""
    saved = _saved_lookup(request)
    account_id = form.cleaned_data["account"]
    if saved is None or account_id not in saved.get("ids", []):
        return _("查询已过期，请重新查询。")
    user = User.objects.filter(pk=account_id, is_active=True).first()
    if user is None:
        return _("查询已过期，请重新查询。")
    if saved.get("by") == "id_number":
        document = saved.get("digest", "")
    else:
        document = realname.id_number_digest(form.cleaned_data["id_number"])
        if not document:
            return _("请输入证件上的居民身份证号码。")
    try:
        realname.record_in_person_verification(user, actor=official, document_digest=document, channel="window")
    except realname.RealNameError as exc:
        return str(exc.message)
    return ""


@login_required
@never_cache
def in_person(request):
    """Look an account up and record an in-person check (real-name level 3) for it.

    GET shows the lookup form. ``action=lookup`` answers the masked accounts found (200) or a
    refusal (400); ``action=record`` records the check and redirects back (400 with the reason
    when refused).
    """
    official = _window_staff(request)
    action = request.POST.get("action") if request.method == "POST" else ""
    lookup_form = LookupForm(request.POST if action == "lookup" else None)
    record_form = RecordForm(request.POST if action == "record" else None)
    lookup, error, status = None, "", 200
    if action == "lookup":
        request.session.pop(SESSION_KEY, None)  # a new lookup, successful or not, replaces the last one
        if lookup_form.is_valid():
            try:
                lookup = realname.find_accounts_for_window(lookup_form.cleaned_data["query"], actor=official)
            except realname.RealNameError as exc:
                error = str(exc.message)
            else:
                request.session[SESSION_KEY] = {
                    "ids": [account.pk for account in lookup.accounts],
                    "digest": lookup.digest,
                    "by": lookup.by,
                    "at": time.time(),
                }
        status = 200 if lookup is not None else 400
    elif action == "record":
        error = _("请勾选“已核验身份证件原件”后再登记。")
        if record_form.is_valid():
            error = _record(request, official, record_form)
            if not error:
                messages.success(request, _("已登记现场核验，账号实名等级升为三级。"))
                return redirect("identity:in_person")
        status = 400
    elif request.method == "POST":
        status = 400
    if lookup_form.is_bound and not lookup_form.is_valid():
        error = error or _("请输入有效的居民身份证号码或手机号码。")
    context = {
        # Always an empty form: what was typed (an ID number, a phone) is not sent back unmasked.
        "lookup_form": LookupForm(),
        "lookup": lookup,
        "error": error,
        "by_phone": lookup is not None and lookup.by == "phone",
    }
    return render(request, "identity/in_person.html", context, status=status)
