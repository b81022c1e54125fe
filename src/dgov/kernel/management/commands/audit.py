"""``dgov audit verify|checkpoint|tail``: check, anchor and read the audit chain (审计链).

``verify`` exits with status 0 when the chain is intact and 1 when it finds a problem, naming the
first affected record (seq, kind, action and time).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.audit_context import audit_context
from dgov.kernel.models import AuditRecord
from dgov.kernel.services import audit
from dgov.kernel.services.audit import cli_actor

KIND_LABELS = {
    "altered": "篡改",
    "deleted": "删除",
    "inserted": "插入",
    "reordered": "调序",
    "truncated": "截断",
    "checkpoint-forged": "检查点伪造",
    "checkpoint-missing": "检查点缺失",
}


def _local(value: str) -> str:
    """Show a canonical UTC timestamp in the local time zone (Asia/Shanghai)."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


class Command(BaseCommand):
    """Verify the audit chain, write a signed checkpoint, or show the newest records."""

    # A plain string: argparse formats the description and cannot take a lazy translation.
    help = "审计链：verify 校验完整性，checkpoint 写入签名检查点，tail 显示最新记录"

    def add_arguments(self, parser):
        """Declare the three subcommands and their options."""
        sub = parser.add_subparsers(dest="subcommand", required=True)
        verify = sub.add_parser("verify", help=_("校验整条审计链与签名检查点"))
        verify.add_argument("--from", dest="from_seq", type=int, default=1, help=_("从该序号开始校验"))
        verify.add_argument("--json", dest="as_json", action="store_true", help=_("以 JSON 输出校验报告"))
        sub.add_parser("checkpoint", help=_("立即在链头写入 SM2 签名检查点"))
        tail = sub.add_parser("tail", help=_("显示最新的审计记录"))
        tail.add_argument("-n", dest="count", type=int, default=20, help=_("条数（默认 20）"))

    def handle(self, *args, **options):
        """Dispatch to the chosen subcommand."""
        return getattr(self, "handle_" + options["subcommand"])(**options)

    def handle_verify(self, *, from_seq: int, as_json: bool = False, **options):
        """Run ``audit.verify()``, with a progress bar on a terminal, and report the outcome."""
        stream = getattr(self.stdout, "_out", sys.stdout)
        if not as_json and stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            columns = (TextColumn(_("校验审计链")), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            with Progress(*columns, console=Console(file=stream)) as bar:
                task = bar.add_task("verify", total=None)

                def advance(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                report = audit.verify(from_seq=from_seq, progress=advance)
        else:
            report = audit.verify(from_seq=from_seq)
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        else:
            self._print_report(report)
        if not report.ok:
            problem = report.first_problem
            raise CommandError(
                _("审计链校验失败：第 %(seq)s 条，%(kind)s") % {"seq": problem.seq, "kind": problem.kind},
                returncode=1,
            )

    def _print_report(self, report: audit.VerifyReport) -> None:
        """Write a human-readable summary of a verify report."""
        rate = report.records_checked / report.elapsed if report.elapsed > 0 else 0
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    _(
                        "审计链完整：已校验 %(n)s 条记录（第 %(first)s 至 %(last)s 条），"
                        "耗时 %(s).2f 秒（%(rate)d 条/秒）"
                    )
                    % {
                        "n": report.records_checked,
                        "first": report.first_seq or 0,
                        "last": report.last_seq or 0,
                        "s": report.elapsed,
                        "rate": rate,
                    }
                )
            )
        else:
            problem = report.first_problem
            self.stdout.write(
                self.style.ERROR(
                    _("发现问题：第 %(seq)s 条 [%(kind)s %(label)s] %(message)s")
                    % {
                        "seq": problem.seq if problem.seq is not None else "-",
                        "kind": problem.kind,
                        "label": KIND_LABELS.get(problem.kind, ""),
                        "message": problem.message,
                    }
                )
            )
            if problem.action or problem.occurred_at:
                self.stdout.write(
                    _("  该记录：操作 %(action)s，时间 %(when)s")
                    % {"action": problem.action or "-", "when": _local(problem.occurred_at) or "-"}
                )
            if len(report.problems) > 1:
                more = len(report.problems) - 1
                self.stdout.write(_("另有 %(n)s 个问题（用 --json 查看全部）") % {"n": more})
            self.stdout.write(
                _("已校验 %(n)s 条记录，耗时 %(s).2f 秒") % {"n": report.records_checked, "s": report.elapsed}
            )
        if report.last_checkpoint:
            cp = report.last_checkpoint
            self.stdout.write(
                _(
                    "最新签名检查点：第 %(seq)s 条，%(when)s，密钥 %(kid)s（来源 %(source)s）；"
                    "共验证 %(n)s 个签名"
                )
                % {
                    "seq": cp["seq"],
                    "when": _local(cp["created_at"]),
                    "kid": cp["kid"],
                    "source": cp["source"],
                    "n": report.checkpoints_checked,
                }
            )
        for warning in report.warnings:
            self.stdout.write(self.style.WARNING(warning))

    def handle_checkpoint(self, **options):
        """Write a signed checkpoint at the chain head now."""
        actor = cli_actor()
        with audit_context(actor=actor):
            entry = audit.checkpoint(actor=actor)
        self.stdout.write(
            self.style.SUCCESS(
                _("链头第 %(seq)s 条已有签名检查点（密钥 %(kid)s，哈希 %(hash)s）")
                % {"seq": entry.seq, "kid": entry.kid, "hash": entry.hash}
            )
        )

    def handle_tail(self, *, count: int, **options):
        """Print the newest ``count`` records, oldest first."""
        rows = list(AuditRecord.objects.order_by("-seq")[: max(0, count)])
        for row in reversed(rows):
            target = " ".join(part for part in (row.target_type, row.target_id, row.target_label) if part)
            self.stdout.write(
                f"#{row.seq}  {timezone.localtime(row.occurred_at):%Y-%m-%d %H:%M:%S}  {row.outcome:<7}  "
                f"{row.actor_label or row.actor_kind}  {row.action}  {target or '-'}  "
                f"{row.ip or '-'}  {row.request_id or '-'}"
            )
