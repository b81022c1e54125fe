"""Result delivery: the signed decision PDF, the e-licence an approval issues, the download scope, the 办结 notice."""

import datetime
import hashlib
import io
import json
import re

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord, Notification, OutboxEvent
from dgov.kernel.validators import make_resident_id
from dgov.licenses import pdfsign, verification
from dgov.licenses.models import Licence, LicenceType
from dgov.licenses.services import current_credential, holder_index, licence_data
from dgov.services import applications, results
from dgov.services.models import Application, ApplicationEvent

from .process_helpers import GOOD, drain_outbox, make_world

pytestmark = pytest.mark.django_db

ID_NUMBER = make_resident_id("370102", datetime.date(1990, 1, 1), 123)
API = "/api/v1/services/applications"


@pytest.fixture
def world(django_user_model):
    """make_world plus a verified citizen and an e-licence type the item produces (食品经营许可 of a person)."""
    world = make_world(django_user_model, prefix="res")
    citizen = world["users"]["citizen"]
    citizen.display_name = "王小明"
    citizen.id_number = ID_NUMBER
    citizen.id_number_digest = blind_index(ID_NUMBER, purpose="resident_id")
    citizen.real_name_level = 2
    citizen.phone = "13812345678"
    citizen.save()
    scjg = world["orgs"]["scjg"]
    licence_type = LicenceType.objects.create(
        code=f"{scjg.uscc}901",
        name="食品经营许可证",
        department=scjg,
        issuer_kind="SCJG",
        holder_kind="person",
        items=[
            {"name": "purpose", "label": "用途", "type": "string", "required": True},
            {"name": "premises", "label": "经营场所", "type": "string", "required": True},
            {"name": "registered_on", "label": "登记日期", "type": "date", "required": True},
            {"name": "remark", "label": "备注", "type": "text"},
        ],
        validity={"years": 5},
        sharing_type="conditional",
    )
    world["item"].produces_licence_type = licence_type
    world["item"].save(update_fields=["produces_licence_type"])
    world["licence_type"] = licence_type
    return world


def _submit(world, user="citizen"):
    applicant = world["users"][user]
    return applications.submit(world["item"], applicant=applicant, data=GOOD, actor=applicant)


def _settle(app):
    """The worker's turn (the decision document is drawn after the commit), then the application as stored."""
    drain_outbox()
    app.refresh_from_db()


def _open(app):
    return app.tasks.get(status__in=applications.LIVE)


def _to_decision(world, app):
    """受理 and 审查: the application waits at 决定."""
    a = world["users"]["a"]
    applications.complete_task(_open(app), actor=a, decision="accept")
    applications.complete_task(_open(app), actor=a, decision="pass")
    return _open(app)


def _texts(data: bytes) -> list[str]:
    """The text of every marked-content span of every page (what the pages say)."""
    reader = PdfFileReader(io.BytesIO(data))
    found = []
    for ref in reader.root["/Pages"]["/Kids"]:
        stream = ref.get_object()["/Contents"].get_object()
        raw = stream.data
        for match in re.finditer(rb"/ActualText\s*", raw):
            buffer = io.BytesIO(raw)
            buffer.seek(match.end())
            found.append(str(generic.read_object(buffer, stream.container_ref)))
    return found


def _signature_status(data: bytes):
    """pyHanko's validation of the document's one signature against the platform's seal CA."""
    roots = [
        asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)) for cert in pdfsign.ca_certificates()
    ]
    reader = PdfFileReader(io.BytesIO(data))
    (signature,) = reader.embedded_signatures
    return validate_pdf_signature(signature, ValidationContext(trust_roots=roots, allow_fetching=False))


