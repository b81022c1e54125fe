"""Real-name levels in OIDC: the acr claim, acr_values / essential acr, a client's minimum level."""

import base64
import json

import pytest
from oidc_helpers import REDIRECT, make_rp, query

from dgov.identity.models import User
from dgov.kernel.models import AuditRecord

pytestmark = pytest.mark.django_db


def _set_level(user, level):
    """The level as dgov.identity.realname leaves it (tested there against the base libraries)."""
    User.objects.filter(pk=user.pk).update(real_name_level=level)


def _payload(body) -> dict:
    """The id_token's claims (its signature is checked by test_oidc_token.py)."""
    part = body["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_acr_in_the_id_token_follows_the_real_name_level(rp, logged_in, citizen):
    assert _payload(rp.login_tokens(logged_in))["acr"] == "urn:dgov:loa:1"
    _set_level(citizen, 2)
    assert _payload(rp.login_tokens(logged_in))["acr"] == "urn:dgov:loa:2"


def test_acr_values_above_the_level_are_refused(rp, logged_in, citizen):
    response = rp.authorize(logged_in, acr_values="urn:dgov:loa:2", state="s1")
    assert response.status_code == 302 and response["Location"].startswith(REDIRECT)
    values = query(response["Location"])
    assert values["error"] == "unmet_authentication_requirements" and values["state"] == "s1"
    assert "code" not in values
    refusal = AuditRecord.objects.filter(action="oidc.authorize.refuse").last()
    assert refusal is not None and refusal.outcome != "success"
    # any listed value is enough, and unknown values are ignored (acr_values is voluntary)
    assert "code" in query(rp.authorize(logged_in, acr_values="urn:dgov:loa:3 urn:dgov:loa:1")["Location"])
    assert "code" in query(rp.authorize(logged_in, acr_values="urn:other:gold")["Location"])
    _set_level(citizen, 2)
    body = rp.login_tokens(logged_in, acr_values="urn:dgov:loa:2")
    assert _payload(body)["acr"] == "urn:dgov:loa:2"


def test_essential_acr_in_the_claims_parameter(rp, logged_in, citizen):
    essential = json.dumps({"id_token": {"acr": {"essential": True, "values": ["urn:dgov:loa:2", "urn:dgov:loa:3"]}}})
    values = query(rp.authorize(logged_in, claims=essential)["Location"])
    assert values["error"] == "unmet_authentication_requirements"
    voluntary = json.dumps({"id_token": {"acr": {"values": ["urn:dgov:loa:3"]}}})
    assert "code" in query(rp.authorize(logged_in, claims=voluntary)["Location"])
    unknown = json.dumps({"id_token": {"acr": {"essential": True, "value": "urn:other:gold"}}})
    _set_level(citizen, 3)
    assert query(rp.authorize(logged_in, claims=unknown)["Location"])["error"] == "unmet_authentication_requirements"
    assert "code" in query(rp.authorize(logged_in, claims=essential)["Location"])
    assert query(rp.authorize(logged_in, claims="not json")["Location"])["error"] == "invalid_request"


def test_client_minimum_level(department, logged_in, citizen):
    from django.core.exceptions import ValidationError

    from dgov.oidc.services import clients

    strict = make_rp(department, client_id="strict")
    with pytest.raises(ValidationError):
        clients.update_client(strict.client, actor="system:test", min_acr="urn:other:loa")
    strict.client = clients.update_client(strict.client, actor="system:test", min_acr="urn:dgov:loa:2")
    values = query(strict.authorize(logged_in)["Location"])
    assert values["error"] == "unmet_authentication_requirements"
    # a request cannot lower the client's minimum
    assert query(strict.authorize(logged_in, acr_values="urn:dgov:loa:1")["Location"])["error"] == (
        "unmet_authentication_requirements"
    )
    _set_level(citizen, 2)
    assert _payload(strict.login_tokens(logged_in))["acr"] == "urn:dgov:loa:2"


def test_prompt_none_below_the_minimum(rp, logged_in):
    values = query(rp.authorize(logged_in, prompt="none", acr_values="urn:dgov:loa:3")["Location"])
    assert values["error"] == "unmet_authentication_requirements"


def test_discovery_lists_the_levels(client):
    document = client.get("/.well-known/openid-configuration").json()
    assert document["acr_values_supported"] == ["urn:dgov:loa:1", "urn:dgov:loa:2", "urn:dgov:loa:3"]
