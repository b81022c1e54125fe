"""The holder's wallet (我的证照): scope, refusals, downloads, consents on the page, the use log, the agent path."""

import pytest
from django.core.exceptions import PermissionDenied

from dgov.kernel.models import AuditRecord, Notification
from dgov.licenses import pdfsign, services, wallet
from dgov.licenses.models import LicenceConsent, LicenceUse

from .wallet_fixtures import *  # noqa: F403
from .wallet_fixtures import HOLDER_ID, USE, agency

pytestmark = pytest.mark.django_db

WALLET = "/account/licences/"


def _page(licence):
    return f"{WALLET}{licence.identifier}/"


def _audits(action, outcome="success"):
    return list(AuditRecord.objects.filter(action=action, outcome=outcome).order_by("seq"))


# --- who sees what -------------------------------------------------------------------------------------


def test_the_holder_sees_their_own_licences_and_never_another_persons(client, holder, marriage, other_marriage):
    client.force_login(holder)
    response = client.get(WALLET)
    assert response.status_code == 200
    body = response.content.decode()
    assert marriage.identifier in body and "结婚证" in body and marriage.number in body
    assert other_marriage.identifier not in body and other_marriage.number not in body
    assert response["Cache-Control"].startswith("max-age=0")
    listed = _audits("licenses.wallet.list")
    assert len(listed) == 1 and listed[0].detail["identifiers"] == [marriage.identifier]
    # Another person's licence by its identifier: 404, and the attempt is audited.
    assert client.get(_page(other_marriage)).status_code == 404
    denied = _audits("licenses.wallet.view", "denied")
    assert len(denied) == 1 and denied[0].detail["identifier"] == other_marriage.identifier
    assert client.get(f"{_page(other_marriage)}credential.jwt").status_code == 404
    assert client.get(f"{_page(other_marriage)}licence.pdf").status_code == 404


def test_the_licence_page_shows_facts_items_qr_and_is_audited(client, holder, marriage):
    client.force_login(holder)
    response = client.get(_page(marriage))
    assert response.status_code == 200
    body = response.content.decode()
    for text in ("结婚证", marriage.number, marriage.identifier, "济南市民政局", "李四", "2026-05-20", "<svg"):
        assert text in body, text
    assert HOLDER_ID not in body  # the holder's own ID number is shown masked
    assert 'data-status="valid"' in body
    assert _audits("licenses.wallet.view")[0].detail["identifier"] == marriage.identifier


