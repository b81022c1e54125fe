"""OpenID Connect provider (统一身份认证服务): clients, signing keys, grants, codes, tokens, consents.

Secrets are never stored in the clear: client secrets as a keyed HMAC-SM3 (``kid:hex``),
authorization codes and refresh tokens as their SM3 digest, signing keys wrapped with SM4-GCM
under the master key. Access tokens and id_tokens are signed JWTs; an access token's row (by
``jti``) is what makes it revocable and introspectable.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from dgov.kernel.fields import EncryptedTextField

__all__ = [
    "AccessToken",
    "AuthorizationCode",
    "Client",
    "Consent",
    "Grant",
    "RefreshToken",
    "SigningKey",
    "Subject",
]


class Client(models.Model):
    """A relying party (接入应用) registered by an administrator: a department system, portal or app."""

    class Type(models.TextChoices):
        CONFIDENTIAL = "confidential", _("机密客户端（服务器端应用）")
        PUBLIC = "public", _("公开客户端（浏览器或移动应用）")

    class Alg(models.TextChoices):
        RS256 = "RS256", "RS256"
        ES256 = "ES256", "ES256"
        SM2 = "SM2", _("SM2（国密）")

    client_id = models.SlugField(_("客户端标识"), max_length=64, unique=True)
    name = models.CharField(_("应用名称"), max_length=100)
    client_type = models.CharField(_("客户端类型"), max_length=16, choices=Type.choices, default=Type.CONFIDENTIAL)
    # "<kid>:<hex HMAC-SM3>" as for API clients; empty for public clients.
    secret_hash = models.CharField(_("密钥摘要"), max_length=160, blank=True, editable=False)
    redirect_uris = models.JSONField(_("回调地址"), default=list, blank=True)
    post_logout_redirect_uris = models.JSONField(_("退出后跳转地址"), default=list, blank=True)
    grant_types = models.JSONField(_("授权类型"), default=list, blank=True)
    scopes = models.JSONField(_("允许的权限范围"), default=list, blank=True)
    id_token_alg = models.CharField(_("身份令牌签名算法"), max_length=8, choices=Alg.choices, default=Alg.RS256)
    organization = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("所属部门"),
        on_delete=models.PROTECT,
        related_name="oidc_clients",
    )
    first_party = models.BooleanField(
        _("平台自有应用"), default=False, help_text=_("自有应用登录时不再询问用户是否授权")
    )
    # Minimum authentication context (real-name level) every login to this client must reach; a
    # lower one is answered with unmet_authentication_requirements. Empty: no minimum.
    min_acr = models.CharField(
        _("最低实名等级"),
        max_length=32,
        blank=True,
        default="",
        choices=[
            ("urn:dgov:loa:1", _("一级：自行注册")),
            ("urn:dgov:loa:2", _("二级：身份信息核验")),
            ("urn:dgov:loa:3", _("三级：现场核验或双因素")),
        ],
        help_text=_("低于此等级的账号登录本应用时将被拒绝"),
    )
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    secret_rotated_at = models.DateTimeField(_("密钥更新时间"), null=True, blank=True)
    created_by = models.CharField(_("创建人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("接入应用")
        verbose_name_plural = _("接入应用")
        ordering = ["client_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    @property
    def is_public(self) -> bool:
        """Public clients have no secret and must use PKCE (client authentication ``none``)."""
        return self.client_type == self.Type.PUBLIC

    def audit_identity(self) -> tuple[str, str, str]:
        """How the audit log names a client acting on its own: kind "oidc-client", its id and name."""
        return "oidc-client", self.client_id, f"client:{self.client_id} {self.name}"


class SigningKey(models.Model):
    """A token signing key pair (RS256, ES256 or SM2); retired keys stay published in the JWKS."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("使用中")
        RETIRED = "retired", _("已轮换")
        REVOKED = "revoked", _("已吊销")

    kid = models.CharField(_("密钥标识"), max_length=80, unique=True)
    alg = models.CharField(_("算法"), max_length=8, choices=Client.Alg.choices)
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    public_jwk = models.JSONField(_("公钥（JWK）"))
    # SM4-GCM(master key, PKCS#8 DER, aad = "dgov-oidc-key|kid|alg") as nonce || ciphertext || tag.
    wrapped = models.BinaryField(_("封装的私钥"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    retired_at = models.DateTimeField(_("停用时间"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("令牌签名密钥")
        verbose_name_plural = _("令牌签名密钥")
        ordering = ["alg", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["alg"], condition=Q(status="active"), name="oidc_signingkey_one_active_per_alg"
            ),
        ]

    def __str__(self) -> str:
        return self.kid


class Subject(models.Model):
    """The stable, random ``sub`` of a user: neither the database id nor an ID number."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="oidc_subject"
    )
    sub = models.CharField(_("主体标识"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("主体标识")
        verbose_name_plural = _("主体标识")

    def __str__(self) -> str:
        return self.sub


class Consent(models.Model):
    """A user's remembered consent for a client to receive certain scopes (可随时撤销)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="oidc_consents"
    )
    client = models.ForeignKey(Client, verbose_name=_("接入应用"), on_delete=models.CASCADE, related_name="consents")
    scopes = models.JSONField(_("已同意的权限范围"), default=list)
    created_at = models.DateTimeField(_("首次同意时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("最近同意时间"), auto_now=True)

    class Meta:
        verbose_name = _("授权同意")
        verbose_name_plural = _("授权同意")
        constraints = [models.UniqueConstraint(fields=["user", "client"], name="oidc_consent_one_per_user_client")]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.client_id}"


class Grant(models.Model):
    """One authorization of a client by a user (一次授权): the family of its codes, access and refresh tokens.

    Revoking a grant (consent withdrawn, refresh token or code reused, logout of an online
    session) revokes every token issued under it.
    """

    client = models.ForeignKey(Client, verbose_name=_("接入应用"), on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="oidc_grants"
    )
    scope = models.CharField(_("权限范围"), max_length=1000)
    auth_time = models.DateTimeField(_("认证时间"))
    acr = models.CharField(_("认证等级"), max_length=64, blank=True)
    amr = models.JSONField(_("认证方式"), default=list)
    # The OP session (the "sid" claim) the grant was made in; online grants end with it.
    sid = models.CharField(_("会话标识"), max_length=64, blank=True, db_index=True)
    # Set when an agent (经办人) authorized the client while acting for the enterprise ``user``:
    # tokens carry the agent in an ``act`` claim, and ending the authorization revokes the grant.
    agency = models.ForeignKey(
        "identity.EnterpriseAgent",
        verbose_name=_("经办人授权"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="oidc_grants",
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)
    revoke_reason = models.CharField(_("撤销原因"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("授权")
        verbose_name_plural = _("授权")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"grant {self.pk}"

    @property
    def scope_list(self) -> list[str]:
        """The granted scopes as a list."""
        return self.scope.split()


class AuthorizationCode(models.Model):
    """A one-time authorization code (≤ 60 s), stored as its SM3 digest, bound to client, redirect URI and PKCE."""

    code_hash = models.CharField(_("授权码摘要"), max_length=64, unique=True)
    client = models.ForeignKey(Client, verbose_name=_("接入应用"), on_delete=models.CASCADE, related_name="codes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="oidc_codes"
    )
    redirect_uri = models.CharField(_("回调地址"), max_length=2000)
    scope = models.CharField(_("权限范围"), max_length=1000)
    nonce = models.CharField(_("nonce"), max_length=500, blank=True)
    code_challenge = models.CharField(_("PKCE 挑战值"), max_length=128)
    auth_time = models.DateTimeField(_("认证时间"))
    acr = models.CharField(_("认证等级"), max_length=64, blank=True)
    amr = models.JSONField(_("认证方式"), default=list)
    sid = models.CharField(_("会话标识"), max_length=64, blank=True)
    # The agent's authorization when the code was issued to an agent acting for the enterprise ``user``.
    agency = models.ForeignKey(
        "identity.EnterpriseAgent",
        verbose_name=_("经办人授权"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="oidc_codes",
    )
    created_at = models.DateTimeField(_("签发时间"), auto_now_add=True)
    expires_at = models.DateTimeField(_("失效时间"))
    used_at = models.DateTimeField(_("使用时间"), null=True, blank=True)
    grant = models.ForeignKey(
        Grant, verbose_name=_("授权"), null=True, blank=True, on_delete=models.SET_NULL, related_name="codes"
    )

    class Meta:
        verbose_name = _("授权码")
        verbose_name_plural = _("授权码")

    def __str__(self) -> str:
        return f"code {self.pk}"


class AccessToken(models.Model):
    """An issued access token (a signed JWT, RFC 9068), by its ``jti``; the row makes it revocable."""

    jti = models.CharField(_("令牌标识"), max_length=64, unique=True)
    client = models.ForeignKey(
        Client, verbose_name=_("接入应用"), on_delete=models.CASCADE, related_name="access_tokens"
    )
    grant = models.ForeignKey(
        Grant, verbose_name=_("授权"), null=True, blank=True, on_delete=models.CASCADE, related_name="access_tokens"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("用户"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="oidc_access_tokens",
    )
    scope = models.CharField(_("权限范围"), max_length=1000)
    created_at = models.DateTimeField(_("签发时间"))
    expires_at = models.DateTimeField(_("失效时间"), db_index=True)
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("访问令牌")
        verbose_name_plural = _("访问令牌")

    def __str__(self) -> str:
        return self.jti


class RefreshToken(models.Model):
    """A refresh token (opaque, stored as its SM3 digest); each use rotates it, a reuse revokes the grant."""

    token_hash = models.CharField(_("令牌摘要"), max_length=64, unique=True)
    grant = models.ForeignKey(Grant, verbose_name=_("授权"), on_delete=models.CASCADE, related_name="refresh_tokens")
    scope = models.CharField(_("权限范围"), max_length=1000)
    created_at = models.DateTimeField(_("签发时间"), auto_now_add=True)
    expires_at = models.DateTimeField(_("失效时间"), db_index=True)
    used_at = models.DateTimeField(_("轮换时间"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("刷新令牌")
        verbose_name_plural = _("刷新令牌")

    def __str__(self) -> str:
        return f"refresh {self.pk}"


# --- Identity brokering (身份联合): upstream OpenID Connect providers and the logins linked to them ---------


class UpstreamProvider(models.Model):
    """An upstream OpenID Connect provider people may log in with (对接国家平台或其他省份平台).

    dgov acts as a confidential relying party of it (code flow, PKCE S256, ``client_secret_basic``)
    and links a login there to the local person with the same resident ID number (docs/oidc.md,
    "Brokering"). Changed only through ``dgov.oidc.services.broker`` (audited).
    """

    slug = models.SlugField(_("标识"), max_length=40, unique=True, help_text=_("用于登录地址 /login/upstream/<标识>/"))
    name_zh = models.CharField(_("名称（中文）"), max_length=100)
    name_en = models.CharField(_("名称（英文）"), max_length=100, blank=True)
    issuer = models.CharField(_("签发者（issuer）"), max_length=500)
    client_id = models.CharField(_("客户端标识"), max_length=200)
    # The secret dgov authenticates with at the upstream's token endpoint (it must be sent, so it is
    # encrypted, not hashed), under its own key purpose.
    client_secret = EncryptedTextField(_("客户端密钥"), blank=True, purpose="oidc.upstream", editable=False)
    scopes = models.JSONField(_("请求的权限范围"), default=list)
    id_number_claim = models.CharField(_("身份证号码声明名"), max_length=100, default="dgov_id_number")
    name_claim = models.CharField(_("姓名声明名"), max_length=100, default="dgov_real_name", blank=True)
    # Upstream acr value → real-name level (1–3); "*" is the level of any other or a missing acr.
    # urn:dgov:loa:1–3 (another dgov) are understood without a mapping.
    acr_levels = models.JSONField(_("认证等级映射"), default=dict, blank=True)
    max_level = models.PositiveSmallIntegerField(
        _("最高信任等级"),
        choices=[(1, _("一级：自行注册")), (2, _("二级：身份信息核验")), (3, _("三级：现场核验或双因素"))],
        default=2,
        help_text=_("上游报告的认证等级不会超过此等级"),
    )
    allow_create = models.BooleanField(_("允许自动创建账号"), default=False)
    enabled = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    created_by = models.CharField(_("创建人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("上游身份提供方")
        verbose_name_plural = _("上游身份提供方")
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.name_zh} ({self.slug})"

    def display_name(self, language: str = "") -> str:
        """The name shown on buttons: English when asked for and known, else Chinese."""
        if language.startswith("en") and self.name_en:
            return self.name_en
        return self.name_zh


class FederatedIdentity(models.Model):
    """A login at an upstream provider linked to a local person account (已关联的登录方式).

    Made at the first brokered login (matched by resident ID number, or with a new account).
    Unlinking keeps the row with ``unlinked_at`` so the same upstream login is not linked again
    behind the person's back; re-linking from the account console clears it.
    """

    provider = models.ForeignKey(
        UpstreamProvider, verbose_name=_("上游身份提供方"), on_delete=models.PROTECT, related_name="identities"
    )
    subject = models.CharField(_("上游主体标识"), max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("用户"),
        on_delete=models.CASCADE,
        related_name="federated_identities",
    )
    created_account = models.BooleanField(_("由此登录创建账号"), default=False)
    linked_at = models.DateTimeField(_("关联时间"), auto_now_add=True)
    last_login_at = models.DateTimeField(_("最近登录时间"), null=True, blank=True)
    # The upstream's acr and amr at the last login, as reported (for the record; not trusted for amr).
    last_acr = models.CharField(_("最近一次上游认证等级"), max_length=200, blank=True)
    last_amr = models.JSONField(_("最近一次上游认证方式"), default=list, blank=True)
    unlinked_at = models.DateTimeField(_("解除关联时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("已关联的登录方式")
        verbose_name_plural = _("已关联的登录方式")
        ordering = ["-linked_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "subject"], name="oidc_federatedidentity_subject"),
            models.UniqueConstraint(fields=["provider", "user"], name="oidc_federatedidentity_one_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.provider.slug}:{self.subject[:20]} → {self.user_id}"

    @property
    def is_linked(self) -> bool:
        """True until the person unlinks it."""
        return self.unlinked_at is None


__all__ += ["FederatedIdentity", "UpstreamProvider"]
