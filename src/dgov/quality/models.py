"""Data quality (数据质量): rules written as data, runs over a registry's records, per-rule results.

A :class:`QualityRule` checks one or more fields of a registry (or of a catalogue resource, whose
items point at registry fields) and is tagged with one of the six GB/T 36344 dimensions. A
:class:`QualityRun` evaluates every enabled rule of one registry in a single DuckDB pass and keeps
one :class:`RuleResult` per rule: how many rows were checked, how many failed, and a few masked
sample rows. Scores are derived from the results of each registry's latest successful run (see
docs/quality.md); a failed run keeps its error and leaves earlier results as they were.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Dimension(models.TextChoices):
    """The six quality dimensions of GB/T 36344-2018 (信息技术 数据质量评价指标)."""

    CONFORMITY = "conformity", _("规范性")
    COMPLETENESS = "completeness", _("完整性")
    ACCURACY = "accuracy", _("准确性")
    CONSISTENCY = "consistency", _("一致性")
    TIMELINESS = "timeliness", _("时效性")
    ACCESSIBILITY = "accessibility", _("可访问性")


class Severity(models.TextChoices):
    """How much a rule matters; gives the default weight (high 3, medium 2, low 1)."""

    HIGH = "high", _("高")
    MEDIUM = "medium", _("中")
    LOW = "low", _("低")


class QualityRule(models.Model):
    """One declarative quality rule on a registry's fields (or a catalogue resource's items)."""

    code = models.CharField(
        _("规则编码"), max_length=100, unique=True, help_text=_("全局唯一，如 population.person.id_checksum")
    )
    name = models.CharField(_("规则名称"), max_length=200)
    description = models.TextField(_("说明"), blank=True)
    registry = models.ForeignKey(
        "registry.Registry",
        verbose_name=_("信息库"),
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("被检查的数据表；规则针对信息资源时为该资源信息项所在的信息库"),
    )
    resource = models.ForeignKey(
        "catalog.InformationResource",
        verbose_name=_("信息资源"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    fields = models.JSONField(_("字段"), default=list, blank=True, help_text=_("信息库字段名列表"))
    rule_type = models.CharField(_("规则类型"), max_length=32)
    params = models.JSONField(_("参数"), default=dict, blank=True)
    sql = models.TextField(_("自定义 SQL"), blank=True, help_text=_("仅 sql 类型：返回不合格记录 _uid 的 SELECT"))
    dimension = models.CharField(_("质量维度"), max_length=16, choices=Dimension.choices)
    severity = models.CharField(_("严重程度"), max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    weight = models.PositiveSmallIntegerField(_("权重"), default=2)
    enabled = models.BooleanField(_("启用"), default=True)
    owner = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("责任部门"),
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("字段的权威来源部门，负责整改"),
    )
    created_by = models.CharField(_("创建人"), max_length=150, blank=True)
    updated_by = models.CharField(_("修改人"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("质量规则")
        verbose_name_plural = _("质量规则")
        ordering = ["registry", "code"]
        indexes = [models.Index(fields=["registry", "enabled"], name="quality_rule_registry_enabled")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class QualityRun(models.Model):
    """One evaluation of a registry's enabled rules: when, by whom, how many rows, the outcome and scores."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("运行中")
        SUCCEEDED = "succeeded", _("已完成")
        FAILED = "failed", _("失败")

    registry = models.ForeignKey(
        "registry.Registry", verbose_name=_("信息库"), on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    requested_by = models.CharField(_("发起人"), max_length=150, blank=True)
    requested_at = models.DateTimeField(_("发起时间"), auto_now_add=True)
    started_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    rows = models.PositiveBigIntegerField(_("记录数"), default=0)
    rule_count = models.PositiveIntegerField(_("规则数"), default=0)
    score = models.DecimalField(_("综合得分"), max_digits=5, decimal_places=2, null=True, blank=True)
    grade = models.CharField(_("等级"), max_length=1, blank=True)
    dimension_scores = models.JSONField(_("维度得分"), default=dict, blank=True, help_text=_("{维度: 得分}"))
    error = models.TextField(_("错误"), blank=True)

    class Meta:
        verbose_name = _("质量检查运行")
        verbose_name_plural = _("质量检查运行")
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["registry", "status", "finished_at"], name="quality_run_latest")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.registry_id} {self.status}"


class RuleResult(models.Model):
    """The outcome of one rule in one run: rows checked and failed, and masked samples of failing rows.

    The rule's code, name, type, dimension, weight, owner and resource are copied at evaluation
    time, so results keep their meaning when the rule is later changed.
    """

    run = models.ForeignKey(QualityRun, verbose_name=_("运行"), on_delete=models.CASCADE, related_name="results")
    rule = models.ForeignKey(
        QualityRule, verbose_name=_("规则"), null=True, blank=True, on_delete=models.SET_NULL, related_name="results"
    )
    rule_code = models.CharField(_("规则编码"), max_length=100)
    rule_name = models.CharField(_("规则名称"), max_length=200)
    rule_type = models.CharField(_("规则类型"), max_length=32)
    dimension = models.CharField(_("质量维度"), max_length=16, choices=Dimension.choices)
    weight = models.PositiveSmallIntegerField(_("权重"))
    owner = models.ForeignKey(
        "kernel.Organization", verbose_name=_("责任部门"), on_delete=models.PROTECT, related_name="+"
    )
    resource = models.ForeignKey(
        "catalog.InformationResource",
        verbose_name=_("信息资源"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    fields = models.JSONField(_("字段"), default=list, blank=True)
    checked = models.PositiveBigIntegerField(_("检查数"), default=0)
    failed = models.PositiveBigIntegerField(_("不合格数"), default=0)
    pass_rate = models.DecimalField(
        _("合格率"), max_digits=6, decimal_places=2, null=True, blank=True, help_text=_("0–100；无可检查数据时为空")
    )
    samples = models.JSONField(
        _("不合格样例"), default=list, blank=True, help_text=_("[{uid, division, values}]，个人信息已脱敏")
    )

    class Meta:
        verbose_name = _("规则检查结果")
        verbose_name_plural = _("规则检查结果")
        ordering = ["run", "rule_code"]
        indexes = [models.Index(fields=["owner", "run"], name="quality_result_owner_run")]

    def __str__(self) -> str:
        return f"{self.rule_code}: {self.failed}/{self.checked}"
