"""Enterprise agents (经办人): granting, revoking, expiry, refusals that do not enumerate, the account pages."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from realname_fixtures import *  # noqa: F403
from realname_fixtures import COMPANY_USCC, DECEASED_ID, OTHER_ID, PERSON_ID

from dgov.identity import agents, realname
from dgov.identity.authentication import SESSION_REAUTH
from dgov.identity.models import EnterpriseAgent, User
from dgov.kernel.models import AuditRecord
from dgov.kernel.validators import make_resident_id

pytestmark = pytest.mark.django_db

UNKNOWN_ID = make_resident_id("370102", dt.date(1970, 7, 7), 321)


@pytest.fixture
def enterprise(base_people, django_user_model, user_password):
    """An enterprise account held by 王实名, verified with the active test company."""
    user = django_user_model.objects.create_user(username="company1", password=user_password, kind="enterprise")
    realname.verify_person(user, "王实名", PERSON_ID, actor=user)
    realname.verify_enterprise(user, COMPANY_USCC, actor=user)
    user.refresh_from_db()
    return user


@pytest.fixture
def person(base_people, citizen):
    """The citizen, verified as 钱别人 (level 2): the agent to be."""
    realname.verify_person(citizen, "钱别人", OTHER_ID, actor=citizen)
    citizen.refresh_from_db()
    return citizen


def _in(days: int) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=days)


def _grant(enterprise, *, name="钱别人", id_number=OTHER_ID, scopes=("services", "licences"), days=30, actor=None):
    return agents.grant_agency(
        enterprise,
        name=name,
        id_number=id_number,
        scopes=list(scopes),
        valid_until=_in(days),
        actor=actor or enterprise,
    )


def _details(action) -> str:
    return " ".join(f"{r.target_label} {r.detail}" for r in AuditRecord.objects.filter(action=action))


# --- services ----------------------------------------------------------------------------------------------


def test_grant_lists_and_checks_the_authorization(enterprise, person):
    agency = _grant(enterprise)
    assert agency.agent == person and agency.scopes == ["services", "licences"]
    assert agency.enterprise_name == f"济南测试{COMPANY_USCC[-4:]}有限公司"  # from the legal-entity library
    assert agency.granted_by == enterprise and agency.in_force()
    assert agents.agents_of(enterprise) == [agency]
    assert agents.agencies_of(person) == [agency]
    assert agents.active_agency(person, enterprise) == agency
    assert agents.agency_in_force(agency.pk) == agency
    row = AuditRecord.objects.get(action="identity.agent.grant")
    assert row.outcome == "success" and row.detail["scopes"] == ["services", "licences"]
    text = _details("identity.agent.grant")
    assert OTHER_ID not in text and "钱别人" not in text and COMPANY_USCC not in text  # masked only
    assert row.detail["id_number"] == "370102********" + OTHER_ID[-4:]


@pytest.mark.parametrize(
    ("name", "id_number"),
    [
        ("钱别", OTHER_ID),  # the right number, a wrong name
        ("钱别人", UNKNOWN_ID),  # a valid number no account holds
        ("王实名", PERSON_ID),  # held by an enterprise account only, not a person account
        ("赵故去", DECEASED_ID),  # a person of the library without an account
    ],
)
def test_refusals_do_not_tell_why(enterprise, person, name, id_number):
    with pytest.raises(agents.AgencyError) as exc:
        _grant(enterprise, name=name, id_number=id_number)
    assert exc.value.code == "no_match"
    assert not EnterpriseAgent.objects.exists()
    row = AuditRecord.objects.get(action="identity.agent.grant")
    assert row.outcome == "failed" and row.detail["reason"] == "no_match" and id_number not in str(row.detail)


def test_unverified_or_disabled_agents_get_the_same_refusal(enterprise, person, django_user_model):
    User.objects.filter(pk=person.pk).update(real_name_level=1)
    with pytest.raises(agents.AgencyError) as exc:
        _grant(enterprise)
    unverified = exc.value.message
    User.objects.filter(pk=person.pk).update(real_name_level=2, is_active=False)
    with pytest.raises(agents.AgencyError) as exc:
        _grant(enterprise, name="钱别", id_number=OTHER_ID)
    assert exc.value.code == "no_match" and exc.value.message == unverified
    User.objects.filter(pk=person.pk).update(is_active=True)
    assert _grant(enterprise).agent == person


def test_lookups_are_throttled(enterprise, person, settings):
    settings.LOGIN_ACCOUNT_MAX_FAILURES = 3
    for _ in range(3):
        with pytest.raises(agents.AgencyError):
            _grant(enterprise, name="钱错名")
    with pytest.raises(agents.AgencyError) as exc:
        _grant(enterprise)  # right, but locked
    assert exc.value.code == "throttled"
    assert AuditRecord.objects.filter(action="identity.agent.lock").count() == 1
    assert not EnterpriseAgent.objects.exists()


def test_scopes_period_and_who_may_grant(enterprise, person, settings, django_user_model):
    for scopes in ([], ["all"], ["services", "everything"]):
        with pytest.raises(agents.AgencyError) as exc:
            _grant(enterprise, scopes=scopes)
        assert exc.value.code == "bad_scopes"
    for days in (-1, 366):
        with pytest.raises(agents.AgencyError) as exc:
            _grant(enterprise, days=days)
        assert exc.value.code == "bad_period" and "365" in exc.value.message
    settings.AGENT_MAX_DAYS = 400
    assert _grant(enterprise, days=399).valid_until > _in(398)
    with pytest.raises(agents.AgencyError) as exc:
        _grant(enterprise, actor=person)  # only the enterprise account itself grants
    assert exc.value.code == "forbidden"
    unverified = django_user_model.objects.create_user(username="company2", password="x" * 20, kind="enterprise")
    with pytest.raises(agents.AgencyError) as exc:
        _grant(unverified)
    assert exc.value.code == "enterprise_unverified"


def test_one_live_authorization_per_person_and_expiry(enterprise, person):
    first = _grant(enterprise)
    with pytest.raises(agents.AgencyError) as exc:
        _grant(enterprise, scopes=["payments"])
    assert exc.value.code == "already"
    EnterpriseAgent.objects.filter(pk=first.pk).update(valid_until=timezone.now() - dt.timedelta(seconds=1))
    assert agents.active_agency(person, enterprise) is None and agents.agency_in_force(first.pk) is None
    assert agents.agencies_of(person) == []
    second = _grant(enterprise, scopes=["payments"])
    first.refresh_from_db()
    assert first.revoked_at is not None and first.revoke_reason == "expired"
    assert agents.active_agency(person, enterprise) == second


def test_revoke_by_the_enterprise_or_renounce_by_the_agent(enterprise, person, official):
    agency = _grant(enterprise)
    with pytest.raises(agents.AgencyError) as exc:
        agents.revoke_agency(agency, actor=official)
    assert exc.value.code == "forbidden"
    agents.revoke_agency(agency, actor=person)
    agency.refresh_from_db()
    assert agency.revoked_by == person and agency.revoke_reason == "renounced_by_agent"
    assert agents.active_agency(person, enterprise) is None
    with pytest.raises(agents.AgencyError) as exc:
        agents.revoke_agency(agency, actor=enterprise)
    assert exc.value.code == "already_revoked"
    again = _grant(enterprise)
    agents.revoke_agency(again, actor=enterprise, reason="离职")
    again.refresh_from_db()
    assert again.revoked_by == enterprise and again.revoke_reason == "离职"
    details = [
        r.detail for r in AuditRecord.objects.filter(action="identity.agent.revoke", outcome="success").order_by("seq")
    ]
    assert [d["by"] for d in details] == ["agent", "enterprise"]


def test_an_account_that_no_longer_qualifies_ends_the_authorization(enterprise, person):
    agency = _grant(enterprise)
    User.objects.filter(pk=enterprise.pk).update(is_active=False)
    assert agents.agency_in_force(agency.pk) is None
    User.objects.filter(pk=enterprise.pk).update(is_active=True)
    User.objects.filter(pk=person.pk).update(real_name_level=1)
    assert agents.agency_in_force(agency.pk) is None


# --- pages -----------------------------------------------------------------------------------------------


def _login(username, password) -> Client:
    http = Client()
    assert http.post("/login/", {"username": username, "password": password}).status_code == 302
    return http


def _grant_form(**overrides):
    data = {
        "name": "钱别人",
        "id_number": OTHER_ID,
        "scopes": ["services", "payments"],
        "valid_until": (timezone.localdate() + dt.timedelta(days=90)).isoformat(),
    }
    data.update(overrides)
    return data


def test_enterprise_grants_on_the_agents_page_after_reauthentication(enterprise, person, user_password):
    http = _login("company1", user_password)
    account = http.get("/account/").content.decode()
    assert 'href="/account/agents/"' in account
    page = http.get("/account/agents/")
    assert page.status_code == 200 and 'data-testid="agent-grant-link"' in page.content.decode()
    session = http.session
    session[SESSION_REAUTH] = 0
    session.save()
    response = http.post("/account/agents/grant/", _grant_form())
    assert response.status_code == 302 and response["Location"].startswith("/account/reauth/")
    assert not EnterpriseAgent.objects.exists()
    http.post("/account/reauth/", {"method": "password", "secret": user_password, "next": "/account/agents/grant/"})
    form = http.get("/account/agents/grant/")
    assert form.status_code == 200 and 'data-testid="agent-grant-form"' in form.content.decode()
    wrong = http.post("/account/agents/grant/", _grant_form(name="钱别"))
    unknown = http.post("/account/agents/grant/", _grant_form(id_number=UNKNOWN_ID))
    assert wrong.status_code == unknown.status_code == 400
    message = str(agents.MESSAGES["no_match"])
    assert message in wrong.content.decode() and message in unknown.content.decode()
    too_long = (timezone.localdate() + dt.timedelta(days=365)).isoformat()
    assert http.post("/account/agents/grant/", _grant_form(valid_until=too_long)).status_code == 400
    assert http.post("/account/agents/grant/", _grant_form()).status_code == 302
    agency = EnterpriseAgent.objects.get()
    assert agency.agent == person and agency.scopes == ["services", "payments"]
    assert timezone.localtime(agency.valid_until).date() == timezone.localdate() + dt.timedelta(days=90)
    listing = http.get("/account/agents/").content.decode()
    assert "钱别人" in listing and "办理政务服务事项" in listing and "缴纳非税收入" in listing
    # a person account has no agents page
    http_person = Client()
    http_person.force_login(person)
    assert http_person.get("/account/agents/").status_code == 404


def test_agent_acts_for_the_enterprise_until_the_authorization_ends(enterprise, person, user_password):
    agency = _grant(enterprise, days=30)
    http = _login("citizen1", user_password)
    page = http.get("/account/agencies/").content.decode()
    assert agency.enterprise_name in page and "以企业身份办事" in page
    assert http.post(f"/account/agencies/{agency.pk}/act/").status_code == 302
    account = http.get("/account/").content.decode()
    assert 'data-testid="acting-for"' in account and agency.enterprise_name in account
    assert 'data-testid="acting-for-header"' in account
    assert AuditRecord.objects.filter(action="identity.agent.act", outcome="success").count() == 1
    # back to the personal identity
    assert http.post("/account/agencies/stop/").status_code == 302
    assert 'data-testid="acting-for"' not in http.get("/account/").content.decode()
    assert AuditRecord.objects.get(action="identity.agent.act_end").detail["reason"] == "stopped"
    # acting again, then the enterprise revokes: the agent's next request is personal again
    http.post(f"/account/agencies/{agency.pk}/act/")
    boss = _login("company1", user_password)
    assert boss.post(f"/account/agents/{agency.pk}/revoke/").status_code == 302
    account = http.get("/account/").content.decode()
    assert 'data-testid="acting-for"' not in account and "已返回个人身份" in account
    ended = AuditRecord.objects.filter(action="identity.agent.act_end").order_by("seq").last()
    assert ended.detail["reason"] == "not_in_force"
    assert agency.enterprise_name not in http.get("/account/agencies/").content.decode()


def test_expiry_takes_effect_at_the_next_request(enterprise, person, user_password):
    agency = _grant(enterprise)
    http = _login("citizen1", user_password)
    http.post(f"/account/agencies/{agency.pk}/act/")
    assert 'data-testid="acting-for"' in http.get("/account/").content.decode()
    EnterpriseAgent.objects.filter(pk=agency.pk).update(valid_until=timezone.now() - dt.timedelta(seconds=1))
    assert 'data-testid="acting-for"' not in http.get("/account/").content.decode()
    assert http.post(f"/account/agencies/{agency.pk}/act/").status_code == 302  # refused with a message
    assert AuditRecord.objects.filter(action="identity.agent.act", outcome="denied").count() == 1
    assert agents.SESSION_ACTING not in http.session


def test_agent_renounces_and_others_cannot_touch_an_authorization(enterprise, person, user_password, django_user_model):
    agency = _grant(enterprise)
    stranger = django_user_model.objects.create_user(username="stranger", password=user_password, kind="person")
    other_company = django_user_model.objects.create_user(
        username="company2", password=user_password, kind="enterprise"
    )
    for account in (stranger, other_company):
        http = Client()
        http.force_login(account)
        assert http.post(f"/account/agencies/{agency.pk}/act/").status_code == 404
        assert http.post(f"/account/agents/{agency.pk}/revoke/").status_code == 404
        assert http.post(f"/account/agencies/{agency.pk}/renounce/").status_code == 404
    agency.refresh_from_db()
    assert agency.revoked_at is None
    http = Client()
    http.force_login(person)
    assert http.get(f"/account/agencies/{agency.pk}/act/").status_code == 405  # state changes are POST only
    assert http.post(f"/account/agencies/{agency.pk}/renounce/").status_code == 302
    agency.refresh_from_db()
    assert agency.revoked_by == person


def test_demo_makes_the_citizen_the_demo_enterprise_agent():
    from dgov.registry import demo

    demo.generate(province_code="370000", persons=80, enterprises=12, seed=11)
    citizen, company = User.objects.get(username="citizen"), User.objects.get(username="enterprise")
    agency = agents.active_agency(citizen, company)
    assert agency is not None and agency.scopes == list(agents.AGENT_SCOPES)
    assert agency.valid_until > timezone.now() + dt.timedelta(days=360)
    demo._demo_agency(company, citizen, None)  # idempotent: an authorization in force is kept
    assert EnterpriseAgent.objects.count() == 1
