"""`dgov registry`: work with registries from the command line (import, export, …).

Acting identity: ``--as USERNAME`` acts as that official, for the official's department (a
``--source`` given with it must be that same department); ``--source ORGCODE`` alone acts as the
system actor ``system:cli`` on behalf of that department — for operators with shell access to the
server, who are trusted like the server itself. Either way the department must be an authority of
the imported fields (import) or allowed to read the registry (export), and the work is audited.

Subcommands live in ``SUBCOMMANDS`` (name → (arguments method, handler method, help)); add one by
writing its two methods and one entry there.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.management.base import CommandError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from dgov.kernel.management.subcommands import SubcommandCommand
from dgov.registry import io as registry_io
from dgov.registry import libraries

CLI_ACTOR = "system:cli"
REPORT_ERRORS_SHOWN = 200


class Command(SubcommandCommand):
    """Registry operations: ``import`` a CSV/xlsx/JSON Lines file, ``export`` records, ``install`` libraries."""

    help = "Registry operations (信息库操作): import, export, install."

    # subcommand → (method adding its arguments, method running it, help text)
    SUBCOMMANDS = {
        "import": ("add_import_arguments", "handle_import", "import a CSV/xlsx/JSON Lines file (导入)"),
        "export": ("add_export_arguments", "handle_export", "export records as CSV/xlsx/JSON Lines (导出)"),
        "install": ("add_install_arguments", "handle_install", "install the shipped library definitions (安装信息库)"),
    }

    # --- shared helpers ---------------------------------------------------------------------

    @staticmethod
    def add_identity_arguments(parser) -> None:
        """``--as`` and ``--source``: who acts, for which department."""
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="act as this official (用户名)")
        parser.add_argument(
            "--source",
            metavar="ORGCODE",
            help="department code (部门编码); without --as the actor is the system actor system:cli",
        )

    def resolve_actor(self, options):
        """The acting user (``--as``) or the CLI system actor; refuses when neither identifies a department."""
        username = options.get("as_user")
        if username:
            return self.active_user(username)
        if not options.get("source"):
            raise CommandError("请用 --as USERNAME 或 --source ORGCODE 指明操作身份 (give --as or --source)")
        return CLI_ACTOR

    def progress_bar(self, description: str):
        """A rich progress bar on a terminal, silent otherwise; returns (context manager, callback)."""
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=not self.stdout.isatty(),
        )
        task = bar.add_task(description, total=None)

        def callback(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=max(total, done) if total else None)

        return bar, callback

    # --- import -----------------------------------------------------------------------------

    def add_import_arguments(self, parser) -> None:
        """Arguments of ``dgov registry import``."""
        parser.add_argument("registry", metavar="REGISTRY", help="registry code, e.g. population.person")
        parser.add_argument("file", metavar="FILE", help="a .csv, .xlsx or .jsonl file")
        parser.add_argument("--mapping", metavar="FILE.json", help="JSON object: column header → field name")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="列名=字段",
            help="map one column to a field (repeatable); 列名= ignores the column",
        )
        parser.add_argument("--format", choices=registry_io.IMPORT_FORMATS, help="file format (default: by extension)")
        parser.add_argument("--encoding", help="CSV text encoding (default: detected; UTF-8 or GB18030)")
        parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing (试运行)")
        parser.add_argument("--report", metavar="FILE", help="also write the report to FILE (.json: JSON, else text)")
        self.add_identity_arguments(parser)

    def handle_import(self, **options):
        """Import a file; print the report; exit status 1 when the file has bad rows."""
        actor = self.resolve_actor(options)
        mapping: dict[str, str] = {}
        if options.get("mapping"):
            try:
                loaded = json.loads(Path(options["mapping"]).read_text(encoding="utf-8-sig"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"无法读取映射文件 (cannot read the mapping file): {exc}") from None
            if not isinstance(loaded, dict) or not all(isinstance(v, str | None) for v in loaded.values()):
                raise CommandError('映射文件应为 {"列名": "字段名"} 形式的 JSON 对象 (mapping must be an object)')
            mapping.update({str(k): v or "" for k, v in loaded.items()})
        try:
            mapping.update(registry_io.parse_mapping(options.get("map") or []))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"文件不存在 (no such file): {path}")
        bar, callback = self.progress_bar(f"导入 {path.name}")
        try:
            with bar:
                report = registry_io.import_file(
                    options["registry"],
                    path,
                    mapping=mapping or None,
                    actor=actor,
                    source=options.get("source") or None,
                    fmt=options.get("format"),
                    encoding=options.get("encoding"),
                    progress=callback,
                    dry_run=options["dry_run"],
                )
        except ObjectDoesNotExist as exc:
            raise CommandError(f"信息库 {options['registry']} 不存在 (no such registry): {exc}") from None
        except PermissionDenied as exc:
            raise CommandError(f"无权导入 (refused): {exc}") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(report.to_text(limit=REPORT_ERRORS_SHOWN))
        if options.get("report"):
            target = Path(options["report"])
            text = report.to_json() if target.suffix.lower() == ".json" else report.to_text()
            target.write_text(text + "\n", encoding="utf-8")
        if not report.ok:
            raise CommandError(
                f"导入失败：{report.bad_rows} 行有错误，共 {len(report.errors)} 处，未写入任何数据 (import rejected)",
                returncode=1,
            )

    # --- export -----------------------------------------------------------------------------

    def add_export_arguments(self, parser) -> None:
        """Arguments of ``dgov registry export``."""
        parser.add_argument("registry", metavar="REGISTRY", help="registry code, e.g. population.person")
        parser.add_argument("file", metavar="FILE", help="output file (.csv, .xlsx or .jsonl)")
        parser.add_argument("--format", choices=registry_io.EXPORT_FORMATS, help="default: from the file extension")
        parser.add_argument("--unmask", action="store_true", help="personal fields unmasked (authorized, audited)")
        parser.add_argument("--labels", action="store_true", help="CSV/xlsx header of field labels instead of names")
        parser.add_argument("--with-uid", action="store_true", help="add the record identifier column uid")
        parser.add_argument(
            "--filter", action="append", default=[], metavar="FIELD=VALUE", help="only matching records (repeatable)"
        )
        self.add_identity_arguments(parser)

    def handle_export(self, **options):
        """Export a registry's records to a file."""
        actor = self.resolve_actor(options)
        path = Path(options["file"])
        fmt = options.get("format") or {".xlsx": "xlsx", ".json": "json", ".jsonl": "json", ".ndjson": "json"}.get(
            path.suffix.lower(), "csv"
        )
        filters = {}
        for pair in options.get("filter") or []:
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                raise CommandError(f"筛选条件应写成 字段=值 (filter must be FIELD=VALUE): {pair}")
            filters[name.strip()] = value
        bar, callback = self.progress_bar(f"导出 {path.name}")
        try:
            with bar:
                count = registry_io.export_records(
                    options["registry"],
                    path,
                    fmt=fmt,
                    actor=actor,
                    source=options.get("source") or None,
                    filters=filters or None,
                    unmask=options["unmask"],
                    labels=options["labels"],
                    with_uid=options["with_uid"],
                    progress=callback,
                )
        except ObjectDoesNotExist as exc:
            raise CommandError(f"信息库 {options['registry']} 不存在 (no such registry): {exc}") from None
        except PermissionDenied as exc:
            raise CommandError(f"无权导出 (refused): {exc}") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        masked = "未脱敏" if options["unmask"] else "个人信息已脱敏"
        self.stdout.write(f"已导出 {count:,} 条记录到 {path}（{fmt}，{masked}）")

    # --- install ----------------------------------------------------------------------------

    def add_install_arguments(self, parser) -> None:
        """Arguments of ``dgov registry install``."""
        parser.add_argument(
            "--province",
            metavar="CODE",
            help="province whose departments own the registries (default: settings.DEMO_PROVINCE_CODE)",
        )
        parser.add_argument("--dir", metavar="DIR", help="library definition directory (default: the shipped one)")
        parser.add_argument("--check", action="store_true", help="only validate the definition files (检查定义)")
        parser.add_argument(
            "--update-fields",
            action="store_true",
            help="also apply changed definitions of installed fields (labels, choices, authorities) as a new version",
        )

    def handle_install(self, **options):
        """Create missing registries, publish new versions for definitions that gained fields; print what changed."""
        try:
            definitions = libraries.load_definitions(options.get("dir"))
            if options["check"]:
                self.stdout.write(f"信息库定义有效 (definitions valid): {len(definitions)} registries")
                return
            report = libraries.install_libraries(
                actor=CLI_ACTOR,
                province_code=options.get("province"),
                definitions=definitions,
                update_fields=options.get("update_fields", False),
            )
        except libraries.LibraryDefinitionError as exc:
            raise CommandError(str(exc)) from None
        except ValidationError as exc:  # SchemaError from the engine, e.g. an invalid registry code
            raise CommandError("；".join(exc.messages)) from None
        for code in report.created:
            self.stdout.write(f"已创建 created  {code} v1")
        for code, version in report.upgraded.items():
            self.stdout.write(f"已升级 upgraded {code} v{version}")
        for code, fields in report.updated.items():
            self.stdout.write(f"已更新字段定义 updated {code}: {', '.join(fields)}")
        for code, fields in report.drifted.items():
            self.stdout.write(
                f"定义有差异未应用 differs (not applied; --update-fields applies it) {code}: {', '.join(fields)}"
            )
        self.stdout.write(
            f"信息库安装完成 (installed): {len(report.created)} created, {len(report.upgraded)} upgraded, "
            f"{len(report.unchanged)} unchanged"
        )
