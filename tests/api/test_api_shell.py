"""The API shell: /meta, /me, the OpenAPI document and the docs page with local assets only."""

import json
import re
from datetime import datetime

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_meta_is_public(client):
    response = client.get("/api/v1/meta")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "dgov"
    assert body["version"]
    assert body["api_version"] == "v1"
    assert body["docs_url"] == "http://testserver/api/v1/docs"
    assert body["openapi_url"] == "http://testserver/api/v1/openapi.json"
    assert datetime.fromisoformat(body["time"]).utcoffset().total_seconds() == 8 * 3600


def test_me_returns_the_session_user_with_department(client, official):
    client.force_login(official)
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "official1"
    assert body["display_name"] == "张警官"
    assert body["kind"] == "official"
    assert body["kind_label"] == "工作人员"
    assert body["department"]["name"] == "山东省公安厅"
    assert body["department"]["division_code"] == "370000"


def test_me_for_person_has_no_department(client, citizen):
    client.force_login(citizen)
    body = client.get("/api/v1/me").json()
    assert body["kind"] == "person"
    assert body["department"] is None


def test_me_refuses_inactive_account(client, citizen):
    client.force_login(citizen)
    citizen.is_active = False
    citizen.save()
    assert client.get("/api/v1/me").status_code == 401


def test_openapi_document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/meta" in schema["paths"]
    assert "/api/v1/me" in schema["paths"]
    me = schema["paths"]["/api/v1/me"]["get"]
    assert me["security"]
    assert "401" in me["responses"]
    assert "Problem" in schema["components"]["schemas"]


def test_docs_page_uses_local_assets_only(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "/static/vendor/swagger-ui/swagger-ui.css" in html
    assert "/static/web/swagger-init.js" in html
    assert 'href="/static/web/dgov.css"' in html  # inside the base layout
    external = [
        u for u in re.findall(r"https?://[^\s\"'<>]+", html) if not u.startswith("http://testserver/")
    ]
    assert external == []
    settings_json = re.search(
        r'<script id="swagger-settings" type="application/json">(.*?)</script>', html, re.S
    )
    config = json.loads(settings_json.group(1))
    assert config["url"] == "/api/v1/openapi.json"
    assert config["validatorUrl"] is None  # no call to an outside validator


def test_swagger_and_htmx_assets_are_installed():
    for name in [
        "vendor/swagger-ui/swagger-ui-bundle.js",
        "vendor/swagger-ui/swagger-ui.css",
        "vendor/htmx/htmx.min.js",
        "web/swagger-init.js",
        "web/dgov.css",
    ]:
        assert finders.find(name), name
