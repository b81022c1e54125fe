"""Process-side models of 一网通办: BPMN process definitions, applications (办件), their tasks and event log.

Imported at the end of ``dgov.services.models`` so the app has one model module; the catalogue side
(``ServiceItem`` …) is referenced by the string ``"services.ServiceItem"``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dgov.kernel.fields import EncryptedTextField

__all__ = ["ProcessDefinition", "Application", "ApplicationTask", "ApplicationEvent"]


class ProcessDefinition(models.Model):
    """A loaded BPMN 2.0 process (流程定义), one row per key and version; the newest active one is used."""

    key = models.SlugField(_("流程标识"), max_length=64)
    version = models.PositiveIntegerField(_("版本"))
    name = models.CharField(_("名称"), max_length=200, blank=True)
    bpmn_xml = models.TextField(_("BPMN 文件内容"))
    # SpiffWorkflow's serialized spec, cached so applications store only their own state.
    spec_json = models.JSONField(_("解析后的流程规格"), default=dict, editable=False)
    sha256 = models.CharField(_("摘要"), max_length=64, editable=False)
    source = models.CharField(_("来源文件"), max_length=255, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    loaded_at = models.DateTimeField(_("加载时间"), auto_now_add=True)
    loaded_by = models.CharField(_("加载人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("流程定义")
        verbose_name_plural = _("流程定义")
        ordering = ["key", "-version"]
        constraints = [models.UniqueConstraint(fields=["key", "version"], name="services_procdef_key_version")]

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"


class Application(models.Model):
    """An application (办件) for a service item, running on one BPMN process instance."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("待受理")
        CORRECTION = "correction", _("待补正")
        IN_PROGRESS = "in_progress", _("办理中")
        REJECTED = "rejected", _("不予受理")
        APPROVED = "approved", _("办结（准予）")
        DENIED = "denied", _("办结（不予准予）")

    class Channel(models.TextChoices):
        ONLINE = "online", _("网上申请")
        WINDOW = "window", _("窗口受理")

    class Delivery(models.TextChoices):
        ELECTRONIC = "electronic", _("网上送达（电子结果）")
        WINDOW = "window", _("窗口领取")
        POST = "post", _("邮寄送达")

    CLOSED = (Status.REJECTED, Status.APPROVED, Status.DENIED)

    number = models.CharField(_("申请编号"), max_length=32, unique=True)
    item = models.ForeignKey(
        "services.ServiceItem", verbose_name=_("事项"), on_delete=models.PROTECT, related_name="applications"
    )
    # A walk-in applicant accepted at a window may have no account yet: the application is found later
    # through the holder index (the blind index of the verified ID number) once they verify one.
    applicant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("申请人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="service_applications",
    )
    holder_name = EncryptedTextField(_("申请人姓名"), blank=True)
    # The holder's ID number or USCC, sealed: needed in clear only to issue the result's e-licence.
    holder_number = EncryptedTextField(_("申请人证件号码"), blank=True)
    # Holder index (person / enterprise and its id) so applications can be found by subject, not by account.
    holder_kind = models.CharField(_("申请主体类型"), max_length=16, blank=True)
    holder_id = models.CharField(_("申请主体标识"), max_length=64, blank=True, db_index=True)
    division = models.ForeignKey(
        "kernel.Division", verbose_name=_("办理地区划"), on_delete=models.PROTECT, related_name="+"
    )
    department = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("承办部门"),
        on_delete=models.PROTECT,
        related_name="service_applications",
    )
    definition = models.ForeignKey(
        ProcessDefinition, verbose_name=_("流程定义"), on_delete=models.PROTECT, related_name="applications"
    )
    # Form data is personal data: sealed JSON (SM4) through the kernel's encrypted field.
    form_data = EncryptedTextField(_("表单数据"), purpose="services.form")
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices, default=Status.SUBMITTED)
    channel = models.CharField(_("渠道"), max_length=8, choices=Channel.choices, default=Channel.ONLINE)
    # Compact SpiffWorkflow state without the spec (kept on the definition) and without completed tasks' data.
    workflow_state = models.JSONField(_("流程状态"), default=dict)
    version = models.PositiveIntegerField(_("版本"), default=1)
    # One-window acceptance (一窗受理): the official who took the walk-in application at a window.
    window_official = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("窗口受理人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    bundle_case = models.ForeignKey(
        "services.BundleCase",
        verbose_name=_("一件事办件"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="applications",
    )
    delivery = models.CharField(_("结果送达方式"), max_length=10, choices=Delivery.choices, default=Delivery.ELECTRONIC)
    # The result (办理结果): the signed decision PDF (决定书) and, when the item produces one, the e-licence.
    result_pdf = models.BinaryField(_("决定书（PDF）"), blank=True, default=b"")
    licence = models.ForeignKey(
        "licenses.Licence",
        verbose_name=_("签发的电子证照"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    submitted_at = models.DateTimeField(_("提交时间"), auto_now_add=True)
    accepted_at = models.DateTimeField(_("受理时间"), null=True, blank=True)
    completed_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    # SLA clock (working days, 工作日): due dates move by the paused working days of 补正.
    promised_due = models.DateField(_("承诺办结日期"), null=True, blank=True)
    legal_due = models.DateField(_("法定办结日期"), null=True, blank=True)
    paused_days = models.PositiveIntegerField(_("暂停工作日数"), default=0)
    paused_since = models.DateTimeField(_("暂停开始时间"), null=True, blank=True)
    warned = models.BooleanField(_("已预警"), default=False)
    overdue = models.BooleanField(_("已超期"), default=False)

    class Meta:
        verbose_name = _("办件")
        verbose_name_plural = _("办件")
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(fields=["status", "promised_due"], name="services_app_status_due"),
            models.Index(fields=["holder_kind", "holder_id"], name="services_app_holder"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_closed(self) -> bool:
        """Whether the application has reached an end (办结 or 不予受理)."""
        return self.status in self.CLOSED


class ApplicationTask(models.Model):
    """A user-task instance of an application's process (待办任务), assigned to a department or the applicant."""

    class Status(models.TextChoices):
        OPEN = "open", _("待办")
        CLAIMED = "claimed", _("已认领")
        DONE = "done", _("已完成")
        CANCELLED = "cancelled", _("已取消")

    application = models.ForeignKey(Application, verbose_name=_("办件"), on_delete=models.CASCADE, related_name="tasks")
    spiff_id = models.CharField(_("引擎任务标识"), max_length=36)
    spec_name = models.CharField(_("节点标识"), max_length=64)
    name = models.CharField(_("名称"), max_length=200)
    lane = models.CharField(_("角色"), max_length=64, blank=True)
    department = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("承办部门"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="service_tasks",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("办理人（申请人任务）"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.OPEN)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("认领人"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("完成人"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decision = models.CharField(_("决定"), max_length=16, blank=True)
    data = models.JSONField(_("办理意见"), default=dict, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    completed_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("办件任务")
        verbose_name_plural = _("办件任务")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["department", "status"], name="services_task_dept_status")]

    def __str__(self) -> str:
        return f"{self.application.number} · {self.name}"


class ApplicationEvent(models.Model):
    """One entry of an application's event log (办件日志), the source of service metrics."""

    class Kind(models.TextChoices):
        SUBMITTED = "submitted", _("提交申请")
        ACCEPTED = "accepted", _("受理")
        REJECTED = "rejected", _("不予受理")
        CORRECTION_REQUESTED = "correction_requested", _("要求补正")
        CORRECTION_SUBMITTED = "correction_submitted", _("提交补正")
        TASK_CLAIMED = "task_claimed", _("认领任务")
        TASK_COMPLETED = "task_completed", _("完成任务")
        APPROVED = "approved", _("准予")
        DENIED = "denied", _("不予准予")
        COMPLETED = "completed", _("办结")
        WARNED = "warned", _("临期预警")
        ESCALATED = "escalated", _("超期督办")
        VISIT = "visit", _("现场办理（跑动一次）")
        MATERIAL_ADDED = "material_added", _("提交材料")
        PREFILLED = "prefilled", _("授权预填")
        RESULT_DELIVERED = "result_delivered", _("送达结果")
        LICENCE_ISSUED = "licence_issued", _("签发电子证照")
        RATED = "rated", _("评价")

    application = models.ForeignKey(
        Application, verbose_name=_("办件"), on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(_("事件"), max_length=24, choices=Kind.choices)
    at = models.DateTimeField(_("时间"), auto_now_add=True, db_index=True)
    actor_label = models.CharField(_("操作人"), max_length=150, blank=True)
    channel = models.CharField(_("渠道"), max_length=8, blank=True)
    detail = models.JSONField(_("详情"), default=dict, blank=True)

    class Meta:
        verbose_name = _("办件事件")
        verbose_name_plural = _("办件事件")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["kind", "at"], name="services_event_kind_at")]

    def __str__(self) -> str:
        return f"{self.application_id} {self.kind}"
