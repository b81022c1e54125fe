"""Sharing and exchange in a real browser: request, approval, a gateway call, monitoring, a receipt, revocation.

An official of 省民政厅 requests items of 省公安厅's 有条件共享 resource on the request page; an
official of 省公安厅 approves it in the inbox; 省民政厅's client-credentials client calls the gateway
over HTTP (the live server); the 民政厅 official finds the call on the log and monitoring pages and
downloads its signed receipt; 省公安厅 revokes the grant and the next call is refused.
"""

import datetime
import json
import os

import pytest
import requests
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PERSON_FIELDS = [
    {"name": "id_number", "label": "公民身份号码", "type": "resident_id", "sensitivity": "personal", "authority": "GA"},
    {"name": "name", "label": "姓名", "type": "string", "authority": "GA", "max_length": 50},
    {"name": "birth_date", "label": "出生日期", "type": "date", "authority": "GA"},
]
CLIENT_ID = "mz-dibao-system"


@pytest.fixture
def exchange_world(province, user_password, django_user_model, settings, live_server):
    """GA (provider, a published 有条件共享 person resource), MZ (consumer, with a gateway client), DSJ (catalogue)."""
    from dgov.catalog import services as catalog
    from dgov.catalog.models import ResourceClass
    from dgov.identity import services as identity_services
    from dgov.identity import totp
    from dgov.kernel.models import Organization
    from dgov.kernel.validators import make_resident_id, make_uscc
    from dgov.oidc.services import clients
    from dgov.registry import services as registry

    settings.OIDC_ISSUER = live_server.url
    orgs = {
        key: Organization.objects.create(
            name=name, code=code, kind=kind, level=1, division=province, uscc=make_uscc("1", "1", "370000", serial=n)
        )
        for n, (key, code, name, kind) in enumerate(
            [
                ("ga", "370000-GAT", "山东省公安厅", "GA"),
                ("mz", "370000-MZT", "山东省民政厅", "MZ"),
                ("dsj", "370000-DSJ", "山东省大数据局", "DSJ"),
            ],
            start=1,
        )
    }
    people = {
        key: django_user_model.objects.create_user(
            username=f"{key}-official", password=user_password, kind="official", display_name=name, department=orgs[key]
        )
        for key, name in (("ga", "王警官"), ("mz", "李科长"), ("dsj", "赵管理员"))
    }
    secrets = {key: totp.generate_secret() for key in ("ga", "mz")}
    for key, secret in secrets.items():
        identity_services.provision_totp([people[key]], secret, actor="system:test")

    person_registry = registry.create_registry(
        code="population.person",
        name="人口基础信息",
        owner=orgs["ga"],
        identifier_field="id_number",
        fields=PERSON_FIELDS,
        actor="system:e2e",
        library_code="population",
    )
    id_number = make_resident_id("370102", datetime.date(1990, 5, 17), 3)
    registry.create_record(
        person_registry,
        {"id_number": id_number, "name": "王小明", "birth_date": "1990-05-17"},
        actor="system:e2e",
        source=orgs["ga"],
    )
    catalog.ensure_standard_classes(actor="system:e2e")
    resource = catalog.create_resource(
        actor=people["ga"],
        classification=ResourceClass.objects.get(code="101001"),
        data={
            "name": "人口基本信息",
            "sharing_type": "conditional",
            "sharing_conditions": "用于法定职责范围内的资格审核",
            "format": "database",
            "sharing_mode": "api",
            "open_type": "none",
            "update_cycle": "realtime",
            "summary": "全省户籍人口的基本信息，供各部门依申请共享核验。",
            "keywords": "人口",
        },
        items=[
            {"registry": "population.person", "registry_field": "id_number"},
            {"registry": "population.person", "registry_field": "name"},
            {"registry": "population.person", "registry_field": "birth_date"},
        ],
    )
    catalog.publish(resource, actor=people["dsj"], note="发布")
    resource.refresh_from_db()
    _client, secret = clients.create_client(
        name="低保审核系统",
        organization=orgs["mz"],
        actor="system:test",
        redirect_uris=[],
        post_logout_redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["exchange:call"],
        client_id=CLIENT_ID,
    )
    return {
        "people": people,
        "secrets": secrets,
        "resource": resource,
        "id_number": id_number,
        "client_secret": secret,
    }


def _log_in(page, user, password, secret, pass_second_factor):
    """Log an official in (password, then TOTP) and wait for the workbench."""
    page.goto("/login/")
    page.get_by_label("用户名").fill(user.username)
    page.get_by_label("密码").fill(password)
    page.locator("form.form").get_by_role("button", name="登录").click()
    pass_second_factor(page, secret)
    page.wait_for_url("**/workbench/")


