"""Kernel models: the transactional outbox of domain events and the background worker's heartbeat."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = ["OutboxEvent", "OutboxDelivery", "WorkerHeartbeat"]


class OutboxEvent(models.Model):
    """A domain event written in the transaction of the change it announces, delivered later by the worker."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待投递")
        DELIVERED = "delivered", _("已投递")
        DEAD = "dead", _("投递失败（已放弃）")

    event_type = models.CharField(_("事件类型"), max_length=100, db_index=True)
    payload = models.JSONField(_("内容"), default=dict, encoder=DjangoJSONEncoder)
    aggregate = models.CharField(_("聚合类型"), max_length=100, blank=True)
    aggregate_id = models.CharField(_("聚合标识"), max_length=64, blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("失败次数"), default=0)
    next_attempt_at = models.DateTimeField(_("下次投递时间"), default=timezone.now)
    last_error = models.TextField(_("最近错误"), blank=True)
    # A claim is a lease, not a long-held row lock: a worker that dies mid-batch loses its claim
    # when the lease expires and another worker delivers the event again (at-least-once).
    locked_by = models.CharField(_("处理进程"), max_length=64, blank=True)
    locked_until = models.DateTimeField(_("锁定至"), null=True, blank=True)
    request_id = models.CharField(_("请求标识"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("发布时间"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("投递时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("事件（发件箱）")
        verbose_name_plural = _("事件（发件箱）")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at", "id"], name="kernel_outbox_due_idx"),
            models.Index(fields=["aggregate", "aggregate_id", "id"], name="kernel_outbox_aggregate_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event_type}"


class OutboxDelivery(models.Model):
    """The outcome of one handler for one event, so a retry re-runs only the handlers that failed."""

    class Status(models.TextChoices):
        DELIVERED = "delivered", _("成功")
        FAILED = "failed", _("失败")

    event = models.ForeignKey(
        OutboxEvent, verbose_name=_("事件"), on_delete=models.CASCADE, related_name="deliveries"
    )
    handler = models.CharField(_("处理程序"), max_length=200)
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices)
    attempts = models.PositiveIntegerField(_("尝试次数"), default=0)
    last_error = models.TextField(_("最近错误"), blank=True)
    delivered_at = models.DateTimeField(_("成功时间"), null=True, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("事件投递记录")
        verbose_name_plural = _("事件投递记录")
        ordering = ["event_id", "handler"]
        constraints = [
            models.UniqueConstraint(fields=["event", "handler"], name="kernel_outbox_delivery_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.handler}: {self.status}"


class WorkerHeartbeat(models.Model):
    """Liveness of one background worker process, written every few seconds; /readyz reads it."""

    worker_id = models.CharField(_("进程标识"), max_length=64, unique=True)
    hostname = models.CharField(_("主机"), max_length=255)
    pid = models.PositiveIntegerField(_("进程号"))
    started_at = models.DateTimeField(_("启动时间"))
    last_seen = models.DateTimeField(_("最近心跳"), db_index=True)
    stopped_at = models.DateTimeField(_("停止时间"), null=True, blank=True)
    events_delivered = models.PositiveBigIntegerField(_("已投递事件"), default=0)
    events_failed = models.PositiveBigIntegerField(_("投递失败"), default=0)
    tasks_run = models.PositiveBigIntegerField(_("已执行任务"), default=0)

    class Meta:
        verbose_name = _("后台进程心跳")
        verbose_name_plural = _("后台进程心跳")
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"{self.worker_id} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"
