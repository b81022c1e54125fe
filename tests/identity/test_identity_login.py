"""Login: password step, one refusal message, lockout per account and per IP, second factors, amr."""

from datetime import timedelta

import pytest
from auth_fixtures import *  # noqa: F403
from auth_fixtures import current_code, last_sms_code
from django.test import Client
from django.utils import timezone

from dgov.identity import authentication, services
from dgov.identity.models import LoginThrottle, MfaMethod, OneTimeCode, UserSession
from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord

pytestmark = pytest.mark.django_db

REFUSAL = "登录失败：用户名或密码不正确，或尝试次数过多已被暂时限制。请核对后稍后再试。"


def post_login(client, username, password, **extra):
    return client.post("/login/", {"username": username, "password": password}, **extra)


def test_citizen_logs_in_with_password_only_and_session_records_pwd(client, citizen, user_password):
    response = post_login(client, "citizen1", user_password)
    assert response.status_code == 302 and response["Location"] == "/"
    request = client.get("/account/").wsgi_request
    methods, auth_time = services.session_auth_methods(request)
    assert methods == ["pwd"]
    assert abs(auth_time - int(timezone.now().timestamp())) < 5
    record = AuditRecord.objects.filter(action="identity.login", outcome="success").get()
    assert record.actor_id == str(citizen.pk) and '"methods":["pwd"]' in record.detail_json
    assert UserSession.objects.get(user=citizen).methods == ["pwd"]


def test_anonymous_request_has_no_auth_methods(client):
    request = client.get("/").wsgi_request
    assert services.session_auth_methods(request) == ([], None)


def test_unknown_name_wrong_password_and_lock_get_one_message_and_one_hash(client, citizen, monkeypatch):
    hashed = []
    real = authentication.make_password
    monkeypatch.setattr(authentication, "make_password", lambda p: hashed.append(1) or real(p))
    unknown = post_login(client, "nobody-here", "some password")
    wrong = post_login(client, "citizen1", "wrong password")
    for response in (unknown, wrong):
        assert response.status_code == 200
        assert REFUSAL in response.content.decode()
    assert len(hashed) == 1  # the unknown name cost a hash too (the known one was checked for real)
    failures = AuditRecord.objects.filter(action="identity.login", outcome="failed")
    assert sorted(r.detail_json.split('"reason":"')[1].split('"')[0] for r in failures) == [
        "bad_password",
        "unknown_name",
    ]
    assert "nobody-here" not in "".join(r.detail_json + r.target_label for r in failures)