def test_approval_issues_a_licence_that_verifies_and_a_signed_decision(world, client):
    app = _submit(world)
    task = _to_decision(world, app)
    b = world["users"]["b"]
    # 经营场所 is in neither the form nor an attached licence: the approval is refused, nothing changes.
    with pytest.raises(ValidationError) as info:
        applications.complete_task(task, actor=b, decision="approve")
    assert "经营场所" in " ".join(info.value.messages) and "食品经营许可证" in " ".join(info.value.messages)
    _settle(app)
    assert app.status == Application.Status.IN_PROGRESS and app.licence is None and not app.result_pdf
    assert _open(app).pk == task.pk

    applications.complete_task(
        task, actor=b, decision="approve", data={"opinion": "同意", "licence": {"premises": "济南市历下区泉城路1号"}}
    )
    _settle(app)
    assert app.status == Application.Status.APPROVED
    licence = app.licence
    assert licence is not None and licence.issuer == world["orgs"]["scjg"]
    assert licence.holder_name == "王小明" and licence.holder_id == ID_NUMBER
    assert licence.holder_index == holder_index("person", ID_NUMBER) == world["users"]["citizen"].id_number_digest
    assert licence_data(licence) == {
        "purpose": "自用",  # same-named form field
        "premises": "济南市历下区泉城路1号",  # entered by the official
        "registered_on": datetime.date.today().isoformat(),  # the decision date
    }
    assert verification.verify(current_credential(licence).jws).verdict == verification.Verdict.VALID
    kinds = list(app.events.values_list("kind", flat=True))
    assert kinds[-3:] == ["completed", "licence_issued", "result_delivered"]
    for action in ("licenses.licence.issue", "services.result.licence", "services.result.deliver"):
        assert AuditRecord.objects.filter(action=action).count() == 1, action

    # The holder's wallet lists it (found through the holder index).
    client.force_login(world["users"]["citizen"])
    wallet = client.get("/account/licences/")
    assert wallet.status_code == 200 and licence.number in wallet.content.decode()

    # The decision: sealed at rest, a PAdES signature of the department over the whole file.
    assert not bytes(app.result_pdf).startswith(b"%PDF") and b"%PDF" not in bytes(app.result_pdf)
    data = results.result_bytes(app)
    assert data.startswith(b"%PDF-")
    delivered = app.events.get(kind=ApplicationEvent.Kind.RESULT_DELIVERED).detail
    assert delivered["sha256"] == hashlib.sha256(data).hexdigest() and delivered["delivery"] == "electronic"
    status = _signature_status(data)
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert world["orgs"]["scjg"].name in status.signing_cert.subject.human_friendly
    texts = "".join(_texts(data))
    number = results.document_number(app)
    assert number == f"{world['orgs']['scjg'].name}许准字〔{datetime.date.today().year}〕{app.pk}号"
    assert number == delivered["document"]
    for expected in ("准予行政许可决定书", number, app.number, "王小明：", "《食品安全法》", licence.number):
        assert expected in texts, expected
    assert ID_NUMBER not in texts and "370102*" in texts  # the ID number masked


def test_denial_gives_a_refusal_with_the_reason_and_no_licence(world):
    app = _submit(world)
    task = _to_decision(world, app)
    applications.complete_task(task, actor=world["users"]["b"], decision="deny", data={"opinion": "经营场所面积不足"})
    _settle(app)
    assert app.status == Application.Status.DENIED and app.licence is None
    texts = "".join(_texts(results.result_bytes(app)))
    assert "不予行政许可决定书" in texts and "经营场所面积不足" in texts
    assert "第三十八条第二款" in texts and "行政复议" in texts
    assert f"不许字〔{datetime.date.today().year}〕{app.pk}号" in texts
    assert _signature_status(results.result_bytes(app)).valid
    assert not Licence.objects.exists()


def test_rejection_gives_a_not_accepted_decision(world):
    app = _submit(world)
    applications.complete_task(
        _open(app), actor=world["users"]["a"], decision="reject", data={"opinion": "不属于本机关职权范围"}
    )
    _settle(app)
    assert app.status == Application.Status.REJECTED
    texts = "".join(_texts(results.result_bytes(app)))
    assert "不予受理决定书" in texts and "不属于本机关职权范围" in texts and "第三十二条" in texts


