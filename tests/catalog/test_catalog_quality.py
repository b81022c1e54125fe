"""Quality scores in the catalogue: the badge on the search and entry pages and ``quality`` in the API."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dgov.quality.models import QualityRun, RuleResult

pytestmark = pytest.mark.django_db

API = "/api/v1/catalog"


def key(resource):
    return resource.code.replace("/", "-")


def finished_run(registry, score, grade, *, status=QualityRun.Status.SUCCEEDED, minutes_ago=0):
    """A finished run of ``registry`` with the given overall score."""
    return QualityRun.objects.create(
        registry=registry,
        status=status,
        finished_at=timezone.now() - datetime.timedelta(minutes=minutes_ago),
        score=Decimal(score) if score is not None else None,
        grade=grade,
    )


@pytest.fixture
def entries(users, make_entry):
    """An enterprise entry, a person entry, and an entry linked to no registry field."""
    enterprise = make_entry(users["scjg"], publish_by=users["dsj"])
    person = make_entry(
        users["ga"],
        name="人口基本信息",
        cls="101001",
        publish_by=users["dsj"],
        sharing_type="conditional",
        sharing_conditions="身份核验",
        items=[{"registry": "t.person", "registry_field": "id_number"}],
    )
    unlinked = make_entry(
        users["scjg"],
        name="企业年报信息",
        publish_by=users["dsj"],
        items=[{"code": "report_year", "name": "年报年度", "data_type": "C", "length": 4, "is_own": True}],
    )
    return {"enterprise": enterprise, "person": person, "unlinked": unlinked}


def test_registry_run_score_on_pages_and_api(client, users, registries, entries):
    finished_run(registries["enterprise"], "70.00", "D", minutes_ago=60)
    finished_run(registries["enterprise"], "91.50", "B")  # the latest successful run counts
    finished_run(registries["enterprise"], None, "", status=QualityRun.Status.FAILED)
    client.force_login(users["mz"])

    page = client.get(reverse("catalog:index"), {"q": "营业执照"}).content.decode()
    assert "质量评分 91.50（B）" in page
    detail = client.get(reverse("catalog:detail", kwargs={"key": key(entries["enterprise"])})).content.decode()
    assert "质量评分 91.50（B）" in detail

    body = client.get(f"{API}/resources/{key(entries['enterprise'])}").json()
    assert body["quality"]["score"] == 91.5 and body["quality"]["grade"] == "B"
    assert body["quality"]["evaluated_at"]
    assert body["quality_score"] is None  # the existing field is unchanged


def test_resource_rules_take_precedence(client, users, orgs, registries, entries):
    run = finished_run(registries["person"], "99.00", "A")
    RuleResult.objects.create(
        run=run,
        rule_code="r.person.id",
        rule_name="身份证号校验",
        rule_type="resident_id",
        dimension="accuracy",
        weight=2,
        owner=orgs["ga"],
        resource=entries["person"],
        checked=100,
        failed=40,
    )
    client.force_login(users["mz"])
    detail = client.get(reverse("catalog:detail", kwargs={"key": key(entries["person"])})).content.decode()
    assert "质量评分 60.00（D）" in detail
    body = client.get(f"{API}/resources/{key(entries['person'])}").json()
    assert body["quality"]["score"] == 60.0 and body["quality"]["grade"] == "D"


def test_without_score(client, users, registries, entries):
    finished_run(registries["person"], None, "", status=QualityRun.Status.FAILED)
    client.force_login(users["mz"])
    for entry in entries.values():
        detail = client.get(reverse("catalog:detail", kwargs={"key": key(entry)})).content.decode()
        assert "暂无评分" in detail and "质量评分 " not in detail
        assert client.get(f"{API}/resources/{key(entry)}").json()["quality"] is None
    page = client.get(reverse("catalog:index")).content.decode()
    assert page.count("暂无评分") == 3


def test_search_page_queries_do_not_grow_with_results(client, users, registries, make_entry):
    finished_run(registries["enterprise"], "88.00", "B")
    finished_run(registries["person"], "97.00", "A")
    client.force_login(users["mz"])
    make_entry(users["scjg"], publish_by=users["dsj"])
    client.get(reverse("catalog:index"))  # warm up session and caches
    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("catalog:index")).status_code == 200
    for index in range(3):
        make_entry(users["scjg"], name=f"企业登记信息{index}", publish_by=users["dsj"])
    make_entry(
        users["ga"],
        name="人口基本信息",
        cls="101001",
        publish_by=users["dsj"],
        sharing_type="conditional",
        sharing_conditions="身份核验",
        items=[{"registry": "t.person", "registry_field": "id_number"}],
    )
    with CaptureQueriesContext(connection) as five:
        page = client.get(reverse("catalog:index")).content.decode()
    assert page.count("质量评分 88.00（B）") == 4 and page.count("质量评分 97.00（A）") == 1
    assert len(five) == len(one)
