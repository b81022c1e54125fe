"""设立登记: a person's approved 企业设立登记 / 个体工商户登记 registers the entity with a new USCC and its 营业执照."""

import datetime
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from dgov.identity import realname
from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord, Organization
from dgov.kernel.validators import is_valid_uscc, make_resident_id, make_uscc
from dgov.licenses import verification, wallet
from dgov.licenses.services import current_credential, licence_data
from dgov.registry import libraries
from dgov.registry import services as registry
from dgov.registry.models import AccessLog, Record
from dgov.services import applications, bundles, establishment, results
from dgov.services.models import Application, Bundle, BundleCase, ServiceItem

from .catalogue_fixtures import *  # noqa: F403
from .catalogue_fixtures import PASSWORD
from .process_helpers import drain_outbox

pytestmark = pytest.mark.django_db

FOUNDER_ID = make_resident_id("370102", datetime.date(1988, 5, 6), 135)
FOUNDER = "赵开业"
OTHER_ID = make_resident_id("370102", datetime.date(1979, 9, 9), 246)
COMPANY = "000117001000"  # 企业设立登记
INDIVIDUAL = "000117002000"  # 个体工商户登记
FORM = {
    "enterprise_name": "济南开业科技有限公司",
    "entity_type": "有限责任公司",
    "registered_capital": "100",
    "address": "济南市历下区泉城路1号",
    "business_scope": "软件开发；信息技术咨询服务",
    "legal_representative": FOUNDER,
}


def _code(serial):
    """The USCC the county 市场监管 of 历下区 mints for its n-th enterprise (body MA + serial)."""
    return make_uscc("9", "1", "370102", "MA000000", serial=serial)


def _person(id_number, name):
    """A living person of the population library (written by the provincial 公安)."""
    return registry.create_record(
        registry.get_registry("population.person"),
        {
            "id_number": id_number,
            "name": name,
            "sex": "1",
            "birth_date": "1988-05-06",
            "division_code": "370102",
            "status": "normal",
        },
        actor="system:test",
        source=Organization.objects.get(division__code="370000", kind="GA"),
    )


def _verified(django_user_model, username, name, id_number, kind="person"):
    user = django_user_model.objects.create_user(username=username, password=PASSWORD, kind=kind, display_name=name)
    user.id_number, user.id_number_digest = id_number, blind_index(id_number, purpose="resident_id")
    user.real_name_level = 2
    user.save()
    return user


@pytest.fixture
def world(seeded, orgs, lixia, django_user_model):
    """The demo catalogue and libraries, the founder's population record and verified account, 历下区 市场监管 staff."""
    libraries.install_libraries(actor="system:test", province_code="370000")
    person = _person(FOUNDER_ID, FOUNDER)
    official = django_user_model.objects.create_user(
        username="lixia-scjg", password=PASSWORD, kind="official", department=orgs["370102-SCJG"]
    )
    return {
        "person": person,
        "founder": _verified(django_user_model, "founder", FOUNDER, FOUNDER_ID),
        "official": official,
        "division": lixia,
        "department": orgs["370102-SCJG"],
    }


def _submit(world, code=COMPANY, data=None, user="founder"):
    applicant = world[user]
    item = ServiceItem.objects.get(basic_code=code)
    return applications.submit(
        item, applicant=applicant, data=data or FORM, actor=applicant, division=world["division"]
    )


def _approve(world, app, licence=None):
    """受理, 审查 and 准予 by the county official; the decision carries the official's licence items."""
    for _step in range(4):
        task = app.tasks.filter(status__in=applications.LIVE).first()
        if task is None:
            break
        decision = {"accept": "accept", "decide": "approve"}.get(task.spec_name, "pass")
        applications.complete_task(
            task, actor=world["official"], decision=decision, data={"opinion": "", "licence": licence or {}}
        )
    app.refresh_from_db()
    return app


def _enterprise(uscc):
    record = registry.find_record(registry.get_registry("legal_entity.enterprise"), "uscc", uscc)
    return record, registry.record_values_now(record) if record else {}


