"""Discovery, JWKS and keys, userinfo, revocation (RFC 7009), introspection (RFC 7662), RP-initiated logout."""

import pytest
from oidc_helpers import ISSUER, LOGOUT_TARGET, basic, make_rp, query

from dgov.kernel.crypto import sm4_gcm_decrypt
from dgov.kernel.models import AuditRecord
from dgov.kernel.services.keys import master_key
from dgov.oidc import jose
from dgov.oidc.models import Grant, SigningKey
from dgov.oidc.services import keys

pytestmark = pytest.mark.django_db


def userinfo(http, token, **extra):
    return http.get("/oidc/userinfo", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def introspect(http, rp, token, **data):
    return http.post("/oidc/introspect", {"token": token, **data}, HTTP_AUTHORIZATION=basic(rp.client_id, rp.secret))


def revoke(http, rp, token, **data):
    return http.post("/oidc/revoke", {"token": token, **data}, HTTP_AUTHORIZATION=basic(rp.client_id, rp.secret))


# --- discovery and keys -----------------------------------------------------------------------------------


def test_discovery_document(client):
    doc = client.get("/.well-known/openid-configuration").json()
    assert doc["issuer"] == ISSUER
    for name in ("authorization", "token", "userinfo", "end_session", "revocation", "introspection"):
        assert doc[f"{name}_endpoint"].startswith(ISSUER + "/oidc/")
    assert doc["jwks_uri"] == ISSUER + "/oidc/jwks"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert set(doc["id_token_signing_alg_values_supported"]) == {"RS256", "ES256", "SM2"}
    assert {"client_secret_basic", "client_secret_post", "none"} <= set(doc["token_endpoint_auth_methods_supported"])
    assert {"openid", "offline_access", "registry:read"} <= set(doc["scopes_supported"])


def test_keys_are_generated_wrapped_rotated_and_revoked(client):
    for alg in ("RS256", "ES256", "SM2"):
        keys.active_key(alg)
    records = {k.alg: k for k in SigningKey.objects.all()}
    assert set(records) == {"RS256", "ES256", "SM2"}
    sm2 = records["SM2"]
    der = sm4_gcm_decrypt(master_key(), bytes(sm2.wrapped), f"dgov-oidc-key|{sm2.kid}|SM2".encode())
    assert jose.load_private("SM2", sm2.kid, der).public().to_dict()["x"] == sm2.public_jwk["x"]
    published = client.get("/oidc/jwks")
    assert published["Content-Type"] == "application/jwk-set+json"
    assert {k["kid"] for k in published.json()["keys"]} == {r.kid for r in records.values()}
    old = records["RS256"].kid
    new = keys.rotate_key("RS256", actor="system:test").kid
    kids = {k["kid"] for k in client.get("/oidc/jwks").json()["keys"]}
    assert {old, new} <= kids  # the retired key stays published
    assert keys.active_key("RS256").kid == new
    keys.revoke_key(old, actor="system:test")
    assert old not in {k["kid"] for k in client.get("/oidc/jwks").json()["keys"]}
    assert AuditRecord.objects.filter(action__in=["oidc.key.rotate", "oidc.key.revoke", "oidc.key.create"]).count() == 5


def test_tokens_of_a_revoked_key_stop_verifying(rp, logged_in):
    tokens = rp.login_tokens(logged_in)
    assert userinfo(logged_in, tokens["access_token"]).status_code == 200
    keys.rotate_key("RS256", actor="system:test")
    assert userinfo(logged_in, tokens["access_token"]).status_code == 200  # retired, still valid
    kid = jose.split(tokens["access_token"])[0]["kid"]
    keys.revoke_key(kid, actor="system:test")
    assert userinfo(logged_in, tokens["access_token"]).status_code == 401


# --- userinfo ---------------------------------------------------------------------------------------------


def test_userinfo_claims_follow_the_scopes(rp, client, citizen):
    citizen.email = "li@example.cn"
    citizen.save()
    client.force_login(citizen)
    minimal = rp.login_tokens(client, scope="openid")
    body = userinfo(client, minimal["access_token"]).json()
    assert set(body) == {"sub"}
    full = rp.login_tokens(client, scope="openid profile email")
    body = userinfo(client, full["access_token"]).json()
    assert body["email"] == "li@example.cn" and body["name"] == "李群众"
    posted = client.post("/oidc/userinfo", {"access_token": full["access_token"]})
    assert posted.status_code == 200 and posted.json()["sub"] == body["sub"]


def test_userinfo_errors(rp, logged_in):
    missing = logged_in.get("/oidc/userinfo")
    assert missing.status_code == 401 and missing["WWW-Authenticate"] == 'Bearer realm="dgov"'
    bad = userinfo(logged_in, "x.y.z")
    assert bad.status_code == 401 and 'error="invalid_token"' in bad["WWW-Authenticate"]
    token = rp.login_tokens(logged_in)["access_token"]
    both = logged_in.post("/oidc/userinfo", {"access_token": token}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert both.status_code == 400


# --- revocation ---------------------------------------------------------------------------------------------


def test_revoke_access_token(rp, logged_in):
    tokens = rp.login_tokens(logged_in)
    response = revoke(logged_in, rp, tokens["access_token"], token_type_hint="access_token")
    assert response.status_code == 200
    assert userinfo(logged_in, tokens["access_token"]).status_code == 401
    assert introspect(logged_in, rp, tokens["access_token"]).json() == {"active": False}
    # The refresh token of the same grant is untouched.
    assert introspect(logged_in, rp, tokens["refresh_token"]).json()["active"] is True
    assert AuditRecord.objects.filter(action="oidc.token.revoke").exists()


def test_revoke_refresh_token_revokes_the_grant(rp, logged_in):
    tokens = rp.login_tokens(logged_in)
    assert revoke(logged_in, rp, tokens["refresh_token"]).status_code == 200
    assert userinfo(logged_in, tokens["access_token"]).status_code == 401
    refreshed = rp.token(logged_in, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.json()["error"] == "invalid_grant"
    assert Grant.objects.get().revoke_reason == "revoked_by_client"


def test_revoke_is_quiet_for_unknown_or_foreign_tokens(rp, department, logged_in):
    tokens = rp.login_tokens(logged_in)
    other = make_rp(department, client_id="other")
    assert revoke(logged_in, other, tokens["access_token"]).status_code == 200
    assert revoke(logged_in, other, tokens["refresh_token"]).status_code == 200
    assert userinfo(logged_in, tokens["access_token"]).status_code == 200  # not revoked by someone else
    assert AuditRecord.objects.filter(action="oidc.revoke.refuse", outcome="denied").count() == 2
    assert revoke(logged_in, rp, "unknown-token").status_code == 200


def test_revoke_needs_client_authentication_and_a_token(rp, client):
    assert client.post("/oidc/revoke", {"token": "x"}).status_code == 401
    wrong = client.post("/oidc/revoke", {"token": "x"}, HTTP_AUTHORIZATION=basic("rp", "bad"))
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Basic")
    assert revoke(client, rp, "").json()["error"] == "invalid_request"


# --- introspection ---------------------------------------------------------------------------------------------


def test_introspection_of_an_active_access_token(rp, service, logged_in, citizen):
    tokens = rp.login_tokens(logged_in, scope="openid profile")
    # Any authenticated confidential client (a resource server) may ask about access tokens.
    answer = introspect(logged_in, service, tokens["access_token"]).json()
    assert answer["active"] is True
    assert answer["client_id"] == "rp" and answer["username"] == "citizen1" and answer["scope"] == "openid profile"
    assert answer["token_type"] == "Bearer" and answer["iss"] == ISSUER and answer["exp"] > answer["iat"]
    # Refresh tokens only by their own client.
    assert introspect(logged_in, service, tokens["refresh_token"]).json() == {"active": False}
    own = introspect(logged_in, rp, tokens["refresh_token"]).json()
    assert own["active"] is True and own["token_type"] == "refresh_token"


def test_introspection_is_for_authenticated_confidential_clients(rp, department, logged_in):
    token = rp.login_tokens(logged_in)["access_token"]
    anonymous = logged_in.post("/oidc/introspect", {"token": token})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    app = make_rp(department, client_id="mobile", client_type="public", grant_types=["authorization_code"])
    public = logged_in.post("/oidc/introspect", {"token": token, "client_id": app.client_id})
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    assert introspect(logged_in, rp, "").json()["error"] == "invalid_request"
    assert introspect(logged_in, rp, "nonsense").json() == {"active": False}
    assert AuditRecord.objects.filter(action="oidc.introspect.refuse", outcome="denied").count() >= 3


# --- RP-initiated logout -------------------------------------------------------------------------------------


def test_logout_with_id_token_hint_and_registered_target(rp, logged_in):
    tokens = rp.login_tokens(logged_in, scope="openid profile")
    response = logged_in.get(
        "/oidc/logout",
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": LOGOUT_TARGET, "state": "bye-1"},
    )
    assert response.status_code == 302
    assert response["Location"].startswith(LOGOUT_TARGET) and query(response["Location"])["state"] == "bye-1"
    assert "_auth_user_id" not in logged_in.session
    # The session's grant without offline_access ended with it.
    assert userinfo(logged_in, tokens["access_token"]).status_code == 401
    assert Grant.objects.get().revoke_reason == "logout"
    assert AuditRecord.objects.filter(action="oidc.logout").exists()


def test_offline_access_survives_logout(rp, logged_in):
    tokens = rp.login_tokens(logged_in, scope="openid offline_access")
    logged_in.get("/oidc/logout", {"id_token_hint": tokens["id_token"]})
    assert "_auth_user_id" not in logged_in.session
    refreshed = rp.token(logged_in, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200


def test_unregistered_post_logout_target_is_an_error_page(rp, logged_in):
    tokens = rp.login_tokens(logged_in)
    response = logged_in.get(
        "/oidc/logout", {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example/"}
    )
    assert response.status_code == 400 and "Location" not in response
    assert "_auth_user_id" in logged_in.session
    no_client = logged_in.get("/oidc/logout", {"post_logout_redirect_uri": LOGOUT_TARGET})
    assert no_client.status_code == 400
    bad_hint = logged_in.get("/oidc/logout", {"id_token_hint": "a.b.c"})
    assert bad_hint.status_code == 400
    mismatch = logged_in.get("/oidc/logout", {"id_token_hint": tokens["id_token"], "client_id": "other"})
    assert mismatch.status_code == 400
    assert AuditRecord.objects.filter(action="oidc.logout.refuse", outcome="denied").count() == 4


def test_logout_without_hint_asks_for_confirmation(rp, logged_in):
    page = logged_in.get("/oidc/logout", {"client_id": "rp", "post_logout_redirect_uri": LOGOUT_TARGET})
    assert page.status_code == 200 and "_auth_user_id" in logged_in.session
    # A forged confirmation does nothing.
    forged = logged_in.post("/oidc/logout", {"client_id": "rp", "confirm": "forged"})
    assert forged.status_code == 200 and "_auth_user_id" in logged_in.session
    done = logged_in.post(
        "/oidc/logout",
        {"client_id": "rp", "post_logout_redirect_uri": LOGOUT_TARGET, "confirm": page.context["confirm"]},
    )
    assert done.status_code == 302 and done["Location"] == LOGOUT_TARGET
    assert "_auth_user_id" not in logged_in.session


def test_logout_of_a_logged_out_browser_just_redirects(rp, client):
    response = client.get("/oidc/logout", {"client_id": "rp", "post_logout_redirect_uri": LOGOUT_TARGET})
    assert response.status_code == 302 and response["Location"] == LOGOUT_TARGET
    assert client.get("/oidc/logout").status_code == 200
