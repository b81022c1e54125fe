"""Account console: profile, sessions (list, revoke, log out everywhere), re-authentication, password, phone, MFA."""

import time

import pytest
from auth_fixtures import *  # noqa: F403
from auth_fixtures import current_code, last_sms_code
from django.test import Client

from dgov.identity import services
from dgov.identity.authentication import SESSION_REAUTH
from dgov.identity.models import MfaMethod, UserSession
from dgov.kernel.models import AuditRecord

pytestmark = pytest.mark.django_db

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)


def logged_in(username, password, **headers):
    client = Client(**headers)
    response = client.post("/login/", {"username": username, "password": password})
    assert response.status_code == 302, response
    return client


def expire_reauth(client):
    session = client.session
    session[SESSION_REAUTH] = int(time.time()) - 3600
    session.save()


def test_account_page_shows_profile_and_sessions(citizen, user_password):
    desktop = logged_in("citizen1", user_password, HTTP_USER_AGENT=CHROME, REMOTE_ADDR="192.0.2.10")
    logged_in("citizen1", user_password, HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="192.0.2.11")
    html = desktop.get("/account/").content.decode()
    assert "账号与安全" in html and "citizen1" in html
    assert "Chrome 120 · Windows" in html and "Safari 17 · iOS" in html
    assert "192.0.2.10" in html and "192.0.2.11" in html
    assert html.count('data-session="') == 2 and html.count("当前会话") == 1
    assert 'data-testid="amr">pwd<' in html
    # the header links to the console
    assert 'href="/account/"' in desktop.get("/").content.decode()


def test_account_requires_login(client):
    assert client.get("/account/")["Location"] == "/login/?next=/account/"


def test_revoking_a_session_logs_that_browser_out(citizen, user_password):
    mine = logged_in("citizen1", user_password)
    other = logged_in("citizen1", user_password)
    other_row = UserSession.objects.get(session_key=other.session.session_key)
    response = mine.post(f"/account/sessions/{other_row.pk}/revoke/")
    assert response.status_code == 302
    assert other.get("/api/v1/me").status_code == 401
    assert mine.get("/api/v1/me").status_code == 200
    other_row.refresh_from_db()
    assert other_row.ended_at is not None and other_row.end_reason == "revoked"
    assert AuditRecord.objects.filter(action="identity.session.revoke").count() == 1


def test_someone_elses_session_cannot_be_revoked(citizen, official, user_password):
    victim = logged_in("citizen1", user_password)
    row = UserSession.objects.get(session_key=victim.session.session_key)
    attacker = Client()
    attacker.force_login(official)
    assert attacker.post(f"/account/sessions/{row.pk}/revoke/").status_code == 403
    assert victim.get("/api/v1/me").status_code == 200
    assert attacker.get(f"/account/sessions/{row.pk}/revoke/").status_code == 405


def test_log_out_other_devices_and_everywhere(citizen, user_password):
    first = logged_in("citizen1", user_password)
    second = logged_in("citizen1", user_password)
    third = logged_in("citizen1", user_password)
    first.post("/account/sessions/revoke-others/")
    assert first.get("/api/v1/me").status_code == 200
    assert second.get("/api/v1/me").status_code == 401 and third.get("/api/v1/me").status_code == 401
    first.post("/account/sessions/revoke-all/")
    assert first.get("/api/v1/me").status_code == 401
    assert not [s for s in services.active_sessions(citizen)]


def test_logout_ends_the_tracked_session(citizen, user_password):
    client = logged_in("citizen1", user_password)
    key = client.session.session_key
    client.post("/logout/")
    assert UserSession.objects.get(session_key=key).end_reason == "logout"


def test_force_login_sessions_are_tracked_without_methods(client, citizen):
    client.force_login(citizen)
    request = client.get("/account/").wsgi_request
    methods, auth_time = services.session_auth_methods(request)
    assert methods == [] and auth_time is not None


def test_sensitive_pages_ask_to_reauthenticate(citizen, user_password):
    client = logged_in("citizen1", user_password)
    assert client.get("/account/mfa/").status_code == 200  # just logged in: recent enough
    expire_reauth(client)
    for page in ("/account/mfa/", "/account/phone/"):
        response = client.get(page)
        assert response.status_code == 302 and response["Location"].startswith("/account/reauth/?next=")
    bad = client.post("/account/reauth/", {"method": "password", "secret": "wrong", "next": "/account/mfa/"})
    assert bad.status_code == 200 and "验证未通过" in bad.content.decode()
    good = client.post("/account/reauth/", {"method": "password", "secret": user_password, "next": "/account/mfa/"})
    assert good["Location"] == "/account/mfa/"
    assert client.get("/account/mfa/").status_code == 200
    assert AuditRecord.objects.filter(action="identity.reauth", outcome="failed").count() == 1
    assert AuditRecord.objects.filter(action="identity.reauth", outcome="success").count() == 1


