"""``dgov calendar check|add|load|set|clear``: the working-day calendar (工作日历).

``check 2026-10-01`` shows whether a day is a working day and why; ``add 2026-09-30 5`` computes a
deadline; ``load FILE.csv`` loads overrides (columns ``date,is_workday,name,source``) for years the
chinesecalendar package does not know yet; ``set``/``clear`` change one date.
"""

from __future__ import annotations

import argparse
import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from dgov.kernel.audit_context import audit_context
from dgov.kernel.services import calendar
from dgov.kernel.services.audit import cli_actor

WEEKDAYS = "一二三四五六日"
SOURCES = {
    "override": "管理员调整",
    "chinesecalendar": "国务院放假安排（chinesecalendar）",
    "weekday": "周一至周五规则（无放假数据）",
}


def _date(value: str) -> datetime.date:
    """Parse YYYY-MM-DD for argparse."""
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("日期 %(value)s 无效（应为 YYYY-MM-DD）") % {"value": value}
        ) from None


def _messages(exc: ValidationError) -> str:
    """All messages of a ValidationError on one line."""
    return "；".join(exc.messages)


class Command(BaseCommand):
    """Check days, compute deadlines and maintain calendar overrides."""

    help = "工作日历：check 查询日期，add 计算期限，load 导入调整文件，set/clear 调整单日"

    def add_arguments(self, parser):
        """Declare the subcommands."""
        sub = parser.add_subparsers(dest="subcommand", required=True)
        check = sub.add_parser("check", help=_("查询日期是否为工作日"))
        check.add_argument("dates", nargs="+", type=_date)
        add = sub.add_parser("add", help=_("计算起始日之后第 N 个工作日（起始日不计）"))
        add.add_argument("start", type=_date)
        add.add_argument("days", type=int)
        load = sub.add_parser("load", help=_("导入 CSV：date,is_workday,name,source"))
        load.add_argument("file")
        set_ = sub.add_parser("set", help=_("调整某一天"))
        set_.add_argument("date", type=_date)
        kind = set_.add_mutually_exclusive_group(required=True)
        kind.add_argument(
            "--workday", dest="is_workday", action="store_true", help=_("设为工作日（调休上班）")
        )
        kind.add_argument("--holiday", dest="is_workday", action="store_false", help=_("设为休息日"))
        set_.add_argument("--name", default="")
        set_.add_argument("--source", default="")
        clear = sub.add_parser("clear", help=_("删除某一天的调整"))
        clear.add_argument("date", type=_date)

    def handle(self, *args, **options):
        """Dispatch to the chosen subcommand under a CLI audit actor."""
        actor = cli_actor()
        with audit_context(actor=actor):
            try:
                return getattr(self, "handle_" + options["subcommand"])(actor=actor, **options)
            except ValidationError as exc:
                raise CommandError(_messages(exc)) from None

    def _describe(self, day: datetime.date) -> str:
        """One line about one day."""
        info = calendar.day_info(day)
        status = _("工作日") if info.is_workday else _("休息日")
        name = f" {info.name}" if info.name else ""
        return f"{day.isoformat()} 星期{WEEKDAYS[day.weekday()]} {status}{name}（{SOURCES[info.source]}）"

    def handle_check(self, *, dates, **_options):
        """Print each date's status."""
        for day in dates:
            self.stdout.write(self._describe(day))

    def handle_add(self, *, start, days, **_options):
        """Print the deadline ``days`` working days after ``start``."""
        due = calendar.add_working_days(start, days)
        self.stdout.write(
            _("%(start)s 之后第 %(n)d 个工作日：%(due)s")
            % {"start": start.isoformat(), "n": days, "due": self._describe(due)}
        )

    def handle_load(self, *, actor, file, **_options):
        """Load overrides from a CSV file."""
        try:
            result = calendar.load_calendar_csv(file, actor=actor)
        except OSError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                _("工作日历已导入：新增 %(created)d，更新 %(updated)d，未变 %(unchanged)d；年份 %(years)s")
                % {**result.__dict__, "years": ", ".join(map(str, result.years)) or "-"}
            )
        )

    def handle_set(self, *, actor, date, is_workday, name="", source="", **_options):
        """Set one override."""
        calendar.set_calendar_day(date, is_workday, name, actor=actor, source=source)
        self.stdout.write(self.style.SUCCESS(self._describe(date)))

    def handle_clear(self, *, actor, date, **_options):
        """Remove one override."""
        if not calendar.clear_calendar_day(date, actor=actor):
            raise CommandError(_("%(date)s 没有调整记录") % {"date": date.isoformat()})
        self.stdout.write(self.style.SUCCESS(self._describe(date)))
