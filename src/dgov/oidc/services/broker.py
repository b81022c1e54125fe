"""Identity brokering (身份联合 / 对接国家平台): logging in with an upstream OpenID Connect provider.

An administrator configures an :class:`~dgov.oidc.models.UpstreamProvider` (the national
platform, another province's dgov) with :func:`create_provider` (``dgov oidc upstream add``).
The login page then offers "使用…登录"; the flow:

1. :func:`begin` — the authorization request: code flow, PKCE S256, a fresh ``state`` and ``nonce``
   kept with the verifier in the session (at most five pending, ten minutes each);
2. :func:`complete` — the callback: the ``state`` must be a pending one of this provider; the code
   is exchanged (``client_secret_basic``), the id_token verified (:mod:`~dgov.oidc.services.upstream`),
   the resident ID number read from the id_token or else the UserInfo answer;
3. the account: a linked login (:class:`~dgov.oidc.models.FederatedIdentity`) of that upstream
   subject, else the local **person** account whose ``id_number_digest`` is the number's blind index
   (linked now), else — when the provider allows it — a new person account;
4. the login itself goes through the identity app's ``begin_login`` with ``amr`` ``["fed"]``: the
   same session recording, throttle reset and audit as a password login, and a local second
   factor, if the person turned one on, is still asked for.

Trust rules (docs/oidc.md, "Brokering"):

* the upstream's ``acr`` maps to a level (``urn:dgov:loa:N`` as is, others through the provider's
  ``acr_levels``; unknown ones are level 1), capped at the provider's ``max_level``;
* an existing account is linked only when that level is at least 2 (a number the upstream only
  took on trust must not open someone's account here);
* a new account gets that level, at least 2 when the population library confirms name and
  number; it is refused below 2, and when the library knows the number with another name or a
  status other than normal;
* only person accounts are matched: officials, administrators, staff and superusers always log
  in with their password and second factor here.

Every refusal is audited (``oidc.upstream.refuse`` with the precise reason) and shown as an error
page; the refusals that concern accounts share one code and message (``no_account``), so the
page never tells whether an account exists for a number. Callbacks that fail verification count
against the client IP's login throttle.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dgov.identity import services as identity
from dgov.kernel.fields import blind_index
from dgov.kernel.masking import mask_id_number, mask_name
from dgov.kernel.services import audit
from dgov.kernel.validators import is_valid_resident_id
from dgov.oidc.models import FederatedIdentity, UpstreamProvider
from dgov.oidc.services import upstream
from dgov.oidc.services.authorization import acr_level

__all__ = [
    "BrokerError",
    "SESSION_KEY",
    "begin",
    "callback_url",
    "check_provider",
    "complete",
    "create_provider",
    "enabled_providers",
    "get_provider",
    "linked_logins",
    "login_options",
    "relink",
    "relogin_options",
    "set_enabled",
    "trusted_level",
    "unlink",
]

SESSION_KEY = "dgov_oidc_upstream"
PENDING_LIMIT = 5
PENDING_SECONDS = 600
ID_PURPOSE = "resident_id"
LEVEL_VERIFIED = 2

# Public codes of the error page. Every refusal about accounts is "no_account" (see the module doc).
MESSAGES = {
    "unknown_provider": _("该登录方式不存在或已停用。"),
    "throttled": _("登录尝试次数过多，请稍后再试。"),
    "bad_state": _("登录请求已失效或并非由本平台发起，请返回登录页重新登录。"),
    "cancelled": _("您已在“%(provider)s”取消登录。"),
    "upstream_error": _("“%(provider)s”未能完成登录，请稍后重试。"),
    "unavailable": _("暂时无法连接“%(provider)s”，请稍后再试或使用本平台账号登录。"),
    "bad_token": _("“%(provider)s”返回的身份信息未通过校验，为保护您的账号，本次登录已被拒绝。"),
    "missing_id": _(
        "“%(provider)s”没有提供您的身份证号码，无法与本平台账号对应。请在该平台完成实名认证、同意提供身份证号码后重试。"
    ),
    "no_account": _(
        "无法通过“%(provider)s”登录：未能将您在该平台的身份与本平台的个人账号对应。"
        "请使用本平台账号密码登录，或到政务服务窗口咨询。"
    ),
    "unlinked": _(
        "您已解除“%(provider)s”与本平台账号的关联。如需恢复，请先用本平台账号密码登录，再在“账号与安全”中重新关联。"
    ),
}
# Reasons (audited) that are shown as "no_account".
_ACCOUNT_REASONS = frozenset(
    {
        "no_account",
        "level_too_low",
        "ambiguous",
        "account_unavailable",
        "already_linked",
        "id_changed",
        "population_mismatch",
        "population_deceased",
        "population_migrated",
        "population_status",
        "account_locked",
    }
)
# Reasons that do not count against the client IP's login throttle (nobody is guessing anything).
_NOT_COUNTED = frozenset({"unknown_provider", "throttled", "cancelled", "upstream_error", "unavailable"})
_PUBLIC_CODE = {
    "bad_signature": "bad_token",
    "bad_claims": "bad_token",
    "nonce_mismatch": "bad_token",
    "issuer_mismatch": "bad_token",
    "token_refused": "bad_token",
    "userinfo_mismatch": "bad_token",
    "missing_code": "upstream_error",
    "bad_id_format": "missing_id",
}


class BrokerError(Exception):
    """A refused brokered login: ``code`` is the public code (error page), ``reason`` the audited one."""

    def __init__(self, reason: str, provider: UpstreamProvider | None = None, *, status: int = 400):
        if reason in _ACCOUNT_REASONS:
            code = "no_account"
        else:
            code = _PUBLIC_CODE.get(reason, reason)
        super().__init__(reason)
        self.reason = reason
        self.code = code if code in MESSAGES else "upstream_error"
        self.provider = provider
        self.status = status

    @property
    def message(self) -> str:
        """What the error page says (in the active language)."""
        text = str(MESSAGES[self.code])
        if "%(provider)s" not in text:
            return text
        return text % {"provider": self.provider.display_name(_language()) if self.provider is not None else ""}


def _language() -> str:
    """The active language code."""
    from django.utils.translation import get_language

    return get_language() or ""


# --- administration ------------------------------------------------------------------------------------


def _actor_label(actor) -> str:
    """Who configured a provider, for ``created_by``."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor[:150]
    getter = getattr(actor, "get_username", None)
    return (getter() if callable(getter) else str(actor))[:150]


