"""A management command made of subcommands (``dgov registry import …``, ``dgov catalog publish …``).

Also the plumbing commands share: the ``--as USERNAME`` identity, the rich progress bar, and the
printing of a definitions load report (:class:`dgov.kernel.dataload.LoadReport`).
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.core.management.base import BaseCommand, CommandError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def progress_bar(stdout) -> Progress:
    """A rich progress bar (description, bar, done/total, elapsed), silent when ``stdout`` is not a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not stdout.isatty(),
    )


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

    @staticmethod
    def active_user(username: str):
        """The user ``--as USERNAME`` names; CommandError when there is none or the account is inactive."""
        try:
            user = get_user_model().objects.get(username=username)
        except ObjectDoesNotExist:
            raise CommandError(f"用户 {username} 不存在 (no such user)") from None
        if not user.is_active:
            raise CommandError(f"用户 {username} 已停用 (user is inactive)")
        return user

    @staticmethod
    def add_identity_argument(parser) -> None:
        """``--as USERNAME``."""
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="act as this user (default: system:cli)")

    @staticmethod
    def acting_user(options):
        """The user ``--as`` names, or the CLI system actor ``system:cli:<user>``."""
        from dgov.kernel.services import audit

        username = options.get("as_user")
        return SubcommandCommand.active_user(username) if username else audit.cli_actor()

    def add_nothing(self, parser) -> None:
        """No arguments."""

    def write_load_report(self, report, options, *, rejected: str) -> None:
        """Print a load report (``--json`` or text); CommandError ``rejected`` (exit 1) when it has errors."""
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(report.to_text())
        if not report.ok:
            raise CommandError(rejected, returncode=1)
        if options["dry_run"]:
            self.stdout.write("试运行：未写入 (dry run: nothing written)")
