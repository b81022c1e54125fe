"""``dgov link``: link or deduplicate CSV files or registries; list stored runs; generate the benchmark.

``dgov link --config link.yaml`` writes the scored pairs, the clusters and, when configured, golden
records and conflicts (format: docs/linkage.md). ``--truth truth.csv`` also prints precision,
recall and F1. ``dgov link --generate DIR`` writes the synthetic two-department benchmark (or,
with ``--dedupe N``, a table with duplicates) together with its truth and a ready config.

Over registries (stored runs, 数据比对)::

    dgov link run SETTINGS.yaml [--as USERNAME]     # also: dgov link --registry-config SETTINGS.yaml
    dgov link run --demo                             # the shipped 人口 × 社保参保 example
    dgov link runs [--limit N]                       # the latest stored runs

Without ``--as`` a run acts as the system actor ``system:cli:<user>``; with ``--as`` as that user,
whose rights the services check (only provincial data administrators may start runs).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from dgov.kernel.management.subcommands import SubcommandCommand, progress_bar
from dgov.linkage import services, synth
from dgov.linkage.config import LinkageConfigError
from dgov.linkage.engine import LinkageInputError
from dgov.linkage.models import LinkageRun

ACTIONS = ("run", "runs")


def _size(value: str) -> tuple[int, int]:
    """Parse ``20000x16000`` into (left rows, right rows)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", value)
    if not match:
        raise ValueError(value)
    return int(match.group(1)), int(match.group(2))


