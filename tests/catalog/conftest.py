"""Fixtures of the catalogue tests: departments, officials, two small registries, the classification."""

import pytest

PERSON_FIELDS = [
    {"name": "id_number", "label": "公民身份号码", "type": "resident_id", "sensitivity": "personal", "authority": "GA"},
    {"name": "name", "label": "姓名", "type": "string", "sensitivity": "internal", "authority": "GA", "max_length": 50},
    {"name": "division_code", "label": "户籍地区划", "type": "division_code", "authority": "GA"},
]
ENTERPRISE_FIELDS = [
    {"name": "uscc", "label": "统一社会信用代码", "type": "uscc", "authority": "SCJG"},
    {"name": "name", "label": "名称", "type": "string", "authority": "SCJG", "max_length": 200},
    {"name": "established_on", "label": "成立日期", "type": "date", "authority": "SCJG"},
]
PASSWORD = "Catalog-test-passw0rd"


@pytest.fixture(autouse=True)
def chinese_messages():
    """Assert on the Chinese messages whatever language an earlier test left active."""
    from django.utils import translation

    with translation.override("zh-hans"):
        yield


@pytest.fixture
def orgs(province, make_departments):
    """Provincial GA, SCJG, MZ, DSJ; the city DSJ of 济南 and the county GA of 历下区."""
    from dgov.kernel.models import Division

    city = Division.objects.get(code="370100")
    lixia = Division.objects.create(code="370102", name="历下区", full_name="济南市历下区", level=3, parent=city)
    specs = [
        ("ga", "370000-GAT", "山东省公安厅", "GA", 1, province),
        ("scjg", "370000-SCJG", "山东省市场监督管理局", "SCJG", 1, province),
        ("mz", "370000-MZT", "山东省民政厅", "MZ", 1, province),
        ("dsj", "370000-DSJ", "山东省大数据局", "DSJ", 1, province),
        ("dsj_city", "370100-DSJ", "济南市大数据局", "DSJ", 2, city),
        ("ga_lixia", "370102-GAJ", "济南市公安局历下区分局", "GA", 3, lixia),
    ]
    return make_departments(specs)


@pytest.fixture
def users(orgs, django_user_model):
    """Two officials of each department (``ga``, ``ga2`` …), an administrator and a citizen."""
    made = {}
    for key, org in orgs.items():
        for suffix in ("", "2"):
            made[key + suffix] = django_user_model.objects.create_user(
                username=f"c-{key}{suffix}",
                password=PASSWORD,
                kind="official",
                display_name=f"{org.name}干部",
                department=org,
            )
    made["admin"] = django_user_model.objects.create_user(username="c-admin", password=PASSWORD, kind="admin")
    made["citizen"] = django_user_model.objects.create_user(username="c-citizen", password=PASSWORD, kind="person")
    return made


@pytest.fixture
def registries(orgs):
    """``t.person`` (owner GA) and ``t.enterprise`` (owner SCJG)."""
    from dgov.registry import services

    common = {"actor": "system:test", "library_code": "test"}
    return {
        "person": services.create_registry(
            code="t.person", name="人口", owner=orgs["ga"], identifier_field="id_number", fields=PERSON_FIELDS, **common
        ),
        "enterprise": services.create_registry(
            code="t.enterprise",
            name="市场主体",
            owner=orgs["scjg"],
            identifier_field="uscc",
            fields=ENTERPRISE_FIELDS,
            **common,
        ),
    }


@pytest.fixture
def classes(db):
    """The standard classification (类/项/目)."""
    from dgov.catalog import services
    from dgov.catalog.models import ResourceClass

    services.ensure_standard_classes(actor="system:test")
    return {node.code: node for node in ResourceClass.objects.all()}


def _resource_data(**overrides):
    """Valid metadata of an entry."""
    data = {
        "name": "企业营业执照信息",
        "summary": "市场主体登记后核发的营业执照信息，包括统一社会信用代码、名称和成立日期。",
        "keywords": "营业执照, 市场主体",
        "format": "database",
        "sharing_type": "unconditional",
        "sharing_mode": "api",
        "open_type": "none",
        "update_cycle": "realtime",
        "contact": "省市场监管局信息中心 0531-00000000",
    }
    data.update(overrides)
    return data


@pytest.fixture
def resource_data():
    """A function returning valid metadata of an entry (keyword overrides)."""
    return _resource_data


@pytest.fixture
def make_entry(classes, registries):
    """A factory: an entry created by ``actor`` (its department provides it), optionally submitted/published."""
    from dgov.catalog import services

    def make(actor, *, name="企业营业执照信息", cls="102001", items=None, publish_by=None, **overrides):
        items = (
            items
            if items is not None
            else [
                {"registry": "t.enterprise", "registry_field": "uscc"},
                {"registry": "t.enterprise", "registry_field": "name"},
            ]
        )
        resource = services.create_resource(
            actor=actor, classification=classes[cls], data=_resource_data(name=name, **overrides), items=items
        )
        if publish_by is not None:
            services.submit(resource, actor=actor)
            services.review(resource, actor=publish_by, approve=True, reason="同意")
        return resource

    return make
