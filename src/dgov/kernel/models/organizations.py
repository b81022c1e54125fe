"""Kernel models: government organizations (departments at province, city and county level)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["Organization"]


class Organization(models.Model):
    """A government department or agency, with its USCC, place in the hierarchy and duties (三定)."""

    class Level(models.IntegerChoices):
        PROVINCE = 1, _("省级")
        CITY = 2, _("市级")
        COUNTY = 3, _("县级")

    name = models.CharField(_("名称"), max_length=128)
    short_name = models.CharField(_("简称"), max_length=64, blank=True)
    code = models.CharField(
        _("部门编码"), max_length=32, unique=True, help_text=_("平台内部门编码，如 370000-GA（省公安厅）")
    )
    uscc = models.CharField(_("统一社会信用代码"), max_length=18, unique=True)
    level = models.PositiveSmallIntegerField(_("层级"), choices=Level.choices)
    division = models.ForeignKey(
        "kernel.Division", verbose_name=_("行政区划"), on_delete=models.PROTECT, related_name="organizations"
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    kind = models.CharField(
        _("部门类别"),
        max_length=16,
        blank=True,
        db_index=True,
        help_text=_("如 GA（公安）、SCJG（市场监管）"),
    )
    # Vertically managed agencies (税务, 海关 …) answer to a national body outside the platform,
    # so they have no parent here even though they sit at province/city level.
    is_vertical = models.BooleanField(_("垂直管理"), default=False)
    duties = models.TextField(_("职能（三定）"), blank=True)
    is_active = models.BooleanField(_("有效"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("组织机构")
        verbose_name_plural = _("组织机构")
        ordering = ["division__code", "code"]

    def __str__(self) -> str:
        return self.name
