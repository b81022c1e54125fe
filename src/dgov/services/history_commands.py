"""``dgov services history [--count N] [--months M] [--seed S] [--province CODE]``: demo application history.

A mixin for the ``dgov services`` command: generates historical applications for the demo province
(:mod:`dgov.services.demo_history`; ``dgov demo`` does it once by itself) and prints the summary.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from dgov.services import demo_history


class HistorySubcommand:
    """Adds ``history`` to a SubcommandCommand."""

    def add_history_arguments(self, parser) -> None:
        """``history [--count N] [--months M] [--seed S] [--province CODE]``."""
        parser.add_argument(
            "--count", type=int, default=demo_history.DEFAULT_COUNT, help="applications to generate (default 600)"
        )
        parser.add_argument(
            "--months", type=int, default=demo_history.DEFAULT_MONTHS, help="months back from now (default 6)"
        )
        parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same plans)")
        parser.add_argument("--province", metavar="CODE", help="province code (default: the demo province)")

    def handle_history(self, **options):
        """Generate the history and print what was made."""
        try:
            report = demo_history.generate(
                province_code=options.get("province") or settings.DEMO_PROVINCE_CODE,
                count=options["count"],
                months=options["months"],
                seed=options["seed"],
            )
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages), returncode=1) from None
        self.stdout.write(report.to_text())
        if report.skipped:
            raise CommandError(report.skipped, returncode=1)
