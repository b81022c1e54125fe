"""`dgov exchange`: the exchange log and grants from the command line.

``verify`` checks the exchange log's hash chain and signed checkpoints (exit status 1 on a
problem), ``checkpoint`` signs one at the head, ``expire`` marks and audits grants whose period
ended (run it daily from cron), ``receipt SEQ`` prints the signed receipt of one exchange;
``service add|list|change|suspend|resume|check`` manages department data services
(``dgov.exchange.management.dataservice_cli``); ``peer add|list|suspend|resume|sync|keys``
manages federation peers (``dgov.exchange.management.federation_cli``).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from dgov.exchange import log, services
from dgov.exchange.management import dataservice_cli, federation_cli
from dgov.exchange.models import ExchangeLogEntry


class Command(BaseCommand):
    """Exchange operations: verify, checkpoint, expire, receipt, service."""

    help = "Sharing and exchange (共享交换): verify the exchange log, checkpoint, expire grants, print a receipt."

    def add_arguments(self, parser):
        """Subcommands."""
        sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        verify = sub.add_parser("verify", help="verify the exchange log (校验交换日志)")
        verify.add_argument("--json", action="store_true", help="print the report as JSON")
        sub.add_parser("checkpoint", help="sign a checkpoint at the head (签名检查点)")
        sub.add_parser("expire", help="mark grants whose period ended (授权到期处理)")
        receipt = sub.add_parser("receipt", help="print the signed receipt of an exchange (交换回执)")
        receipt.add_argument("seq", type=int)
        dataservice_cli.add_arguments(sub)
        federation_cli.add_arguments(sub)

    def handle(self, *args, **options):
        """Dispatch."""
        name = options["subcommand"]
        if name == "service":
            return dataservice_cli.handle(self, options)
        if name == "peer":
            return federation_cli.handle(self, options)
        if name == "verify":
            report = services.verify_log()
            if options["json"]:
                self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
            else:
                self.stdout.write(
                    f"entries {report.entries_checked}, checkpoints {report.checkpoints_checked}, "
                    f"last seq {report.last_seq}: {'OK' if report.ok else 'PROBLEMS'}"
                )
                for problem in report.problems:
                    self.stdout.write(f"  #{problem['seq']} {problem['kind']}: {problem['message']}")
            if not report.ok:
                raise SystemExit(1)
        elif name == "checkpoint":
            cp = log.checkpoint()
            self.stdout.write("empty log" if cp is None else f"checkpoint #{cp.seq} {cp.hash} ({cp.kid})")
        elif name == "expire":
            self.stdout.write(f"expired {services.expire_grants()} grant(s)")
        else:
            entry = ExchangeLogEntry.objects.filter(seq=options["seq"]).first()
            if entry is None:
                raise CommandError(f"no exchange-log entry {options['seq']}")
            self.stdout.write(json.dumps(services.receipt(entry), ensure_ascii=False, indent=2))
