"""Helpers of the OpenID Connect provider tests: PKCE, a registered client that drives the code flow.

Imported with ``from oidc_helpers import ...`` by tests/oidc/ (pytest puts this directory on the path).
"""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

REDIRECT = "https://rp.example/cb"
LOGOUT_TARGET = "https://rp.example/bye"
ISSUER = "http://testserver"


def pkce() -> tuple[str, str]:
    """A fresh (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client_id: str, secret: str) -> str:
    """An HTTP Basic Authorization value."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def query(location: str) -> dict[str, str]:
    """The query of a redirect's Location as a flat dict."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


class RP:
    """A registered client with its secret, and helpers that drive the protocol through a test client."""

    def __init__(self, client, secret):
        self.client = client
        self.secret = secret
        self.client_id = client.client_id
        self.verifier = ""

    def auth_params(self, **overrides) -> dict[str, str]:
        """A valid authorization request (PKCE S256, state, nonce) with overrides (None removes a parameter)."""
        self.verifier, challenge = pkce()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT,
            "scope": "openid profile",
            "state": "st-" + secrets.token_hex(4),
            "nonce": "n-" + secrets.token_hex(4),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, http, **overrides):
        """GET the authorization endpoint."""
        return http.get("/oidc/authorize?" + urlencode(self.auth_params(**overrides)))

    def code(self, http, **overrides) -> str:
        """Run the authorization request for the logged-in test client and return the code."""
        response = self.authorize(http, **overrides)
        assert response.status_code == 302, response.content[:500]
        values = query(response["Location"])
        assert "code" in values, values
        return values["code"]

    def token(self, http, data: dict, *, auth: str | None = "basic"):
        """POST to the token endpoint, authenticating with basic (default), post or not at all."""
        headers = {}
        data = dict(data)
        if auth == "basic":
            headers["HTTP_AUTHORIZATION"] = basic(self.client_id, self.secret)
        elif auth == "post":
            data.update(client_id=self.client_id, client_secret=self.secret)
        elif auth == "none":
            data["client_id"] = self.client_id
        return http.post("/oidc/token", data, **headers)

    def exchange(self, http, code: str, **extra):
        """Redeem a code with this RP's verifier."""
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": self.verifier,
        }
        data.update(extra)
        return self.token(http, data)

    def login_tokens(self, http, **overrides) -> dict:
        """The whole code flow: authorize, redeem, return the token response."""
        code = self.code(http, **overrides)
        response = self.exchange(http, code)
        assert response.status_code == 200, response.content
        return response.json()


def make_rp(department, **kwargs) -> RP:
    """Register a client through the service."""
    from dgov.oidc.services import clients

    values = {
        "name": "业务系统",
        "organization": department,
        "actor": "system:test",
        "redirect_uris": [REDIRECT],
        "post_logout_redirect_uris": [LOGOUT_TARGET],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile", "email", "phone", "offline_access", "registry:read"],
        "first_party": True,
        "client_id": "rp",
    }
    values.update(kwargs)
    client, secret = clients.create_client(**values)
    return RP(client, secret)


def install_population(department, province, people) -> None:
    """Install the base libraries and put ``people`` — (id_number, name, status) — into population.person."""
    from dgov.kernel.models import Organization
    from dgov.kernel.validators import make_uscc
    from dgov.registry import libraries, services

    department.kind = "GA"
    department.save(update_fields=["kind"])
    for n, kind in enumerate(("SCJG", "FGW", "TJ", "ZRZY", "DSJ", "RS", "YJ"), start=1):
        Organization.objects.create(
            name=f"山东省{kind}部门",
            code=f"370000-{kind}",
            uscc=make_uscc("1", "1", "370000", serial=100 + n),
            level=Organization.Level.PROVINCE,
            division=province,
            kind=kind,
        )
    libraries.install_libraries(actor="system:test", province_code="370000")
    persons = services.get_registry("population.person")
    for number, name, status in people:
        services.create_record(
            persons,
            {
                "id_number": number,
                "name": name,
                "sex": "1",
                "birth_date": f"{number[6:10]}-{number[10:12]}-{number[12:14]}",
                "division_code": "370100",
                "status": status,
            },
            actor="system:test",
            source=department,
        )
