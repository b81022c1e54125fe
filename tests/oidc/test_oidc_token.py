"""The token endpoint over HTTP: code redemption, PKCE, client authentication, refresh rotation, client credentials."""

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from oidc_helpers import ISSUER, REDIRECT, basic, make_rp

from dgov.kernel.models import AuditRecord
from dgov.oidc import jose
from dgov.oidc.models import AccessToken, AuthorizationCode, Grant, RefreshToken, Subject
from dgov.oidc.services import clients

pytestmark = pytest.mark.django_db


def jwks(http) -> dict:
    return http.get("/oidc/jwks").json()


def decode(http, token: str, alg: str = "RS256"):
    """Verify a JWT against the published JWKS with joserfc (an independent JOSE implementation)."""
    return jwt.decode(token, KeySet.import_key_set(jwks(http)), algorithms=[alg])


def userinfo(http, access_token: str):
    return http.get("/oidc/userinfo", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def introspect(http, rp, token: str) -> dict:
    return http.post("/oidc/introspect", {"token": token}, HTTP_AUTHORIZATION=basic(rp.client_id, rp.secret)).json()


# --- the code flow ----------------------------------------------------------------------------------------


def test_code_flow_issues_verifiable_tokens(rp, logged_in, citizen):
    code = rp.code(logged_in, nonce="n-123", scope="openid profile offline_access")
    response = rp.exchange(logged_in, code)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["scope"] == "openid profile offline_access"
    assert body["refresh_token"]

    id_token = decode(logged_in, body["id_token"])
    claims = id_token.claims
    sub = Subject.objects.get(user=citizen).sub
    assert claims["sub"] == sub and sub != str(citizen.pk)
    assert claims["iss"] == ISSUER and claims["aud"] == "rp" and claims["azp"] == "rp"
    assert claims["nonce"] == "n-123"
    assert claims["acr"] == "urn:dgov:loa:1" and claims["amr"] and isinstance(claims["auth_time"], int)
    assert claims["name"] == "李群众" and claims["preferred_username"] == "citizen1" and claims["dgov_kind"] == "person"
    assert claims["sid"]
    expected = base64.urlsafe_b64encode(hashlib.sha256(body["access_token"].encode()).digest()[:16]).rstrip(b"=")
    assert claims["at_hash"] == expected.decode()

    access = decode(logged_in, body["access_token"])
    assert access.header["typ"] == "at+jwt"
    assert access.claims["aud"] == f"{ISSUER}/api/v1/" and access.claims["client_id"] == "rp"
    assert access.claims["sub"] == sub and access.claims["scope"] == "openid profile offline_access"
    assert AccessToken.objects.filter(jti=access.claims["jti"], user=citizen).exists()
    assert AuditRecord.objects.filter(action="oidc.token.issue", outcome="success").exists()
    # Secrets at rest are digests only.
    assert not RefreshToken.objects.filter(token_hash=body["refresh_token"]).exists()
    assert not AuthorizationCode.objects.filter(code_hash=code).exists()


def test_sub_is_stable_across_logins_and_clients(rp, third_party, logged_in, citizen):
    first = decode(logged_in, rp.login_tokens(logged_in)["id_token"]).claims["sub"]
    second = decode(logged_in, rp.login_tokens(logged_in)["id_token"]).claims["sub"]
    assert first == second


def test_official_gets_the_department_code(rp, client, official):
    client.force_login(official)
    claims = decode(client, rp.login_tokens(client)["id_token"]).claims
    assert claims["dgov_kind"] == "official" and claims["dgov_department"] == "370000-GA"


@pytest.mark.parametrize("alg", ["ES256", "SM2"])
def test_id_token_algorithm_per_client(department, logged_in, alg):
    other = make_rp(department, client_id=f"alg-{alg.lower()}", id_token_alg=alg)
    body = other.login_tokens(logged_in)
    header, _claims, _input, signature = jose.split(body["id_token"])
    assert header["alg"] == alg and len(signature) == 64
    published = {k["kid"]: k for k in jwks(logged_in)["keys"]}
    key = published[header["kid"]]
    if alg == "SM2":
        assert (key["kty"], key["crv"], key["alg"]) == ("EC", "SM2", "SM2")
        verified = jose.verify(body["id_token"], lambda kid: jose.PublicJwk.from_dict(published[kid]))
        assert verified[1]["aud"] == other.client_id
        # at_hash uses SM3 for SM2-signed tokens (ADR 0011).
        assert verified[1]["at_hash"] == jose.left_hash("SM2", body["access_token"])
    else:
        assert (key["kty"], key["crv"]) == ("EC", "P-256")
        assert decode(logged_in, body["id_token"], alg).claims["aud"] == other.client_id
    # Access tokens stay RS256 whatever the id_token algorithm.
    assert jose.split(body["access_token"])[0]["alg"] == "RS256"


def test_reused_code_is_refused_and_revokes_what_it_issued(rp, logged_in):
    code = rp.code(logged_in, scope="openid profile")
    first = rp.exchange(logged_in, code).json()
    assert userinfo(logged_in, first["access_token"]).status_code == 200
    again = rp.exchange(logged_in, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert userinfo(logged_in, first["access_token"]).status_code == 401
    assert introspect(logged_in, rp, first["access_token"]) == {"active": False}
    refreshed = rp.token(logged_in, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refreshed.json()["error"] == "invalid_grant"
    assert Grant.objects.get().revoke_reason == "code_reuse"
    assert AuditRecord.objects.filter(action="oidc.code.reuse", outcome="denied").exists()


def test_expired_code(rp, logged_in):
    code = rp.code(logged_in)
    AuthorizationCode.objects.update(expires_at=AuthorizationCode.objects.get().created_at - timedelta(seconds=1))
    response = rp.exchange(logged_in, code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "change, error",
    [
        ({"code_verifier": "x" * 43}, "invalid_grant"),  # wrong verifier
        ({"code_verifier": ""}, "invalid_request"),  # missing verifier
        ({"code_verifier": "short"}, "invalid_request"),
        ({"redirect_uri": "https://rp.example/other"}, "invalid_grant"),
        ({"redirect_uri": ""}, "invalid_request"),
        ({"code": "not-a-code"}, "invalid_grant"),
        ({"code": ""}, "invalid_request"),
    ],
)
def test_code_redemption_errors(rp, logged_in, change, error):
    change = {"code": rp.code(logged_in), **change}
    response = rp.exchange(logged_in, **change)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert "access_token" not in response.json()
    assert AuditRecord.objects.filter(action="oidc.token.refuse", outcome="denied").exists()


def test_code_of_another_client_is_refused(rp, department, logged_in):
    other = make_rp(department, client_id="other")
    code = rp.code(logged_in)
    other.verifier = rp.verifier
    assert other.exchange(logged_in, code).json()["error"] == "invalid_grant"


# --- client authentication ----------------------------------------------------------------------------


def test_client_secret_post_works(rp, logged_in):
    code = rp.code(logged_in)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": rp.verifier}
    assert rp.token(logged_in, data, auth="post").status_code == 200


def test_public_client_authenticates_with_none_and_pkce(department, logged_in):
    app = make_rp(department, client_id="mobile", client_type="public", grant_types=["authorization_code"])
    assert app.secret is None
    code = app.code(logged_in)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": app.verifier}
    response = app.token(logged_in, data, auth="none")
    assert response.status_code == 200 and "refresh_token" not in response.json()


@pytest.mark.parametrize(
    "kwargs, status, error, challenge",
    [
        ({"HTTP_AUTHORIZATION": basic("rp", "wrong")}, 401, "invalid_client", True),
        ({"HTTP_AUTHORIZATION": basic("nobody", "x")}, 401, "invalid_client", True),
        ({"HTTP_AUTHORIZATION": "Basic !!!"}, 401, "invalid_client", True),
        ({}, 401, "invalid_client", True),
    ],
)
def test_bad_basic_authentication(rp, client, kwargs, status, error, challenge):
    response = client.post("/oidc/token", {"grant_type": "client_credentials"}, **kwargs)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.has_header("WWW-Authenticate") is challenge
    assert response["WWW-Authenticate"].startswith("Basic")
    assert AuditRecord.objects.filter(action="oidc.token.refuse", outcome="denied").exists()


def test_bad_post_and_none_authentication(rp, client):
    wrong = client.post("/oidc/token", {"grant_type": "client_credentials", "client_id": "rp", "client_secret": "no"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    # A confidential client may not skip authentication.
    none = client.post("/oidc/token", {"grant_type": "client_credentials", "client_id": "rp"})
    assert none.status_code == 401 and none.json()["error"] == "invalid_client"
    both = client.post(
        "/oidc/token",
        {"grant_type": "client_credentials", "client_secret": rp.secret},
        HTTP_AUTHORIZATION=basic("rp", rp.secret),
    )
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"


def test_grant_type_errors(rp, client):
    auth = {"HTTP_AUTHORIZATION": basic(rp.client_id, rp.secret)}
    assert client.post("/oidc/token", {}, **auth).json()["error"] == "invalid_request"
    assert client.post("/oidc/token", {"grant_type": "password"}, **auth).json()["error"] == "unsupported_grant_type"
    # rp is not registered for client_credentials.
    response = client.post("/oidc/token", {"grant_type": "client_credentials"}, **auth)
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"
    repeated = client.post("/oidc/token", "grant_type=a&grant_type=b", content_type="application/x-www-form-urlencoded")
    assert repeated.json()["error"] == "invalid_request"
    assert client.get("/oidc/token").status_code == 405


# --- refresh tokens ---------------------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_grant(rp, logged_in):
    first = rp.login_tokens(logged_in, scope="openid profile offline_access")
    second = rp.token(logged_in, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"]
    claims = decode(logged_in, second["id_token"]).claims
    assert "nonce" not in claims and claims["auth_time"] == decode(logged_in, first["id_token"]).claims["auth_time"]
    assert userinfo(logged_in, second["access_token"]).status_code == 200
    # The first refresh token is presented again: theft or a broken client; the whole grant goes.
    reuse = rp.token(logged_in, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert userinfo(logged_in, second["access_token"]).status_code == 401
    assert userinfo(logged_in, first["access_token"]).status_code == 401
    latest = rp.token(logged_in, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert latest.json()["error"] == "invalid_grant"
    assert Grant.objects.get().revoke_reason == "refresh_token_reuse"
    assert AuditRecord.objects.filter(action="oidc.refresh_token.reuse", outcome="denied").exists()


def test_refresh_scope_may_narrow_but_not_widen(rp, logged_in):
    tokens = rp.login_tokens(logged_in, scope="openid profile")
    wider = rp.token(
        logged_in, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "scope": "openid email"}
    )
    assert wider.json()["error"] == "invalid_scope"
    narrower = rp.token(
        logged_in, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "scope": "openid"}
    )
    assert narrower.status_code == 200 and narrower.json()["scope"] == "openid"


def test_refresh_errors(rp, department, logged_in):
    tokens = rp.login_tokens(logged_in)
    other = make_rp(department, client_id="other")
    stolen = other.token(logged_in, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert stolen.json()["error"] == "invalid_grant"
    missing = rp.token(logged_in, {"grant_type": "refresh_token"})
    assert missing.json()["error"] == "invalid_request"
    RefreshToken.objects.update(expires_at=RefreshToken.objects.get().created_at)
    expired = rp.token(logged_in, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert expired.json()["error"] == "invalid_grant"


def test_disabled_user_cannot_refresh(rp, logged_in, citizen):
    tokens = rp.login_tokens(logged_in)
    citizen.is_active = False
    citizen.save(update_fields=["is_active"])
    response = rp.token(logged_in, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert response.json()["error"] == "invalid_grant"
    assert userinfo(logged_in, tokens["access_token"]).status_code == 401


# --- client credentials ----------------------------------------------------------------------------------


def test_client_credentials(service, client):
    auth = {"HTTP_AUTHORIZATION": basic(service.client_id, service.secret)}
    response = client.post("/oidc/token", {"grant_type": "client_credentials"}, **auth)
    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == "registry:read" and "refresh_token" not in body and "id_token" not in body
    token = decode(client, body["access_token"])
    assert token.header["typ"] == "at+jwt"
    assert token.claims["sub"] == "svc" and token.claims["client_id"] == "svc"
    assert AuditRecord.objects.filter(action="oidc.token.issue", detail_json__contains="client_credentials").exists()
    scoped = client.post("/oidc/token", {"grant_type": "client_credentials", "scope": "registry:write"}, **auth)
    assert scoped.status_code == 400 and scoped.json()["error"] == "invalid_scope"
    oidc = client.post("/oidc/token", {"grant_type": "client_credentials", "scope": "openid"}, **auth)
    assert oidc.json()["error"] == "invalid_scope"


def test_client_credentials_tokens_do_not_open_userinfo(service, client):
    auth = {"HTTP_AUTHORIZATION": basic(service.client_id, service.secret)}
    token = client.post("/oidc/token", {"grant_type": "client_credentials"}, **auth).json()["access_token"]
    response = userinfo(client, token)
    assert response.status_code == 403 and 'error="insufficient_scope"' in response["WWW-Authenticate"]


def test_deactivated_client_tokens_stop_working(service, client):
    auth = {"HTTP_AUTHORIZATION": basic(service.client_id, service.secret)}
    token = client.post("/oidc/token", {"grant_type": "client_credentials"}, **auth).json()["access_token"]
    assert introspect(client, service, token)["active"] is True
    clients.deactivate_client(service.client, actor="system:test")
    assert client.post("/oidc/token", {"grant_type": "client_credentials"}, **auth).status_code == 401
    assert AccessToken.objects.get().revoked_at is not None


# --- tampering --------------------------------------------------------------------------------------------


def test_tampered_and_foreign_tokens_are_refused(rp, logged_in):
    tokens = rp.login_tokens(logged_in)
    head, body, sig = tokens["access_token"].split(".")
    claims = json.loads(jose.b64url_decode(body))
    claims["scope"] = "openid profile registry:write"
    forged = f"{head}.{jose.b64url_encode(json.dumps(claims).encode())}.{sig}"
    assert userinfo(logged_in, forged).status_code == 401
    none_alg = jose.b64url_encode(b'{"alg":"none","typ":"at+jwt"}')
    assert userinfo(logged_in, f"{none_alg}.{body}.").status_code == 401
    # An id_token is not an access token.
    assert userinfo(logged_in, tokens["id_token"]).status_code == 401
    assert userinfo(logged_in, "garbage").status_code == 401
    assert AuditRecord.objects.filter(action="oidc.userinfo.refuse", outcome="denied").count() >= 4