def _provider_detail(provider: UpstreamProvider) -> dict:
    """A provider's settings for the audit log (never its secret)."""
    return {
        "slug": provider.slug,
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "scopes": provider.scopes,
        "id_number_claim": provider.id_number_claim,
        "name_claim": provider.name_claim,
        "acr_levels": provider.acr_levels,
        "max_level": provider.max_level,
        "allow_create": provider.allow_create,
        "enabled": provider.enabled,
    }


def _clean_acr_levels(value) -> dict[str, int]:
    """``{acr: level}`` with levels 1–3; ValidationError otherwise."""
    if isinstance(value, (list, tuple)):
        pairs = {}
        for item in value:
            acr, sep, level = str(item).rpartition("=")
            if not sep:
                raise ValidationError({"acr_levels": gettext("认证等级映射的格式为 acr=等级，如 *=2")})
            pairs[acr.strip()] = level.strip()
        value = pairs
    result: dict[str, int] = {}
    for acr, level in dict(value or {}).items():
        if not acr or str(level) not in ("1", "2", "3"):
            raise ValidationError({"acr_levels": gettext("认证等级只能是 1、2 或 3：%(acr)s") % {"acr": str(acr)[:60]}})
        result[str(acr)[:200]] = int(level)
    return result


def create_provider(
    *,
    slug: str,
    name_zh: str,
    issuer: str,
    client_id: str,
    client_secret: str,
    actor,
    name_en: str = "",
    scopes=("openid", "profile", "dgov:identity"),
    id_number_claim: str = "dgov_id_number",
    name_claim: str = "dgov_real_name",
    acr_levels=None,
    max_level: int = 2,
    allow_create: bool = False,
    enabled: bool = True,
) -> UpstreamProvider:
    """Configure an upstream provider (its discovery is fetched at the first login); audited."""
    errors: dict[str, str] = {}
    slug = (slug or "").strip().lower()
    if not slug or len(slug) > 40 or not all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in slug):
        errors["slug"] = gettext("标识只能包含小写字母、数字、连字符和下划线，最长 40 个字符")
    if not (name_zh or "").strip():
        errors["name_zh"] = gettext("名称不能为空")
    issuer = (issuer or "").strip().rstrip("/")
    try:
        upstream.check_url(issuer)
    except upstream.UpstreamError:
        errors["issuer"] = gettext("签发者必须是完整的 https 地址")
    if not (client_id or "").strip():
        errors["client_id"] = gettext("客户端标识不能为空")
    if not client_secret:
        errors["client_secret"] = gettext("客户端密钥不能为空（本平台以 client_secret_basic 方式认证）")
    scope_list = [s for s in (scopes.split() if isinstance(scopes, str) else list(scopes)) if s]
    if "openid" not in scope_list:
        scope_list.insert(0, "openid")
    if not (id_number_claim or "").strip():
        errors["id_number_claim"] = gettext("必须指定身份证号码所在的声明")
    if int(max_level) not in (1, 2, 3):
        errors["max_level"] = gettext("最高信任等级只能是 1、2 或 3")
    if errors:
        raise ValidationError(errors)
    levels = _clean_acr_levels(acr_levels)
    with transaction.atomic():
        if UpstreamProvider.objects.filter(slug=slug).exists():
            raise ValidationError({"slug": gettext("标识 %(slug)s 已存在") % {"slug": slug}})
        provider = UpstreamProvider.objects.create(
            slug=slug,
            name_zh=name_zh.strip(),
            name_en=(name_en or "").strip(),
            issuer=issuer,
            client_id=client_id.strip(),
            client_secret=client_secret,
            scopes=scope_list,
            id_number_claim=id_number_claim.strip(),
            name_claim=(name_claim or "").strip(),
            acr_levels=levels,
            max_level=int(max_level),
            allow_create=bool(allow_create),
            enabled=bool(enabled),
            created_by=_actor_label(actor),
        )
        audit.record("oidc.upstream.create", actor=actor, target=provider, detail=_provider_detail(provider))
    return provider


