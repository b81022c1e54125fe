"""`dgov licences`: the licence catalogue, bulk issuance, listing, status-list publication, re-indexing.

::

    dgov licences types load FILE [--dry-run] [--json] [--province CODE] [--as USERNAME]   # all or nothing
    dgov licences types list
    dgov licences issue --type CODE --issuer DEPT FILE.csv [--alg ES256|SM2] [--as USERNAME] [--json]
    dgov licences list [--type CODE] [--issuer DEPT] [--status valid|suspended|revoked] [--limit N]
    dgov licences publish            # publish the due status lists now (the worker does it periodically)
    dgov licences reindex            # write every licence's record to the e-licence base library
    dgov licences trust sync [--peer CODE]   # fetch peers' trust lists now (互认; the worker does it periodically)
    dgov licences trust list [--json]        # the issuers recognized through peers' trust lists
    dgov licences trust show                 # this instance's trust list (the signed payload, decoded)

Without ``--as`` the command acts as the system actor ``system:cli:<user>``; with ``--as`` it acts
as that user, whose rights the services check. ``issue`` checks every row first and issues
nothing when any is bad (exit status 1, every bad row listed with its line and column).
"""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from dgov.kernel.management.subcommands import SubcommandCommand, progress_bar
from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.licenses import access, bulk, catalogue, credentials, index
from dgov.licenses.models import Licence, LicenceType


