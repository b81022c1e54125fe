"""Client registration: service rules, secrets, ``dgov oidc``, workbench pages, the user's authorizations."""

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from oidc_helpers import REDIRECT, basic

from dgov.kernel.models import AuditRecord
from dgov.oidc.models import Client, Consent, Grant, SigningKey
from dgov.oidc.services import clients

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(django_user_model, user_password):
    """A platform administrator."""
    return django_user_model.objects.create_user(username="admin1", password=user_password, kind="admin")


def create(department, **kwargs):
    values = {"name": "应用", "organization": department, "actor": "system:test", "redirect_uris": [REDIRECT]}
    values.update(kwargs)
    return clients.create_client(**values)


# --- services ------------------------------------------------------------------------------------------


def test_secret_is_shown_once_and_stored_as_a_keyed_hash(department):
    client, secret = create(department, client_id="app")
    assert len(secret) >= 43 and secret not in client.secret_hash
    kid, _sep, digest = client.secret_hash.partition(":")
    assert kid and len(digest) == 64
    assert clients.authenticate("app", secret) == client
    assert clients.authenticate("app", secret + "x") is None
    audit = AuditRecord.objects.get(action="oidc.client.create")
    assert secret not in audit.detail_json and "app" in audit.detail_json


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"redirect_uris": ["https://rp.example/cb#frag"]}, "redirect_uris"),
        ({"redirect_uris": ["ftp://rp.example/cb"]}, "redirect_uris"),
        ({"redirect_uris": ["cb"]}, "redirect_uris"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"grant_types": ["password"]}, "grant_types"),
        ({"grant_types": ["refresh_token"]}, "grant_types"),
        ({"client_type": "public", "grant_types": ["client_credentials"]}, "grant_types"),
        ({"scopes": ["openid", "everything"]}, "scopes"),
        ({"id_token_alg": "HS256"}, "id_token_alg"),
        ({"name": " "}, "name"),
        ({"client_id": "Bad Id"}, "client_id"),
    ],
)
def test_invalid_registrations_are_refused(department, kwargs, field):
    with pytest.raises(ValidationError) as info:
        create(department, **kwargs)
    assert field in info.value.message_dict
    assert not Client.objects.exists()


def test_http_redirect_uris_only_for_loopback_in_production(department, settings):
    settings.PRODUCTION = True
    with pytest.raises(ValidationError):
        create(department, redirect_uris=["http://rp.example/cb"])
    client, _secret = create(department, redirect_uris=["http://127.0.0.1:9000/cb"], client_id="native")
    assert client.redirect_uris == ["http://127.0.0.1:9000/cb"]
    app, secret = create(
        department,
        client_id="mobile",
        client_type="public",
        grant_types=["authorization_code"],
        redirect_uris=["cn.gov.sd.app:/oauth2redirect"],
    )
    assert secret is None and app.secret_hash == ""


def test_update_rotate_deactivate_are_audited(department):
    client, secret = create(department, client_id="app")
    clients.update_client(client, actor="system:test", redirect_uris=[REDIRECT, "https://rp.example/cb2"])
    change = AuditRecord.objects.get(action="oidc.client.update")
    assert "cb2" in change.detail_json
    new = clients.rotate_secret(client, actor="system:test")
    assert clients.authenticate("app", secret) is None and clients.authenticate("app", new) is not None
    clients.deactivate_client(client, actor="system:test", reason="停用测试")
    assert clients.authenticate("app", new) is None
    actions = set(AuditRecord.objects.values_list("action", flat=True))
    assert {
        "oidc.client.create",
        "oidc.client.update",
        "oidc.client.rotate_secret",
        "oidc.client.deactivate",
    } <= actions
    with pytest.raises(ValueError):
        clients.update_client(client, actor="system:test", client_type="public")


# --- the command ---------------------------------------------------------------------------------------


def run(command: str) -> str:
    """Run ``dgov oidc`` with the space-separated arguments of ``command``; return its output."""
    out = StringIO()
    call_command("oidc", *command.split(), stdout=out)
    return out.getvalue()


