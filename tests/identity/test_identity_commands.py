"""`dgov identity mfa code|reset` and `dgov identity login unlock`, and the demo's MFA hint."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dgov.identity import services, totp
from dgov.identity.models import LoginThrottle
from dgov.kernel.models import AuditRecord

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("identity", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_mfa_code_prints_the_current_code_of_the_demo_secret_or_a_given_one():
    assert run("mfa", "code") in {totp.code_at(services.DEMO_TOTP_SECRET, totp.current_step() + d) for d in (0, 1)}
    secret = totp.generate_secret()
    assert run("mfa", "code", "--secret", secret.lower()) in {
        totp.code_at(secret, totp.current_step() + d) for d in (0, 1)
    }
    with pytest.raises(CommandError):
        run("mfa", "code", "--secret", "not-base32!")


def test_mfa_reset_and_login_unlock(client, official, user_password):
    services.provision_totp([official], totp.generate_secret(), actor="system:test")
    run("mfa", "reset", "official1", "--reason", "手机丢失")
    assert services.mfa_methods(official) == []
    assert AuditRecord.objects.filter(action="identity.mfa.reset").exists()
    for _ in range(5):
        client.post("/login/", {"username": "official1", "password": "wrong"})
    assert LoginThrottle.objects.get(scope="account").is_locked()
    run("login", "unlock", "official1")
    assert not LoginThrottle.objects.filter(scope="account").exists()
    # after the reset the official enrols again at login
    assert client.post("/login/", {"username": "official1", "password": user_password})["Location"] == "/login/enrol/"
    with pytest.raises(CommandError):
        run("mfa", "reset", "nobody")


def test_demo_accounts_see_the_published_secret_outside_production(client, official, user_password, settings):
    services.provision_totp([official], services.DEMO_TOTP_SECRET, actor="system:demo")
    client.post("/login/", {"username": "official1", "password": user_password})
    html = client.get("/login/verify/").content.decode()
    assert 'data-testid="demo-mfa-hint"' in html and services.DEMO_TOTP_SECRET in html
    settings.PRODUCTION = True
    assert services.DEMO_TOTP_SECRET not in client.get("/login/verify/").content.decode()


def test_other_secrets_are_never_shown_at_login(client, official, user_password):
    secret = totp.generate_secret()
    services.provision_totp([official], secret, actor="system:test")
    client.post("/login/", {"username": "official1", "password": user_password})
    html = client.get("/login/verify/").content.decode()
    assert secret not in html and "demo-mfa-hint" not in html


def test_realname_in_person_needs_an_official_and_a_verified_account(citizen, official):
    with pytest.raises(CommandError, match="尚未通过身份信息核验"):
        run("realname", "in-person", citizen.username, "--official", official.username)
    citizen.real_name_level = 2
    citizen.save(update_fields=["real_name_level"])
    with pytest.raises(CommandError, match="只有工作人员"):
        run("realname", "in-person", citizen.username, "--official", citizen.username)
    assert "三级" in run("realname", "in-person", citizen.username, "--official", official.username)
    citizen.refresh_from_db()
    assert citizen.real_name_level == 3
    record = AuditRecord.objects.filter(action="identity.realname.in_person", outcome="success").get()
    assert record.detail == {"level": 3, "channel": "cli", "department": "370000-GA"}
    with pytest.raises(CommandError, match="不存在"):
        run("realname", "in-person", "nobody", "--official", official.username)
