"""Error pages use the base layout; under /api/ they are problem+json."""

import json

import pytest
from django.urls import include, path

pytestmark = pytest.mark.django_db


def _boom(request):
    raise RuntimeError("deliberate failure for the 500 page")


urlpatterns = [
    path("boom/", _boom),
    path("api/v1/boom/", _boom),
    path("", include("dgov.urls")),
]
handler400 = "dgov.web.views.bad_request"
handler403 = "dgov.web.views.permission_denied"
handler404 = "dgov.web.views.page_not_found"
handler500 = "dgov.web.views.server_error"


def test_404_page_uses_base_layout(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "页面不存在" in html
    assert 'href="/static/web/dgov.css"' in html
    assert response.context["nav_portal"]  # rendered with the context processors


def test_unknown_api_url_is_problem_json(client):
    response = client.get("/api/v1/no-such-endpoint")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")
    body = json.loads(response.content)
    assert body["status"] == 404
    assert body["type"] == "urn:dgov:problem:not-found"
    assert body["instance"] == "/api/v1/no-such-endpoint"
    assert body["request_id"] == response["X-Request-ID"]


@pytest.mark.urls(__name__)
def test_500_page_uses_base_layout_without_leaking(client):
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "服务器错误" in html
    assert 'href="/static/web/dgov.css"' in html
    assert "deliberate failure" not in html


@pytest.mark.urls(__name__)
def test_500_under_api_is_problem_json(client):
    client.raise_request_exception = False
    response = client.get("/api/v1/boom/")
    assert response.status_code == 500
    body = json.loads(response.content)
    assert body["type"] == "urn:dgov:problem:internal-error"
    assert "deliberate" not in body["detail"]


def test_csrf_failure_page_uses_base_layout(client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "请求已过期" in html
    assert 'href="/static/web/dgov.css"' in html
