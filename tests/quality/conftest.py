"""Fixtures of the data quality tests: departments, officials, a person registry with known dirty rows."""

import base64
import datetime

import pytest

from dgov.kernel.validators import make_resident_id

PASSWORD = "Quality-test-passw0rd"

PERSON_FIELDS = [
    {"name": "person_no", "label": "人员编号", "type": "string", "authority": "GA"},
    {"name": "id_number", "label": "公民身份号码", "type": "resident_id", "sensitivity": "personal", "authority": "GA"},
    {"name": "name", "label": "姓名", "type": "string", "sensitivity": "personal", "authority": "GA"},
    {"name": "sex", "label": "性别", "type": "enum", "choices": ["1", "2"], "authority": "GA"},
    {"name": "birth_date", "label": "出生日期", "type": "date", "authority": "GA"},
    {"name": "division_code", "label": "户籍地", "type": "division_code", "authority": "GA"},
    {"name": "household", "label": "所属户", "type": "reference", "ref": "t.household", "authority": "GA"},
    {"name": "marital_status", "label": "婚姻状况", "type": "enum", "choices": ["10", "20"], "authority": "MZ"},
]
HOUSEHOLD_FIELDS = [
    {"name": "household_no", "label": "户号", "type": "string", "authority": "GA"},
]


def pid(seq: int, region: str = "370102", born: datetime.date = datetime.date(1990, 1, 1)) -> str:
    """A valid resident ID number (odd ``seq``: male)."""
    return make_resident_id(region, born, seq)


def bad_check(number: str) -> str:
    """The ID number with a wrong check character."""
    return number[:-1] + ("0" if number[-1] != "0" else "1")


@pytest.fixture(autouse=True)
def chinese_messages(zh_hans):
    """Assert on the Chinese messages whatever language an earlier test left active."""


@pytest.fixture
def orgs(province, lixia, make_departments):
    """Provincial GA, MZ, WJ, DSJ; the city DSJ of 济南 and the county GA of 历下区."""
    from dgov.kernel.models import Division

    Division.objects.create(code="370103", name="市中区", full_name="济南市市中区", level=3, parent=lixia.parent)
    specs = [
        ("ga", "370000-GA", "山东省公安厅", "GA", 1, province),
        ("mz", "370000-MZ", "山东省民政厅", "MZ", 1, province),
        ("wj", "370000-WJ", "山东省卫生健康委员会", "WJ", 1, province),
        ("dsj", "370000-DSJ", "山东省大数据局", "DSJ", 1, province),
        ("dsj_city", "370100-DSJ", "济南市大数据局", "DSJ", 2, lixia.parent),
        ("ga_lixia", "370102-GA", "济南市公安局历下区分局", "GA", 3, lixia),
    ]
    return make_departments(specs)


@pytest.fixture
def users(orgs, make_users):
    """An official of each department (``ga``, ``mz`` …), an administrator and a citizen."""
    return make_users(orgs, "q", PASSWORD)


@pytest.fixture
def registries(orgs):
    """``t.household`` and ``t.person`` (owner GA, scoped by ``division_code``)."""
    from dgov.registry import services

    household = services.create_registry(
        code="t.household",
        name="户籍",
        owner=orgs["ga"],
        identifier_field="household_no",
        fields=HOUSEHOLD_FIELDS,
        actor="system:test",
        library_code="test",
    )
    person = services.create_registry(
        code="t.person",
        name="人口",
        owner=orgs["ga"],
        identifier_field="person_no",
        scope_field="division_code",
        fields=PERSON_FIELDS,
        actor="system:test",
        library_code="test",
    )
    return {"person": person, "household": household}


