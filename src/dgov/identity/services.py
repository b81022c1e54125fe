"""Identity operations: API clients (接口客户端) and their credentials.

API clients
-----------
A department system calls the JSON API as an :class:`~dgov.identity.models.ApiClient`: a
``client_id`` (slug), a department it acts for and a list of scopes. Its secret is 32 random
bytes (URL-safe base64, 43 characters) shown once, when the client is created or its secret is
rotated. The database keeps only ``"<kid>:" + hex(HMAC-SM3(key, client_id || 0x00 || secret))``
with the data key of purpose ``"api-client-secret"`` from the key registry: a secret of 256
random bits needs no slow password hash (nothing to brute-force), and the keyed hash means a
copy of the table alone does not even let anyone test guesses. The kid is stored with the hash,
so rotating that key leaves existing secrets valid. Authentication compares in constant time.

Scopes (:data:`API_SCOPES`) say which kinds of operation a client may call; *which* data it may
read or write is decided by its department (the registry's authority rules), never by the scope.

Clients are administered (:func:`may_manage_api_clients`) by platform administrators and by the
provincial big-data bureau (大数据局, kind ``DSJ``), which runs data sharing for the province, from
the ``dgov identity client`` command or the workbench pages; every change is audited and a refused
one is audited as ``denied``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dgov.identity.models import ApiClient
from dgov.kernel.crypto import hmac_sm3
from dgov.kernel.models import Organization
from dgov.kernel.services import audit, events, keys

__all__ = [
    "API_SCOPES",
    "SECRET_KEY_PURPOSE",
    "authenticate_client",
    "client_names",
    "create_api_client",
    "deactivate_api_client",
    "hash_client_secret",
    "list_api_clients",
    "may_manage_api_clients",
    "rotate_client_secret",
    "update_client_scopes",
]

SECRET_KEY_PURPOSE = "api-client-secret"
CLIENT_ADMIN_KIND = "DSJ"  # 大数据局: the provincial data administrators run data sharing and its clients

API_SCOPES: dict[str, object] = {
    "registry:read": _("读取信息库记录（列表、查询、存在性核验、字段值）"),
    "registry:write": _("写入信息库记录（新增、更新、删除）"),
    "registry:unmask": _("查看未脱敏的个人敏感字段"),
}
"""Scopes a client can hold, with what each allows (other apps add theirs here at import time)."""

_CLIENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
# last_used_at is a convenience for administrators, not an audit trail: writing it on every
# request would turn each read into a write, so it is refreshed at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(client_id: str, secret: str, *, kid: str | None = None) -> str:
    """``kid:hex`` of the keyed hash of a client's secret (under the active key unless ``kid``)."""
    if kid is None:
        kid, key = keys.data_key(SECRET_KEY_PURPOSE)
    else:
        key = keys.data_key_by_id(kid)
    digest = hmac_sm3(key, client_id.encode() + b"\x00" + secret.encode())
    return f"{kid}:{digest.hex()}"


def hash_client_secret(client_id: str, secret: str) -> str:
    """The value stored in ``ApiClient.secret_hash`` for this secret (exposed for tests and tools)."""
    return _hash(client_id, secret)


def _new_secret() -> str:
    """A fresh client secret: 32 random bytes, URL-safe base64 without padding."""
    return secrets.token_urlsafe(32)


def _clean_scopes(scopes) -> list[str]:
    """Known scopes, deduplicated in a stable order; unknown ones are refused."""
    if isinstance(scopes, str):
        scopes = [s for s in re.split(r"[\s,]+", scopes) if s]
    result: list[str] = []
    for scope in scopes or []:
        scope = str(scope).strip()
        if scope not in API_SCOPES:
            raise ValidationError(
                {"scopes": gettext("未知的权限范围：%(scope)s（可用：%(known)s）")
                 % {"scope": scope, "known": "、".join(API_SCOPES)}}
            )
        if scope not in result:
            result.append(scope)
    return result


def _default_client_id(organization: Organization) -> str:
    """A unique-enough id derived from the department code: ``370000-ga-1a2b3c4d``."""
    base = re.sub(r"[^a-z0-9_-]+", "-", organization.code.lower()).strip("-_") or "client"
    return f"{base[:50]}-{secrets.token_hex(4)}"


def _announce(event_type: str, client: ApiClient) -> None:
    """Publish a client event in the current transaction's outbox."""
    events.publish(
        event_type,
        {"client_id": client.client_id, "organization": client.organization.code, "scopes": client.scopes},
        aggregate="identity.apiclient",
        aggregate_id=client.client_id,
    )


