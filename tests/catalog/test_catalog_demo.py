"""`dgov demo` seeds a realistic demo catalogue, once, with one deliberate 一数一源 conflict."""

import io

import pytest
from django.core.management import call_command

from dgov.catalog import search, services
from dgov.catalog.models import InformationResource

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_demo_catalogue(settings):
    out = io.StringIO()
    call_command("demo", "--persons", "40", "--enterprises", "4", stdout=out)
    assert "catalogue:" in out.getvalue()
    entries = InformationResource.objects.all()
    assert 30 <= entries.count() <= 60
    assert entries.filter(status="published").count() >= 30
    assert entries.filter(status="published", sharing_type="conditional").count() >= 5
    assert entries.filter(items__registry__isnull=False).distinct().count() >= 15
    marriage = entries.get(name="婚姻登记信息")
    assert marriage.status == "submitted"
    kinds = {c.kind for c in services.conflicts_for(marriage)}
    assert "registry_field" in kinds
    others = [r for r in entries.filter(status="published") if services.conflicts_for(r)]
    assert [r.name for r in others] == ["人口基本信息"]  # the one deliberate conflict, seen from both sides
    assert search.search(search.SearchQuery(text="营业执照")).entries[0].name == "企业营业执照信息"

    before = entries.count()
    again = io.StringIO()
    call_command("demo", "--if-missing", stdout=again)
    assert InformationResource.objects.count() == before
    assert "0 entries created" in again.getvalue()
