"""API client administration pages (接口客户端管理) under /workbench/api-clients/.

Platform administrators and officials of the provincial big-data bureau (DSJ) list, create,
rotate, re-scope and deactivate clients; secrets are shown once; every change goes through the
identity services and is audited; everyone else is refused (and a refused change is audited).
"""

import json
import re

import pytest
from django.urls import reverse

from dgov.identity import services
from dgov.identity.models import ApiClient
from dgov.kernel.models import AuditRecord, Division, Organization
from dgov.kernel.validators import make_uscc

pytestmark = pytest.mark.django_db


@pytest.fixture
def orgs(province):
    """Provincial GA and DSJ, and the DSJ of 济南市 (a city: not an administrator of clients)."""
    city = Division.objects.get(code="370100")

    def make(code, name, kind, level, division, serial):
        return Organization.objects.create(
            name=name,
            code=code,
            kind=kind,
            level=level,
            division=division,
            uscc=make_uscc("1", "1", division.code, serial=serial),
        )

    return {
        "ga": make("370000-GA", "山东省公安厅", "GA", 1, province, 1),
        "dsj": make("370000-DSJ", "山东省大数据局", "DSJ", 1, province, 2),
        "dsj_city": make("370100-DSJ", "济南市大数据局", "DSJ", 2, city, 3),
    }


@pytest.fixture
def users(orgs, django_user_model):
    """An administrator, officials of each department and a citizen."""
    made = {
        key: django_user_model.objects.create_user(
            username=f"c-{key}", password="x-Pass-12345", kind="official", department=org
        )
        for key, org in orgs.items()
    }
    made["admin"] = django_user_model.objects.create_user(username="c-admin", password="x-Pass-12345", kind="admin")
    made["citizen"] = django_user_model.objects.create_user(username="c-person", password="x-Pass-12345")
    return made


@pytest.fixture
def ga_client(orgs):
    """An existing client of the provincial GA."""
    client, _secret = services.create_api_client(
        "公安人口系统", orgs["ga"], ["registry:read"], actor="system:test", client_id="ga-pop"
    )
    return client


def actions(prefix="identity.api_client"):
    """(action, outcome) of the client audit records, in order."""
    return list(AuditRecord.objects.filter(action__startswith=prefix).order_by("seq").values_list("action", "outcome"))


INDEX = "/workbench/api-clients/"


def test_urls():
    assert reverse("api_clients:index") == INDEX
    assert reverse("api_clients:detail", kwargs={"client_id": "ga-pop"}) == INDEX + "ga-pop/"


