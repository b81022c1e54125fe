"""The window page of real-name level 3 (现场核验) at /workbench/identity/in-person/, through HTTP.

Window staff (officials of an active department) look an account up by the resident ID number on
the document or by the mobile number, see masked values only, tick "已核验身份证件原件" and record
the check; lookups and records are audited with masked values; everyone else is refused.
"""

import pytest
from django.test import Client
from realname_fixtures import *  # noqa: F403
from realname_fixtures import OTHER_ID, PERSON_ID

from dgov.identity import realname
from dgov.kernel.models import AuditRecord

URL = "/workbench/identity/in-person/"
PHONE = "13812340001"


@pytest.fixture
def verified(base_people, citizen, django_user_model):
    """The citizen (王实名, with a phone) and an enterprise account verified as the same person, both level 2."""
    citizen.phone = PHONE
    citizen.save()
    realname.verify_person(citizen, "王实名", PERSON_ID, actor=citizen)
    agent = django_user_model.objects.create_user(username="agent1", password="x-Pass-12345", kind="enterprise")
    realname.verify_person(agent, "王实名", PERSON_ID, actor=agent)
    from realname_fixtures import COMPANY_USCC

    realname.verify_enterprise(agent, COMPANY_USCC, actor=agent)
    citizen.refresh_from_db()
    agent.refresh_from_db()
    assert citizen.real_name_level == agent.real_name_level == 2
    return {"citizen": citizen, "agent": agent}


@pytest.fixture
def window(official):
    """A test client logged in as the official (window staff of the provincial GA)."""
    http = Client()
    http.force_login(official)
    return http


def _lookup(http, query):
    return http.post(URL, {"action": "lookup", "query": query})


def _record(http, account, **extra):
    return http.post(URL, {"action": "record", "account": account.pk, "document_checked": "on", **extra})


def test_menu_entry_and_access(window, citizen, official, django_user_model, department):
    page = window.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="{URL}"' in html and "现场核验" in html
    assert 'data-testid="in-person-lookup"' in html
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    admin = django_user_model.objects.create_user(username="admin1", password="x-Pass-12345", kind="admin")
    homeless = django_user_model.objects.create_user(username="o2", password="x-Pass-12345", kind="official")
    for user in (citizen, admin, homeless):
        http = Client()
        http.force_login(user)
        assert http.get(URL).status_code == 403
        assert _lookup(http, PERSON_ID).status_code == 403
        assert f'href="{URL}"' not in http.get("/").content.decode()
    department.is_active = False
    department.save(update_fields=["is_active"])
    assert window.get(URL).status_code == 403


def test_lookup_by_id_number_shows_masked_accounts_and_records_the_check(window, verified, official):
    response = _lookup(window, PERSON_ID.lower())
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="in-person-results"' in html
    for account in verified.values():
        assert f'data-account="{account.pk}"' in html
    assert html.count('data-testid="in-person-record"') == 2
    # masked only: no full ID number, name or phone anywhere on the page
    assert PERSON_ID not in html and "王实名" not in html and PHONE not in html
    assert f"{PERSON_ID[:6]}********{PERSON_ID[-4:]}" in html and "王**" in html and "138****0001" in html
    lookup = AuditRecord.objects.get(action="identity.realname.window_lookup")
    assert lookup.outcome == "success" and lookup.detail["by"] == "id_number"
    assert sorted(lookup.detail["found"]) == sorted(a.pk for a in verified.values())
    assert PERSON_ID not in str(lookup.detail) and lookup.detail["department"] == "370000-GA"

    done = _record(window, verified["citizen"])
    assert done.status_code == 302 and done["Location"] == URL
    verified["citizen"].refresh_from_db()
    verified["agent"].refresh_from_db()
    assert verified["citizen"].real_name_level == 3 and verified["agent"].real_name_level == 2
    row = AuditRecord.objects.get(action="identity.realname.in_person", outcome="success")
    assert row.detail == {"level": 3, "channel": "window", "department": "370000-GA"}
    assert row.actor_id == str(official.pk) and row.target_id == str(verified["citizen"].pk)
    assert "已登记现场核验" in window.get(URL).content.decode()
    # the account is now level 3: shown, but nothing left to record for it
    again = _lookup(window, PERSON_ID).content.decode()
    assert again.count('data-testid="in-person-record"') == 1 and "已是三级实名" in again


def test_the_document_checkbox_is_required(window, verified):
    _lookup(window, PERSON_ID)
    response = window.post(URL, {"action": "record", "account": verified["citizen"].pk})
    assert response.status_code == 400 and "已核验身份证件原件" in response.content.decode()
    verified["citizen"].refresh_from_db()
    assert verified["citizen"].real_name_level == 2
    assert not AuditRecord.objects.filter(action="identity.realname.in_person").exists()