def test_level_one_accounts_officials_and_visitors_have_no_wallet(client, django_user_model, marriage, officials):
    unverified = django_user_model.objects.create_user(username="lvl1", password="x" * 16, kind="person")
    client.force_login(unverified)
    response = client.get(WALLET)
    assert response.status_code == 403 and 'data-code="unverified"' in response.content.decode()
    assert client.get(_page(marriage)).status_code == 403
    assert client.get(f"{_page(marriage)}credential.jwt").status_code == 403
    client.force_login(officials["mz_city"])
    response = client.get(WALLET)
    assert response.status_code == 403 and 'data-code="not_a_holder"' in response.content.decode()
    client.logout()
    response = client.get(WALLET)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_downloads_of_the_credential_and_the_signed_pdf(client, holder, marriage):
    client.force_login(holder)
    jwt = client.get(f"{_page(marriage)}credential.jwt")
    assert jwt.status_code == 200 and jwt["Content-Type"] == "application/vc+jwt"
    assert jwt.content.decode() == services.current_credential(marriage).jws
    assert "attachment" in jwt["Content-Disposition"]
    download = _audits("licenses.credential.download")[0]
    assert download.detail["as"] == "holder" and download.detail["identifier"] == marriage.identifier
    pdf = client.get(f"{_page(marriage)}licence.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and "no-store" in pdf["Cache-Control"]
    assert pdfsign.verify_pdf(pdf.content).valid
    assert _audits("licenses.licence.pdf")[0].detail["as"] == "holder"


def test_an_enterprise_account_sees_the_enterprises_licences(client, company, shop, marriage):
    client.force_login(company)
    body = client.get(WALLET).content.decode()
    assert shop.identifier in body and marriage.identifier not in body
    page = client.get(_page(shop)).content.decode()
    assert "济南市历下区泉城路1号" in page and "孙七" in page  # the holder sees its own data in full


def test_an_agent_with_the_licences_scope_acts_for_the_enterprise(client, company, agent, shop, marriage_type, civil):
    granted = agency(company, agent)
    client.force_login(agent)
    # Not acting yet: the agent's own (empty) wallet.
    assert shop.identifier not in client.get(WALLET).content.decode()
    assert client.post(f"/account/agencies/{granted.pk}/act/").status_code == 302
    response = client.get(WALLET)
    assert response.status_code == 200
    body = response.content.decode()
    assert shop.identifier in body and 'data-testid="wallet-acting"' in body
    pdf = client.get(f"{_page(shop)}licence.pdf")
    assert pdf.status_code == 200 and pdfsign.verify_pdf(pdf.content).valid
    record = _audits("licenses.licence.pdf")[0]
    assert record.detail["as"] == "agent" and record.detail["agency"] == granted.pk and record.actor_id == str(agent.pk)


def test_an_agent_without_the_licences_scope_is_refused(client, company, agent, shop):
    granted = agency(company, agent, scopes=("services",))
    client.force_login(agent)
    client.post(f"/account/agencies/{granted.pk}/act/")
    response = client.get(WALLET)
    assert response.status_code == 403 and 'data-code="agent_scope"' in response.content.decode()
    assert client.get(_page(shop)).status_code == 403


# --- consents on the page ------------------------------------------------------------------------------


def test_grant_a_consent_on_the_page_notifies_the_department(client, holder, marriage, officials, civil):
    client.force_login(holder)
    search = client.get(f"{_page(marriage)}consent/", {"q": "公安"})
    assert search.status_code == 200
    assert "山东省公安厅" in search.content.decode() and 'value="370000-GA"' in search.content.decode()
    response = client.post(
        f"{_page(marriage)}consent/",
        {"q": "公安", "grantee": "370000-GA", "purpose": "办理户口迁移", "days": "30", "service_code": ""},
    )
    assert response.status_code == 302 and response["Location"] == _page(marriage)
    consent = LicenceConsent.objects.get()
    assert consent.grantee == civil["ga"] and consent.purpose == "办理户口迁移" and consent.granted_by == holder
    assert 29 <= (consent.valid_until - consent.valid_from).days <= 30
    note = Notification.objects.get(user=officials["ga"])
    assert "结婚证" in note.title and "张*" in note.body and "张三" not in note.body and "办理户口迁移" in note.body
    assert not Notification.objects.filter(user=officials["mz_city"]).exists()
    grant = _audits("licenses.consent.grant")[0]
    assert grant.detail["grantee"] == "370000-GA" and grant.detail["purpose"] == "办理户口迁移"
    page = client.get(_page(marriage)).content.decode()
    assert "办理户口迁移" in page and 'data-state="active"' in page


def test_bad_consent_input_is_reported(client, holder, marriage, civil):
    client.force_login(holder)
    url = f"{_page(marriage)}consent/"
    response = client.post(url, {"grantee": "370000-GA", "purpose": "", "days": "400"})
    assert response.status_code == 422 and not LicenceConsent.objects.exists()
    response = client.post(url, {"grantee": "NOPE", "purpose": "x", "days": "3"})
    assert response.status_code == 422 and not LicenceConsent.objects.exists()
    client.post(url, {"grantee": "370000-GA", "purpose": "办理", "days": "3"})
    again = client.post(url, {"grantee": "370000-GA", "purpose": "再次", "days": "3"})
    assert again.status_code == 422 and LicenceConsent.objects.count() == 1  # one in force per department


def test_revoke_a_consent_and_nobody_else_can(client, holder, stranger, marriage, officials, civil):
    h = wallet.holder_of(holder)
    consent = wallet.grant_consent(h, marriage, grantee=civil["ga"], purpose="办理业务", days=10)
    client.force_login(stranger)
    assert client.post(f"{WALLET}consents/{consent.pk}/revoke/").status_code == 404
    consent.refresh_from_db()
    assert consent.revoked_at is None
    assert _audits("licenses.consent.revoke", "denied")
    client.force_login(holder)
    response = client.post(f"{WALLET}consents/{consent.pk}/revoke/")
    assert response.status_code == 302
    consent.refresh_from_db()
    assert consent.revoked_at is not None and wallet.consent_state(consent) == "revoked"
    assert Notification.objects.filter(user=officials["ga"], template="licenses.consent.revoked").exists()
    assert _audits("licenses.consent.revoke")[0].detail["grantee"] == "370000-GA"
    assert 'data-state="revoked"' in client.get(_page(marriage)).content.decode()


def test_consents_are_refused_for_licences_not_valid_and_for_others(holder, stranger, marriage, civil):
    with pytest.raises(wallet.ConsentError):
        wallet.grant_consent(wallet.holder_of(holder), marriage, grantee=civil["ga"], purpose="x", days=0)
    with pytest.raises(PermissionDenied):
        wallet.grant_consent(wallet.holder_of(stranger), marriage, grantee=civil["ga"], purpose="x")
    assert _audits("licenses.consent.grant", "denied")
    services.revoke(marriage, actor="cli:test", reason="登记错误")
    with pytest.raises(wallet.ConsentError) as exc:
        wallet.grant_consent(wallet.holder_of(holder), marriage, grantee=civil["ga"], purpose="x")
    assert "licence" in exc.value.message_dict


# --- the use log -----------------------------------------------------------------------------------------


def test_uses_are_shown_to_the_holder(client, holder, marriage, officials, civil, callers):
    wallet.grant_consent(wallet.holder_of(holder), marriage, grantee=civil["ga"], purpose="户籍业务", days=5)
    assert callers["ga"].post(USE, {"identifier": marriage.identifier, "purpose": "办理户口迁移"}).status_code == 200
    # An official of the issuer opens the licence on the workbench: a use too (channel page).
    client.force_login(officials["mz_city"])
    assert client.get(f"/workbench/licences/l/{marriage.identifier}/").status_code == 200
    assert list(LicenceUse.objects.order_by("id").values_list("channel", flat=True)) == ["exchange", "page"]
    client.force_login(holder)
    body = client.get(_page(marriage)).content.decode()
    assert "山东省公安厅" in body and "办理户口迁移" in body and "济南市民政局" in body
    assert 'data-channel="exchange"' in body and 'data-channel="page"' in body
    assert "共 2 次使用" in body


def test_the_portal_menu_and_account_page_link_to_the_wallet(client, holder):
    client.force_login(holder)
    assert 'href="/account/licences/"' in client.get("/").content.decode()
    assert 'data-testid="my-licences-link"' in client.get("/account/").content.decode()


def test_the_wallet_speaks_english(client, holder, marriage):
    client.force_login(holder)
    response = client.get(WALLET, HTTP_ACCEPT_LANGUAGE="en")
    assert "My licences" in response.content.decode()
