"""The portal and the workbench in a real browser: layout, htmx, language switch, login, search."""

import os

import pytest
from playwright.sync_api import expect

from dgov.identity import totp

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_home_loads_in_chinese_with_htmx_and_css(page, screenshot_dir):
    response = page.goto("/")
    assert response.status == 200
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.locator("h1")).to_have_text("让数据多跑路，让群众少跑腿")
    assert page.evaluate("typeof window.htmx === 'object' && typeof window.htmx.ajax === 'function'")
    # The stylesheet is served and applied: the header gets its colour from dgov.css.
    css = page.request.get("/static/web/dgov.css")
    assert css.status == 200 and "--dgov-blue-700" in css.text()
    header_bg = page.evaluate("getComputedStyle(document.querySelector('.site-header')).backgroundColor")
    assert header_bg == "rgb(11, 74, 143)"
    page.screenshot(path=os.path.join(screenshot_dir, "home.png"), full_page=True)


def test_language_switch_to_english(page):
    page.goto("/")
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Let data travel, so people don't have to")
    expect(page.get_by_role("link", name="Administrative divisions").first).to_be_visible()
    page.goto("/divisions/")
    expect(page.locator("h1")).to_have_text("Administrative divisions")
    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")


def test_official_logs_in_and_sees_workbench(page, official, user_password, screenshot_dir):
    page.goto("/")
    page.get_by_role("link", name="登录").first.click()
    page.get_by_label("用户名").fill("official1")
    page.get_by_label("密码").fill(user_password)
    page.locator("form.form").get_by_role("button", name="登录").click()
    # An official without a second factor adds an authenticator first (ADR 0012): the page shows a
    # QR code and the secret for manual entry, which the test reads to compute the first code.
    page.wait_for_url("**/login/enrol/")
    expect(page.get_by_test_id("totp-setup").locator("svg")).to_be_visible()
    page.screenshot(path=os.path.join(screenshot_dir, "mfa-enrol.png"), full_page=True)
    secret = page.get_by_test_id("totp-secret").get_attribute("data-secret")
    page.get_by_label("身份验证器显示的 6 位动态口令").fill(totp.code_at(secret, totp.current_step()))
    page.get_by_role("button", name="绑定并登录").click()
    page.wait_for_url("**/workbench/")
    expect(page.locator("h1")).to_have_text("工作台")
    expect(page.get_by_test_id("department")).to_have_text("山东省公安厅")
    expect(page.get_by_test_id("division")).to_contain_text("370000")
    expect(page.locator(".user-name")).to_have_text("张警官")
    page.screenshot(path=os.path.join(screenshot_dir, "workbench.png"), full_page=True)
    # the account console lists this browser's session
    page.get_by_role("link", name="账号与安全").click()
    expect(page.get_by_test_id("sessions")).to_contain_text("当前会话")
    expect(page.get_by_test_id("amr")).to_have_text("pwd + otp + mfa")
    page.screenshot(path=os.path.join(screenshot_dir, "account.png"), full_page=True)
    page.get_by_role("button", name="退出", exact=True).first.click()
    expect(page.get_by_role("link", name="登录").first).to_be_visible()


def test_division_search_updates_results_without_reload(page, province):
    page.goto("/divisions/")
    expect(page.get_by_test_id("division-summary")).to_contain_text("山东省 下辖 1 个区划")
    page.evaluate("window.__dgovNoReload = true")
    with page.expect_response(
        lambda r: "/divisions/?q=" in r.url and r.request.headers.get("hx-request") == "true"
    ):
        page.get_by_label("名称或代码").fill("济南")
    expect(page.get_by_test_id("division-summary")).to_contain_text("“济南”找到 1 个区划")
    expect(page.locator("#division-results")).to_contain_text("370100")
    assert page.evaluate("window.__dgovNoReload === true"), "the page was reloaded"
    assert "q=%E6%B5%8E%E5%8D%97" in page.url or "q=济南" in page.url  # hx-push-url keeps the URL shareable
    page.get_by_label("名称或代码").fill("没有这个地方")
    expect(page.get_by_test_id("division-empty")).to_be_visible()
    assert page.evaluate("window.__dgovNoReload === true")


def test_api_docs_render_from_local_assets_only(page, live_server, province, screenshot_dir):
    outside = []
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith((live_server.url, "data:")) else outside.append(request.url)
        ),
    )
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("dgov API")
    expect(page.locator(".swagger-ui").get_by_text("/api/v1/meta").first).to_be_visible()
    page.screenshot(path=os.path.join(screenshot_dir, "api-docs.png"))
    page.goto("/divisions/")
    page.screenshot(path=os.path.join(screenshot_dir, "divisions.png"), full_page=True)
    assert outside == [], f"requests left the server: {outside}"