def test_a_non_licensing_item_gets_a_result_notice(world):
    item = world["item"]
    item.type = "public_service"
    item.produces_licence_type = None
    item.save(update_fields=["type", "produces_licence_type"])
    app = _submit(world)
    applications.complete_task(_to_decision(world, app), actor=world["users"]["b"], decision="approve")
    _settle(app)
    texts = "".join(_texts(results.result_bytes(app)))
    assert "办理结果通知书" in texts and "现予办结" in texts and "准予行政许可" not in texts


def test_an_unverified_applicant_cannot_be_approved_for_a_licence(world):
    app = _submit(world, user="citizen2")  # no verified ID number
    task = _to_decision(world, app)
    with pytest.raises(ValidationError) as info:
        applications.complete_task(
            task, actor=world["users"]["b"], decision="approve", data={"licence": {"premises": "某地"}}
        )
    assert "实名认证" in " ".join(info.value.messages)
    _settle(app)
    assert app.status == Application.Status.IN_PROGRESS
    # Another way out stays open: the official may deny.
    applications.complete_task(task, actor=world["users"]["b"], decision="deny", data={"opinion": "无法核验身份"})
    _settle(app)
    assert app.status == Application.Status.DENIED


def test_a_department_that_may_not_issue_the_licence_cannot_approve(world):
    licence_type = world["licence_type"]
    licence_type.department = world["orgs"]["ga"]
    licence_type.issuer_kind = "GA"  # 市场监管 is neither its competent department nor of its issuing kind
    licence_type.save(update_fields=["department", "issuer_kind"])
    app = _submit(world)
    task = _to_decision(world, app)
    with pytest.raises(ValidationError) as info:
        applications.complete_task(
            task, actor=world["users"]["b"], decision="approve", data={"licence": {"premises": "某地"}}
        )
    assert "不是该证照的签发机构" in " ".join(info.value.messages)
    _settle(app)
    assert app.status == Application.Status.IN_PROGRESS and not Licence.objects.exists()


def test_the_done_notice_links_the_result_and_goes_by_sms(world):
    app = _submit(world)
    applications.complete_task(_open(app), actor=world["users"]["a"], decision="reject", data={"opinion": "材料不全"})
    notes = Notification.objects.filter(user=world["users"]["citizen"], template="services.application.completed")
    assert notes.count() == 1 and notes.get().link == f"/services/my/{app.number}/#result"
    sms = OutboxEvent.objects.filter(event_type="kernel.notification.requested").order_by("-id").first()
    assert sms is not None and sms.payload["channels"] == ["sms"] and sms.payload["template"] == notes.get().template


def test_result_download_is_for_the_applicant_and_the_department_only(world, client):
    app = _submit(world)
    url = f"/services/my/{app.number}/result.pdf"
    client.force_login(world["users"]["citizen"])
    assert client.get(url).status_code == 404  # not closed yet: no result
    applications.complete_task(_open(app), actor=world["users"]["a"], decision="reject", data={"opinion": "材料不全"})
    drain_outbox()

    mine = client.get(url)
    assert mine.status_code == 200 and mine["Content-Type"] == "application/pdf"
    assert mine.content.startswith(b"%PDF-")
    assert mine["Cache-Control"] == "no-store"
    read = AuditRecord.objects.filter(action="services.result.read").latest("seq")
    assert json.loads(read.detail_json)["as"] == "applicant" and read.target_id == str(app.pk)

    with CaptureQueriesContext(connection) as queries:
        page = client.get(f"/services/my/{app.number}/")
    assert url in page.content.decode()
    # The tracking page tells that the document is there without reading the sealed PDF itself.
    assert not any('"result_pdf" FROM' in query["sql"] for query in queries.captured_queries)

    for other in ("citizen2", "other"):  # another citizen, another department's official
        client.force_login(world["users"][other])
        assert client.get(url).status_code == 404, other
    client.force_login(world["users"]["b"])  # an official of the department
    assert client.get(url).status_code == 200
    read = AuditRecord.objects.filter(action="services.result.read").latest("seq")
    assert json.loads(read.detail_json)["as"] == "department"
    client.logout()
    assert client.get(url).status_code == 302  # login first


