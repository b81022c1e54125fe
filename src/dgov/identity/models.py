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

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def is_official(self) -> bool:
        """True for officials (who belong to a department)."""
        return self.kind == self.Kind.OFFICIAL
