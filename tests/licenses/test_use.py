"""Licence use (用证) through POST /api/v1/licences/use: consent, expiry, revocation, logging, problems."""

import datetime

import pytest
from django.utils import timezone

from dgov.exchange import log as exchange_log
from dgov.exchange.models import ExchangeLogEntry
from dgov.kernel.models import AuditRecord
from dgov.licenses import services, wallet
from dgov.licenses.models import LicenceConsent, LicenceUse
from dgov.oidc import jose

from .wallet_fixtures import *  # noqa: F403
from .wallet_fixtures import COMPANY_USCC, HOLDER_ID, USE, problem

pytestmark = pytest.mark.django_db


def _consent(holder_user, licence, grantee, **extra):
    values = {"purpose": "户籍业务", "days": 30, **extra}
    return wallet.grant_consent(wallet.holder_of(holder_user), licence, grantee=grantee, **values)


def _use(caller, licence, **extra):
    return caller.post(USE, {"identifier": licence.identifier, "purpose": "办理户口迁移", **extra})


def _denied(code):
    records = AuditRecord.objects.filter(action="licenses.licence.use").exclude(outcome="success")
    return [record for record in records if record.detail.get("code") == code]


def test_refused_without_consent_and_logged(callers, marriage):
    body = problem(_use(callers["ga"], marriage), 403)
    assert body["code"] == "no_consent" and body["exchange_seq"] is not None
    assert marriage.identifier not in body["detail"] and "李四" not in str(body)
    assert not LicenceUse.objects.exists()
    entry = ExchangeLogEntry.objects.get(seq=body["exchange_seq"])
    assert (entry.operation, entry.result, entry.code, entry.status) == ("licence-use", "denied", "no_consent", 403)
    assert entry.consumer_code == "370000-GA" and entry.client_id == "use-ga" and entry.records == []
    assert _denied("no_consent")


def test_allowed_with_consent_logged_audited_and_shown_to_the_holder(callers, holder, marriage, civil):
    consent = _consent(holder, marriage, civil["ga"])
    response = _use(callers["ga"], marriage)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["basis"] == "consent" and answer["consent"]["id"] == consent.pk
    assert answer["holder_name"] == "张三" and answer["holder_id"] == HOLDER_ID  # in full under a consent
    assert answer["data"] == {"spouse_name": "李四", "registered_on": "2026-05-20", "remark": "补领"}
    assert answer["credential"] == services.current_credential(marriage).jws
    assert jose.split(answer["credential"])[1]["credentialSubject"]
    use = LicenceUse.objects.get()
    assert answer["use"]["id"] == use.pk and use.channel == "exchange" and use.consent == consent
    assert use.organization == civil["ga"] and use.purpose == "办理户口迁移" and use.actor == "use-ga"
    entry = ExchangeLogEntry.objects.get(seq=answer["exchange"]["seq"])
    assert entry.hash == answer["exchange"]["hash"] and entry.result == "ok"
    assert entry.provider_code == "370100-MZ" and entry.resource_code == marriage.licence_type.code
    assert entry.records == [wallet.identifier_digest(marriage.identifier)] and entry.purpose == "办理户口迁移"
    assert exchange_log.verify().ok
    record = AuditRecord.objects.get(action="licenses.licence.use", outcome="success")
    assert record.detail["consent"] == consent.pk and record.detail["exchange_seq"] == entry.seq


def test_lookup_by_holder_and_type_does_not_reveal_licences_without_consent(callers, holder, marriage, civil):
    by_holder = {"holder_id": HOLDER_ID, "type": marriage.licence_type.code, "purpose": "办理户口迁移"}
    body = problem(callers["ga"].post(USE, by_holder), 404)
    assert body["code"] == "licence_not_found"
    assert _denied("licence_not_found")[0].detail["reason"] == "no_consent"  # the audit keeps the truth
    _consent(holder, marriage, civil["ga"])
    answer = callers["ga"].post(USE, by_holder).json()
    assert answer["identifier"] == marriage.identifier and answer["basis"] == "consent"
    problem(callers["ga"].post(USE, {**by_holder, "holder_id": "123"}), 400)
    assert problem(callers["ga"].post(USE, {**by_holder, "type": "NOPE"}), 404)["code"] == "type_not_found"


def test_refused_after_revocation_and_after_expiry(callers, holder, marriage, civil):
    consent = _consent(holder, marriage, civil["ga"])
    assert _use(callers["ga"], marriage).status_code == 200
    wallet.revoke_consent(wallet.holder_of(holder), consent)
    assert problem(_use(callers["ga"], marriage), 403)["code"] == "consent_revoked"
    second = _consent(holder, marriage, civil["ga"], days=1)
    assert _use(callers["ga"], marriage).status_code == 200
    # A day later the consent has run out: refused at the very next call.
    LicenceConsent.objects.filter(pk=second.pk).update(valid_until=timezone.now() - datetime.timedelta(seconds=1))
    assert problem(_use(callers["ga"], marriage), 403)["code"] == "consent_expired"
    assert LicenceUse.objects.count() == 2