def test_the_decision_page_prefills_licence_items_and_approves_with_them(world, client):
    app = _submit(world)
    task = _to_decision(world, app)
    client.force_login(world["users"]["b"])
    page = client.get(f"/workbench/services/tasks/{task.pk}/").content.decode()
    assert 'name="licence.premises"' in page and 'name="licence.purpose"' in page and 'value="自用"' in page
    action = f"/workbench/services/tasks/{task.pk}/action/"
    refused = client.post(action, {"decision": "approve", "opinion": ""}, follow=True)
    assert "经营场所" in refused.content.decode()
    _settle(app)
    assert app.status == Application.Status.IN_PROGRESS
    client.post(action, {"decision": "approve", "licence.premises": "历下区泉城路2号", "licence.remark": "首次"})
    _settle(app)
    assert app.status == Application.Status.APPROVED
    assert licence_data(app.licence)["premises"] == "历下区泉城路2号" and licence_data(app.licence)["remark"] == "首次"


def test_api_completes_an_approval_with_licence_items(world, client):
    app = _submit(world)
    task = _to_decision(world, app)
    client.force_login(world["users"]["b"])
    url = f"{API}/tasks/{task.pk}/complete"
    refused = client.post(url, {"decision": "approve"}, content_type="application/json")
    assert refused.status_code == 400 and refused["Content-Type"].startswith("application/problem+json")
    assert refused.json()["errors"][0]["loc"] == ["licence"] and "经营场所" in refused.json()["detail"]
    done = client.post(
        url, {"decision": "approve", "licence": {"premises": "历下区泉城路3号"}}, content_type="application/json"
    )
    assert done.status_code == 200 and done.json()["status"] == "approved"


# --- the demo catalogue ---------------------------------------------------------------------------------------


@pytest.fixture
def demo(lixia, settings):
    """The demo province's departments and catalogue (licence types, items, implementations)."""
    from dgov.kernel.services.organizations import generate_demo_organizations
    from dgov.services import demo as services_demo

    orgs = {org.code: org for org in generate_demo_organizations("370000", actor="system:test")}
    settings.DEMO_PROVINCE_CODE = "370000"
    services_demo.seed(province_code="370000")
    return orgs


def test_demo_marriage_registration_issues_the_marriage_certificate(demo, lixia, django_user_model):
    from dgov.services.models import ServiceItem

    item = ServiceItem.objects.get(basic_code="000113001000")  # 内地居民婚姻登记 → MZ:001 结婚证
    bride = django_user_model.objects.create_user(username="bride", password="x", kind="person", display_name="李红")
    bride.id_number = make_resident_id("370102", datetime.date(1995, 3, 8), 246)
    bride.id_number_digest = blind_index(bride.id_number, purpose="resident_id")
    bride.real_name_level = 2
    bride.save()
    spouse_id = make_resident_id("370102", datetime.date(1993, 7, 1), 135)
    form = {"spouse_name": "张强", "spouse_id_number": spouse_id, "appointment_on": datetime.date.today().isoformat()}
    app = applications.submit(item, applicant=bride, data=form, actor=bride, division=lixia)
    department = app.department
    assert department.kind == "MZ" and department.division.code == "370102"
    official = django_user_model.objects.create_user(
        username="mz-official", password="x", kind="official", department=department
    )
    for _step in range(4):
        task = app.tasks.filter(status__in=applications.LIVE).first()
        if task is None:
            break
        decision = {"accept": "accept", "decide": "approve"}.get(task.spec_name, "pass")
        applications.complete_task(task, actor=official, decision=decision)
    _settle(app)
    assert app.status == Application.Status.APPROVED
    licence = app.licence
    assert licence.licence_type == item.produces_licence_type and licence.issuer == department
    assert licence_data(licence)["spouse_name"] == "张强"
    assert licence_data(licence)["registered_on"] == datetime.date.today().isoformat()
    assert verification.verify(current_credential(licence).jws).verdict == verification.Verdict.VALID
    assert _signature_status(results.result_bytes(app)).valid
