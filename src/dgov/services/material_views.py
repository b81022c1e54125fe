"""Downloads of an application's material files (申请材料): for the competent department and for the applicant.

Thin views over :func:`dgov.services.materials.read_file` (which authorizes again and audits every
read as ``services.material.read``). An official sees only the files of applications of the
official's own department; an applicant or verified holder only those of their applications
(:func:`dgov.services.applications.applications_of`). Anything else is a 404, not a 403.
The file is sent as an attachment, never cached.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache

from dgov.kernel.crypto import CryptoError
from dgov.services import applications, materials
from dgov.services.models import Application, ApplicationMaterial


def _file(app: Application | None, material_id: int) -> ApplicationMaterial:
    """The application's material row that holds a file, else 404."""
    if app is None:
        raise Http404
    row = app.materials.select_related("application").filter(pk=material_id).exclude(sha256="").first()
    if row is None:
        raise Http404
    return row


def _send(row: ApplicationMaterial, user) -> HttpResponse:
    """The file as an attachment (409 when its sealed bytes fail their check)."""
    try:
        data = materials.read_file(row, actor=user)
    except PermissionDenied:
        raise Http404 from None
    except (CryptoError, ValueError):
        return HttpResponse(gettext("材料文件校验失败，请联系系统管理员。"), status=409, content_type="text/plain")
    response = HttpResponse(data, content_type=row.content_type or "application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(True, row.file_name or f"material-{row.pk}")
    return response


@login_required
@never_cache
def official_download(request, number: str, material_id: int):
    """An official of the application's competent department downloads one of its files."""
    user = request.user
    if getattr(user, "kind", "") != "official" or getattr(user, "department_id", None) is None:
        raise PermissionDenied(gettext("办件材料仅向承办部门工作人员开放。"))
    app = Application.objects.filter(number=number, department_id=user.department_id).first()
    return _send(_file(app, material_id), user)


@login_required
@never_cache
def my_download(request, number: str, material_id: int):
    """The applicant (or verified holder) downloads one of the application's files."""
    app = applications.applications_of(request.user).filter(number=number).first()
    return _send(_file(app, material_id), request.user)
