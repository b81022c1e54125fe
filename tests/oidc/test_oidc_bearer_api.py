"""dgov's own API accepts the provider's access tokens (bearer_auth) with their scopes and department."""

import datetime

import pytest
from django.test import Client
from oidc_helpers import basic, make_rp

from dgov.kernel.models import AuditRecord
from dgov.kernel.validators import make_resident_id
from dgov.registry import services as registry_services

pytestmark = pytest.mark.django_db

LIST = "/api/v1/registries/"


@pytest.fixture
def registry(department):
    """A registry owned by the department of the clients and the official (authoritative for its fields)."""
    department.kind = "GA"
    department.save()
    return registry_services.create_registry(
        code="t.people",
        name="人口（测试）",
        owner=department,
        library_code="population",
        identifier_field="id_number",
        actor="system:test",
        fields=[
            {
                "name": "id_number",
                "label": "居民身份证号码",
                "type": "resident_id",
                "sensitivity": "personal",
                "authority": "GA",
            },
            {"name": "name", "label": "姓名", "type": "string", "authority": "GA"},
        ],
    )


def cc_token(http, rp, scope=""):
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    response = http.post("/oidc/token", data, HTTP_AUTHORIZATION=basic(rp.client_id, rp.secret))
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_client_credentials_token_reads_as_its_department(service, registry, client):
    token = cc_token(client, service)
    response = client.get(LIST, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert [r["code"] for r in response.json()] == ["t.people"]


def test_scope_and_validity_are_enforced(department, registry, client):
    writer = make_rp(
        department, client_id="writer", redirect_uris=[], grant_types=["client_credentials"], scopes=["registry:write"]
    )
    token = cc_token(client, writer)
    assert client.get(LIST, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403
    assert client.get(LIST, HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401
    reader = make_rp(
        department, client_id="reader", redirect_uris=[], grant_types=["client_credentials"], scopes=["registry:read"]
    )
    token = cc_token(client, reader)
    client.post("/oidc/revoke", {"token": token}, HTTP_AUTHORIZATION=basic(reader.client_id, reader.secret))
    assert client.get(LIST, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_user_token_carries_only_what_the_user_holds(rp, registry, client, official, citizen):
    api = Client()  # no session: the API must accept the token on its own
    client.force_login(official)
    tokens = rp.login_tokens(client, scope="openid registry:read")
    assert tokens["scope"] == "openid registry:read"
    listing = api.get(LIST, HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert listing.status_code == 200 and [r["code"] for r in listing.json()] == ["t.people"]
    # A citizen holds no API scope: the request is narrowed (RFC 6749 §3.3) and the API refuses.
    client.force_login(citizen)
    narrowed = rp.login_tokens(client, scope="openid registry:read")
    assert narrowed["scope"] == "openid"
    assert api.get(LIST, HTTP_AUTHORIZATION=f"Bearer {narrowed['access_token']}").status_code == 403


def test_token_without_api_scope_is_refused(rp, registry, client, official):
    client.force_login(official)
    tokens = rp.login_tokens(client, scope="openid profile")
    assert Client().get(LIST, HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 403


def test_logging_out_ends_the_session_tokens(rp, registry, client, official):
    client.force_login(official)
    tokens = rp.login_tokens(client, scope="openid registry:read")
    client.logout()
    assert Client().get(LIST, HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 401


def test_writes_by_a_bearer_client_are_audited_as_the_client(department, registry, client):
    writer = make_rp(
        department,
        client_id="ga-writer",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["registry:read", "registry:write"],
    )
    token = cc_token(client, writer, "registry:write")
    number = make_resident_id("370102", datetime.date(1990, 1, 1), 7)
    response = client.post(
        "/api/v1/registries/data/t.people/1/create",
        {"write": {"content": {"id_number": number, "name": "王五"}}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code in (200, 201), response.content
    record = AuditRecord.objects.filter(actor_kind="oidc-client", actor_id="ga-writer").exclude(
        action__startswith="oidc."
    )
    assert record.exists()
