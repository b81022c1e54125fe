"""Portal pages through the Django test client: layout, navigation, divisions search, login."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_home_renders_in_chinese_with_layout_assets(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="zh-Hans">' in html
    assert "让数据多跑路，让群众少跑腿" in html
    assert 'href="/static/web/dgov.css"' in html
    assert 'src="/static/vendor/htmx/htmx.min.js"' in html
    # One layout: the header, the language menu and the footer come from base.html.
    assert 'action="/i18n/setlang/"' in html
    assert 'class="site-footer"' in html


def test_no_cdn_or_external_asset_on_pages(client):
    for url in ["/", "/divisions/", "/login/"]:
        html = client.get(url).content.decode()
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets, url
        assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], url


def test_portal_navigation_links_only_existing_pages(client):
    response = client.get("/")
    nav = response.context["nav_portal"]
    urls = {link.key: link.url for link in nav}
    assert urls["home"] == "/"
    assert urls["divisions"] == "/divisions/"
    for link in nav:
        assert client.get(link.url).status_code == 200
    home_link = next(link for link in nav if link.key == "home")
    assert home_link.active
    assert 'aria-current="page"' in response.content.decode()


def test_anonymous_sees_login_link_and_no_workbench_menu(client):
    response = client.get("/")
    html = response.content.decode()
    assert 'href="/login/"' in html  # from the home page officials should land on their workbench
    assert 'href="/login/?next=/divisions/"' in client.get("/divisions/").content.decode()
    assert response.context["nav_workbench"] == []
    assert "/workbench/" not in html


def test_divisions_page_starts_with_the_demo_province(client, province):
    response = client.get("/divisions/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "山东省 下辖 1 个区划" in html
    assert "370100" in html
    assert 'hx-get="/divisions/"' in html
    assert 'id="division-results"' in html
    assert "返回上级" not in html


def test_division_search_returns_partial_for_htmx(client, province):
    response = client.get("/divisions/", {"q": "济南"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "370100" in html
    assert "370000" not in html
    assert "<html" not in html  # a fragment, not a page
    assert [t.name for t in response.templates][0] == "web/_division_results.html"
    assert "HX-Request" in response["Vary"]


def test_division_search_full_page_without_htmx(client, province):
    response = client.get("/divisions/", {"q": "3701"})
    html = response.content.decode()
    assert "<html" in html
    assert "370100" in html
    assert 'value="3701"' in html


def test_division_history_restore_gets_full_page(client, province):
    response = client.get("/divisions/", {"q": "济南"}, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in response.content.decode()


def test_division_browse_children_and_invalid_parent(client, province):
    from dgov.kernel.models import Division

    Division.objects.create(
        code="370102",
        name="历下区",
        full_name="山东省济南市历下区",
        level=3,
        parent=Division.objects.get(code="370100"),
    )
    response = client.get("/divisions/", {"parent": "370100"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "370102" in html
    assert "山东省济南市 下辖 1 个区划" in html
    assert 'hx-get="?parent=370000"' in html  # back up one level
    bad = client.get("/divisions/", {"parent": "37x"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 200
    assert 'data-testid="division-invalid"' in bad.content.decode()
    unknown = client.get("/divisions/", {"parent": "999999"}, HTTP_HX_REQUEST="true")
    assert 'data-testid="division-empty"' in unknown.content.decode()


def test_division_search_without_match(client, province):
    response = client.get("/divisions/", {"q": "不存在的地方"}, HTTP_HX_REQUEST="true")
    assert 'data-testid="division-empty"' in response.content.decode()


def test_login_page_is_a_plain_form_with_csrf(client):
    response = client.get(reverse("web:login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'method="post"' in html


def test_official_login_lands_on_workbench(client, official, user_password):
    # Officials must pass a second factor (ADR 0012): the password step leads to it, then the workbench.
    from dgov.identity import services, totp

    secret = totp.generate_secret()
    services.provision_totp([official], secret, actor="system:test")
    response = client.post(reverse("web:login"), {"username": "official1", "password": user_password})
    assert response.status_code == 302
    assert response["Location"] == reverse("identity:login_verify")
    code = totp.code_at(secret, totp.current_step())
    response = client.post(response["Location"], {"method": "totp", "code": code})
    assert response.status_code == 302
    assert response["Location"] == "/workbench/"


def test_citizen_login_lands_on_home_and_respects_next(client, citizen, user_password):
    response = client.post(reverse("web:login"), {"username": "citizen1", "password": user_password})
    assert response["Location"] == "/"
    client.logout()
    response = client.post(
        reverse("web:login"), {"username": "citizen1", "password": user_password, "next": "/divisions/"}
    )
    assert response["Location"] == "/divisions/"


def test_login_refuses_wrong_password_and_offsite_next(client, citizen, user_password):
    response = client.post(reverse("web:login"), {"username": "citizen1", "password": "wrong-password"})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    response = client.post(
        reverse("web:login"),
        {"username": "citizen1", "password": user_password, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/"


def test_logout_requires_post(client, citizen):
    client.force_login(citizen)
    assert client.get(reverse("web:logout")).status_code == 405
    assert client.get("/api/v1/me").status_code == 200
    response = client.post(reverse("web:logout"))
    assert response.status_code == 302
    assert client.get("/api/v1/me").status_code == 401


def test_admin_has_platform_header_and_is_staff_only(client, official, admin_user):
    response = client.get("/admin/login/")
    assert "dgov 数字政府平台管理" in response.content.decode()
    client.force_login(official)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200


def test_home_capability_becomes_a_link_once_an_app_registers_it(client):
    from dgov.web import navigation

    html = client.get("/").content.decode()
    assert "<h3>12345 热线</h3>" in html  # plain text: no hotline page exists yet
    assert '<h3><a href="/services/">一网通办</a></h3>' in html  # registered by dgov.services
    navigation.register("portal", "hotline", "12345 热线", "web:divisions", order=40)
    try:
        response = client.get("/")
        html = response.content.decode()
        assert '<h3><a href="/divisions/">12345 热线</a></h3>' in html
        assert "hotline" in [link.key for link in response.context["nav_portal"]]
    finally:
        navigation.unregister("portal", "hotline")