def test_approving_a_persons_establishment_registers_the_enterprise_and_issues_its_licence(world, client):
    app = _submit(world)
    assert app.department == world["department"] and app.holder_kind == "person"
    _approve(world, app)
    assert app.status == Application.Status.APPROVED
    licence = app.licence
    uscc = licence.holder_id
    # GB 32100: 9 (市场监管) 1 (企业), the approving department's division, the body MA + serial, check characters.
    assert is_valid_uscc(uscc) and uscc.startswith("91370102MA") and uscc == _code(1)
    assert (licence.holder_kind, licence.holder_name, licence.issuer) == (
        "enterprise",
        FORM["enterprise_name"],
        app.department,
    )
    data = licence_data(licence)
    assert data["legal_representative"] == FOUNDER and data["entity_type"] == "有限责任公司"
    assert data["established_on"] == datetime.date.today().isoformat()
    assert verification.verify(current_credential(licence).jws).verdict == verification.Verdict.VALID
    # The enterprise record: written by the county 市场监管 for it, the founder's person record as legal representative.
    record, values = _enterprise(uscc)
    assert record.created_by_org == world["department"] and record.division_code == "370102"
    assert values == {
        "uscc": uscc,
        "name": "济南开业科技有限公司",
        "type": "llc",
        "legal_representative": str(world["person"].uid),
        "registered_capital_fen": 100 * 1_000_000,
        "established_on": datetime.date.today().isoformat(),
        "status": "active",
        "business_scope": FORM["business_scope"],
        "registration_authority": "370102-SCJG",
        "address": FORM["address"],
        "division_code": "370102",
    }
    # The event log and the audit trail name the USCC (not personal data) and the registry record.
    event = app.events.get(kind="licence_issued")
    assert event.detail["uscc"] == uscc and event.detail["entity"] == str(record.uid) and event.detail["registered"]
    register = AuditRecord.objects.get(action="services.establishment.register")
    assert register.detail["uscc"] == uscc and register.target_id == str(app.pk)
    assert AuditRecord.objects.filter(action="registry.record.create", target_id=str(record.pk)).exists()
    # The look-up of the founder's person record shows on 谁查了我的数据.
    read = AccessLog.objects.get(subject_digest=world["founder"].id_number_digest, channel="services")
    assert read.purpose.startswith(f"办件 {app.number}") and read.reader_org == world["department"]
    # The tracking page names the new enterprise and its USCC; the person's own wallet does not hold it.
    client.force_login(world["founder"])
    page = client.get(f"/services/my/{app.number}/").content.decode()
    assert 'data-testid="registered-entity"' in page and uscc in page and "济南开业科技有限公司" in page
    english = client.get(f"/services/my/{app.number}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Establishment approved: the market entity" in english and "not in your personal" in english
    assert licence not in wallet.licences_of(wallet.holder_of(world["founder"]))


def test_the_decision_document_names_the_new_enterprise(world):
    from .test_results import _texts

    app = _approve(world, _submit(world))
    drain_outbox()
    app.refresh_from_db()
    text = "".join(_texts(results.result_bytes(app)))
    assert "准予行政许可决定书" in text and app.licence.holder_id in text and "济南开业科技有限公司" in text


def test_the_founders_enterprise_account_verifies_with_the_new_uscc_and_holds_the_licence(world, django_user_model):
    app = _approve(world, _submit(world))
    uscc = app.licence.holder_id
    account = django_user_model.objects.create_user(username="kaiye-co", password=PASSWORD, kind="enterprise")
    realname.verify_person(account, FOUNDER, FOUNDER_ID, actor=account)
    realname.verify_enterprise(account, uscc, actor=account)
    account.refresh_from_db()
    assert account.enterprise_uscc == uscc and account.real_name_level >= 2
    assert list(wallet.licences_of(wallet.holder_of(account))) == [app.licence]


def test_each_approval_gets_the_next_serial_and_a_serial_taken_meanwhile_is_retried(world, monkeypatch):
    first = _approve(world, _submit(world)).licence.holder_id
    second = _approve(world, _submit(world)).licence.holder_id
    assert second == _code(2) and first != second
    # A concurrent approval that committed the same serial first: the unique key refuses it, the next one is taken.
    allocate = establishment.allocate_uscc
    calls = []

    def racing(category, region):
        calls.append(region)
        return second if len(calls) == 1 else allocate(category, region)

    monkeypatch.setattr(establishment, "allocate_uscc", racing)
    third = _approve(world, _submit(world))
    assert third.licence.holder_id == _code(3) and len(calls) == 2
    assert AuditRecord.objects.filter(action="services.establishment.register").latest("seq").detail["attempts"] == 2
    assert Record.objects.filter(registry__code="legal_entity.enterprise").count() == 3


def test_individual_business_is_entity_category_2_under_the_operators_name(world):
    data = {
        "entity_type": "个体工商户",
        "legal_representative": FOUNDER,
        "address": "历下区文化东路8号",
        "business_scope": "日用百货零售",
    }
    app = _approve(world, _submit(world, code=INDIVIDUAL, data=data))
    assert app.status == Application.Status.APPROVED
    uscc = app.licence.holder_id
    assert is_valid_uscc(uscc) and uscc.startswith("92370102MA")
    assert app.licence.holder_name == FOUNDER  # no trade name (字号): registered under the operator's name
    _record, values = _enterprise(uscc)
    assert values["type"] == "individual" and values["registered_capital_fen"] == 0 and values["name"] == FOUNDER


def test_a_legal_representative_other_than_the_applicant_refuses_the_approval_and_writes_nothing(world):
    app = _submit(world, data={**FORM, "legal_representative": "钱某某"})
    with pytest.raises(ValidationError) as refused:
        _approve(world, app)
    assert "应为申请人本人" in refused.value.message_dict["licence"][0]
    app.refresh_from_db()
    assert app.status == Application.Status.IN_PROGRESS and app.tasks.get(status="open").spec_name == "decide"
    assert not Record.objects.filter(registry__code="legal_entity.enterprise").exists()
    assert not AuditRecord.objects.filter(action="services.establishment.register").exists()


def test_an_applicant_without_a_population_record_is_refused(world, django_user_model):
    world["stranger"] = _verified(django_user_model, "stranger", "孙无籍", OTHER_ID)
    app = _submit(world, data={**FORM, "legal_representative": "孙无籍"}, user="stranger")
    with pytest.raises(ValidationError) as refused:
        _approve(world, app)
    assert "人口基础库中没有申请人" in refused.value.message_dict["licence"][0]
    assert not Record.objects.filter(registry__code="legal_entity.enterprise").exists()


def test_the_rule_is_the_registration_licence_for_a_person(world, settings):
    company = ServiceItem.objects.get(basic_code=COMPANY)
    food = ServiceItem.objects.get(basic_code="000117003000")
    assert establishment.is_registration_licence(company.produces_licence_type)
    assert not establishment.is_registration_licence(food.produces_licence_type)  # 食品经营许可证 registers nothing
    app = _submit(world)
    assert establishment.registers_entity(app)
    settings.SERVICES_ENTITY_LICENCE = food.produces_licence_type.code  # configurable: a full type code
    assert not establishment.registers_entity(app)
    assert establishment.entity_type("Limited liability company") == ("llc", "1")
    assert establishment.entity_type("农民专业合作社") == ("cooperative", "3")
    with pytest.raises(ValidationError):
        establishment.entity_type("有限公司吧")


def test_the_business_opening_bundle_is_approved_end_to_end(world):
    bundle = Bundle.objects.get(code="business-opening")
    data = {
        "enterprise_name": "济南开业餐饮有限公司",
        "address": "济南市历下区泉城路9号",
        "000117001000.entity_type": "有限责任公司",
        "000117001000.registered_capital": 50,
        "000117001000.business_scope": "餐饮服务；食品销售",
        "000117001000.legal_representative": FOUNDER,
        "000117003000.business_items": "热食类食品制售",
    }
    case = bundles.submit_bundle(
        bundle, applicant=world["founder"], data=data, actor=world["founder"], division=world["division"]
    )
    members = {app.item.basic_code: app for app in case.applications.select_related("item")}
    company, food = members[COMPANY], members["000117003000"]
    assert company.department == food.department == world["department"]
    # The food licence's holder is the enterprise the 设立登记 member registers: not before it is approved.
    with pytest.raises(ValidationError) as early:
        _approve(world, food, licence={"main_business": "catering"})
    assert "请待其准予后" in early.value.message_dict["licence"][0]
    _approve(world, company)
    uscc = company.licence.holder_id
    _approve(world, food, licence={"main_business": "catering"})
    assert food.status == Application.Status.APPROVED
    assert (food.licence.holder_kind, food.licence.holder_id, food.licence.holder_name) == (
        "enterprise",
        uscc,
        "济南开业餐饮有限公司",
    )
    food_data = licence_data(food.licence)
    assert food_data["legal_representative"] == FOUNDER and food_data["premises"] == "济南市历下区泉城路9号"
    assert food.events.get(kind="licence_issued").detail == {
        "identifier": food.licence.identifier,
        "type": food.licence.licence_type.code,
        "uscc": uscc,
        "entity_of": company.number,
    }
    case.refresh_from_db()
    assert case.status == BundleCase.Status.COMPLETED
    assert Record.objects.filter(registry__code="legal_entity.enterprise").count() == 1


def test_a_food_licence_for_a_person_outside_a_bundle_is_still_refused(world):
    food = {"operator_name": "赵记小吃", "premises": "历下区1号", "business_items": "散装食品销售"}
    app = _submit(world, code="000117003000", data=food)
    with pytest.raises(ValidationError) as refused:
        _approve(world, app, licence={"main_business": "retail", "legal_representative": FOUNDER})
    assert "持证主体应为企业" in refused.value.message_dict["licence"][0]


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_get_distinct_usccs(world):
    if connection.vendor != "postgresql":
        pytest.skip("the in-memory SQLite test database does not take concurrent writers")
    apps = [_submit(world) for _ in range(4)]
    tasks = []
    for app in apps:
        for _step in range(2):  # 受理, 审查: each waits at 决定
            task = app.tasks.get(status="open")
            applications.complete_task(
                task, actor=world["official"], decision={"accept": "accept"}.get(task.spec_name, "pass")
            )
        tasks.append(app.tasks.get(status="open"))
    barrier = threading.Barrier(len(tasks))
    errors = []

    def decide(task):
        try:
            barrier.wait()
            applications.complete_task(task, actor=world["official"], decision="approve", data={"opinion": ""})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    usccs = [Application.objects.select_related("licence").get(pk=app.pk).licence.holder_id for app in apps]
    assert len(set(usccs)) == len(apps) and all(is_valid_uscc(code) for code in usccs)
    assert sorted(usccs) == [_code(n) for n in range(1, len(apps) + 1)]
    assert Record.objects.filter(registry__code="legal_entity.enterprise").count() == len(apps)
