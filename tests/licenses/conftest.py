"""Fixtures of the e-licence tests: a marriage-certificate type of the civil-affairs department."""

import pytest


@pytest.fixture
def civil(province, make_departments):
    """The provincial 民政厅 (competent department) and a city 民政局 of the same kind."""
    from dgov.kernel.models import Division

    city = Division.objects.get(code="370100")
    return make_departments(
        [
            ("mz", "370000-MZ", "山东省民政厅", "MZ", 1, province),
            ("mz_city", "370100-MZ", "济南市民政局", "MZ", 2, city),
            ("ga", "370000-GA", "山东省公安厅", "GA", 1, province),
        ]
    )


@pytest.fixture
def marriage_type(civil):
    """结婚证: person holder, three items, long-term validity, issued by any MZ department."""
    from dgov.licenses.models import LicenceType

    return LicenceType.objects.create(
        code="11100000000013127D001",
        name="结婚证",
        name_en="Marriage certificate",
        department=civil["mz"],
        issuer_kind="MZ",
        holder_kind="person",
        items=[
            {"name": "spouse_name", "label": "配偶姓名", "type": "string", "required": True, "sensitivity": "personal"},
            {"name": "registered_on", "label": "登记日期", "type": "date", "required": True},
            {"name": "remark", "label": "备注", "type": "text"},
        ],
        validity={},
        sharing_type="conditional",
    )


# --- Fixtures of the catalogue, bulk, index, page, API, CLI and demo tests ---------------------------

LICENCE_PASSWORD = "Licence-test-passw0rd"


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    """Issuer keys are cached per process by department id: test databases reuse ids."""
    from dgov.licenses import keys
    from dgov.registry import services as registry_services

    keys.clear_cache()
    registry_services.clear_caches()
    yield
    keys.clear_cache()
    registry_services.clear_caches()


@pytest.fixture
def orgs(province, make_departments):
    """Provincial SCJG, MZ, WJ, GA, RS, DSJ; 济南 city MZ and DSJ; 历下区 (370102) county SCJG."""
    from dgov.kernel.models import Division

    city = Division.objects.get(code="370100")
    lixia = Division.objects.create(code="370102", name="历下区", full_name="山东省济南市历下区", level=3, parent=city)
    return make_departments(
        [
            ("scjg", "370000-SCJG", "山东省市场监督管理局", "SCJG", 1, province),
            ("mz", "370000-MZ", "山东省民政厅", "MZ", 1, province),
            ("wj", "370000-WJ", "山东省卫生健康委员会", "WJ", 1, province),
            ("ga", "370000-GA", "山东省公安厅", "GA", 1, province),
            ("rs", "370000-RS", "山东省人力资源和社会保障厅", "RS", 1, province),
            ("dsj", "370000-DSJ", "山东省大数据局", "DSJ", 1, province),
            ("mz_city", "370100-MZ", "济南市民政局", "MZ", 2, city),
            ("dsj_city", "370100-DSJ", "济南市大数据局", "DSJ", 2, city),
            ("scjg_lixia", "370102-SCJG", "济南市历下区市场监督管理局", "SCJG", 3, lixia),
        ]
    )


@pytest.fixture
def demo_types(orgs):
    """The shipped demo catalogue loaded: {name: LicenceType}."""
    from dgov.licenses import catalogue
    from dgov.licenses.models import LicenceType

    entries = catalogue.read_type_file(catalogue.DEMO_TYPES)
    report = catalogue.load_types(entries, actor="system:test", province_code="370000")
    assert report.ok, report.to_text()
    return {licence_type.name: licence_type for licence_type in LicenceType.objects.select_related("department")}


@pytest.fixture
def people_users(orgs, django_user_model):
    """An official of each department of ``orgs`` (by key), an administrator ``admin`` and a citizen ``citizen``."""
    made = {
        key: django_user_model.objects.create_user(
            username=f"l-{key}",
            password=LICENCE_PASSWORD,
            kind="official",
            display_name=f"{org.name}干部",
            department=org,
        )
        for key, org in orgs.items()
    }
    made["admin"] = django_user_model.objects.create_user(username="l-admin", password=LICENCE_PASSWORD, kind="admin")
    made["citizen"] = django_user_model.objects.create_user(
        username="l-citizen", password=LICENCE_PASSWORD, kind="person"
    )
    return made


@pytest.fixture
def index_library(orgs):
    """The e-licence base library (``licence.index``, owner: the provincial DSJ) installed."""
    from dgov.registry import libraries

    definitions = [d for d in libraries.load_definitions() if d["code"] == "licence.index"]
    libraries.install_libraries(actor="system:test", province_code="370000", definitions=definitions)
    from dgov.registry import services as registry_services

    return registry_services.get_registry("licence.index")


def person_id(seq: int, region: str = "370102", year: int = 1990) -> str:
    """A valid resident ID number."""
    import datetime

    from dgov.kernel.validators import make_resident_id

    return make_resident_id(region, datetime.date(year, 1, 1), seq)


def enterprise_id(serial: int, region: str = "370102") -> str:
    """A valid USCC of an enterprise."""
    from dgov.kernel.validators import make_uscc

    return make_uscc("9", "1", region, serial=serial)
