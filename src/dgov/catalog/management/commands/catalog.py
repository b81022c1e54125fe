"""`dgov catalog`: the information resource catalogue from the command line.

Subcommands: ``import`` (CSV/xlsx, all or nothing, a report of every bad row), ``export`` (the
import layout; DCAT-AP JSON-LD or Turtle with ``--dcat``), ``publish`` (data administrators
publish drafts or submissions, e.g. after an import), ``classes`` (install the standard
classification), ``reindex`` (rebuild the search index) and ``demo`` (seed the demo catalogue).

Acting identity as in ``dgov registry``: ``--as USERNAME`` acts as that official (for the
official's department); ``--source ORGCODE`` alone acts as the system actor ``system:cli`` for that
department (operators with shell access). Publishing needs ``--as`` a data administrator.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.management.base import CommandError

from dgov.catalog import dcat, search, services
from dgov.catalog import io as catalog_io
from dgov.catalog.models import InformationResource
from dgov.kernel.management.subcommands import SubcommandCommand
from dgov.kernel.models import Organization
from dgov.kernel.services import audit


class Command(SubcommandCommand):
    """Catalogue operations: import, export, publish, classes, reindex, demo."""

    help = "Information resource catalogue (政务信息资源目录): import, export, publish, classes, reindex, demo."

    SUBCOMMANDS = {
        "import": ("add_import_arguments", "handle_import", "import entries from CSV/xlsx (导入，全部或全不)"),
        "export": ("add_export_arguments", "handle_export", "export entries (导出; --dcat jsonld|ttl)"),
        "publish": ("add_publish_arguments", "handle_publish", "publish drafts/submissions (数据管理员发布)"),
        "classes": ("add_nothing", "handle_classes", "install the standard classification (安装资源分类)"),
        "reindex": ("add_nothing", "handle_reindex", "rebuild the search index (重建检索索引)"),
        "demo": ("add_demo_arguments", "handle_demo", "seed the demo catalogue (演示目录)"),
    }

    # --- identity ---------------------------------------------------------------------------

    @staticmethod
    def add_identity_arguments(parser) -> None:
        """``--as`` and ``--source``."""
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="act as this official (用户名)")
        parser.add_argument("--source", metavar="ORGCODE", help="department code; without --as acts as system:cli")

    def resolve(self, options):
        """(actor, provider department or None)."""
        username = options.get("as_user")
        provider = None
        if options.get("source"):
            provider = Organization.objects.filter(code=options["source"]).first()
            if provider is None:
                raise CommandError(f"部门 {options['source']} 不存在 (no such department)")
        if username:
            try:
                user = get_user_model().objects.get(username=username, is_active=True)
            except ObjectDoesNotExist:
                raise CommandError(f"用户 {username} 不存在或已停用 (no such active user)") from None
            return user, provider
        if provider is None:
            raise CommandError("请用 --as USERNAME 或 --source ORGCODE 指明操作身份 (give --as or --source)")
        return audit.cli_actor(), provider

    def add_nothing(self, parser) -> None:
        """No arguments."""

    # --- import / export --------------------------------------------------------------------

    def add_import_arguments(self, parser) -> None:
        """Arguments of ``dgov catalog import``."""
        parser.add_argument("file", metavar="FILE", help="a .csv or .xlsx file (layout: docs/catalog.md)")
        parser.add_argument("--report", metavar="FILE", help="also write the report to FILE")
        self.add_identity_arguments(parser)

    def handle_import(self, **options):
        """Import a file as drafts; exit status 1 (nothing written) when any row is bad."""
        actor, provider = self.resolve(options)
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"文件不存在 (no such file): {path}")
        try:
            report = catalog_io.import_entries(path, actor=actor, provider=provider)
        except PermissionDenied as exc:
            raise CommandError(f"无权导入 (refused): {exc}") from None
        text = report.to_text()
        self.stdout.write(text)
        if options.get("report"):
            Path(options["report"]).write_text(text + "\n", encoding="utf-8")
        if not report.ok:
            raise CommandError(f"导入失败：{len(report.errors)} 处错误，未写入任何数据 (import rejected)", returncode=1)

    def add_export_arguments(self, parser) -> None:
        """Arguments of ``dgov catalog export``."""
        parser.add_argument("file", metavar="FILE", help="output file (.csv, .xlsx, .jsonld, .ttl)")
        parser.add_argument("--dcat", choices=("jsonld", "ttl"), help="DCAT-AP of the published catalogue")
        parser.add_argument("--provider", metavar="ORGCODE", help="only this department's entries")

    def handle_export(self, **options):
        """Export working copies in the import layout, or the published catalogue as DCAT-AP."""
        path = Path(options["file"])
        fmt = options.get("dcat") or {".jsonld": "jsonld", ".ttl": "ttl"}.get(path.suffix.lower())
        if fmt:
            resources = services.visible_resources().order_by("code")
            if options.get("provider"):
                resources = resources.filter(provider__code=options["provider"])
            nodes = [dcat.dataset_node(r.published_version.snapshot, quality_score=r.quality_score) for r in resources]
            document = dcat.catalog_document(nodes)
            text = dcat.to_jsonld(document) if fmt == "jsonld" else dcat.to_turtle(document)
            path.write_text(text, encoding="utf-8")
            self.stdout.write(f"已导出 {len(nodes)} 条已发布信息资源（DCAT-AP {fmt}）到 {path}")
            return
        resources = InformationResource.objects.exclude(status=InformationResource.Status.RETIRED)
        if options.get("provider"):
            resources = resources.filter(provider__code=options["provider"])
        count = catalog_io.export_entries(path, resources.select_related("classification").order_by("code"))
        self.stdout.write(f"已导出 {count} 条信息资源到 {path}")

    # --- publish ----------------------------------------------------------------------------

    def add_publish_arguments(self, parser) -> None:
        """Arguments of ``dgov catalog publish``."""
        parser.add_argument("codes", nargs="*", metavar="CODE", help="resource codes (default: see --all-drafts)")
        parser.add_argument("--provider", metavar="ORGCODE", help="with --all-drafts: this department's drafts")
        parser.add_argument("--all-drafts", action="store_true", help="every draft/submission the admin covers")
        parser.add_argument("--note", default="", help="publication note (required when conflicts exist)")
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", required=True, help="a data administrator")

    def handle_publish(self, **options):
        """Publish the named entries (or all drafts and submissions) as a data administrator."""
        actor, _provider = self.resolve(options)
        if options["codes"]:
            resources = []
            for code in options["codes"]:
                resource = services.find_resource(code)
                if resource is None:
                    raise CommandError(f"信息资源 {code} 不存在 (no such entry)")
                resources.append(resource)
        elif options["all_drafts"]:
            qs = InformationResource.objects.filter(
                status__in=(InformationResource.Status.DRAFT, InformationResource.Status.SUBMITTED)
            )
            if options.get("provider"):
                qs = qs.filter(provider__code=options["provider"])
            resources = list(qs.select_related("provider__division").order_by("code"))
        else:
            raise CommandError("请给出信息资源代码或 --all-drafts (give codes or --all-drafts)")
        published, failed = 0, []
        for resource in resources:
            try:
                services.publish(resource, actor=actor, note=options["note"])
                published += 1
            except (PermissionDenied, ValidationError) as exc:
                message = "；".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                failed.append(f"{resource.code}: {message}")
        self.stdout.write(f"已发布 {published} 条信息资源")
        for line in failed:
            self.stderr.write(f"未发布 {line}")
        if failed:
            raise CommandError(f"{len(failed)} 条未发布 (not published)", returncode=1)

    # --- maintenance ------------------------------------------------------------------------

    def handle_classes(self, **options):
        """Install the standard classification."""
        from django.db import transaction

        with transaction.atomic():
            made = services.ensure_standard_classes(actor=audit.cli_actor())
        self.stdout.write(f"已安装 {made} 个资源分类")

    def handle_reindex(self, **options):
        """Rebuild the search index from the published versions."""
        count = search.rebuild_index()
        self.stdout.write(f"已重建检索索引：{count} 条信息资源")

    def add_demo_arguments(self, parser) -> None:
        """Arguments of ``dgov catalog demo``."""
        parser.add_argument("--province", default=settings.DEMO_PROVINCE_CODE, help="GB/T 2260 province code")

    def handle_demo(self, **options):
        """Seed the demo catalogue (idempotent)."""
        from dgov.catalog import demo

        self.stdout.write(demo.seed(province_code=options["province"]).summary())
