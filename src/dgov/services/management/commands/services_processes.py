"""``dgov services_processes load FILE.bpmn…`` / ``list`` — the same as ``dgov services processes …``."""

from __future__ import annotations

from dgov.kernel.management.subcommands import SubcommandCommand
from dgov.services.process_commands import ProcessesSubcommand


class Command(ProcessesSubcommand, SubcommandCommand):
    """BPMN process definitions (流程定义): load, list."""

    help = "BPMN process definitions (流程定义): load FILE.bpmn…, list."

    SUBCOMMANDS = {}

    def add_arguments(self, parser):
        """The ``processes`` arguments at the top level."""
        self.add_processes_arguments(parser)

    def handle(self, *args, **options):
        """Load or list."""
        return self.handle_processes(**options)
