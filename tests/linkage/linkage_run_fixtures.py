"""Fixtures of the stored-run tests: departments, officials, a person base library and an insured theme library."""

import pytest

from dgov.kernel.validators import make_resident_id

PASSWORD = "Linkage-test-passw0rd"

PERSON_FIELDS = [
    {"name": "person_no", "label": "人员编号", "type": "string", "authority": "GA"},
    {"name": "id_number", "label": "公民身份号码", "type": "resident_id", "sensitivity": "personal", "authority": "GA"},
    {"name": "name", "label": "姓名", "type": "string", "sensitivity": "internal", "mask": "name", "authority": "GA"},
    {"name": "sex", "label": "性别", "type": "enum", "choices": ["1", "2"], "authority": "GA"},
    {"name": "birth_date", "label": "出生日期", "type": "date", "authority": "GA"},
    {"name": "phone", "label": "联系电话", "type": "phone", "sensitivity": "personal", "authority": "GA"},
    {"name": "division_code", "label": "户籍地", "type": "division_code", "authority": "GA"},
    {"name": "status", "label": "人口状态", "type": "enum", "choices": ["normal", "deceased"], "authority": "GA"},
]
INSURED_FIELDS = [
    {"name": "enrolment_no", "label": "参保登记编号", "type": "string", "authority": "RS"},
    {"name": "person", "label": "参保人", "type": "reference", "ref": "t.person", "authority": "RS"},
    {"name": "id_number", "label": "公民身份号码", "type": "resident_id", "sensitivity": "personal", "authority": "RS"},
    {"name": "name", "label": "姓名", "type": "string", "sensitivity": "internal", "mask": "name", "authority": "RS"},
    {"name": "phone", "label": "联系电话", "type": "phone", "sensitivity": "personal", "authority": "RS"},
    {"name": "division_code", "label": "参保地", "type": "division_code", "authority": "RS"},
]

# (person_no, seq, name, sex, phone) — odd seq: male
PERSONS = [
    ("P1", 11, "张三", "1", "13800000001"),
    ("P2", 13, "李四", "1", "13800000002"),
    ("P3", 15, "王五", "1", "13800000003"),
    ("P4", 17, "赵六", "1", "13800000004"),
    ("P5", 19, "孙七", "1", "13800000005"),
    ("P6", 21, "周八", "1", "13800000006"),
    ("P7", 22, "吴九", "2", "13800000007"),
    ("P8", 24, "郑十", "2", "13800000008"),
]


def pid(seq: int) -> str:
    """A valid resident ID number born 1990-01-01 in 历下区."""
    import datetime

    return make_resident_id("370102", datetime.date(1990, 1, 1), seq)


@pytest.fixture(autouse=True)
def chinese_messages(zh_hans):
    """Assert on the Chinese messages whatever language an earlier test left active."""


@pytest.fixture
def orgs(province, lixia, make_departments):
    """Provincial GA, RS, DSJ; the city DSJ of 济南 and the county GA of 历下区."""
    specs = [
        ("ga", "370000-GA", "山东省公安厅", "GA", 1, province),
        ("rs", "370000-RS", "山东省人力资源和社会保障厅", "RS", 1, province),
        ("mz", "370000-MZ", "山东省民政厅", "MZ", 1, province),
        ("dsj", "370000-DSJ", "山东省大数据局", "DSJ", 1, province),
        ("dsj_city", "370100-DSJ", "济南市大数据局", "DSJ", 2, lixia.parent),
        ("ga_lixia", "370102-GA", "济南市公安局历下区分局", "GA", 3, lixia),
    ]
    return make_departments(specs)


@pytest.fixture
def users(orgs, make_users):
    """An official of each department (``ga``, ``rs`` …), an administrator and a citizen."""
    return make_users(orgs, "l", PASSWORD)


@pytest.fixture
def registries(orgs):
    """``t.person`` (base library, owner GA) and ``t.insured`` (theme library, owner RS, refers to t.person)."""
    from dgov.registry import services

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
    insured = services.create_registry(
        code="t.insured",
        name="参保",
        owner=orgs["rs"],
        identifier_field="enrolment_no",
        scope_field="division_code",
        fields=INSURED_FIELDS,
        actor="system:test",
        library_code="test",
        library="theme",
    )
    return {"person": person, "insured": insured}


def person_rows() -> list[dict]:
    """The person registry's rows (P8 is deceased)."""
    return [
        {
            "person_no": no,
            "id_number": pid(seq),
            "name": name,
            "sex": sex,
            "birth_date": "1990-01-01",
            "phone": phone,
            "division_code": "370102",
            "status": "deceased" if no == "P8" else "normal",
        }
        for no, seq, name, sex, phone in PERSONS
    ]


def insured_rows(changes: dict | None = None) -> list[dict]:
    """Enrolments of P1–P6; by default E2's name and E3's phone disagree with the population registry."""
    changes = {"E2": {"name": "李泗"}, "E3": {"phone": "13900000003"}} if changes is None else changes
    rows = []
    for index, (_no, seq, name, _sex, phone) in enumerate(PERSONS[:6], start=1):
        row = {
            "enrolment_no": f"E{index}",
            "id_number": pid(seq),
            "name": name,
            "phone": phone,
            "division_code": "370102",
        }
        row.update(changes.get(row["enrolment_no"], {}))
        rows.append(row)
    return rows


@pytest.fixture
def records(registries, orgs):
    """Persons written by GA and enrolments written by RS (two of them disagree)."""
    from dgov.registry import services

    services.bulk_create_records(registries["person"], person_rows(), actor="system:test", source=orgs["ga"])
    services.bulk_create_records(registries["insured"], insured_rows(), actor="system:test", source=orgs["rs"])
    return registries


SETTINGS = {
    "name": "人口-参保比对",
    "mode": "link",
    "entity": "person",
    "tables": [
        {
            "name": "person",
            "registry": "t.person",
            "filter": {"status": "normal"},
            "fields": {
                "name": "full_name",
                "id_number": "identifier",
                "sex": "sex",
                "birth_date": "birth_date",
                "phone": "phone",
            },
        },
        {
            "name": "insured",
            "registry": "t.insured",
            "fields": {"name": "full_name", "id_number": "identifier", "phone": "phone"},
        },
    ],
}


@pytest.fixture
def settings_data():
    """A fresh copy of the run settings."""
    import copy

    return copy.deepcopy(SETTINGS)
