"""One-window acceptance (一窗受理): walk-in applications, scans, following online, 补正 and pickup at the window."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from dgov.kernel.models import AuditRecord
from dgov.kernel.validators import make_resident_id, make_uscc
from dgov.licenses.services import holder_index
from dgov.services import applications, materials, window
from dgov.services.models import Application, ApplicationEvent, ApplicationMaterial, GuideMaterial
from dgov.web import navigation

from .process_helpers import GOOD, make_world

pytestmark = pytest.mark.django_db

API = "/api/v1/services/applications"
ID_NUMBER = make_resident_id("370102", datetime.date(1990, 5, 17), 123)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def world(django_user_model):
    """The process world plus guide materials: a required scan, an e-licence one and a shared-data one."""
    made = make_world(django_user_model, prefix="win")
    item = made["item"]
    made["scan"] = GuideMaterial.objects.create(item=item, position=1, name="申请书", kind=GuideMaterial.Kind.FILE)
    made["licence"] = GuideMaterial.objects.create(
        item=item, position=2, name="营业执照", kind=GuideMaterial.Kind.LICENCE, required=False
    )
    made["data"] = GuideMaterial.objects.create(
        item=item,
        position=3,
        name="居民身份证",
        kind=GuideMaterial.Kind.DATA,
        registry_code="population.person",
        source="人口库",
    )
    # The window official is of another department (公安) than the competent one (市场监管): 综合窗口.
    made["clerk"] = made["users"]["other"]
    return made


def _verify(user, number=ID_NUMBER):
    """Make ``user`` a real-name verified (level 2) person with this ID number."""
    user.id_number_digest = holder_index("person", number)
    user.real_name_level = 2
    user.save(update_fields=["id_number_digest", "real_name_level"])
    return user


def _accept(world, **overrides):
    """Accept a walk-in application through the service with a scanned PDF."""
    kwargs = {
        "actor": world["clerk"],
        "holder_kind": "person",
        "holder_name": "王小明",
        "id_number": ID_NUMBER,
        "data": dict(GOOD),
        "files": [window.Scan(world["scan"].pk, "申请书.pdf", "application/pdf", PDF)],
        "delivery": Application.Delivery.WINDOW,
    }
    kwargs.update(overrides)
    return window.accept_walk_in(world["item"], **kwargs)


def _post_accept(client, world, *, number=ID_NUMBER, upload=None, **extra):
    """POST the acceptance page (multipart) as the window official."""
    client.force_login(world["clerk"])
    data = {
        "holder_kind": "person",
        "holder_name": "王小明",
        "holder_number": number,
        "form-name": "王小明",
        "form-age": "30",
        "form-purpose": "自用",
        "delivery": "window",
        f"material_{world['scan'].pk}": upload or SimpleUploadedFile("申请书.pdf", PDF, content_type="application/pdf"),
    }
    data.update(extra)
    return client.post(f"/workbench/services/window/items/{world['item'].basic_code}/", data)


def _nothing_stored():
    """No application, material, event or acceptance audit was written."""
    return (
        not Application.objects.exists()
        and not ApplicationMaterial.objects.exists()
        and not ApplicationEvent.objects.exists()
        and not AuditRecord.objects.filter(action="services.window.accept").exists()
    )


def _visits(app, reason=None):
    """The application's in-person visits (跑动次数), optionally of one reason."""
    events = app.events.filter(kind=ApplicationEvent.Kind.VISIT)
    return events.filter(detail__reason=reason).count() if reason else events.count()


def _close(app, official, *, first="accept"):
    """Run the application's official tasks to the end (受理 → 审查 → 准予)."""
    for _ in range(10):
        task = app.tasks.filter(status__in=applications.LIVE).exclude(lane="applicant").first()
        if task is None:
            break
        decision = {"accept": first, "decide": "approve"}.get(task.spec_name, "pass")
        opinion = "请补充材料" if decision == "correct" else ""
        applications.complete_task(task, actor=official, decision=decision, data={"opinion": opinion})
        if decision == "correct":
            break
    app.refresh_from_db()
    return app


# --- acceptance ---------------------------------------------------------------------------------------------


