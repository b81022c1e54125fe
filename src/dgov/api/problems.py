"""RFC 9457 problem details: the one error format of the JSON API.

Every error answer has ``Content-Type: application/problem+json`` and the members ``type``,
``title``, ``status``, ``detail`` and ``instance``, plus ``request_id`` (the id in the logs and in
the ``X-Request-ID`` header) and, for bad input, ``errors`` (one entry per offending field).

Routes raise ordinary exceptions (``HttpError``, ``Http404``, ``PermissionDenied``, Django's
``ValidationError``); the handlers installed by :func:`install` turn them into problems. A route
that needs a problem with its own type calls :func:`problem_response` directly.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from dgov.kernel.observability import current_request_id

logger = logging.getLogger("dgov.api")

CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:dgov:problem:"

# Problem types: stable identifiers clients can switch on; the title is the human summary.
TYPES: dict[str, Any] = {
    "bad-request": _("请求无效"),
    "unauthenticated": _("需要登录"),
    "forbidden": _("无权访问"),
    "not-found": _("资源不存在"),
    "method-not-allowed": _("不支持该请求方法"),
    "conflict": _("资源状态冲突"),
    "validation-error": _("请求参数校验失败"),
    "invalid-data": _("数据不符合业务规则"),
    "too-many-requests": _("请求过于频繁"),
    "payload-too-large": _("请求内容过大"),
    "internal-error": _("服务器内部错误"),
    "bad-gateway": _("上游服务应答错误"),
    "service-unavailable": _("服务暂不可用"),
    "gateway-timeout": _("上游服务应答超时"),
}

_STATUS_TYPES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    422: "validation-error",
    429: "too-many-requests",
    500: "internal-error",
}


class ProblemError(Schema):
    """One offending input: where it is (``loc``), what is wrong (``msg``) and a machine code (``type``)."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(Schema):
    """An RFC 9457 problem details object (declare it as the response schema of error statuses)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str
    errors: list[ProblemError] | None = None


def problem_type(slug: str) -> str:
    """The full type URI of a problem slug, e.g. ``urn:dgov:problem:not-found``."""
    return TYPE_PREFIX + slug


def problem_response(
    request: HttpRequest,
    status: int,
    *,
    detail: str | None = None,
    slug: str | None = None,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> HttpResponse:
    """Build an ``application/problem+json`` response; ``slug`` defaults to the status's generic type."""
    slug = slug or _STATUS_TYPES.get(status) or ("bad-request" if status < 500 else "internal-error")
    if title is None:
        title = str(TYPES[slug]) if slug in TYPES else HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title,
        "status": status,
        "detail": detail if detail is not None else title,
        # The path without the query string: queries may carry personal data (ID numbers, phones).
        "instance": request.path if request is not None else "",
        "request_id": getattr(request, "request_id", None) or current_request_id(),
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extensions)
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, cls=DjangoJSONEncoder),
        status=status,
        content_type=f"{CONTENT_TYPE}; charset=utf-8",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _ninja_errors(exc: NinjaValidationError) -> list[dict[str, Any]]:
    """Ninja/pydantic errors as loc/msg/type; input values are never echoed (they may be personal data)."""
    result = []
    for error in exc.errors:
        result.append(
            {
                "loc": [part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "invalid")),
            }
        )
    return result


def _django_errors(exc: DjangoValidationError) -> list[dict[str, Any]]:
    """A Django ValidationError's messages as problem errors, keyed by field when it has fields."""
    result = []
    if hasattr(exc, "error_dict"):
        for field, field_errors in exc.error_dict.items():
            loc = [] if field == "__all__" else [field]
            for err in field_errors:
                for message in err.messages:
                    result.append({"loc": loc, "msg": message, "type": err.code or "invalid"})
    else:
        for err in exc.error_list:
            for message in err.messages:
                result.append({"loc": [], "msg": message, "type": err.code or "invalid"})
    return result


def handle_ninja_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    """422: the request did not match the operation's schema (body, query, path, header)."""
    errors = _ninja_errors(exc)
    first = errors[0] if errors else None
    detail = gettext("%(count)d 处输入不符合要求") % {"count": len(errors)}
    if first is not None:
        where = ".".join(str(part) for part in first["loc"])
        detail = f"{detail}: {where}: {first['msg']}" if where else f"{detail}: {first['msg']}"
    return problem_response(request, 422, slug="validation-error", detail=detail, errors=errors)


def handle_django_validation(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    """400: a service or validator refused the data (Chinese messages from validators pass through)."""
    errors = _django_errors(exc)
    detail = "；".join(e["msg"] for e in errors) or str(TYPES["invalid-data"])
    return problem_response(request, 400, slug="invalid-data", detail=detail, errors=errors)


def handle_authentication(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    """401: no valid credentials were presented."""
    return problem_response(request, 401, detail=gettext("请先登录，或提供有效的访问凭证。"))


def handle_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """Any ``HttpError(status, message)`` raised by a route or by Ninja itself."""
    status = exc.status_code
    headers = {}
    wait = getattr(exc, "wait", None)
    if status == 429 and wait:
        headers["Retry-After"] = str(int(wait))
    return problem_response(request, status, detail=str(exc) or None, headers=headers)


def handle_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    """404: the resource does not exist (or the caller may not know that it does)."""
    return problem_response(request, 404, detail=gettext("请求的资源不存在。"))


def handle_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    """403: authenticated but not allowed; the exception's message, when given, says why."""
    message = str(exc) if exc.args else ""
    return problem_response(request, 403, detail=message or gettext("您没有执行此操作的权限。"))


def handle_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    """413: the body exceeds ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (Django refuses to read it)."""
    return problem_response(request, 413, detail=gettext("请求内容超过允许的大小。"))


def handle_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    """500: a bug. Logged with the request id; the answer reveals nothing about the cause."""
    logger.error(
        "unhandled exception in API %s %s",
        request.method,
        request.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return problem_response(
        request,
        500,
        detail=gettext("服务器处理请求时出错，请凭请求编号联系管理员。"),
    )


def install(api) -> None:
    """Install the problem+json handlers on a NinjaAPI instance (more specific classes win)."""
    api.add_exception_handler(Exception, handle_unexpected)
    api.add_exception_handler(HttpError, handle_http_error)
    api.add_exception_handler(AuthenticationError, handle_authentication)
    api.add_exception_handler(NinjaValidationError, handle_ninja_validation)
    api.add_exception_handler(DjangoValidationError, handle_django_validation)
    api.add_exception_handler(Http404, handle_not_found)
    api.add_exception_handler(PermissionDenied, handle_permission_denied)
    api.add_exception_handler(RequestDataTooBig, handle_too_big)
