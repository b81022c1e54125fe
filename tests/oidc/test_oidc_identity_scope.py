"""The provider side of brokering: the ``dgov:identity`` scope releases a verified person's ID number and name."""

import datetime

import pytest
from oidc_helpers import install_population, make_rp

from dgov.kernel.validators import make_resident_id
from dgov.oidc import jose
from dgov.oidc.services import keys

PERSON_ID = make_resident_id("370102", datetime.date(1985, 6, 1), 123)


@pytest.fixture
def verified(django_user_model, user_password):
    """A person verified at level 2 whose number is on file."""
    return django_user_model.objects.create_user(
        username="wang",
        password=user_password,
        kind="person",
        display_name="王实名",
        id_number=PERSON_ID,
        real_name_level=2,
    )


@pytest.fixture
def platform(department):
    """Another platform registered with the identity scope (first-party: no consent screen)."""
    return make_rp(department, client_id="platform", scopes=["openid", "profile", "dgov:identity"])


def _claims(token: str) -> dict:
    """The verified claims of an id_token of this provider."""
    return jose.verify(token, keys.public_key)[1]


def test_identity_claims_released_to_an_allowed_client(client, verified, platform):
    client.force_login(verified)
    answer = platform.login_tokens(client, scope="openid dgov:identity")
    claims = _claims(answer["id_token"])
    assert claims["dgov_id_number"] == PERSON_ID and claims["dgov_real_name"] == "王实名"
    info = client.get("/oidc/userinfo", HTTP_AUTHORIZATION=f"Bearer {answer['access_token']}").json()
    assert info["dgov_id_number"] == PERSON_ID and info["dgov_real_name"] == "王实名"


def test_identity_claims_need_the_scope_and_level_2(client, verified, platform, django_user_model):
    client.force_login(verified)
    assert "dgov_id_number" not in _claims(platform.login_tokens(client, scope="openid profile")["id_token"])
    for changes in ({"real_name_level": 1}, {"kind": "enterprise"}):
        django_user_model.objects.filter(pk=verified.pk).update(**changes)
        claims = _claims(platform.login_tokens(client, scope="openid dgov:identity")["id_token"])
        assert "dgov_id_number" not in claims and "dgov_real_name" not in claims
        django_user_model.objects.filter(pk=verified.pk).update(real_name_level=2, kind="person")


def test_clients_not_registered_for_the_scope_are_refused(client, verified, rp):
    client.force_login(verified)
    response = rp.authorize(client, scope="openid dgov:identity")
    assert response.status_code == 302 and "error=invalid_scope" in response["Location"]


def test_consent_page_marks_the_id_number_as_sensitive(client, verified, department):
    third = make_rp(department, client_id="other-platform", first_party=False, scopes=["openid", "dgov:identity"])
    client.force_login(verified)
    page = third.authorize(client, scope="openid dgov:identity")
    text = page.content.decode()
    assert page.status_code == 200 and 'data-testid="sensitive-scope"' in text
    assert "居民身份证号码" in text and "敏感个人信息" in text and 'data-testid="sensitive-notice"' in text
    plain = make_rp(department, client_id="plain", first_party=False).authorize(client, scope="openid profile")
    assert "敏感个人信息" not in plain.content.decode()


def test_discovery_lists_the_scope_and_claims(client):
    document = client.get("/.well-known/openid-configuration").json()
    assert "dgov:identity" in document["scopes_supported"]
    assert {"dgov_id_number", "dgov_real_name"} <= set(document["claims_supported"])


def test_verification_keeps_the_number_encrypted(base_people_like, citizen):
    from django.db import connection

    from dgov.identity import realname

    realname.verify_person(citizen, "王实名", PERSON_ID, actor=citizen)
    citizen.refresh_from_db()
    assert citizen.id_number == PERSON_ID
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number FROM identity_user WHERE id = %s", [citizen.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("v1:") and PERSON_ID not in stored


@pytest.fixture
def base_people_like(department, province):
    """population.person with 王实名 (PERSON_ID, normal)."""
    install_population(department, province, [(PERSON_ID, "王实名", "normal")])
