"""Browser tests: Playwright driving Debian's chromium against pytest-django's live server."""

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in the main thread; Django would then refuse the
# fixtures' database calls as "async-unsafe", although they run synchronously in this thread.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("DGOV_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_DIR = os.environ.get("DGOV_E2E_SCREENSHOTS", "/tmp/dgov-e2e")


@pytest.fixture(scope="session")
def browser():
    """One chromium for the whole run (Debian's package; Playwright never downloads a browser)."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context per test (own cookies), Chinese-speaking like most of the portal's visitors."""
    context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 1280, "height": 860}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot_dir():
    """Where screenshots go (outside the repository)."""
    os.makedirs(SCREENSHOT_DIR, exist_ok=True)
    return SCREENSHOT_DIR



@pytest.fixture
def pass_second_factor():
    """A function that passes the second login step (officials must use MFA, ADR 0012) with a TOTP secret."""
    from dgov.identity import totp

    def complete(page, secret):
        page.wait_for_url("**/login/verify/")
        page.get_by_label("验证码").fill(totp.code_at(secret, totp.current_step()))
        page.get_by_role("button", name="验证并登录").click()

    return complete


@pytest.fixture
def totp_secret():
    """A fresh TOTP secret for an official the test enrols beforehand."""
    from dgov.identity import totp

    return totp.generate_secret()
