"""Kernel models: the append-only, SM3 hash-chained audit log (审计日志) and its signed checkpoints.

``AuditRecord`` rows are written only by ``dgov.kernel.services.audit.record()``; the layout of
the hashed content, the chain head and the checkpoints are documented in that module. At the ORM
level the log is append-only: saving an existing row, deleting a row and the queryset's
``update()``/``delete()`` all raise ``AppendOnlyError``. Raw SQL can still change rows; that is
what ``verify()`` detects.
"""

from __future__ import annotations

import json

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["AppendOnlyError", "AuditCheckpoint", "AuditHead", "AuditRecord"]


class AppendOnlyError(Exception):
    """An attempt to change or delete an audit row through the ORM."""


class AppendOnlyQuerySet(models.QuerySet):
    """A queryset that can read and insert but never update or delete."""

    def update(self, **kwargs):
        """Refuse: audit rows are never updated."""
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only and cannot be updated")

    def bulk_update(self, objs, fields, batch_size=None):
        """Refuse before opening a transaction, so the caller's transaction stays usable."""
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only and cannot be updated")

    def delete(self):
        """Refuse: audit rows are never deleted."""
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only and cannot be deleted")

    delete.queryset_only = True

    def _raw_delete(self, using):
        """Refuse the fast-delete path the deletion collector uses for cascades."""
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only and cannot be deleted")


class AppendOnlyModel(models.Model):
    """Abstract base of rows that are inserted once and never changed or removed through the ORM."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        """Insert the row; refuse any update of a row that is already stored."""
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields") is not None:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only and cannot be updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        """Refuse: audit rows are never deleted."""
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only and cannot be deleted")


class AuditRecord(AppendOnlyModel):
    """One audited state change: who did what to which object, when, from where, with what outcome."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("成功")
        DENIED = "denied", _("拒绝")
        FAILED = "failed", _("失败")

    # The position in the chain; strictly increasing by one with no gaps (1, 2, 3 …).
    seq = models.BigIntegerField(_("序号"), primary_key=True)
    occurred_at = models.DateTimeField(_("发生时间"), db_index=True)
    # Plain values, not foreign keys: the audit trail must outlive the accounts it names.
    actor_kind = models.CharField(_("操作者类型"), max_length=32)
    actor_id = models.CharField(_("操作者标识"), max_length=64, blank=True)
    actor_label = models.CharField(_("操作者"), max_length=200, blank=True)
    action = models.CharField(_("操作"), max_length=100, db_index=True)
    target_type = models.CharField(_("对象类型"), max_length=100, blank=True)
    target_id = models.CharField(_("对象标识"), max_length=64, blank=True)
    target_label = models.CharField(_("对象"), max_length=200, blank=True)
    outcome = models.CharField(_("结果"), max_length=16, choices=Outcome.choices)
    # Canonical JSON text (sorted keys, no spaces, UTF-8), hashed exactly as stored.
    detail_json = models.TextField(_("详情"), default="{}")
    # Text rather than inet so that both databases return exactly the string that was hashed.
    ip = models.CharField(_("IP 地址"), max_length=45, blank=True)
    request_id = models.CharField(_("请求标识"), max_length=64, blank=True, db_index=True)
    user_agent = models.CharField(_("用户代理"), max_length=256, blank=True)
    prev_hash = models.CharField(_("前一条哈希"), max_length=64)
    hash = models.CharField(_("SM3 哈希"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("审计记录")
        verbose_name_plural = _("审计记录")
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["actor_kind", "actor_id"], name="kernel_audit_actor_idx"),
            models.Index(fields=["target_type", "target_id"], name="kernel_audit_target_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.outcome}"

    @property
    def detail(self) -> dict:
        """The detail as a Python value (parsed from the stored canonical JSON)."""
        return json.loads(self.detail_json or "{}")


class ChainHead(models.Model):
    """The single row holding a hash chain's last sequence number and hash; writers lock it to append.

    Abstract: the audit chain (:class:`AuditHead`) and the exchange log have one each.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(_("最新序号"), default=0)
    hash = models.CharField(_("最新哈希"), max_length=64)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"#{self.seq} {self.hash[:12]}"


class ChainCheckpoint(AppendOnlyModel):
    """An SM2-signed statement that a hash chain's entry ``seq`` has ``hash`` (detects a cut-off tail).

    Abstract: the audit chain (:class:`AuditCheckpoint`) and the exchange log have their own.
    """

    seq = models.BigIntegerField(_("序号"), unique=True)
    hash = models.CharField(_("SM3 哈希"), max_length=64)
    created_at = models.DateTimeField(_("签名时间"))
    kid = models.CharField(_("签名密钥标识"), max_length=64)
    signature = models.TextField(_("SM2 签名（十六进制 DER）"))

    class Meta:
        abstract = True
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.hash[:12]} ({self.kid})"


class AuditHead(ChainHead):
    """The audit chain's head row."""

    class Meta:
        verbose_name = _("审计链头")
        verbose_name_plural = _("审计链头")


class AuditCheckpoint(ChainCheckpoint):
    """An SM2-signed statement that the audit record at ``seq`` has ``hash``."""

    class Meta(ChainCheckpoint.Meta):
        verbose_name = _("审计检查点")
        verbose_name_plural = _("审计检查点")
