"""Licence identifiers, issuer keys, Bitstring Status Lists and the signed status-list credential."""

import datetime

import pytest
from django.db import transaction
from django.utils import timezone

from dgov.licenses import credentials, keys, statuslist
from dgov.licenses.models import IssuerKey, StatusList
from dgov.oidc import jose

pytestmark = pytest.mark.django_db

TYPE_CODE = "11100000000013127D001"


def test_identifier_round_trip_and_check_character():
    identifier = credentials.make_identifier(TYPE_CODE, "11370000004312345X", "3700002026000123")
    assert identifier.startswith("1.2.156.3005.2.11100000000013127D001.11370000004312345X.3700002026000123.")
    assert credentials.parse_identifier(identifier) == {
        "type_code": TYPE_CODE,
        "issuer_uscc": "11370000004312345X",
        "serial": "3700002026000123",
    }
    # One changed digit, a swapped pair, a wrong arc: all refused.
    for forged in (
        identifier.replace("3700002026000123", "3700002026000124"),
        identifier.replace("3700002026000123", "3700002026001023"),
        identifier.replace("1.2.156.3005.2", "1.2.156.3005.3"),
        identifier[:-1],
    ):
        with pytest.raises(credentials.IdentifierError):
            credentials.parse_identifier(forged)


def test_identifier_parts_must_be_plain():
    with pytest.raises(credentials.IdentifierError):
        credentials.make_identifier(TYPE_CODE, "11370000004312345X", "鲁2026-01")
    assert credentials.plain_serial(" ab12 ") == "AB12"
    assert credentials.plain_serial("鲁A12345") is None


def test_encoding_matches_the_specification():
    bits = bytearray(statuslist.MIN_SIZE // 8)
    bits[0] = 0b1000_0000  # index 0
    bits[1] = 0b0000_0001  # index 15
    encoded = statuslist.encode(bytes(bits))
    assert encoded.startswith("u") and "=" not in encoded
    decoded = statuslist.decode(encoded)
    assert len(decoded) == statuslist.MIN_SIZE // 8
    assert statuslist.bit(decoded, 0) and statuslist.bit(decoded, 15)
    assert not statuslist.bit(decoded, 1) and not statuslist.bit(decoded, 14)
    with pytest.raises(statuslist.StatusListError):
        statuslist.decode("zABC")
    with pytest.raises(statuslist.StatusListError):
        statuslist.decode("u!!!!")
    with pytest.raises(statuslist.StatusListError):
        statuslist.bit(decoded, statuslist.MIN_SIZE)


def test_issuer_keys_are_created_on_first_use_wrapped_and_rotated(department):
    key, key_id = keys.active_key(department, "SM2")
    again, again_id = keys.active_key(department, "SM2")
    assert (again.kid, again_id) == (key.kid, key_id)
    row = IssuerKey.objects.get(pk=key_id)
    assert key.to_der() not in bytes(row.wrapped)
    token = jose.sign({"a": 1}, key)
    assert jose.verify(token, keys.public_key)[1] == {"a": 1}

    es_key, _ = keys.active_key(department, "ES256")
    assert es_key.alg == "ES256" and es_key.kid != key.kid
    assert {k["kid"] for k in keys.issuer_jwks(department)["keys"]} == {key.kid, es_key.kid}

    new = keys.rotate_key(department, "SM2", actor=None)
    assert keys.active_key(department, "SM2")[0].kid == new.kid
    assert jose.verify(token, keys.public_key)  # retired keys still verify
    keys.revoke_key(key.kid, actor=None)
    with pytest.raises(jose.JoseError):
        jose.verify(token, keys.public_key)
    with pytest.raises(ValueError):
        keys.active_key(department, "RS256")


def test_allocation_is_random_and_unique(department):
    with transaction.atomic():
        slots = statuslist.allocate(department, StatusList.Purpose.REVOCATION, 500)
    indexes = [index for _list, index in slots]
    assert len(set(indexes)) == 500
    assert all(0 <= index < statuslist.MIN_SIZE for index in indexes)
    assert indexes != sorted(indexes)  # not sequential
    status_list = slots[0][0]
    status_list.refresh_from_db()
    assert status_list.size >= 131_072 and status_list.used == 500


def test_status_changes_reach_the_published_credential_in_batches(department, settings):
    settings.LICENCE_STATUS_PUBLISH_SECONDS = 60
    with transaction.atomic():
        [(status_list, index)] = statuslist.allocate(department, StatusList.Purpose.REVOCATION)
    now = timezone.now()
    assert credentials.publish_due(now) == 1
    status_list.refresh_from_db()
    first = status_list.published
    header, vc = jose.verify(first, keys.public_key)
    assert header["typ"] == "vc+jwt" and header["cty"] == "vc"
    assert vc["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert vc["credentialSubject"]["statusPurpose"] == "revocation"
    assert not statuslist.bit(statuslist.decode(vc["credentialSubject"]["encodedList"]), index)

    assert statuslist.set_status(status_list, index, True) is True
    assert statuslist.set_status(status_list, index, True) is False
    assert statuslist.is_set(status_list.pk, index)
    # Within the interval nothing is re-published; after it, the change is.
    assert credentials.publish_due(now + datetime.timedelta(seconds=30)) == 0
    assert credentials.publish_due(now + datetime.timedelta(seconds=61)) == 1
    status_list.refresh_from_db()
    _header, vc = jose.verify(status_list.published, keys.public_key)
    assert statuslist.bit(statuslist.decode(vc["credentialSubject"]["encodedList"]), index)
    assert status_list.published_version == 2 and not status_list.dirty
