"""The account console's real-name verification page (实名认证): thin view over dgov.identity.realname."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from dgov.identity import realname
from dgov.identity.models import User
from dgov.identity.views import reauth_required
from dgov.kernel.masking import mask_uscc


class PersonForm(forms.Form):
    """Name and resident ID number of the account holder, checked against the population library."""

    name = forms.CharField(
        label=gettext_lazy("姓名"), max_length=50, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    id_number = forms.CharField(
        label=gettext_lazy("居民身份证号码"),
        max_length=24,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class EnterpriseForm(forms.Form):
    """The enterprise's unified social credit code (统一社会信用代码)."""

    uscc = forms.CharField(
        label=gettext_lazy("统一社会信用代码"),
        max_length=24,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


@never_cache
@reauth_required
def realname_page(request):
    """Show the account's real-name level and verify the person (and, for enterprises, the enterprise).

    As for phone changes, the user must have confirmed their identity in the last few minutes.
    A refused verification answers 400 with the reason on the page.
    """
    user = request.user
    person_form = PersonForm(request.POST if request.POST.get("action") == "person" else None)
    enterprise_form = EnterpriseForm(request.POST if request.POST.get("action") == "enterprise" else None)
    status = 200
    if request.method == "POST":
        try:
            if request.POST.get("action") == "person" and person_form.is_valid():
                realname.verify_person(
                    user, person_form.cleaned_data["name"], person_form.cleaned_data["id_number"], actor=user
                )
                messages.success(request, _("身份信息核验通过。"))
                return redirect("identity:realname")
            if request.POST.get("action") == "enterprise" and enterprise_form.is_valid():
                realname.verify_enterprise(user, enterprise_form.cleaned_data["uscc"], actor=user)
                messages.success(request, _("企业信息核验通过。"))
                return redirect("identity:realname")
        except realname.RealNameError as exc:
            form = person_form if request.POST.get("action") == "person" else enterprise_form
            form.add_error(None, exc.message)
        status = 400
    context = {
        "person_form": person_form,
        "enterprise_form": enterprise_form,
        "is_enterprise": user.kind == User.Kind.ENTERPRISE,
        # An account dropped to level 1 by a change of the population library keeps its blind index
        # and USCC; it shows the forms again, so the same person (enterprise) can verify anew.
        "person_verified": bool(user.id_number_digest)
        and (user.kind == User.Kind.ENTERPRISE or user.real_name_level >= realname.LEVEL_VERIFIED),
        "uscc_masked": (
            mask_uscc(user.enterprise_uscc)
            if user.enterprise_uscc and user.real_name_level >= realname.LEVEL_VERIFIED
            else ""
        ),
    }
    return render(request, "identity/realname.html", context, status=status)
