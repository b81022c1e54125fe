"""Public licence pages and documents (no login): verification, QR landing, issuer documents, status lists.

* ``licences/verify/`` — paste a credential or QR content, or upload the ``.jwt`` file: the verdict
  and each check in plain language, the licence summary with the holder masked;
* ``licences/q/<payload>`` — where a scanned QR code lands: the same verification, online;
* ``licences/issuers/<USCC>`` and ``…/jwks.json`` — the issuer document and its JWK Set (what
  offline verifiers cache);
* ``licences/status/<id>`` — the published status-list credential (``application/vc+jwt``),
  cacheable for its ``ttl``.

Verifications are rate-limited per client address (:mod:`dgov.licenses.ratelimit`) and logged
without the credential's personal data (:func:`dgov.licenses.verification.log_verification`).
"""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.http import HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.utils.http import http_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from dgov.api.problems import problem_response
from dgov.licenses import credentials, keys, ratelimit, statuslist, verification
from dgov.licenses.models import IssuerKey, StatusList

_USCC = re.compile(r"^[0-9A-Z]{18}$")
MAX_UPLOAD_BYTES = verification.MAX_CREDENTIAL_LENGTH


class VerifyForm(forms.Form):
    """A credential or QR content pasted, or a ``.jwt`` file uploaded."""

    credential = forms.CharField(
        label=gettext_lazy("凭证或二维码内容"),
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
        help_text=gettext_lazy("粘贴电子证照凭证（以 eyJ 开头的 VC-JOSE 文本）或扫描二维码得到的网址"),
    )
    file = forms.FileField(
        label=gettext_lazy("或上传凭证文件（.jwt）或证照 PDF"),
        required=False,
        widget=forms.ClearableFileInput(
            attrs={"accept": ".jwt,.txt,.pdf,application/vc+jwt,application/pdf,text/plain"}
        ),
    )

    def clean_credential(self) -> str:
        """At most the verifier's size limit."""
        value = self.cleaned_data.get("credential", "")
        if len(value) > verification.MAX_CREDENTIAL_LENGTH:
            raise forms.ValidationError(
                _("内容过大（超过 %(n)s 个字符）") % {"n": verification.MAX_CREDENTIAL_LENGTH}, code="too_large"
            )
        return value

    def clean_file(self):
        """The uploaded file: a licence PDF (bytes, checked by the PDF verification) or a credential's UTF-8 text."""
        upload = self.cleaned_data.get("file")
        if not upload:
            return ""
        head = upload.read(1024)
        upload.seek(0)
        if head.lstrip()[:5] == b"%PDF-":
            limit = _pdf_limit()
            if upload.size > limit:
                raise forms.ValidationError(_("文件过大（超过 %(n)s 字节）") % {"n": limit}, code="too_large")
            return upload.read(limit + 1)
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("文件过大（超过 %(n)s 字节）") % {"n": MAX_UPLOAD_BYTES}, code="too_large")
        try:
            return upload.read(MAX_UPLOAD_BYTES + 1).decode("utf-8").strip()
        except UnicodeDecodeError:
            raise forms.ValidationError(_("文件不是文本格式的凭证或 PDF"), code="not_text") from None

    def clean(self):
        """Exactly one of the two."""
        cleaned = super().clean()
        text, upload = cleaned.get("credential"), cleaned.get("file")
        if self.errors:
            return cleaned
        if text and upload:
            raise forms.ValidationError(_("请只粘贴内容或只上传文件，不要同时提交"), code="both")
        if not text and not upload:
            raise forms.ValidationError(_("请粘贴凭证或二维码内容，或上传凭证文件"), code="empty")
        cleaned["presented"] = text or upload
        return cleaned


def _pdf_limit() -> int:
    """The largest licence PDF accepted for verification."""
    return int(getattr(settings, "LICENCE_PDF_MAX_BYTES", 5 * 1024 * 1024))


def verify_presented(presented) -> verification.VerificationResult:
    """Verify what was submitted: PDF bytes through the PDF verification, anything else as a credential or QR."""
    if isinstance(presented, bytes):
        from dgov.licenses import pdfsign

        return pdfsign.verify_pdf(presented)
    return verification.verify(presented)


