"""A management command made of subcommands (``dgov registry import …``, ``dgov catalog publish …``)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.core.management.base import BaseCommand, CommandError


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
