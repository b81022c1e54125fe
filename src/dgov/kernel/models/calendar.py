"""Kernel models: working-day calendar overrides (statutory holidays and 调休 make-up days)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["CalendarDay"]


class CalendarDay(models.Model):
    """An administrator's ruling on one date (holiday or working day) that wins over the built-in data."""

    date = models.DateField(_("日期"), unique=True)
    is_workday = models.BooleanField(_("工作日"))
    name = models.CharField(_("名称"), max_length=64, blank=True, help_text=_("如“国庆节”“国庆节调休上班”"))
    source = models.CharField(
        _("依据"), max_length=200, blank=True, help_text=_("如国务院办公厅放假安排通知的文号，或导入文件名")
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("修改人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("工作日历调整")
        verbose_name_plural = _("工作日历调整")
        ordering = ["date"]

    def __str__(self) -> str:
        kind = _("上班") if self.is_workday else _("放假")
        return f"{self.date.isoformat()} {kind} {self.name}".rstrip()
