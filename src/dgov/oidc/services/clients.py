"""Relying parties (接入应用): registration by administrators, secrets, authentication, scopes.

A client is *confidential* (a server-side department system: has a secret, authenticates with
``client_secret_basic`` or ``client_secret_post``) or *public* (a browser or mobile app: no
secret, authentication ``none``, PKCE is its only proof). Its secret is 32 random bytes shown
once; the database keeps ``"<kid>:" + hex(HMAC-SM3(key, client_id || 0x00 || secret))`` under the
data key of purpose ``oidc-client-secret`` from the kernel key registry — the same construction
as the API clients of ``dgov.identity``, so a copy of the table does not allow guessing.

Scopes a client may be granted are the OpenID Connect scopes (:data:`OIDC_SCOPES`, including
dgov's ``dgov:identity``, which releases a verified person's resident ID number and name and is
therefore registered only for clients that need it, such as another platform brokering logins
to dgov) and dgov's API scopes (``dgov.identity.services.API_SCOPES``, e.g. ``registry:read``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dgov.identity.services import API_SCOPES
from dgov.kernel import outbound
from dgov.kernel.crypto import hmac_sm3
from dgov.kernel.models import Organization
from dgov.kernel.services import audit, events, keys
from dgov.oidc.models import AccessToken, Client, Grant, RefreshToken

__all__ = [
    "GRANT_TYPES",
    "IDENTITY_SCOPE",
    "OIDC_SCOPES",
    "SENSITIVE_SCOPES",
    "SECRET_KEY_PURPOSE",
    "api_scopes",
    "authenticate",
    "client_exists",
    "create_client",
    "deactivate_client",
    "get_client",
    "known_scopes",
    "rotate_secret",
    "scope_label",
    "update_client",
]

SECRET_KEY_PURPOSE = "oidc-client-secret"

OIDC_SCOPES: dict[str, object] = {
    "openid": _("使用您的平台账号登录（唯一标识）"),
    "profile": _("姓名、用户名、账号类型和所属部门"),
    "email": _("电子邮箱"),
    "phone": _("手机号码"),
    "offline_access": _("在您离线时继续访问（长期有效的刷新令牌）"),
    "dgov:identity": _("居民身份证号码和经核验的真实姓名（仅实名认证二级及以上的个人账号提供）"),
}
"""The OpenID Connect scopes, with what the consent screen tells the user about each."""

IDENTITY_SCOPE = "dgov:identity"
"""Releases ``dgov_id_number`` and ``dgov_real_name`` of real-name verified persons (identity brokering)."""

SENSITIVE_SCOPES = frozenset({IDENTITY_SCOPE})
"""Scopes that release sensitive personal information (敏感个人信息): the consent page marks them."""

GRANT_TYPES: dict[str, object] = {
    "authorization_code": _("授权码（用户登录）"),
    "refresh_token": _("刷新令牌"),
    "client_credentials": _("客户端凭证（系统间调用）"),
}

_CLIENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
_CACHE_SECONDS = 5.0
_auth_cache: dict[bytes, tuple[float, Client]] = {}
_client_cache: dict[str, tuple[float, Client | None]] = {}


@receiver([post_save, post_delete], sender=Client)
@receiver([post_save, post_delete], sender=Organization)
def _forget(**kwargs) -> None:
    """A client or department changed in this process: forget cached clients at once."""
    _auth_cache.clear()
    _client_cache.clear()


def known_scopes() -> dict[str, object]:
    """Every scope a client can be allowed: OIDC scopes, then dgov API scopes."""
    return {**OIDC_SCOPES, **API_SCOPES}


def api_scopes() -> dict[str, object]:
    """The dgov API scopes (granted to client-credentials tokens and, within a user's rights, user tokens)."""
    return dict(API_SCOPES)


def scope_label(scope: str) -> str:
    """What a scope means, for consent screens and pages."""
    label = known_scopes().get(scope)
    return str(label) if label is not None else scope


# --- validation -----------------------------------------------------------------------------------


def _as_list(value) -> list[str]:
    """A list from a list or a whitespace/comma/newline separated string, deduplicated in order."""
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[\s,]+", value)
    result: list[str] = []
    for item in value:
        item = str(item).strip()
        if item and item not in result:
            result.append(item)
    return result


def _native_app_uri(uri: str) -> bool:
    """Whether ``uri`` suits a native app (RFC 8252 §7.1): a private-use scheme in reverse domain notation, a path."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return bool(re.fullmatch(r"[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+", parts.scheme or "") and parts.path)


def check_redirect_uri(uri: str, *, public: bool) -> str:
    """A redirect URI an administrator may register; raise ValidationError with the reason.

    http is acceptable for loopback hosts (RFC 8252 §7.3) or outside production; public clients may
    also use a native app's private-use scheme.
    """
    problem = outbound.url_problem(uri, ("length", "fragment", "scheme", "insecure"), max_length=2000)
    if problem is None or (problem == "scheme" and public and _native_app_uri(uri)):
        return uri
    if problem == "length":
        raise ValidationError(gettext("地址过长：%(uri)s") % {"uri": uri[:80]})
    if problem == "fragment":
        raise ValidationError(gettext("回调地址不能包含 # 片段：%(uri)s") % {"uri": uri})
    if problem == "insecure":
        raise ValidationError(gettext("生产环境的回调地址必须使用 https：%(uri)s") % {"uri": uri})
    raise ValidationError(gettext("回调地址必须是完整的 https 地址：%(uri)s") % {"uri": uri})


def _clean(
    *,
    name: str,
    organization,
    client_type: str,
    redirect_uris,
    post_logout_redirect_uris,
    grant_types,
    scopes,
    id_token_alg: str,
) -> dict:
    """Validate a client's settings; return them cleaned, or raise ValidationError by field."""
    errors: dict[str, list[str]] = {}

    def fail(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    name = (name or "").strip()
    if not name:
        fail("name", gettext("应用名称不能为空"))
    if organization is None or not getattr(organization, "is_active", False):
        fail("organization", gettext("应用必须属于一个有效的部门"))
    if client_type not in Client.Type.values:
        fail("client_type", gettext("客户端类型只能是 confidential 或 public"))
    public = client_type == Client.Type.PUBLIC
    grants = _as_list(grant_types)
    for grant in grants:
        if grant not in GRANT_TYPES:
            fail("grant_types", gettext("未知的授权类型：%(grant)s") % {"grant": grant})
    if not grants:
        fail("grant_types", gettext("至少选择一种授权类型"))
    if public and "client_credentials" in grants:
        fail("grant_types", gettext("公开客户端没有密钥，不能使用客户端凭证模式"))
    if "refresh_token" in grants and "authorization_code" not in grants:
        fail("grant_types", gettext("刷新令牌只能与授权码模式一起使用"))
    if public and "authorization_code" not in grants:
        fail("grant_types", gettext("公开客户端只能使用授权码模式"))
    scope_list = _as_list(scopes)
    known = known_scopes()
    for scope in scope_list:
        if scope not in known:
            fail("scopes", gettext("未知的权限范围：%(scope)s") % {"scope": scope})
    if "authorization_code" in grants and "openid" not in scope_list:
        scope_list.insert(0, "openid")
    uris, logout_uris = _as_list(redirect_uris), _as_list(post_logout_redirect_uris)
    for field, values in (("redirect_uris", uris), ("post_logout_redirect_uris", logout_uris)):
        for uri in values:
            try:
                check_redirect_uri(uri, public=public)
            except ValidationError as exc:
                fail(field, exc.messages[0])
    if "authorization_code" in grants and not uris:
        fail("redirect_uris", gettext("授权码模式至少需要登记一个回调地址"))
    if id_token_alg not in Client.Alg.values:
        fail("id_token_alg", gettext("不支持的签名算法：%(alg)s") % {"alg": id_token_alg})
    if errors:
        raise ValidationError(errors)
    return {
        "name": name,
        "organization": organization,
        "client_type": client_type,
        "redirect_uris": uris,
        "post_logout_redirect_uris": logout_uris,
        "grant_types": grants,
        "scopes": scope_list,
        "id_token_alg": id_token_alg,
    }


# --- secrets --------------------------------------------------------------------------------------


def _hash(client_id: str, secret: str, *, kid: str | None = None) -> str:
    """``kid:hex`` of the keyed hash of a client secret (under the active key unless ``kid``)."""
    if kid is None:
        kid, key = keys.data_key(SECRET_KEY_PURPOSE)
    else:
        key = keys.data_key_by_id(kid)
    digest = hmac_sm3(key, client_id.encode() + b"\x00" + secret.encode())
    return f"{kid}:{digest.hex()}"


def _actor_label(actor) -> str:
    """Who registered a client, for the ``created_by`` column."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor[:150]
    getter = getattr(actor, "get_username", None)
    return (getter() if callable(getter) else str(actor))[:150]


def _announce(event_type: str, client: Client) -> None:
    """Publish a client event in the current transaction's outbox."""
    events.publish(
        event_type,
        {"client_id": client.client_id, "organization": client.organization.code, "active": client.is_active},
        aggregate="oidc.client",
        aggregate_id=client.client_id,
    )


def _detail(client: Client) -> dict:
    """The audited description of a client's settings (never its secret)."""
    return {
        "client_id": client.client_id,
        "type": client.client_type,
        "organization": client.organization.code,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types,
        "scopes": client.scopes,
        "id_token_alg": client.id_token_alg,
        "first_party": client.first_party,
        "min_acr": client.min_acr,
    }


def _min_acr(value: str) -> str:
    """A client's minimum real-name level: "" (none) or one of the provider's acr values."""
    value = (value or "").strip()
    allowed = {choice for choice, _label in Client._meta.get_field("min_acr").choices}
    if value and value not in allowed:
        raise ValidationError({"min_acr": gettext("未知的实名等级：%(v)s") % {"v": value[:40]}})
    return value


# --- operations -----------------------------------------------------------------------------------


def create_client(
    *,
    name: str,
    organization,
    actor,
    client_type: str = Client.Type.CONFIDENTIAL,
    redirect_uris=(),
    post_logout_redirect_uris=(),
    grant_types=("authorization_code", "refresh_token"),
    scopes=("openid", "profile"),
    id_token_alg: str = Client.Alg.RS256,
    first_party: bool = False,
    client_id: str = "",
    min_acr: str = "",
) -> tuple[Client, str | None]:
    """Register a client; return it with its secret (shown once; None for a public client)."""
    values = _clean(
        name=name,
        organization=organization,
        client_type=client_type,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout_redirect_uris,
        grant_types=grant_types,
        scopes=scopes,
        id_token_alg=id_token_alg,
    )
    client_id = (client_id or "").strip().lower()
    if not client_id:
        base = re.sub(r"[^a-z0-9_-]+", "-", organization.code.lower()).strip("-_") or "client"
        client_id = f"{base[:48]}-oidc-{secrets.token_hex(4)}"
    if not _CLIENT_ID_RE.match(client_id):
        raise ValidationError({"client_id": gettext("客户端标识只能包含小写字母、数字、连字符和下划线，长度 2–64")})
    secret = None if values["client_type"] == Client.Type.PUBLIC else secrets.token_urlsafe(32)
    with transaction.atomic():
        if Client.objects.filter(client_id=client_id).exists():
            raise ValidationError({"client_id": gettext("客户端标识 %(id)s 已存在") % {"id": client_id}})
        client = Client.objects.create(
            client_id=client_id,
            secret_hash=_hash(client_id, secret) if secret else "",
            first_party=bool(first_party),
            min_acr=_min_acr(min_acr),
            created_by=_actor_label(actor),
            **values,
        )
        audit.record("oidc.client.create", actor=actor, target=client, detail=_detail(client))
        _announce("oidc.client.created", client)
    return client, secret


def update_client(client: Client, *, actor, **changes) -> Client:
    """Change a client's settings (not its id, type or secret); audit what changed."""
    allowed = {
        "name",
        "organization",
        "redirect_uris",
        "post_logout_redirect_uris",
        "grant_types",
        "scopes",
        "id_token_alg",
        "first_party",
        "min_acr",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a client")
    with transaction.atomic():
        client = Client.objects.select_for_update(of=("self",)).select_related("organization").get(pk=client.pk)
        current = {
            "name": client.name,
            "organization": client.organization,
            "client_type": client.client_type,
            "redirect_uris": client.redirect_uris,
            "post_logout_redirect_uris": client.post_logout_redirect_uris,
            "grant_types": client.grant_types,
            "scopes": client.scopes,
            "id_token_alg": client.id_token_alg,
        }
        first_party = bool(changes.pop("first_party", client.first_party))
        min_acr = _min_acr(changes.pop("min_acr", client.min_acr))
        values = _clean(**{**current, **changes})
        before = _detail(client)
        for field, value in values.items():
            setattr(client, field, value)
        client.first_party = first_party
        client.min_acr = min_acr
        client.save()
        after = _detail(client)
        changed = {key: {"from": before[key], "to": after[key]} for key in after if before[key] != after[key]}
        if changed:
            audit.record("oidc.client.update", actor=actor, target=client, detail={"changed": changed})
            _announce("oidc.client.updated", client)
    return client


def rotate_secret(client: Client, *, actor) -> str:
    """Give a confidential client a new secret (the old one stops at once); return it (shown once)."""
    if client.is_public:
        raise ValidationError(gettext("公开客户端没有密钥"))
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        client = Client.objects.select_for_update(of=("self",)).select_related("organization").get(pk=client.pk)
        client.secret_hash = _hash(client.client_id, secret)
        client.secret_rotated_at = timezone.now()
        client.save(update_fields=["secret_hash", "secret_rotated_at", "updated_at"])
        audit.record("oidc.client.rotate_secret", actor=actor, target=client)
        _announce("oidc.client.secret_rotated", client)
    return secret


def deactivate_client(client: Client, *, actor, reason: str = "") -> Client:
    """Stop a client: it can no longer authenticate, and every grant and token it holds is revoked."""
    with transaction.atomic():
        client = Client.objects.select_for_update(of=("self",)).select_related("organization").get(pk=client.pk)
        if not client.is_active:
            return client
        now = timezone.now()
        client.is_active = False
        client.save(update_fields=["is_active", "updated_at"])
        grants = Grant.objects.filter(client=client, revoked_at__isnull=True).update(
            revoked_at=now, revoke_reason="client_deactivated"
        )
        RefreshToken.objects.filter(grant__client=client, revoked_at__isnull=True).update(revoked_at=now)
        tokens = AccessToken.objects.filter(client=client, revoked_at__isnull=True, expires_at__gt=now).update(
            revoked_at=now
        )
        audit.record(
            "oidc.client.deactivate",
            actor=actor,
            target=client,
            detail={"reason": reason[:500], "grants_revoked": grants, "access_tokens_revoked": tokens},
        )
        _announce("oidc.client.deactivated", client)
    return client


# --- lookups used on every protocol request ------------------------------------------------------


def _may_cache() -> bool:
    """Remember lookups only outside transactions (a row read inside one may still be rolled back)."""
    return not connection.in_atomic_block


def client_exists(client_id: str) -> bool:
    """Whether a client with this id is registered (active or not): ids are never reused."""
    return Client.objects.filter(client_id=(client_id or "").strip().lower()).exists()


def get_client(client_id: str) -> Client | None:
    """The active client ``client_id`` (of an active department), or None; cached for a few seconds."""
    if not client_id or len(client_id) > 64:
        return None
    now = time.monotonic()
    hit = _client_cache.get(client_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    client = Client.objects.select_related("organization", "organization__division").filter(client_id=client_id).first()
    if client is not None and (not client.is_active or not client.organization.is_active):
        client = None
    if _may_cache():
        if len(_client_cache) > 10000:
            _client_cache.clear()
        _client_cache[client_id] = (now + _CACHE_SECONDS, client)
    return client


def authenticate(client_id: str, secret: str) -> Client | None:
    """The active confidential client whose secret this is, or None (constant-time comparison)."""
    if not client_id or not secret or len(client_id) > 64 or len(secret) > 256:
        return None
    fingerprint = hashlib.sha256(client_id.encode() + b"\x00" + secret.encode()).digest()
    now = time.monotonic()
    hit = _auth_cache.get(fingerprint)
    if hit is not None and hit[0] > now:
        return hit[1]
    client = get_client(client_id)
    if client is None or client.is_public or not client.secret_hash:
        _hash(client_id, secret)  # the same work as a known client, so timing does not tell them apart
        return None
    kid, _sep, _digest = client.secret_hash.partition(":")
    try:
        expected = _hash(client.client_id, secret, kid=kid)
    except keys.UnknownKeyError:
        return None
    if not hmac.compare_digest(expected.encode(), client.secret_hash.encode()):
        return None
    if _may_cache():
        if len(_auth_cache) > 10000:
            _auth_cache.clear()
        _auth_cache[fingerprint] = (now + _CACHE_SECONDS, client)
    return client
