"""Service-item pages: portal search (Chinese), guide with material markers, bundles; workbench catalogue and drifts."""

import pytest

from dgov.services import catalogue
from dgov.services.models import ItemDrift

from .catalogue_fixtures import *  # noqa: F403
from .catalogue_fixtures import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("营业执照", {"企业设立登记", "个体工商户登记"}),
        ("结婚", {"内地居民婚姻登记"}),
        ("我要办社保卡", {"社会保障卡申领"}),
        ("医保 备案", {"异地就医备案"}),
        ("新生儿上户口", {"出生登记"}),
        ("开个饭店需要什么", {"食品经营许可"}),
    ],
)
def test_search_in_chinese(seeded, query, expected):
    names = set(catalogue.search_items(query).values_list("name", flat=True))
    assert expected <= names
    if query == "结婚":
        assert names == expected


def test_search_filters(seeded):
    enterprise = set(catalogue.search_items("", holder_kind="enterprise").values_list("name", flat=True))
    assert "食品经营许可" in enterprise and "出生登记" not in enterprise
    police = catalogue.search_items("", department_kind="GA")
    assert police.count() == 4
    payments = set(catalogue.search_items("", item_type="payment").values_list("name", flat=True))
    assert "失业保险金申领" in payments


def test_portal_search_page_is_public(client, seeded):
    page = client.get("/services/", {"q": "食品"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "食品经营许可" in text and "企业设立登记" not in text
    empty = client.get("/services/", {"q": "不存在的事项名称"})
    assert 'data-testid="no-results"' in empty.content.decode()


def test_guide_page_marks_materials(client, seeded):
    page = client.get("/services/items/000112001000/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "出生登记" in text and "《中华人民共和国户口登记条例》第七条" in text
    assert text.count('data-testid="marker-exempt"') == 2  # 身份证, 户口簿 from the population library
    assert text.count('data-testid="marker-licence"') == 2  # 出生医学证明, 结婚证
    assert "免提交" in text and "可用电子证照" in text
    assert "/services/items/000112001000/apply/" in text
    assert "政务服务中心" in text  # windows of the implementing organizations
    assert "新生儿出生" in text  # part of the newborn bundle
    assert client.get("/services/items/999999999999/").status_code == 404


def test_bundles_page(client, seeded):
    text = client.get("/services/bundles/").content.decode()
    assert "新生儿出生“一件事”" in text and "企业开办“一件事”" in text and "结婚“一件事”" in text


def test_workbench_pages_need_an_official(client, seeded, people):
    assert client.get("/workbench/services/items/").status_code == 302
    client.login(username="cit", password=PASSWORD)
    assert client.get("/workbench/services/items/").status_code == 403
    assert client.get("/workbench/services/drifts/").status_code == 403


def test_drift_report_by_scope(client, seeded, people):
    client.login(username="dsj", password=PASSWORD)
    text = client.get("/workbench/services/drifts/").content.decode()
    assert "个体工商户开业登记" in text and 'data-testid="run-check"' in text
    items = client.get("/workbench/services/items/").content.decode()
    assert "企业设立登记" in items
    client.logout()
    client.login(username="scjg", password=PASSWORD)
    text = client.get("/workbench/services/drifts/").content.decode()
    assert "个体工商户开业登记" not in text and 'data-testid="run-check"' not in text
    assert client.post("/workbench/services/drifts/check/").status_code == 403


def test_run_check_from_the_workbench(client, seeded, people):
    ItemDrift.objects.all().delete()
    client.login(username="dsj", password=PASSWORD)
    response = client.post("/workbench/services/drifts/check/", follow=True)
    assert response.status_code == 200
    assert "新发现差异 1 处" in response.content.decode()
    assert ItemDrift.objects.filter(status="open").count() == 1


def test_guide_page_in_english(client, seeded):
    text = client.get("/services/items/000117003000/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "E-licence accepted" in text and "Not needed (shared data)" in text and "Apply online" in text