def test_reauth_with_totp_adds_otp_and_refuses_offsite_next(client, enrolled_official, secret, user_password):
    client.post("/login/", {"username": "official1", "password": user_password})
    client.post("/login/verify/", {"method": "totp", "code": current_code(secret)})
    expire_reauth(client)
    response = client.post(
        "/account/reauth/", {"method": "totp", "secret": current_code(secret, 1), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/account/"


def test_change_password(citizen, user_password):
    client = logged_in("citizen1", user_password)
    elsewhere = logged_in("citizen1", user_password)
    new = "a brand new long passphrase"
    wrong = client.post("/account/password/", {"current": "nope", "new": new, "confirm": new})
    assert "当前密码不正确" in wrong.content.decode()
    weak_form = {"current": user_password, "new": "password1234", "confirm": "password1234"}
    weak = client.post("/account/password/", weak_form)
    assert weak.status_code == 200 and "常见密码" in weak.content.decode()
    mismatch = client.post("/account/password/", {"current": user_password, "new": new, "confirm": new + "x"})
    assert "不一致" in mismatch.content.decode()
    done = client.post("/account/password/", {"current": user_password, "new": new, "confirm": new})
    assert done["Location"] == "/account/"
    assert client.get("/api/v1/me").status_code == 200  # this session stays
    assert elsewhere.get("/api/v1/me").status_code == 401  # the others end
    citizen.refresh_from_db()
    assert citizen.check_password(new) and citizen.password_changed_at is not None
    assert UserSession.objects.filter(user=citizen, ended_at__isnull=True).count() == 1
    assert AuditRecord.objects.filter(action="identity.password.change", outcome="success").count() == 1
    assert AuditRecord.objects.filter(action="identity.password.change", outcome="failed").count() == 1


def test_change_phone_with_a_code_sent_to_the_new_number(citizen, user_password):
    client = logged_in("citizen1", user_password)
    response = client.post("/account/phone/", {"action": "send", "phone": "139 1111 2222"})
    assert response.status_code == 200 and "验证码已发送" in response.content.decode()
    code = last_sms_code()
    bad = client.post("/account/phone/", {"action": "confirm", "phone": "13911112222", "code": "000000"})
    assert "验证码不正确" in bad.content.decode()
    other = client.post("/account/phone/", {"action": "confirm", "phone": "13911113333", "code": code})
    assert "验证码不正确" in other.content.decode()  # a code confirms only the number it went to
    done = client.post("/account/phone/", {"action": "confirm", "phone": "13911112222", "code": code})
    assert done["Location"] == "/account/"
    citizen.refresh_from_db()
    assert citizen.phone == "+8613911112222"
    assert "139****2222" in client.get("/account/").content.decode()
    record = AuditRecord.objects.get(action="identity.phone.change", outcome="success")
    assert "13911112222" not in record.detail_json and "139****2222" in record.detail_json
    client.logout()
    assert logged_in("13911112222", user_password).get("/api/v1/me").status_code == 200


def test_bad_phone_input_is_a_form_error(citizen, user_password):
    client = logged_in("citizen1", user_password)
    response = client.post("/account/phone/", {"action": "send", "phone": "12345"})
    assert response.status_code == 200 and "11 位手机号码" in response.content.decode()


def test_person_enables_and_removes_totp(citizen, user_password):
    client = logged_in("citizen1", user_password)
    html = client.get("/account/mfa/").content.decode()
    assert "<svg" in html
    method = MfaMethod.objects.get(user=citizen, confirmed_at__isnull=True)
    response = client.post("/account/mfa/", {"action": "totp", "code": current_code(method.secret)})
    assert response["Location"] == "/account/mfa/"
    assert services.mfa_methods(citizen) == ["totp"]
    client.post("/account/mfa/", {"action": "remove_totp"})
    assert services.mfa_methods(citizen) == []
    assert AuditRecord.objects.filter(action="identity.mfa.totp.disable").exists()


def test_official_cannot_remove_the_only_second_factor(client, enrolled_official, secret, user_password):
    client.post("/login/", {"username": "official1", "password": user_password})
    client.post("/login/verify/", {"method": "totp", "code": current_code(secret)})
    response = client.post("/account/mfa/", {"action": "remove_totp"}, follow=True)
    assert "必须启用至少一种" in response.content.decode()
    assert services.mfa_methods(enrolled_official) == ["totp"]
    # with SMS turned on as well, the authenticator can go
    client.post("/account/mfa/", {"action": "send_sms"})
    assert client.post("/account/mfa/", {"action": "sms", "code": last_sms_code()})["Location"] == "/account/mfa/"
    client.post("/account/mfa/", {"action": "remove_totp"})
    assert services.mfa_methods(enrolled_official) == ["sms"]


def test_replacing_the_authenticator_invalidates_the_old_one(client, enrolled_official, secret, user_password):
    client.post("/login/", {"username": "official1", "password": user_password})
    client.post("/login/verify/", {"method": "totp", "code": current_code(secret)})
    assert "<svg" in client.get("/account/mfa/?replace=totp").content.decode()
    new = MfaMethod.objects.get(user=enrolled_official, confirmed_at__isnull=True)
    client.post("/account/mfa/", {"action": "totp", "code": current_code(new.secret)})
    confirmed = MfaMethod.objects.get(user=enrolled_official, kind="totp", confirmed_at__isnull=False)
    assert confirmed.secret == new.secret != secret


def test_a_session_whose_row_was_ended_is_logged_out_at_its_next_touch(citizen, user_password):
    client = logged_in("citizen1", user_password)
    key = client.session.session_key
    UserSession.objects.filter(session_key=key).update(ended_at="2026-01-01T00:00:00Z", end_reason="revoked")
    assert client.get("/api/v1/me").status_code == 200  # touched less than a minute ago
    session = client.session
    session["_dgov_seen"] = 0
    session.save()
    response = client.get("/account/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/api/v1/me").status_code == 401


def test_account_pages_in_english(citizen, user_password, settings):
    client = logged_in("citizen1", user_password)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get("/account/").content.decode()
    assert "Account and security" in html and "Devices and sessions" in html and "This session" in html
    assert "Authenticator app" in client.get("/account/mfa/").content.decode()
