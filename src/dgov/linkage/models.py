"""Stored entity-resolution runs (数据比对) over registries, their golden records and conflicts.

``dgov link`` works over CSV files and stores nothing. Inside the platform a data administrator
links (or deduplicates) registries: a :class:`LinkageRun` keeps the settings, the figures and the
outcome; each cluster's consolidated record is a :class:`GoldenRecord` whose every value comes from
the field's authoritative source (一数一源), with lineage; disagreements become quality findings
(整改工单, :class:`dgov.quality.models.RectificationOrder` with ``source = linkage``).

Values are personal data: a golden record's values and its conflicts' values are stored SM4-GCM
sealed (:class:`dgov.kernel.fields.EncryptedTextField`, a JSON document inside) and shown masked;
the identifier is kept as a blind index for exact lookup.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from dgov.kernel.fields import EncryptedTextField


class LinkageRun(models.Model):
    """One linkage or deduplication run over one or more registries, with its settings and figures."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("运行中")
        SUCCEEDED = "succeeded", _("已完成")
        FAILED = "failed", _("失败")

    name = models.CharField(_("名称"), max_length=200)
    mode = models.CharField(_("方式"), max_length=20, help_text=_("link / dedupe / link_and_dedupe"))
    entity = models.CharField(_("实体类型"), max_length=20, help_text=_("person / organization"))
    settings = models.JSONField(
        _("设置"), default=dict, help_text=_("数据源（信息库与字段角色映射）、权威来源、阈值等，格式同 dgov link 配置")
    )
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    requested_by = models.CharField(_("发起人"), max_length=150, blank=True)
    requested_at = models.DateTimeField(_("发起时间"), auto_now_add=True)
    started_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    metrics = models.JSONField(
        _("指标"), default=dict, blank=True, help_text=_("各数据源记录数、候选对、匹配对、聚类、冲突数与各阶段耗时")
    )
    error = models.TextField(_("错误"), blank=True)

    class Meta:
        verbose_name = _("数据比对运行")
        verbose_name_plural = _("数据比对运行")
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name} {self.status}"


class GoldenRecord(models.Model):
    """The consolidated record of one cluster of a run: a value per role from its authoritative source."""

    run = models.ForeignKey(LinkageRun, verbose_name=_("运行"), on_delete=models.CASCADE, related_name="golden")
    cluster = models.PositiveBigIntegerField(_("聚类编号"))
    identifier_index = models.CharField(
        _("证件号码盲索引"), max_length=64, blank=True, db_index=True, help_text=_("HMAC-SM3，用于精确查找")
    )
    values = EncryptedTextField(_("值"), blank=True, help_text=_("JSON：{角色: 值}，SM4-GCM 加密存储"))
    lineage = models.JSONField(_("来源"), default=dict, blank=True, help_text=_("{角色: 来源表:记录标识}"))
    members = models.JSONField(_("成员"), default=list, blank=True, help_text=_("[来源表:记录标识]"))
    member_count = models.PositiveIntegerField(_("成员数"), default=0)
    conflict_roles = models.JSONField(_("冲突角色"), default=list, blank=True)
    conflicts = EncryptedTextField(_("冲突"), blank=True, help_text=_("JSON 列表，含冲突值，SM4-GCM 加密存储"))

    class Meta:
        verbose_name = _("黄金记录")
        verbose_name_plural = _("黄金记录")
        ordering = ["run", "cluster"]
        constraints = [models.UniqueConstraint(fields=["run", "cluster"], name="linkage_golden_cluster")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.cluster}"
