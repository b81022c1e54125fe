"""``dgov keys list|rotate|revoke``: inspect and manage the key registry (密钥管理).

``list`` shows every key (kid, purpose, algorithm, status, dates) — never key material.
``rotate <purpose>`` retires the active key of a purpose and activates a new one (``--algorithm``
is needed only for a purpose without keys; ``--force`` for the blind-index key). ``revoke <kid>``
revokes one key, replacing it if it was active.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.audit_context import audit_context
from dgov.kernel.models import KeyRecord
from dgov.kernel.services import keys
from dgov.kernel.services.audit import cli_actor


def _when(value) -> str:
    """Format a timestamp in the local time zone, or "-"."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


class Command(BaseCommand):
    """List, rotate or revoke keys of the key registry."""

    help = "密钥管理：list 列出密钥，rotate 轮换某用途的密钥，revoke 吊销密钥"

    def add_arguments(self, parser):
        """Declare the subcommands and their options."""
        sub = parser.add_subparsers(dest="subcommand", required=True)
        listing = sub.add_parser("list", help=_("列出密钥（不显示密钥内容）"))
        listing.add_argument("--purpose", help=_("只列出该用途的密钥"))
        rotate = sub.add_parser("rotate", help=_("轮换某用途的密钥：旧密钥停用但仍可验签/解密"))
        rotate.add_argument("purpose", help=_("密钥用途，如 audit-checkpoint、pii"))
        rotate.add_argument(
            "--algorithm", choices=KeyRecord.Algorithm.values, help=_("该用途尚无密钥时必须指定算法")
        )
        rotate.add_argument("--force", action="store_true", help=_("允许轮换盲索引密钥（需重建索引）"))
        revoke = sub.add_parser("revoke", help=_("吊销密钥；若为使用中密钥则同时生成新密钥"))
        revoke.add_argument("kid", help=_("密钥标识"))

    def handle(self, *args, **options):
        """Dispatch to the chosen subcommand."""
        return getattr(self, "handle_" + options["subcommand"])(**options)


    def handle_list(self, *, purpose: str | None = None, **options):
        """Print the registry as a table."""
        records = keys.list_keys(purpose)
        if not records:
            self.stdout.write(_("密钥库为空：密钥在首次使用时自动生成。"))
            return
        headers = [_("密钥标识"), _("用途"), _("算法"), _("状态"), _("创建时间"), _("停用时间")]
        rows = [
            [
                r.kid,
                r.purpose,
                r.algorithm.upper(),
                r.get_status_display(),
                _when(r.created_at),
                _when(r.retired_at),
            ]
            for r in records
        ]
        widths = [max(_width(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            self.stdout.write("  ".join(_pad(str(cell), widths[i]) for i, cell in enumerate(row)).rstrip())

    def handle_rotate(self, *, purpose: str, algorithm: str | None = None, force: bool = False, **options):
        """Rotate the key of ``purpose`` and report the new kid."""
        actor = cli_actor()
        try:
            with audit_context(actor=actor):
                kid = keys.rotate(purpose, actor=actor, algorithm=algorithm, force=force)
        except keys.KeyPurposeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(_("已轮换 %(purpose)s：新密钥 %(kid)s") % {"purpose": purpose, "kid": kid})
        )

    def handle_revoke(self, *, kid: str, **options):
        """Revoke ``kid`` and report its replacement, if any."""
        actor = cli_actor()
        try:
            with audit_context(actor=actor):
                replacement = keys.revoke(kid, actor=actor)
        except keys.UnknownKeyError as exc:
            raise CommandError(str(exc)) from None
        message = _("已吊销 %(kid)s") % {"kid": kid}
        if replacement:
            message += _("；新密钥 %(kid)s 已启用") % {"kid": replacement}
        self.stdout.write(self.style.SUCCESS(message))


def _width(text: str) -> int:
    """Display width in a terminal: CJK characters take two columns."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    """Left-align ``text`` to ``width`` display columns."""
    return text + " " * (width - _width(text))
