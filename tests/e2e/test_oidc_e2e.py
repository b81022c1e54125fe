"""Browser test of the OpenID Connect code flow: login page, consent screen, redirect with a code."""

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _claims(jwt: str) -> dict:
    """The payload of a JWT (its signature is checked by the protocol tests)."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_citizen_logs_in_consents_and_the_app_gets_tokens(page, live_server, citizen, department, user_password):
    from dgov.oidc.services import clients

    redirect_uri = f"{live_server.url}/healthz"
    clients.create_client(
        name="政务服务移动端（测试）",
        organization=department,
        actor="system:test",
        client_type="public",
        redirect_uris=[redirect_uri],
        scopes=("openid", "profile"),
        client_id="e2e-app",
    )
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    query = {
        "response_type": "code",
        "client_id": "e2e-app",
        "redirect_uri": redirect_uri,
        "scope": "openid profile",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page.goto("/oidc/authorize?" + urlencode(query))
    page.wait_for_url("**/login/**")
    page.get_by_label("用户名").fill(citizen.username)
    page.get_by_label("密码").fill(user_password)
    page.locator("form.form").get_by_role("button", name="登录").click()
    expect(page.get_by_role("button", name="同意并继续")).to_be_visible()
    expect(page.get_by_text("政务服务移动端（测试）").first).to_be_visible()
    page.get_by_role("button", name="同意并继续").click()
    page.wait_for_url(f"{redirect_uri}?**")
    answer = parse_qs(urlsplit(page.url).query)
    assert answer["state"] == [state] and answer["code"][0]

    token = requests.post(
        f"{live_server.url}/oidc/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"][0],
            "redirect_uri": redirect_uri,
            "client_id": "e2e-app",
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text
    claims = _claims(token.json()["id_token"])
    assert claims["nonce"] == nonce and claims["aud"] == "e2e-app" and claims["acr"] == "urn:dgov:loa:1"

    # The same code a second time is refused (and would revoke what it issued).
    again = requests.post(
        f"{live_server.url}/oidc/token",
        data={"grant_type": "authorization_code", "code": answer["code"][0], "redirect_uri": redirect_uri,
              "client_id": "e2e-app", "code_verifier": verifier},
        timeout=10,
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
