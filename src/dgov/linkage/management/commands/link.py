"""``dgov link``: link or deduplicate CSV files as a YAML config says; generate the labelled benchmark.

``dgov link --config link.yaml`` writes the scored pairs, the clusters and, when configured, golden
records and conflicts (format: docs/linkage.md). ``--truth truth.csv`` also prints precision,
recall and F1. ``dgov link --generate DIR`` writes the synthetic two-department benchmark (or,
with ``--dedupe N``, a table with duplicates) together with its truth and a ready config.
"""

from __future__ import annotations

import re

import duckdb
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dgov.linkage import services, synth
from dgov.linkage.config import LinkageConfigError
from dgov.linkage.engine import LinkageInputError


def _size(value: str) -> tuple[int, int]:
    """Parse ``20000x16000`` into (left rows, right rows)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", value)
    if not match:
        raise ValueError(value)
    return int(match.group(1)), int(match.group(2))


class Command(BaseCommand):
    """Entity resolution over CSV files."""

    help = "实体识别：按 YAML 配置链接或去重 CSV 文件（--config），或生成带标注的合成基准数据（--generate）"

    def add_arguments(self, parser):
        """Declare the options."""
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--config", metavar="LINK.YAML", help=_("链接配置文件（格式见 docs/linkage.md）"))
        action.add_argument("--generate", metavar="DIR", help=_("在目录中生成合成基准数据、真值和配置文件"))
        parser.add_argument("--truth", metavar="TRUTH.CSV", help=_("用真值文件计算精确率、召回率和 F1"))
        parser.add_argument("--summary", metavar="FILE.json", help=_("把计数、用时和训练出的模型写入 JSON 文件"))
        parser.add_argument("--size", default="20000x16000", help=_("--generate：两个部门的记录数，默认 20000x16000"))
        parser.add_argument("--dedupe", type=int, metavar="N", help=_("--generate：改为生成 N 条含重复的单表"))
        parser.add_argument("--seed", type=int, default=36344, help=_("--generate：随机种子（相同种子结果相同）"))

    def handle(self, *args, **options):
        """Run the config or generate the benchmark."""
        if options["generate"]:
            return self.handle_generate(options)
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=not self.stdout.isatty(),
        )
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
