"""Agents (经办人) in OIDC: a person acting for an enterprise logs in to clients as the enterprise, with ``act``."""

import datetime as dt

import pytest
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import KeySet
from oidc_helpers import REDIRECT, basic, query

from dgov.identity import agents
from dgov.identity.models import EnterpriseAgent, User
from dgov.kernel.models import AuditRecord
from dgov.oidc.models import AccessToken, Consent, Grant, Subject
from dgov.oidc.services import tokens

pytestmark = pytest.mark.django_db

SCOPES = ["services", "licences"]


@pytest.fixture
def enterprise(django_user_model, user_password):
    """An enterprise account at real-name level 2 (as dgov.identity.realname leaves it; tested there)."""
    user = django_user_model.objects.create_user(
        username="company1",
        password=user_password,
        kind="enterprise",
        display_name="王法人",
        email="boss@example.cn",
        phone="13900000011",
    )
    User.objects.filter(pk=user.pk).update(real_name_level=2, enterprise_uscc="91370100MA3C00042X")
    user.refresh_from_db()
    return user


@pytest.fixture
def agency(enterprise, citizen):
    """The citizen (verified at level 2) authorized for 30 days as the enterprise's agent."""
    User.objects.filter(pk=citizen.pk).update(real_name_level=2, id_number_digest="d" * 64)
    citizen.refresh_from_db()
    now = timezone.now()
    return EnterpriseAgent.objects.create(
        enterprise=enterprise,
        agent=citizen,
        enterprise_name="济南测试有限公司",
        scopes=SCOPES,
        valid_from=now - dt.timedelta(minutes=1),
        valid_until=now + dt.timedelta(days=30),
        granted_by=enterprise,
    )


@pytest.fixture
def acting(logged_in, agency):
    """The citizen's browser, switched to acting for the enterprise."""
    assert logged_in.post(f"/account/agencies/{agency.pk}/act/").status_code == 302
    assert logged_in.session[agents.SESSION_ACTING] == agency.pk
    return logged_in


def decode(http, token: str):
    """Verify a JWT against the published JWKS with joserfc; return its claims."""
    keys = KeySet.import_key_set(http.get("/oidc/jwks").json())
    return jwt.decode(token, keys, algorithms=["RS256"]).claims


