"""Routes of the API shell itself: what this API is (``/meta``) and who is calling (``/me``).

``/me`` answers for a browser session or an access token of dgov's OIDC provider. A user's
token answers for its user and needs the ``profile`` scope (the same account data the userinfo
endpoint releases under it); a client-credentials token answers for its client, as kind
``client`` with the client's department. Token callers also see ``client_id`` and ``scopes``.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from ninja import Router, Schema

import dgov
from dgov.api.auth import bearer_auth, session_auth
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
    """The authenticated account, or the client of a client-credentials token (``kind`` ``client``).

    ``client_id`` and ``scopes`` are set for OIDC access tokens only (null for a browser session);
    ``real_name_level`` for accounts only (null for a client).
    """

    id: int
    username: str
    display_name: str
    kind: str
    kind_label: str
    is_staff: bool
    department: DepartmentOut | None
    real_name_level: int | None = None
    client_id: str | None = None
    scopes: list[str] | None = None


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


def _department(department) -> dict | None:
    """A department as DepartmentOut, or None."""
    if department is None:
        return None
    return {
        "id": department.pk,
        "code": department.code,
        "name": department.name,
        "division_code": department.division.code,
        "division_name": department.division.full_name or department.division.name,
    }


@router.get(
    "/me",
    response={200: MeOut, 401: Problem, 403: Problem},
    auth=[session_auth, bearer_auth],
    summary="The calling account",
)
def me(request):
    """The account behind the session or the OIDC access token, or the client of a client-credentials token.

    A user's token must carry the ``profile`` scope (403 otherwise).
    """
    principal = request.auth
    client = getattr(principal, "client", None)
    if client is not None and not hasattr(principal, "pk"):
        # A client-credentials token (dgov.oidc ClientPrincipal): the client acts for itself.
        return {
            "id": client.pk,
            "username": principal.get_username(),
            "display_name": principal.display_name,
            "kind": "client",
            "kind_label": gettext("应用客户端"),
            "is_staff": False,
            "department": _department(principal.department),
            "client_id": principal.client_id,
            "scopes": sorted(principal.scopes),
        }
    user = principal
    token_client = getattr(user, "oidc_client_id", None)
    if token_client is not None and "profile" not in user.scopes:
        raise PermissionDenied(gettext("访问令牌没有 profile 权限范围，不能读取账号信息。"))
    return {
        "id": user.pk,
        "username": user.get_username(),
        "display_name": getattr(user, "display_name", "") or user.get_username(),
        "kind": getattr(user, "kind", ""),
        "kind_label": str(user.get_kind_display()) if hasattr(user, "get_kind_display") else "",
        "is_staff": user.is_staff,
        "department": _department(getattr(user, "department", None)),
        "real_name_level": getattr(user, "real_name_level", None),
        "client_id": token_client,
        "scopes": sorted(user.scopes) if token_client is not None else None,
    }
