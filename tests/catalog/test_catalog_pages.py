"""Catalogue pages: search with facets, entry, create/edit with item rows, my drafts, review inbox."""

import pytest
from django.urls import reverse

from dgov.catalog.models import InformationResource

pytestmark = pytest.mark.django_db


def key(resource):
    return resource.code.replace("/", "-")


def form_data(classification, **overrides):
    data = {
        "classification": str(classification.pk),
        "name": "企业年报信息",
        "summary": "市场主体年度报告公示信息。",
        "format": "database",
        "sharing_type": "unconditional",
        "sharing_mode": "api",
        "open_type": "none",
        "update_cycle": "yearly",
        "items-TOTAL_FORMS": "3",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "300",
        "items-0-registry": "t.enterprise",
        "items-0-registry_field": "uscc",
        "items-0-is_own": "on",
        "items-1-code": "report_year",
        "items-1-name": "年报年度",
        "items-1-data_type": "C",
        "items-1-length": "4",
        "items-1-is_own": "on",
    }
    data.update(overrides)
    return data


def test_workbench_only(client, users):
    assert client.get(reverse("catalog:index")).status_code == 302  # login first
    client.force_login(users["citizen"])
    assert client.get(reverse("catalog:index")).status_code == 403


def test_search_page_with_facets_and_partial(client, users, make_entry):
    make_entry(users["scjg"], publish_by=users["dsj"])
    client.force_login(users["ga"])
    page = client.get(reverse("catalog:index"), {"q": "营业执照"})
    html = page.content.decode()
    assert page.status_code == 200 and "企业营业执照信息" in html and 'data-testid="catalog-facets"' in html
    assert "山东省市场监督管理局" in html
    partial = client.get(reverse("catalog:index"), {"q": "户籍"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="catalog-empty"' in partial and "<html" not in partial
    menu = client.get(reverse("catalog:index")).content.decode()
    assert reverse("catalog:index") in menu and reverse("catalog:reviews") not in menu


def test_create_edit_submit_review_through_pages(client, users, classes, registries):
    client.force_login(users["scjg"])
    assert client.get(reverse("catalog:create")).status_code == 200
    response = client.post(reverse("catalog:create"), form_data(classes["102001"]))
    assert response.status_code == 302, response.content.decode()[:2000]
    resource = InformationResource.objects.get(name="企业年报信息")
    assert [i.code for i in resource.items.order_by("position")] == ["uscc", "report_year"]
    bad = client.post(reverse("catalog:edit", args=[key(resource)]), form_data(classes["102001"], name=""))
    assert bad.status_code == 200 and 'data-testid="catalog-errors"' in bad.content.decode()
    client.post(reverse("catalog:submit", args=[key(resource)]))
    resource.refresh_from_db()
    assert resource.status == "submitted"
    assert reverse("catalog:mine") and "企业年报信息" in client.get(reverse("catalog:mine")).content.decode()

    client.force_login(users["ga"])  # another department: no edit, no decision
    assert client.get(reverse("catalog:edit", args=[key(resource)])).status_code == 403
    assert client.get(reverse("catalog:detail", args=[key(resource)])).status_code == 404  # not published yet
    assert client.get(reverse("catalog:reviews")).status_code == 403
    client.post(reverse("catalog:decide", args=[key(resource)]), {"decision": "approve"})
    resource.refresh_from_db()
    assert resource.status == "submitted"

    client.force_login(users["dsj"])
    inbox = client.get(reverse("catalog:reviews")).content.decode()
    assert "企业年报信息" in inbox
    detail = client.get(reverse("catalog:detail", args=[key(resource)])).content.decode()
    assert 'data-testid="review-form"' in detail and 'data-testid="quality-score"' in detail
    client.post(reverse("catalog:decide", args=[key(resource)]), {"decision": "approve", "reason": "同意"})
    resource.refresh_from_db()
    assert resource.status == "published" and resource.version == 1

    client.force_login(users["ga"])
    page = client.get(reverse("catalog:detail", args=[key(resource)])).content.decode()
    assert "已发布版本 v1" in page and "年报年度" in page and 'data-testid="review-form"' not in page


def test_conflict_shown_on_entry_and_in_inbox(client, users, make_entry):
    items = [{"registry": "t.person", "registry_field": "id_number", "sharing_type": "conditional"}]
    data = {"sharing_type": "conditional", "sharing_conditions": "核验"}
    make_entry(users["ga"], name="人口基本信息", cls="101001", items=items, publish_by=users["dsj"], **data)
    mz = make_entry(users["mz"], name="婚姻登记信息", cls="101003", items=items, **data)
    client.force_login(users["mz"])
    client.post(reverse("catalog:submit", args=[key(mz)]))
    page = client.get(reverse("catalog:detail", args=[key(mz)])).content.decode()
    assert 'data-testid="catalog-conflicts"' in page and "山东省公安厅" in page
    client.force_login(users["dsj"])
    assert 'data-testid="inbox-conflict"' in client.get(reverse("catalog:reviews")).content.decode()