def test_accept_page_happy_path(client, world):
    client.force_login(world["clerk"])
    home = client.get("/workbench/services/window/?q=食品")
    assert home.status_code == 200 and world["item"].name in home.content.decode()
    form = client.get(f"/workbench/services/window/items/{world['item'].basic_code}/")
    html = form.content.decode()
    assert form.status_code == 200
    assert f'name="material_{world["scan"].pk}"' in html and 'name="form-name"' in html
    assert "免提交" in html and "可用电子证照" in html and 'enctype="multipart/form-data"' in html

    response = _post_accept(client, world)
    assert response.status_code == 302, response.content.decode()[:2000]
    app = Application.objects.get()
    assert response["Location"] == f"/workbench/services/window/applications/{app.number}/receipt/"
    assert app.channel == Application.Channel.WINDOW and app.window_official == world["clerk"]
    assert app.department == world["orgs"]["scjg"]  # the competent department, not the window's
    assert app.applicant is None and app.holder_kind == "person"
    assert app.holder_id == holder_index("person", ID_NUMBER) and app.holder_number == ID_NUMBER
    assert app.delivery == Application.Delivery.WINDOW
    assert applications.form_data(app) == {"name": "王小明", "age": 30, "purpose": "自用"}

    scan = app.materials.get(source=ApplicationMaterial.Source.SCAN)
    assert scan.material == world["scan"] and scan.content_type == "application/pdf" and scan.size == len(PDF)
    assert PDF not in bytes(scan.sealed_content) and materials.file_bytes(scan) == PDF
    assert app.materials.filter(source=ApplicationMaterial.Source.DATA, material=world["data"]).exists()
    assert _visits(app, "submit") == 1
    audit = AuditRecord.objects.get(action="services.window.accept", target_id=str(app.pk))
    assert ID_NUMBER not in str(audit.detail) and audit.detail["department"] == world["orgs"]["scjg"].code

    receipt = client.get(response["Location"])
    text = receipt.content.decode()
    assert receipt.status_code == 200 and app.number in text and "/services/my/" in text
    assert ID_NUMBER not in text and ID_NUMBER[:6] in text  # masked: 370102********xxxx
    assert app.promised_due.strftime("%Y-%m-%d") in text
    listing = client.get("/workbench/services/window/applications/")
    assert app.number in listing.content.decode() and ID_NUMBER not in listing.content.decode()


def test_competent_department_gets_the_task(world):
    app = _accept(world)
    [task] = app.tasks.all()
    assert task.spec_name == "accept" and task.department == world["orgs"]["scjg"]
    assert list(applications.tasks_for(world["users"]["a"])) == [task]
    assert not applications.tasks_for(world["clerk"]).exists()  # the window's department does not get it


