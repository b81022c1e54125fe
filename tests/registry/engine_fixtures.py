"""Fixtures shared by the registry engine tests: divisions, departments, officials and two registries.

Imported with ``from engine_fixtures import *`` by test_schema*/test_services*/test_authority*/test_history*.
"""

import datetime

import pytest

from dgov.kernel.validators import make_resident_id, make_uscc

PERSON_FIELDS = [
    {
        "name": "id_number",
        "label": "居民身份证号码",
        "type": "resident_id",
        "sensitivity": "personal",
        "authority": "GA",
    },
    {"name": "name", "label": "姓名", "type": "string", "sensitivity": "personal", "authority": "GA", "max_length": 50},
    {"name": "sex", "label": "性别", "type": "enum", "choices": ["男", "女"], "authority": "GA"},
    {"name": "birth_date", "label": "出生日期", "type": "date", "authority": "GA"},
    {"name": "division", "label": "户籍地", "type": "division_code", "authority": "GA", "required": True},
    {
        "name": "phone",
        "label": "手机号码",
        "type": "phone",
        "sensitivity": "personal",
        "authority": "GA|WJ",
        "lookup": True,
    },
    {"name": "address", "label": "住址", "type": "string", "sensitivity": "personal", "authority": "GA"},
    {
        "name": "marital_status",
        "label": "婚姻状况",
        "type": "enum",
        "choices": ["未婚", "已婚", "离婚", "丧偶"],
        "authority": "MZ",
    },
    {"name": "height", "label": "身高", "type": "integer", "min": 30, "max": 260, "authority": "WJ|GA"},
    {"name": "income", "label": "年收入", "type": "decimal", "min": 0, "authority": "TJ|GA", "sensitivity": "internal"},
    {"name": "household", "label": "所属户", "type": "reference", "ref": "test.household", "authority": "GA"},
]

HOUSEHOLD_FIELDS = [
    {"name": "household_no", "label": "户号", "type": "string", "authority": "GA"},
    {"name": "division", "label": "户籍地", "type": "division_code", "authority": "GA"},
]


@pytest.fixture(autouse=True)
def chinese_messages():
    """Assert on the Chinese messages whatever language an earlier test left active."""
    from django.utils import translation

    with translation.override("zh-hans"):
        yield


def pid(seq: int, region: str = "370102", born: datetime.date = datetime.date(1990, 1, 1)) -> str:
    """A valid resident ID number."""
    return make_resident_id(region, born, seq)


def _org(code, name, kind, level, division, serial):
    from dgov.kernel.models import Organization

    return Organization.objects.create(
        name=name,
        code=code,
        uscc=make_uscc("1", "1", division.code, serial=serial),
        level=level,
        division=division,
        kind=kind,
    )


@pytest.fixture
def divisions(province):
    """Province 370000, city 370100 and two of its districts (370102 历下区, 370103 市中区)."""
    from dgov.kernel.models import Division

    city = Division.objects.get(code="370100")
    lixia = Division.objects.create(
        code="370102", name="历下区", full_name="山东省济南市历下区", level=Division.Level.COUNTY, parent=city
    )
    shizhong = Division.objects.create(
        code="370103", name="市中区", full_name="山东省济南市市中区", level=Division.Level.COUNTY, parent=city
    )
    return {"province": province, "city": city, "lixia": lixia, "shizhong": shizhong}


@pytest.fixture
def orgs(divisions):
    """Departments: provincial GA/MZ/WJ/TJ/DSJ/SCJG, county GA of 历下区 and of 市中区, county WJ of 历下区."""
    from dgov.kernel.models import Organization

    p, c = divisions["province"], divisions["lixia"]
    s = divisions["shizhong"]
    level = Organization.Level
    return {
        "ga": _org("370000-GA", "山东省公安厅", "GA", level.PROVINCE, p, 1),
        "mz": _org("370000-MZ", "山东省民政厅", "MZ", level.PROVINCE, p, 2),
        "wj": _org("370000-WJ", "山东省卫生健康委员会", "WJ", level.PROVINCE, p, 3),
        "tj": _org("370000-TJ", "山东省统计局", "TJ", level.PROVINCE, p, 4),
        "dsj": _org("370000-DSJ", "山东省大数据局", "DSJ", level.PROVINCE, p, 5),
        "scjg": _org("370000-SCJG", "山东省市场监督管理局", "SCJG", level.PROVINCE, p, 6),
        "ga_lixia": _org("370102-GA", "济南市公安局历下区分局", "GA", level.COUNTY, c, 7),
        "ga_shizhong": _org("370103-GA", "济南市公安局市中区分局", "GA", level.COUNTY, s, 8),
        "wj_lixia": _org("370102-WJ", "历下区卫生健康局", "WJ", level.COUNTY, c, 9),
    }


@pytest.fixture
def officials(orgs, django_user_model):
    """One official per department, keyed like ``orgs``."""
    return {
        key: django_user_model.objects.create_user(
            username=f"off-{key}", password="x-Pass-123", kind="official", display_name=f"{key}干部", department=org
        )
        for key, org in orgs.items()
    }


@pytest.fixture
def admin_user(db, django_user_model):
    """A platform administrator without a department."""
    return django_user_model.objects.create_user(username="sysadmin", password="x-Pass-123", kind="admin")


@pytest.fixture
def citizen_user(db, django_user_model):
    """A natural person."""
    return django_user_model.objects.create_user(username="citizen9", password="x-Pass-123", kind="person")


@pytest.fixture
def household_registry(orgs):
    """A small registry referenced by the person registry."""
    from dgov.registry import services

    return services.create_registry(
        code="test.household",
        name="户",
        owner=orgs["ga"],
        library_code="population",
        identifier_field="household_no",
        fields=HOUSEHOLD_FIELDS,
        actor="system:test",
    )


@pytest.fixture
def person_registry(orgs, household_registry):
    """A person registry scoped by the ``division`` field, owned by the provincial GA."""
    from dgov.registry import services

    return services.create_registry(
        code="test.person",
        name="人口",
        owner=orgs["ga"],
        library_code="population",
        identifier_field="id_number",
        scope_field="division",
        fields=PERSON_FIELDS,
        actor="system:test",
    )


@pytest.fixture
def person(person_registry, officials):
    """One person of 历下区 created by the 历下区 GA official."""
    from dgov.registry import services

    return services.create_record(
        person_registry,
        {
            "id_number": pid(11),
            "name": "张三",
            "sex": "男",
            "birth_date": "1990-01-01",
            "division": "370102",
            "phone": "13812345678",
            "address": "山东省济南市历下区泉城路1号",
        },
        actor=officials["ga_lixia"],
    )
