"""The authorization endpoint through HTTP: trusted and untrusted errors, login, prompt, max_age, consent."""

import time
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import pytest
from oidc_helpers import ISSUER, REDIRECT, make_rp, query

from dgov.kernel.models import AuditRecord
from dgov.oidc.models import AuthorizationCode, Consent
from dgov.oidc.services import clients

pytestmark = pytest.mark.django_db


def refused(action="oidc.authorize.refuse"):
    """Audited refusals of this action."""
    return AuditRecord.objects.filter(action=action, outcome="denied")


# --- requests that must never be redirected --------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"client_id": None}, "invalid_request"),
        ({"client_id": "nobody"}, "invalid_client"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"redirect_uri": REDIRECT + "/"}, "invalid_request"),  # exact string match: no trailing slash
        ({"redirect_uri": REDIRECT + "?x=1"}, "invalid_request"),
        ({"redirect_uri": "HTTPS://rp.example/cb"}, "invalid_request"),
    ],
)
def test_untrusted_client_or_redirect_uri_is_an_error_page(rp, logged_in, overrides, error):
    response = rp.authorize(logged_in, **overrides)
    assert response.status_code == 400
    assert "Location" not in response
    assert error in response.content.decode()
    assert refused().filter(detail_json__contains=error).exists()


def test_inactive_client_is_an_error_page(rp, logged_in):
    clients.deactivate_client(rp.client, actor="system:test")
    response = rp.authorize(logged_in)
    assert response.status_code == 400 and "Location" not in response


def test_repeated_parameter_is_an_error_page(rp, logged_in):
    params = urlencode(rp.auth_params()) + "&client_id=rp"
    response = logged_in.get("/oidc/authorize?" + params)
    assert response.status_code == 400 and "Location" not in response


# --- errors redirected to the client with state and iss ---------------------------------------------------


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # RFC 7636 default would be plain: refused
        ({"code_challenge": "short"}, "invalid_request"),
        ({"scope": "openid registry:write"}, "invalid_scope"),
        ({"scope": "openid nonsense"}, "invalid_scope"),
        ({"scope": None}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "bogus"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://rp.example/req"}, "request_uri_not_supported"),
    ],
)
def test_errors_of_a_trusted_request_redirect_with_state(rp, logged_in, overrides, error):
    response = rp.authorize(logged_in, state="keep-me", **overrides)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(REDIRECT + "?")
    values = query(location)
    assert values["error"] == error
    assert values["state"] == "keep-me"
    assert values["iss"] == ISSUER
    assert "code" not in values
    assert refused().filter(detail_json__contains=error).exists()


def test_client_without_code_grant_is_unauthorized(department, logged_in):
    svc = make_rp(department, client_id="svc2", grant_types=["client_credentials"], scopes=["registry:read"])
    response = svc.authorize(logged_in, scope="registry:read")
    assert query(response["Location"])["error"] == "unauthorized_client"


# --- login ----------------------------------------------------------------------------------------------


def test_anonymous_browser_goes_to_the_login_page_and_comes_back(rp, client, citizen):
    response = rp.authorize(client)
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == "/login/"
    back = query(response["Location"])["next"]
    assert back.startswith("/oidc/authorize?")
    client.force_login(citizen)
    again = client.get(back)
    assert again.status_code == 302
    assert "code" in query(again["Location"])


def test_prompt_none_without_login_is_login_required(rp, client):
    response = rp.authorize(client, prompt="none")
    values = query(response["Location"])
    assert values["error"] == "login_required" and values["state"]


def test_code_is_bound_to_the_request_and_lives_at_most_60_seconds(rp, logged_in, citizen):
    rp.code(logged_in, scope="openid profile email")
    row = AuthorizationCode.objects.get()
    assert row.user == citizen and row.redirect_uri == REDIRECT and row.scope == "openid profile email"
    assert timedelta(0) < row.expires_at - row.created_at <= timedelta(seconds=60)
    assert len(row.code_hash) == 64  # stored as a digest
    assert AuditRecord.objects.filter(action="oidc.code.issue", outcome="success").exists()


