"""A management command made of subcommands (``dgov registry import …``, ``dgov catalog publish …``)."""

from __future__ import annotations

from django.core.management.base import BaseCommand


class SubcommandCommand(BaseCommand):
    """A command whose first argument names a subcommand.

    ``SUBCOMMANDS`` maps each name to ``(method adding its arguments, method running it, help text)``;
    the running method receives the parsed options as keyword arguments.
    """

    SUBCOMMANDS: dict[str, tuple[str, str, str]] = {}

    def add_arguments(self, parser):
        """One sub-parser per entry of SUBCOMMANDS."""
        subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        for name, (add_method, _handler, help_text) in self.SUBCOMMANDS.items():
            sub = subparsers.add_parser(name, help=help_text, description=help_text)
            getattr(self, add_method)(sub)

    def handle(self, *args, **options):
        """Dispatch to the subcommand's handler."""
        _add, handler, _help = self.SUBCOMMANDS[options["subcommand"]]
        return getattr(self, handler)(**options)
