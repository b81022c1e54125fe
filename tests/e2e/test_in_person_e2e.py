"""Browser test of the window page (现场核验): an official records an in-person check for a verified citizen."""

import datetime
import os

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_window_staff_record_an_in_person_check(
    page, official, citizen, totp_secret, user_password, pass_second_factor, screenshot_dir
):
    from dgov.identity import services as identity_services
    from dgov.identity.models import User
    from dgov.kernel.fields import blind_index
    from dgov.kernel.validators import make_resident_id

    id_number = make_resident_id("370102", datetime.date(1985, 6, 1), 123)
    # level 2 as dgov.identity.realname leaves it (tested against the base libraries in tests/identity)
    User.objects.filter(pk=citizen.pk).update(
        real_name_level=2, id_number_digest=blind_index(id_number, purpose="resident_id"), display_name="王实名"
    )
    identity_services.provision_totp([official], totp_secret, actor="system:test")
    page.goto("/login/")
    page.get_by_label("用户名").fill(official.username)
    page.get_by_label("密码").fill(user_password)
    page.locator("form.form").get_by_role("button", name="登录").click()
    pass_second_factor(page, totp_secret)
    page.wait_for_url("**/workbench/")

    page.locator(".mainnav").get_by_role("link", name="现场核验").click()
    expect(page.locator("h1")).to_have_text("现场核验")
    page.get_by_label("居民身份证号码或手机号码").fill(id_number)
    page.get_by_test_id("in-person-lookup").get_by_role("button", name="查询").click()
    results = page.get_by_test_id("in-person-results")
    expect(results).to_contain_text(id_number[:6] + "********" + id_number[-4:])
    expect(results).to_contain_text("王**")
    expect(results.get_by_test_id("account-level")).to_have_text("二级：身份信息核验")
    html = page.content()
    assert id_number not in html and "王实名" not in html and id_number not in page.url
    record = page.get_by_test_id("in-person-record")
    record.get_by_role("button", name="登记现场核验").click()  # the checkbox is required: nothing is sent
    citizen.refresh_from_db()
    assert citizen.real_name_level == 2
    record.get_by_label("已核验身份证件原件").check()
    page.screenshot(path=os.path.join(screenshot_dir, "in-person.png"), full_page=True)
    record.get_by_role("button", name="登记现场核验").click()
    expect(page.locator(".messages")).to_contain_text("已登记现场核验")
    citizen.refresh_from_db()
    assert citizen.real_name_level == 3
