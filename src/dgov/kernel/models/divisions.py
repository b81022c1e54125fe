"""Kernel models: administrative divisions (GB/T 2260, extended to township and village)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["Division"]


class Division(models.Model):
    """One administrative division: province, city, county, township or village."""

    class Level(models.IntegerChoices):
        PROVINCE = 1, _("省级")
        CITY = 2, _("地级")
        COUNTY = 3, _("县级")
        TOWNSHIP = 4, _("乡级")
        VILLAGE = 5, _("村级")

    # 6 digits (GB/T 2260) for province/city/county, 9 for township, 12 for village (GB/T 10114 style).
    code = models.CharField(_("区划代码"), max_length=12, unique=True)
    name = models.CharField(_("名称"), max_length=64, db_index=True)
    level = models.PositiveSmallIntegerField(_("级别"), choices=Level.choices, db_index=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    full_name = models.CharField(_("全称"), max_length=200, blank=True)
    synthetic = models.BooleanField(
        _("演示数据"), default=False, help_text=_("乡、村两级为演示省份生成的数据，不是官方区划")
    )
    # GB/T 2260 has grouping codes that are not real places: 市辖区 (xx01 districts-of-the-city
    # totals, and xx0100 of the municipalities), 县 (500200), 省直辖县级行政单位 (xx9000). They stay
    # as rows so that ID numbers and parents that carry them resolve, but lists and search skip them.
    placeholder = models.BooleanField(
        _("统计用汇总码"), default=False, help_text=_("如“市辖区”“省直辖县级行政单位”，不是实际的行政区域")
    )
    # Divisions abolished after they were loaded are kept (records refer to them) but marked.
    is_current = models.BooleanField(_("现行"), default=True, db_index=True)

    class Meta:
        verbose_name = _("行政区划")
        verbose_name_plural = _("行政区划")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.full_name or self.name}"