def test_prompt_login_forces_a_new_login(rp, logged_in, citizen):
    response = rp.authorize(logged_in, prompt="login")
    assert urlsplit(response["Location"]).path == "/login/"
    back = query(response["Location"])["next"]
    assert "dgov_reauth=" in back
    # The old session is gone: the login page is where the browser must go.
    assert logged_in.get(back)["Location"].startswith("/login/")
    logged_in.force_login(citizen)
    done = logged_in.get(back)
    assert "code" in query(done["Location"])


def test_forged_reauthentication_marker_is_ignored(rp, logged_in):
    response = rp.authorize(logged_in, prompt="login", dgov_reauth="1700000000:forged")
    assert urlsplit(response["Location"]).path == "/login/"


def test_max_age(rp, logged_in, citizen):
    session = logged_in.session
    old = int(time.time()) - 3600
    session["_dgov_auth_time"] = old
    session["dgov_oidc_auth_time"] = old
    session.save()
    fresh = rp.authorize(logged_in, max_age="7200")
    assert "code" in query(fresh["Location"])
    none = rp.authorize(logged_in, max_age="60", prompt="none")
    assert query(none["Location"])["error"] == "login_required"
    stale = rp.authorize(logged_in, max_age="60")
    assert urlsplit(stale["Location"]).path == "/login/"


# --- consent --------------------------------------------------------------------------------------------


def test_consent_is_asked_remembered_and_can_be_forced(third_party, logged_in, citizen):
    page = third_party.authorize(logged_in, scope="openid profile email")
    assert page.status_code == 200
    body = page.content.decode()
    assert "第三方应用" in body and "email" in body
    none = third_party.authorize(logged_in, prompt="none")
    assert query(none["Location"])["error"] == "consent_required"
    # Answer the page that was shown first.
    page = third_party.authorize(logged_in, scope="openid profile email", state="s1")
    rid = page.context["rid"]
    answer = logged_in.post("/oidc/consent", {"rid": rid, "decision": "allow"})
    values = query(answer["Location"])
    assert values["state"] == "s1" and "code" in values
    assert set(Consent.objects.get(user=citizen).scopes) == {"openid", "profile", "email"}
    assert AuditRecord.objects.filter(action="oidc.consent.grant").exists()
    # Remembered for the same or fewer scopes; asked again for more, and with prompt=consent.
    assert "code" in query(third_party.authorize(logged_in, scope="openid email")["Location"])
    assert third_party.authorize(logged_in, scope="openid phone").status_code == 200
    assert third_party.authorize(logged_in, prompt="consent").status_code == 200
    # The pending request is used once.
    assert logged_in.post("/oidc/consent", {"rid": rid, "decision": "allow"}).status_code == 400


def test_consent_denied(third_party, logged_in):
    page = third_party.authorize(logged_in, state="s2")
    answer = logged_in.post("/oidc/consent", {"rid": page.context["rid"], "decision": "deny"})
    values = query(answer["Location"])
    assert values["error"] == "access_denied" and values["state"] == "s2"
    assert not Consent.objects.exists()


def test_first_party_clients_skip_consent(rp, logged_in):
    assert rp.authorize(logged_in).status_code == 302


def test_consent_needs_a_csrf_token(third_party, citizen):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(citizen)
    page = third_party.authorize(browser)
    assert browser.post("/oidc/consent", {"rid": page.context["rid"], "decision": "allow"}).status_code == 403


def test_consent_page_speaks_english(third_party, logged_in):
    response = logged_in.get(
        "/oidc/authorize?" + urlencode(third_party.auth_params(scope="openid email")), HTTP_ACCEPT_LANGUAGE="en"
    )
    body = response.content.decode()
    assert "asks to log you in with your platform account" in body and "Allow and continue" in body
