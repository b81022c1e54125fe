"""Accounts: natural persons, enterprises' agents, officials and administrators."""

import contextlib

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dgov.kernel.fields import EncryptedTextField, blind_index

PHONE_INDEX_PURPOSE = "identity.phone"
"""Blind-index purpose of ``User.phone_digest`` (phone-like normalization, see dgov.kernel.fields)."""


class User(AbstractUser):
    """A login account of one of the platform's kinds of subject."""

    class Kind(models.TextChoices):
        PERSON = "person", _("自然人")
        ENTERPRISE = "enterprise", _("法人")
        OFFICIAL = "official", _("工作人员")
        ADMIN = "admin", _("系统管理员")

    kind = models.CharField(_("类型"), max_length=16, choices=Kind.choices, default=Kind.PERSON)
    display_name = models.CharField(_("姓名"), max_length=100, blank=True)
    department = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("所属部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="officials",
        help_text=_("工作人员所属的唯一部门"),
    )
    # The blind index (dgov.kernel.fields.blind_index, purpose "resident_id") of the person's
    # resident ID number, set by real-name verification: "who read my data" finds the reads of
    # the person's records by it without the account ever storing the number itself.
    id_number_digest = models.CharField(
        _("身份证号索引"),
        max_length=64,
        blank=True,
        db_index=True,
        help_text=_("实名认证后写入的居民身份证号码盲索引，用于查询本人数据被查询的记录"),
    )
    # Real-name level (实名等级, docs/authentication.md): 1 self-registered, 2 name + ID number verified
    # against the population library (enterprise accounts: and the enterprise's USCC with this person as
    # its legal representative), 3 verified in person at a service window. Set only by
    # dgov.identity.realname; OIDC reports it as acr urn:dgov:loa:<level> (2 + two factors → 3).
    real_name_level = models.PositiveSmallIntegerField(
        _("实名等级"),
        choices=[(1, _("一级：自行注册")), (2, _("二级：身份信息核验")), (3, _("三级：现场核验"))],
        default=1,
        editable=False,
    )
    real_name_verified_at = models.DateTimeField(_("实名核验时间"), null=True, blank=True, editable=False)
    # The verified resident ID number itself, SM4-encrypted: written with id_number_digest by real-name
    # verification (and identity brokering), read only to release it to relying parties allowed the
    # dgov:identity scope (docs/oidc.md, "Brokering"). Accounts verified before it existed have only the digest.
    id_number = EncryptedTextField(_("身份证号码"), blank=True, editable=False)
    # Enterprise accounts: the unified social credit code (not personal data) verified against the
    # legal-entity library with this account's verified person as its legal representative.
    enterprise_uscc = models.CharField(_("已核验的统一社会信用代码"), max_length=18, blank=True, editable=False)
    # Mobile number as +86XXXXXXXXXXX, SM4-encrypted; found through phone_digest (login by phone,
    # SMS one-time codes). The kernel's notify() reads it as ``user.phone``.
    phone = EncryptedTextField(_("手机号码"), blank=True, help_text=_("用于短信验证码和通知，格式如 13812345678"))
    phone_digest = models.CharField(_("手机号码索引"), max_length=64, blank=True, db_index=True, editable=False)
    password_changed_at = models.DateTimeField(_("密码修改时间"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def is_official(self) -> bool:
        """True for officials (who belong to a department)."""
        return self.kind == self.Kind.OFFICIAL

    def set_password(self, raw_password):
        """Set the password and remember when (for an optional maximum password age)."""
        super().set_password(raw_password)
        self.password_changed_at = timezone.now()

    def check_password(self, raw_password):
        """Check the password; a hash upgrade on the way is not a password change."""
        stamp = self.password_changed_at
        try:
            return super().check_password(raw_password)
        finally:
            self.password_changed_at = stamp

    def save(self, *args, **kwargs):
        """Keep the phone in one canonical form and its blind index in step with it."""
        from dgov.kernel.notify import InvalidRecipient, normalize_phone

        if self.phone:
            # A bad number is the form validators' to report; the index still follows the stored text.
            with contextlib.suppress(InvalidRecipient):
                self.phone = normalize_phone(self.phone)
            self.phone_digest = blind_index(self.phone, purpose=PHONE_INDEX_PURPOSE)
        else:
            self.phone_digest = ""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "phone" in update_fields and "phone_digest" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "phone_digest"]
        super().save(*args, **kwargs)


class ApiClient(models.Model):
    """A department system calling the JSON API with its own credentials (client_id + secret).

    Clients authenticate with HTTP Basic (RFC 6749 §2.3.1 client authentication); the OAuth
    client-credentials grant of the identity issue will issue tokens to these same clients, so a
    client's id, department and scopes stay the one place where its rights are decided.
    """

    client_id = models.SlugField(_("客户端标识"), max_length=64, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    organization = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("所属部门"),
        on_delete=models.PROTECT,
        related_name="api_clients",
        help_text=_("客户端代表其调用接口的部门"),
    )
    # "<kid>:<hex HMAC-SM3>" — the kid names the server-side key, so rotating that key does not
    # lock out existing clients (their hashes still verify under the retired key).
    secret_hash = models.CharField(_("密钥摘要"), max_length=160, editable=False)
    scopes = models.JSONField(_("权限范围"), default=list, help_text=_("如 [\"registry:read\", \"registry:write\"]"))
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("最近使用时间"), null=True, blank=True)
    secret_rotated_at = models.DateTimeField(_("密钥更新时间"), null=True, blank=True)
    created_by = models.CharField(_("创建人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("接口客户端")
        verbose_name_plural = _("接口客户端")
        ordering = ["client_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    # An authenticated client is a principal of the API like a logged-in user: these let code
    # written for users (request.auth, actor labels) treat it the same way.
    is_authenticated = True
    is_anonymous = False

    @property
    def display_name(self) -> str:
        """The client's name, as users have a display name."""
        return self.name

    @property
    def department(self):
        """The department the client acts for (as ``User.department`` for officials)."""
        return self.organization

    def get_username(self) -> str:
        """A label that cannot collide with a user name: ``client:<client_id>``."""
        return f"client:{self.client_id}"

    def audit_identity(self) -> tuple[str, str, str]:
        """How the audit log names this actor: kind "client", the client id and a label."""
        return "client", self.client_id, f"{self.get_username()} {self.name}"

    def has_scope(self, scope: str) -> bool:
        """Whether the client was granted ``scope``."""
        return scope in (self.scopes or [])


# --- Authentication: second factors, one-time codes, throttling, sessions ----------------------------


class MfaMethod(models.Model):
    """A second factor of an account (双因素认证方式): a TOTP authenticator or SMS codes to its phone."""

    class Kind(models.TextChoices):
        TOTP = "totp", _("动态口令（身份验证器应用）")
        SMS = "sms", _("短信验证码")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="mfa_methods"
    )
    kind = models.CharField(_("方式"), max_length=8, choices=Kind.choices)
    # Base32 TOTP secret, SM4-encrypted under its own key purpose (empty for SMS).
    secret = EncryptedTextField(_("密钥"), blank=True, purpose="identity.totp", editable=False)
    # Set when the user proved they hold the factor; an unconfirmed TOTP row is an enrolment in progress.
    confirmed_at = models.DateTimeField(_("启用时间"), null=True, blank=True)
    # The last accepted TOTP time step: a code of that step or an earlier one is refused (no replay).
    last_used_step = models.BigIntegerField(_("最近使用的时间步"), default=0, editable=False)
    last_used_at = models.DateTimeField(_("最近使用时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("双因素认证方式")
        verbose_name_plural = _("双因素认证方式")
        # One factor of each kind in use, and at most one enrolment of it in progress (to replace it).
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind"],
                condition=models.Q(confirmed_at__isnull=False),
                name="identity_mfamethod_confirmed",
            ),
            models.UniqueConstraint(
                fields=["user", "kind"],
                condition=models.Q(confirmed_at__isnull=True),
                name="identity_mfamethod_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_kind_display()}"

    @property
    def is_confirmed(self) -> bool:
        """True once the factor is in use."""
        return self.confirmed_at is not None


class OneTimeCode(models.Model):
    """An SMS one-time code (短信验证码): only its keyed hash is stored, with expiry and attempts."""

    class Purpose(models.TextChoices):
        LOGIN = "login", _("登录")
        REAUTH = "reauth", _("身份确认")
        PHONE = "phone", _("验证手机号码")
        ENROL = "enrol", _("启用短信验证")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="one_time_codes"
    )
    purpose = models.CharField(_("用途"), max_length=8, choices=Purpose.choices)
    # Blind index of the number the code went to: a code for one number cannot confirm another.
    phone_digest = models.CharField(_("手机号码索引"), max_length=64)
    code_hash = models.CharField(_("验证码摘要"), max_length=160, editable=False)
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    expires_at = models.DateTimeField(_("过期时间"))
    used_at = models.DateTimeField(_("使用时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("发送时间"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("短信验证码")
        verbose_name_plural = _("短信验证码")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "purpose", "created_at"], name="identity_otc_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_purpose_display()}"


class LoginThrottle(models.Model):
    """Failed sign-in attempts of one account or one client IP, and the temporary lock they earned."""

    class Scope(models.TextChoices):
        ACCOUNT = "account", _("账号")
        IP = "ip", _("IP 地址")

    scope = models.CharField(_("范围"), max_length=8, choices=Scope.choices)
    # "user:<pk>" for a known account, "name:<blind index>" for a name that matches none, or the IP.
    key = models.CharField(_("键"), max_length=100)
    failures = models.PositiveIntegerField(_("连续失败次数"), default=0)
    first_failure_at = models.DateTimeField(_("首次失败时间"), null=True, blank=True)
    last_failure_at = models.DateTimeField(_("最近失败时间"), null=True, blank=True)
    # How many locks in a row: each one lasts twice as long as the one before (exponential backoff).
    lock_level = models.PositiveSmallIntegerField(_("锁定级别"), default=0)
    locked_until = models.DateTimeField(_("锁定至"), null=True, blank=True)

    class Meta:
        verbose_name = _("登录失败限制")
        verbose_name_plural = _("登录失败限制")
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="identity_loginthrottle_key")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"

    def is_locked(self, now=None) -> bool:
        """True while the temporary lock lasts."""
        return self.locked_until is not None and self.locked_until > (now or timezone.now())


class UserSession(models.Model):
    """A logged-in browser session (登录会话), so its user can see where they are signed in and end it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="tracked_sessions"
    )
    # The key of the session in SESSION_ENGINE's store (as the store itself keeps it): ending a
    # session deletes it there, which logs the browser out at its next request.
    session_key = models.CharField(_("会话标识"), max_length=64, unique=True)
    ip = models.CharField(_("IP 地址"), max_length=45, blank=True)
    user_agent = models.CharField(_("浏览器标识"), max_length=256, blank=True)
    methods = models.JSONField(_("认证方式"), default=list, blank=True)
    created_at = models.DateTimeField(_("登录时间"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("最近活动时间"), default=timezone.now)
    expires_at = models.DateTimeField(_("过期时间"), null=True, blank=True)
    ended_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    end_reason = models.CharField(_("结束原因"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("登录会话")
        verbose_name_plural = _("登录会话")
        ordering = ["-last_seen_at", "-id"]
        indexes = [models.Index(fields=["user", "ended_at"], name="identity_usersession_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} · {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        """True while the session has neither ended nor expired."""
        return self.ended_at is None and (self.expires_at is None or self.expires_at > timezone.now())


# --- Enterprise agents (经办人) -------------------------------------------------------------------------


class EnterpriseAgent(models.Model):
    """An enterprise's authorization of a person to act for it (经办人授权), with scopes and an expiry.

    Granted by a verified enterprise account (the legal representative) to a person account
    verified at real-name level 2 or higher; it takes effect only between ``valid_from`` and
    ``valid_until`` and until revoked (by the enterprise, or renounced by the agent). Rows are
    never deleted: a revoked or expired authorization stays as the record of who could act when.
    Operations are in :mod:`dgov.identity.agents`.
    """

    enterprise = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("企业账号"),
        on_delete=models.CASCADE,
        related_name="agent_authorizations",
        limit_choices_to={"kind": "enterprise"},
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("经办人"),
        on_delete=models.CASCADE,
        related_name="agencies",
        limit_choices_to={"kind": "person"},
    )
    # The enterprise's registered name when the authorization was granted (public data, for display).
    enterprise_name = models.CharField(_("企业名称"), max_length=200, blank=True)
    # Keys of dgov.identity.agents.AGENT_SCOPES, e.g. ["services", "licences"].
    scopes = models.JSONField(_("授权范围"), default=list)
    valid_from = models.DateTimeField(_("生效时间"))
    valid_until = models.DateTimeField(_("失效时间"), db_index=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("授权人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    granted_at = models.DateTimeField(_("授权时间"), default=timezone.now)
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("撤销人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoke_reason = models.CharField(_("撤销原因"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("经办人授权")
        verbose_name_plural = _("经办人授权")
        ordering = ["-granted_at", "-id"]
        # At most one authorization of a person per enterprise that has not been closed; an
        # expired one is closed (revoke_reason "expired") when the enterprise grants anew.
        constraints = [
            models.UniqueConstraint(
                fields=["enterprise", "agent"],
                condition=models.Q(revoked_at__isnull=True),
                name="identity_enterpriseagent_one_live",
            ),
        ]

    def __str__(self) -> str:
        return f"agency {self.pk}"

    def in_force(self, now=None) -> bool:
        """Whether the authorization takes effect at ``now``: not revoked, started and not expired."""
        now = now or timezone.now()
        return self.revoked_at is None and self.valid_from <= now < self.valid_until
