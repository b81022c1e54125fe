"""Browser test of identity brokering between two dgov instances.

A second dgov runs in a subprocess as the "national" platform (国家政务服务平台): its own SQLite
database, data directory and master key under a temporary directory, migrated and seeded with a
small demo province by its own command line, served by ``dgov serve`` (Granian) on a free port.
The broker's client is registered there with ``dgov oidc client create``; the live server of the
test run is configured to use it as its upstream. Chromium then logs in at the national platform,
consents to release the ID number, and comes back logged in to the local account that has the
same number.
"""

import re

import pytest
from instances import Instance
from instances import free_port as _free_port
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DEMO_PASSWORD = "dgov-demo-2026"  # the second instance's published demo credential
SLUG = "national"


@pytest.fixture(scope="module")
def national(tmp_path_factory, live_server):
    """The second dgov: migrated, seeded, with the broker registered as a client allowed dgov:identity."""
    instance = Instance(tmp_path_factory.mktemp("national"), _free_port(), name="national")
    instance.run("migrate", "-v", "0")
    instance.run("collectstatic", "--noinput", "-v", "0")
    instance.run("demo", "--persons", "20", "--enterprises", "2")
    out = instance.run(
        "oidc",
        "client",
        "create",
        "--name",
        "山东省政务服务平台",
        "--org",
        "370000-DSJ",
        "--redirect-uri",
        f"{live_server.url}/login/upstream/{SLUG}/callback/",
        "--scopes",
        "openid",
        "profile",
        "dgov:identity",
        "--grant-types",
        "authorization_code",
        "--alg",
        "SM2",
        "--client-id",
        "shandong-broker",
    )
    instance.client_id = re.search(r"^client_id: (\S+)$", out, re.M).group(1)
    instance.client_secret = re.search(r"^client_secret: (\S+)$", out, re.M).group(1)
    # The number of the demo citizen (verified at level 2 there), read through the instance's own shell.
    out = instance.run(
        "shell",
        "-c",
        "from dgov.identity.models import User; print('ID=' + User.objects.get(username='citizen').id_number)",
    )
    instance.citizen_id = re.search(r"^ID=(\S+)$", out, re.M).group(1)
    instance.serve()
    yield instance
    instance.stop()


def test_login_at_the_national_platform_links_the_local_account(
    page, live_server, national, settings, django_user_model, user_password, screenshot_dir
):
    from dgov.kernel.fields import blind_index
    from dgov.oidc.models import FederatedIdentity
    from dgov.oidc.services import broker, upstream

    settings.SITE_URL = live_server.url
    upstream.forget()
    broker.create_provider(
        slug=SLUG,
        name_zh="国家政务服务平台",
        name_en="National Government Service Platform",
        issuer=national.url,
        client_id=national.client_id,
        client_secret=national.client_secret,
        actor="system:test",
    )
    local = django_user_model.objects.create_user(
        username="shandong-resident",
        password=user_password,
        kind="person",
        display_name="本省居民",
        id_number_digest=blind_index(national.citizen_id, purpose="resident_id"),
        real_name_level=2,
    )

    page.goto("/login/")
    page.get_by_role("link", name="使用国家政务服务平台登录").click()
    page.wait_for_url(f"{national.url}/login/**")
    page.get_by_label("用户名").fill("citizen")
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.locator("form.form").get_by_role("button", name="登录").click()

    # The national platform asks before it releases the ID number, marked as sensitive.
    expect(page.get_by_role("button", name="同意并继续")).to_be_visible()
    expect(page.get_by_test_id("sensitive-scope")).to_contain_text("居民身份证号码")
    expect(page.get_by_test_id("sensitive-notice")).to_be_visible()
    page.screenshot(path=f"{screenshot_dir}/broker-consent.png", full_page=True)
    page.get_by_role("button", name="同意并继续").click()

    page.wait_for_url(f"{live_server.url}/**")
    page.goto("/account/")
    expect(page.get_by_test_id("profile")).to_contain_text("shandong-resident")
    expect(page.get_by_test_id("amr")).to_have_text("fed")
    linked = page.get_by_test_id("linked-logins")
    expect(linked).to_contain_text("国家政务服务平台")
    expect(linked.get_by_role("button", name="解除关联")).to_be_visible()
    page.screenshot(path=f"{screenshot_dir}/broker-linked.png", full_page=True)

    link = FederatedIdentity.objects.get()
    assert link.user == local and link.last_acr == "urn:dgov:loa:2"
    local.refresh_from_db()
    assert local.id_number == national.citizen_id
