"""``dgov divisions load|demo|find|show``: the administrative divisions (行政区划).

``load`` reads GB/T 2260 from python-stdnum's loc.dat (idempotent); ``demo`` generates the
synthetic townships and villages of the demo province; ``find 历下`` and ``show 370102`` look up.
"""

from __future__ import annotations

import argparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from dgov.kernel.audit_context import audit_context
from dgov.kernel.models import Division
from dgov.kernel.services import divisions
from dgov.kernel.services.audit import cli_actor


def _range(value: str) -> tuple[int, int]:
    """Parse ``3-6`` (or ``4``) into an inclusive range."""
    low, _sep, high = value.partition("-")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(_("范围应写作 最小-最大，例如 3-6")) from None


class Command(BaseCommand):
    """Load, generate and look up administrative divisions."""

    help = "行政区划：load 加载 GB/T 2260，demo 生成演示省份乡村两级，find 按名称查找，show 查看代码"

    def add_arguments(self, parser):
        """Declare the subcommands."""
        sub = parser.add_subparsers(dest="subcommand", required=True)
        load = sub.add_parser("load", help=_("从 python-stdnum 的 loc.dat 加载省、市、县三级（可重复运行）"))
        load.add_argument("--file", help=_("使用指定的 loc.dat 格式文件"))
        load.add_argument("--provinces", help=_("只加载这些省份（两位代码，逗号分隔），例如 37,11"))
        demo = sub.add_parser("demo", help=_("为演示省份生成乡镇（街道）和村（社区）两级"))
        demo.add_argument("--province", default=None, help=_("省级代码，默认 settings.DEMO_PROVINCE_CODE"))
        demo.add_argument("--seed", type=int, default=2260, help=_("随机种子（相同种子结果相同）"))
        demo.add_argument("--townships", type=_range, default=(3, 6), help=_("每县乡镇数范围，默认 3-6"))
        demo.add_argument("--villages", type=_range, default=(4, 10), help=_("每乡镇村数范围，默认 4-10"))
        find = sub.add_parser("find", help=_("按名称（或代码前缀）查找"))
        find.add_argument("query")
        find.add_argument("--level", type=int, choices=[c.value for c in Division.Level], help=_("级别 1–5"))
        find.add_argument("--limit", type=int, default=50)
        show = sub.add_parser("show", help=_("查看一个区划及其上下级"))
        show.add_argument("code")

    def handle(self, *args, **options):
        """Dispatch to the chosen subcommand under a CLI audit actor."""
        actor = cli_actor()
        with audit_context(actor=actor):
            return getattr(self, "handle_" + options["subcommand"])(actor=actor, **options)

    def handle_load(self, *, actor, file=None, provinces=None, **_options):
        """Load GB/T 2260."""
        wanted = [p.strip() for p in provinces.split(",") if p.strip()] if provinces else None
        result = divisions.load_divisions(actor=actor, path=file, provinces=wanted)
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "行政区划已加载：新增 %(created)d，更新 %(updated)d，未变 %(unchanged)d，"
                    "停用 %(retired)d，用时 %(seconds).2f 秒"
                )
                % result.__dict__
            )
        )

    def handle_demo(self, *, actor, province=None, seed=2260, townships=(3, 6), villages=(4, 10), **_options):
        """Generate the demo province's townships and villages."""
        code = province or settings.DEMO_PROVINCE_CODE
        try:
            result = divisions.generate_demo_subdivisions(code, seed, townships, villages, actor=actor)
        except Division.DoesNotExist:
            raise CommandError(
                _("省级区划 %(code)s 不存在，请先运行 dgov divisions load") % {"code": code}
            ) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "演示区划：乡镇 %(townships)d 个，村（社区）%(villages)d 个；"
                    "新增 %(created)d，更新 %(updated)d"
                )
                % result.__dict__
            )
        )

    def handle_find(self, *, query, level=None, limit=50, **_options):
        """Print matching divisions, one per line."""
        found = divisions.find_divisions(query, level, limit=limit)
        for division in found:
            self.stdout.write(f"{division.code}\t{division.get_level_display()}\t{division.full_name}")
        if not found:
            self.stderr.write(_("没有找到“%(query)s”") % {"query": query})

    def handle_show(self, *, code, **_options):
        """Print a division with its ancestors and children."""
        division = divisions.get_division(code)
        if division is None:
            raise CommandError(_("行政区划代码 %(code)s 不存在") % {"code": code})
        chain = " / ".join(d.name for d in divisions.ancestors(division))
        self.stdout.write(f"{division.code}\t{division.get_level_display()}\t{division.full_name}")
        if chain:
            self.stdout.write(_("上级：%(chain)s") % {"chain": chain})
        if not division.is_current:
            self.stdout.write(_("（已撤销）"))
        for child in divisions.children(division.code):
            self.stdout.write(f"  {child.code}\t{child.name}")
