"""Real-name verification (实名认证): services against the base libraries, and the account page."""

import pytest
from django.test import Client
from realname_fixtures import *  # noqa: F403
from realname_fixtures import CLOSED_USCC, COMPANY_USCC, DECEASED_ID, OTHER_ID, PERSON_ID

from dgov.identity import realname
from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord


@pytest.fixture
def agent(django_user_model, user_password):
    """An enterprise account (企业经办人), not yet verified."""
    return django_user_model.objects.create_user(username="agent1", password=user_password, kind="enterprise")


def _audit_text(action):
    return " ".join(str(r.detail) for r in AuditRecord.objects.filter(action=action))


def test_person_verification_reaches_level_2(base_people, citizen):
    assert citizen.real_name_level == 1
    realname.verify_person(citizen, " 王实名 ", PERSON_ID.lower(), actor=citizen)
    citizen.refresh_from_db()
    assert citizen.real_name_level == 2 and citizen.real_name_verified_at is not None
    assert citizen.display_name == "王实名"
    assert citizen.id_number_digest == blind_index(PERSON_ID, purpose="resident_id")
    row = AuditRecord.objects.get(action="identity.realname.verify_person")
    assert row.outcome == "success" and row.detail["level"] == 2
    # personal data only masked in the audit log
    assert PERSON_ID not in _audit_text("identity.realname.verify_person")
    assert "王实名" not in _audit_text("identity.realname.verify_person")


@pytest.mark.parametrize(
    ("name", "id_number", "code"),
    [
        ("王实", PERSON_ID, "mismatch"),
        ("王实名", OTHER_ID, "mismatch"),
        ("赵故去", DECEASED_ID, "deceased"),
        ("王实名", "370102198506011", "bad_format"),
    ],
)
def test_person_verification_refusals(base_people, citizen, name, id_number, code):
    with pytest.raises(realname.RealNameError) as exc:
        realname.verify_person(citizen, name, id_number, actor=citizen)
    assert exc.value.code == code and str(exc.value.message)
    citizen.refresh_from_db()
    assert citizen.real_name_level == 1 and not citizen.id_number_digest
    row = AuditRecord.objects.get(action="identity.realname.verify_person")
    assert row.outcome == "failed" and row.detail["reason"] == code
    assert id_number not in str(row.detail)


def test_verification_attempts_are_throttled(base_people, citizen, settings):
    settings.LOGIN_ACCOUNT_MAX_FAILURES = 3
    for _ in range(3):
        with pytest.raises(realname.RealNameError):
            realname.verify_person(citizen, "王错名", PERSON_ID, actor=citizen)
    with pytest.raises(realname.RealNameError) as exc:
        realname.verify_person(citizen, "王实名", PERSON_ID, actor=citizen)  # right, but locked
    assert exc.value.code == "throttled"
    citizen.refresh_from_db()
    assert citizen.real_name_level == 1
    assert AuditRecord.objects.filter(action="identity.realname.lock").count() == 1


def test_an_id_number_verifies_one_person_account_only(base_people, citizen, django_user_model):
    realname.verify_person(citizen, "王实名", PERSON_ID, actor=citizen)
    other = django_user_model.objects.create_user(username="other", password="x" * 20, kind="person")
    with pytest.raises(realname.RealNameError) as exc:
        realname.verify_person(other, "王实名", PERSON_ID, actor=other)
    assert exc.value.code == "bound_elsewhere"
    with pytest.raises(realname.RealNameError) as exc:
        realname.verify_person(citizen, "钱别人", OTHER_ID, actor=citizen)
    assert exc.value.code == "other_person"


def test_enterprise_verification_needs_the_legal_representative(base_people, agent):
    with pytest.raises(realname.RealNameError) as exc:
        realname.verify_enterprise(agent, COMPANY_USCC, actor=agent)
    assert exc.value.code == "person_first"
    # the agent is 钱别人, who does not represent the active company
    realname.verify_person(agent, "钱别人", OTHER_ID, actor=agent)
    agent.refresh_from_db()
    assert agent.real_name_level == 1  # an enterprise account reaches level 2 with its enterprise
    with pytest.raises(realname.RealNameError) as exc:
        realname.verify_enterprise(agent, COMPANY_USCC, actor=agent)
    assert exc.value.code == "representative_mismatch"
    with pytest.raises(realname.RealNameError) as exc:
        realname.verify_enterprise(agent, CLOSED_USCC, actor=agent)  # represented by 钱别人, but cancelled
    assert exc.value.code == "enterprise_inactive"
    agent.refresh_from_db()
    assert agent.real_name_level == 1 and not agent.enterprise_uscc
    assert COMPANY_USCC not in _audit_text("identity.realname.verify_enterprise")


def test_enterprise_verification_success(base_people, agent):
    realname.verify_person(agent, "王实名", PERSON_ID, actor=agent)
    realname.verify_enterprise(agent, COMPANY_USCC, actor=agent)
    agent.refresh_from_db()
    assert agent.real_name_level == 2 and agent.enterprise_uscc == COMPANY_USCC


def test_in_person_verification_by_an_official(base_people, citizen, official):
    with pytest.raises(realname.RealNameError):
        realname.record_in_person_verification(citizen, actor=official)  # not verified yet
    realname.verify_person(citizen, "王实名", PERSON_ID, actor=citizen)
    with pytest.raises(realname.RealNameError):
        realname.record_in_person_verification(citizen, actor=citizen)
    realname.record_in_person_verification(citizen, actor=official)
    citizen.refresh_from_db()
    assert citizen.real_name_level == 3


def test_account_page_verifies_after_reauthentication(base_people, citizen, user_password):
    http = Client()
    assert http.post("/login/", {"username": "citizen1", "password": user_password}).status_code == 302
    page = http.get("/account/")
    assert "实名认证" in page.content.decode() and 'href="/account/realname/"' in page.content.decode()
    session = http.session
    from dgov.identity.authentication import SESSION_REAUTH

    session[SESSION_REAUTH] = 0
    session.save()
    response = http.get("/account/realname/")
    assert response.status_code == 302 and response["Location"].startswith("/account/reauth/")
    http.post("/account/reauth/", {"method": "password", "secret": user_password, "next": "/account/realname/"})
    bad = http.post("/account/realname/", {"action": "person", "name": "赵故去", "id_number": DECEASED_ID})
    assert bad.status_code == 400 and "死亡" in bad.content.decode()
    good = http.post("/account/realname/", {"action": "person", "name": "王实名", "id_number": PERSON_ID})
    assert good.status_code == 302
    citizen.refresh_from_db()
    assert citizen.real_name_level == 2
    assert "二级" in http.get("/account/realname/").content.decode()
