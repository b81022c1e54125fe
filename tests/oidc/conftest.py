"""Fixtures of the OpenID Connect provider tests."""

import pytest
from oidc_helpers import ISSUER, make_rp


@pytest.fixture(autouse=True)
def _issuer(settings):
    """Tokens name the test client's host as their issuer."""
    settings.OIDC_ISSUER = ISSUER


@pytest.fixture
def rp(department):
    """A confidential, first-party client (no consent screen)."""
    return make_rp(department)


@pytest.fixture
def third_party(department):
    """A confidential client that needs the user's consent."""
    return make_rp(department, client_id="third", name="第三方应用", first_party=False)


@pytest.fixture
def service(department):
    """A confidential client for system-to-system calls (client credentials)."""
    return make_rp(
        department,
        client_id="svc",
        name="后台服务",
        redirect_uris=[],
        post_logout_redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["registry:read"],
    )


@pytest.fixture
def logged_in(client, citizen):
    """The test client logged in as the citizen."""
    client.force_login(citizen)
    return client
