"""A first password for an account that has none (made by identity brokering), through the account console.

The brokered login itself is covered in tests/oidc/test_oidc_broker.py; here the account is made
without a password and re-authenticates with a second factor.
"""

import time

import pytest
from auth_fixtures import *  # noqa: F403
from auth_fixtures import current_code
from django.test import Client

from dgov.identity import services
from dgov.identity.authentication import SESSION_REAUTH
from dgov.identity.models import UserSession
from dgov.kernel.models import AuditRecord

pytestmark = pytest.mark.django_db

NEW = "a brand new long passphrase"


@pytest.fixture
def passwordless(django_user_model):
    """A person account without a usable password, as identity brokering makes them."""
    user = django_user_model.objects.create_user(
        username="national-1a2b3c4d", password=None, kind="person", display_name="李四"
    )
    assert not user.has_usable_password()
    return user


def browser(user) -> Client:
    """A test client whose session belongs to ``user`` (no recent authentication recorded)."""
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


def test_account_page_offers_to_set_a_password_instead_of_changing_it(passwordless, citizen):
    page = text(browser(passwordless).get("/account/"))
    assert "设置登录密码" in page and 'href="/account/password/set/"' in page
    assert 'href="/account/password/"' not in page

    other = text(browser(citizen).get("/account/"))
    assert 'href="/account/password/"' in other and "设置登录密码" not in other


def test_change_and_set_pages_send_each_account_to_the_one_that_fits(passwordless, citizen):
    assert browser(passwordless).get("/account/password/")["Location"] == "/account/password/set/"
    assert browser(citizen).get("/account/password/set/")["Location"] == "/account/password/"
    assert Client().get("/account/password/set/")["Location"].startswith("/login/")


def test_setting_a_password_needs_a_recent_authentication(passwordless):
    client = browser(passwordless)
    response = client.get("/account/password/set/")
    assert response.status_code == 302
    assert response["Location"] == "/account/reauth/?next=%2Faccount%2Fpassword%2Fset%2F"
    posted = client.post("/account/password/set/", {"new": NEW, "confirm": NEW})
    assert posted.status_code == 302 and posted["Location"].startswith("/account/reauth/")
    passwordless.refresh_from_db()
    assert not passwordless.has_usable_password()

    # Without a password and without a second factor or linked login, the page says how to proceed
    # and offers no password form; a password posted anyway is not tried (and not counted).
    reauth = client.get(response["Location"])
    assert reauth.status_code == 200
    assert 'data-testid="reauth-form"' not in text(reauth) and "请退出后重新登录" in text(reauth)
    client.post("/account/reauth/", {"method": "password", "secret": "anything", "next": "/account/password/set/"})
    assert not AuditRecord.objects.filter(action="identity.reauth").exists()
    assert client.get("/account/password/set/").status_code == 302


def test_set_a_first_password_after_reauthenticating_with_a_second_factor(passwordless, secret):
    services.provision_totp([passwordless], secret, actor="system:test")
    client = browser(passwordless)
    elsewhere = browser(passwordless)

    reauth = client.get("/account/reauth/?next=/account/password/set/")
    page = text(reauth)
    assert 'name="method" value="totp"' in page and "method=password" not in page  # no password to ask for
    ok = client.post(
        "/account/reauth/", {"method": "totp", "secret": current_code(secret), "next": "/account/password/set/"}
    )
    assert ok["Location"] == "/account/password/set/"
    form = client.get("/account/password/set/")
    assert form.status_code == 200 and 'data-testid="password-set-form"' in text(form)

    weak = client.post("/account/password/set/", {"new": "password1234", "confirm": "password1234"})
    assert weak.status_code == 200 and "常见密码" in text(weak)  # the ASVS policy of identity.passwords
    predictable = client.post("/account/password/set/", {"new": "1qaz2wsx3edc4rfv", "confirm": "1qaz2wsx3edc4rfv"})
    assert predictable.status_code == 200 and 'data-testid="password-set-form"' in text(predictable)
    mismatch = client.post("/account/password/set/", {"new": NEW, "confirm": NEW + "x"})
    assert "不一致" in text(mismatch)
    passwordless.refresh_from_db()
    assert not passwordless.has_usable_password()

    done = client.post("/account/password/set/", {"new": NEW, "confirm": NEW})
    assert done["Location"] == "/account/"
    passwordless.refresh_from_db()
    assert passwordless.check_password(NEW) and passwordless.password_changed_at is not None
    assert client.get("/api/v1/me").status_code == 200  # this session stays
    assert elsewhere.get("/api/v1/me").status_code == 401  # the others end, as after a change
    assert UserSession.objects.filter(user=passwordless, ended_at__isnull=True).count() == 1
    record = AuditRecord.objects.get(action="identity.password.set")
    assert record.outcome == "success" and record.actor_id == str(passwordless.pk)
    assert record.detail == {"other_sessions_ended": 1}

    # From now on it is an ordinary password: "change password" on the console, password login works,
    # and setting a "first" password again is not possible.
    assert 'href="/account/password/"' in text(client.get("/account/"))
    assert client.post("/account/password/set/", {"new": NEW + "2", "confirm": NEW + "2"})["Location"] == (
        "/account/password/"
    )
    fresh = Client()
    login = fresh.post("/login/", {"username": passwordless.username, "password": NEW})
    assert login.status_code == 302 and login["Location"] == "/login/verify/"  # its second factor follows


def test_set_password_service_refuses_a_stale_session_and_an_account_with_a_password(passwordless, citizen, rf):
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.exceptions import PermissionDenied

    request = rf.post("/account/password/set/")
    request.user, request.session = passwordless, SessionStore()
    request.session[SESSION_REAUTH] = int(time.time()) - 3600
    with pytest.raises(PermissionDenied):
        services.set_first_password(request, new=NEW)
    request.user = citizen
    request.session[SESSION_REAUTH] = int(time.time())
    with pytest.raises(PermissionDenied):
        services.set_first_password(request, new=NEW)
    assert not AuditRecord.objects.filter(action="identity.password.set").exists()