def test_command_client_lifecycle(department, client):
    out = run(
        f"client create --name 省卫健委系统 --org {department.code} --client-id wj-sys --redirect-uri {REDIRECT} "
        "--grant-types authorization_code client_credentials --scopes openid profile registry:read --alg SM2"
    )
    secret = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("client_secret: "))
    created = Client.objects.get(client_id="wj-sys")
    assert created.id_token_alg == "SM2" and created.grant_types == ["authorization_code", "client_credentials"]
    token = client.post("/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic("wj-sys", secret))
    assert token.status_code == 200
    assert "wj-sys" in run("client list")
    rotated = run("client rotate wj-sys")
    assert secret not in rotated and "client_secret: " in rotated
    run("client deactivate wj-sys --reason test")
    assert not Client.objects.get(client_id="wj-sys").is_active
    with pytest.raises(CommandError):
        run("client rotate nobody")
    with pytest.raises(CommandError):
        run(f"client create --name x --org NOPE --redirect-uri {REDIRECT}")
    with pytest.raises(CommandError):
        run(f"client create --name x --org {department.code}")  # no redirect URI


def test_command_public_client_and_keys(department):
    out = run(
        f"client create --name 掌上办 --org {department.code} --type public --client-id app --redirect-uri x.y:/cb"
    )
    assert "client_secret" not in out
    assert "尚无签名密钥" in run("key list")
    run("key rotate --alg ES256")
    run("key rotate --alg ES256")
    assert SigningKey.objects.filter(alg="ES256").count() == 2
    assert "ES256" in run("key list")
    assert "0" in run("purge")


# --- workbench pages -------------------------------------------------------------------------------------


def test_client_pages_are_for_administrators(client, official, citizen, department):
    create(department, client_id="app")
    for user in (official, citizen):
        client.force_login(user)
        assert client.get("/workbench/oidc/clients/").status_code == 403
        assert client.get("/workbench/oidc/clients/app/").status_code == 403
        assert client.post("/workbench/oidc/clients/app/deactivate/").status_code == 403
    client.logout()
    assert client.get("/workbench/oidc/clients/").status_code == 302  # to the login page


def test_administrator_registers_edits_rotates_and_deactivates(client, admin_user, department):
    client.force_login(admin_user)
    assert client.get("/workbench/oidc/clients/").status_code == 200
    form = {
        "name": "省公安厅业务系统",
        "client_id": "ga-sys",
        "client_type": "confidential",
        "organization": department.code,
        "redirect_uris": f"{REDIRECT}\nhttps://rp.example/cb2",
        "post_logout_redirect_uris": "https://rp.example/bye",
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile"],
        "id_token_alg": "ES256",
    }
    bad = client.post("/workbench/oidc/clients/new/", {**form, "redirect_uris": "https://rp.example/cb#x"})
    assert bad.status_code == 400 and not Client.objects.exists()
    page = client.post("/workbench/oidc/clients/new/", form)
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    secret = page.context["secret"]
    assert clients.authenticate("ga-sys", secret) is not None
    created = Client.objects.get(client_id="ga-sys")
    assert created.redirect_uris == [REDIRECT, "https://rp.example/cb2"] and created.id_token_alg == "ES256"
    detail = client.get("/workbench/oidc/clients/ga-sys/")
    assert detail.status_code == 200 and secret not in detail.content.decode()
    edited = client.post("/workbench/oidc/clients/ga-sys/", {**form, "first_party": "on", "client_id": "changed"})
    assert edited.status_code == 302
    created.refresh_from_db()
    assert created.first_party is True and created.client_id == "ga-sys"
    rotated = client.post("/workbench/oidc/clients/ga-sys/rotate/")
    assert rotated.context["secret"] != secret
    client.post("/workbench/oidc/clients/ga-sys/deactivate/", {"reason": "测试"})
    created.refresh_from_db()
    assert not created.is_active
    assert client.get("/workbench/oidc/clients/nope/").status_code == 404
    assert AuditRecord.objects.filter(action__startswith="oidc.client.", actor_id=str(admin_user.pk)).count() == 4


# --- the user's authorized applications ----------------------------------------------------------------


def test_user_sees_and_revokes_authorizations(third_party, logged_in, citizen):
    page = third_party.authorize(logged_in, scope="openid profile")
    answer = logged_in.post("/oidc/consent", {"rid": page.context["rid"], "decision": "allow"})
    code = dict(p.split("=", 1) for p in answer["Location"].split("?", 1)[1].split("&"))["code"]
    tokens = third_party.exchange(logged_in, code).json()
    listing = logged_in.get("/account/authorizations/")
    assert listing.status_code == 200 and "第三方应用" in listing.content.decode()
    logged_in.post("/account/authorizations/", {"client_id": third_party.client_id})
    assert not Consent.objects.filter(user=citizen).exists()
    assert Grant.objects.get().revoke_reason == "consent_revoked"
    userinfo = logged_in.get("/oidc/userinfo", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert userinfo.status_code == 401
    # Consent is asked again.
    assert third_party.authorize(logged_in).status_code == 200
    assert AuditRecord.objects.filter(action="oidc.consent.revoke").exists()