def test_account_locks_after_five_failures_with_backoff(client, citizen, user_password):
    for _ in range(5):
        assert REFUSAL in post_login(client, "citizen1", "wrong password").content.decode()
    lock = LoginThrottle.objects.get(scope="account", key=f"user:{citizen.pk}")
    assert lock.is_locked() and lock.lock_level == 1
    first = (lock.locked_until - timezone.now()).total_seconds()
    assert 50 < first <= 60
    # the right password is refused while locked, with the same message
    response = post_login(client, "citizen1", user_password)
    assert response.status_code == 200 and REFUSAL in response.content.decode()
    assert AuditRecord.objects.filter(action="identity.login.lock").count() == 1
    assert AuditRecord.objects.filter(action="identity.login", outcome="denied").exists()

    # the lock runs out; five more failures lock it twice as long
    LoginThrottle.objects.filter(pk=lock.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    for _ in range(5):
        post_login(client, "citizen1", "wrong password")
    lock.refresh_from_db()
    assert lock.lock_level == 2
    assert 110 < (lock.locked_until - timezone.now()).total_seconds() <= 120

    # after the lock a successful login clears the account's counter
    LoginThrottle.objects.filter(pk=lock.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert post_login(client, "citizen1", user_password).status_code == 302
    assert not LoginThrottle.objects.filter(scope="account", key=f"user:{citizen.pk}").exists()


def test_unknown_names_are_locked_the_same_way(client):
    for _ in range(5):
        post_login(client, "ghost", "whatever")
    key = "name:" + blind_index("ghost", purpose=authentication.LOGIN_NAME_PURPOSE)
    assert LoginThrottle.objects.get(scope="account", key=key).is_locked()


def test_client_ip_is_locked_after_many_failures_across_accounts(citizen, user_password, settings):
    settings.LOGIN_IP_MAX_FAILURES = 4
    attacker = Client(REMOTE_ADDR="192.0.2.7")
    for name in ("a1", "a2", "a3", "a4"):
        post_login(attacker, name, "guess-guess")
    assert LoginThrottle.objects.get(scope="ip", key="192.0.2.7").is_locked()
    # even a correct password is refused from that address …
    assert REFUSAL in post_login(attacker, "citizen1", user_password).content.decode()
    # … but works from another one
    assert post_login(Client(REMOTE_ADDR="198.51.100.9"), "citizen1", user_password).status_code == 302
    lock = AuditRecord.objects.get(action="identity.login.lock")
    assert '"scope":"ip"' in lock.detail_json and lock.target_id == "192.0.2.7"


def test_successful_login_does_not_reset_the_ip_counter(citizen, user_password, settings):
    settings.LOGIN_IP_MAX_FAILURES = 3
    c = Client(REMOTE_ADDR="192.0.2.8")
    post_login(c, "x1", "guess-guess")
    post_login(c, "x2", "guess-guess")
    assert post_login(c, "citizen1", user_password).status_code == 302
    c.logout()
    post_login(c, "x3", "guess-guess")
    assert LoginThrottle.objects.get(scope="ip", key="192.0.2.8").is_locked()


def test_login_by_mobile_number_or_id_number(client, citizen, user_password):
    citizen.phone = "138 1234 5678"
    citizen.id_number_digest = blind_index("11010519491231002X", purpose="resident_id")
    citizen.save()
    citizen.refresh_from_db()
    assert citizen.phone == "+8613812345678"
    assert post_login(client, "13812345678", user_password)["Location"] == "/"
    client.logout()
    assert post_login(client, "11010519491231002x", user_password)["Location"] == "/"


def test_a_number_shared_by_two_accounts_logs_in_neither(client, citizen, django_user_model, user_password):
    other = django_user_model.objects.create_user(username="citizen2", password=user_password)
    for user in (citizen, other):
        user.phone = "13812345678"
        user.save()
    assert REFUSAL in post_login(client, "13812345678", user_password).content.decode()


def test_inactive_account_gets_the_same_refusal(client, citizen, user_password):
    citizen.is_active = False
    citizen.save()
    assert REFUSAL in post_login(client, "citizen1", user_password).content.decode()


def test_official_without_second_factor_must_enrol_before_login(client, official, user_password):
    response = client.post("/login/", {"username": "official1", "password": user_password, "next": "/divisions/"})
    assert response["Location"] == "/login/enrol/"
    assert client.get("/workbench/").status_code == 302  # not logged in yet
    page = client.get("/login/enrol/")
    html = page.content.decode()
    assert "<svg" in html and "otpauth://totp/dgov:official1?" in html
    assert "身份验证器显示的 6 位动态口令" in html and 'data-testid="totp-secret"' in html  # what scripts drive
    method = MfaMethod.objects.get(user=official, confirmed_at__isnull=True)
    assert method.secret in html
    bad = client.post("/login/enrol/", {"action": "totp", "code": "000000"})
    assert bad.status_code == 200 and "验证码不正确" in bad.content.decode()
    response = client.post("/login/enrol/", {"action": "totp", "code": current_code(method.secret)})
    assert response.status_code == 302 and response["Location"] == "/divisions/"
    assert client.get("/workbench/").status_code == 200
    request = client.get("/account/").wsgi_request
    assert services.session_auth_methods(request)[0] == ["pwd", "otp", "mfa"]
    assert services.mfa_methods(official) == ["totp"]
    assert AuditRecord.objects.filter(action="identity.mfa.totp.enable", outcome="success").exists()


def test_official_with_totp_passes_second_factor(client, enrolled_official, secret, user_password):
    response = post_login(client, "official1", user_password)
    assert response["Location"] == "/login/verify/"
    assert client.get("/workbench/").status_code == 302
    verify_page = client.get("/login/verify/").content.decode()
    assert 'name="code"' in verify_page and ">验证码</label>" in verify_page and "验证并登录" in verify_page
    response = client.post("/login/verify/", {"method": "totp", "code": current_code(secret)})
    assert response["Location"] == "/workbench/"
    methods, _at = services.session_auth_methods(client.get("/workbench/").wsgi_request)
    assert methods == ["pwd", "otp", "mfa"]
    assert 'data-testid="amr">pwd + otp + mfa<' in client.get("/account/").content.decode()


def test_a_totp_code_works_only_once(enrolled_official, secret, user_password):
    code = current_code(secret)
    first, second = Client(), Client()
    post_login(first, "official1", user_password)
    assert first.post("/login/verify/", {"method": "totp", "code": code})["Location"] == "/workbench/"
    post_login(second, "official1", user_password)
    response = second.post("/login/verify/", {"method": "totp", "code": code})
    assert response.status_code == 200 and "验证码不正确" in response.content.decode()
    # the next step's code (within the ±1 window) is accepted
    assert second.post("/login/verify/", {"method": "totp", "code": current_code(secret, 1)}).status_code == 302


def test_wrong_codes_count_and_five_end_the_pending_login(client, enrolled_official, user_password):
    post_login(client, "official1", user_password)
    for _ in range(4):
        response = client.post("/login/verify/", {"method": "totp", "code": "000000"})
        assert response.status_code == 200
    response = client.post("/login/verify/", {"method": "totp", "code": "000000"})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/login/verify/")["Location"] == "/login/"
    # the five failures also locked the account
    assert LoginThrottle.objects.get(scope="account", key=f"user:{enrolled_official.pk}").is_locked()
    assert AuditRecord.objects.filter(action="identity.login", outcome="failed").count() == 5


def test_pending_login_expires(client, enrolled_official, secret, user_password, settings):
    post_login(client, "official1", user_password)
    settings.LOGIN_PENDING_SECONDS = -1
    response = client.post("/login/verify/", {"method": "totp", "code": current_code(secret)})
    assert response["Location"] == "/login/"
    assert client.get("/workbench/").status_code == 302


def test_sms_second_factor_through_the_notification_simulator(client, enrolled_official, user_password):
    MfaMethod.objects.create(user=enrolled_official, kind="sms", confirmed_at=timezone.now())
    post_login(client, "official1", user_password)
    response = client.post("/login/verify/", {"method": "sms", "action": "send_sms"})
    assert response["Location"] == "/login/verify/?method=sms"
    code = last_sms_code()
    stored = OneTimeCode.objects.get(user=enrolled_official)
    assert code not in stored.code_hash and stored.purpose == "login"
    assert (stored.expires_at - stored.created_at).total_seconds() == pytest.approx(300, abs=2)
    # resending within a minute is refused
    client.post("/login/verify/", {"method": "sms", "action": "send_sms"})
    assert OneTimeCode.objects.filter(user=enrolled_official).count() == 1
    response = client.post("/login/verify/", {"method": "sms", "code": code})
    assert response["Location"] == "/workbench/"
    assert services.session_auth_methods(client.get("/workbench/").wsgi_request)[0] == ["pwd", "sms", "mfa"]
    # used once
    assert not authentication.verify_sms_code(enrolled_official, "login", code)


def test_sms_codes_expire_and_allow_few_attempts(enrolled_official):
    authentication.send_sms_code(enrolled_official, "login")
    code = last_sms_code()
    OneTimeCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not authentication.verify_sms_code(enrolled_official, "login", code)

    OneTimeCode.objects.all().delete()
    authentication.send_sms_code(enrolled_official, "reauth")
    OneTimeCode.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    for _ in range(5):
        assert not authentication.verify_sms_code(enrolled_official, "reauth", "000000")
    assert OneTimeCode.objects.get().attempts == 5


def test_sms_sends_are_limited_per_hour(enrolled_official, settings):
    settings.SMS_CODE_RESEND_SECONDS = 0
    for _ in range(5):
        authentication.send_sms_code(enrolled_official, "login")
    with pytest.raises(authentication.SmsCodeError) as excinfo:
        authentication.send_sms_code(enrolled_official, "login")
    assert excinfo.value.reason == "too_many"


def test_person_who_enabled_totp_must_use_it(client, citizen, user_password, secret):
    services.provision_totp([citizen], secret, actor="system:test")
    assert post_login(client, "citizen1", user_password)["Location"] == "/login/verify/"


def test_admin_site_login_form_never_checks_passwords(client, admin_user):
    page = client.get("/admin/login/?next=/admin/")
    assert "/login/?next=/admin/" in page.content.decode()
    response = client.post("/admin/login/", {"username": "admin", "password": "password"})
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302
