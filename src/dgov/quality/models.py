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


class RectificationOrder(models.Model):
    """A rectification work order (整改工单): a quality finding sent to the department that must fix it.

    An order is opened for a rule that failed in a run (``source = rule``) or for a conflict that
    entity resolution found between a department's value and the authoritative source's
    (``source = linkage``). It goes to the field's authoritative department (for a linkage conflict:
    the department holding the disagreeing value), is due a number of working days after it opened
    (the kernel's working-day calendar), is re-checked automatically when that department changes
    the data, closes when the re-check passes, and escalates when it is overdue. Its timeline is
    kept in :class:`RectificationEvent`.
    """

    class Source(models.TextChoices):
        RULE = "rule", _("质量规则")
        LINKAGE = "linkage", _("比对冲突")

    class Status(models.TextChoices):
        OPEN = "open", _("待整改")
        SUBMITTED = "submitted", _("已反馈待复核")
        RESOLVED = "resolved", _("已整改")
        CANCELLED = "cancelled", _("已撤销")

    code = models.CharField(_("工单编号"), max_length=32, unique=True)
    source = models.CharField(_("来源"), max_length=8, choices=Source.choices, default=Source.RULE)
    registry = models.ForeignKey(
        "registry.Registry", verbose_name=_("信息库"), on_delete=models.PROTECT, related_name="+"
    )
    rule = models.ForeignKey(
        QualityRule, verbose_name=_("规则"), null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    finding_key = models.CharField(
        _("问题标识"), max_length=200, help_text=_("同一问题的稳定标识：规则编码，或比对冲突的“库:字段”")
    )
    title = models.CharField(_("标题"), max_length=300)
    dimension = models.CharField(_("质量维度"), max_length=16, choices=Dimension.choices)
    department = models.ForeignKey(
        "kernel.Organization", verbose_name=_("整改部门"), on_delete=models.PROTECT, related_name="+"
    )
    fields = models.JSONField(_("字段"), default=list, blank=True)
    opened_run = models.ForeignKey(
        QualityRun, verbose_name=_("发现于"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_run = models.ForeignKey(
        QualityRun, verbose_name=_("最近复核"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    failed_at_open = models.PositiveBigIntegerField(_("发现时不合格数"), default=0)
    failed_now = models.PositiveBigIntegerField(_("当前不合格数"), default=0)
    samples = models.JSONField(_("不合格样例"), default=list, blank=True, help_text=_("个人信息已脱敏"))
    detail = models.JSONField(_("详情"), default=dict, blank=True)
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    deadline_days = models.PositiveSmallIntegerField(_("整改时限（工作日）"))
    opened_on = models.DateField(_("下发日期"))
    due_on = models.DateField(_("整改期限"))
    escalation_level = models.PositiveSmallIntegerField(_("督办级别"), default=0)
    escalated_at = models.DateTimeField(_("最近督办时间"), null=True, blank=True)
    response = models.TextField(_("整改说明"), blank=True)
    recheck_requested_at = models.DateTimeField(_("待复核时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    closed_by = models.CharField(_("办结人"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("整改工单")
        verbose_name_plural = _("整改工单")
        ordering = ["-opened_on", "-id"]
        indexes = [
            models.Index(fields=["department", "status"], name="quality_order_dept_status"),
            models.Index(fields=["status", "due_on"], name="quality_order_due"),
            models.Index(fields=["registry", "status"], name="quality_order_registry"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["registry", "finding_key", "department"],
                condition=models.Q(status__in=["open", "submitted"]),
                name="quality_order_one_active",
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.title}"


class RectificationEvent(models.Model):
    """One step in a work order's timeline: opened, re-checked, answered, escalated, closed."""

    order = models.ForeignKey(
        RectificationOrder, verbose_name=_("工单"), on_delete=models.CASCADE, related_name="events"
    )
    at = models.DateTimeField(_("时间"), auto_now_add=True)
    actor = models.CharField(_("操作人"), max_length=150, blank=True)
    action = models.CharField(_("动作"), max_length=20)
    note = models.TextField(_("说明"), blank=True)
    data = models.JSONField(_("数据"), default=dict, blank=True)

    class Meta:
        verbose_name = _("工单记录")
        verbose_name_plural = _("工单记录")
        ordering = ["order", "at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.action}"


class ScoreSnapshot(models.Model):
    """A department's (or a registry's) quality score on one day, for trends over time.

    Written after every successful run: one row per (scope, key, day), replaced by later runs of the
    same day, so a trend is a simple ordered read.
    """

    class Scope(models.TextChoices):
        DEPARTMENT = "department", _("部门")
        REGISTRY = "registry", _("信息库")

    scope = models.CharField(_("范围"), max_length=12, choices=Scope.choices)
    key = models.CharField(_("编码"), max_length=100, help_text=_("部门编码或信息库编码"))
    day = models.DateField(_("日期"))
    score = models.DecimalField(_("综合得分"), max_digits=5, decimal_places=2, null=True, blank=True)
    grade = models.CharField(_("等级"), max_length=1, blank=True)
    dimension_scores = models.JSONField(_("维度得分"), default=dict, blank=True)
    rules = models.PositiveIntegerField(_("规则数"), default=0)
    checked = models.PositiveBigIntegerField(_("检查数"), default=0)
    failed = models.PositiveBigIntegerField(_("不合格数"), default=0)
    open_orders = models.PositiveIntegerField(_("未办结工单"), default=0)

    class Meta:
        verbose_name = _("质量得分快照")
        verbose_name_plural = _("质量得分快照")
        ordering = ["scope", "key", "day"]
        constraints = [models.UniqueConstraint(fields=["scope", "key", "day"], name="quality_snapshot_day")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key} {self.day} {self.score}"
