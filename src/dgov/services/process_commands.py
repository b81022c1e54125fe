"""``dgov services processes load FILE.bpmn…`` / ``processes list``: BPMN process definitions (流程定义).

A mixin for the ``dgov services`` command (and the standalone ``dgov services_processes``): a file
that does not parse, or lacks a start event or user tasks, is refused with the reason (exit status 1).
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from dgov.kernel.services.audit import cli_actor
from dgov.services import processes
from dgov.services.models import ProcessDefinition


class ProcessesSubcommand:
    """Adds ``processes load|list`` to a SubcommandCommand."""

    def add_processes_arguments(self, parser) -> None:
        """``processes load FILE…`` or ``processes list``."""
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        load = actions.add_parser("load", help="validate and store BPMN 2.0 files (加载流程定义)")
        load.add_argument("files", nargs="+", metavar="FILE.bpmn")
        actions.add_parser("list", help="list loaded process definitions (流程定义列表)")

    def handle_processes(self, **options):
        """Load or list process definitions."""
        if options["action"] == "list":
            for d in ProcessDefinition.objects.order_by("key", "-version"):
                active = "active" if d.is_active else "inactive"
                self.stdout.write(f"{d.key} v{d.version} {active} {d.name} {d.sha256[:12]} {d.source}")
            return
        for name in options["files"]:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"{name}: no such file", returncode=1)
            try:
                definition = processes.load_definition(
                    path.read_text(encoding="utf-8"), actor=cli_actor(), source=path.name
                )
            except processes.ProcessDefinitionError as exc:
                raise CommandError(str(exc), returncode=1) from None
            self.stdout.write(self.style.SUCCESS(f"{definition.key} v{definition.version} loaded from {path.name}"))
