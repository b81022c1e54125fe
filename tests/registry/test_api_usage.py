"""谁查了我的数据: GET data/MyPersonalDataUsage/1.0 shows a person the reads of their own records only."""

from urllib.parse import quote

import pytest
from api_fixtures import *  # noqa: F403
from api_fixtures import BASE, REGISTRY, pid, problem

from dgov.kernel.fields import blind_index

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/registries/data/MyPersonalDataUsage/1.0"


@pytest.fixture
def zhang(django_user_model, people):
    """The person 张三 (people[0]) with a verified ID number digest on the account."""
    return django_user_model.objects.create_user(
        username="zhangsan", password="x", kind="person", display_name="张三",
        id_number_digest=blind_index(pid(11), purpose="resident_id"),
    )


@pytest.fixture
def li(django_user_model, people):
    """The person 李四 (people[1])."""
    return django_user_model.objects.create_user(
        username="lisi",
        password="x",
        kind="person",
        id_number_digest=blind_index(pid(22, "370103"), purpose="resident_id"),
    )


def test_person_sees_who_read_their_record(client, callers, people, zhang, api_orgs, django_user_model):
    callers["ga"].post(f"{BASE}/read", {"query": {"content": {"id_number": pid(11)}}},
                       HTTP_X_PURPOSE=quote("治安管理"))
    callers["ga"].get(f"{BASE}/{people[1].uid}")  # someone else's record
    officer = django_user_model.objects.create_user(
        username="officer7", password="x", kind="official", display_name="王警官", department=api_orgs["ga"]
    )
    client.force_login(officer)
    assert client.get(f"{BASE}/{people[0].uid}/read-value/sex.json").status_code == 200

    client.force_login(zhang)
    response = client.get(USAGE)
    assert response.status_code == 200
    entries = response.json()
    assert len(entries) == 2
    newest, oldest = entries
    assert newest["ReaderID"] == "officer7"
    assert newest["ReaderInitials"] == "王**"
    assert newest["Fields"] == ["sex"]
    assert oldest["ReaderID"] == "client:ga"
    assert oldest["ReaderApplicationName"] == "ga 业务系统"
    assert oldest["ReaderInstitutionName"] == "山东省公安厅"
    assert oldest["ReaderInstitutionID"] == api_orgs["ga"].uscc
    assert oldest["Purpose"] == "治安管理"
    assert oldest["Registry"] == REGISTRY
    assert oldest["Refrences"] == [{"ReferenceID": str(people[0].uid)}] == oldest["References"]
    assert oldest["SearchDateTime"]


def test_person_sees_only_their_own(client, callers, people, zhang, li):
    callers["ga"].get(f"{BASE}/{people[0].uid}")
    client.force_login(li)
    assert client.get(USAGE).json() == []
    client.force_login(zhang)
    assert len(client.get(USAGE).json()) == 1


def test_list_reads_are_reported_too(client, callers, people, zhang):
    callers["dsj"].get(f"{BASE}?query.sex=男")
    client.force_login(zhang)
    entries = client.get(USAGE).json()
    assert [e["ReaderID"] for e in entries] == ["client:dsj"]


def test_subject_comes_from_the_login_not_the_query(client, callers, people, zhang):
    callers["ga"].get(f"{BASE}/{people[1].uid}")
    client.force_login(zhang)
    problem(client.get(f"{USAGE}?userID={pid(22, '370103')}"), 403)
    assert client.get(f"{USAGE}?userID={pid(11)}").json() == []


def test_database_filter_paging_and_aliases(client, callers, people, zhang):
    for _ in range(3):
        callers["ga"].get(f"{BASE}/{people[0].uid}")
    client.force_login(zhang)
    assert len(client.get(f"{USAGE}?DatabaseID={REGISTRY}").json()) == 3
    assert client.get(f"{USAGE}?databaseId=other.registry").json() == []
    assert len(client.get(f"{USAGE}?page_size=2").json()) == 2
    assert len(client.get(f"{USAGE}?page=2&page_size=2").json()) == 1
    assert len(client.get("/api/v1/registries/data/mypersonalDataUsage").json()) == 3


def test_refused_without_verified_identity_or_as_a_client(client, callers, people, django_user_model):
    problem(client.get(USAGE), 401)
    unverified = django_user_model.objects.create_user(username="nobody", password="x", kind="person")
    client.force_login(unverified)
    problem(client.get(USAGE), 403)
    client.logout()
    problem(callers["ga"].get(USAGE), 403)
