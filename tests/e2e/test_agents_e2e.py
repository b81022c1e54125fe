"""Browser test of enterprise agents (经办人): the agent switches to acting for the enterprise and back."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_agent_acts_for_the_enterprise_and_returns(page, citizen, django_user_model, user_password, screenshot_dir):
    from dgov.identity.models import EnterpriseAgent, User

    company = django_user_model.objects.create_user(username="company1", password=user_password, kind="enterprise")
    # levels as dgov.identity.realname leaves them (tested against the base libraries elsewhere)
    User.objects.filter(pk=company.pk).update(real_name_level=2, enterprise_uscc="91370100MA3C00042X")
    User.objects.filter(pk=citizen.pk).update(real_name_level=2, id_number_digest="d" * 64)
    now = timezone.now()
    EnterpriseAgent.objects.create(
        enterprise=company,
        agent=citizen,
        enterprise_name="济南测试有限公司",
        scopes=["services", "licences"],
        valid_from=now - dt.timedelta(minutes=1),
        valid_until=now + dt.timedelta(days=30),
    )
    page.goto("/login/?next=/account/agencies/")
    page.get_by_label("用户名").fill(citizen.username)
    page.get_by_label("密码").fill(user_password)
    page.locator("form.form").get_by_role("button", name="登录").click()
    page.wait_for_url("**/account/agencies/")
    expect(page.get_by_test_id("agencies")).to_contain_text("济南测试有限公司")
    expect(page.get_by_test_id("agencies")).to_contain_text("办理政务服务事项")
    page.get_by_role("button", name="以企业身份办事").click()
    page.wait_for_url("**/account/")
    expect(page.get_by_test_id("acting-for-header")).to_contain_text("代表 济南测试有限公司")
    expect(page.get_by_test_id("acting-for")).to_be_visible()
    page.screenshot(path=f"{screenshot_dir}/agent-acting.png", full_page=True)
    page.get_by_test_id("agencies-card").get_by_role("button", name="返回个人身份").click()
    page.wait_for_url("**/account/")
    expect(page.get_by_test_id("acting-for-header")).to_have_count(0)
    expect(page.get_by_test_id("agencies-card")).to_contain_text("当前以个人身份办事")
