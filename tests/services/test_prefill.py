"""Pre-fill from the base libraries and e-licences with consent; materials replaced by licences and shared data."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord
from dgov.kernel.validators import make_resident_id, make_uscc
from dgov.licenses.models import LicenceConsent, LicenceType
from dgov.registry.models import AccessLog
from dgov.services import catalogue, prefill, sources
from dgov.services.models import (
    Application,
    ApplicationEvent,
    ApplicationMaterial,
    GuideMaterial,
    PrefillConsent,
    ServiceItem,
)

pytestmark = pytest.mark.django_db

PERSON_ID = make_resident_id("370102", datetime.date(1985, 6, 1), 123)
OTHER_ID = make_resident_id("370102", datetime.date(1990, 3, 4), 789)
COMPANY_USCC = make_uscc("9", "1", "370100", serial=42)
KINDS = ("GA", "SCJG", "FGW", "TJ", "ZRZY", "DSJ", "RS", "YJ", "MZ")
PDF = b"%PDF-1.4\n% test\n"
PURPOSE = "一网通办预填：驾驶员预填测试"


def _item_entry(**changes):
    """A person item whose form names registry and licence sources, with every kind of material."""
    entry = {
        "code": "000199101000",
        "name": "驾驶员预填测试",
        "type": "行政确认",
        "department": "GA",
        "levels": ["province"],
        "holder_kinds": ["person"],
        "online_depth": 4,
        "legal_limit_days": 20,
        "promised_limit_days": 5,
        "legal_basis": "《测试条例》第一条",
        "form_schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "title": "姓名", "x-source": "population.person.name"},
                "id_number": {
                    "type": "string",
                    "title": "身份证号",
                    "format": "cn-ric",
                    "x-source": "population.person.id_number",
                },
                "sex": {"type": "string", "title": "性别", "enum": ["男", "女"], "x-source": "population.person.sex"},
                "birth_date": {
                    "type": "string",
                    "title": "出生日期",
                    "format": "date",
                    "x-source": "population.person.birth_date",
                },
                "address": {"type": "string", "title": "住址", "x-source": "population.person.address"},
                "household_no": {"type": "string", "title": "户号", "x-source": "population.household.household_no"},
                "vehicle_class": {"type": "string", "title": "准驾车型", "x-source": "licence:GA:001.vehicle_class"},
                "reason": {"type": "string", "title": "事由"},
            },
            "required": ["name", "id_number", "reason"],
        },
        "materials": [
            {"name": "机动车驾驶证", "kind": "licence", "licence": "GA:001"},
            {
                "name": "居民身份证",
                "kind": "data",
                "registry": "population.person",
                "fields": ["name", "id_number", "address"],
            },
            {"name": "居民户口簿", "kind": "data", "registry": "population.household", "fields": ["household_no"]},
            {"name": "申请书", "kind": "file"},
            {"name": "补充说明", "kind": "file", "required": False},
        ],
    }
    entry.update(changes)
    return entry


@pytest.fixture
def world(province, make_departments, django_user_model, settings):
    """Libraries installed with one person (and household) and one enterprise; a 驾驶证 type; the item; users."""
    from dgov.registry import libraries
    from dgov.registry import services as registry_services

    settings.DEMO_PROVINCE_CODE = "370000"
    registry_services.clear_caches()
    orgs = make_departments([(k.lower(), f"370000-{k}", f"山东省{k}部门", k, 1, province) for k in KINDS])
    libraries.install_libraries(actor="system:test", province_code="370000")
    persons = registry_services.get_registry("population.person")
    person = registry_services.create_record(
        persons,
        {
            "id_number": PERSON_ID,
            "name": "王实名",
            "sex": "1",
            "birth_date": "1985-06-01",
            "address": "山东省济南市历下区泉城路1号",
            "division_code": "370100",
            "status": "normal",
        },
        actor="system:test",
        source=orgs["ga"],
    )
    household = registry_services.create_record(
        registry_services.get_registry("population.household"),
        {
            "household_no": "3701020000000001",
            "head": str(person.uid),
            "household_type": "family",
            "division_code": "370100",
        },
        actor="system:test",
        source=orgs["ga"],
    )
    registry_services.update_record(person, {"household": str(household.uid)}, actor="system:test", source=orgs["ga"])
    registry_services.create_record(
        registry_services.get_registry("legal_entity.enterprise"),
        {
            "uscc": COMPANY_USCC,
            "name": "济南预填测试有限公司",
            "type": "llc",
            "legal_representative": str(person.uid),
            "established_on": "2010-01-01",
            "address": "山东省济南市历下区经十路2号",
            "division_code": "370100",
            "status": "active",
        },
        actor="system:test",
        source=orgs["scjg"],
    )
    driving = LicenceType.objects.create(
        code=f"{orgs['ga'].uscc}001",
        name="机动车驾驶证",
        department=orgs["ga"],
        issuer_kind="GA",
        holder_kind="person",
        items=[
            {"name": "vehicle_class", "label": "准驾车型", "type": "string", "required": True},
            {"name": "first_issued_on", "label": "初次领证日期", "type": "date"},
        ],
        validity={},
        sharing_type="conditional",
    )
    report = catalogue.load_catalogue({"items": [_item_entry()]}, actor="system:test", province_code="370000")
    assert report.ok, report.to_text()

    def verified(username, id_number, kind="person", **extra):
        user = django_user_model.objects.create_user(username=username, password="x", kind=kind, **extra)
        user.real_name_level = 2
        if id_number:
            user.id_number = id_number
            user.id_number_digest = blind_index(id_number, purpose="resident_id")
        user.save()
        return user

    users = {
        "citizen": verified("pf-citizen", PERSON_ID, display_name="王实名"),
        "other": verified("pf-other", OTHER_ID),
        "unverified": django_user_model.objects.create_user(username="pf-unverified", password="x", kind="person"),
        "company": verified("pf-company", "", kind="enterprise", enterprise_uscc=COMPANY_USCC),
        "ga": django_user_model.objects.create_user(
            username="pf-ga", password="x", kind="official", department=orgs["ga"]
        ),
        "rs": django_user_model.objects.create_user(
            username="pf-rs", password="x", kind="official", department=orgs["rs"]
        ),
    }
    return {
        "orgs": orgs,
        "users": users,
        "item": ServiceItem.objects.get(basic_code="000199101000"),
        "driving": driving,
        "person": person,
    }


def _issue_driving(world, holder_id=PERSON_ID):
    """Issue the citizen a 机动车驾驶证 through the licence services."""
    from dgov.licenses import services as licence_services

    return licence_services.issue(
        world["driving"],
        issuer=world["orgs"]["ga"],
        holder_name="王实名",
        holder_id=holder_id,
        data={"vehicle_class": "C1", "first_issued_on": "2005-07-01"},
        actor="system:test",
    )


def _material(world, name) -> GuideMaterial:
    return world["item"].materials.get(name=name)


def _url(world) -> str:
    return f"/services/items/{world['item'].basic_code}/apply/"


FORM = {"name": "王实名", "id_number": PERSON_ID, "reason": "换证"}


# --- the catalogue: x-source checked and normalized at load -----------------------------------------


def test_good_sources_are_stored_with_full_licence_codes(world):
    schema = world["item"].form_schema
    assert schema["properties"]["vehicle_class"]["x-source"] == f"licence:{world['driving'].code}.vehicle_class"
    assert schema["properties"]["name"]["x-source"] == "population.person.name"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("population.person", "应为 <库编码>.<字段>"),
        ("nope.registry.name", "信息库 nope.registry 不存在"),
        ("population.person.nickname", "没有字段 nickname"),
        ("population.person.household", "不能用于预填"),
        ("spatial.poi.name", "无法对应到申请人"),
        ("legal_entity.enterprise.name", "不在事项服务对象"),
        ("licence:XX:999.vehicle_class", "电子证照类型 XX:999 不存在"),
        ("licence:GA:001.colour", "没有数据项 colour"),
        ("licence:GA:001", "licence:<证照类型代码或 KIND:序号>.<数据项>"),
        (42, "x-source 应为"),
    ],
)
def test_bad_source_is_refused_at_load(world, source, message):
    entry = _item_entry(code="000199102000")
    entry["form_schema"]["properties"]["name"]["x-source"] = source
    report = catalogue.load_catalogue({"items": [entry]}, actor="system:test", province_code="370000")
    assert not report.ok
    text = report.to_text()
    assert "form_schema.properties.name.x-source" in text and message in text
    assert not ServiceItem.objects.filter(basic_code="000199102000").exists()


def test_source_type_must_fit_the_form_field(world):
    entry = _item_entry(code="000199103000")
    entry["form_schema"]["properties"]["flag"] = {
        "type": "boolean",
        "title": "标志",
        "x-source": "population.person.name",
    }
    report = catalogue.load_catalogue({"items": [entry]}, actor="system:test", province_code="370000")
    assert not report.ok and "不能容纳来源值" in report.to_text()


def test_demo_catalogue_sources_are_valid(world):
    document = catalogue.read_catalogue_file(catalogue.DEMO_ITEMS)
    declared = [
        prop["x-source"]
        for item in document["items"]
        for prop in (item.get("form_schema") or {}).get("properties", {}).values()
        if "x-source" in prop
    ]
    assert len(declared) >= 10
    assert {sources.parse_source(s).kind for s in declared} == {"registry", "licence"}


# --- the offer: nothing read -------------------------------------------------------------------------


def test_offer_lists_sources_without_reading(world):
    offer = prefill.prefill_offer(world["item"], world["users"]["citizen"])
    assert offer is not None
    assert offer.registry_codes == ["population.person", "population.household"]
    assert offer.licence_type_codes == [world["driving"].code]
    person = offer.registries[0]
    assert person.label == "人口基础库" and "姓名" in person.fields and "身份证号" in person.fields
    assert offer.licence_types[0].materials == ["机动车驾驶证"] and offer.licence_types[0].fields == ["准驾车型"]
    assert ("居民身份证", "人口基础库") in offer.data_materials
    assert AccessLog.objects.count() == 0 and PrefillConsent.objects.count() == 0


def test_unverified_user_is_offered_nothing_and_cannot_consent(world, client):
    user = world["users"]["unverified"]
    assert prefill.prefill_offer(world["item"], user) is None
    with pytest.raises(PermissionDenied):
        prefill.grant_and_prefill(world["item"], user=user)
    assert PrefillConsent.objects.count() == 0 and AccessLog.objects.count() == 0
    assert AuditRecord.objects.filter(action="services.prefill.grant", outcome="denied").exists()
    client.force_login(user)
    page = client.get(_url(world)).content.decode()
    assert 'data-testid="prefill-offer"' not in page
    assert "免提交（由人口基础库共享）" in page  # data materials are still not asked


def test_enterprise_account_is_offered_its_own_library(world):
    entry = _item_entry(
        code="000199104000",
        name="企业预填测试",
        department="SCJG",
        holder_kinds=["enterprise"],
        materials=[],
        form_schema={
            "type": "object",
            "properties": {
                "enterprise_name": {"type": "string", "title": "企业名称", "x-source": "legal_entity.enterprise.name"},
                "uscc": {
                    "type": "string",
                    "title": "统一社会信用代码",
                    "format": "cn-uscc",
                    "x-source": "legal_entity.enterprise.uscc",
                },
            },
        },
    )
    assert catalogue.load_catalogue({"items": [entry]}, actor="system:test", province_code="370000").ok
    item = ServiceItem.objects.get(basic_code="000199104000")
    company = world["users"]["company"]
    assert prefill.prefill_offer(item, company).registry_codes == ["legal_entity.enterprise"]
    assert prefill.prefill_offer(item, world["users"]["citizen"]) is None  # a person has no enterprise record
    result = prefill.grant_and_prefill(item, user=company)
    assert result.values == {"enterprise_name": "济南预填测试有限公司", "uscc": COMPANY_USCC}
    assert result.sources == {"enterprise_name": "法人基础库", "uscc": "法人基础库"}
    log = AccessLog.objects.get()
    assert log.subject_digest == blind_index(COMPANY_USCC, purpose="uscc") and log.reader_org_id is None


# --- consent: values equal the records, reads logged -------------------------------------------------


def test_consent_prefills_own_records_and_logs_every_read(world):
    licence = _issue_driving(world)
    citizen = world["users"]["citizen"]
    result = prefill.grant_and_prefill(world["item"], user=citizen)
    assert result.values == {
        "name": "王实名",
        "id_number": PERSON_ID,
        "sex": "男",  # the registry's code 1, as the form's choice
        "birth_date": "1985-06-01",
        "address": "山东省济南市历下区泉城路1号",
        "household_no": "3701020000000001",
        "vehicle_class": "C1",
    }
    assert result.sources["name"] == "人口基础库" and result.sources["vehicle_class"] == "机动车驾驶证"
    assert result.licences == {_material(world, "机动车驾驶证").pk: licence}
    consent = result.consent
    assert consent.user == citizen and consent.item == world["item"]
    assert consent.holder_id == citizen.id_number_digest and consent.purpose == PURPOSE
    assert consent.registries == ["population.person", "population.household"]
    assert consent.licence_types == [world["driving"].code]
    assert {f["field"] for f in consent.fields_filled} == set(result.values)
    assert all("王实名" not in str(f) for f in consent.fields_filled)  # digests, never values
    hours = (consent.valid_until - consent.granted_at).total_seconds() / 3600
    assert 23.9 < hours < 24.1
    # One access-log row per record read (the person, and the household through it), shown as the citizen's.
    logs = list(AccessLog.objects.order_by("id"))
    assert len(logs) == 2
    assert {log.registry.code for log in logs} == {"population.person", "population.household"}
    for log in logs:
        assert log.purpose == PURPOSE and log.channel == "services" and log.reader == "pf-citizen"
        assert log.reader_org_id is None and log.subject_digest == citizen.id_number_digest
    person_log = next(log for log in logs if log.registry.code == "population.person")
    assert set(person_log.fields) == {"name", "id_number", "sex", "birth_date", "address", "household"}
    grant = AuditRecord.objects.get(action="services.prefill.grant")
    assert grant.detail["fields"] and "王实名" not in str(grant.detail)


def test_who_read_my_data_page_shows_the_prefill_reads(world, client):
    prefill.grant_and_prefill(world["item"], user=world["users"]["citizen"])
    client.force_login(world["users"]["citizen"])
    page = client.get("/account/reads/").content.decode()
    assert PURPOSE in page


def test_consent_hours_setting(world, settings):
    settings.SERVICES_PREFILL_CONSENT_HOURS = 2
    consent = prefill.grant_and_prefill(world["item"], user=world["users"]["citizen"]).consent
    assert (consent.valid_until - consent.granted_at) < datetime.timedelta(hours=2, minutes=1)


def test_prefill_without_a_record_fills_nothing_from_it(world):
    result = prefill.grant_and_prefill(world["item"], user=world["users"]["other"])
    assert result.values == {} and "人口基础库" in result.not_found
    assert AccessLog.objects.count() == 0


# --- the apply page ----------------------------------------------------------------------------------


def test_page_flow_consent_prefill_and_submit_with_licence(world, client):
    licence = _issue_driving(world)
    citizen = world["users"]["citizen"]
    client.force_login(citizen)
    page = client.get(_url(world)).content.decode()
    assert "授权使用我的基础库数据和电子证照自动填写" in page and "人口基础库" in page
    assert 'value="王实名"' not in page  # nothing read before consent

    shown = client.post(_url(world), {"action": "prefill"})
    assert shown.status_code == 200
    html = shown.content.decode()
    consent = PrefillConsent.objects.get()
    assert f'name="prefill_consent" value="{consent.pk}"' in html
    assert 'value="王实名"' in html and f'value="{PERSON_ID}"' in html
    assert 'data-testid="source-name"' in html and "来自人口基础库" in html
    licence_material = _material(world, "机动车驾驶证")
    assert f'name="use_licence_{licence_material.pk}" checked' in html
    assert "使用电子证照 机动车驾驶证 " + prefill.masked_licence_number(licence) in html
    assert licence.number not in html
    data_material = _material(world, "居民身份证")
    assert "免提交（由人口基础库共享）" in html
    assert f'name="material_{data_material.pk}"' not in html  # shared data is not asked for

    form = {
        **FORM,
        "sex": "男",
        "birth_date": "1985-06-01",
        "household_no": "3701020000000001",
        "vehicle_class": "C1",
        "address": "山东省济南市市中区经七路9号",  # the applicant corrected the pre-filled address
        "prefill_consent": str(consent.pk),
        f"use_licence_{licence_material.pk}": "on",
        f"material_{_material(world, '申请书').pk}": SimpleUploadedFile("申请书.pdf", PDF, "application/pdf"),
    }
    # An error comes back with the consent's sources and licences as they were offered, nothing stored.
    missing = {key: value for key, value in form.items() if key != f"material_{_material(world, '申请书').pk}"}
    again = client.post(_url(world), missing)
    assert again.status_code == 400 and not Application.objects.exists()
    html = again.content.decode()
    assert f'name="prefill_consent" value="{consent.pk}"' in html and "来自人口基础库" in html
    assert f'name="use_licence_{licence_material.pk}" checked' in html and "请上传“申请书”。" in html
    form[f"material_{_material(world, '申请书').pk}"] = SimpleUploadedFile("申请书.pdf", PDF, "application/pdf")
    done = client.post(_url(world), form)
    assert done.status_code == 302, done.content.decode()[:2000]
    app = Application.objects.get()
    consent.refresh_from_db()
    assert consent.application == app
    rows = {row.name: row for row in app.materials.all()}
    assert rows["机动车驾驶证"].source == ApplicationMaterial.Source.LICENCE and rows["机动车驾驶证"].licence == licence
    assert rows["申请书"].source == ApplicationMaterial.Source.UPLOAD and rows["申请书"].size == len(PDF)
    assert rows["居民身份证"].source == ApplicationMaterial.Source.DATA
    assert rows["居民户口簿"].registry_code == "population.household"
    assert "补充说明" not in rows
    grant = LicenceConsent.objects.get(licence=licence)
    assert grant.grantee == app.department == world["orgs"]["ga"]
    assert grant.service_code == world["item"].basic_code and app.number in grant.purpose
    assert grant.valid_until.date() > app.legal_due
    event = app.events.get(kind=ApplicationEvent.Kind.PREFILLED)
    assert event.detail["fields"]["name"] == "population.person.name"
    assert event.detail["edited"] == ["address"]
    assert event.detail["registries"] == ["population.person", "population.household"]
    assert "王实名" not in str(event.detail) and PERSON_ID not in str(event.detail)
    assert AuditRecord.objects.filter(action="services.prefill.use").exists()


def test_consent_cannot_be_used_twice(world):
    citizen = world["users"]["citizen"]
    consent = prefill.grant_and_prefill(world["item"], user=citizen).consent
    upload = {_material(world, "申请书").pk: prefill.Upload("a.pdf", "application/pdf", PDF)}
    licence_file = {_material(world, "机动车驾驶证").pk: prefill.Upload("b.pdf", "application/pdf", PDF)}
    prefill.submit_with_materials(
        world["item"],
        applicant=citizen,
        data=FORM,
        actor=citizen,
        uploads={**upload, **licence_file},
        consent=consent,
    )
    with pytest.raises(ValidationError) as exc:
        prefill.consent_for(citizen, world["item"], consent.pk)
    assert "consent" in exc.value.message_dict
    with pytest.raises(ValidationError):
        prefill.submit_with_materials(
            world["item"],
            applicant=citizen,
            data=FORM,
            actor=citizen,
            uploads={**upload, **licence_file},
            consent=consent,
        )
    assert Application.objects.count() == 1


def test_submit_without_consent_reads_nothing(world, client):
    _issue_driving(world)
    client.force_login(world["users"]["citizen"])
    licence_material = _material(world, "机动车驾驶证")
    page = client.get(_url(world)).content.decode()
    assert f'name="material_{licence_material.pk}"' in page  # without consent: a file, no licence looked up
    assert f"use_licence_{licence_material.pk}" not in page
    done = client.post(
        _url(world),
        {
            **FORM,
            f"material_{licence_material.pk}": SimpleUploadedFile("驾驶证.pdf", PDF, "application/pdf"),
            f"material_{_material(world, '申请书').pk}": SimpleUploadedFile("申请书.pdf", PDF, "application/pdf"),
        },
    )
    assert done.status_code == 302
    app = Application.objects.get()
    assert AccessLog.objects.count() == 0 and PrefillConsent.objects.count() == 0
    assert LicenceConsent.objects.count() == 0
    assert sorted(app.materials.values_list("source", flat=True)) == ["data", "data", "upload", "upload"]
    assert not app.events.filter(kind=ApplicationEvent.Kind.PREFILLED).exists()


def test_missing_required_file_is_an_error_and_nothing_is_stored(world, client):
    citizen = world["users"]["citizen"]
    application_form = _material(world, "申请书")
    with pytest.raises(ValidationError) as exc:
        prefill.submit_with_materials(world["item"], applicant=citizen, data=FORM, actor=citizen, uploads={})
    errors = exc.value.message_dict
    assert errors[f"material_{application_form.pk}"] == ["请上传“申请书”。"]
    assert f"material_{_material(world, '机动车驾驶证').pk}" in errors  # no consent: the licence must be uploaded
    assert f"material_{_material(world, '补充说明').pk}" not in errors  # optional
    assert f"material_{_material(world, '居民身份证').pk}" not in errors  # shared data
    client.force_login(citizen)
    bad = client.post(
        _url(world),
        {**FORM, f"material_{application_form.pk}": SimpleUploadedFile("x.pdf", b"not a pdf", "application/pdf")},
    )
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "文件内容与类型不符" in html and "请上传“机动车驾驶证”。" in html
    assert Application.objects.count() == 0 and ApplicationMaterial.objects.count() == 0
    assert ApplicationEvent.objects.count() == 0


def test_a_bad_file_after_the_checks_rolls_everything_back(world, monkeypatch):
    from dgov.services import materials

    citizen = world["users"]["citizen"]
    consent = prefill.grant_and_prefill(world["item"], user=citizen).consent

    def broken(*args, **kwargs):
        raise ValidationError({"file": ["磁盘已满"]})

    monkeypatch.setattr(materials, "add_file", broken)
    uploads = {
        _material(world, "申请书").pk: prefill.Upload("a.pdf", "application/pdf", PDF),
        _material(world, "机动车驾驶证").pk: prefill.Upload("b.pdf", "application/pdf", PDF),
    }
    with pytest.raises(ValidationError):
        prefill.submit_with_materials(
            world["item"], applicant=citizen, data=FORM, actor=citizen, uploads=uploads, consent=consent
        )
    consent.refresh_from_db()
    assert Application.objects.count() == 0 and ApplicationMaterial.objects.count() == 0
    assert consent.application is None


def test_consent_of_another_user_is_refused(world, client):
    consent = prefill.grant_and_prefill(world["item"], user=world["users"]["citizen"]).consent
    other = world["users"]["other"]
    with pytest.raises(ValidationError):
        prefill.consent_for(other, world["item"], consent.pk)
    with pytest.raises(ValidationError) as exc:
        prefill.submit_with_materials(
            world["item"],
            applicant=other,
            data={**FORM, "id_number": OTHER_ID},
            actor=other,
            uploads={
                _material(world, "申请书").pk: prefill.Upload("a.pdf", "application/pdf", PDF),
                _material(world, "机动车驾驶证").pk: prefill.Upload("b.pdf", "application/pdf", PDF),
            },
            consent=consent,
        )
    assert "consent" in exc.value.message_dict
    client.force_login(other)
    refused = client.post(
        _url(world),
        {
            **FORM,
            "prefill_consent": str(consent.pk),
            f"material_{_material(world, '申请书').pk}": SimpleUploadedFile("a.pdf", PDF, "application/pdf"),
        },
    )
    assert refused.status_code == 400 and "数据授权无效或已过期" in refused.content.decode()
    consent.refresh_from_db()
    assert consent.application is None and Application.objects.count() == 0
    # Nor is an expired one accepted, even from its own user.
    PrefillConsent.objects.filter(pk=consent.pk).update(valid_until=consent.granted_at)
    with pytest.raises(ValidationError):
        prefill.consent_for(world["users"]["citizen"], world["item"], consent.pk)


def test_unticked_licence_needs_the_file(world):
    _issue_driving(world)
    citizen = world["users"]["citizen"]
    consent = prefill.grant_and_prefill(world["item"], user=citizen).consent
    licence_material = _material(world, "机动车驾驶证")
    upload = {_material(world, "申请书").pk: prefill.Upload("a.pdf", "application/pdf", PDF)}
    with pytest.raises(ValidationError) as exc:
        prefill.submit_with_materials(
            world["item"],
            applicant=citizen,
            data=FORM,
            actor=citizen,
            uploads=upload,
            use_licence=set(),
            consent=consent,
        )
    assert f"material_{licence_material.pk}" in exc.value.message_dict
    app = prefill.submit_with_materials(
        world["item"], applicant=citizen, data=FORM, actor=citizen, uploads=upload, consent=consent
    )
    assert app.materials.get(material=licence_material).licence is not None


# --- the department's side ---------------------------------------------------------------------------


def _submitted(world):
    citizen = world["users"]["citizen"]
    uploads = {
        _material(world, "申请书").pk: prefill.Upload("a.pdf", "application/pdf", PDF),
        _material(world, "机动车驾驶证").pk: prefill.Upload("b.pdf", "application/pdf", PDF),
    }
    return prefill.submit_with_materials(world["item"], applicant=citizen, data=FORM, actor=citizen, uploads=uploads)


def test_shared_data_is_read_as_the_department(world):
    app = _submitted(world)
    assert AccessLog.objects.count() == 0
    shared = prefill.shared_data_for(app, world["users"]["ga"])
    by_name = {entry.name: entry for entry in shared}
    person = by_name["居民身份证"]
    assert person.library == "人口基础库" and not person.error
    values = dict(person.rows)
    assert values["姓名"] == "王实名"  # internal: shown to the department
    assert values["公民身份号码"] != PERSON_ID and values["公民身份号码"].startswith("370102")  # personal: masked
    assert values["户籍地址"] == "山东省济南市历下区****"
    assert dict(by_name["居民户口簿"].rows) == {"户号": "3701020000000001"}
    logs = AccessLog.objects.all()
    assert logs.count() >= 2
    assert all(log.reader_org == world["orgs"]["ga"] and app.number in log.purpose for log in logs)


def test_shared_data_other_department_and_no_read_right(world):
    app = _submitted(world)
    with pytest.raises(PermissionDenied):
        prefill.shared_data_for(app, world["users"]["rs"])
    with pytest.raises(PermissionDenied):
        prefill.shared_data_for(app, world["users"]["citizen"])
    # An official of the competent department whose department may not read the library gets a message.
    Application.objects.filter(pk=app.pk).update(department=world["orgs"]["rs"])
    app.refresh_from_db()
    shared = prefill.shared_data_for(app, world["users"]["rs"])
    assert all("无权查询" in entry.error for entry in shared)


def test_shared_data_template_renders(world):
    from django.template.loader import render_to_string

    app = _submitted(world)
    html = render_to_string(
        "services/_shared_data.html", {"shared_data": prefill.shared_data_for(app, world["users"]["ga"])}
    )
    assert 'data-testid="shared-data"' in html and "王实名" in html and PERSON_ID not in html


def test_shared_data_page_for_the_department_only(world, client):
    app = _submitted(world)
    task = app.tasks.get()
    url = f"/workbench/services/tasks/{task.pk}/shared-data/"
    client.force_login(world["users"]["ga"])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "王实名" in html and PERSON_ID not in html and "免提交" in html
    assert AccessLog.objects.filter(reader_org=world["orgs"]["ga"]).exists()
    client.force_login(world["users"]["rs"])
    assert client.get(url).status_code == 404  # another department's task
    client.force_login(world["users"]["citizen"])
    assert client.get(url).status_code == 403
    reads = AccessLog.objects.count()
    client.logout()
    assert client.get(url).status_code == 302  # to the login page
    assert AccessLog.objects.count() == reads


def test_apply_page_in_english(world, client):
    client.force_login(world["users"]["citizen"])
    html = client.get(_url(world), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Fill in automatically from my base-library data and e-licences" in html
    assert "Not required (shared by the Population base library)" in html
    shown = client.post(_url(world), {"action": "prefill"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "From the Population base library" in shown
