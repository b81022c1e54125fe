"""Browser journeys of one-stop services (一网通办): online application with pre-fill to the signed result and
the rating, one-window acceptance of a walk-in applicant, and the metrics and supervision pages."""

from __future__ import annotations

import datetime
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ITEM_CODE = "000199201000"
ITEM_NAME = "小食杂店登记"
KINDS = ("GA", "SCJG", "ZWFW", "DSJ", "FGW", "TJ", "ZRZY", "RS", "YJ", "MZ")
SCAN = {"name": "场所证明.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n% e2e scan\n%%EOF\n"}


def _resident_id(serial: int, born: datetime.date) -> str:
    """A valid resident ID number of 历下区 (GB 11643 check character)."""
    from dgov.kernel.validators import make_resident_id

    return make_resident_id("370102", born, serial)


CITIZEN_ID = _resident_id(123, datetime.date(1985, 6, 1))
WALK_IN_ID = _resident_id(457, datetime.date(1979, 3, 8))


def _item_entry() -> dict:
    """A licensing item of 市场监管 for persons: pre-filled from the population library, an uploaded material,
    a 免提交 material and an e-licence as its result."""
    return {
        "code": ITEM_CODE,
        "name": ITEM_NAME,
        "type": "行政许可",
        "department": "SCJG",
        "levels": ["province"],
        "holder_kinds": ["person"],
        "online_depth": 4,
        "legal_limit_days": 20,
        "promised_limit_days": 5,
        "keywords": "食品 小卖部 食杂店 经营许可",
        "summary": "从事食品销售的小食杂店向市场监管部门申请登记。",
        "legal_basis": "《山东省食品小作坊小餐饮和食品摊点管理条例》第二十条",
        "produces_licence": "SCJG:901",
        "form_schema": {
            "type": "object",
            "properties": {
                "operator_name": {"type": "string", "title": "经营者姓名", "x-source": "population.person.name"},
                "address": {"type": "string", "title": "经营者住所", "x-source": "population.person.address"},
                "shop_name": {"type": "string", "title": "店铺名称", "maxLength": 50},
                "premises": {"type": "string", "title": "经营场所", "maxLength": 100},
            },
            "required": ["operator_name", "shop_name", "premises"],
        },
        "materials": [
            {"name": "居民身份证", "kind": "data", "registry": "population.person", "fields": ["name", "id_number"]},
            {"name": "经营场所使用证明", "kind": "file"},
        ],
    }


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    """Issuer keys are cached per process by department id: test databases reuse ids."""
    from dgov.licenses import keys

    keys.clear_cache()
    yield
    keys.clear_cache()