class Command(BaseCommand):
    """Entity resolution over CSV files."""

    help = (
        "实体识别：按 YAML 配置链接或去重 CSV 文件（--config）或信息库（run FILE / --registry-config FILE），"
        "列出已保存的比对（runs），或生成带标注的合成基准数据（--generate）"
    )

    def add_arguments(self, parser):
        """Declare the options."""
        parser.add_argument(
            "action", nargs="?", choices=ACTIONS, help=_("run：按设置文件比对信息库并保存结果；runs：列出已保存的比对")
        )
        parser.add_argument("file", nargs="?", metavar="SETTINGS.yaml", help=_("run：信息库比对设置文件"))
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--config", metavar="LINK.YAML", help=_("链接配置文件（格式见 docs/linkage.md）"))
        action.add_argument("--generate", metavar="DIR", help=_("在目录中生成合成基准数据、真值和配置文件"))
        action.add_argument(
            "--registry-config", metavar="SETTINGS.yaml", help=_("比对信息库并保存结果（同 run SETTINGS.yaml）")
        )
        parser.add_argument("--demo", action="store_true", help=_("run：使用内置示例设置（人口 × 社保参保）"))
        parser.add_argument(
            "--as", dest="as_user", metavar="USERNAME", help=_("run：以该用户身份发起（默认 system:cli）")
        )
        parser.add_argument("--limit", type=int, default=20, help=_("runs：列出的条数，默认 20"))
        parser.add_argument("--truth", metavar="TRUTH.CSV", help=_("用真值文件计算精确率、召回率和 F1"))
        parser.add_argument("--summary", metavar="FILE.json", help=_("把计数、用时和训练出的模型写入 JSON 文件"))
        parser.add_argument("--size", default="20000x16000", help=_("--generate：两个部门的记录数，默认 20000x16000"))
        parser.add_argument("--dedupe", type=int, metavar="N", help=_("--generate：改为生成 N 条含重复的单表"))
        parser.add_argument("--seed", type=int, default=36344, help=_("--generate：随机种子（相同种子结果相同）"))

    def handle(self, *args, **options):
        """Run the config, run over registries, list runs, or generate the benchmark."""
        chosen = [name for name in ("config", "generate", "registry_config") if options.get(name)] + (
            [options["action"]] if options.get("action") else []
        )
        if len(chosen) != 1:
            raise CommandError(
                _("请给出其中之一：--config LINK.YAML、--generate DIR、run SETTINGS.yaml（或 --registry-config）、runs")
            )
        if options["generate"]:
            return self.handle_generate(options)
        if options.get("action") == "runs":
            return self.handle_runs(options)
        if options.get("action") == "run" or options.get("registry_config"):
            return self.handle_registry_run(options)
        bar = progress_bar(self.stdout)
        task = bar.add_task(_("实体识别"), total=None)

        def progress(description: str, done: int, total: int) -> None:
            bar.update(task, description=description, completed=done, total=total)

        try:
            with bar:
                report = services.run_job(
                    options["config"], progress=progress, truth=options["truth"], summary_path=options["summary"]
                )
        except (LinkageConfigError, LinkageInputError) as exc:
            raise CommandError(str(exc)) from None
        except (OSError, ValueError, duckdb.Error) as exc:
            raise CommandError(_("实体识别失败：%(error)s") % {"error": exc}) from None
        counts = report.counts
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "实体识别完成：记录 %(records)d 条，候选对 %(candidates)d，确定性匹配 %(deterministic)d，"
                    "接受的匹配对 %(accepted)d，实体（聚类）%(clusters)d 个，用时 %(seconds).2f 秒"
                )
                % {
                    "records": counts["records"],
                    "candidates": counts["candidate_pairs"],
                    "deterministic": counts["deterministic_pairs"],
                    "accepted": counts["accepted_pairs"],
                    "clusters": counts["clusters"],
                    "seconds": report.seconds,
                }
            )
        )
        if "golden" in report.outputs:
            self.stdout.write(
                _("黄金记录 %(records)d 条，冲突 %(conflicts)d 处")
                % {"records": report.golden_records, "conflicts": report.conflicts}
            )
        for kind, path in report.outputs.items():
            self.stdout.write(f"  {kind}: {path}")
        if report.scores is not None:
            scores = report.scores
            self.stdout.write(
                _("对照真值：精确率 %(precision).4f，召回率 %(recall).4f，F1 %(f1).4f")
                % {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}
            )

    def handle_generate(self, options) -> None:
        """Write the synthetic benchmark into the directory."""
        directory = options["generate"]
        if options["dedupe"]:
            if options["dedupe"] < 10:
                raise CommandError(_("--dedupe 至少为 10"))
            benchmark = synth.generate_dedupe(options["dedupe"], seed=options["seed"])
            paths = benchmark.write(directory)
            rows = len(benchmark.rows)
        else:
            try:
                left, right = _size(options["size"])
            except ValueError:
                raise CommandError(_("--size 应写作 左表记录数x右表记录数，例如 20000x16000")) from None
            if min(left, right) < 10:
                raise CommandError(_("--size：每张表至少 10 条记录"))
            benchmark = synth.generate_link(left, right, seed=options["seed"])
            paths = benchmark.write(directory)
            rows = left + right
        self.stdout.write(
            self.style.SUCCESS(
                _("已生成 %(rows)d 条记录和真值，配置文件：%(config)s") % {"rows": rows, "config": paths["config"]}
            )
        )

    def _bar(self):
        """A progress bar shown only on a terminal, and the ``progress(description, done, total)`` feeding it."""
        bar = progress_bar(self.stdout)
        task = bar.add_task(_("数据比对"), total=None)

        def progress(description: str, done: int, total: int) -> None:
            bar.update(task, description=description, completed=done, total=total)

        return bar, progress

    def handle_registry_run(self, options) -> None:
        """Run a settings file over registries, store the run, print its figures; CommandError when it failed."""
        path = options.get("registry_config") or options.get("file")
        if options["demo"]:
            if path:
                raise CommandError(_("--demo 与设置文件只能给出其一"))
            path = str(services.DEMO_SETTINGS)
        if not path:
            raise CommandError(_("run：请给出设置文件（dgov link run SETTINGS.yaml）或 --demo"))
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CommandError(_("设置文件 %(path)s 不存在") % {"path": path}) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(_("无法读取设置文件 %(path)s：%(error)s") % {"path": path, "error": exc}) from None
        actor = SubcommandCommand.acting_user(options)
        bar, progress = self._bar()
        try:
            settings = services.parse_settings_text(text)
            with bar:
                run = services.run_settings_now(settings, actor=actor, progress=progress)
        except LinkageConfigError as exc:
            raise CommandError(str(exc)) from None
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        if run.status != LinkageRun.Status.SUCCEEDED:
            raise CommandError(_("数据比对 #%(id)d 失败：%(error)s") % {"id": run.pk, "error": run.error})
        metrics = run.metrics
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "数据比对 #%(id)d“%(name)s”完成：记录 %(records)d 条，候选对 %(candidates)d，匹配对 %(matches)d，"
                    "实体（聚类）%(clusters)d 个，黄金记录 %(golden)d 条，冲突 %(conflicts)d 处，用时 %(seconds).2f 秒"
                )
                % {
                    "id": run.pk,
                    "name": run.name,
                    "records": metrics["records_total"],
                    "candidates": metrics["candidate_pairs"],
                    "matches": metrics["matches"],
                    "clusters": metrics["clusters"],
                    "golden": metrics["golden_records"],
                    "conflicts": metrics["conflicts"],
                    "seconds": metrics["seconds"].get("total", 0.0),
                }
            )
        )
        for name, count in metrics["records"].items():
            self.stdout.write(f"  {name} ({metrics['tables'][name]}): {count}")
        for finding in metrics["findings"]:
            self.stdout.write(
                _("  整改工单 %(order)s：%(registry)s.%(field)s，%(count)d 条，%(department)s")
                % {
                    "order": finding["order"] or "—",
                    "registry": finding["registry"],
                    "field": finding["field"],
                    "count": finding["count"],
                    "department": finding["department_name"],
                }
            )
        for item in metrics["cleared"]:
            self.stdout.write(_("  已办结：%(registry)s.%(field)s") % item)

    def handle_runs(self, options) -> None:
        """List the latest stored runs."""
        runs = LinkageRun.objects.order_by("-requested_at", "-id")[: max(1, options["limit"])]
        if not runs:
            self.stdout.write(_("尚无数据比对。"))
            return
        for run in runs:
            metrics = run.metrics or {}
            figures = (
                _("黄金记录 %(golden)s，冲突 %(conflicts)s")
                % {"golden": metrics.get("golden_records", "—"), "conflicts": metrics.get("conflicts", "—")}
                if run.status == LinkageRun.Status.SUCCEEDED
                else (run.error[:80] if run.error else "")
            )
            self.stdout.write(
                f"#{run.pk}\t{run.name}\t{run.mode}/{run.entity}\t{run.status}\t"
                f"{run.requested_at:%Y-%m-%d %H:%M}\t{run.requested_by}\t{figures}"
            )
