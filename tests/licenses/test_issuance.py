"""Issuing and changing licences: identifiers, signed credentials, status bits, history, audit, refusals."""

import datetime
import json

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction

from dgov.kernel.models import AuditRecord
from dgov.licenses import keys, services, statuslist
from dgov.licenses.models import Credential, Licence, LicenceEvent, StatusList
from dgov.oidc import jose

pytestmark = pytest.mark.django_db

HOLDER = "370102199001011231"


def _issue(marriage_type, issuer, **kwargs):
    return services.issue(
        marriage_type,
        issuer=issuer,
        holder_name="张三",
        holder_id=HOLDER,
        data={"spouse_name": "李四", "registered_on": "2026-05-20"},
        actor="cli:test",
        **kwargs,
    )


def test_issue_signs_a_verifiable_credential(marriage_type, civil):
    licence = _issue(marriage_type, civil["mz_city"], number="J3701002026000001")
    assert licence.identifier.split(".")[-2] == "J3701002026000001"
    credential = services.current_credential(licence)
    header, vc = jose.verify(credential.jws, keys.public_key)
    assert header["alg"] == "SM2" and header["typ"] == "vc+jwt"
    assert vc["id"] == f"urn:dgov:licence:{licence.identifier}:v1"
    assert vc["issuer"]["name"] == "济南市民政局"
    subject = vc["credentialSubject"]
    assert subject["identifier"] == HOLDER and subject["licence"]["data"]["spouse_name"] == "李四"
    assert "validUntil" not in vc  # long-term
    purposes = {entry["statusPurpose"]: entry for entry in vc["credentialStatus"]}
    assert set(purposes) == {"revocation", "suspension"}
    assert int(purposes["revocation"]["statusListIndex"]) == credential.revocation_index
    assert LicenceEvent.objects.filter(licence=licence, action="issue").count() == 1
    assert AuditRecord.objects.filter(action="licenses.licence.issue").count() == 1
    # Holder data sealed at rest, found by blind index.
    with connection.cursor() as cursor:
        cursor.execute("SELECT holder_id, data FROM licenses_licence WHERE id = %s", [licence.pk])
        raw_id, raw_data = cursor.fetchone()
    assert HOLDER not in raw_id and "李四" not in raw_data
    assert [found.pk for found in services.find_by_holder("person", HOLDER)] == [licence.pk]


def test_es256_and_generated_numbers(marriage_type, civil, settings):
    settings.LICENCE_SIGNING_ALG = "ES256"
    first = _issue(marriage_type, civil["mz"])
    second = _issue(marriage_type, civil["mz"])
    assert first.number.startswith("3700002026") or first.number[:6] == "370000"
    assert int(second.number[-7:]) == int(first.number[-7:]) + 1
    header, _vc = jose.verify(services.current_credential(first).jws, keys.public_key)
    assert header["alg"] == "ES256"


def test_bad_input_is_refused_with_every_problem(marriage_type, civil):
    with pytest.raises(services.LicenceError) as caught:
        services.issue(
            marriage_type,
            issuer=civil["mz"],
            holder_name="张三",
            holder_id=HOLDER,
            data={"registered_on": "2026-13-01", "colour": "red"},
            actor=None,
        )
    assert set(caught.value.message_dict) == {"spouse_name", "registered_on", "colour"}
    with pytest.raises(services.LicenceError, match="holder_id"):
        services.issue(
            marriage_type, issuer=civil["mz"], holder_name="张三", holder_id="370102199001011238", data={}, actor=None
        )
    assert not Licence.objects.exists()


def test_only_the_type_issuers_may_issue(marriage_type, civil, django_user_model):
    with pytest.raises(PermissionDenied):
        _issue(marriage_type, civil["ga"])  # not of the MZ kind
    assert AuditRecord.objects.filter(action="licenses.licence.issue", outcome="denied").exists()
    assert not Licence.objects.exists()


def test_duplicate_numbers_are_refused(marriage_type, civil):
    _issue(marriage_type, civil["mz"], number="A1")
    with pytest.raises(services.LicenceError):
        _issue(marriage_type, civil["mz"], number="A1")
    assert Licence.objects.count() == 1


