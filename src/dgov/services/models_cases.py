"""Models around applications (办件): materials, pre-fill consent, bundle cases, proactive offers and ratings.

Imported at the end of ``dgov.services.models`` (after ``models_process``) so the app keeps one
model module:

* :class:`ApplicationMaterial` — a material of an application: an uploaded or window-scanned file
  (sealed), an e-licence the applicant let the department use (可用电子证照), or base-library data
  that stands in for it (免提交).
* :class:`PrefillConsent` — the applicant's consent to pre-fill a form from the base libraries
  and their licences (数据授权), with what it covered; every read it allowed is logged.
* :class:`BundleCase` — one 一件事 application: one form and one set of materials, fanned out to
  one :class:`~dgov.services.models_process.Application` per item, completed together.
* :class:`ProactiveOffer` — a bundle offered to a citizen because an event appeared in a base
  library (主动服务, e.g. a birth recorded); the citizen only confirms.
* :class:`ServiceRating` and :class:`RatingRectification` — 好差评 and the rectification order a
  bad rating opens for the department (差评整改).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dgov.kernel.fields import EncryptedTextField

__all__ = [
    "ApplicationMaterial",
    "PrefillConsent",
    "BundleCase",
    "ProactiveOffer",
    "ServiceRating",
    "RatingRectification",
]


class ApplicationMaterial(models.Model):
    """One material of an application (申请材料): a sealed file, an e-licence, or shared data (免提交)."""

    class Source(models.TextChoices):
        UPLOAD = "upload", _("网上上传")
        SCAN = "scan", _("窗口扫描")
        LICENCE = "licence", _("电子证照")
        DATA = "data", _("共享数据")
        RESULT = "result", _("办理结果")

    application = models.ForeignKey(
        "services.Application", verbose_name=_("办件"), on_delete=models.CASCADE, related_name="materials"
    )
    material = models.ForeignKey(
        "services.GuideMaterial",
        verbose_name=_("对应指南材料"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    name = models.CharField(_("材料名称"), max_length=200)
    source = models.CharField(_("来源"), max_length=10, choices=Source.choices)
    # Files: the bytes sealed with SM4-GCM under the "pii" data key (dgov.kernel.crypto), never stored in clear.
    file_name = models.CharField(_("文件名"), max_length=200, blank=True)
    content_type = models.CharField(_("文件类型"), max_length=100, blank=True)
    size = models.PositiveIntegerField(_("大小（字节）"), default=0)
    sha256 = models.CharField(_("摘要"), max_length=64, blank=True)
    sealed_content = models.BinaryField(_("加密内容"), blank=True, default=b"")
    licence = models.ForeignKey(
        "licenses.Licence",
        verbose_name=_("电子证照"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    registry_code = models.CharField(_("共享数据来源（基础库）"), max_length=64, blank=True)
    added_by = models.CharField(_("提交人"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("提交时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("办件材料")
        verbose_name_plural = _("办件材料")
        ordering = ["application", "id"]

    def __str__(self) -> str:
        return self.name


class PrefillConsent(models.Model):
    """数据授权: the applicant lets the platform pre-fill a form from the base libraries and licences; logged."""

    holder_kind = models.CharField(_("主体类型"), max_length=16)
    holder_id = models.CharField(_("主体标识（盲索引）"), max_length=64, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("授权人"), on_delete=models.PROTECT, related_name="+"
    )
    item = models.ForeignKey(
        "services.ServiceItem",
        verbose_name=_("事项"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    bundle = models.ForeignKey(
        "services.Bundle", verbose_name=_("一件事"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    registries = models.JSONField(_("授权的基础库"), default=list, blank=True)
    licence_types = models.JSONField(_("授权的证照类型"), default=list, blank=True)
    fields_filled = models.JSONField(_("已预填字段"), default=list, blank=True)
    purpose = models.CharField(_("用途"), max_length=300)
    granted_at = models.DateTimeField(_("授权时间"), auto_now_add=True)
    valid_until = models.DateTimeField(_("授权截止"))
    revoked_at = models.DateTimeField(_("撤回时间"), null=True, blank=True)
    application = models.ForeignKey(
        "services.Application",
        verbose_name=_("办件"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="prefill_consents",
    )

    class Meta:
        verbose_name = _("预填授权")
        verbose_name_plural = _("预填授权")
        ordering = ["-granted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.holder_id[:8]}… {self.purpose}"


class BundleCase(models.Model):
    """一件事办件: one application for a bundle, fanned out to one application per item, completed together."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", _("办理中")
        COMPLETED = "completed", _("已办结")
        PARTLY = "partly", _("部分办结")

    number = models.CharField(_("一件事编号"), max_length=32, unique=True)
    bundle = models.ForeignKey(
        "services.Bundle", verbose_name=_("一件事"), on_delete=models.PROTECT, related_name="cases"
    )
    applicant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("申请人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bundle_cases",
    )
    holder_kind = models.CharField(_("申请主体类型"), max_length=16, blank=True)
    holder_id = models.CharField(_("申请主体标识"), max_length=64, blank=True, db_index=True)
    holder_name = EncryptedTextField(_("申请人姓名"), blank=True)
    division = models.ForeignKey(
        "kernel.Division", verbose_name=_("办理地区划"), on_delete=models.PROTECT, related_name="+"
    )
    form_data = EncryptedTextField(_("合并表单数据"), purpose="services.form")
    channel = models.CharField(_("渠道"), max_length=8, default="online")
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    submitted_at = models.DateTimeField(_("提交时间"), auto_now_add=True)
    completed_at = models.DateTimeField(_("办结时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("一件事办件")
        verbose_name_plural = _("一件事办件")
        ordering = ["-submitted_at", "-id"]

    def __str__(self) -> str:
        return self.number


class ProactiveOffer(models.Model):
    """主动服务: a bundle offered because a base-library event concerns the holder; the holder confirms or declines."""

    class Status(models.TextChoices):
        OFFERED = "offered", _("待确认")
        ACCEPTED = "accepted", _("已确认办理")
        DECLINED = "declined", _("已谢绝")
        EXPIRED = "expired", _("已过期")

    bundle = models.ForeignKey(
        "services.Bundle", verbose_name=_("一件事"), on_delete=models.PROTECT, related_name="offers"
    )
    holder_kind = models.CharField(_("主体类型"), max_length=16, default="person")
    holder_id = models.CharField(_("主体标识（盲索引）"), max_length=64, db_index=True)
    event_registry = models.CharField(_("事件来源（基础库）"), max_length=64)
    event_uid = models.CharField(_("事件记录标识"), max_length=64)
    event_kind = models.CharField(_("事件类型"), max_length=32)
    # What the event tells (e.g. the newborn's name and birth date): personal data, sealed.
    prefill = EncryptedTextField(_("预填数据"), purpose="services.form", blank=True)
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.OFFERED)
    offered_at = models.DateTimeField(_("推送时间"), auto_now_add=True)
    expires_on = models.DateField(_("有效期至"))
    responded_at = models.DateTimeField(_("响应时间"), null=True, blank=True)
    case = models.ForeignKey(
        BundleCase, verbose_name=_("一件事办件"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("主动服务")
        verbose_name_plural = _("主动服务")
        ordering = ["-offered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "holder_id", "event_uid"], name="services_offer_once"),
        ]

    def __str__(self) -> str:
        return f"{self.bundle_id} → {self.holder_id[:8]}…"


class ServiceRating(models.Model):
    """好差评: the applicant's rating of a completed application, five levels (5 非常满意 … 1 非常不满意)."""

    class Score(models.IntegerChoices):
        VERY_GOOD = 5, _("非常满意")
        GOOD = 4, _("满意")
        FAIR = 3, _("基本满意")
        BAD = 2, _("不满意")
        VERY_BAD = 1, _("非常不满意")

    application = models.OneToOneField(
        "services.Application", verbose_name=_("办件"), on_delete=models.CASCADE, related_name="rating"
    )
    score = models.PositiveSmallIntegerField(_("评价等级"), choices=Score.choices)
    comment = EncryptedTextField(_("评价内容"), blank=True)
    channel = models.CharField(_("评价渠道"), max_length=8, default="online")
    rated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("评价人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Copied from the application so metrics group ratings without joining back.
    department = models.ForeignKey(
        "kernel.Organization", verbose_name=_("被评价部门"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("评价时间"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("好差评")
        verbose_name_plural = _("好差评")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.application_id}: {self.score}"

    @property
    def is_bad(self) -> bool:
        """A bad rating (差评: 不满意 or 非常不满意) opens a rectification order."""
        return self.score <= self.Score.BAD


class RatingRectification(models.Model):
    """差评整改: the order a bad rating opens for the department, due in working days; answered, then closed."""

    class Status(models.TextChoices):
        OPEN = "open", _("待整改")
        ANSWERED = "answered", _("已整改待回访")
        CLOSED = "closed", _("已办结")

    code = models.CharField(_("工单编号"), max_length=32, unique=True)
    rating = models.OneToOneField(
        ServiceRating, verbose_name=_("差评"), on_delete=models.CASCADE, related_name="rectification"
    )
    department = models.ForeignKey(
        "kernel.Organization", verbose_name=_("整改部门"), on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    opened_on = models.DateField(_("下发日期"))
    due_on = models.DateField(_("整改期限"))
    response = models.TextField(_("整改情况"), blank=True)
    answered_by = models.CharField(_("整改人"), max_length=150, blank=True)
    answered_at = models.DateTimeField(_("整改时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    overdue = models.BooleanField(_("已超期"), default=False)

    class Meta:
        verbose_name = _("差评整改")
        verbose_name_plural = _("差评整改")
        ordering = ["-opened_on", "-id"]
        indexes = [models.Index(fields=["department", "status"], name="services_rectify_dept_status")]

    def __str__(self) -> str:
        return self.code