def set_enabled(provider: UpstreamProvider, enabled: bool, *, actor) -> UpstreamProvider:
    """Enable or disable a provider (a disabled one is off the login page and its callbacks are refused)."""
    with transaction.atomic():
        provider = UpstreamProvider.objects.select_for_update().get(pk=provider.pk)
        if provider.enabled != bool(enabled):
            provider.enabled = bool(enabled)
            provider.save(update_fields=["enabled", "updated_at"])
            audit.record(
                "oidc.upstream.enable" if enabled else "oidc.upstream.disable",
                actor=actor,
                target=provider,
                detail={"slug": provider.slug},
            )
    upstream.forget(provider.issuer)
    return provider


def get_provider(slug: str) -> UpstreamProvider | None:
    """The enabled provider ``slug``, or None."""
    if not slug or len(slug) > 40:
        return None
    return UpstreamProvider.objects.filter(slug=slug, enabled=True).first()


def enabled_providers() -> list[UpstreamProvider]:
    """The providers offered on the login page."""
    return list(UpstreamProvider.objects.filter(enabled=True).order_by("slug"))


def login_options(next_url: str = "") -> list[dict[str, str]]:
    """The login page's "使用…登录" buttons: name and URL (carrying ``next``) per enabled provider."""
    from urllib.parse import urlencode

    language = _language()
    options = []
    for provider in enabled_providers():
        url = reverse("oidc:upstream_login", kwargs={"slug": provider.slug})
        if next_url:
            url += "?" + urlencode({"next": next_url})
        options.append({"slug": provider.slug, "name": provider.display_name(language), "url": url})
    return options