def test_only_accounts_of_the_own_recent_lookup_can_be_recorded(window, verified, django_user_model, settings):
    other = django_user_model.objects.create_user(username="qian", password="x-Pass-12345", kind="person")
    realname.verify_person(other, "钱别人", OTHER_ID, actor=other)
    # no lookup yet, then a lookup that found someone else: the id in the form is refused
    assert _record(window, other).status_code == 400
    _lookup(window, PERSON_ID)
    refused = _record(window, other)
    assert refused.status_code == 400 and "重新查询" in refused.content.decode()
    other.refresh_from_db()
    assert other.real_name_level == 2
    # another official's session does not inherit the lookup
    from dgov.kernel.models import Organization

    colleague = django_user_model.objects.create_user(
        username="o3", password="x-Pass-12345", kind="official", department=Organization.objects.get(code="370000-GA")
    )
    http = Client()
    http.force_login(colleague)
    assert _record(http, verified["citizen"]).status_code == 400
    # an expired lookup is refused too
    from dgov.identity import window_views

    session = window.session
    session[window_views.SESSION_KEY]["at"] -= window_views.LOOKUP_SECONDS + 1
    session.save()
    assert _record(window, verified["citizen"]).status_code == 400
    verified["citizen"].refresh_from_db()
    assert verified["citizen"].real_name_level == 2


def test_lookup_by_phone_needs_the_document_number(window, verified):
    response = _lookup(window, f"+86 {PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-account="{verified["citizen"].pk}"' in html and f'data-account="{verified["agent"].pk}"' not in html
    assert 'name="id_number"' in html and PHONE not in html
    assert AuditRecord.objects.get(action="identity.realname.window_lookup").detail["by"] == "phone"
    assert _record(window, verified["citizen"]).status_code == 400  # no number typed
    wrong = _record(window, verified["citizen"], id_number=OTHER_ID)
    assert wrong.status_code == 400 and "不一致" in wrong.content.decode()
    refusal = AuditRecord.objects.get(action="identity.realname.in_person", outcome="failed")
    assert refusal.detail["reason"] == "document_mismatch" and OTHER_ID not in str(refusal.detail)
    verified["citizen"].refresh_from_db()
    assert verified["citizen"].real_name_level == 2
    assert _record(window, verified["citizen"], id_number=PERSON_ID).status_code == 302
    verified["citizen"].refresh_from_db()
    assert verified["citizen"].real_name_level == 3


def test_not_found_says_no_more_than_needed(window, verified, official, base_people):
    official.phone = "13900009999"
    official.save()
    answers = []
    # a number in the population library without an account, a phone of an official, an unknown phone
    for query in (OTHER_ID, "13900009999", "13700000000"):
        response = _lookup(window, query)
        assert response.status_code == 200
        html = response.content.decode()
        assert 'data-testid="in-person-none"' in html and "data-account=" not in html
        answers.append(html.split('data-testid="in-person-results"')[1].split("</section>")[0])
    assert answers[1] == answers[2].replace("137****0000", "139****9999")
    assert OTHER_ID not in answers[0] and "钱" not in answers[0]
    rows = AuditRecord.objects.filter(action="identity.realname.window_lookup").order_by("seq")
    assert [row.detail["found"] for row in rows] == [[], [], []]


def test_bad_queries_are_refused_and_audited(window, verified):
    for query in ("王实名", "370102198506011", ""):
        response = _lookup(window, query)
        assert response.status_code == 400
    rows = AuditRecord.objects.filter(action="identity.realname.window_lookup")
    assert rows.count() == 2 and {row.outcome for row in rows} == {"failed"}
    assert all(row.detail["reason"] == "bad_query" for row in rows)
    assert "王实名" not in " ".join(str(row.detail) for row in rows)


def test_accounts_below_level_2_cannot_be_recorded(window, base_people, django_user_model):
    person = django_user_model.objects.create_user(username="p9", password="x-Pass-12345", kind="person")
    person.phone = "13812349999"
    person.save()
    html = _lookup(window, "13812349999").content.decode()
    assert f'data-account="{person.pk}"' in html and 'data-testid="in-person-record"' not in html
    assert "未实名" in html
    _record(window, person)
    person.refresh_from_db()
    assert person.real_name_level == 1


def test_the_service_refuses_the_officials_own_account(official):
    with pytest.raises(realname.RealNameError) as exc:
        realname.record_in_person_verification(official, actor=official)
    assert exc.value.code == "own_account"
