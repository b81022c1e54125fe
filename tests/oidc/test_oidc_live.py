"""A standard third-party OAuth/OIDC client drives the whole code flow against a live server.

The relying party is Authlib's ``OAuth2Session`` (requests) with PKCE S256; the id_token is
verified with joserfc against the JWKS fetched over HTTP. Nothing in these tests knows dgov's
internals: discovery tells the client where everything is. The user's login is a session made
beforehand (the login page is tested elsewhere), carried by a ``requests`` browser session.
"""

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings as django_settings
from django.test import Client
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from oidc_helpers import REDIRECT, make_rp

from dgov.oidc import jose

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_issuer(live_server, settings):
    """The live server's URL is the issuer."""
    settings.OIDC_ISSUER = live_server.url
    return live_server.url


@pytest.fixture
def sessions():
    """HTTP sessions closed when the test ends.

    A keep-alive connection left open would end only after the shared live server stops, and its
    server thread would then close a database connection it may no longer share.
    """
    opened = []
    yield opened
    for session in opened:
        session.close()


def browser_for(user, sessions) -> requests.Session:
    """A requests session carrying a logged-in dgov session cookie."""
    django_client = Client()
    django_client.force_login(user)
    browser = requests.Session()
    sessions.append(browser)
    name = django_settings.SESSION_COOKIE_NAME
    browser.cookies.set(name, django_client.cookies[name].value)
    return browser


def authorize(browser, oauth, metadata, **kwargs):
    """Follow the authorization request as a browser would; return (redirect location, verifier, nonce, state)."""
    verifier, nonce = generate_token(48), generate_token(16)
    url, state = oauth.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **kwargs
    )
    response = browser.get(url, allow_redirects=False, timeout=30)
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"], verifier, nonce, state


def test_authlib_confidential_client_code_flow(live_issuer, department, citizen, sessions):
    rp = make_rp(department, client_id="authlib-rp")
    metadata = requests.get(f"{live_issuer}/.well-known/openid-configuration", timeout=30).json()
    assert metadata["issuer"] == live_issuer
    oauth = OAuth2Session(
        rp.client_id,
        rp.secret,
        scope="openid profile offline_access",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    sessions.append(oauth)
    location, verifier, nonce, state = authorize(browser_for(citizen, sessions), oauth, metadata)
    assert location.startswith(REDIRECT)
    token = oauth.fetch_token(
        metadata["token_endpoint"], authorization_response=location, code_verifier=verifier, state=state
    )
    assert token["token_type"] == "Bearer" and token["refresh_token"]

    keyset = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=30).json())
    id_token = jwt.decode(token["id_token"], keyset, algorithms=["RS256"])
    JWTClaimsRegistry(
        iss={"essential": True, "value": live_issuer},
        aud={"essential": True, "value": rp.client_id},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True},
    ).validate(id_token.claims)

    userinfo = oauth.get(metadata["userinfo_endpoint"], timeout=30)
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == id_token.claims["sub"]
    assert userinfo.json()["preferred_username"] == "citizen1"

    refreshed = oauth.refresh_token(metadata["token_endpoint"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    revoked = oauth.revoke_token(
        metadata["revocation_endpoint"], refreshed["refresh_token"], token_type_hint="refresh_token"
    )
    assert revoked.status_code == 200
    introspection = requests.post(
        metadata["introspection_endpoint"],
        data={"token": refreshed["access_token"]},
        auth=(rp.client_id, rp.secret),
        timeout=30,
    ).json()
    assert introspection == {"active": False}


def test_authlib_public_client_with_sm2_id_token(live_issuer, department, citizen, sessions):
    app = make_rp(
        department,
        client_id="authlib-app",
        client_type="public",
        grant_types=["authorization_code"],
        id_token_alg="SM2",
    )
    metadata = requests.get(f"{live_issuer}/.well-known/openid-configuration", timeout=30).json()
    oauth = OAuth2Session(
        app.client_id,
        scope="openid profile",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    sessions.append(oauth)
    location, verifier, nonce, state = authorize(browser_for(citizen, sessions), oauth, metadata)
    token = oauth.fetch_token(
        metadata["token_endpoint"], authorization_response=location, code_verifier=verifier, state=state
    )
    published = {k["kid"]: k for k in requests.get(metadata["jwks_uri"], timeout=30).json()["keys"]}
    _header, claims = jose.verify(token["id_token"], lambda kid: jose.PublicJwk.from_dict(published[kid]))
    assert claims["nonce"] == nonce and claims["aud"] == app.client_id and claims["iss"] == live_issuer
    # A wrong verifier is refused by the live server too.
    location, _verifier, _nonce, state = authorize(browser_for(citizen, sessions), oauth, metadata)
    with pytest.raises(Exception, match="invalid_grant"):
        oauth.fetch_token(
            metadata["token_endpoint"], authorization_response=location, code_verifier=generate_token(48), state=state
        )
