"""Routes of the API shell itself: what this API is (``/meta``) and who is calling (``/me``)."""

from __future__ import annotations

from datetime import datetime

from django.urls import reverse
from django.utils import timezone
from ninja import Router, Schema

import dgov
from dgov.api.auth import session_auth
from dgov.api.problems import Problem

router = Router(tags=["meta"])

API_VERSION = "v1"


class MetaOut(Schema):
    """Identification of the API and the server clock."""

    name: str
    version: str
    api_version: str
    time: datetime
    docs_url: str
    openapi_url: str


class DepartmentOut(Schema):
    """The department an official belongs to, with its administrative division."""

    id: int
    code: str
    name: str
    division_code: str
    division_name: str


class MeOut(Schema):
    """The authenticated account."""

    id: int
    username: str
    display_name: str
    kind: str
    kind_label: str
    is_staff: bool
    department: DepartmentOut | None


@router.get("/meta", response=MetaOut, auth=None, summary="About this API")
def meta(request):
    """Name and version of the platform, the server time (Asia/Shanghai) and where the docs are."""
    return {
        "name": "dgov",
        "version": dgov.__version__,
        "api_version": API_VERSION,
        "time": timezone.localtime(),
        "docs_url": request.build_absolute_uri(reverse("api:openapi-view")),
        "openapi_url": request.build_absolute_uri(reverse("api:openapi-json")),
    }


@router.get("/me", response={200: MeOut, 401: Problem}, auth=session_auth, summary="The calling account")
def me(request):
    """The account behind the session (later also behind an OIDC bearer token)."""
    user = request.auth
    department = getattr(user, "department", None)
    return {
        "id": user.pk,
        "username": user.get_username(),
        "display_name": getattr(user, "display_name", "") or user.get_username(),
        "kind": getattr(user, "kind", ""),
        "kind_label": str(user.get_kind_display()) if hasattr(user, "get_kind_display") else "",
        "is_staff": user.is_staff,
        "department": (
            {
                "id": department.pk,
                "code": department.code,
                "name": department.name,
                "division_code": department.division.code,
                "division_name": department.division.full_name or department.division.name,
            }
            if department is not None
            else None
        ),
    }
