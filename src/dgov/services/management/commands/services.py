"""`dgov services`: the service-item catalogue (政务服务事项目录) and the 三级四同 check.

::

    dgov services items load FILE [--dry-run] [--json] [--province CODE] [--as USERNAME]   # all or nothing
    dgov services items list
    dgov services items implement [--province CODE] [--as USERNAME]   # 实施清单 for the province's departments
    dgov services check [--as USERNAME]                                 # 三级四同: drift findings
    dgov services processes load FILE.bpmn… | processes list            # BPMN 流程定义 (process_commands.py)
    dgov services history [--count N] [--months M] [--seed S]           # demo 办件历史 (history_commands.py)

Without ``--as`` the command acts as the system actor ``system:cli:<user>``. ``items load`` writes
nothing when any entry is bad (exit status 1, every bad entry listed).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from dgov.kernel.management.subcommands import SubcommandCommand
from dgov.services import catalogue
from dgov.services.history_commands import HistorySubcommand
from dgov.services.models import ServiceItem
from dgov.services.process_commands import ProcessesSubcommand


class Command(HistorySubcommand, ProcessesSubcommand, SubcommandCommand):
    """Service items: items load|list|implement, check (三级四同)."""

    help = "Service items (政务服务事项): items load|list|implement, check (三级四同)."

    SUBCOMMANDS = {
        "items": ("add_items_arguments", "handle_items", "service-item catalogue: load, list, implement (事项目录)"),
        "check": ("add_check_arguments", "handle_check", "三级四同 check of implementations (三级四同检查)"),
        "processes": ("add_processes_arguments", "handle_processes", "BPMN process definitions: load, list (流程定义)"),
        "history": ("add_history_arguments", "handle_history", "demo application history (演示办件历史)"),
    }

    def add_items_arguments(self, parser) -> None:
        """``items load FILE`` / ``items list`` / ``items implement``."""
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        load = actions.add_parser("load", help="load a YAML/JSON item catalogue, all or nothing (导入事项目录)")
        load.add_argument("file", metavar="FILE", help="a .yaml/.yml or .json catalogue (docs/services.md)")
        load.add_argument("--dry-run", action="store_true", help="check only, write nothing (试运行)")
        load.add_argument("--json", action="store_true", help="print the report as JSON")
        load.add_argument("--province", metavar="CODE", help="province whose departments licence refs resolve to")
        self.add_identity_argument(load)
        actions.add_parser("list", help="list service items (事项列表)")
        implement = actions.add_parser("implement", help="create the province's implementations (生成实施清单)")
        implement.add_argument("--province", metavar="CODE", help="province code (default: the demo province)")
        self.add_identity_argument(implement)

    def handle_items(self, **options):
        """Dispatch ``items`` actions."""
        if options["action"] == "list":
            for item in ServiceItem.objects.order_by("basic_code"):
                self.stdout.write(
                    f"{item.basic_code}\t{item.name}\t{item.get_type_display()}\t{item.department_kind}\t"
                    f"v{item.version}\t{item.status}"
                )
            return
        actor = self.acting_user(options)
        if options["action"] == "implement":
            try:
                made = catalogue.implement_items(options.get("province") or settings.DEMO_PROVINCE_CODE, actor=actor)
            except PermissionDenied as exc:
                raise CommandError(f"无权维护实施清单 (refused): {exc}", returncode=1) from None
            self.stdout.write(f"实施清单新增 {made} 条 (implementations created)")
            return
        try:
            document = catalogue.read_catalogue_file(options["file"])
        except catalogue.CatalogueFileError as exc:
            raise CommandError(f"事项目录无法读取 (unreadable catalogue): {exc}", returncode=1) from None
        try:
            report = catalogue.load_catalogue(
                document,
                actor=actor,
                source=options["file"],
                dry_run=options["dry_run"],
                province_code=options.get("province"),
            )
        except PermissionDenied as exc:
            raise CommandError(f"无权维护事项目录 (refused): {exc}", returncode=1) from None
        self.write_load_report(
            report, options, rejected=f"事项目录有 {len(report.errors)} 处错误，未写入 (catalogue rejected)"
        )

    def add_check_arguments(self, parser) -> None:
        """``check [--as USERNAME]``."""
        self.add_identity_argument(parser)

    def handle_check(self, **options):
        """Run the 三级四同 check and print its summary."""
        try:
            report = catalogue.check_consistency(actor=self.acting_user(options))
        except PermissionDenied as exc:
            raise CommandError(f"无权运行三级四同检查 (refused): {exc}", returncode=1) from None
        self.stdout.write(report.to_text())
