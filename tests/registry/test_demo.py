"""The demo province: valid, consistent, deterministic, seeded once."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from dgov.identity.models import User
from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord, Division, Organization
from dgov.kernel.services import audit
from dgov.kernel.validators import validate_resident_id, validate_uscc
from dgov.registry import demo
from dgov.registry.models import DemoDataset, Enterprise, Household, Person

pytestmark = pytest.mark.django_db


def _generate(persons=400, enterprises=40, seed=7):
    return demo.generate(province_code="370000", persons=persons, enterprises=enterprises, seed=seed)


def test_demo_province_is_valid_and_consistent():
    report = _generate()
    assert report.persons == Person.objects.count() == 400
    assert report.enterprises == Enterprise.objects.count() == 40
    assert report.households == Household.objects.count() > 50

    ids = [p.id_number for p in Person.objects.all()]
    assert len(set(ids)) == len(ids)
    for person in Person.objects.select_related("division__parent__parent", "household"):
        validate_resident_id(person.id_number)
        assert person.division.level == Division.Level.VILLAGE
        assert person.division.code.startswith("37")
        assert person.address.startswith(person.division.full_name)
        assert person.household.address == person.address
        expected_sex = "1" if int(person.id_number[16]) % 2 else "2"
        assert person.sex == expected_sex
        assert person.id_number[6:14] == person.birth_date.strftime("%Y%m%d")

    # every household has exactly one head
    for household in Household.objects.all():
        assert household.members.filter(relation=Person.Relation.HEAD).count() == 1

    adult_cutoff = dt.date.today() - dt.timedelta(days=365 * 18)
    for enterprise in Enterprise.objects.select_related("legal_representative", "registration_authority"):
        validate_uscc(enterprise.uscc)
        assert enterprise.uscc[2:4] == "37"
        assert enterprise.legal_representative.birth_date <= adult_cutoff
        assert enterprise.registration_authority.name.endswith(("市场监督管理局", "市场监管局"))


def test_sensitive_fields_are_encrypted_and_found_by_blind_index():
    _generate(persons=50, enterprises=0)
    person = Person.objects.order_by("pk").first()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number, address FROM registry_person WHERE id = %s", [person.pk])
        raw_id, raw_address = cursor.fetchone()
    assert person.id_number not in raw_id and raw_id.startswith("v1:")
    assert person.address not in raw_address
    found = Person.objects.get(id_number_index=blind_index(person.id_number, purpose="id_number"))
    assert found.pk == person.pk


def test_demo_creates_departments_officials_and_logins():
    _generate(persons=60, enterprises=5)
    assert Organization.objects.filter(level=Organization.Level.PROVINCE).count() >= 10
    assert Organization.objects.filter(level=Organization.Level.COUNTY).exists()
    officials = User.objects.filter(kind=User.Kind.OFFICIAL)
    assert officials.exists()
    assert not officials.filter(department__isnull=True).exists()
    logins = demo.demo_logins()
    assert {login["username"] for login in logins} >= {"admin", "dsj_admin", "citizen"}
    admin = User.objects.get(username="admin")
    assert admin.check_password(demo.DEMO_PASSWORD) and admin.is_superuser
    assert User.objects.get(username="dsj_admin").department.code.endswith("-DSJ")


def test_demo_is_deterministic():
    _generate(persons=120, enterprises=10, seed=99)
    first = sorted((p.name, p.id_number) for p in Person.objects.all())
    first_usccs = sorted(Enterprise.objects.values_list("uscc", "name"))
    Enterprise.objects.all().delete()
    Person.objects.all().delete()
    Household.objects.all().delete()
    DemoDataset.objects.all().delete()
    User.objects.all().delete()
    Organization.objects.filter(parent__isnull=False, children__isnull=True).delete()
    while Organization.objects.exists():
        Organization.objects.filter(children__isnull=True).delete()
    _generate(persons=120, enterprises=10, seed=99)
    assert sorted((p.name, p.id_number) for p in Person.objects.all()) == first
    assert sorted(Enterprise.objects.values_list("uscc", "name")) == first_usccs


def test_demo_is_audited_and_chain_stays_intact():
    _generate(persons=30, enterprises=3)
    record = AuditRecord.objects.filter(action="registry.demo.generate").get()
    assert record.detail["persons"] == 30
    assert audit.verify().ok


def test_demo_command_seeds_once():
    call_command("demo", "--persons", "40", "--enterprises", "4")
    assert Person.objects.count() == 40
    with pytest.raises(CommandError):
        call_command("demo", "--persons", "40")
    call_command("demo", "--persons", "40", "--if-missing")
    assert Person.objects.count() == 40
    assert DemoDataset.objects.count() == 1
