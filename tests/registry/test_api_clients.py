"""API clients (接口客户端): creation, secrets, authentication, the command, and ClientAuth on the API."""

import base64
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from dgov.identity import services
from dgov.identity.models import ApiClient
from dgov.kernel.models import AuditRecord, Organization

pytestmark = pytest.mark.django_db


@pytest.fixture
def ga(province):
    return Organization.objects.create(
        name="山东省公安厅", code="370000-GA", uscc="11370000004312345X", level=1, division=province, kind="GA"
    )


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def test_create_returns_secret_once_and_stores_only_a_keyed_hash(ga):
    client, secret = services.create_api_client("公安业务系统", ga, ["registry:read"], actor="system:test")
    assert len(secret) >= 43
    stored = ApiClient.objects.get(pk=client.pk)
    assert secret not in stored.secret_hash
    kid, _sep, digest = stored.secret_hash.partition(":")
    assert kid and len(digest) == 64
    assert stored.client_id.startswith("370000-ga-")
    assert stored.scopes == ["registry:read"]
    assert stored.created_by == "system:test"
    audit = AuditRecord.objects.get(action="identity.api_client.create")
    assert audit.target_id == str(client.pk)
    assert secret not in audit.detail_json


def test_authenticate_client(ga):
    client, secret = services.create_api_client("系统", ga, ["registry:read"], actor=None, client_id="ga-sys")
    assert services.authenticate_client("ga-sys", secret) == client
    assert services.authenticate_client("ga-sys", secret + "x") is None
    assert services.authenticate_client("ga-sys", "") is None
    assert services.authenticate_client("nobody", secret) is None
    assert ApiClient.objects.get(pk=client.pk).last_used_at is not None


def test_hash_binds_the_client_id(ga):
    """Copying one client's hash onto another row does not let the first secret log in as the second."""
    first, secret = services.create_api_client("一", ga, [], actor=None, client_id="first")
    second, _other = services.create_api_client("二", ga, [], actor=None, client_id="second")
    ApiClient.objects.filter(pk=second.pk).update(secret_hash=first.secret_hash)
    assert services.authenticate_client("second", secret) is None


def test_rotate_and_deactivate(ga):
    client, old = services.create_api_client("系统", ga, ["registry:read"], actor=None, client_id="ga-sys")
    new = services.rotate_client_secret(client, actor="system:test")
    assert new != old
    assert services.authenticate_client("ga-sys", old) is None
    assert services.authenticate_client("ga-sys", new) is not None
    services.deactivate_api_client(client, actor="system:test", reason="停用")
    assert services.authenticate_client("ga-sys", new) is None
    actions = list(AuditRecord.objects.filter(action__startswith="identity.api_client").order_by("seq").values_list(
        "action", flat=True
    ))
    assert actions == [
        "identity.api_client.create",
        "identity.api_client.rotate_secret",
        "identity.api_client.deactivate",
    ]


def test_inactive_department_cannot_authenticate(ga):
    _client, secret = services.create_api_client("系统", ga, [], actor=None, client_id="ga-sys")
    Organization.objects.filter(pk=ga.pk).update(is_active=False)
    assert services.authenticate_client("ga-sys", secret) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scopes": ["registry:everything"]}, "scopes"),
        ({"name": " "}, "name"),
        ({"client_id": "Bad Id!"}, "client_id"),
    ],
)
def test_create_refuses_bad_input(ga, kwargs, field):
    args = {"name": "系统", "scopes": ["registry:read"], "client_id": "", **kwargs}
    with pytest.raises(ValidationError) as info:
        services.create_api_client(args["name"], ga, args["scopes"], actor=None, client_id=args["client_id"])
    assert field in info.value.message_dict
    assert not ApiClient.objects.exists()


def test_duplicate_client_id_refused(ga):
    services.create_api_client("一", ga, [], actor=None, client_id="dup")
    with pytest.raises(ValidationError):
        services.create_api_client("二", ga, [], actor=None, client_id="dup")


def test_client_actions_are_audited_as_client_not_user(ga, province):
    """The audit log names a client as kind "client", so its pk is never mistaken for a user id."""
    from django.db import transaction

    from dgov.kernel.services import audit

    client, _secret = services.create_api_client("系统", ga, [], actor=None, client_id="ga-sys")
    with transaction.atomic():
        entry = audit.record("test.client.action", actor=client)
    assert (entry.actor_kind, entry.actor_id) == ("client", "ga-sys")
    assert "client:ga-sys" in entry.actor_label


def test_command_create_and_list(ga):
    out = StringIO()
    call_command("identity", "client", "create", "--name", "公安业务系统", "--org", "370000-GA",
                 "--scopes", "registry:read", "registry:write", "--client-id", "ga-biz", stdout=out)
    text = out.getvalue()
    secret = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("client_secret:"))
    assert services.authenticate_client("ga-biz", secret) is not None
    assert ApiClient.objects.get(client_id="ga-biz").scopes == ["registry:read", "registry:write"]
    listing = StringIO()
    call_command("identity", "client", "list", stdout=listing)
    assert "ga-biz" in listing.getvalue()
    assert secret not in listing.getvalue()


def test_command_refuses_unknown_department_and_scope(ga):
    with pytest.raises(CommandError):
        call_command("identity", "client", "create", "--name", "x", "--org", "NOPE", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("identity", "client", "create", "--name", "x", "--org", "370000-GA",
                     "--scopes", "root", stdout=StringIO())


def test_command_rotate_and_deactivate(ga):
    _client, old = services.create_api_client("系统", ga, [], actor=None, client_id="ga-sys")
    out = StringIO()
    call_command("identity", "client", "rotate", "ga-sys", stdout=out)
    new = next(line.split(": ", 1)[1] for line in out.getvalue().splitlines() if line.startswith("client_secret:"))
    assert services.authenticate_client("ga-sys", old) is None
    assert services.authenticate_client("ga-sys", new) is not None
    call_command("identity", "client", "deactivate", "ga-sys", stdout=StringIO())
    assert services.authenticate_client("ga-sys", new) is None


# --- ClientAuth on the API -----------------------------------------------------------------------


def test_client_auth_reaches_the_api(client, ga):
    _c, secret = services.create_api_client("系统", ga, ["registry:read"], actor=None, client_id="ga-sys")
    response = client.get("/api/v1/registries/", HTTP_AUTHORIZATION=basic("ga-sys", secret))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic " + base64.b64encode(b"ga-sys:wrong").decode(),
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer abc",
    ],
)
def test_client_auth_failures_are_401_problems(client, ga, header):
    services.create_api_client("系统", ga, ["registry:read"], actor=None, client_id="ga-sys")
    kwargs = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/api/v1/registries/", **kwargs)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:dgov:problem:unauthenticated"


def test_inactive_client_gets_401(client, ga):
    api_client, secret = services.create_api_client("系统", ga, ["registry:read"], actor=None, client_id="ga-sys")
    services.deactivate_api_client(api_client, actor=None)
    response = client.get("/api/v1/registries/", HTTP_AUTHORIZATION=basic("ga-sys", secret))
    assert response.status_code == 401


def test_missing_scope_is_403(client, ga):
    _c, secret = services.create_api_client("系统", ga, [], actor=None, client_id="ga-sys")
    response = client.get("/api/v1/registries/", HTTP_AUTHORIZATION=basic("ga-sys", secret))
    assert response.status_code == 403
    assert "registry:read" in response.json()["detail"]
