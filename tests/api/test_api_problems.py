"""RFC 9457 problem+json for every kind of API failure, through a probe API with the real handlers."""

import json
import logging

import pytest
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.test import Client
from django.urls import include, path
from ninja import NinjaAPI, Schema
from ninja.errors import HttpError
from pydantic import field_validator

from dgov.api import problems
from dgov.api.auth import session_auth
from dgov.kernel.validators import validate_resident_id

pytestmark = pytest.mark.django_db

probe = NinjaAPI(urls_namespace="probe", docs_url=None, openapi_url=None)
problems.install(probe)


class ItemIn(Schema):
    """Probe input."""

    name: str
    count: int


class PersonIn(Schema):
    """Probe input checked by the kernel's validator inside the schema."""

    id_number: str

    @field_validator("id_number")
    @classmethod
    def _check(cls, value: str) -> str:
        return validate_resident_id(value)


@probe.post("/persons")
def create_person(request, person: PersonIn):
    return {"ok": True}


@probe.get("/missing")
def missing(request):
    raise Http404("no such thing")


@probe.get("/forbidden")
def forbidden(request):
    raise PermissionDenied("只有部门管理员可以执行此操作")


@probe.get("/invalid")
def invalid(request):
    raise DjangoValidationError({"id_number": ["居民身份证号码校验位错误"], "__all__": ["数据不完整"]})


@probe.get("/invalid-plain")
def invalid_plain(request):
    raise DjangoValidationError("统一社会信用代码长度应为 18 位")


@probe.get("/conflict")
def conflict(request):
    raise HttpError(409, "该申请已被受理")


@probe.get("/bug")
def bug(request):
    raise ZeroDivisionError("a real bug")


@probe.post("/items")
def create_item(request, item: ItemIn):
    return {"name": item.name}


@probe.post("/session-items", auth=session_auth)
def create_session_item(request, item: ItemIn):
    return {"name": item.name, "by": request.auth.username}


urlpatterns = [path("probe/", probe.urls), path("", include("dgov.urls"))]


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json; charset=utf-8"
    body = json.loads(response.content)
    for member in ("type", "title", "status", "detail", "instance", "request_id"):
        assert member in body, member
    assert body["status"] == status
    assert body["type"].startswith("urn:dgov:problem:")
    assert body["request_id"] == response["X-Request-ID"]
    return body


def test_401_when_anonymous_on_session_route(client):
    body = _problem(client.get("/api/v1/me"), 401)
    assert body["type"] == "urn:dgov:problem:unauthenticated"
    assert body["instance"] == "/api/v1/me"
    assert "errors" not in body


def test_request_id_is_taken_from_the_caller(client):
    body = _problem(client.get("/api/v1/me", HTTP_X_REQUEST_ID="trace-abc.123"), 401)
    assert body["request_id"] == "trace-abc.123"


@pytest.mark.urls(__name__)
def test_404_from_route(client):
    body = _problem(client.get("/probe/missing?id_number=110101199003071234"), 404)
    assert body["type"] == "urn:dgov:problem:not-found"
    assert body["instance"] == "/probe/missing"  # the query string may carry personal data
    assert "no such thing" not in body["detail"]  # internal messages of Http404 are not shown


@pytest.mark.urls(__name__)
def test_403_from_permission_denied_keeps_its_reason(client):
    body = _problem(client.get("/probe/forbidden"), 403)
    assert body["type"] == "urn:dgov:problem:forbidden"
    assert body["detail"] == "只有部门管理员可以执行此操作"


@pytest.mark.urls(__name__)
def test_422_for_schema_validation(client):
    response = client.post("/probe/items", {"name": "x", "count": "many"}, content_type="application/json")
    body = _problem(response, 422)
    assert body["type"] == "urn:dgov:problem:validation-error"
    assert body["errors"] == [
        {"loc": ["body", "item", "count"], "msg": body["errors"][0]["msg"], "type": "int_parsing"}
    ]
    assert "many" not in response.content.decode()  # input values are not echoed back


@pytest.mark.urls(__name__)
def test_422_lists_every_missing_field(client):
    body = _problem(client.post("/probe/items", {}, content_type="application/json"), 422)
    assert sorted(e["loc"][-1] for e in body["errors"]) == ["count", "name"]
    assert all(e["type"] == "missing" for e in body["errors"])


@pytest.mark.urls(__name__)
def test_400_for_unparseable_body(client):
    body = _problem(client.post("/probe/items", "{not json", content_type="application/json"), 400)
    assert body["type"] == "urn:dgov:problem:bad-request"


@pytest.mark.urls(__name__)
def test_400_for_django_validation_error_with_chinese_messages(client):
    body = _problem(client.get("/probe/invalid"), 400)
    assert body["type"] == "urn:dgov:problem:invalid-data"
    assert {"loc": ["id_number"], "msg": "居民身份证号码校验位错误", "type": "invalid"} in body["errors"]
    assert {"loc": [], "msg": "数据不完整", "type": "invalid"} in body["errors"]
    assert "居民身份证号码校验位错误" in body["detail"]
    plain = _problem(client.get("/probe/invalid-plain"), 400)
    assert plain["detail"] == "统一社会信用代码长度应为 18 位"


@pytest.mark.urls(__name__)
def test_kernel_validator_message_comes_through_a_schema(client):
    response = client.post(
        "/probe/persons", {"id_number": "110101199003071234"}, content_type="application/json"
    )
    body = _problem(response, 400)
    assert body["type"] == "urn:dgov:problem:invalid-data"
    assert "居民身份证号码" in body["detail"] and "校验码" in body["detail"]
    assert [e["msg"] for e in body["errors"]] == [body["detail"]]


@pytest.mark.urls(__name__)
def test_http_error_keeps_status_and_message(client):
    body = _problem(client.get("/probe/conflict"), 409)
    assert body["type"] == "urn:dgov:problem:conflict"
    assert body["detail"] == "该申请已被受理"


@pytest.mark.urls(__name__)
def test_unhandled_exception_is_500_logged_with_request_id(client, caplog):
    with caplog.at_level(logging.ERROR, logger="dgov.api"):
        response = client.get("/probe/bug", HTTP_X_REQUEST_ID="bug-trace-1")
    body = _problem(response, 500)
    assert body["type"] == "urn:dgov:problem:internal-error"
    assert "a real bug" not in response.content.decode()
    assert body["request_id"] == "bug-trace-1"
    records = [r for r in caplog.records if r.name == "dgov.api"]
    assert records and records[0].exc_info[0] is ZeroDivisionError


@pytest.mark.urls(__name__)
def test_session_route_needs_csrf_token_for_unsafe_methods(citizen):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(citizen)
    response = strict.post("/probe/session-items", {"name": "a", "count": 1}, content_type="application/json")
    body = _problem(response, 403)
    assert "CSRF" in body["detail"]
    strict.get("/login/")  # sets the CSRF cookie
    token = strict.cookies["csrftoken"].value
    response = strict.post(
        "/probe/session-items",
        {"name": "a", "count": 1},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200
    assert response.json() == {"name": "a", "by": "citizen1"}


def test_problem_titles_follow_the_language(client):
    zh = json.loads(client.get("/api/v1/me").content)
    en = json.loads(client.get("/api/v1/me", HTTP_ACCEPT_LANGUAGE="en").content)
    assert zh["title"] == "需要登录"
    assert en["title"] == "Authentication required"
