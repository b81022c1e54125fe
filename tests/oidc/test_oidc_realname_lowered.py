"""A real-name level that drops (identity.realname.lowered) lowers the acr of the user's live grants.

Grants stay (the login is still the user's) but refreshed id_tokens carry the lower acr; a grant
of a client whose registered minimum the account no longer reaches is revoked with its tokens.
The drop itself is tested against the population library in tests/identity.
"""

import base64
import json

import pytest
from django.core.management import call_command
from django.db import transaction
from oidc_helpers import make_rp

from dgov.identity import realname
from dgov.identity.models import User
from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord
from dgov.oidc.models import Grant

pytestmark = pytest.mark.django_db


def _digest() -> str:
    return blind_index("370102198506011232", purpose="resident_id")


def _claims(token) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _verified(user, level=2):
    User.objects.filter(pk=user.pk).update(real_name_level=level, id_number_digest=_digest())


def _lower():
    with transaction.atomic():
        lowered = realname.lower_accounts_of(_digest(), reason="deceased", record="r-1")
    call_command("worker", "--once", "--no-tasks", verbosity=0)
    return lowered


def _refresh(rp, http, body):
    return rp.token(http, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})


def test_grants_stay_but_their_acr_falls(rp, logged_in, citizen):
    _verified(citizen)
    first = rp.login_tokens(logged_in, scope="openid profile offline_access")
    assert _claims(first["id_token"])["acr"] == "urn:dgov:loa:2"
    assert [u.pk for u in _lower()] == [citizen.pk]
    grant = Grant.objects.get()
    assert grant.revoked_at is None and grant.acr == "urn:dgov:loa:1"
    row = AuditRecord.objects.get(action="oidc.grant.acr_lower")
    assert row.detail["from"] == "urn:dgov:loa:2" and row.detail["to"] == "urn:dgov:loa:1"
    refreshed = _refresh(rp, logged_in, first)
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert _claims(body["id_token"])["acr"] == "urn:dgov:loa:1"
    assert _claims(body["access_token"])["acr"] == "urn:dgov:loa:1"
    # the session stays too: a new authorization is simply at the new level
    assert _claims(rp.login_tokens(logged_in)["id_token"])["acr"] == "urn:dgov:loa:1"


def test_a_client_minimum_above_the_new_level_revokes_its_grant(department, rp, logged_in, citizen):
    from dgov.oidc.services import clients

    _verified(citizen)
    strict = make_rp(department, client_id="strict")
    strict.client = clients.update_client(strict.client, actor="system:test", min_acr="urn:dgov:loa:2")
    strict_tokens = strict.login_tokens(logged_in, scope="openid offline_access")
    easy_tokens = rp.login_tokens(logged_in, scope="openid offline_access")
    _lower()
    strict_grant = Grant.objects.get(client=strict.client)
    assert strict_grant.revoked_at is not None and strict_grant.revoke_reason == "acr_lowered"
    assert _refresh(strict, logged_in, strict_tokens).status_code == 400
    assert _refresh(rp, logged_in, easy_tokens).status_code == 200


def test_other_users_grants_are_left_alone_and_redelivery_writes_nothing(rp, logged_in, citizen, official):
    from django.test import Client

    from dgov.kernel.models import OutboxEvent
    from dgov.oidc.handlers import lower_grant_acr

    _verified(citizen)
    rp.login_tokens(logged_in, scope="openid offline_access")
    other = Client()
    other.force_login(official)
    rp.login_tokens(other, scope="openid")
    official_grant = Grant.objects.get(user=official)
    acr_before = official_grant.acr
    _lower()
    official_grant.refresh_from_db()
    assert official_grant.acr == acr_before and official_grant.revoked_at is None
    assert Grant.objects.get(user=citizen).acr == "urn:dgov:loa:1"
    # delivered twice (at-least-once): nothing more is written
    with transaction.atomic():
        lower_grant_acr(OutboxEvent.objects.get(event_type=realname.LEVEL_LOWERED_EVENT))
    assert AuditRecord.objects.filter(action="oidc.grant.acr_lower").count() == 1