# --- the login flow ---------------------------------------------------------------------------------------


def callback_url(provider: UpstreamProvider) -> str:
    """The redirect URI registered at the upstream: the site's public URL, never the request's Host."""
    base = str(getattr(settings, "SITE_URL", "") or "").rstrip("/")
    return base + reverse("oidc:upstream_callback", kwargs={"slug": provider.slug})


def _pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _pending(request) -> dict[str, dict]:
    """The session's pending upstream logins that have not expired."""
    items = request.session.get(SESSION_KEY) or {}
    cutoff = time.time() - PENDING_SECONDS
    return {
        state: item
        for state, item in items.items()
        if isinstance(item, dict) and isinstance(item.get("at"), (int, float)) and item["at"] > cutoff
    }


def _refuse(request, reason: str, provider: UpstreamProvider | None, *, target=None, status: int = 400, **detail):
    """Audit a refusal (and count it against the client IP when it may be an attack); return the error."""
    error = BrokerError(reason, provider, status=status)
    with transaction.atomic():
        if reason not in _NOT_COUNTED:
            identity.register_ip_failure(request)
        audit.record(
            "oidc.upstream.refuse",
            target=target if target is not None else provider,
            outcome="denied",
            detail={"reason": reason, "provider": provider.slug if provider else "", **detail},
        )
    return error


def begin(request, slug: str, *, next_url: str = "") -> str:
    """Start a login at the upstream ``slug``; return the authorization URL to send the browser to."""
    provider = get_provider(slug)
    if provider is None:
        raise _refuse(request, "unknown_provider", None, status=404, slug=str(slug)[:40])
    if identity.ip_throttled(request):
        raise _refuse(request, "throttled", provider, status=429)
    try:
        metadata = upstream.discover(provider.issuer)
    except upstream.UpstreamError as exc:
        raise _refuse(request, "unavailable", provider, status=502, error=exc.detail) from None
    verifier, challenge = _pkce()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    pending = _pending(request)
    while len(pending) >= PENDING_LIMIT:
        pending.pop(next(iter(pending)))
    pending[state] = {
        "provider": provider.slug,
        "nonce": nonce,
        "verifier": verifier,
        "next": next_url[:2000],
        "at": int(time.time()),
    }
    request.session[SESSION_KEY] = pending
    return upstream.authorization_url(
        metadata,
        client_id=provider.client_id,
        redirect_uri=callback_url(provider),
        scopes=provider.scopes,
        state=state,
        nonce=nonce,
        challenge=challenge,
    )


def trusted_level(provider: UpstreamProvider, acr) -> int:
    """The real-name level an upstream ``acr`` stands for here: mapped, then capped at ``max_level``."""
    level = acr_level(acr)
    if level is None:
        levels = provider.acr_levels or {}
        mapped = levels.get(str(acr)) if acr is not None else None
        if mapped is None:
            mapped = levels.get("*", 1)
        try:
            level = int(mapped)
        except (TypeError, ValueError):
            level = 1
    return max(1, min(level, 3, int(provider.max_level or 1)))


@dataclass(slots=True)
class _Identity:
    """What the upstream vouched for in one login."""

    sub: str
    id_number: str
    name: str
    acr: str
    amr: list[str]
    level: int


def _claim(claims: dict, name: str) -> str:
    """A claim as a stripped string ("" when absent or not a string)."""
    value = claims.get(name) if name else None
    return value.strip() if isinstance(value, str) else ""