@pytest.fixture
def people(registries, orgs):
    """Eight person rows (written without validation, as a legacy import would), each with one known defect.

    P1 clean · P2 bad check character · P3 sex disagrees with the ID · P4 birth date disagrees ·
    P5 no name · P6 same ID number as P1 · P7 unknown division · P8 household that does not exist.
    Divisions: P2 and P7 … are outside 历下区 (370102).
    """
    from dgov.registry import services
    from dgov.registry.models import Record

    services.bulk_create_records(
        registries["household"], [{"household_no": "H1"}], actor="system:test", source=orgs["ga"]
    )
    household = str(Record.objects.get(registry=registries["household"]).uid)
    good = pid(11)
    rows = [
        {"person_no": "P1", "id_number": good, "name": "张三", "sex": "1", "birth_date": "1990-01-01"},
        {
            "person_no": "P2",
            "id_number": bad_check(pid(13)),
            "name": "李四",
            "sex": "1",
            "birth_date": "1990-01-01",
            "division_code": "370103",
        },
        {"person_no": "P3", "id_number": pid(15), "name": "王五", "sex": "2", "birth_date": "1990-01-01"},
        {"person_no": "P4", "id_number": pid(17), "name": "赵六", "sex": "1", "birth_date": "1991-02-03"},
        {"person_no": "P5", "id_number": pid(19), "sex": "1", "birth_date": "1990-01-01"},
        {"person_no": "P6", "id_number": good, "name": "张三", "sex": "1", "birth_date": "1990-01-01"},
        {
            "person_no": "P7",
            "id_number": pid(21),
            "name": "孙七",
            "sex": "1",
            "birth_date": "1990-01-01",
            "division_code": "379999",
        },
        {
            "person_no": "P8",
            "id_number": pid(23),
            "name": "周八",
            "sex": "1",
            "birth_date": "1990-01-01",
            "household": "0190a6f0-0000-7000-8000-000000000000",
        },
    ]
    for row in rows:
        row.setdefault("division_code", "370102")
        row.setdefault("household", household)
    services.bulk_create_records(registries["person"], rows, actor="system:test", source=orgs["ga"], validate=False)
    return {row["person_no"]: row for row in rows}


PERSON_RULES = [
    {
        "code": "p.id",
        "registry": "t.person",
        "name": "身份证号码校验",
        "type": "id_number",
        "fields": ["id_number"],
        "severity": "high",
    },
    {
        "code": "p.id.unique",
        "registry": "t.person",
        "name": "身份证号码不重复",
        "type": "unique",
        "fields": ["id_number"],
    },
    {"code": "p.name", "registry": "t.person", "name": "姓名必填", "type": "required", "fields": ["name"]},
    {
        "code": "p.sex",
        "registry": "t.person",
        "name": "性别与身份证一致",
        "type": "id_sex",
        "fields": ["id_number", "sex"],
        "params": {"male": ["1"], "female": ["2"]},
    },
    {
        "code": "p.birth",
        "registry": "t.person",
        "name": "出生日期与身份证一致",
        "type": "id_birth_date",
        "fields": ["id_number", "birth_date"],
    },
    {
        "code": "p.division",
        "registry": "t.person",
        "name": "区划有效",
        "type": "division_code",
        "fields": ["division_code"],
    },
    {
        "code": "p.household",
        "registry": "t.person",
        "name": "所属户存在",
        "type": "reference",
        "fields": ["household"],
        "params": {"registry": "t.household", "field": "_uid"},
    },
    {
        "code": "p.marital",
        "registry": "t.person",
        "name": "婚姻状况必填",
        "type": "not_null",
        "fields": ["marital_status"],
        "severity": "low",
    },
    {"code": "p.fresh", "registry": "t.person", "name": "每日更新", "type": "freshness", "params": {"cycle": "daily"}},
]


@pytest.fixture
def person_rules():
    """The rules of the person registry, as data (a fresh copy)."""
    return [dict(rule) for rule in PERSON_RULES]


@pytest.fixture
def rules(people):
    """The person rules loaded by the CLI actor."""
    from dgov.quality import services

    report = services.load_rules(PERSON_RULES, actor="system:test")
    assert report.ok, report.to_text()
    return report


@pytest.fixture
def finished_run(rules, registries):
    """A successful run of the person rules."""
    from dgov.quality import services

    run = services.run_registry(registries["person"], actor="system:test")
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def basic_auth(orgs):
    """A function: the Authorization header of a new API client of a department with the given scopes."""
    from dgov.identity import services as identity_services

    def make(org_key: str, scopes: list[str]) -> str:
        client, secret = identity_services.create_api_client(
            name=f"{org_key} 系统", organization=orgs[org_key], scopes=scopes, actor="system:test"
        )
        return "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()

    return make
