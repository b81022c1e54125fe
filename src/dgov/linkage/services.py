"""Public operations of entity resolution: link or deduplicate, run a ``dgov link`` job, golden records.

These functions read files and compute; they change no database state, so they write no audit
record. Personal data stays in the caller's files: the pairs and clusters outputs hold only table
names, row ids, scores and agreement levels; golden records and conflicts hold the source values
the caller asked for.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from dgov.linkage import golden as golden_module
from dgov.linkage import synth
from dgov.linkage.config import LinkageConfigError, LinkJob, LinkSettings, load_config
from dgov.linkage.engine import Linker, LinkResult, Progress
from dgov.linkage.golden import GoldenResult, build_golden_records

__all__ = [
    "JobReport",
    "LinkageConfigError",
    "build_golden_records",
    "evaluate",
    "golden_records",
    "link",
    "load_config",
    "run_job",
]


def link(settings: LinkSettings, *, progress: Progress | None = None) -> LinkResult:
    """Link or deduplicate the tables of ``settings``; the caller closes the returned result."""
    return Linker(settings).run(progress=progress)


def golden_records(result: LinkResult, authority: dict[str, str]) -> GoldenResult:
    """Golden records and conflicts for every cluster of ``result`` (authority: role → table name)."""
    # (table, row id) tuples are SourceRefs' equals, so the result's keys serve as they are.
    return build_golden_records(result.clusters(), result.record_values(authority), authority)


def evaluate(result: LinkResult, truth_path: str | Path) -> synth.Scores:
    """Precision, recall and F1 against a ``truth.csv`` of the benchmark generator.

    Two-table truth (left id, right id) is compared with the accepted pairs; one-table truth
    (row id, entity) with all pairs inside the clusters, since a deduplication's answer is its
    clusters (two copies of one person linked through a third record are found, not missed).
    """
    truth, ordered = synth.read_truth(truth_path)
    if ordered:
        return synth.evaluate(result.pair_ids(), truth, ordered=True)
    clusters = [[row_id for _table, row_id in members] for members in result.clusters().values()]
    return synth.evaluate(synth.pairs_from_clusters(clusters), truth, ordered=False)


@dataclass
class JobReport:
    """What a ``dgov link`` run did: counts, timings, files written and the trained model."""

    counts: dict[str, int]
    timings: dict[str, float]
    outputs: dict[str, Path] = field(default_factory=dict)
    golden_records: int = 0
    conflicts: int = 0
    scores: synth.Scores | None = None
    summary: dict = field(default_factory=dict)
    seconds: float = 0.0


def run_job(
    job: LinkJob | str | Path,
    *,
    progress: Progress | None = None,
    truth: str | Path | None = None,
    summary_path: str | Path | None = None,
) -> JobReport:
    """Run a ``dgov link`` config: link, write pairs and clusters, golden records and conflicts if asked.

    ``job`` is a parsed :class:`LinkJob` or the path of its YAML file. With ``truth`` the accepted
    pairs are scored against a benchmark truth file; with ``summary_path`` the counts, timings and
    trained model are written there as JSON. Outputs are written under temporary names and renamed
    only when all of them are complete, so a failed run leaves the previous outputs as they were.
    """
    if not isinstance(job, LinkJob):
        job = load_config(job)
    started = time.perf_counter()
    staged: list[tuple[Path, Path]] = []

    def stage(path: Path) -> Path:
        """A temporary name next to ``path``; it replaces ``path`` once everything is written."""
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staged.append((temporary, path))
        return temporary

    try:
        with link(job.settings, progress=progress) as result:
            report = JobReport(counts=dict(result.counts), timings=dict(result.timings), summary=result.summary())
            step = time.perf_counter()
            if job.pairs_path:
                result.write_pairs(stage(job.pairs_path), min_probability=job.pairs_min_probability)
                report.outputs["pairs"] = job.pairs_path
            if job.clusters_path:
                result.write_clusters(stage(job.clusters_path))
                report.outputs["clusters"] = job.clusters_path
            report.timings["write"] = time.perf_counter() - step
            if job.golden is not None:
                step = time.perf_counter()
                golden = golden_records(result, job.golden.authority)
                report.golden_records = golden_module.write_golden_records(stage(job.golden.records), golden)
                report.outputs["golden"] = job.golden.records
                report.conflicts = len(golden.conflicts)
                if job.golden.conflicts:
                    golden_module.write_conflicts(stage(job.golden.conflicts), golden.conflicts)
                    report.outputs["conflicts"] = job.golden.conflicts
                report.timings["golden"] = time.perf_counter() - step
            if truth is not None:
                report.scores = evaluate(result, truth)
            report.summary["timings"] = {k: round(v, 3) for k, v in report.timings.items()}
        for temporary, final in staged:
            os.replace(temporary, final)
    finally:
        for temporary, _final in staged:
            temporary.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - started
    if summary_path is not None:
        payload = dict(report.summary)
        payload["seconds"] = round(report.seconds, 3)
        if report.scores is not None:
            payload["scores"] = {
                "precision": report.scores.precision,
                "recall": report.scores.recall,
                "f1": report.scores.f1,
            }
        Path(summary_path).parent.mkdir(parents=True, exist_ok=True)
        Path(summary_path).write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
        report.outputs["summary"] = Path(summary_path)
    return report