def _verified_identity(request, provider: UpstreamProvider, params, item: dict) -> _Identity:
    """Exchange the code, verify the id_token, read the ID number (id_token, else UserInfo)."""
    issuer_param = params.get("iss")
    try:
        metadata = upstream.discover(provider.issuer)
        if issuer_param is not None and issuer_param != metadata.issuer:
            raise upstream.UpstreamError("issuer_mismatch", "the iss parameter names another issuer (mix-up)")
        answer = upstream.exchange_code(
            metadata,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            code=params["code"],
            redirect_uri=callback_url(provider),
            verifier=item["verifier"],
        )
        access_token = answer.get("access_token") if isinstance(answer.get("access_token"), str) else ""
        claims = upstream.validate_id_token(
            metadata, answer["id_token"], client_id=provider.client_id, nonce=item["nonce"], access_token=access_token
        )
        if not _claim(claims, provider.id_number_claim) and access_token and metadata.userinfo_endpoint:
            extra = upstream.userinfo(metadata, access_token, sub=claims["sub"])
            claims = {**extra, **claims}  # the id_token's own claims win; UserInfo adds the missing ones
    except upstream.UpstreamError as exc:
        status = 502 if exc.code == "unavailable" else 400
        raise _refuse(request, exc.code, provider, status=status, error=exc.detail) from None
    number = _claim(claims, provider.id_number_claim).upper()
    if not number:
        raise _refuse(request, "missing_id", provider, sub_hash=_sub_hash(claims["sub"]))
    if not is_valid_resident_id(number):
        raise _refuse(request, "bad_id_format", provider, id_number=mask_id_number(number))
    acr = claims.get("acr")
    amr = [str(m)[:20] for m in claims.get("amr") or [] if isinstance(m, str)][:8]
    return _Identity(
        sub=claims["sub"],
        id_number=number,
        name=_claim(claims, provider.name_claim)[:100],
        acr=str(acr)[:200] if acr is not None else "",
        amr=amr,
        level=trusted_level(provider, acr),
    )


def _sub_hash(sub: str) -> str:
    """A short digest of an upstream subject for audit records (subjects are identifiers, kept out)."""
    return hashlib.sha256(str(sub).encode()).hexdigest()[:16]


def _eligible(user) -> bool:
    """Accounts a brokered login may reach: active person accounts without staff rights."""
    return bool(user.is_active and user.kind == "person" and not user.is_staff and not user.is_superuser)


def _new_username(provider: UpstreamProvider) -> str:
    """A fresh account name for an account made by a brokered login."""
    User = get_user_model()
    for _attempt in range(10):
        name = f"{provider.slug}-{secrets.token_hex(4)}"
        if not User.objects.filter(username=name).exists():
            return name
    raise IntegrityError("no free account name")


