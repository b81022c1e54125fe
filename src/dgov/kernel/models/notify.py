"""Kernel models: in-app notifications and the record of SMS / e-mail messages handed to a gateway."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dgov.kernel.fields import EncryptedTextField

__all__ = ["Notification", "SentMessage"]


class Notification(models.Model):
    """A message shown to a user inside the portal or workbench (站内消息)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("用户"),
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    template = models.CharField(_("模板"), max_length=100)
    title = models.CharField(_("标题"), max_length=200)
    body = models.TextField(_("内容"))
    link = models.CharField(_("链接"), max_length=500, blank=True)
    read_at = models.DateTimeField(_("阅读时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("发送时间"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("站内消息")
        verbose_name_plural = _("站内消息")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="kernel_notification_unread_idx")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_read(self) -> bool:
        """True once the user has opened the message."""
        return self.read_at is not None


class SentMessage(models.Model):
    """One SMS or e-mail as the (simulated) provider received it: recipient encrypted, outcome recorded."""

    class Channel(models.TextChoices):
        SMS = "sms", _("短信")
        EMAIL = "email", _("电子邮件")

    class Status(models.TextChoices):
        SENT = "sent", _("已发送")
        REJECTED = "rejected", _("被拒绝")

    channel = models.CharField(_("渠道"), max_length=8, choices=Channel.choices)
    gateway = models.CharField(_("网关"), max_length=200)
    to = EncryptedTextField(_("接收方"))
    # Keyed blind index of the normalized recipient: rate limits and look-ups without decrypting.
    to_index = models.CharField(_("接收方索引"), max_length=64, db_index=True)
    subject = models.CharField(_("主题"), max_length=200, blank=True)
    body = models.TextField(_("内容"), blank=True)
    template_code = models.CharField(_("模板编码"), max_length=64, blank=True)
    segments = models.PositiveSmallIntegerField(_("计费条数"), default=1)
    provider_id = models.CharField(_("服务商回执号"), max_length=100, blank=True, db_index=True)
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices)
    error_code = models.CharField(_("错误码"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("时间"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("短信与邮件发送记录")
        verbose_name_plural = _("短信与邮件发送记录")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["channel", "to_index", "status", "created_at"], name="kernel_sentmsg_rate_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.provider_id or self.error_code}"