def may_manage_api_clients(actor) -> bool:
    """Who administers API clients: the system (commands, installers), platform administrators
    (superusers, admin accounts) and officials of an active provincial big-data bureau (DSJ)."""
    if actor is None or isinstance(actor, str):
        return True
    if not getattr(actor, "is_authenticated", False) or getattr(actor, "client_id", None):
        return False  # anonymous users and API clients themselves
    if getattr(actor, "is_superuser", False) or getattr(actor, "kind", "") == "admin":
        return getattr(actor, "is_active", True)
    department = getattr(actor, "department", None) if getattr(actor, "kind", "") == "official" else None
    return bool(
        department is not None
        and department.is_active
        and department.kind == CLIENT_ADMIN_KIND
        and department.level == Organization.Level.PROVINCE
    )


def _require_manager(action: str, actor, client: ApiClient | None = None) -> None:
    """Raise PermissionDenied (audited as denied) unless the actor may administer API clients."""
    if may_manage_api_clients(actor):
        return
    with transaction.atomic():
        audit.record(action, actor=actor, target=client, outcome="denied", detail={"reason": "not a client admin"})
    raise PermissionDenied(gettext("只有系统管理员和省大数据局可以管理接口客户端"))


def list_api_clients(*, actor):
    """Every API client with its department, newest first within each department (no secrets)."""
    if not may_manage_api_clients(actor):
        raise PermissionDenied(gettext("只有系统管理员和省大数据局可以管理接口客户端"))
    return ApiClient.objects.select_related("organization").order_by("organization__code", "client_id")


def create_api_client(
    name: str, organization: Organization, scopes, *, actor, client_id: str = ""
) -> tuple[ApiClient, str]:
    """Create a client for ``organization`` and return it with its plaintext secret (shown once)."""
    _require_manager("identity.api_client.create", actor)
    name = (name or "").strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = gettext("客户端名称不能为空")
    if organization is None or not organization.is_active:
        errors["organization"] = gettext("客户端必须属于一个有效的部门")
    client_id = (client_id or "").strip().lower() or (_default_client_id(organization) if organization else "")
    if client_id and not _CLIENT_ID_RE.match(client_id):
        errors["client_id"] = gettext("客户端标识只能包含小写字母、数字、连字符和下划线，长度 2–64")
    if errors:
        raise ValidationError(errors)
    scope_list = _clean_scopes(scopes)
    secret = _new_secret()
    with transaction.atomic():
        if ApiClient.objects.filter(client_id=client_id).exists():
            raise ValidationError({"client_id": gettext("客户端标识 %(id)s 已存在") % {"id": client_id}})
        client = ApiClient.objects.create(
            client_id=client_id,
            name=name,
            organization=organization,
            scopes=scope_list,
            secret_hash=_hash(client_id, secret),
            created_by=_actor_label(actor),
        )
        audit.record(
            "identity.api_client.create",
            actor=actor,
            target=client,
            detail={"client_id": client_id, "organization": organization.code, "scopes": scope_list},
        )
        _announce("identity.api_client.created", client)
    return client, secret


def rotate_client_secret(client: ApiClient, *, actor) -> str:
    """Give ``client`` a new secret (the old one stops working at once) and return it (shown once)."""
    _require_manager("identity.api_client.rotate_secret", actor, client)
    if not client.is_active:
        raise ValidationError(gettext("客户端已停用，不能更换密钥"))
    secret = _new_secret()
    with transaction.atomic():
        client = ApiClient.objects.select_for_update().select_related("organization").get(pk=client.pk)
        client.secret_hash = _hash(client.client_id, secret)
        client.secret_rotated_at = timezone.now()
        client.save(update_fields=["secret_hash", "secret_rotated_at"])
        audit.record("identity.api_client.rotate_secret", actor=actor, target=client)
        _announce("identity.api_client.secret_rotated", client)
    return secret


def deactivate_api_client(client: ApiClient, *, actor, reason: str = "") -> ApiClient:
    """Stop a client from authenticating (kept, not deleted, so the audit trail still names it)."""
    _require_manager("identity.api_client.deactivate", actor, client)
    with transaction.atomic():
        client = ApiClient.objects.select_for_update().select_related("organization").get(pk=client.pk)
        if not client.is_active:
            return client
        client.is_active = False
        client.save(update_fields=["is_active"])
        audit.record(
            "identity.api_client.deactivate", actor=actor, target=client, detail={"reason": reason[:500]}
        )
        _announce("identity.api_client.deactivated", client)
    return client


def update_client_scopes(client: ApiClient, scopes, *, actor) -> ApiClient:
    """Replace a client's scopes (known scopes only); audited with the old and new lists. Takes effect at once."""
    _require_manager("identity.api_client.update_scopes", actor, client)
    scope_list = _clean_scopes(scopes)
    with transaction.atomic():
        client = ApiClient.objects.select_for_update().select_related("organization").get(pk=client.pk)
        old = list(client.scopes or [])
        if old == scope_list:
            return client
        client.scopes = scope_list
        client.save(update_fields=["scopes"])
        audit.record(
            "identity.api_client.update_scopes",
            actor=actor,
            target=client,
            detail={"client_id": client.client_id, "old": old, "new": scope_list},
        )
        _announce("identity.api_client.scopes_changed", client)
    return client


