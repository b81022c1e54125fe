"""Download of a licence's PDF form (证照版式文件下载) for its issuer, competent department and holder."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET

from dgov.licenses import services
from dgov.licenses.models import Licence


@login_required
@require_GET
def licence_pdf(request, identifier: str) -> HttpResponse:
    """The signed PDF of a licence's current version, as an attachment (403 for anyone else)."""
    licence = Licence.objects.select_related("licence_type", "issuer").filter(identifier=identifier[:128]).first()
    if licence is None:
        raise Http404
    data = services.render_pdf(licence, actor=request.user)  # PermissionDenied → 403
    return pdf_response(licence, data)


def pdf_response(licence: Licence, data: bytes) -> HttpResponse:
    """The PDF form ``data`` of ``licence`` as a download named after its type and number, never cached."""
    filename = f"{licence.licence_type.name}-{licence.number}.pdf"
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f"attachment; filename=\"licence.pdf\"; filename*=UTF-8''{quote(filename)}"
    response["Cache-Control"] = "no-store"  # personal data
    response["X-Content-Type-Options"] = "nosniff"
    return response
