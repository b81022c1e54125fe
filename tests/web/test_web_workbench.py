"""The officials' workbench: who may enter and what it shows."""

import pytest
from django.urls import reverse

from dgov.kernel.models import Division, Organization

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("web:workbench"))
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/workbench/"


def test_person_is_refused_with_the_base_layout(client, citizen):
    client.force_login(citizen)
    response = client.get(reverse("web:workbench"))
    assert response.status_code == 403
    html = response.content.decode()
    assert "工作台仅向工作人员和系统管理员开放" in html
    assert 'href="/static/web/dgov.css"' in html


def test_enterprise_agent_is_refused(client, django_user_model):
    agent = django_user_model.objects.create_user(username="agent", password="x", kind="enterprise")
    client.force_login(agent)
    assert client.get(reverse("web:workbench")).status_code == 403


def test_official_sees_department_division_and_scoped_organizations(client, official, department, province):
    city = Division.objects.get(code="370100")
    Organization.objects.create(
        name="济南市公安局",
        code="370100-GA",
        uscc="11370100004312345X",
        level=2,
        division=city,
        parent=department,
    )
    other_province = Division.objects.create(code="320000", name="江苏省", level=1)
    Organization.objects.create(
        name="江苏省公安厅", code="320000-GA", uscc="11320000004312345X", level=1, division=other_province
    )
    client.force_login(official)
    response = client.get(reverse("web:workbench"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "山东省公安厅" in html
    assert "山东省（370000）" in html
    assert "济南市公安局" in html
    assert "江苏省公安厅" not in html  # outside the official's division
    assert response.context["organizations_total"] == 2
    assert response.context["nav_area"] == "workbench"
    assert [link.key for link in response.context["nav_workbench"]][0] == "home"


def test_official_without_department_gets_a_notice(client, django_user_model):
    user = django_user_model.objects.create_user(username="newbie", password="x", kind="official")
    client.force_login(user)
    response = client.get(reverse("web:workbench"))
    assert response.status_code == 200
    assert "尚未分配部门" in response.content.decode()


def test_official_header_links_to_workbench_but_not_admin(client, official):
    client.force_login(official)
    html = client.get("/").content.decode()
    assert 'href="/workbench/"' in html
    assert 'href="/admin/"' not in html
    assert "张警官" in html


def test_audit_card_shows_only_my_departments_actions(
    client, official, department, province, django_user_model
):
    from django.db import transaction

    from dgov.kernel.models import Organization
    from dgov.kernel.services import audit

    other_department = Organization.objects.create(
        name="山东省市场监督管理局", code="370000-SCJG", uscc="11370000004398765X", level=1, division=province
    )
    colleague = django_user_model.objects.create_user(
        username="colleague", password="x", kind="official", department=department
    )
    stranger = django_user_model.objects.create_user(
        username="stranger", password="x", kind="official", department=other_department
    )
    with transaction.atomic():
        audit.record("kernel.organization.update", actor=colleague, target=department)
        audit.record("kernel.organization.create", actor=stranger, target=other_department)
        audit.record("kernel.division.load", actor="system:loader")
    client.force_login(official)
    response = client.get(reverse("web:workbench"))
    records = response.context["audit_records"]
    assert [r.action for r in records] == ["kernel.organization.update"]
    html = response.content.decode()
    assert "kernel.organization.update" in html
    assert "kernel.organization.create" not in html