# Every API request authenticates, and a client's row rarely changes: each process remembers a
# successful authentication for a few seconds, keyed by a digest of the presented credentials (the
# secret itself is never kept). A rotation or deactivation in this process clears it at once;
# other processes follow within AUTH_CACHE_SECONDS.
AUTH_CACHE_SECONDS = 5.0
_auth_cache: dict[bytes, tuple[float, ApiClient]] = {}


@receiver([post_save, post_delete], sender=ApiClient)
@receiver([post_save, post_delete], sender=Organization)
def _forget_authentications(**kwargs) -> None:
    """Drop remembered authentications when a client or a department changes in this process."""
    _auth_cache.clear()


def authenticate_client(client_id: str, secret: str) -> ApiClient | None:
    """The active client whose secret this is (of an active department), or None; constant-time compare."""
    if not client_id or not secret or len(client_id) > 64 or len(secret) > 256:
        return None
    fingerprint = hashlib.sha256(client_id.encode() + b"\x00" + secret.encode()).digest()
    now_mono = time.monotonic()
    hit = _auth_cache.get(fingerprint)
    if hit is not None and hit[0] > now_mono:
        return hit[1]
    client = (
        ApiClient.objects.select_related("organization", "organization__division")
        .filter(client_id=client_id)
        .order_by()[:1]
    )
    client = client[0] if client else None
    if client is None:
        # Spend the same hash so that response time does not tell unknown ids from wrong secrets.
        _hash(client_id, secret)
        return None
    kid, _sep, _digest = client.secret_hash.partition(":")
    try:
        expected = _hash(client.client_id, secret, kid=kid)
    except keys.UnknownKeyError:
        return None
    if not hmac.compare_digest(expected.encode(), client.secret_hash.encode()):
        return None
    if not client.is_active or not client.organization.is_active:
        return None
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
    if len(_auth_cache) > 10000:
        _auth_cache.clear()
    _auth_cache[fingerprint] = (now_mono + AUTH_CACHE_SECONDS, client)
    return client


def _actor_label(actor) -> str:
    """A short label of who created a client, for the ``created_by`` column."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor[:150]
    getter = getattr(actor, "get_username", None)
    return (getter() if callable(getter) else str(actor))[:150]


def client_names(client_ids) -> dict[str, str]:
    """The names of API clients by client_id (for showing who read data; unknown ids are left out)."""
    ids = {str(client_id) for client_id in client_ids if client_id}
    if not ids:
        return {}
    return dict(ApiClient.objects.filter(client_id__in=ids).values_list("client_id", "name"))


# --- Authentication (password, lockout, second factors, sessions): see dgov.identity.authentication,
# dgov.identity.sessions and ADR 0012. Re-exported here as the app's public operations.
from dgov.identity.authentication import (  # noqa: E402
    AMR_MFA,
    AMR_OTP,
    AMR_PASSWORD,
    AMR_SMS,
    DEMO_TOTP_SECRET,
    LOGIN_FAILED_MESSAGE,
    LoginStep,
    SmsCodeError,
    authenticate_password,
    begin_login,
    change_password,
    confirm_totp,
    disable_mfa_method,
    mfa_methods,
    mfa_required,
    password_expired,
    provision_totp,
    reauthenticate,
    recently_authenticated,
    reset_mfa,
    resolve_login_name,
    send_sms_code,
    set_first_password,
    start_totp_enrolment,
    verify_login_factor,
)
from dgov.identity.sessions import (  # noqa: E402
    active_sessions,
    revoke_all_sessions,
    revoke_session,
    session_auth_methods,
)

__all__ += [
    "AMR_MFA",
    "AMR_OTP",
    "AMR_PASSWORD",
    "AMR_SMS",
    "DEMO_TOTP_SECRET",
    "LOGIN_FAILED_MESSAGE",
    "LoginStep",
    "SmsCodeError",
    "active_sessions",
    "authenticate_password",
    "begin_login",
    "change_password",
    "confirm_totp",
    "disable_mfa_method",
    "mfa_methods",
    "mfa_required",
    "password_expired",
    "provision_totp",
    "reauthenticate",
    "recently_authenticated",
    "reset_mfa",
    "resolve_login_name",
    "revoke_all_sessions",
    "revoke_session",
    "send_sms_code",
    "session_auth_methods",
    "set_first_password",
    "start_totp_enrolment",
    "verify_login_factor",
]

# --- For identity brokering (dgov.oidc.services.broker, docs/oidc.md "Brokering"): the login throttle
# seen from another login route, the federated amr value, and the population cross-check.
from dgov.identity.authentication import (  # noqa: E402
    AMR_FEDERATED,
    ip_throttled,
    login_throttled,
    register_ip_failure,
)
from dgov.identity.realname import check_population  # noqa: E402

__all__ += ["AMR_FEDERATED", "check_population", "ip_throttled", "login_throttled", "register_ip_failure"]