def test_bad_id_number_is_a_field_error_and_nothing_is_stored(client, world):
    bad = ID_NUMBER[:-1] + ("0" if ID_NUMBER[-1] != "0" else "1")  # wrong GB 11643 check character
    response = _post_accept(client, world, number=bad, **{"form-name": "王"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'class="field has-error" data-testid="field-holder_number"' in html and "校验码错误" in html
    assert bad not in html  # the typed number is not sent back
    assert 'data-testid="field-form-name"' in html and "至少 2 个字符" in html
    assert _nothing_stored()

    with pytest.raises(ValidationError) as caught:
        _accept(world, id_number=bad, data={"name": "王", "age": "x"})
    assert {"id_number", "name", "age"} <= set(caught.value.message_dict)
    assert _nothing_stored()


def test_wrong_file_type_is_an_error_and_nothing_is_stored(client, world):
    fake = SimpleUploadedFile("申请书.pdf", b"GIF89a not a pdf", content_type="application/pdf")
    response = _post_accept(client, world, upload=fake)
    assert response.status_code == 400 and "文件内容与类型不符" in response.content.decode()
    assert _nothing_stored()

    with pytest.raises(ValidationError) as caught:
        _accept(world, files=[window.Scan(world["scan"].pk, "a.txt", "text/plain", b"hello")])
    assert list(caught.value.message_dict) == [f"material_{world['scan'].pk}"]
    with pytest.raises(ValidationError) as caught:
        _accept(world, files=[])  # the required scan is missing
    assert f"material_{world['scan'].pk}" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:  # a material of another item / a data material
        _accept(world, files=[window.Scan(world["data"].pk, "a.pdf", "application/pdf", PDF)])
    assert "files" in caught.value.message_dict
    assert _nothing_stored()


def test_enterprise_holder_by_uscc(world):
    uscc = make_uscc("9", "1", "370102", serial=77)
    with pytest.raises(ValidationError) as caught:
        _accept(world, holder_kind="enterprise", holder_name="某某公司", uscc=uscc[:-1] + "I")
    assert "uscc" in caught.value.message_dict
    app = _accept(world, holder_kind="enterprise", holder_name="某某公司", id_number="", uscc=uscc)
    assert app.holder_kind == "enterprise" and app.holder_id == holder_index("enterprise", uscc)


def test_verified_account_is_linked_as_applicant(world):
    citizen = _verify(world["users"]["citizen"])
    app = _accept(world)
    assert app.applicant == citizen
    _verify(world["users"]["citizen2"])  # two accounts with one ID number: not linked, found by the index
    other = _accept(world)
    assert other.applicant is None
    assert set(applications.applications_of(citizen).values_list("number", flat=True)) == {app.number, other.number}


# --- following online ---------------------------------------------------------------------------------------


def test_walk_in_is_followed_online_by_the_verified_holder(client, world):
    app = _accept(world)
    assert app.applicant is None
    citizen = world["users"]["citizen"]
    client.force_login(citizen)
    assert app.number not in client.get("/services/my/").content.decode()  # not verified yet
    assert client.get(f"/services/my/{app.number}/").status_code == 404
    _verify(citizen)
    assert app.number in client.get("/services/my/").content.decode()
    page = client.get(f"/services/my/{app.number}/")
    assert page.status_code == 200 and "申请书" in page.content.decode()
    assert [a["number"] for a in client.get(API).json()] == [app.number]
    assert client.get(f"{API}/{app.number}").json()["channel"] == "window"

    scan = app.materials.get(source="scan")
    own = client.get(f"/services/my/{app.number}/materials/{scan.pk}/")
    assert own.status_code == 200 and own.content == PDF

    other = world["users"]["citizen2"]
    _verify(other, make_resident_id("370102", datetime.date(1985, 1, 2), 456))
    client.force_login(other)
    assert app.number not in client.get("/services/my/").content.decode()
    assert client.get(f"/services/my/{app.number}/").status_code == 404
    assert client.get(f"{API}/{app.number}").status_code == 404
    assert client.get(API).json() == []
    assert client.get(f"/services/my/{app.number}/materials/{scan.pk}/").status_code == 404


def test_holder_sees_the_correction_form_and_may_submit_it(client, world):
    app = _close(_accept(world), world["users"]["a"], first="correct")
    assert app.status == Application.Status.CORRECTION
    citizen = _verify(world["users"]["citizen"])
    client.force_login(citizen)
    page = client.get(f"/services/my/{app.number}/")
    assert 'data-testid="correction-form"' in page.content.decode()
    done = client.post(f"/services/my/{app.number}/", GOOD)
    assert done.status_code == 302
    app.refresh_from_db()
    assert app.status == Application.Status.SUBMITTED
    # An official of the department sees the application (API) but gets no 补正 form anywhere.
    assert not applications.may_correct(app, world["users"]["a"])


# --- officials: materials on the task page, downloads -------------------------------------------------------


def test_task_page_lists_materials_and_downloads_are_scoped(client, world):
    app = _accept(world)
    scan = app.materials.get(source="scan")
    task = app.tasks.get()
    url = f"/workbench/services/applications/{app.number}/materials/{scan.pk}/"

    client.force_login(world["users"]["a"])
    page = client.get(f"/workbench/services/tasks/{task.pk}/").content.decode()
    assert "申请书" in page and "窗口扫描" in page and url in page and "共享数据（人口基础库）" in page
    assert "population.person" not in page  # the library's name, not its registry code
    download = client.get(url)
    assert download.status_code == 200 and download.content == PDF
    assert download["Content-Type"] == "application/pdf" and download["Content-Disposition"].startswith("attachment")
    assert AuditRecord.objects.filter(action="services.material.read", target_id=str(app.pk)).count() == 1

    client.force_login(world["clerk"])  # another department (even the one whose window took it): 404
    assert client.get(url).status_code == 404
    client.force_login(world["users"]["boss"])
    assert client.get(url).status_code == 404
    client.force_login(world["users"]["citizen"])
    assert client.get(url).status_code == 403
    data_row = app.materials.get(source="data")
    client.force_login(world["users"]["a"])
    assert client.get(f"/workbench/services/applications/{app.number}/materials/{data_row.pk}/").status_code == 404
    assert AuditRecord.objects.filter(action="services.material.read").count() == 1
    with pytest.raises(PermissionDenied):
        materials.read_file(scan, actor=world["clerk"])


# --- who may use the window pages ---------------------------------------------------------------------------


def test_window_pages_are_for_officials_only(client, world):
    app = _accept(world)
    code = world["item"].basic_code
    urls = [
        "/workbench/services/window/",
        f"/workbench/services/window/items/{code}/",
        "/workbench/services/window/applications/",
        f"/workbench/services/window/applications/{app.number}/receipt/",
        f"/workbench/services/window/applications/{app.number}/correction/",
    ]
    for url in urls:
        assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(world["users"]["citizen"])
    for url in urls:
        assert client.get(url).status_code == 403, url
    assert client.post(f"/workbench/services/window/applications/{app.number}/hand-over/").status_code == 403
    with pytest.raises(PermissionDenied):
        _accept(world, actor=world["users"]["citizen"])
    # Another department's window official: the application is not in their window scope.
    client.force_login(world["users"]["boss"])
    assert client.get(f"/workbench/services/window/applications/{app.number}/receipt/").status_code == 404
    assert client.get("/workbench/services/window/applications/?range=recent").status_code == 200
    assert app.number not in client.get("/workbench/services/window/applications/?range=recent").content.decode()

    # The menu entry shows for window staff only.
    def keys(user):
        return [link.key for link in navigation.links("workbench", user=user)]

    assert "service_window" in keys(world["clerk"]) and "service_window" not in keys(world["users"]["citizen"])


# --- 补正 at the window, visits, pickup ---------------------------------------------------------------------


def test_correction_visits_and_hand_over_only_after_closure(client, world):
    clerk, official = world["clerk"], world["users"]["a"]
    app = _accept(world)
    with pytest.raises(ValidationError):
        window.hand_over_result(app, actor=clerk)  # not closed yet
    app = _close(app, official, first="correct")
    assert app.status == Application.Status.CORRECTION

    client.force_login(clerk)
    url = f"/workbench/services/window/applications/{app.number}/correction/"
    assert 'data-testid="window-correction-form"' in client.get(url).content.decode()
    wrong = make_resident_id("370102", datetime.date(1985, 1, 2), 456)
    refused = client.post(url, {"holder_number": wrong, "form-name": "王小明", "form-age": "31"})
    assert refused.status_code == 400 and "证件号码与该办件的申请人不一致" in refused.content.decode()
    assert _visits(app) == 1
    extra = SimpleUploadedFile("补充.pdf", PDF, content_type="application/pdf")
    done = client.post(
        url,
        {
            "holder_number": ID_NUMBER,
            "form-name": "王小明",
            "form-age": "31",
            "form-purpose": "经营",
            f"material_{world['scan'].pk}": extra,
        },
    )
    assert done.status_code == 302
    app.refresh_from_db()
    assert app.status == Application.Status.SUBMITTED and applications.form_data(app)["age"] == 31
    assert _visits(app) == 2 and _visits(app, "correction") == 1
    assert app.materials.filter(source="scan").count() == 2
    assert app.events.filter(kind="correction_submitted", detail__on_behalf=True).exists()

    app = _close(app, official)
    assert app.status == Application.Status.APPROVED
    listing = client.get("/workbench/services/window/applications/").content.decode()
    assert f"/workbench/services/window/applications/{app.number}/hand-over/" in listing
    handed = client.post(f"/workbench/services/window/applications/{app.number}/hand-over/")
    assert handed.status_code == 302
    assert _visits(app) == 3 and _visits(app, "pickup") == 1 and window.handed_over(app)
    assert AuditRecord.objects.filter(action="services.window.hand_over", target_id=str(app.pk)).count() == 1
    with pytest.raises(ValidationError):
        window.hand_over_result(app, actor=clerk)  # once only
    assert f"/{app.number}/hand-over/" not in client.get("/workbench/services/window/applications/").content.decode()
    with pytest.raises(PermissionDenied):  # a window of a department with nothing to do with it
        window.hand_over_result(app, actor=world["users"]["boss"])


def test_hand_over_needs_window_delivery(world):
    app = _close(_accept(world, delivery=Application.Delivery.ELECTRONIC), world["users"]["a"])
    assert app.is_closed
    with pytest.raises(ValidationError) as caught:
        window.hand_over_result(app, actor=world["clerk"])
    assert "delivery" in caught.value.message_dict
    assert _visits(app) == 1


def test_window_pages_in_english(client, world):
    client.force_login(world["clerk"])
    page = client.get(f"/workbench/services/window/items/{world['item'].basic_code}/", HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    assert "Applicant type" in text and "Accept and print the receipt" in text and "受理并出具回执" not in text


def test_window_list_queries_do_not_grow_with_rows(client, world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(world["clerk"])
    _accept(world)
    client.get("/workbench/services/window/applications/")  # warm per-process caches (menu, permissions)
    with CaptureQueriesContext(connection) as one:
        assert client.get("/workbench/services/window/applications/").status_code == 200
    for _ in range(3):
        _accept(world)
    with CaptureQueriesContext(connection) as four:
        page = client.get("/workbench/services/window/applications/")
    assert page.content.decode().count('data-testid="window-row-') == 4
    assert len(four) == len(one), [q["sql"] for q in four.captured_queries]


def test_accept_page_offers_current_divisions_below_the_window(client, world):
    from dgov.kernel.models import Division

    province = world["clerk"].department.division
    Division.objects.create(code="370100", name="济南市", full_name="山东省济南市", level=2, parent=province)
    Division.objects.create(
        code="371200", name="莱芜市", full_name="山东省莱芜市", level=2, parent=province, is_current=False
    )
    client.force_login(world["clerk"])
    html = client.get(f"/workbench/services/window/items/{world['item'].basic_code}/").content.decode()
    assert 'value="370000"' in html and 'value="370100"' in html
    assert 'value="371200"' not in html  # abolished (2019): not offered