@pytest.fixture
def new_page(browser, live_server):
    """A factory of pages in fresh browser contexts (one person each: own cookies), closed after the test."""
    contexts = []

    def make():
        context = browser.new_context(base_url=live_server.url, locale="zh-CN", viewport={"width": 1280, "height": 860})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def world(province, make_departments, django_user_model, settings, user_password):
    """The libraries with the citizen's person record, a licence type of 市场监管, the item, a verified citizen."""
    from dgov.kernel.fields import blind_index
    from dgov.licenses.models import LicenceType
    from dgov.registry import libraries
    from dgov.registry import services as registry_services
    from dgov.services import catalogue

    settings.DEMO_PROVINCE_CODE = "370000"
    registry_services.clear_caches()
    orgs = make_departments([(k.lower(), f"370000-{k}", f"山东省{k}部门", k, 1, province) for k in KINDS])
    orgs["scjg"].name, orgs["zwfw"].name = "山东省市场监督管理局", "山东省政务服务管理办公室"
    orgs["scjg"].save(update_fields=["name"])
    orgs["zwfw"].save(update_fields=["name"])
    libraries.install_libraries(actor="system:test", province_code="370000")
    registry_services.create_record(
        registry_services.get_registry("population.person"),
        {
            "id_number": CITIZEN_ID,
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
    LicenceType.objects.create(
        code=f"{orgs['scjg'].uscc}901",
        name="食品经营登记证",
        department=orgs["scjg"],
        issuer_kind="SCJG",
        holder_kind="person",
        items=[
            {"name": "shop_name", "label": "店铺名称", "type": "string", "required": True},
            {"name": "premises", "label": "经营场所", "type": "string", "required": True},
            {"name": "business_scope", "label": "经营范围", "type": "string", "required": True},
            {"name": "registered_on", "label": "登记日期", "type": "date", "required": True},
        ],
        validity={"years": 5},
        sharing_type="conditional",
    )
    report = catalogue.load_catalogue({"items": [_item_entry()]}, actor="system:test", province_code="370000")
    assert report.ok, report.to_text()
    citizen = django_user_model.objects.create_user(
        username="wangshiming", password=user_password, kind="person", display_name="王实名"
    )
    citizen.real_name_level = 2
    citizen.id_number = CITIZEN_ID
    citizen.id_number_digest = blind_index(CITIZEN_ID, purpose="resident_id")
    citizen.save()
    return {"orgs": orgs, "citizen": citizen}


def _official(django_user_model, username, department, password, secret, display_name):
    """An official of ``department`` enrolled in TOTP with ``secret``."""
    from dgov.identity import services as identity_services

    user = django_user_model.objects.create_user(
        username=username, password=password, kind="official", display_name=display_name, department=department
    )
    identity_services.provision_totp([user], secret, actor="system:test")
    return user


def _log_in(page, username, password, *, next_url=None):
    """Fill the login form (the page must show it, or it is opened)."""
    if next_url is not None:
        page.goto(next_url)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.locator("form.form").get_by_role("button", name="登录").click()


def _official_log_in(page, official, password, secret, pass_second_factor):
    """An official logs in with password and TOTP and lands on the workbench."""
    _log_in(page, official.username, password, next_url="/login/")
    pass_second_factor(page, secret)
    page.wait_for_url("**/workbench/")


def _run_worker_once() -> None:
    """Deliver the outbox once (the decision document is drawn and signed with pyHanko, which runs its own
    event loop: not in this thread, where Playwright's sync API holds one)."""
    from django.core.management import call_command
    from django.db import connections

    def run():
        try:
            call_command("worker", "--once", "--no-tasks", verbosity=0)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result()


def _open_task(page, number, heading):
    """From the inbox, open the application's current task and check which step it is."""
    inbox = page.get_by_test_id("inbox")
    expect(inbox).to_contain_text(number)
    inbox.get_by_role("link", name=number).click()
    expect(page.locator("h1")).to_contain_text(heading)


def test_online_application_with_prefill_to_signed_result_and_rating(
    page, new_page, world, django_user_model, user_password, totp_secret, pass_second_factor, screenshot_dir
):
    from dgov.services.models import Application, RatingRectification

    # 1. The citizen finds the item by a Chinese search and reads the guide.
    page.goto("/services/")
    page.get_by_label("搜索事项").fill("食杂店 经营")
    page.get_by_test_id("item-search").get_by_role("button", name="搜索").click()
    results = page.get_by_test_id("item-results")
    expect(results).to_contain_text(ITEM_NAME)
    expect(results).to_contain_text("全程网办")
    results.get_by_role("link", name=ITEM_NAME).click()
    expect(page.locator("h1")).to_have_text(ITEM_NAME)
    expect(page.get_by_test_id("materials")).to_contain_text("免提交")
    expect(page.get_by_test_id("item-elements")).to_contain_text("食品经营登记证")

    # 2. 在线办理 asks for a login first, then opens the form with the offer to pre-fill.
    page.get_by_test_id("apply-online").click()
    page.wait_for_url("**/login/**")
    _log_in(page, "wangshiming", user_password)
    page.wait_for_url(f"**/services/items/{ITEM_CODE}/apply/")
    offer = page.get_by_test_id("prefill-offer")
    expect(offer).to_contain_text("人口")
    expect(page.get_by_label("经营者姓名")).to_have_value("")
    offer.get_by_role("button", name="同意授权并自动填写").click()

    # 3. The form comes back with the population library's values, each marked with its source.
    expect(page.get_by_label("经营者姓名")).to_have_value("王实名")
    expect(page.get_by_label("经营者住所")).to_have_value("山东省济南市历下区泉城路1号")
    expect(page.get_by_test_id("source-operator_name")).to_contain_text("来自人口")
    expect(page.get_by_test_id("source-address")).to_contain_text("来自")
    expect(page.get_by_test_id("prefill-offer")).to_have_count(0)
    materials = page.get_by_test_id("apply-materials")
    expect(materials).to_contain_text("免提交（由人口")
    page.get_by_label("店铺名称").fill("王记便民食杂店")
    page.get_by_role("textbox", name="经营场所", exact=True).fill("济南市历下区文化东路8号")
    # Without the required material the form comes back with the error beside it, nothing stored.
    page.get_by_role("button", name="提交申请").click()
    expect(materials.locator(".has-error")).to_contain_text("经营场所使用证明")
    assert not Application.objects.exists()
    expect(page.get_by_label("店铺名称")).to_have_value("王记便民食杂店")
    page.get_by_label("经营场所使用证明").set_input_files(SCAN)
    page.screenshot(path=os.path.join(screenshot_dir, "services-apply-prefilled.png"), full_page=True)
    page.get_by_role("button", name="提交申请").click()

    # 4. The tracking page.
    page.wait_for_url("**/services/my/*/")
    app = Application.objects.get()
    expect(page.locator(".messages")).to_contain_text(app.number)
    status = page.get_by_test_id("application-status")
    expect(status).to_contain_text("待受理")
    expect(status).to_contain_text("山东省市场监督管理局")
    expect(page.locator("body")).to_contain_text("经营场所使用证明")
    tracking_url = page.url

    # 5. An official of 市场监管 logs in (TOTP) and works the task inbox: 受理, 审查, 决定 with the licence items.
    official = _official(django_user_model, "scjg-li", world["orgs"]["scjg"], user_password, totp_secret, "李审批")
    desk = new_page()
    _official_log_in(desk, official, user_password, totp_secret, pass_second_factor)
    desk.locator(".mainnav").get_by_role("link", name="待办任务").click()
    _open_task(desk, app.number, "受理")
    data = desk.get_by_test_id("application-data")
    expect(data).to_contain_text("王实名")
    expect(data).to_contain_text("王记便民食杂店")
    desk.get_by_role("button", name="认领").click()
    expect(desk.locator(".messages")).to_contain_text("已认领")
    desk.get_by_label("办理意见").fill("材料齐全，予以受理")
    desk.get_by_role("button", name="受理", exact=True).click()
    expect(desk.locator(".messages")).to_contain_text("已办理")
    _open_task(desk, app.number, "审查")
    desk.get_by_role("button", name="审查通过").click()
    expect(desk.locator(".messages")).to_contain_text("已办理")
    _open_task(desk, app.number, "决定")
    licence_fields = desk.get_by_test_id("licence-fields")
    expect(licence_fields.get_by_label("店铺名称")).to_have_value("王记便民食杂店")
    expect(licence_fields.get_by_label("登记日期")).not_to_have_value("")
    # 准予 without 经营范围 is refused with the missing item named; nothing is decided.
    desk.get_by_role("button", name="准予", exact=True).click()
    expect(desk.locator(".messages")).to_contain_text("经营范围")
    app.refresh_from_db()
    assert app.status == Application.Status.IN_PROGRESS
    desk.get_by_test_id("licence-fields").get_by_label("经营范围").fill("预包装食品销售")
    desk.get_by_label("办理意见").fill("符合条件，准予登记")
    desk.screenshot(path=os.path.join(screenshot_dir, "services-task-decide.png"), full_page=True)
    desk.get_by_role("button", name="准予", exact=True).click()
    expect(desk.locator(".messages")).to_contain_text("已办理")
    expect(desk.get_by_test_id("inbox")).not_to_contain_text(app.number)

    # 6. Closed; the decision is drawn and signed after the commit, by the worker.
    page.reload()
    expect(page.get_by_test_id("application-status")).to_contain_text("办结（准予）")
    expect(page.get_by_test_id("result-pending")).to_be_visible()
    _run_worker_once()
    page.goto(tracking_url)
    result = page.get_by_test_id("result")
    expect(result).to_contain_text("办结（准予）")
    expect(page.get_by_test_id("result-licence")).to_contain_text("食品经营登记证")
    with page.expect_download() as info:
        page.get_by_test_id("result-pdf").click()
    download = info.value
    assert download.suggested_filename == f"{app.number}.pdf"
    with open(download.path(), "rb") as handle:
        assert handle.read(5) == b"%PDF-"

    # 7. The citizen rates the service 不满意; the department gets a 差评整改 order.
    rating = page.get_by_test_id("rating-form")
    rating.get_by_label("不满意", exact=True).check()
    rating.get_by_label("评价内容").fill("营业执照领取说明不清楚，请联系13812345678")
    page.screenshot(path=os.path.join(screenshot_dir, "services-tracking-result.png"), full_page=True)
    rating.get_by_role("button", name="提交评价").click()
    expect(page.locator(".messages")).to_contain_text("核实整改")
    expect(page.get_by_test_id("rating-given")).to_contain_text("不满意")
    expect(page.get_by_test_id("rating-form")).to_have_count(0)
    order = RatingRectification.objects.get()

    desk.locator(".mainnav").get_by_role("link", name="好差评").click()
    row = desk.get_by_test_id(f"order-{order.code}")
    expect(row).to_contain_text(app.number)
    expect(row).to_contain_text("不满意")
    expect(row.get_by_test_id("comment")).to_contain_text("138****5678")
    assert "13812345678" not in desk.content()
    row.get_by_label("整改情况").fill("已在办事指南中补充领取说明，并电话回访申请人")
    desk.screenshot(path=os.path.join(screenshot_dir, "services-ratings.png"), full_page=True)
    row.get_by_role("button", name="反馈整改").click()
    expect(desk.locator(".messages")).to_contain_text("已反馈整改情况")
    expect(desk.get_by_test_id(f"order-{order.code}")).to_contain_text("已整改待回访")


def test_window_acceptance_of_a_walk_in_applicant(
    page, new_page, world, django_user_model, user_password, totp_secret, pass_second_factor, screenshot_dir
):
    from dgov.kernel.fields import blind_index
    from dgov.services.models import Application

    urls: list[str] = []
    page.context.on("request", lambda request: urls.append(request.url))
    clerk = _official(django_user_model, "zwfw-zhao", world["orgs"]["zwfw"], user_password, totp_secret, "赵窗口")
    _official_log_in(page, clerk, user_password, totp_secret, pass_second_factor)

    # 1. 窗口受理: find the item, open its acceptance form.
    page.locator(".mainnav").get_by_role("link", name="窗口受理").click()
    page.get_by_test_id("window-search").get_by_label("搜索事项").fill("食杂店")
    page.get_by_test_id("window-search").get_by_role("button", name="搜索").click()
    page.get_by_test_id("window-items").get_by_role("link", name=ITEM_NAME).click()
    expect(page.locator("h1")).to_contain_text(ITEM_NAME)
    form = page.get_by_test_id("window-accept-form")
    expect(form).to_contain_text("免提交")

    # 2. A wrong check character is caught and the number is not sent back.
    form.get_by_label("姓名或名称").fill("孙来办")
    wrong = WALK_IN_ID[:-1] + ("0" if WALK_IN_ID[-1] != "0" else "1")
    form.get_by_label("居民身份证号码或统一社会信用代码").fill(wrong)
    form.get_by_label("经营者姓名").fill("孙来办")
    form.get_by_label("店铺名称").fill("孙家小卖部")
    form.get_by_role("textbox", name="经营场所", exact=True).fill("济南市历下区山大路20号")
    form.get_by_label("经营场所使用证明").set_input_files(SCAN)
    form.get_by_role("button", name="受理并出具回执").click()
    number_field = page.get_by_test_id("field-holder_number")
    expect(number_field.locator(".error")).to_be_visible()
    expect(page.get_by_label("居民身份证号码或统一社会信用代码")).to_have_value("")
    assert wrong not in page.content()
    assert not Application.objects.exists()
    expect(page.get_by_label("店铺名称")).to_have_value("孙家小卖部")

    # 3. The right number, the scan again (a browser never keeps a file input), and the receipt.
    page.get_by_label("居民身份证号码或统一社会信用代码").fill(WALK_IN_ID)
    page.get_by_label("经营场所使用证明").set_input_files(SCAN)
    page.get_by_role("button", name="受理并出具回执").click()
    page.wait_for_url("**/receipt/")
    app = Application.objects.get()
    receipt = page.get_by_test_id("receipt")
    expect(page.get_by_test_id("receipt-number")).to_have_text(app.number)
    expect(page.get_by_test_id("receipt-holder-number")).to_have_text(WALK_IN_ID[:6] + "********" + WALK_IN_ID[-4:])
    expect(receipt).to_contain_text("孙**")
    expect(receipt).to_contain_text("山东省市场监督管理局")
    expect(receipt).to_contain_text("经营场所使用证明")
    page.screenshot(path=os.path.join(screenshot_dir, "services-window-receipt.png"), full_page=True)
    html = page.content()
    assert WALK_IN_ID not in html and "孙来办" not in html
    page.get_by_role("link", name="本窗口办件").click()
    expect(page.locator("body")).to_contain_text(app.number)
    assert WALK_IN_ID not in page.content()
    assert urls and not [url for url in urls if WALK_IN_ID in url or wrong in url]
    assert app.channel == Application.Channel.WINDOW and app.applicant is None

    # 4. The applicant verifies an account with the same ID number later and finds the application online.
    holder = django_user_model.objects.create_user(
        username="sunlaiban", password=user_password, kind="person", display_name="孙来办"
    )
    holder.real_name_level = 2
    holder.id_number = WALK_IN_ID
    holder.id_number_digest = blind_index(WALK_IN_ID, purpose="resident_id")
    holder.save()
    online = new_page()
    _log_in(online, "sunlaiban", user_password, next_url="/login/?next=/services/")
    online.wait_for_url("**/services/")
    online.get_by_role("link", name="我的办件").click()
    mine = online.get_by_test_id("my-applications")
    expect(mine).to_contain_text(app.number)
    expect(mine).to_contain_text(ITEM_NAME)
    expect(mine).to_contain_text("待受理")
    mine.get_by_role("link", name=app.number).click()
    expect(online.get_by_test_id("application-status")).to_contain_text("山东省市场监督管理局")
    online.screenshot(path=os.path.join(screenshot_dir, "services-window-my.png"), full_page=True)


def test_metrics_dashboard_and_supervision_for_the_provincial_office(
    page, django_user_model, settings, user_password, totp_secret, pass_second_factor, screenshot_dir
):
    from dgov.kernel.models import Organization
    from dgov.licenses import catalogue as licence_catalogue
    from dgov.registry import demo as registry_demo
    from dgov.registry import services as registry_services
    from dgov.services import catalogue, demo_history
    from dgov.services.models import Application

    # A small demo province with about six months of application history.
    settings.DEMO_PROVINCE_CODE = "370000"
    registry_services.clear_caches()
    registry_demo.generate(province_code="370000", persons=120, enterprises=20, seed=7)
    licence_catalogue.load_types(
        licence_catalogue.read_type_file(licence_catalogue.DEMO_TYPES), actor="system:test", province_code="370000"
    )
    report = catalogue.load_catalogue(
        catalogue.read_catalogue_file(catalogue.DEMO_ITEMS), actor="system:test", province_code="370000"
    )
    assert report.ok, report.to_text()
    catalogue.implement_items("370000", actor="system:test")
    history = demo_history.generate(province_code="370000", count=40, seed=3)
    assert history.applications >= 30
    office = Organization.objects.get(code="370000-ZWFW")
    official = _official(django_user_model, "zwfw-qian", office, user_password, totp_secret, "钱督办")
    _official_log_in(page, official, user_password, totp_secret, pass_second_factor)

    # 1. The dashboard: headline figures, the monthly trend as an SVG chart, the grouped table.
    page.locator(".mainnav").get_by_role("link", name="服务指标").click()
    expect(page.locator("h1")).to_have_text("政务服务指标")
    submitted = int(page.get_by_test_id("kpi-submitted").inner_text())
    assert submitted >= 30
    expect(page.get_by_test_id("kpi-on-time")).to_contain_text("%")
    chart = page.locator("svg[data-testid=metrics-trend]")
    expect(chart).to_be_visible()
    assert chart.locator("path").count() >= 1 and chart.locator("circle").count() >= 1
    expect(chart.locator("title").first).not_to_be_empty()
    page.get_by_test_id("group-tabs").get_by_role("link", name="按部门").click()
    table = page.get_by_test_id("group-table")
    expect(table.locator("thead")).to_contain_text("部门")
    expect(table.locator("tbody tr").first).to_contain_text("局")
    expect(table.locator("tfoot")).to_contain_text(str(submitted))
    page.screenshot(path=os.path.join(screenshot_dir, "services-metrics.png"), full_page=True)

    # 2. Supervision: overdue and nearly-due applications, 督办 with a note.
    page.locator(".mainnav").get_by_role("link", name="办件督办").click()
    expect(page.locator("h1")).to_have_text("超期/临期办件督办")
    rows = page.get_by_test_id("supervision-table").locator("tbody tr[data-number]")
    expect(rows.first).to_be_visible()
    number = rows.first.get_attribute("data-number")
    assert Application.objects.filter(number=number).exclude(status__in=Application.CLOSED).exists()
    page.screenshot(path=os.path.join(screenshot_dir, "services-supervision.png"), full_page=True)
    first = page.locator(f"tr[data-number='{number}']")
    first.get_by_label("督办意见").fill("请于两个工作日内办结")
    first.get_by_role("button", name="督办").click()
    expect(page.locator(".messages")).to_contain_text(f"已督办办件 {number}")
    assert Application.objects.get(number=number).events.filter(kind="escalated", detail__supervision=True).exists()
