"""The holder's wallet pages (我的证照) under /account/licences/: licences, downloads, consents, the use log.

Thin views: who the holder is comes from :func:`dgov.licenses.wallet.holder_of` (the verified
person, the verified enterprise, or an agent acting for the enterprise with the ``licences``
scope); every read and change goes through :mod:`dgov.licenses.wallet`, which audits it. A licence
that is not the holder's is answered 404 (never "forbidden": its existence is not disclosed).
"""

from __future__ import annotations

import contextlib

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from dgov.identity import agents
from dgov.kernel.models import Organization
from dgov.licenses import access, pdf_views, qr, wallet
from dgov.licenses.models import Licence, LicenceConsent

USES_PAGE_SIZE = 20
CREDENTIAL_TYPE = "application/vc+jwt"


class ConsentForm(forms.Form):
    """用证授权: the department (by code, chosen from the search), the purpose, the period and a service item."""

    grantee = forms.CharField(label=_("被授权部门"), max_length=32)
    purpose = forms.CharField(label=_("用途"), max_length=300)
    days = forms.IntegerField(label=_("授权天数"), min_value=1)
    service_code = forms.CharField(
        label=_("服务事项编码"),
        max_length=64,
        required=False,
        help_text=_("可选：仅允许在办理该事项时使用"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        maximum = wallet.consent_max_days()
        self.fields["days"] = forms.IntegerField(
            label=_("授权天数"),
            min_value=1,
            max_value=maximum,
            initial=wallet.consent_default_days(),
            help_text=_("最长 %(n)d 天") % {"n": maximum},
        )

    def clean_grantee(self) -> Organization:
        """The chosen department, active."""
        code = self.cleaned_data["grantee"].strip()
        department = Organization.objects.filter(code=code, is_active=True).first()
        if department is None:
            raise forms.ValidationError(gettext("请选择有效的部门"))
        return department


def _holder(request) -> wallet.Holder:
    """The holder the request stands for (the enterprise when acting as its agent); WalletRefusal otherwise."""
    return wallet.holder_of(request.user, agency=agents.acting_agency(request))


def _holder_or_403(request) -> wallet.Holder:
    """The holder the request stands for; PermissionDenied (403) saying why when there is none."""
    try:
        return _holder(request)
    except wallet.WalletRefusal as exc:
        raise PermissionDenied(exc.message) from None


def _refused(request, exc: wallet.WalletRefusal):
    """The page saying why there is no wallet (403), with the way to real-name verification when that is why."""
    return render(request, "licenses/wallet/refused.html", {"refusal": exc}, status=403)


def _licence(holder: wallet.Holder, identifier: str, *, action: str) -> Licence:
    """The holder's licence (404 for any other, the attempt audited)."""
    try:
        return wallet.find_own(holder, identifier, action=action)
    except Licence.DoesNotExist:
        raise Http404(gettext("证照不存在。")) from None


@never_cache
@login_required
def index(request):
    """我的证照: the holder's licences with type, issuer, number, validity and status."""
    try:
        holder = _holder(request)
    except wallet.WalletRefusal as exc:
        return _refused(request, exc)
    today = timezone.localdate()
    rows = [
        {
            "licence": licence,
            "status": (status := wallet.effective_status(licence, today)),
            "label": wallet.STATUS_LABELS[status],
        }
        for licence in wallet.list_licences(holder)
    ]
    context = {"rows": rows, "holder": holder, "acting": holder.agency}
    return render(request, "licenses/wallet/index.html", context)


@never_cache
@login_required
def licence_detail(request, identifier: str):
    """One licence of the holder: facts, data items, QR code, downloads, consents and the use log."""
    try:
        holder = _holder(request)
    except wallet.WalletRefusal as exc:
        return _refused(request, exc)
    try:
        licence = wallet.open_licence(holder, identifier)
    except Licence.DoesNotExist:
        raise Http404(gettext("证照不存在。")) from None
    status = wallet.effective_status(licence)
    qr_svg = None
    if licence.status != Licence.Status.REVOKED:
        try:
            qr_svg = qr.qr_svg(licence)
        except Exception:  # noqa: BLE001 - a QR code that cannot be drawn must not hide the licence
            qr_svg = None
    now = timezone.now()
    consents = [
        {"consent": c, "state": (state := wallet.consent_state(c, now)), "label": wallet.CONSENT_STATE_LABELS[state]}
        for c in wallet.consents_of(holder, licence)
    ]
    uses = Paginator(wallet.uses_of(holder, licence), USES_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "licence": licence,
        "status": status,
        "status_label": wallet.STATUS_LABELS[status],
        "items": access.labelled_items(licence, masked=False),
        "holder_id": access.masked_holder_id(licence),
        "qr_svg": qr_svg,
        "consents": consents,
        "uses": uses,
        "acting": holder.agency,
        "may_consent": status == "valid",
    }
    return render(request, "licenses/wallet/licence.html", context)


@never_cache
@login_required
def credential(request, identifier: str):
    """The current credential of the holder's licence (``.jwt``, ``application/vc+jwt``); audited."""
    holder = _holder_or_403(request)
    licence = _licence(holder, identifier, action="licenses.credential.download")
    found = wallet.credential_for(holder, licence)
    response = HttpResponse(found.jws, content_type=CREDENTIAL_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{access.credential_filename(licence, found.version)}"'
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@login_required
def pdf(request, identifier: str):
    """The signed PDF form of the holder's licence, as an attachment; audited."""
    holder = _holder_or_403(request)
    licence = _licence(holder, identifier, action="licenses.licence.pdf")
    return pdf_views.pdf_response(licence, wallet.pdf_for(holder, licence))


@never_cache
@login_required
def consent_new(request, identifier: str):
    """用证授权: search a department by name (GET ``q``), then authorize it (POST)."""
    try:
        holder = _holder(request)
    except wallet.WalletRefusal as exc:
        return _refused(request, exc)
    licence = _licence(holder, identifier, action="licenses.consent.grant")
    query = (request.POST.get("q") or request.GET.get("q") or "").strip()[:64]
    form = ConsentForm(request.POST or None, initial={"days": wallet.consent_default_days()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            consent = wallet.grant_consent(
                holder,
                licence,
                grantee=data["grantee"],
                purpose=data["purpose"],
                days=data["days"],
                service_code=data["service_code"],
            )
        except wallet.ConsentError as exc:
            for key, problems in exc.message_dict.items():
                for problem in problems:
                    form.add_error(key if key in form.fields else None, problem)
        else:
            messages.success(
                request,
                gettext("已授权%(department)s使用该证照，至 %(until)s。")
                % {
                    "department": consent.grantee.name,
                    "until": timezone.localtime(consent.valid_until).strftime("%Y-%m-%d %H:%M"),
                },
            )
            return redirect("wallet:licence", identifier=licence.identifier)
    chosen = request.POST.get("grantee", "")
    context = {
        "licence": licence,
        "form": form,
        "query": query,
        "departments": wallet.find_departments(query),
        "chosen": chosen,
        "max_days": wallet.consent_max_days(),
        "acting": holder.agency,
    }
    return render(request, "licenses/wallet/consent.html", context, status=422 if request.method == "POST" else 200)


@require_POST
@login_required
def consent_revoke(request, pk: int):
    """Withdraw one of the holder's consents (撤回授权)."""
    holder = _holder_or_403(request)
    consent = wallet.consents_of(holder).filter(pk=pk).first()
    if consent is None:
        other = LicenceConsent.objects.filter(pk=pk).first()
        if other is not None:
            with contextlib.suppress(PermissionDenied):
                wallet.revoke_consent(holder, other)  # refused, and the attempt audited
        raise Http404(gettext("授权不存在。"))
    try:
        wallet.revoke_consent(holder, consent)
    except wallet.ConsentError as exc:
        messages.error(request, "；".join(exc.messages))
    else:
        messages.success(request, gettext("已撤回对%(department)s的授权。") % {"department": consent.grantee.name})
    return redirect("wallet:licence", identifier=consent.licence.identifier)
