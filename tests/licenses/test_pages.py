"""Workbench pages of e-licences: catalogue, issue form, search in scope, masked detail, actions, bulk upload."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from dgov.kernel.models import AuditRecord
from dgov.licenses import catalogue, services
from dgov.licenses.models import Licence, LicenceType

from .conftest import enterprise_id, person_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def marriage(demo_types, orgs):
    """A marriage certificate issued by the 济南 civil-affairs bureau."""
    return services.issue(
        demo_types["结婚证"],
        issuer=orgs["mz_city"],
        holder_name="张三丰",
        holder_id=person_id(11),
        data={"spouse_name": "李四娘", "spouse_id_number": person_id(22), "registered_on": "2026-05-20"},
        actor="system:test",
    )


def test_pages_are_for_officials(client, people_users, demo_types):
    assert client.get("/workbench/licences/").status_code == 302  # to the login page
    client.force_login(people_users["citizen"])
    for path in ("/workbench/licences/", "/workbench/licences/types/", "/workbench/licences/issue/"):
        assert client.get(path).status_code == 403


def test_catalogue_pages(client, people_users, demo_types):
    client.force_login(people_users["mz_city"])
    page = client.get("/workbench/licences/types/").content.decode()
    assert 'data-testid="licence-types"' in page and "营业执照" in page and "结婚证" in page
    assert "导入证照目录" not in page  # not a catalogue manager
    code = demo_types["食品经营许可证"].code
    page = client.get(f"/workbench/licences/types/{code}/").content.decode()
    assert 'data-testid="type-items"' in page and "主体业态" in page and "餐饮服务经营者" in page
    assert 'data-testid="type-layout"' in page and "A4" in page
    template = client.get(f"/workbench/licences/types/{code}/template.csv")
    assert template["Content-Type"].startswith("text/csv") and "持证主体名称" in template.content.decode("utf-8-sig")
    assert client.get("/workbench/licences/types/NOPE/").status_code == 404
    # The provincial data administration loads a catalogue file from the page.
    client.force_login(people_users["dsj"])
    assert "导入证照目录" in client.get("/workbench/licences/types/").content.decode()
    upload = SimpleUploadedFile("t.yaml", b"- {serial: '009', department: MZ, name: X, holder_kind: robot}\n")
    response = client.post("/workbench/licences/types/load/", {"file": upload})
    assert response.status_code == 422 and "holder_kind" in response.content.decode()
    good = (
        "- {serial: '009', department: MZ, name: 收养登记证, holder_kind: person, "
        "items: [{name: child, label: 被收养人, type: string}]}\n"
    )
    response = client.post("/workbench/licences/types/load/", {"file": SimpleUploadedFile("t.yaml", good.encode())})
    assert response.status_code == 302 and LicenceType.objects.filter(name="收养登记证").exists()


def test_issue_form_renders_items_and_issues(client, people_users, demo_types, orgs):
    client.force_login(people_users["mz_city"])
    page = client.get("/workbench/licences/issue/").content.decode()
    assert 'data-testid="issuable-types"' in page and "结婚证" in page and "营业执照" not in page
    code = demo_types["结婚证"].code
    page = client.get(f"/workbench/licences/issue/?type={code}").content.decode()
    assert 'name="item_spouse_name"' in page and 'name="item_registered_on"' in page and 'type="date"' in page
    bad = {"type": code, "holder_name": "张三", "holder_id": "370102199001011238", "item_registered_on": "2026-05-20"}
    response = client.post("/workbench/licences/issue/", bad)
    assert response.status_code == 422 and not Licence.objects.exists()
    body = response.content.decode()
    assert "校验码" in body
    good = {
        "type": code,
        "holder_name": "张三",
        "holder_id": person_id(11),
        "item_spouse_name": "李四",
        "item_spouse_id_number": person_id(22),
        "item_registered_on": "2026-05-20",
    }
    response = client.post("/workbench/licences/issue/", good)
    licence = Licence.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/l/{licence.identifier}/")
    assert licence.issuer == orgs["mz_city"] and licence.source == "page" and licence.issued_by == "l-mz_city"
    # A type the department may not issue: refused and audited.
    other = demo_types["营业执照"].code
    assert client.get(f"/workbench/licences/issue/?type={other}").status_code == 403
    assert client.post("/workbench/licences/issue/", {**good, "type": other}).status_code == 403
    assert AuditRecord.objects.filter(action="licenses.licence.issue", outcome="denied").exists()


def test_search_is_scoped_to_the_department(client, people_users, marriage, demo_types, orgs):
    services.issue(
        demo_types["社会保障卡"],
        issuer=orgs["rs"],
        holder_name="王五",
        holder_id=person_id(33),
        data={"card_no": "J1", "issued_in": "山东省"},
        actor="system:test",
    )
    client.force_login(people_users["mz_city"])
    page = client.get("/workbench/licences/").content.decode()
    assert marriage.identifier in page and "王*" not in page and "张**" in page and "张三丰" not in page
    page = client.get("/workbench/licences/", {"number": marriage.number}).content.decode()
    assert marriage.identifier in page
    page = client.get("/workbench/licences/", {"status": "revoked"}).content.decode()
    assert 'data-testid="licences-empty"' in page
    # Holder lookup by ID number, by POST.
    page = client.post("/workbench/licences/", {"holder_id": person_id(11)}).content.decode()
    assert marriage.identifier in page
    page = client.post("/workbench/licences/", {"holder_id": person_id(33)}).content.decode()
    assert "王*" not in page and 'data-testid="licences-empty"' in page  # another department's licence
    # The provincial data administration sees everything.
    client.force_login(people_users["dsj"])
    page = client.get("/workbench/licences/").content.decode()
    assert marriage.identifier in page and "王*" in page


def test_detail_is_masked_audited_and_scoped(client, people_users, marriage):
    client.force_login(people_users["mz_city"])
    page = client.get(f"/workbench/licences/l/{marriage.identifier}/").content.decode()
    assert "张**" in page and person_id(11) not in page and "370102********" in page
    assert "李**" in page and person_id(22) not in page  # personal items masked
    assert 'data-testid="licence-events"' in page and 'data-testid="licence-credentials"' in page
    assert 'data-testid="action-suspend"' in page
    view = AuditRecord.objects.get(action="licenses.licence.view", outcome="success")
    assert view.detail["identifier"] == marriage.identifier
    # Another department: 403 and the attempt audited.
    client.force_login(people_users["mz"])
    assert client.get(f"/workbench/licences/l/{marriage.identifier}/").status_code == 403
    assert AuditRecord.objects.filter(action="licenses.licence.view", outcome="denied").count() == 1
    assert client.get("/workbench/licences/l/1.2.156.nope/").status_code == 404


def test_credential_download(client, people_users, marriage):
    client.force_login(people_users["mz_city"])
    response = client.get(f"/workbench/licences/l/{marriage.identifier}/credential.jwt")
    assert response.status_code == 200 and response["Content-Type"] == "application/vc+jwt"
    assert response["Content-Disposition"].endswith('-v1.jwt"')
    assert response.content.decode() == services.current_credential(marriage).jws
    assert AuditRecord.objects.filter(action="licenses.credential.download").count() == 1
    assert client.get(f"/workbench/licences/l/{marriage.identifier}/credential.jwt?version=9").status_code == 404
    client.force_login(people_users["ga"])
    assert client.get(f"/workbench/licences/l/{marriage.identifier}/credential.jwt").status_code == 403


def test_actions_with_reasons(client, people_users, marriage):
    client.force_login(people_users["mz_city"])
    base = f"/workbench/licences/l/{marriage.identifier}"
    page = client.get(f"{base}/vary/").content.decode()
    assert 'name="item_spouse_name"' in page and 'value="李四娘"' in page
    response = client.post(
        f"{base}/vary/",
        {
            "item_spouse_name": "李四娘",
            "item_spouse_id_number": person_id(22),
            "item_registered_on": "2026-05-20",
            "item_remark": "补领",
            "reason": "补领",
        },
    )
    assert response.status_code == 302
    marriage.refresh_from_db()
    assert marriage.version == 2 and services.licence_data(marriage)["remark"] == "补领"
    assert client.post(f"{base}/suspend/", {"reason": ""}).status_code == 422  # a reason is required
    assert client.post(f"{base}/suspend/", {"reason": "核查"}).status_code == 302
    marriage.refresh_from_db()
    assert marriage.status == "suspended"
    assert client.post(f"{base}/suspend/", {"reason": "再次"}).status_code == 422
    assert client.post(f"{base}/resume/", {"reason": ""}).status_code == 302
    assert client.post(f"{base}/revoke/", {"reason": "离婚"}).status_code == 302
    marriage.refresh_from_db()
    assert marriage.status == "revoked"
    assert client.get(f"{base}/explode/").status_code == 404
    # The provincial data administration sees the licence but may not change it (audited).
    client.force_login(people_users["dsj"])
    page = client.get(f"{base}/").content.decode()
    assert 'data-testid="action-suspend"' not in page
    assert client.post(f"{base}/revoke/", {"reason": "x"}).status_code == 403
    assert AuditRecord.objects.filter(action="licenses.licence.revoke", outcome="denied").exists()


def test_bulk_upload_reports_every_bad_row(client, people_users, demo_types):
    client.force_login(people_users["scjg_lixia"])
    page = client.get("/workbench/licences/bulk/").content.decode()
    assert 'data-testid="bulk-form"' in page and "食品经营许可证" in page
    code = demo_types["食品经营许可证"].code
    text = (
        "持证主体名称,持证主体证件号码,法定代表人（负责人）,经营场所,主体业态,经营项目\n"
        f"济南甲餐饮有限公司,{enterprise_id(1)},张三,济南市历下区1号,catering,热食类\n"
        f"济南乙商贸有限公司,{enterprise_id(2)},李四,济南市历下区2号,wholesale,预包装食品\n"
    )
    upload = SimpleUploadedFile("food.csv", text.encode("utf-8"), content_type="text/csv")
    response = client.post("/workbench/licences/bulk/", {"type": code, "file": upload})
    assert response.status_code == 422
    body = response.content.decode()
    assert 'data-testid="bulk-errors"' in body and "主体业态" in body and "<td>3</td>" in body
    assert not Licence.objects.exists()
    upload = SimpleUploadedFile("food.csv", text.replace("wholesale", "retail").encode(), content_type="text/csv")
    response = client.post("/workbench/licences/bulk/", {"type": code, "file": upload})
    assert response.status_code == 302 and Licence.objects.count() == 2
    assert Licence.objects.first().source == "import:food.csv"
    # Departments that issue nothing have no bulk page.
    client.force_login(people_users["dsj"])
    assert client.get("/workbench/licences/bulk/").status_code == 403


def test_english_translation(client, people_users, demo_types):
    client.force_login(people_users["mz_city"])
    page = client.get("/workbench/licences/types/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Licence catalogue" in page and "证照目录" not in page


def test_effective_layout_fills_defaults(demo_types):
    layout = catalogue.effective_layout(demo_types["结婚证"])
    assert layout["size"] == "A5" and layout["orientation"] == "landscape" and layout["qr_mm"] == 28
    assert [placed["label"] for placed in layout["items"]][:2] == ["登记日期", "配偶"]
