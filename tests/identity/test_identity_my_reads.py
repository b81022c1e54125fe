"""谁查了我的数据: a verified account sees the reads of its own records, and only those."""

import pytest
from realname_fixtures import *  # noqa: F403
from realname_fixtures import COMPANY_USCC, PERSON_ID

from dgov.identity import realname
from dgov.registry import services


@pytest.fixture
def agent(django_user_model, user_password):
    """An enterprise account, not yet verified."""
    return django_user_model.objects.create_user(username="agent1", password=user_password, kind="enterprise")


def _read(record, reader, purpose):
    """A department's read of a record through the engine (logged like every read)."""
    return services.read_record(record, actor=reader, purpose=purpose, channel="api")


def test_unverified_account_is_asked_to_verify(client, citizen, base_people):
    client.force_login(citizen)
    page = client.get("/account/reads/")
    assert page.status_code == 200
    assert 'data-testid="reads-unverified"' in page.content.decode()
    assert client.get("/account/").content.decode().count("/account/reads/") == 1


def test_verified_person_sees_who_read_own_record_only(client, citizen, base_people, department):
    realname.verify_person(citizen, "王实名", PERSON_ID, actor=citizen)
    _read(base_people["wang"], department, "户籍核验")
    _read(base_people["wang"], department, "社保待遇资格认证")
    _read(base_people["qian"], department, "别人的查询")
    client.force_login(citizen)
    text = client.get("/account/reads/").content.decode()
    assert "户籍核验" in text and "社保待遇资格认证" in text and "别人的查询" not in text
    assert department.name in text and 'data-testid="reads-total"' in text


def test_verified_enterprise_sees_reads_of_its_record(client, agent, base_people, department):
    from dgov.kernel.models import Organization

    market = Organization.objects.get(code="370000-SCJG")  # the legal-entity library's source
    realname.verify_person(agent, "王实名", PERSON_ID, actor=agent)
    realname.verify_enterprise(agent, COMPANY_USCC, actor=agent)
    enterprise = services.find_record(services.get_registry("legal_entity.enterprise"), "uscc", COMPANY_USCC)
    _read(enterprise, market, "招投标资格审查")
    _read(base_people["wang"], department, "法定代表人本人的查询")
    client.force_login(agent)
    text = client.get("/account/reads/").content.decode()
    assert "招投标资格审查" in text and "法定代表人本人的查询" not in text


def test_anonymous_visitor_is_sent_to_login(client):
    page = client.get("/account/reads/")
    assert page.status_code == 302 and "/login/" in page["Location"]
