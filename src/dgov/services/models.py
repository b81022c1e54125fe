"""Models of the service-item catalogue (政务服务事项目录): items, implementations, guide materials, bundles, drift.

The catalogue holds the national elements of each item (事项要素) once, keyed by its basic code
(基本编码) shared by every level; each implementing organization has an :class:`ItemImplementation`
(实施清单) with its own implementing code (实施编码) and the elements as it publishes them, which
三级四同 compares to the item (:mod:`dgov.services.catalogue`). Applications and processes live in
``models_process.py`` (imported at the end of this module).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ItemType(models.TextChoices):
    """The types of government service items (事项类型) of the national catalogue."""

    LICENSING = "licensing", _("行政许可")
    PAYMENT = "payment", _("行政给付")
    CONFIRMATION = "confirmation", _("行政确认")
    LEVY = "levy", _("行政征收")
    RULING = "ruling", _("行政裁决")
    REWARD = "reward", _("行政奖励")
    INSPECTION = "inspection", _("行政检查")
    OTHER_POWER = "other_power", _("其他行政权力")
    PUBLIC_SERVICE = "public_service", _("公共服务")


class OnlineDepth(models.IntegerChoices):
    """How far an item can be handled online (网办深度): level 4 is fully online (全程网办)."""

    ONE = 1, _("一级（信息发布）")
    TWO = 2, _("二级（在线预约、下载表格）")
    THREE = 3, _("三级（在线受理，现场领取结果）")
    FOUR = 4, _("四级（全程网办）")


class ServiceItem(models.Model):
    """政务服务事项: one item of the catalogue with its national elements and its guide (办事指南)."""

    class Status(models.TextChoices):
        """Whether the item is offered."""

        ACTIVE = "active", _("在用")
        RETIRED = "retired", _("已停用")

    basic_code = models.CharField(_("基本编码"), max_length=32, unique=True)
    name = models.CharField(_("事项名称"), max_length=200, db_index=True)
    type = models.CharField(_("事项类型"), max_length=20, choices=ItemType.choices)
    legal_basis = models.TextField(_("设定依据"))
    department_kind = models.CharField(_("主管部门类别"), max_length=16, db_index=True)
    levels = models.JSONField(_("行使层级"), default=list, help_text=_("province / city / county"))
    holder_kinds = models.JSONField(_("服务对象"), default=list, help_text=_("person / enterprise"))
    online_depth = models.PositiveSmallIntegerField(_("网办深度"), choices=OnlineDepth.choices, default=1)
    legal_limit_days = models.PositiveSmallIntegerField(_("法定办结时限（工作日）"))
    promised_limit_days = models.PositiveSmallIntegerField(_("承诺办结时限（工作日）"))
    visits = models.PositiveSmallIntegerField(_("到现场次数"), default=0)
    fees = models.JSONField(_("收费"), default=list, blank=True, help_text=_("[{name, amount_fen, basis}]；空为不收费"))
    conditions = models.TextField(_("受理条件"), blank=True)
    steps = models.JSONField(_("办理流程"), default=list, blank=True, help_text=_("[{name, description}]"))
    keywords = models.CharField(_("关键词"), max_length=200, blank=True)
    summary = models.TextField(_("事项说明"), blank=True)
    form_schema = models.JSONField(_("申请表单"), default=dict, blank=True, help_text=_("JSON Schema 2020-12 子集"))
    process_key = models.CharField(_("办理流程（BPMN）"), max_length=64, default="review")
    produces_licence_type = models.ForeignKey(
        "licenses.LicenceType",
        verbose_name=_("产生的电子证照"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    version = models.PositiveIntegerField(_("版本"), default=1)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("政务服务事项")
        verbose_name_plural = _("政务服务事项")
        ordering = ["basic_code"]

    def __str__(self) -> str:
        return f"{self.name}（{self.basic_code}）"

    @property
    def fully_online(self) -> bool:
        """Whether the item is handled fully online (全程网办)."""
        return self.online_depth == OnlineDepth.FOUR


class GuideMaterial(models.Model):
    """申请材料: one material of a guide — a file, or replaced by a licence (可用电子证照) or shared data (免提交)."""

    class Kind(models.TextChoices):
        """How the material is provided."""

        FILE = "file", _("上传文件")
        LICENCE = "licence", _("电子证照")
        DATA = "data", _("共享数据")

    item = models.ForeignKey(ServiceItem, verbose_name=_("事项"), on_delete=models.CASCADE, related_name="materials")
    position = models.PositiveSmallIntegerField(_("序号"), default=0)
    name = models.CharField(_("材料名称"), max_length=200)
    required = models.BooleanField(_("必要"), default=True)
    kind = models.CharField(_("提供方式"), max_length=10, choices=Kind.choices, default=Kind.FILE)
    licence_type = models.ForeignKey(
        "licenses.LicenceType",
        verbose_name=_("可替代的电子证照"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    registry_code = models.CharField(_("共享数据来源（基础库）"), max_length=64, blank=True)
    registry_fields = models.JSONField(_("共享数据项"), default=list, blank=True)
    source = models.CharField(_("来源渠道"), max_length=100, blank=True)
    copies = models.PositiveSmallIntegerField(_("份数"), default=1)
    notes = models.TextField(_("填报须知"), blank=True)

    class Meta:
        verbose_name = _("申请材料")
        verbose_name_plural = _("申请材料")
        ordering = ["item", "position"]

    def __str__(self) -> str:
        return self.name

    @property
    def exempt(self) -> bool:
        """Whether the applicant need not submit it (免提交: registry data stands in)."""
        return self.kind == self.Kind.DATA


class ItemImplementation(models.Model):
    """实施清单: an item as one organization implements it at its level, with the elements it publishes."""

    item = models.ForeignKey(
        ServiceItem, verbose_name=_("事项"), on_delete=models.CASCADE, related_name="implementations"
    )
    organization = models.ForeignKey(
        "kernel.Organization", verbose_name=_("实施机构"), on_delete=models.PROTECT, related_name="+"
    )
    level = models.PositiveSmallIntegerField(_("实施层级"), choices=[(1, _("省级")), (2, _("市级")), (3, _("县级"))])
    division_code = models.CharField(_("行政区划代码"), max_length=12, db_index=True)
    implementing_code = models.CharField(_("实施编码"), max_length=64, unique=True)
    # The four elements as the implementing organization publishes them (三级四同 compares them to the item).
    name = models.CharField(_("事项名称（实施）"), max_length=200)
    type = models.CharField(_("事项类型（实施）"), max_length=20, choices=ItemType.choices)
    legal_basis = models.TextField(_("设定依据（实施）"))
    basic_code = models.CharField(_("基本编码（实施）"), max_length=32)
    promised_limit_days = models.PositiveSmallIntegerField(_("本地承诺时限（工作日）"))
    windows = models.JSONField(_("办理窗口"), default=list, blank=True, help_text=_("[{name, address, hours, phone}]"))
    is_active = models.BooleanField(_("在用"), default=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("实施清单")
        verbose_name_plural = _("实施清单")
        ordering = ["item", "level", "division_code"]
        constraints = [models.UniqueConstraint(fields=["item", "organization"], name="services_impl_item_org")]

    def __str__(self) -> str:
        return f"{self.name}@{self.organization_id}"


class Bundle(models.Model):
    """一件事: a bundle of items for one life event, with one combined form (mapping of shared fields to items)."""

    code = models.CharField(_("编码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    life_event = models.CharField(_("人生事件"), max_length=100, blank=True)
    description = models.TextField(_("说明"), blank=True)
    items = models.ManyToManyField(ServiceItem, verbose_name=_("包含事项"), related_name="bundles")
    form_mapping = models.JSONField(
        _("合并表单映射"), default=dict, blank=True, help_text=_("{字段: [事项基本编码.字段, …]}")
    )
    is_active = models.BooleanField(_("在用"), default=True)

    class Meta:
        verbose_name = _("一件事")
        verbose_name_plural = _("一件事")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class ItemDrift(models.Model):
    """三级四同 finding: one element of an implementation that differs from the item (open until fixed)."""

    class Status(models.TextChoices):
        """Open while the difference lasts."""

        OPEN = "open", _("待整改")
        RESOLVED = "resolved", _("已整改")

    implementation = models.ForeignKey(
        ItemImplementation, verbose_name=_("实施清单"), on_delete=models.CASCADE, related_name="drifts"
    )
    field = models.CharField(_("要素"), max_length=20)
    expected = models.TextField(_("应为"))
    found = models.TextField(_("实为"))
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.OPEN)
    first_seen = models.DateTimeField(_("首次发现"), auto_now_add=True)
    last_seen = models.DateTimeField(_("最近检查"))
    resolved_at = models.DateTimeField(_("整改时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("三级四同差异")
        verbose_name_plural = _("三级四同差异")
        ordering = ["-last_seen", "id"]
        constraints = [models.UniqueConstraint(fields=["implementation", "field"], name="services_drift_impl_field")]

    def __str__(self) -> str:
        return f"{self.implementation_id}:{self.field}"

    @property
    def field_label(self) -> str:
        """The element's Chinese name (事项名称、事项类型、设定依据、基本编码)."""
        labels = {
            "name": _("事项名称"),
            "type": _("事项类型"),
            "legal_basis": _("设定依据"),
            "basic_code": _("基本编码"),
        }
        return str(labels.get(self.field, self.field))


from dgov.services.models_cases import *  # noqa: E402,F401,F403
from dgov.services.models_process import *  # noqa: E402,F401,F403
