"""Fixtures of the real-name tests: the base libraries installed, one person and one enterprise in them.

Imported with ``from realname_fixtures import *`` by tests/identity/test_identity_realname.py.
"""

import datetime

import pytest

from dgov.kernel.models import Organization
from dgov.kernel.validators import make_resident_id, make_uscc

OWNER_KINDS = ("SCJG", "FGW", "TJ", "ZRZY", "DSJ", "RS", "YJ")
PERSON_ID = make_resident_id("370102", datetime.date(1985, 6, 1), 123)
DECEASED_ID = make_resident_id("370102", datetime.date(1940, 1, 2), 456)
OTHER_ID = make_resident_id("370102", datetime.date(1990, 3, 4), 789)
COMPANY_USCC = make_uscc("9", "1", "370100", serial=42)
CLOSED_USCC = make_uscc("9", "1", "370100", serial=43)


def _person(services, registry, ga, id_number, name, status):
    return services.create_record(
        registry,
        {
            "id_number": id_number,
            "name": name,
            "sex": "1",
            "birth_date": f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}",
            "division_code": "370100",
            "status": status,
        },
        actor="system:test",
        source=ga,
    )


@pytest.fixture
def base_people(department, province):
    """population.person: 王实名 (normal), 赵故去 (deceased), 钱别人 (normal); two enterprises of 王实名/钱别人."""
    from dgov.registry import libraries, services

    department.kind = "GA"
    department.save(update_fields=["kind"])
    owners = {"GA": department}
    for n, kind in enumerate(OWNER_KINDS, start=1):
        owners[kind] = Organization.objects.create(
            name=f"山东省{kind}部门",
            code=f"370000-{kind}",
            uscc=make_uscc("1", "1", "370000", serial=100 + n),
            level=Organization.Level.PROVINCE,
            division=province,
            kind=kind,
        )
    libraries.install_libraries(actor="system:test", province_code="370000")
    persons = services.get_registry("population.person")
    wang = _person(services, persons, department, PERSON_ID, "王实名", "normal")
    _person(services, persons, department, DECEASED_ID, "赵故去", "deceased")
    qian = _person(services, persons, department, OTHER_ID, "钱别人", "normal")
    enterprises = services.get_registry("legal_entity.enterprise")
    for uscc, rep, status in ((COMPANY_USCC, wang, "active"), (CLOSED_USCC, qian, "cancelled")):
        services.create_record(
            enterprises,
            {
                "uscc": uscc,
                "name": f"济南测试{uscc[-4:]}有限公司",
                "type": "llc",
                "legal_representative": str(rep.uid),
                "established_on": "2010-01-01",
                "division_code": "370100",
                "status": status,
            },
            actor="system:test",
            source=owners["SCJG"],
        )
    return {"wang": wang, "qian": qian}
