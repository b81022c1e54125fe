"""The shipped base-library rule set loads against the shipped libraries, and the demo hook runs it."""

import pytest

from dgov.kernel.models import Organization
from dgov.kernel.validators import make_resident_id, make_uscc
from dgov.quality import demo, services
from dgov.quality.models import QualityRule, QualityRun
from dgov.registry import libraries
from dgov.registry import services as registry_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def installed(province):
    """The shipped libraries installed with one provincial department of each owner kind."""
    kinds = sorted({definition["owner"] for definition in libraries.load_definitions()} | {"WJ", "MZ", "DSJ"})
    for n, kind in enumerate(kinds, start=1):
        Organization.objects.create(
            name=f"山东省{kind}部门",
            code=f"370000-{kind}",
            uscc=make_uscc("1", "1", "370000", serial=n),
            level=Organization.Level.PROVINCE,
            division=province,
            kind=kind,
        )
    libraries.install_libraries(actor="system:test", province_code="370000")


def test_shipped_rules_load_and_run(installed):
    import datetime

    person = registry_services.get_registry("population.person")
    registry_services.bulk_create_records(
        person,
        [
            {
                "id_number": make_resident_id("370102", datetime.date(1980, 5, 6), 21),
                "name": "张三",
                "sex": "1",
                "birth_date": "1980-05-06",
                "division_code": "370102",
                "status": "normal",
                "phone": "13800000000",
            }
        ],
        actor="system:test",
        source=Organization.objects.get(code="370000-GA"),
    )
    summary = demo.seed()
    assert "数据质量" in summary
    rules = demo.installed_rules() + demo.installed_rules(demo.DEMO_RULES)
    assert QualityRule.objects.count() == len(rules) > 15
    assert QualityRule.objects.get(code="population.person.id_number.checksum").owner.code == "370000-GA"
    run = QualityRun.objects.get(registry=person)
    assert run.status == "succeeded", run.error
    assert run.rows == 1 and run.grade == "A"
    # Idempotent: a second seed changes nothing and does not run again.
    demo.seed()
    assert QualityRun.objects.filter(registry=person).count() == 1
    assert services.load_rules(rules, actor="system:test").unchanged == [r["code"] for r in rules]