def userinfo(http, access_token: str):
    return http.get("/oidc/userinfo", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def test_acting_login_represents_the_enterprise_with_the_agent_in_act(rp, acting, agency, enterprise, citizen):
    body = rp.login_tokens(acting, scope="openid profile email phone offline_access")
    claims = decode(acting, body["id_token"])
    enterprise_sub = tokens.subject_of(enterprise)
    assert claims["sub"] == enterprise_sub and claims["dgov_kind"] == "enterprise"
    assert claims["act"] == {
        "sub": Subject.objects.get(user=citizen).sub,
        "dgov_agent_scopes": SCOPES,
        "dgov_agent_until": int(agency.valid_until.timestamp()),
        "name": "李群众",
    }
    assert claims["acr"] == "urn:dgov:loa:2"
    # the enterprise account holder's own contact details are not released through an agent
    assert "email" not in claims and "phone_number" not in claims
    access = decode(acting, body["access_token"])
    assert access["sub"] == enterprise_sub and access["act"]["sub"] == claims["act"]["sub"]
    info = userinfo(acting, body["access_token"]).json()
    assert info["sub"] == enterprise_sub and info["act"]["dgov_agent_scopes"] == SCOPES
    grant = Grant.objects.get()
    assert grant.user == enterprise and grant.agency == agency
    assert AccessToken.objects.get(jti=access["jti"]).user == enterprise
    issued = AuditRecord.objects.filter(action="oidc.token.issue").order_by("seq").last()
    assert issued.detail["agent"] == "citizen1" and issued.detail["user"] == "company1"
    # the token acts as the enterprise on the API, with the agent alongside
    principal = tokens.principal_for(tokens.validate_access_token(body["access_token"]))
    assert principal == enterprise and principal.acting_agent == citizen and principal.agent_scopes == SCOPES
    answer = acting.post(
        "/oidc/introspect", {"token": body["access_token"]}, HTTP_AUTHORIZATION=basic(rp.client_id, rp.secret)
    ).json()
    assert answer["active"] and answer["act"]["sub"] == claims["act"]["sub"]
    refreshed = rp.token(acting, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200 and decode(acting, refreshed.json()["id_token"])["act"] == claims["act"]


def test_personal_and_enterprise_logins_are_unchanged(rp, logged_in, agency, enterprise, citizen, client):
    personal = decode(logged_in, rp.login_tokens(logged_in)["id_token"])
    assert personal["sub"] == tokens.subject_of(citizen) and "act" not in personal
    client.force_login(enterprise)  # the legal representative on the enterprise account itself
    own = decode(client, rp.login_tokens(client)["id_token"])
    assert own["sub"] == tokens.subject_of(enterprise) and "act" not in own and own["dgov_kind"] == "enterprise"
    assert Grant.objects.filter(agency__isnull=False).count() == 0


def test_acr_is_never_above_the_agent_level(rp, acting, agency, enterprise, citizen):
    User.objects.filter(pk=enterprise.pk).update(real_name_level=3)
    assert decode(acting, rp.login_tokens(acting)["id_token"])["acr"] == "urn:dgov:loa:2"
    refused = query(rp.authorize(acting, acr_values="urn:dgov:loa:3")["Location"])
    assert refused["error"] == "unmet_authentication_requirements"
    User.objects.filter(pk=citizen.pk).update(real_name_level=3)
    assert decode(acting, rp.login_tokens(acting, acr_values="urn:dgov:loa:3")["id_token"])["acr"] == "urn:dgov:loa:3"


def test_consent_is_given_for_the_enterprise(third_party, acting, agency, enterprise, citizen):
    page = third_party.authorize(acting)
    assert page.status_code == 200
    assert 'data-testid="consent-acting-for"' in page.content.decode() and "济南测试有限公司" in page.content.decode()
    rid = page.context["rid"]
    # switching back to the personal identity before answering makes the question stale
    acting.post("/account/agencies/stop/")
    stale = acting.post("/oidc/consent", {"rid": rid, "decision": "allow"})
    assert stale.status_code == 400 and not Consent.objects.exists()
    acting.post(f"/account/agencies/{agency.pk}/act/")
    rid = third_party.authorize(acting).context["rid"]
    answer = acting.post("/oidc/consent", {"rid": rid, "decision": "allow"})
    assert answer.status_code == 302 and "code" in query(answer["Location"])
    assert Consent.objects.get().user == enterprise  # remembered for the enterprise, not the person
    body = third_party.exchange(acting, query(answer["Location"])["code"]).json()
    assert decode(acting, body["id_token"])["sub"] == tokens.subject_of(enterprise)
    # next time the enterprise's consent covers it; the person's own login still asks
    assert third_party.authorize(acting).status_code == 302
    acting.post("/account/agencies/stop/")
    assert third_party.authorize(acting).status_code == 200


def test_an_expired_authorization_stops_tokens_and_codes(rp, acting, agency):
    body = rp.login_tokens(acting, scope="openid profile offline_access")
    code = rp.code(acting)
    EnterpriseAgent.objects.filter(pk=agency.pk).update(valid_until=timezone.now() - dt.timedelta(seconds=1))
    assert userinfo(acting, body["access_token"]).status_code == 401
    refreshed = rp.token(acting, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    assert Grant.objects.get().revoke_reason == "agency_ended"
    redeemed = rp.exchange(acting, code)
    assert redeemed.status_code == 400 and redeemed.json()["error"] == "invalid_grant"
    # the browser is back to the person: a new login is the person's own
    personal = decode(acting, rp.login_tokens(acting)["id_token"])
    assert "act" not in personal and personal["dgov_kind"] == "person"


def test_revoking_the_authorization_revokes_grants_and_tokens(rp, acting, agency, enterprise, client):
    body = rp.login_tokens(acting, scope="openid profile offline_access")
    assert userinfo(acting, body["access_token"]).status_code == 200
    client.force_login(enterprise)
    assert client.post(f"/account/agents/{agency.pk}/revoke/").status_code == 302
    grant = Grant.objects.get()
    assert grant.revoked_at is not None and grant.revoke_reason == "agency_revoked"
    assert AccessToken.objects.filter(grant=grant, revoked_at__isnull=True).count() == 0
    assert userinfo(acting, body["access_token"]).status_code == 401
    refreshed = rp.token(acting, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert refreshed.json()["error"] == "invalid_grant"
    revoke = AuditRecord.objects.get(action="oidc.grant.revoke")
    assert revoke.detail["reason"] == "agency_revoked" and revoke.detail["access_tokens"] == 1


def test_the_agent_logging_out_ends_online_grants_made_for_the_enterprise(rp, acting, agency):
    body = rp.login_tokens(acting, scope="openid profile")
    response = acting.get("/oidc/logout", {"id_token_hint": body["id_token"]})  # the hint names the agent in act
    assert response.status_code == 200 and "_auth_user_id" not in acting.session
    assert Grant.objects.get().revoke_reason == "logout"
    assert userinfo(acting, body["access_token"]).status_code == 401


def test_prompt_none_and_redirects_still_work_while_acting(rp, acting):
    response = rp.authorize(acting, prompt="none", state="s-9")
    assert response.status_code == 302 and response["Location"].startswith(REDIRECT)
    assert query(response["Location"])["state"] == "s-9" and "code" in query(response["Location"])
