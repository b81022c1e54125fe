"""The demo hook: the demo catalogue and licences for demo persons and enterprises, once, quickly."""

import datetime
import time

import pytest

from dgov.kernel.validators import make_resident_id, make_uscc
from dgov.licenses import demo, services
from dgov.licenses.models import Licence, LicenceType
from dgov.registry import libraries
from dgov.registry import services as registry_services
from dgov.registry.models import Record

pytestmark = pytest.mark.django_db


@pytest.fixture
def base_libraries(orgs):
    """Population, legal-entity and e-licence libraries with 25 persons and 12 enterprises."""
    wanted = {"population.person", "population.household", "legal_entity.enterprise", "licence.index"}
    definitions = [d for d in libraries.load_definitions() if d["code"] in wanted]
    libraries.install_libraries(actor="system:test", province_code="370000", definitions=definitions)
    persons = []
    for n in range(1, 26):
        born = datetime.date(1980 + n % 10, 3, 1) if n <= 20 else datetime.date(2024, 1, n)
        persons.append(
            {
                "id_number": make_resident_id("370102", born, n),
                "name": f"居民{n:02d}",
                "sex": "1" if n % 2 else "2",
                "birth_date": born.isoformat(),
                "division_code": "370102",
                "status": "normal",
            }
        )
    registry_services.bulk_create_records(
        registry_services.get_registry("population.person"), persons, actor="system:test", source=orgs["ga"]
    )
    enterprises = [
        {
            "uscc": make_uscc("9", "1", "370102", serial=n),
            "name": f"济南演示{n:02d}有限公司",
            "type": "llc",
            "established_on": "2019-06-01",
            "status": "active",
            "registered_capital_fen": 100_000_000,
            "address": f"山东省济南市历下区演示路{n}号",
            "division_code": "370102",
        }
        for n in range(1, 13)
    ]
    registry_services.bulk_create_records(
        registry_services.get_registry("legal_entity.enterprise"), enterprises, actor="system:test", source=orgs["scjg"]
    )


def test_seed_issues_licences_of_every_type_once(base_libraries, orgs):
    started = time.perf_counter()
    summary = demo.seed(province_code="370000", seed=7)
    elapsed = time.perf_counter() - started
    assert "电子证照" in summary and "签发演示证照" in summary, summary
    assert LicenceType.objects.count() == 6
    counts = {t.name: Licence.objects.filter(licence_type=t).count() for t in LicenceType.objects.all()}
    assert all(count >= 3 for count in counts.values()), counts
    assert counts["结婚证"] == 6
    business = Licence.objects.filter(licence_type__name="营业执照").select_related("issuer").first()
    assert business.issuer == orgs["scjg_lixia"]  # the county bureau nearest to the enterprise
    assert business.number == business.holder_id  # the business licence number is the USCC
    marriage = Licence.objects.filter(licence_type__name="结婚证").select_related("issuer").first()
    assert marriage.issuer == orgs["mz_city"]  # no county civil-affairs bureau: the city's
    assert services.licence_data(marriage)["spouse_name"].startswith("居民")
    index = registry_services.get_registry("licence.index")
    assert Record.objects.filter(registry=index).count() == Licence.objects.count()
    assert elapsed < 15, elapsed  # about a second on a quiet machine
    # A second run issues nothing more.
    again = demo.seed(province_code="370000", seed=7)
    assert "已存在" in again and Licence.objects.count() == sum(counts.values())


def test_seed_without_departments_says_why(province):
    summary = demo.seed(province_code="370000", seed=1)
    assert summary.startswith("电子证照：") and not LicenceType.objects.exists()


def test_the_app_config_exposes_the_hook(base_libraries):
    from django.apps import apps

    summary = apps.get_app_config("licenses").seed_demo(province_code="370000", seed=1)
    assert "签发演示证照" in summary