def _account_for(request, provider: UpstreamProvider, who: _Identity):
    """The local person the upstream identity is (linking or creating as the rules say); (user, link, how)."""
    User = get_user_model()
    digest = blind_index(who.id_number, purpose=ID_PURPOSE)
    detail = {"sub_hash": _sub_hash(who.sub), "id_number": mask_id_number(who.id_number), "upstream_level": who.level}
    link = FederatedIdentity.objects.select_related("user").filter(provider=provider, subject=who.sub).first()
    if link is not None:
        if link.unlinked_at is not None:
            raise _refuse(request, "unlinked", provider, target=link.user, **detail)
        user = link.user
        if user.id_number_digest != digest:
            raise _refuse(request, "id_changed", provider, target=user, **detail)
        if not _eligible(user):
            raise _refuse(request, "account_unavailable", provider, target=user, **detail)
        return user, link, "linked_login"
    candidates = list(User.objects.filter(kind="person", id_number_digest=digest).order_by("pk")[:2])
    if len(candidates) > 1:
        raise _refuse(request, "ambiguous", provider, **detail)
    if candidates:
        user = candidates[0]
        if who.level < LEVEL_VERIFIED:
            raise _refuse(request, "level_too_low", provider, target=user, **detail)
        if not _eligible(user):
            raise _refuse(request, "account_unavailable", provider, target=user, **detail)
        if FederatedIdentity.objects.filter(provider=provider, user=user).exists():
            raise _refuse(request, "already_linked", provider, target=user, **detail)
        try:
            with transaction.atomic():
                link = FederatedIdentity.objects.create(provider=provider, subject=who.sub, user=user)
                if not user.id_number:  # verified before the number itself was kept: it matches the digest
                    user.id_number = who.id_number
                    user.save(update_fields=["id_number"])
                audit.record(
                    "oidc.upstream.link", actor=user, target=user, detail={"provider": provider.slug, **detail}
                )
        except IntegrityError:
            raise _refuse(request, "already_linked", provider, target=user, **detail) from None
        return user, link, "linked_now"
    if not provider.allow_create:
        raise _refuse(request, "no_account", provider, **detail)
    population = identity.check_population(who.name, who.id_number)
    if population in ("mismatch", "deceased", "migrated", "status"):
        raise _refuse(request, f"population_{population}", provider, **detail)
    level = max(who.level, LEVEL_VERIFIED) if population == "verified" else who.level
    if level < LEVEL_VERIFIED:
        raise _refuse(request, "level_too_low", provider, population=population, **detail)
    try:
        with transaction.atomic():
            user = User(
                username=_new_username(provider),
                kind="person",
                display_name=who.name,
                id_number=who.id_number,
                id_number_digest=digest,
                real_name_level=level,
                real_name_verified_at=timezone.now(),
            )
            user.set_unusable_password()
            user.save()
            link = FederatedIdentity.objects.create(provider=provider, subject=who.sub, user=user, created_account=True)
            audit.record(
                "oidc.upstream.create_account",
                actor=user,
                target=user,
                detail={
                    "provider": provider.slug,
                    "level": level,
                    "population": population,
                    "name": mask_name(who.name),
                    **detail,
                },
            )
    except IntegrityError:  # a concurrent login of the same person made it first
        raise _refuse(request, "already_linked", provider, **detail) from None
    return user, link, "created"


def complete(request, slug: str, params) -> str:
    """The callback: verify the upstream's answer, find or make the account, log in; return where to go.

    Raises :class:`BrokerError` (audited) for every refusal. On success the user is logged in
    (or, with a local second factor, sent to enter it) through the identity app's ``begin_login``.
    """
    provider = UpstreamProvider.objects.filter(slug=str(slug)[:40]).first()
    if provider is None or not provider.enabled:
        raise _refuse(request, "unknown_provider", provider, status=404, slug=str(slug)[:40])
    if identity.ip_throttled(request):
        raise _refuse(request, "throttled", provider, status=429)
    pending = _pending(request)
    state = params.get("state", "")
    item = pending.pop(state, None) if isinstance(state, str) and state else None
    request.session[SESSION_KEY] = pending
    if item is None or item.get("provider") != provider.slug:
        raise _refuse(request, "bad_state", provider)
    if params.get("error"):
        reason = "cancelled" if params.get("error") == "access_denied" else "upstream_error"
        raise _refuse(request, reason, provider, error=str(params.get("error"))[:60])
    if not params.get("code"):
        raise _refuse(request, "missing_code", provider)
    who = _verified_identity(request, provider, params, item)
    user, link, how = _account_for(request, provider, who)
    if identity.login_throttled(request, user):
        raise _refuse(request, "account_locked", provider, target=user)
    with transaction.atomic():
        FederatedIdentity.objects.filter(pk=link.pk).update(
            last_login_at=timezone.now(), last_acr=who.acr, last_amr=who.amr
        )
        audit.record(
            "oidc.upstream.login",
            actor=user,
            target=user,
            detail={
                "provider": provider.slug,
                "how": how,
                "upstream_acr": who.acr[:100],
                "upstream_amr": who.amr,
                "upstream_level": who.level,
            },
        )
    _step, url = identity.begin_login(request, user, next_url=item.get("next") or "", methods=[identity.AMR_FEDERATED])
    return url