def _throttled(request, wait: int) -> HttpResponse:
    """The verify page with a 'too many requests' notice (429, Retry-After)."""
    response = render(
        request, "licenses/public/verify.html", {"form": VerifyForm(), "throttled": True, "wait": wait}, status=429
    )
    response["Retry-After"] = str(wait)
    return response


def _no_store(response: HttpResponse) -> HttpResponse:
    """Verification answers are not cached or indexed, and their URLs never leave the site as Referer.

    ``same-origin`` rather than ``no-referrer``: with no referrer at all, browsers send ``Origin: null``
    on the page's own form posts, which the CSRF check rightly refuses.
    """
    patch_cache_control(response, no_store=True, private=True)
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def verify_page(request):
    """The public verification page: a form, and after a submission the verdict with every check."""
    form = VerifyForm(request.POST, request.FILES) if request.method == "POST" else VerifyForm()
    result = None
    if request.method == "POST":
        wait = ratelimit.retry_after(request)
        if wait:
            return _throttled(request, wait)
        if form.is_valid():
            result = verify_presented(form.cleaned_data["presented"])
            verification.log_verification(result, channel="page")
            form = VerifyForm()
    return _no_store(render(request, "licenses/public/verify.html", {"form": form, "result": result}))


@require_GET
def qr_landing(request, payload: str):
    """Where a scanned QR code lands: the payload verified online, shown like the verify page."""
    wait = ratelimit.retry_after(request)
    if wait:
        return _no_store(_throttled(request, wait))
    result = verification.verify(f"{credentials.site_url()}{verification.QR_PATH}{payload}")
    verification.log_verification(result, channel="qr")
    context = {"form": VerifyForm(), "result": result, "from_qr": True}
    return _no_store(render(request, "licenses/public/verify.html", context))


def _key_max_age() -> int:
    """How long issuer documents may be cached: as long as the platform caches keys itself."""
    return int(getattr(settings, "KEY_CACHE_SECONDS", 60))


def _public_json(data: dict, *, max_age: int) -> JsonResponse:
    """A public JSON document, cacheable and readable from other origins (browser-based verifiers)."""
    response = JsonResponse(data, json_dumps_params={"ensure_ascii": False})
    patch_cache_control(response, public=True, max_age=max_age)
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _issuer(uscc: str):
    """The organization with this USCC that holds licence signing keys, or None."""
    from dgov.kernel.models import Organization

    if not _USCC.match(uscc or ""):
        return None
    organization = Organization.objects.filter(uscc=uscc).first()
    if organization is None or not IssuerKey.objects.filter(organization=organization).exists():
        return None
    return organization


@require_GET
def issuer_document(request, uscc: str):
    """The issuer document: id, name, USCC and where its JWK Set is."""
    organization = _issuer(uscc)
    if organization is None:
        return problem_response(request, 404, detail=_("没有该签发机构。"))
    issuer_id = credentials.issuer_url(organization)
    return _public_json(
        {
            "id": issuer_id,
            "type": "LicenceIssuer",
            "name": organization.name,
            "uscc": organization.uscc,
            "jwks_uri": f"{issuer_id}/jwks.json",
        },
        max_age=_key_max_age(),
    )


@require_GET
def issuer_jwks(request, uscc: str):
    """The issuer's JWK Set: active and retired keys (revoked keys are left out)."""
    organization = _issuer(uscc)
    if organization is None:
        return problem_response(request, 404, detail=_("没有该签发机构。"))
    return _public_json(keys.issuer_jwks(organization), max_age=_key_max_age())


@require_GET
def status_list(request, list_id: int):
    """The published status-list credential (``application/vc+jwt``), cacheable for its ttl; 404 before publication."""
    row = (
        StatusList.objects.filter(pk=list_id)
        .exclude(published="")
        .values("published", "published_version", "published_at")
        .first()
    )
    if row is None:
        return problem_response(request, 404, detail=_("该状态列表尚未发布。"))
    etag = f'"{list_id}.{row["published_version"]}"'
    ttl = max(1, int(statuslist.publish_interval()))
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(row["published"], content_type="application/vc+jwt")
    response["ETag"] = etag
    if row["published_at"] is not None:
        response["Last-Modified"] = http_date(row["published_at"].timestamp())
    patch_cache_control(response, public=True, max_age=ttl)
    response["Access-Control-Allow-Origin"] = "*"
    return response