@pytest.mark.parametrize("who", ["admin", "dsj"])
def test_administrators_see_the_list_and_the_menu_entry(client, users, ga_client, who):
    client.force_login(users[who])
    response = client.get(INDEX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "公安人口系统" in html and "ga-pop" in html and "山东省公安厅" in html and "registry:read" in html
    assert ga_client.secret_hash not in html
    assert any(link.key == "api_clients" for link in response.context["nav_workbench"])


@pytest.mark.parametrize("who", ["ga", "dsj_city", "citizen"])
def test_others_are_refused_and_see_no_menu_entry(client, users, ga_client, who):
    client.force_login(users[who])
    for url in (INDEX, INDEX + "new/", INDEX + "ga-pop/", INDEX + "no-such/"):
        assert client.get(url).status_code == 403, url
    for suffix in ("rotate/", "deactivate/", "scopes/"):
        response = client.post(INDEX + "ga-pop/" + suffix, {"reason": "x", "scopes": ["registry:write"]})
        assert response.status_code == 403, suffix
    assert client.post(INDEX + "new/", {"name": "x", "organization": "370000-GA"}).status_code == 403
    ga_client.refresh_from_db()
    assert ga_client.is_active and ga_client.scopes == ["registry:read"]
    assert ("identity.api_client.rotate_secret", "denied") in actions()
    assert ("identity.api_client.deactivate", "denied") in actions()
    if who != "citizen":
        workbench = client.get(reverse("web:workbench"))
        assert not any(link.key == "api_clients" for link in workbench.context["nav_workbench"])


def test_anonymous_users_go_to_login(client):
    response = client.get(INDEX)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_create_shows_the_secret_once(client, users, orgs):
    client.force_login(users["dsj"])
    response = client.post(
        INDEX + "new/",
        {"name": "卫健出生证明系统", "organization": "370000-GA", "scopes": ["registry:read", "registry:write"]},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    created = ApiClient.objects.get(name="卫健出生证明系统")
    secret = response.context["secret"]
    assert services.authenticate_client(created.client_id, secret) == created
    assert secret in response.content.decode()
    assert created.organization == orgs["ga"] and created.scopes == ["registry:read", "registry:write"]
    assert created.created_by == "c-dsj"
    assert actions() == [("identity.api_client.create", "success")]
    assert secret not in AuditRecord.objects.get(action="identity.api_client.create").detail_json
    detail = client.get(INDEX + created.client_id + "/").content.decode()
    assert secret not in detail and created.secret_hash not in detail


def test_create_reports_bad_input(client, users, ga_client):
    client.force_login(users["admin"])
    form = client.get(INDEX + "new/")
    assert form.status_code == 200 and 'value="registry:read"' in form.content.decode()
    bad = client.post(INDEX + "new/", {"name": "", "organization": "999999-XX", "client_id": "Bad Id!"})
    assert bad.status_code == 400
    errors = bad.context["form"].errors
    assert set(errors) == {"name", "organization", "client_id"}
    taken = client.post(INDEX + "new/", {"name": "重复", "organization": "370000-GA", "client_id": "ga-pop"})
    assert taken.status_code == 400 and "已存在" in taken.content.decode()
    unknown_scope = client.post(INDEX + "new/", {"name": "x", "organization": "370000-GA", "scopes": ["root"]})
    assert unknown_scope.status_code == 400
    assert ApiClient.objects.count() == 1


def test_rotate_shows_a_new_secret_once_and_the_old_one_stops_working(client, users, ga_client):
    old = services.rotate_client_secret(ga_client, actor="system:test")
    client.force_login(users["admin"])
    response = client.post(INDEX + "ga-pop/rotate/")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    new = response.context["secret"]
    assert new != old and new in response.content.decode()
    assert services.authenticate_client("ga-pop", new) is not None
    assert services.authenticate_client("ga-pop", old) is None
    assert [a for a in actions() if a[0] == "identity.api_client.rotate_secret"] == [
        ("identity.api_client.rotate_secret", "success"),
        ("identity.api_client.rotate_secret", "success"),
    ]
    assert client.get(INDEX + "ga-pop/rotate/").status_code == 405


def test_edit_scopes(client, users, ga_client):
    client.force_login(users["dsj"])
    page = client.get(INDEX + "ga-pop/")
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(r'value="registry:read"[^>]*checked', html)
    assert not re.search(r'value="registry:write"[^>]*checked', html)
    response = client.post(INDEX + "ga-pop/scopes/", {"scopes": ["registry:read", "registry:unmask"]})
    assert response.status_code == 302
    ga_client.refresh_from_db()
    assert ga_client.scopes == ["registry:read", "registry:unmask"]
    record = AuditRecord.objects.get(action="identity.api_client.update_scopes")
    assert json.loads(record.detail_json)["old"] == ["registry:read"]
    bad = client.post(INDEX + "ga-pop/scopes/", {"scopes": ["root"]})
    assert bad.status_code == 400
    client.post(INDEX + "ga-pop/scopes/", {})  # no scopes at all: allowed (the client can call nothing)
    ga_client.refresh_from_db()
    assert ga_client.scopes == []


def test_deactivate_needs_a_reason_and_stops_the_client(client, users, ga_client):
    secret = services.rotate_client_secret(ga_client, actor="system:test")
    client.force_login(users["admin"])
    assert client.post(INDEX + "ga-pop/deactivate/", {"reason": ""}).status_code == 400
    response = client.post(INDEX + "ga-pop/deactivate/", {"reason": "系统下线"})
    assert response.status_code == 302
    ga_client.refresh_from_db()
    assert not ga_client.is_active
    assert services.authenticate_client("ga-pop", secret) is None
    page = client.get(INDEX + "ga-pop/").content.decode()
    assert 'data-testid="client-inactive"' in page and 'data-testid="rotate-form"' not in page
    rotated = client.post(INDEX + "ga-pop/rotate/")
    assert rotated.status_code == 302  # a deactivated client gets no new secret
    detail = json.loads(AuditRecord.objects.get(action="identity.api_client.deactivate").detail_json)
    assert detail["reason"] == "系统下线"


def test_unknown_client_is_404_for_administrators(client, users):
    client.force_login(users["admin"])
    assert client.get(INDEX + "no-such/").status_code == 404
    assert client.post(INDEX + "no-such/rotate/").status_code == 404


def test_services_refuse_non_administrators(users, ga_client):
    with pytest.raises(services.PermissionDenied):
        services.update_client_scopes(ga_client, ["registry:write"], actor=users["ga"])
    with pytest.raises(services.PermissionDenied):
        services.create_api_client("x", ga_client.organization, [], actor=users["dsj_city"])
    with pytest.raises(services.PermissionDenied):
        services.list_api_clients(actor=users["citizen"])
    assert services.may_manage_api_clients(users["dsj"]) and services.may_manage_api_clients(users["admin"])
    assert [a for a in actions() if a[1] == "denied"] == [
        ("identity.api_client.update_scopes", "denied"),
        ("identity.api_client.create", "denied"),
    ]


def test_pages_in_english(client, users, ga_client, settings):
    client.force_login(users["admin"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(INDEX).content.decode()
    assert "API clients" in html and "New client" in html and "Last used" in html


def test_command_refuses_to_rotate_a_deactivated_client(ga_client):
    from django.core.management import CommandError, call_command
    from django.utils import translation

    services.deactivate_api_client(ga_client, actor="system:test", reason="下线")
    with translation.override("zh-hans"), pytest.raises(CommandError, match="已停用"):
        call_command("identity", "client", "rotate", "ga-pop")
