"""Accounts: natural persons, enterprises' agents, officials and administrators."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


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

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def is_official(self) -> bool:
        """True for officials (who belong to a department)."""
        return self.kind == self.Kind.OFFICIAL


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