# --- the account console ----------------------------------------------------------------------------------


def linked_logins(user) -> list[FederatedIdentity]:
    """The person's linked upstream logins (also the unlinked ones, which can be re-linked)."""
    if user is None or not getattr(user, "pk", None):
        return []
    return list(FederatedIdentity.objects.select_related("provider").filter(user_id=user.pk).order_by("-linked_at"))


def relogin_options(user, next_url: str = "") -> list[dict[str, str]]:
    """Buttons to log in again through the person's linked, enabled upstream providers (re-authentication).

    For an account without a password a fresh brokered login is its re-authentication: the login
    sets the session's authentication time like any login (``DGOV_REAUTH_SECONDS``).
    """
    from urllib.parse import urlencode

    language = _language()
    options = []
    for link in linked_logins(user):
        if not link.is_linked or not link.provider.enabled:
            continue
        url = reverse("oidc:upstream_login", kwargs={"slug": link.provider.slug})
        if next_url:
            url += "?" + urlencode({"next": next_url})
        options.append({"slug": link.provider.slug, "name": link.provider.display_name(language), "url": url})
    return options


def _own_link(user, link_id) -> FederatedIdentity:
    """The user's own link ``link_id`` (PermissionDenied for anyone else's: no IDOR)."""
    link = FederatedIdentity.objects.select_related("provider").select_for_update(of=("self",)).filter(pk=link_id)
    row = link.first()
    if row is None or row.user_id != user.pk:
        raise PermissionDenied(gettext("该登录方式不存在。"))
    return row


def unlink(user, link_id, *, actor, reauthenticated: bool) -> FederatedIdentity:
    """Unlink an upstream login from the account (after a recent re-authentication).

    Refused for an account without a usable password: it could not log in any more. The row
    stays (``unlinked_at``) so the upstream login is not linked again by ID number behind the
    person's back; :func:`relink` undoes it.
    """
    if not reauthenticated:
        raise PermissionDenied(gettext("请先确认身份后再修改登录方式。"))
    if not user.has_usable_password():
        raise ValidationError(
            gettext("您的账号尚未设置登录密码，解除关联后将无法登录。请先设置密码，或到政务服务窗口办理。")
        )
    with transaction.atomic():
        link = _own_link(user, link_id)
        if link.unlinked_at is None:
            link.unlinked_at = timezone.now()
            link.save(update_fields=["unlinked_at"])
            audit.record(
                "oidc.upstream.unlink",
                actor=actor,
                target=user,
                detail={"provider": link.provider.slug, "link": link.pk},
            )
    return link


def relink(user, link_id, *, actor, reauthenticated: bool) -> FederatedIdentity:
    """Link again an upstream login the person unlinked earlier (after a recent re-authentication)."""
    if not reauthenticated:
        raise PermissionDenied(gettext("请先确认身份后再修改登录方式。"))
    with transaction.atomic():
        link = _own_link(user, link_id)
        if link.unlinked_at is not None:
            link.unlinked_at = None
            link.save(update_fields=["unlinked_at"])
            audit.record(
                "oidc.upstream.relink",
                actor=actor,
                target=user,
                detail={"provider": link.provider.slug, "link": link.pk},
            )
    return link


def check_provider(provider: UpstreamProvider) -> tuple[upstream.Metadata, list[str]]:
    """Fetch a provider's discovery document and keys afresh: (metadata, ``kid (alg)`` of each usable key)."""
    upstream.forget(provider.issuer)
    metadata = upstream.discover(provider.issuer)
    found = upstream.published_keys(metadata)
    return metadata, [f"{key.kid or '-'} ({key.alg})" for key in found]
