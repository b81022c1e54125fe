"""The registry pages in a real browser: an official looks a person up by ID number and opens the record."""

import datetime
import os

import pytest
from playwright.sync_api import expect

from dgov.identity import services as identity_services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PERSON_FIELDS = [
    {
        "name": "id_number",
        "label": "居民身份证号码",
        "type": "resident_id",
        "sensitivity": "personal",
        "authority": "GA",
    },
    {"name": "name", "label": "姓名", "type": "string", "sensitivity": "personal", "authority": "GA"},
    {"name": "sex", "label": "性别", "type": "enum", "choices": ["男", "女"], "authority": "GA"},
    {"name": "birth_date", "label": "出生日期", "type": "date", "authority": "GA"},
    {"name": "division", "label": "户籍地", "type": "division_code", "authority": "GA", "required": True},
    {"name": "phone", "label": "手机号码", "type": "phone", "sensitivity": "personal", "authority": "GA|WJ"},
    {"name": "address", "label": "住址", "type": "string", "sensitivity": "personal", "authority": "GA"},
    {
        "name": "marital_status",
        "label": "婚姻状况",
        "type": "enum",
        "choices": ["未婚", "已婚", "离婚", "丧偶"],
        "authority": "MZ",
    },
]


@pytest.fixture
def person_record(province, user_password, django_user_model, totp_secret):
    """A person registry with one person of 历下区; officials of the provincial GA and MZ."""
    from dgov.kernel.models import Division, Organization
    from dgov.kernel.validators import make_resident_id, make_uscc
    from dgov.registry import services

    city = Division.objects.get(code="370100")
    lixia = Division.objects.create(code="370102", name="历下区", full_name="山东省济南市历下区", level=3, parent=city)
    ga = Organization.objects.create(
        name="山东省公安厅",
        code="370000-GA",
        kind="GA",
        level=1,
        division=province,
        uscc=make_uscc("1", "1", "370000", serial=1),
    )
    mz = Organization.objects.create(
        name="山东省民政厅",
        code="370000-MZ",
        kind="MZ",
        level=1,
        division=province,
        uscc=make_uscc("1", "1", "370000", serial=2),
    )
    branch = Organization.objects.create(
        name="济南市公安局历下区分局",
        code="370102-GA",
        kind="GA",
        level=3,
        division=lixia,
        uscc=make_uscc("1", "1", "370102", serial=3),
    )
    official = django_user_model.objects.create_user(
        username="ga-official", password=user_password, kind="official", display_name="王警官", department=ga
    )
    identity_services.provision_totp([official], totp_secret, actor="system:test")
    clerk = django_user_model.objects.create_user(username="mz-clerk", password="x", kind="official", department=mz)
    registrar = django_user_model.objects.create_user(
        username="lixia", password="x", kind="official", department=branch
    )
    registry = services.create_registry(
        code="population.person",
        name="人口基础信息",
        owner=ga,
        library_code="population",
        identifier_field="id_number",
        scope_field="division",
        fields=PERSON_FIELDS,
        actor="system:e2e",
        description="全省户籍人口与常住人口的基础信息，公安机关为主要权威来源。",
    )
    id_number = make_resident_id("370102", datetime.date(1988, 5, 17), 21)
    record = services.create_record(
        registry,
        {
            "id_number": id_number,
            "name": "张三丰",
            "sex": "男",
            "birth_date": "1988-05-17",
            "division": "370102",
            "phone": "13812345678",
            "address": "山东省济南市历下区泉城路1号",
        },
        actor=registrar,
    )
    services.update_record(record, {"marital_status": "未婚"}, actor=clerk, reason="婚姻登记信息同步")
    services.update_record(record, {"address": "山东省济南市历下区解放路88号"}, actor=registrar, reason="迁居")
    services.submit_correction(record, "marital_status", "已婚", actor=official, reason="当事人出示结婚证")
    return {"official": official, "id_number": id_number, "record": record, "totp_secret": totp_secret}


def test_official_finds_a_person_by_id_number_and_sees_masked_values_and_history(
    page, person_record, user_password, screenshot_dir, pass_second_factor
):
    id_number = person_record["id_number"]
    page.goto("/login/")
    page.get_by_label("用户名").fill("ga-official")
    page.get_by_label("密码").fill(user_password)
    page.locator("form.form").get_by_role("button", name="登录").click()
    pass_second_factor(page, person_record["totp_secret"])
    page.wait_for_url("**/workbench/")

    page.locator(".mainnav").get_by_role("link", name="信息库").click()
    expect(page.locator("h1")).to_have_text("信息库")
    page.get_by_role("link", name="人口基础信息").first.click()
    expect(page.locator("h1")).to_contain_text("人口基础信息")

    page.evaluate("window.__dgovNoReload = true")
    page.get_by_label("标识值").fill(id_number)
    with page.expect_response(lambda r: r.request.method == "POST" and r.request.headers.get("hx-request") == "true"):
        page.get_by_test_id("lookup-submit").click()
    results = page.get_by_test_id("registry-results")
    expect(results).to_contain_text(id_number[:6] + "********" + id_number[-4:])
    assert page.evaluate("window.__dgovNoReload === true"), "the lookup reloaded the page"
    assert id_number not in page.url
    page.screenshot(path=os.path.join(screenshot_dir, "registry-browse.png"), full_page=True)

    results.get_by_role("link", name="查看").click()
    page.wait_for_url("**/records/**")
    expect(page.get_by_test_id("record-identifier")).to_have_text(id_number[:6] + "********" + id_number[-4:])
    values = page.get_by_test_id("record-values")
    expect(values.locator('tr[data-field="name"] td.value')).to_have_text("张**")
    expect(values.locator('tr[data-field="address"] td.value')).to_have_text("山东省济南市历下区****")
    expect(values.locator('tr[data-field="marital_status"]')).to_contain_text("山东省民政厅")
    history = page.get_by_test_id("record-history")
    expect(history.locator("tbody tr")).to_have_count(3)
    expect(history).to_contain_text("迁居")
    html = page.content()
    for raw in (id_number, "张三丰", "泉城路1号", "解放路88号", "13812345678"):
        assert raw not in html
    page.screenshot(path=os.path.join(screenshot_dir, "registry-record.png"), full_page=True)

    # "As of" a date before the record existed: the values are replaced in place (htmx, no reload).
    page.evaluate("window.__dgovNoReload = true")
    yesterday = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    page.locator("#id_as_of").fill(yesterday)
    expect(page.get_by_test_id("record-not-yet")).to_be_visible()
    assert page.evaluate("window.__dgovNoReload === true"), "the date picker reloaded the page"
    assert f"as_of={yesterday}" in page.url