def test_variation_supersedes_the_old_credential(marriage_type, civil):
    licence = _issue(marriage_type, civil["mz"])
    old = services.current_credential(licence)
    licence = services.vary(licence, {"remark": "补发"}, actor="cli:test", reason="补发")
    assert licence.version == 2
    new = services.current_credential(licence)
    old.refresh_from_db()
    assert old.superseded_at is not None
    assert statuslist.is_set(old.revocation_list_id, old.revocation_index)
    assert not statuslist.is_set(new.revocation_list_id, new.revocation_index)
    _header, vc = jose.verify(new.jws, keys.public_key)
    assert vc["credentialSubject"]["licence"]["version"] == 2
    event = LicenceEvent.objects.get(licence=licence, action="vary")
    assert event.changed == ["remark"] and json.loads(event.previous) == {
        "registered_on": "2026-05-20",
        "spouse_name": "李四",
    }
    with pytest.raises(services.LicenceError):
        services.vary(licence, {"remark": "补发"}, actor="cli:test", reason="again")


def test_suspend_resume_revoke_flip_the_bits(marriage_type, civil):
    licence = _issue(marriage_type, civil["mz"])
    credential = services.current_credential(licence)
    with pytest.raises(services.LicenceError):
        services.suspend(licence, actor="cli:test", reason="")
    services.suspend(licence, actor="cli:test", reason="核查中")
    assert statuslist.is_set(credential.suspension_list_id, credential.suspension_index)
    with pytest.raises(services.LicenceError):
        services.suspend(licence, actor="cli:test", reason="again")
    services.resume(licence, actor="cli:test")
    assert not statuslist.is_set(credential.suspension_list_id, credential.suspension_index)
    services.revoke(licence, actor="cli:test", reason="婚姻关系解除")
    assert statuslist.is_set(credential.revocation_list_id, credential.revocation_index)
    licence.refresh_from_db()
    assert licence.status == Licence.Status.REVOKED
    with pytest.raises(services.LicenceError):
        services.vary(licence, {"remark": "x"}, actor="cli:test", reason="x")
    actions = list(LicenceEvent.objects.filter(licence=licence).values_list("action", flat=True))
    assert actions == ["issue", "suspend", "resume", "revoke"]


def test_renewal_extends_validity(civil):
    from dgov.licenses.models import LicenceType

    permit = LicenceType.objects.create(
        code="11100000000013127D002",
        name="社会团体法人登记证书",
        department=civil["mz"],
        issuer_kind="MZ",
        holder_kind="enterprise",
        items=[{"name": "scope", "label": "业务范围", "type": "text", "required": True}],
        validity={"years": 5},
        sharing_type="unconditional",
    )
    licence = services.issue(
        permit,
        issuer=civil["mz"],
        holder_name="山东省数字政府协会",
        holder_id="51370000000000115Y",
        data={"scope": "学术交流"},
        actor=None,
        valid_from=datetime.date(2026, 3, 1),
    )
    assert licence.valid_until == datetime.date(2031, 2, 28)
    renewed = services.renew(licence, actor=None, reason="到期延续")
    assert renewed.valid_until > datetime.date(2031, 2, 28) and renewed.version == 2
    assert Credential.objects.filter(licence=licence).count() == 2


def test_a_new_credential_never_takes_an_index_in_use(marriage_type, civil, monkeypatch):
    first = services.current_credential(_issue(marriage_type, civil["mz_city"], number="J3701002026000011"))
    used, free = first.revocation_index, (first.revocation_index + 1) % statuslist.MIN_SIZE
    draws = iter([used, free])  # the first candidate is taken: it is checked and drawn again
    monkeypatch.setattr(statuslist.secrets, "randbelow", lambda _n: next(draws, free))
    with transaction.atomic():
        [(status_list, index)] = statuslist.allocate(civil["mz_city"], StatusList.Purpose.REVOCATION)
    assert status_list.pk == first.revocation_list_id and index == free
