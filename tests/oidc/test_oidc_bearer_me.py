"""/api/v1/me accepts the provider's access tokens as well as the browser session.

A user's token answers for the user (with the profile scope); a client-credentials token answers
for its client (kind ``client``). The fields of the session answer are unchanged.
"""

import json

import pytest
from django.test import Client
from oidc_helpers import basic

pytestmark = pytest.mark.django_db

ME = "/api/v1/me"
SESSION_FIELDS = {"id", "username", "display_name", "kind", "kind_label", "is_staff", "department"}


def _bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_users_token_answers_for_the_user(rp, client, official):
    client.force_login(official)
    tokens = rp.login_tokens(client, scope="openid profile registry:read")
    api = Client()  # no session: the token alone
    response = api.get(ME, **_bearer(tokens["access_token"]))
    assert response.status_code == 200
    body = response.json()
    assert body.keys() >= SESSION_FIELDS
    assert body["id"] == official.pk and body["username"] == "official1" and body["display_name"] == "张警官"
    assert body["kind"] == "official" and body["department"]["code"] == "370000-GA"
    assert body["client_id"] == "rp" and body["scopes"] == ["openid", "profile", "registry:read"]
    assert body["real_name_level"] == 1


def test_a_users_token_needs_the_profile_scope(rp, logged_in):
    tokens = rp.login_tokens(logged_in, scope="openid")
    response = Client().get(ME, **_bearer(tokens["access_token"]))
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/problem+json")
    assert "profile" in response.json()["detail"]


def test_a_client_credentials_token_answers_for_the_client(service, department):
    api = Client()
    issued = api.post(
        "/oidc/token",
        {"grant_type": "client_credentials"},
        **{"HTTP_AUTHORIZATION": basic(service.client_id, service.secret)},
    )
    token = issued.json()["access_token"]
    body = api.get(ME, **_bearer(token)).json()
    assert body["kind"] == "client" and body["username"] == "client:svc" and body["display_name"] == "后台服务"
    assert body["department"]["code"] == department.code and body["is_staff"] is False
    assert body["client_id"] == "svc" and body["scopes"] == ["registry:read"]
    assert body["real_name_level"] is None


def test_invalid_revoked_and_disabled_tokens_are_refused(rp, logged_in, citizen):
    tokens = rp.login_tokens(logged_in, scope="openid profile")
    api = Client()
    assert api.get(ME, **_bearer(tokens["access_token"])).status_code == 200
    assert api.get(ME, **_bearer("not-a-token")).status_code == 401
    citizen.is_active = False
    citizen.save(update_fields=["is_active"])
    refused = api.get(ME, **_bearer(tokens["access_token"]))
    assert refused.status_code == 401 and refused["Content-Type"].startswith("application/problem+json")


def test_the_session_answer_is_unchanged(logged_in, citizen):
    body = logged_in.get(ME).json()
    assert body["username"] == "citizen1" and body["kind"] == "person" and body["department"] is None
    assert body["client_id"] is None and body["scopes"] is None and body["real_name_level"] == 1


def test_openapi_lists_both_schemes_for_me(client):
    schema = json.loads(client.get("/api/v1/openapi.json").content)
    security = schema["paths"][ME]["get"]["security"]
    names = {name for entry in security for name in entry}
    assert len(names) == 2
    assert {"401", "403"} <= schema["paths"][ME]["get"]["responses"].keys()