def test_refused_for_a_suspended_or_revoked_licence(callers, holder, marriage, civil):
    _consent(holder, marriage, civil["ga"])
    services.suspend(marriage, actor="cli:test", reason="核查中")
    assert problem(_use(callers["ga"], marriage), 403)["code"] == "licence_suspended"
    services.revoke(marriage, actor="cli:test", reason="登记错误")
    assert problem(_use(callers["ga"], marriage), 403)["code"] == "licence_revoked"
    assert not LicenceUse.objects.exists()


def test_a_consent_covers_only_its_department_and_service_item(callers, holder, marriage, civil):
    _consent(holder, marriage, civil["ga"], service_code="370000-GA-001")
    assert problem(_use(callers["mz"], marriage), 403)["code"] == "no_consent"  # another department
    assert problem(_use(callers["ga"], marriage), 403)["code"] == "consent_other_service"
    other = _use(callers["ga"], marriage, service_code="370000-GA-002")
    assert problem(other, 403)["code"] == "consent_other_service"
    assert _use(callers["ga"], marriage, service_code="370000-GA-001").status_code == 200
    assert problem(_use(callers["ga"], marriage, service_code="bad code!"), 400)["code"] == "bad_service_code"


def test_unconditional_types_are_readable_without_consent_masked(callers, company, shop, civil):
    answer = _use(callers["ga"], shop).json()
    assert answer["basis"] == "unconditional" and answer["consent"] is None and answer["credential"] is None
    assert answer["data"]["premises"] == "济南市历下区泉城路1号" and answer["data"]["contact"] == "孙*"
    assert answer["holder_id"] == COMPANY_USCC  # an enterprise's USCC is public
    assert LicenceUse.objects.get().consent is None
    wallet.grant_consent(wallet.holder_of(company), shop, grantee=civil["ga"], purpose="食品经营核查", days=7)
    full = _use(callers["ga"], shop).json()
    assert full["basis"] == "consent" and full["data"]["contact"] == "孙七" and full["credential"]


def test_officials_use_through_the_api_without_an_exchange_entry(client, officials, holder, marriage, civil):
    _consent(holder, marriage, civil["ga"])
    client.force_login(officials["ga"])
    response = client.post(
        USE, {"identifier": marriage.identifier, "purpose": "窗口受理"}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["exchange"] is None
    assert LicenceUse.objects.get().channel == "api" and not ExchangeLogEntry.objects.exists()
    client.force_login(officials["mz"])  # the competent department, but without consent
    assert problem(client.post(USE, {"identifier": marriage.identifier, "purpose": "x"}, "application/json"), 403)


def test_callers_scopes_and_bad_input_are_problems(client, callers, holder, marriage):
    body = problem(_use(callers["ga_read"], marriage), 403)
    assert body["code"] == "scope_missing" and ExchangeLogEntry.objects.get(seq=body["exchange_seq"])
    problem(client.post(USE, {"identifier": marriage.identifier, "purpose": "x"}, "application/json"), 401)
    client.force_login(holder)  # a citizen is no department
    assert problem(client.post(USE, {"identifier": "x", "purpose": "x"}, "application/json"), 403)["code"] == (
        "no_department"
    )
    client.logout()
    problem(callers["ga"].post(USE, {"identifier": marriage.identifier}), 422)  # no purpose
    problem(callers["ga"].post(USE, {"identifier": marriage.identifier, "purpose": ""}), 422)
    problem(callers["ga"].post(USE, {"purpose": "x", "identifier": "y" * 129}), 422)
    assert problem(callers["ga"].post(USE, {"purpose": "x"}), 400)["code"] == "licence_required"
    assert problem(callers["ga"].post(USE, {"purpose": "x", "identifier": "1.2.3"}), 404)["code"] == (
        "licence_not_found"
    )
    bad = callers["ga"].http.post(
        USE, data="{not json", content_type="application/json", HTTP_AUTHORIZATION=callers["ga"].auth
    )
    problem(bad, 400)  # not JSON at all


def test_rate_limited_clients_get_429(callers, holder, marriage, civil, settings):
    settings.EXCHANGE_RATE_PER_SECOND = 0.001
    settings.EXCHANGE_RATE_BURST = 1
    _consent(holder, marriage, civil["ga"])
    assert _use(callers["ga"], marriage).status_code == 200
    response = _use(callers["ga"], marriage)
    assert problem(response, 429)["code"] == "rate_limited" and response["Retry-After"] == "1"


def test_the_department_lists_its_consents(callers, holder, marriage, other_marriage, stranger, civil):
    consent = _consent(holder, marriage, civil["ga"])
    _consent(stranger, other_marriage, civil["mz"])
    listed = callers["ga"].get(f"{USE}/consents")
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()] == [consent.pk]
    assert listed.json()[0]["identifier"] == marriage.identifier
    problem(callers["ga_read"].get(f"{USE}/consents"), 403)