def _gateway_query(base_url, world, token):
    """The consumer's system asks for the person's name through the gateway (identifier in the body)."""
    key = world["resource"].code.replace("/", "-")
    return requests.post(
        f"{base_url}/api/v1/exchange/resources/{key}/records/query",
        json={"identifier": world["id_number"], "items": ["name"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_request_approve_call_monitor_receipt_revoke(
    page, browser, live_server, exchange_world, user_password, pass_second_factor, screenshot_dir
):
    from dgov.exchange.log import verify_receipt

    world = exchange_world
    people, secrets, resource = world["people"], world["secrets"], world["resource"]

    # 1. The consumer's official files a request on the request page.
    _log_in(page, people["mz"], user_password, secrets["mz"], pass_second_factor)
    page.locator(".mainnav").get_by_role("link", name="共享交换").click()
    expect(page.locator("h1")).to_contain_text("共享交换")
    page.get_by_label("申请共享：信息资源代码").fill(resource.code)
    page.get_by_role("button", name="填写申请").click()
    expect(page.locator("h1")).to_contain_text("人口基本信息")
    page.get_by_role("checkbox", name="姓名 name", exact=True).check()
    page.get_by_label("用途").fill("最低生活保障资格审核")
    page.get_by_label("法律依据").fill("《社会救助暂行办法》第十一条")
    page.get_by_label("使用期限止").fill((datetime.date.today() + datetime.timedelta(days=90)).isoformat())
    page.get_by_role("button", name="提交申请").click()
    expect(page.locator(".messages")).to_contain_text("申请已提交提供部门审批")
    expect(page.get_by_test_id("exchange-requests")).to_contain_text("待审批")

    # 2. The provider's official approves it in the inbox (another browser context: own cookies).
    provider = browser.new_context(base_url=live_server.url, locale="zh-CN", viewport={"width": 1280, "height": 860})
    provider.set_default_timeout(10_000)
    ga = provider.new_page()
    try:
        _log_in(ga, people["ga"], user_password, secrets["ga"], pass_second_factor)
        ga.goto("/workbench/exchange/")
        ga.get_by_role("link", name="审批待办").click()
        inbox = ga.get_by_test_id("exchange-inbox")
        expect(inbox).to_contain_text("最低生活保障资格审核")
        expect(inbox).to_contain_text("山东省民政厅")
        inbox.get_by_role("button", name="同意").click()
        expect(ga.locator(".messages")).to_contain_text("已授权")
        expect(ga.get_by_test_id("exchange-inbox-empty")).to_be_visible()

        # 3. The consumer's system calls the gateway over HTTP with a client-credentials token.
        token = requests.post(
            f"{live_server.url}/oidc/token",
            data={"grant_type": "client_credentials", "scope": "exchange:call"},
            auth=(CLIENT_ID, world["client_secret"]),
            timeout=10,
        )
        assert token.status_code == 200, token.text
        access = token.json()["access_token"]
        answer = _gateway_query(live_server.url, world, access)
        assert answer.status_code == 200, answer.text
        assert answer.json()["items"] == {"name": "王小明"}
        seq = answer.json()["exchange"]["seq"]

        # 4. The consumer's official sees the call on the log and monitoring pages and downloads the receipt.
        page.goto("/workbench/exchange/")
        page.get_by_role("link", name="调用监控").click()
        expect(page.locator("h1")).to_contain_text("调用监控")
        expect(page.get_by_test_id("total-calls")).to_have_text("1")
        consumers = page.get_by_test_id("monitor-consumers")
        expect(consumers).to_contain_text(CLIENT_ID)
        expect(consumers).to_contain_text("山东省民政厅")
        expect(page.get_by_test_id("monitor-resources")).to_contain_text(resource.code)
        expect(page.get_by_test_id("monitor-no-failures")).to_be_visible()
        expect(page.get_by_test_id("monitor-daily-chart").locator("rect.xm-ok")).to_have_count(1)
        page.screenshot(path=os.path.join(screenshot_dir, "exchange-monitor.png"), full_page=True)

        page.get_by_role("link", name="交换日志").first.click()
        log_table = page.get_by_test_id("exchange-log")
        row = log_table.locator("tbody tr").filter(has=page.get_by_role("cell", name=str(seq), exact=True))
        expect(row).to_contain_text(resource.code)
        expect(row).to_contain_text(CLIENT_ID)
        expect(row).to_contain_text("成功")
        with page.expect_download() as download_info:
            row.get_by_role("link", name="下载").click()
        download = download_info.value
        assert download.suggested_filename == f"exchange-receipt-{seq}.json"
        with open(download.path(), encoding="utf-8") as handle:
            receipt = json.load(handle)
        assert verify_receipt(receipt)
        assert receipt["chain"]["seq"] == seq and receipt["entry"]["client"] == CLIENT_ID
        assert receipt["entry"]["result"] == "ok" and receipt["entry"]["fields"] == ["name"]
        assert world["id_number"] not in json.dumps(receipt, ensure_ascii=False)  # no personal value in a receipt
        tampered = {**receipt, "entry": {**receipt["entry"], "purpose": "另作他用"}}
        assert not verify_receipt(tampered)

        # 5. The provider revokes the grant; the next call is refused and shows up as a refusal.
        ga.goto("/workbench/exchange/")
        given = ga.get_by_test_id("exchange-given")
        expect(given).to_contain_text("山东省民政厅")
        given.get_by_label("撤销原因").fill("审核工作已结束")
        given.get_by_role("button", name="撤销授权").click()
        expect(ga.locator(".messages")).to_contain_text("授权已撤销")
        expect(ga.get_by_test_id("exchange-given")).to_contain_text("已撤销")
    finally:
        provider.close()

    refused = _gateway_query(live_server.url, world, access)
    assert refused.status_code == 403 and refused.json()["code"] == "grant_revoked"
    assert "王小明" not in refused.text

    page.goto("/workbench/exchange/monitor/")
    expect(page.get_by_test_id("total-calls")).to_have_text("2")
    expect(page.get_by_test_id("total-denied")).to_have_text("1")
    failures = page.get_by_test_id("monitor-failures")
    expect(failures.locator('tr[data-code="grant_revoked"]')).to_contain_text("共享授权已撤销")
    page.screenshot(path=os.path.join(screenshot_dir, "exchange-monitor-revoked.png"), full_page=True)