class Command(SubcommandCommand):
    """E-licences: types load|list, issue (bulk CSV), list, publish, reindex, trust sync|list|show."""

    help = "E-licences (电子证照): types load|list, issue, list, publish, reindex, trust."

    SUBCOMMANDS = {
        "types": ("add_types_arguments", "handle_types", "licence catalogue: load, list (证照目录)"),
        "issue": ("add_issue_arguments", "handle_issue", "bulk issuance from a CSV file (批量签发)"),
        "list": ("add_list_arguments", "handle_list", "list licences (证照列表)"),
        "publish": ("add_nothing", "handle_publish", "publish due status lists now (发布状态列表)"),
        "reindex": ("add_nothing", "handle_reindex", "write the e-licence base library index (证照索引)"),
        "trust": ("add_trust_arguments", "handle_trust", "trust lists of peer instances: sync, list, show (互认)"),
    }

    # --- types ----------------------------------------------------------------------------------

    def add_types_arguments(self, parser) -> None:
        """``types load FILE`` / ``types list``."""
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        load = actions.add_parser("load", help="load a YAML/JSON licence catalogue, all or nothing (导入证照目录)")
        load.add_argument("file", metavar="FILE", help="a .yaml/.yml or .json catalogue (docs/licences.md)")
        load.add_argument("--dry-run", action="store_true", help="check only, write nothing (试运行)")
        load.add_argument("--json", action="store_true", help="print the report as JSON")
        load.add_argument("--province", metavar="CODE", help="province whose departments kinds resolve to")
        self.add_identity_argument(load)
        actions.add_parser("list", help="list licence types (证照类型列表)")

    def handle_types(self, **options):
        """Dispatch ``types`` actions."""
        if options["action"] == "list":
            for licence_type in LicenceType.objects.select_related("department").order_by("code"):
                self.stdout.write(
                    f"{licence_type.code}\t{licence_type.name}\t{licence_type.department.code}\t"
                    f"{licence_type.holder_kind}\tv{licence_type.version}\t{licence_type.status}"
                )
            return
        actor = self.acting_user(options)
        try:
            entries = catalogue.read_type_file(options["file"])
        except catalogue.TypeSetError as exc:
            raise CommandError(f"证照目录无法读取 (unreadable catalogue): {exc}", returncode=1) from None
        try:
            report = catalogue.load_types(
                entries,
                actor=actor,
                source=options["file"],
                dry_run=options["dry_run"],
                province_code=options.get("province"),
            )
        except PermissionDenied as exc:
            raise CommandError(f"无权维护证照目录 (refused): {exc}", returncode=1) from None
        self.write_load_report(
            report, options, rejected=f"证照目录有 {len(report.errors)} 处错误，未写入 (catalogue rejected)"
        )

    # --- issue ----------------------------------------------------------------------------------

    def add_issue_arguments(self, parser) -> None:
        """Arguments of ``dgov licences issue``."""
        parser.add_argument("file", metavar="FILE.csv", help="CSV file, first line the column names (docs/licences.md)")
        parser.add_argument("--type", required=True, metavar="CODE", help="licence type code")
        parser.add_argument("--issuer", required=True, metavar="DEPT", help="issuing department code")
        parser.add_argument("--alg", choices=["ES256", "SM2"], help="signature algorithm (default: settings)")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        self.add_identity_argument(parser)

    def handle_issue(self, **options):
        """Issue every row of a CSV file, all or nothing, with a progress bar."""
        actor = self.acting_user(options)
        licence_type = LicenceType.objects.filter(code=options["type"].strip().upper()).first()
        if licence_type is None:
            raise CommandError(f"证照类型 {options['type']} 不存在 (no such licence type)")
        issuer = Organization.objects.select_related("division").filter(code=options["issuer"]).first()
        if issuer is None:
            raise CommandError(f"部门 {options['issuer']} 不存在 (no such department)")
        try:
            with open(options["file"], "rb") as handle:
                data = handle.read(bulk.MAX_BYTES + 1)
        except OSError as exc:
            raise CommandError(f"无法读取文件 (cannot read) {options['file']}: {exc.strerror}") from None
        with progress_bar(self.stdout) as bar:
            task = bar.add_task(f"签发 {licence_type.name}", total=None)
            try:
                report = bulk.issue_csv(
                    licence_type,
                    data,
                    issuer=issuer,
                    actor=actor,
                    source=f"import:{options['file']}"[-64:],
                    alg=options.get("alg"),
                    start=lambda total: bar.update(task, total=total),
                    progress=lambda n: bar.advance(task, n),
                )
            except PermissionDenied as exc:
                raise CommandError(f"无权签发 (refused): {exc}", returncode=1) from None
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(report.to_text())
        if not report.ok:
            raise CommandError(f"文件有 {len(report.problems)} 处错误，未签发 (nothing issued)", returncode=1)

    # --- list -----------------------------------------------------------------------------------

    def add_list_arguments(self, parser) -> None:
        """Arguments of ``dgov licences list``."""
        parser.add_argument("--type", metavar="CODE", help="only this licence type")
        parser.add_argument("--issuer", metavar="DEPT", help="only this issuing department (code)")
        parser.add_argument("--status", choices=Licence.Status.values, help="only this status")
        parser.add_argument("--limit", type=int, default=100, metavar="N", help="at most N licences (default 100)")

    def handle_list(self, **options):
        """Print licences, newest first: identifier, type, number, masked holder, issuer, validity, status."""
        licences = Licence.objects.select_related("licence_type", "issuer").order_by("-issued_at", "-id")
        if options.get("type"):
            licences = licences.filter(licence_type__code=options["type"].strip().upper())
        if options.get("issuer"):
            licences = licences.filter(issuer__code=options["issuer"])
        if options.get("status"):
            licences = licences.filter(status=options["status"])
        for licence in licences[: max(0, options["limit"])]:
            holder, holder_id = access.masked_holder_name(licence), access.masked_holder_id(licence)
            until = licence.valid_until.isoformat() if licence.valid_until else "长期"
            self.stdout.write(
                f"{licence.identifier}\t{licence.licence_type.name}\t{licence.number}\t{holder}\t{holder_id}\t"
                f"{licence.issuer.code}\t{licence.valid_from.isoformat()}..{until}\t{licence.status}"
            )

    # --- publish, reindex -----------------------------------------------------------------------

    def handle_publish(self, **options):
        """Publish every due status list (``credentials.publish_due``)."""
        count = credentials.publish_due()
        self.stdout.write(f"已发布 {count} 个状态列表 (status lists published)")

    def handle_reindex(self, **options):
        """Write the index record of every licence to the e-licence base library."""
        if index.installed() is None:
            message = "电子证照基础库未安装 (licence.index is not installed): dgov registry install"
            raise CommandError(message, returncode=1)
        with progress_bar(self.stdout) as bar:
            task = bar.add_task("证照索引", total=Licence.objects.count())
            written = index.reindex(progress=lambda n: bar.advance(task, n))
        self.stdout.write(f"已写入 {written} 条证照索引 (index records written)")

    # --- trust (互认) -----------------------------------------------------------------------------

    def add_trust_arguments(self, parser) -> None:
        """``trust sync [--peer CODE]`` / ``trust list [--json]`` / ``trust show``."""
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        sync = actions.add_parser("sync", help="fetch and apply peers' trust lists now; exit 1 on failure (同步)")
        sync.add_argument("--peer", metavar="CODE", help="one peer (default: every active peer)")
        listing = actions.add_parser("list", help="issuers recognized through peers' trust lists (互认签发机构)")
        listing.add_argument("--json", action="store_true", help="print JSON")
        actions.add_parser("show", help="this instance's trust list, decoded (本平台信任列表)")

    def handle_trust(self, **options):
        """Dispatch ``trust`` actions."""
        from dgov.exchange import federation
        from dgov.exchange.models import Peer
        from dgov.licenses import trust
        from dgov.oidc import jose

        action = options["action"]
        if action == "sync":
            if options.get("peer"):
                peer = federation.find_peer(options["peer"])
                if peer is None:
                    raise CommandError(f"级联对端 {options['peer']} 不存在 (no such peer)")
                peers = [peer]
            else:
                peers = list(Peer.objects.filter(status=Peer.Status.ACTIVE).order_by("code"))
            failed = False
            for peer in peers:
                report = trust.sync_peer(peer, actor=audit.cli_actor())
                failed = failed or not report.ok
                self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False))
            if failed:
                raise CommandError("信任列表同步失败 (trust list sync failed)", returncode=1)
        elif action == "list":
            rows = [
                {
                    "peer": item.peer.code,
                    "issuer": row.issuer_id,
                    "name": row.name,
                    "uscc": row.uscc,
                    "status": row.status,
                    "sequence": row.list_version,
                    "kids": [k.get("kid") for k in (row.jwks or {}).get("keys", [])],
                    "types": [t.get("code") for t in row.licence_types or []],
                    "valid_until": row.valid_until.isoformat() if row.valid_until else None,
                }
                for item in trust.peer_overview()
                for row in item.issuers
            ]
            if options["json"]:
                self.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2))
                return
            for row in rows:
                self.stdout.write(
                    f"{row['peer']}\t{row['uscc']}\t{row['name']}\t{row['status']}\tv{row['sequence']}\t{row['issuer']}"
                )
        else:
            document = trust.signed_trust_list()
            payload = json.loads(jose.b64url_decode(document["payload"]))
            self.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2))
