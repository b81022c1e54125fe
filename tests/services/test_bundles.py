"""一件事 bundles: the combined form, fan-out to departments, all-or-nothing, completing together, pages and API."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord, Notification, Organization
from dgov.kernel.validators import make_resident_id
from dgov.services import applications, bundles
from dgov.services.models import Application, Bundle, BundleCase, ServiceItem

from .catalogue_fixtures import *  # noqa: F403
from .catalogue_fixtures import PASSWORD

pytestmark = pytest.mark.django_db

API = "/api/v1/services"
MOTHER_ID = make_resident_id("370102", datetime.date(1985, 6, 1), 123)
NEWBORN_ITEMS = {"000112001000", "000114001000", "000115001000", "000116001000"}
GOOD = {
    "child_name": "张小宝",
    "child_sex": "男",
    "born_on": "2025-03-01",
    "guardian_id_number": MOTHER_ID,
    "bank": "工商银行",
    "000115001000.mail_card": True,
    "000115001000.address": "济南市历下区泉城路1号",
    "000114001000.birthplace": "山东省济南市历下区",
    "000114001000.institution": "济南市妇幼保健院",
    "000114001000.mother_name": "李妈妈",
}
#: What the deciding official enters for the e-licence an approval issues (社会保障卡 card number).
LICENCE_INPUT = {"000115001000": {"card_no": "6217000012345678"}}


@pytest.fixture
def world(seeded, orgs, django_user_model):
    """The demo catalogue, provincial officials of 公安 卫健 医保 人社, two citizens."""
    officials = {}
    for kind in ("GA", "WJ", "YB", "RS", "SCJG"):
        dept = Organization.objects.get(division__code="370000", kind=kind)
        officials[kind] = django_user_model.objects.create_user(
            username=f"off-{kind.lower()}", password=PASSWORD, kind="official", department=dept
        )
    citizen = django_user_model.objects.create_user(username="mama", password=PASSWORD, kind="person")
    # verified (实名): the e-licences of approved members are issued to her ID number
    citizen.id_number = MOTHER_ID
    citizen.id_number_digest = blind_index(citizen.id_number, purpose="resident_id")
    citizen.real_name_level = 2
    citizen.display_name = "李妈妈"
    citizen.save()
    other = django_user_model.objects.create_user(username="other", password=PASSWORD, kind="person")
    return {"bundle": Bundle.objects.get(code="newborn"), "officials": officials, "citizen": citizen, "other": other}


def _submit(world, data=None, **kw):
    citizen = world["citizen"]
    return bundles.submit_bundle(world["bundle"], applicant=citizen, data=data or GOOD, actor=citizen, **kw)


def _finish(world, app, decision="approve"):
    """Drive one member through its process to the end with the given decision."""
    official = world["officials"][app.department.kind]
    for _step in range(6):
        task = app.tasks.filter(status__in=applications.LIVE).first()
        if task is None:
            return
        if task.spec_name == "accept":
            choice = "reject" if decision == "reject" else "accept"
        elif task.spec_name == "decide":
            choice = decision
        else:
            choice = "pass"
        data = {"opinion": "经审查", "licence": LICENCE_INPUT.get(app.item.basic_code, {})}
        applications.complete_task(task, actor=official, decision=choice, data=data)


# --- the combined form --------------------------------------------------------------------------------


def test_combined_form_shares_mapped_fields_and_prefixes_the_rest(world):
    form = bundles.combined_form(world["bundle"])
    props = form.schema["properties"]
    # (key order of JSON objects is the database's: jsonb on PostgreSQL does not keep it)
    assert set(form.shared) == {"child_name", "child_sex", "born_on", "guardian_id_number", "bank"}
    assert {"000115001000.mail_card", "000115001000.address", "000112001000.household_no"} <= set(props)
    assert {"000114001000.birthplace", "000116001000.insured_id_number"} <= set(props)
    # a mapped item field appears only under its shared name
    assert not {"000112001000.child_name", "000114001000.child_name", "000116001000.insured_name"} & set(props)
    assert form.routes["child_name"] == [
        ("000112001000", "child_name"),
        ("000114001000", "child_name"),
        ("000116001000", "insured_name"),
    ]
    assert props["child_name"]["title"] == "婴儿姓名"  # from the first item field it names
    assert {"child_name", "child_sex", "born_on", "guardian_id_number", "bank"} <= set(form.schema["required"])
    assert "000115001000.address" not in form.schema["required"]
    assert [item.basic_code for item, _names in form.groups] == sorted(NEWBORN_ITEMS)


def test_every_demo_mapping_names_an_item_field(world):
    for bundle in Bundle.objects.all():
        form = bundles.combined_form(bundle)
        mapped = [target for targets in bundle.form_mapping.values() for target in targets]
        routed = {f"{code}.{name}" for key in form.shared for code, name in form.routes[key]}
        assert set(mapped) == routed, bundle.code


def test_one_set_of_materials(world):
    materials = bundles.bundle_materials(world["bundle"])
    keys = [m["key"] for m in materials]
    assert len(keys) == len(set(keys))
    person = next(m for m in materials if m["key"] == "data:population.person")
    assert person["exempt"] and set(person["items"]) == {
        "出生登记",
        "出生医学证明签发",
        "社会保障卡申领",
        "城乡居民基本医疗保险参保登记",
    }
    birth_certificate = next(m for m in materials if m["key"].startswith("licence:") and m["name"] == "出生医学证明")
    assert set(birth_certificate["items"]) == {"出生登记", "城乡居民基本医疗保险参保登记"}
    assert birth_certificate["required"]  # required by 出生登记, optional for 医保


# --- submitting -------------------------------------------------------------------------------------------


def test_submission_fans_out_one_application_per_item_to_each_department(world):
    case = _submit(world)
    apps = {app.item.basic_code: app for app in case.applications.select_related("item", "department")}
    assert set(apps) == NEWBORN_ITEMS
    assert {app.department.kind for app in apps.values()} == {"GA", "WJ", "RS", "YB"}
    assert all(app.applicant == world["citizen"] and app.status == "submitted" for app in apps.values())
    assert applications.form_data(apps["000116001000"]) == {"insured_name": "张小宝", "insured_born_on": "2025-03-01"}
    assert applications.form_data(apps["000115001000"]) == {
        "bank": "工商银行",
        "mail_card": True,
        "address": "济南市历下区泉城路1号",
    }
    assert applications.form_data(apps["000112001000"])["guardian_id_number"] == MOTHER_ID
    # each department's inbox holds its member's 受理 task
    for kind, code in (("GA", "000112001000"), ("WJ", "000114001000"), ("YB", "000116001000"), ("RS", "000115001000")):
        inbox = applications.tasks_for(world["officials"][kind])
        assert [t.application.number for t in inbox] == [apps[code].number]
    assert case.status == BundleCase.Status.IN_PROGRESS and case.holder_id == world["citizen"].id_number_digest
    assert bundles.case_data(case)["child_name"] == "张小宝"
    with connection.cursor() as cursor:
        cursor.execute("SELECT form_data FROM services_bundlecase WHERE id = %s", [case.pk])
        assert "张小宝" not in cursor.fetchone()[0]  # sealed at rest
    record = AuditRecord.objects.get(action="services.bundle.submit", target_id=str(case.pk))
    assert set(record.detail["applications"]) == NEWBORN_ITEMS


def test_bad_fields_store_nothing_and_name_the_combined_fields(world):
    bad = {**GOOD, "guardian_id_number": "123", "bank": "", "000115001000.mail_card": "maybe", "nope": 1}
    with pytest.raises(ValidationError) as info:
        _submit(world, data=bad)
    assert set(info.value.message_dict) == {"guardian_id_number", "bank", "000115001000.mail_card", "nope"}
    assert not BundleCase.objects.exists() and not Application.objects.exists()


def test_a_value_must_suit_every_item_field_it_feeds(world, seeded):
    short = ServiceItem.objects.get(basic_code="000114001000")
    short.form_schema["properties"]["child_name"]["maxLength"] = 3
    short.save(update_fields=["form_schema"])
    with pytest.raises(ValidationError) as info:
        _submit(world, data={**GOOD, "child_name": "欧阳小宝宝"})
    assert list(info.value.message_dict) == ["child_name"]
    assert not BundleCase.objects.exists()


def test_a_member_failing_during_fan_out_rolls_everything_back(world):
    item = ServiceItem.objects.get(basic_code="000116001000")
    item.department_kind = "NONE"  # no competent department anywhere
    item.save(update_fields=["department_kind"])
    item.implementations.all().delete()
    with pytest.raises(ValidationError) as info:
        _submit(world)
    assert "城乡居民基本医疗保险参保登记" in info.value.message_dict["division"][0]
    assert not BundleCase.objects.exists() and not Application.objects.exists()
    assert not AuditRecord.objects.filter(action="services.application.submit").exists()


# --- completing together ---------------------------------------------------------------------------------


def test_the_case_completes_when_every_member_is_approved_with_one_message(world):
    case = _submit(world)
    members = list(case.applications.order_by("item__basic_code"))
    for app in members[:-1]:
        _finish(world, app)
        case.refresh_from_db()
        assert case.status == BundleCase.Status.IN_PROGRESS and case.completed_at is None
    assert (
        not Notification.objects.filter(user=world["citizen"])
        .exclude(template="")
        .filter(template__in=["services.bundle.completed", "services.application.completed"])
    )
    _finish(world, members[-1])
    case.refresh_from_db()
    assert case.status == BundleCase.Status.COMPLETED and case.completed_at
    notes = Notification.objects.filter(user=world["citizen"], template="services.bundle.completed")
    assert notes.count() == 1
    assert "出生登记：办结（准予）" in notes.get().body and notes.get().link == f"/services/my/bundles/{case.number}/"
    assert not Notification.objects.filter(template="services.application.completed").exists()
    assert AuditRecord.objects.filter(action="services.bundle.complete", target_id=str(case.pk)).count() == 1


def test_a_denied_or_rejected_member_makes_the_case_partly_completed(world):
    case = _submit(world)
    members = {app.item.basic_code: app for app in case.applications.select_related("item")}
    _finish(world, members.pop("000115001000"), decision="deny")
    _finish(world, members.pop("000116001000"), decision="reject")
    for app in members.values():
        _finish(world, app)
    case.refresh_from_db()
    assert case.status == BundleCase.Status.PARTLY and case.completed_at
    note = Notification.objects.get(user=world["citizen"], template="services.bundle.completed")
    assert "社会保障卡申领：办结（不予准予）" in note.body and "不予受理" in note.body


# --- pages ------------------------------------------------------------------------------------------------


def test_bundle_pages_apply_and_track(world, client):
    listing = client.get("/services/bundles/")
    assert 'href="/services/bundles/newborn/apply/"' in listing.content.decode()
    assert client.get("/services/bundles/newborn/apply/").status_code == 302  # login first
    client.force_login(world["citizen"])
    page = client.get("/services/bundles/newborn/apply/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('name="child_name"') == 1 and 'name="000115001000.mail_card"' in html
    assert "共同信息" in html and "免提交" in html
    bad = client.post("/services/bundles/newborn/apply/", {**GOOD, "guardian_id_number": "1"})
    assert bad.status_code == 400 and "格式不正确" in bad.content.decode()
    assert not BundleCase.objects.exists()
    form = {**GOOD, "000115001000.mail_card": "on"}
    done = client.post("/services/bundles/newborn/apply/", form)
    case = BundleCase.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/services/my/bundles/{case.number}/"
    tracking = client.get(done["Location"]).content.decode()
    assert tracking.count("受理") >= 4 and "出生登记" in tracking and "办理中" in tracking
    assert case.number in client.get("/services/my/").content.decode()
    client.force_login(world["other"])
    assert client.get(f"/services/my/bundles/{case.number}/").status_code == 404
    assert case.number not in client.get("/services/my/").content.decode()


def test_bundle_page_uploads_one_file_for_every_member_that_asks(world, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    slot = next(m["slot"] for m in bundles.bundle_materials(world["bundle"]) if m["key"] == "file:新生儿出生医学记录")
    client.force_login(world["citizen"])
    upload = SimpleUploadedFile("record.pdf", b"%PDF-1.4 test", content_type="application/pdf")
    response = client.post("/services/bundles/newborn/apply/", {**GOOD, slot: upload})
    assert response.status_code == 302
    app = Application.objects.get(item__basic_code="000114001000")
    assert list(app.materials.values_list("name", "source")) == [("新生儿出生医学记录", "upload")]
    wrong = SimpleUploadedFile("x.txt", b"hello", content_type="text/plain")
    refused = client.post("/services/bundles/newborn/apply/", {**GOOD, slot: wrong})
    assert refused.status_code == 400 and BundleCase.objects.count() == 1


# --- API --------------------------------------------------------------------------------------------------


def test_api_submit_read_and_scope(world, client):
    assert (
        client.post(f"{API}/bundles/newborn/cases", {"data": GOOD}, content_type="application/json").status_code == 401
    )
    client.force_login(world["citizen"])
    schema = client.get(f"{API}/bundles/newborn").json()
    assert "child_name" in schema["form_schema"]["properties"] and "child_name" in schema["shared_fields"]
    assert client.get(f"{API}/bundles/nope").status_code == 404
    bad = client.post(
        f"{API}/bundles/newborn/cases", {"data": {**GOOD, "born_on": "x"}}, content_type="application/json"
    )
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/problem+json")
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {("born_on",)}
    made = client.post(f"{API}/bundles/newborn/cases", {"data": GOOD}, content_type="application/json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["status"] == "in_progress" and len(body["applications"]) == 4
    assert {a["current_tasks"][0] for a in body["applications"]} == {"受理"}
    assert [c["number"] for c in client.get(f"{API}/bundle-cases").json()] == [body["number"]]
    assert client.get(f"{API}/bundle-cases/{body['number']}").status_code == 200
    client.force_login(world["other"])
    assert client.get(f"{API}/bundle-cases/{body['number']}").status_code == 404
    assert client.get(f"{API}/bundle-cases").json() == []


def _sample(prop):
    """A valid value for a form property (enough for the demo schemas)."""
    if "enum" in prop:
        return prop["enum"][0]
    kind = prop.get("type", "string")
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return prop.get("minimum", 1)
    if prop.get("format") == "date":
        return "2025-01-02"
    if prop.get("format") == "cn-ric" or "17" in prop.get("pattern", ""):
        return MOTHER_ID
    if prop.get("format") == "cn-uscc":
        from dgov.kernel.validators import make_uscc

        return make_uscc("9", "1", "370102", serial=7)
    if prop.get("pattern") == "^\\d{16}$":
        return "3701020000000001"
    return "测试"


@pytest.mark.parametrize("code", ["newborn", "business-opening", "marriage"])
def test_each_demo_bundle_submits_to_its_departments(world, code):
    bundle = Bundle.objects.get(code=code)
    form = bundles.combined_form(bundle)
    data = {name: _sample(prop) for name, prop in form.schema["properties"].items()}
    case = bundles.submit_bundle(bundle, applicant=world["citizen"], data=data, actor=world["citizen"])
    apps = list(case.applications.select_related("item", "department"))
    assert sorted(app.item.basic_code for app in apps) == sorted(item.basic_code for item in form.items)
    assert all(app.department.kind == app.item.department_kind for app in apps)
    assert len(form.shared) == len(bundle.form_mapping)


def test_api_case_list_fetches_the_members_once_for_all_cases(world, client, django_assert_max_num_queries):
    made = {_submit(world).number, _submit(world).number}
    client.force_login(world["citizen"])
    # session, user, cases, members, their open tasks: the same for two cases as for one (no query per case)
    with django_assert_max_num_queries(5):
        listed = client.get(f"{API}/bundle-cases").json()
    assert {case["number"] for case in listed} == made
    assert all(len(case["applications"]) == 4 for case in listed)
    assert {a["current_tasks"][0] for case in listed for a in case["applications"]} == {"受理"}
