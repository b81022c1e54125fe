"""Public operations of entity resolution: link or deduplicate, run a ``dgov link`` job, golden records.

Over files (``dgov link --config``): these functions read files and compute; they change no
database state, so they write no audit record. Personal data stays in the caller's files: the pairs
and clusters outputs hold only table names, row ids, scores and agreement levels; golden records and
conflicts hold the source values the caller asked for.

Over registries (stored runs, 数据比对): :func:`start_run` / :func:`request_run` queue a
:class:`~dgov.linkage.models.LinkageRun` for settings naming registries
(:mod:`dgov.linkage.registry_config`), :func:`execute_run` extracts the records (through
:mod:`dgov.quality.extract`, personal values decrypted in a private temporary directory only), runs
the engine, stores every cluster's golden record (values and conflicts sealed, the identifier as a
blind index) and turns conflicts into quality findings (整改工单, :mod:`dgov.quality.rectification`).
Only provincial data administrators, platform administrators and the CLI start runs; runs and golden
records are read by those who may read every registry of the run in full (see :func:`can_view_run`).
Every change and every look at a golden record is audited (``linkage.run.*``, ``linkage.golden.*``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.fields import blind_index, blind_index_key, encrypt_value
from dgov.kernel.models import Organization
from dgov.kernel.services import audit, events, keys
from dgov.kernel.services.divisions import scope_prefix
from dgov.linkage import golden as golden_module
from dgov.linkage import normalize, synth
from dgov.linkage.config import ROLES, LinkageConfigError, LinkJob, LinkSettings, load_config
from dgov.linkage.engine import LinkageInputError, Linker, LinkResult, Progress
from dgov.linkage.golden import CONFLICT_DIMENSIONS, GoldenResult, build_golden_records
from dgov.linkage.models import GoldenRecord, LinkageRun
from dgov.linkage.registry_config import parse_registry_settings
from dgov.quality import extract
from dgov.quality import services as quality_services
from dgov.quality.rules import literal, quote
from dgov.registry import services as registry_services
from dgov.registry.models import Registry
from dgov.registry.schema import SchemaError, field_map, mask_value

logger = logging.getLogger(__name__)

__all__ = [
    "GoldenView",
    "JobReport",
    "LinkageConfigError",
    "build_golden_records",
    "can_view_run",
    "evaluate",
    "execute_run",
    "find_golden_records",
    "golden_record_view",
    "golden_records",
    "link",
    "load_config",
    "may_run",
    "parse_settings_text",
    "refusal",
    "request_run",
    "run_job",
    "run_registries",
    "run_settings_now",
    "start_run",
    "visible_runs",
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


# --- Stored runs over registries (数据比对) ------------------------------------------------------------------

DEMO_SETTINGS = Path(__file__).parent / "data" / "demo-population-insured.yaml"  # 人口 × 社保参保, one county
WORKER_ACTOR = "system:linkage-worker"  # queued runs executed by `dgov worker` (the requester is on the run)
DATA_ADMIN_KIND = "DSJ"
SETTINGS_MAX_BYTES = 64 * 1024
SAMPLES_PER_FINDING = 5
STORE_BATCH = 2000
# GB/T 36344 dimension of a conflict kind (golden.CONFLICT_DIMENSIONS' labels) → dgov.quality's dimension value.
FINDING_DIMENSIONS = {"准确性": "accuracy", "完整性": "completeness"}
# Blind-index purposes the registry uses for identifiers (dgov.registry.schema.key_purpose).
IDENTIFIER_PURPOSES = ("resident_id", "uscc")


def _is_system(actor) -> bool:
    """The CLI or another system actor (a ``kind:label`` string): the operator holding the platform."""
    return isinstance(actor, str)


def _department(actor):
    """The active department of an official (None for anyone else)."""
    department = registry_services.department_of(actor)
    return department if department is not None and department.is_active else None


def may_run(actor) -> bool:
    """Whether the actor may start runs: the CLI, platform administrators, officials of the provincial 大数据局."""
    if _is_system(actor) or registry_services.is_admin(actor):
        return True
    if not getattr(actor, "is_authenticated", False) or hasattr(actor, "client_id"):
        return False  # people only: an API client does not start runs
    department = _department(actor)
    return bool(
        department is not None
        and department.kind == DATA_ADMIN_KIND
        and department.level == Organization.Level.PROVINCE
    )


def run_registries(run) -> list:
    """The registries a run's settings name (those that still exist), in table order."""
    codes = []
    for table in (run.settings or {}).get("tables") or []:
        code = table.get("registry") if isinstance(table, dict) else None
        if isinstance(code, str) and code not in codes:
            codes.append(code)
    found = {r.code: r for r in Registry.objects.select_related("owner", "owner__division").filter(code__in=codes)}
    return [found[code] for code in codes if code in found]


def _reads_in_full(actor, registries) -> bool:
    """Whether the actor may read every one of the registries without a division limit."""
    if _is_system(actor) or registry_services.is_admin(actor):
        return True
    if _department(actor) is None or not registries:
        return False
    return all(registry_services.reader_scope(registry, actor) == "" for registry in registries)


def can_view_run(actor, run) -> bool:
    """Whether the actor may see a run, its figures and its golden records.

    Golden records join values from every registry of the run and carry no division, so they are
    shown only to those who read each of those registries in full: platform administrators, the
    CLI, data administrators (大数据局) and provincial departments that may read the registries
    (their owners, authorities or delegates). A city or county department reads only its own
    division of a registry, so it does not see runs over it.
    """
    return _reads_in_full(actor, run_registries(run))


def visible_runs(actor, *, limit: int = 200) -> list:
    """The latest runs (newest first) the actor may see."""
    runs = list(LinkageRun.objects.order_by("-requested_at", "-id")[:limit])
    decided: dict[tuple, bool] = {}
    visible = []
    for run in runs:
        key = tuple(t.get("registry") for t in (run.settings or {}).get("tables") or [] if isinstance(t, dict))
        if key not in decided:
            decided[key] = can_view_run(actor, run)
        if decided[key]:
            visible.append(run)
    return visible


def _audit_actor(actor):
    """The actor as the audit service takes it."""
    return registry_services._audit_actor(actor)


def _actor_label(actor) -> str:
    """A short text naming the actor."""
    return registry_services._actor_label(actor)


def _deny(action: str, *, actor, target, message: str):
    """Audit a refused operation in its own transaction and return the PermissionDenied to raise."""
    with transaction.atomic():
        audit.record(action, actor=_audit_actor(actor), target=target, outcome="denied", detail={"reason": message})
    return PermissionDenied(message)


def refusal(actor) -> PermissionDenied:
    """The audited refusal of a run request by an actor who may not start runs (to raise)."""
    return _deny("linkage.run.request", actor=actor, target=None, message=_("只有省级数据管理员可以发起数据比对"))


def parse_settings_text(text: str) -> dict:
    """The settings of a run from YAML (or JSON) text; LinkageConfigError when it does not parse or is too long."""
    if len(text.encode("utf-8")) > SETTINGS_MAX_BYTES:
        raise LinkageConfigError(_("设置过长（上限 64 KiB）"))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LinkageConfigError(_("设置不是有效的 YAML：%(error)s") % {"error": exc}) from None
    if not isinstance(data, dict):
        raise LinkageConfigError(_("设置：应为键值映射"))
    return data


def _plain(data) -> dict:
    """The settings as plain JSON (YAML may give dates or numbers where text was meant)."""
    return json.loads(json.dumps(data, ensure_ascii=False, default=str))


def start_run(settings: dict, *, actor):
    """Queue a run for ``settings`` (a mapping, see :mod:`dgov.linkage.registry_config`); audited.

    PermissionDenied (audited) unless :func:`may_run`; LinkageConfigError naming the key when the
    settings are bad. The run executes later (:func:`execute_run`).
    """
    if not may_run(actor):
        raise refusal(actor)
    data = _plain(settings)
    plan = parse_registry_settings(data)
    with transaction.atomic():
        run = LinkageRun.objects.create(
            name=plan.name,
            mode=plan.settings.mode,
            entity=plan.settings.entity,
            settings=data,
            requested_by=_actor_label(actor),
        )
        audit.record(
            "linkage.run.request",
            actor=_audit_actor(actor),
            target=run,
            detail={"name": plan.name, "registries": [r.code for r in plan.registries()], "mode": plan.settings.mode},
        )
    return run


def request_run(settings: dict, *, actor):
    """Queue a run for the background worker (pages): :func:`start_run`, then the task once committed."""
    run = start_run(settings, actor=actor)
    from dgov.linkage.tasks import run_linkage

    transaction.on_commit(lambda: run_linkage.enqueue(run_id=run.pk))
    return run


def run_settings_now(settings: dict, *, actor, progress: Progress | None = None):
    """Queue and execute a run now (CLI); returns the finished (or failed) run."""
    run = start_run(settings, actor=actor)
    return execute_run(run, actor=actor, progress=progress)


def _work_dir():
    """Where extracted records are written while a run lasts (an encrypted volume in production)."""
    return getattr(django_settings, "LINKAGE_WORK_DIR", None) or getattr(django_settings, "QUALITY_WORK_DIR", None)


def _extract(con, plan, workdir: Path, progress: Progress) -> dict[str, dict[str, int]]:
    """Load each table's registry records into DuckDB, filter them, and hand the engine a CSV per table.

    Returns ``{table: {"read": live records, "kept": after the filter}}``. The CSV files (decrypted
    values) live in the run's private temporary directory and go with it.
    """
    counts: dict[str, dict[str, int]] = {}
    for index, (table, spec) in enumerate(zip(plan.tables, plan.settings.tables, strict=True)):
        progress(_("读取信息库 %(code)s") % {"code": table.registry.code}, index, len(plan.tables))
        wanted = list(dict.fromkeys([*table.fields, *table.filter]))
        definitions = [table.definitions[name] for name in wanted]
        source = f"src_{index}"
        read = extract.load_registry(con, table.registry, definitions, workdir, table=source)
        conditions = []
        if table.division:
            conditions.append(f"starts_with(coalesce(_division, ''), {literal(scope_prefix(table.division))})")
        for name, values in table.filter.items():
            conditions.append(f"CAST({quote(name)} AS VARCHAR) IN ({', '.join(literal(v) for v in values)})")
        where = " AND ".join(conditions) or "TRUE"
        con.execute(f"DELETE FROM {quote(source)} WHERE NOT ({where})")
        kept = con.execute(f"SELECT count(*) FROM {quote(source)}").fetchone()[0]
        if not kept:
            raise LinkageInputError(
                _("表 %(table)s：信息库“%(code)s”没有符合条件的记录（读取 %(read)d 条）")
                % {"table": table.name, "code": table.registry.code, "read": read}
            )
        path = workdir / f"table_{index}.csv"
        columns = ", ".join(quote(name) for name in table.fields)
        con.execute(
            f"COPY (SELECT _uid, {columns} FROM {quote(source)} ORDER BY _id) TO {literal(str(path))} "
            "(HEADER, DELIMITER ',')"
        )
        spec.rows = None
        spec.path = path
        spec.id_column = "_uid"
        spec.encoding = "utf-8"
        counts[table.name] = {"read": int(read), "kept": int(kept)}
    return counts


def _divisions(con, plan, refs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(table, uid) → the record's division, for the records named in findings' samples."""
    result: dict[tuple[str, str], str] = {}
    for index, table in enumerate(plan.tables):
        uids = sorted(uid for name, uid in refs if name == table.name)
        if not uids:
            continue
        listed = ", ".join(literal(uid) for uid in uids)
        query = f"SELECT _uid, _division FROM src_{index} WHERE _uid IN ({listed})"
        for uid, division in con.execute(query).fetchall():
            result[(table.name, uid)] = division or ""
    return result


def _identifier_purpose(plan) -> str:
    """The blind-index purpose of the golden identifier: the authority field's type, as the registry indexes it."""
    authority = plan.authority.get("identifier")
    if authority is not None:
        table = plan.table(authority)
        definition = table.definitions[table.field_of("identifier")]
        if definition.type in IDENTIFIER_PURPOSES:
            return definition.type
    if plan.settings.identifier_kind in IDENTIFIER_PURPOSES:
        return plan.settings.identifier_kind
    return "uscc" if plan.settings.entity == "organization" else "resident_id"


def identifier_digest(value: str, purpose: str, key: bytes | None = None) -> str:
    """The blind index a golden record's identifier is found by (15-digit ID numbers upgraded first)."""
    kind = purpose if purpose in IDENTIFIER_PURPOSES else "any"
    return blind_index(normalize.identifier_value(value, kind) or str(value), purpose=purpose, key=key)


def _conflict_dict(conflict) -> dict:
    """A conflict as stored (sealed) on its golden record."""
    return {
        "role": conflict.role,
        "kind": conflict.kind,
        "table": conflict.source.table,
        "uid": conflict.source.row_id,
        "value": conflict.value,
        "reference_table": conflict.reference_source.table,
        "reference_uid": conflict.reference_source.row_id,
        "reference_value": conflict.reference_value,
    }


def _golden_rows(run, plan, golden: GoldenResult):
    """Every cluster's golden record as a row of :data:`GOLDEN_COLUMNS` (values and conflicts sealed)."""
    purpose = _identifier_purpose(plan)
    index_key = blind_index_key()
    seal = GoldenRecord._meta.get_field("values").purpose
    data_key = keys.data_key(seal)
    conflicts: dict[int, list] = {}
    for conflict in golden.conflicts:
        conflicts.setdefault(conflict.cluster_id, []).append(conflict)
    for record in golden.records:
        values = {role: v.value for role, v in record.values.items() if v.value is not None}
        lineage = {role: str(v.source) for role, v in record.values.items() if v.source is not None}
        found = conflicts.get(record.cluster_id, [])
        identifier = values.get("identifier")
        yield (
            run.pk,
            int(record.cluster_id),
            identifier_digest(identifier, purpose, index_key) if identifier else "",
            encrypt_value(json.dumps(values, ensure_ascii=False, sort_keys=True), purpose=seal, key=data_key),
            json.dumps(lineage, ensure_ascii=False),
            json.dumps([str(m) for m in record.members], ensure_ascii=False),
            len(record.members),
            json.dumps(sorted({c.role for c in found})),
            encrypt_value(
                json.dumps([_conflict_dict(c) for c in found], ensure_ascii=False), purpose=seal, key=data_key
            )
            if found
            else "",
        )


GOLDEN_COLUMNS = (
    "run",
    "cluster",
    "identifier_index",
    "values",
    "lineage",
    "members",
    "member_count",
    "conflict_roles",
    "conflicts",
)


def _store_golden(run, plan, golden: GoldenResult) -> int:
    """Insert the run's golden records in bulk; returns how many.

    Rows are prepared once (sealed with the data key looked up once, JSON as text) and written with
    COPY on PostgreSQL and executemany elsewhere, like the registry's bulk import: the ORM's
    bulk_create spends most of its time preparing values field by field.
    """
    meta = GoldenRecord._meta
    quote = connection.ops.quote_name
    columns = [meta.get_field(name).column for name in GOLDEN_COLUMNS]
    table = quote(meta.db_table)
    names = ", ".join(quote(column) for column in columns)
    count = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in _golden_rows(run, plan, golden):
                    copy.write_row(row)
                    count += 1
            return count
        statement = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        batch = []
        for row in _golden_rows(run, plan, golden):
            batch.append(row)
            if len(batch) >= STORE_BATCH:
                cursor.executemany(statement, batch)
                count += len(batch)
                batch = []
        if batch:
            cursor.executemany(statement, batch)
            count += len(batch)
    return count


def _masked(definition, value) -> str | None:
    """A value safe to show or store in a finding: personal and internal values masked (脱敏)."""
    if value is None or value == "":
        return value
    if definition is None or definition.sensitivity != "public":
        return mask_value(definition, value) if definition is not None else "****"
    return str(value)


@dataclass
class _Finding:
    """Conflicts about one field of one registry, on their way to a rectification order."""

    registry: object
    field: str
    department: object
    conflicts: list = field(default_factory=list)


def _findings(plan, conflicts) -> list[_Finding]:
    """Conflicts grouped by (registry, field, responsible department): one finding each.

    The department is the one responsible for the field of the row to fix (the quality app's rule
    owner: the field's authoritative source in that registry, usually its owner) — for ``differs`` the
    department holding the disagreeing copy, for ``authority_inconsistent`` and
    ``missing_in_authority`` the authority itself.
    """
    groups: dict[tuple[str, str], _Finding] = {}
    owners: dict[tuple[str, str], object] = {}
    for conflict in conflicts:
        table = plan.table(conflict.source.table)
        name = table.field_of(conflict.role)
        key = (table.registry.code, name)
        if key not in groups:
            if key not in owners:
                owners[key] = quality_services.default_owner(table.registry, [name])
            groups[key] = _Finding(table.registry, name, owners[key])
        groups[key].conflicts.append(conflict)
    return list(groups.values())


def _finding_key(run, field_name: str) -> str:
    """The stable key of a run's finding about a field (the same for every run of that name)."""
    return f"linkage:{run.name}:{field_name}"[:200]


def _finding_sample(plan, conflict, divisions) -> dict:
    """One masked sample of a finding: the row's uid and division, its value and the reference value, masked."""
    table = plan.table(conflict.source.table)
    reference = plan.table(conflict.reference_source.table)
    name = table.field_of(conflict.role)
    reference_name = reference.field_of(conflict.role)
    return {
        "uid": conflict.source.row_id,
        "division": divisions.get((table.name, conflict.source.row_id), ""),
        "kind": conflict.kind,
        "values": {
            name: _masked(table.definitions.get(name), conflict.value),
            f"{reference.registry.code}.{reference_name}": _masked(
                reference.definitions.get(reference_name), conflict.reference_value
            ),
        },
        "reference_uid": conflict.reference_source.row_id,
    }


def _raise_findings(run, plan, conflicts, divisions, *, actor) -> list[dict]:
    """Open (or update) one rectification order per finding; returns what is kept in the run's metrics."""
    from dgov.quality import rectification

    kept = []
    for finding in _findings(plan, conflicts):
        kinds = Counter(c.kind for c in finding.conflicts)
        by_dimension = Counter(FINDING_DIMENSIONS[CONFLICT_DIMENSIONS[c.kind]] for c in finding.conflicts)
        dimension = "accuracy" if by_dimension["accuracy"] >= by_dimension["completeness"] else "completeness"
        definition = next(t for t in plan.tables if t.registry.pk == finding.registry.pk).definitions.get(finding.field)
        label = definition.label if definition is not None else finding.field
        rows = len({(c.source.table, c.source.row_id) for c in finding.conflicts})
        key = _finding_key(run, finding.field)
        role = finding.conflicts[0].role
        authority = plan.table(plan.authority[role])
        order = rectification.raise_finding(
            source="linkage",
            registry=finding.registry,
            finding_key=key,
            department=finding.department,
            title=(
                _("数据比对“%(run)s”：%(registry)s的“%(field)s”与权威来源不一致（%(count)d 条）")
                % {"run": run.name, "registry": finding.registry.name, "field": label, "count": rows}
            )[:300],
            dimension=dimension,
            fields=[finding.field],
            failed=rows,
            samples=[_finding_sample(plan, c, divisions) for c in finding.conflicts[:SAMPLES_PER_FINDING]],
            detail={
                "run": run.pk,
                "run_name": run.name,
                "role": role,
                "kinds": dict(sorted(kinds.items())),
                "reference": {"registry": authority.registry.code, "field": authority.field_of(role)},
            },
            severity="medium",
            run=run,
            actor=actor,
        )
        kept.append(
            {
                "registry": finding.registry.code,
                "field": finding.field,
                "role": role,
                "department": finding.department.code,
                "department_name": finding.department.name,
                "key": key,
                "dimension": dimension,
                "count": rows,
                "kinds": dict(sorted(kinds.items())),
                "order": getattr(order, "code", "") or "",
            }
        )
    return kept


def _clear_stale(run, findings: list[dict], *, actor) -> list[dict]:
    """Clear the findings of the previous successful run of the same name that this run no longer has."""
    previous = (
        LinkageRun.objects.filter(name=run.name, status=LinkageRun.Status.SUCCEEDED)
        .exclude(pk=run.pk)
        .order_by("-finished_at", "-id")
        .first()
    )
    if previous is None:
        return []
    current = {(f["registry"], f["key"], f["department"]) for f in findings}
    stale = [
        f
        for f in (previous.metrics or {}).get("findings") or []
        if (f.get("registry"), f.get("key"), f.get("department")) not in current
    ]
    if not stale:
        return []
    from dgov.quality import rectification

    registries = {r.code: r for r in Registry.objects.filter(code__in={f["registry"] for f in stale})}
    departments = {o.code: o for o in Organization.objects.filter(code__in={f["department"] for f in stale})}
    cleared = []
    for finding in stale:
        registry = registries.get(finding["registry"])
        department = departments.get(finding["department"])
        if registry is None or department is None:
            continue
        rectification.clear_finding(
            registry=registry,
            finding_key=finding["key"],
            department=department,
            actor=actor,
            run=run,
            note=_("数据比对“%(name)s”#%(run)d 未再发现该冲突") % {"name": run.name, "run": run.pk},
        )
        cleared.append({k: finding[k] for k in ("registry", "field", "department", "key")})
    return cleared


def _conflict_summary(conflicts) -> dict[str, dict[str, int]]:
    """Conflict counts by role and kind."""
    summary: dict[str, dict[str, int]] = {}
    for conflict in conflicts:
        by_kind = summary.setdefault(conflict.role, {})
        by_kind[conflict.kind] = by_kind.get(conflict.kind, 0) + 1
    return summary


def execute_run(run, *, actor=None, progress: Progress | None = None):
    """Execute a queued run: extract, link, store golden records, raise and clear findings (see the module docstring).

    Everything is stored in one transaction when the run succeeds; on any error the run is marked
    failed with it (audited) and earlier runs, their golden records and the open orders stay as
    they were. A run that is no longer queued (another worker took it) is returned unchanged.
    """
    actor = actor if actor is not None else WORKER_ACTOR
    report = progress or (lambda _d, _c, _t: None)
    claimed = LinkageRun.objects.filter(pk=run.pk, status=LinkageRun.Status.QUEUED).update(
        status=LinkageRun.Status.RUNNING, started_at=timezone.now()
    )
    run.refresh_from_db()
    if not claimed:
        return run
    began = time.perf_counter()
    seconds: dict[str, float] = {}
    try:
        plan = parse_registry_settings(run.settings)
        step = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="dgov-linkage-", dir=_work_dir()) as tmp:
            workdir = Path(tmp)
            con = extract.open_connection(workdir)
            try:
                counts = _extract(con, plan, workdir, report)
                seconds["extract"] = time.perf_counter() - step
                with link(plan.settings, progress=report) as result:
                    engine_counts = dict(result.counts)
                    seconds.update(result.timings)
                    rules = [list(rule) for rule in result.rules]
                    step = time.perf_counter()
                    golden = golden_records(result, plan.authority)
                    seconds["golden"] = time.perf_counter() - step
                refs = {(c.source.table, c.source.row_id) for c in golden.conflicts}
                divisions = _divisions(con, plan, refs)
            finally:
                con.close()
        step = time.perf_counter()
        with transaction.atomic():
            stored = _store_golden(run, plan, golden)
            seconds["store"] = time.perf_counter() - step
            step = time.perf_counter()
            findings = _raise_findings(run, plan, golden.conflicts, divisions, actor=actor) if golden.conflicts else []
            cleared = _clear_stale(run, findings, actor=actor)
            seconds["findings"] = time.perf_counter() - step
            seconds["total"] = time.perf_counter() - began
            run.metrics = {
                "records": {name: c["kept"] for name, c in counts.items()},
                "records_read": {name: c["read"] for name, c in counts.items()},
                "records_total": engine_counts.get("records", 0),
                "comparison_space": engine_counts.get("comparison_space", 0),
                "candidate_pairs": engine_counts.get("candidate_pairs", 0),
                "deterministic_pairs": engine_counts.get("deterministic_pairs", 0),
                "matches": engine_counts.get("accepted_pairs", 0),
                "clusters": engine_counts.get("clusters", 0),
                "linked_clusters": sum(1 for r in golden.records if len(r.members) > 1),
                "golden_records": stored,
                "conflicts": len(golden.conflicts),
                "conflicts_by_role": _conflict_summary(golden.conflicts),
                "authority": {
                    role: {
                        "table": name,
                        "registry": plan.table(name).registry.code,
                        "field": plan.table(name).field_of(role),
                        "overridden": role in plan.authority_overridden,
                    }
                    for role, name in plan.authority.items()
                },
                "tables": {t.name: t.registry.code for t in plan.tables},
                "blocking": rules,
                "identifier_purpose": _identifier_purpose(plan),
                "findings": findings,
                "cleared": cleared,
                "seconds": {k: round(v, 3) for k, v in seconds.items()},
            }
            run.status = LinkageRun.Status.SUCCEEDED
            run.finished_at = timezone.now()
            run.error = ""
            run.save(update_fields=["metrics", "status", "finished_at", "error"])
            detail = {
                "name": run.name,
                "golden_records": stored,
                "conflicts": len(golden.conflicts),
                "findings": len(findings),
                "cleared": len(cleared),
            }
            audit.record("linkage.run.succeed", actor=_audit_actor(actor), target=run, detail=detail)
            events.publish(
                "linkage.run.finished",
                {"run": run.pk, "status": run.status, **detail},
                aggregate="linkage",
                aggregate_id=run.name,
            )
    except Exception as exc:  # noqa: BLE001 - any failure is the run's outcome; earlier runs stay
        known = isinstance(exc, LinkageConfigError | LinkageInputError)
        if not known:
            logger.exception("linkage run %s (%s) failed", run.pk, run.name)
        message = str(exc) if known else f"{type(exc).__name__}: {exc}"
        return _fail(run, message, actor=actor)
    return run


def _fail(run, message: str, *, actor):
    """Record a failed run (its error, audited); earlier runs and their results are untouched."""
    with transaction.atomic():
        run.status = LinkageRun.Status.FAILED
        run.finished_at = timezone.now()
        run.error = message[:4000]
        run.save(update_fields=["status", "finished_at", "error"])
        audit.record(
            "linkage.run.fail",
            actor=_audit_actor(actor),
            target=run,
            outcome="failed",
            detail={"name": run.name, "error": message[:300]},
        )
        events.publish(
            "linkage.run.finished",
            {"run": run.pk, "status": run.status, "name": run.name},
            aggregate="linkage",
            aggregate_id=run.name,
        )
    return run


# --- Reading golden records -----------------------------------------------------------------------------------


def _check_view(run, actor) -> None:
    """PermissionDenied unless the actor may see the run."""
    if not can_view_run(actor, run):
        raise PermissionDenied(_("无权查看该数据比对的结果"))


def find_golden_records(run, *, actor, identifier: str = "", cluster: int | None = None):
    """A run's golden records, optionally by exact identifier (blind index) or cluster; PermissionDenied if not allowed.

    A search by identifier is audited (``linkage.golden.search``; the number itself is not recorded).
    """
    _check_view(run, actor)
    records = run.golden.all().order_by("cluster")
    if identifier:
        purpose = (run.metrics or {}).get("identifier_purpose") or "resident_id"
        records = records.filter(identifier_index=identifier_digest(identifier.strip(), purpose))
        with transaction.atomic():
            audit.record("linkage.golden.search", actor=_audit_actor(actor), target=run, detail={"by": "identifier"})
    if cluster is not None:
        records = records.filter(cluster=cluster)
    return records


@dataclass
class GoldenView:
    """A golden record ready to show: masked values with lineage, members and masked conflicts."""

    record: object
    values: list[dict]
    members: list[dict]
    conflicts: list[dict]


def _ref(text: str) -> tuple[str, str]:
    """``table:uid`` → (table, uid)."""
    table, _sep, uid = text.rpartition(":")
    return table, uid


def golden_summary(run, record) -> dict[str, str]:
    """Role → masked value of a golden record (for lists)."""
    tables = _view_tables(run)
    values = json.loads(record.values or "{}")
    out = {}
    for role, value in values.items():
        table = tables.get(_ref((record.lineage or {}).get(role, ""))[0])
        definition = table["definitions"].get(table["roles"].get(role, "")) if table else None
        out[role] = _masked(definition, value)
    return out


def _view_tables(run) -> dict[str, dict]:
    """Table name → registry, field definitions and role → field of a run (from its stored settings)."""
    cache = getattr(run, "_view_tables", None)
    if cache is not None:
        return cache
    registries = {r.code: r for r in run_registries(run)}
    tables: dict[str, dict] = {}
    for raw in (run.settings or {}).get("tables") or []:
        if not isinstance(raw, dict):
            continue
        registry = registries.get(raw.get("registry"))
        name = str(raw.get("name") or raw.get("registry"))
        roles: dict[str, str] = {}
        for field_name, role in (raw.get("fields") or {}).items():
            roles.setdefault(str(role), str(field_name))
        try:
            definitions = field_map(registry_services.registry_fields(registry)) if registry is not None else {}
        except SchemaError:
            definitions = {}
        tables[name] = {"registry": registry, "definitions": definitions, "roles": roles}
    run._view_tables = tables
    return tables


def golden_record_view(run, cluster: int, *, actor) -> GoldenView:
    """One golden record with masked values, lineage, members and masked conflicts; audited (``linkage.golden.view``).

    PermissionDenied unless the actor may see the run; GoldenRecord.DoesNotExist for an unknown
    cluster. A member links to its registry record only when the actor may read that registry.
    """
    _check_view(run, actor)
    record = run.golden.get(cluster=cluster)
    tables = _view_tables(run)
    department = _department(actor)
    readable: dict[str, bool] = {}

    def may_open(table: dict | None) -> bool:
        registry = table["registry"] if table else None
        if registry is None:
            return False
        if registry.code not in readable:
            readable[registry.code] = bool(
                registry_services.is_admin(actor) or registry_services.can_read(registry, department)
            )
        return readable[registry.code]

    def source(text: str) -> dict:
        name, uid = _ref(text)
        table = tables.get(name)
        return {
            "table": name,
            "uid": uid,
            "registry": table["registry"] if table else None,
            "may_open": may_open(table),
        }

    values = json.loads(record.values or "{}")
    rows = []
    for role, value in values.items():
        lineage = (record.lineage or {}).get(role, "")
        origin = source(lineage) if lineage else None
        table = tables.get(origin["table"]) if origin else None
        field_name = table["roles"].get(role, "") if table else ""
        definition = table["definitions"].get(field_name) if table else None
        rows.append(
            {
                "role": role,
                "role_label": ROLES.get(role, role),
                "field": field_name,
                "field_label": definition.label if definition is not None else field_name,
                "value": _masked(definition, value),
                "source": origin,
            }
        )
    conflicts = []
    for item in json.loads(record.conflicts or "[]"):
        table = tables.get(item.get("table"))
        reference = tables.get(item.get("reference_table"))
        role = item.get("role", "")
        definition = table["definitions"].get(table["roles"].get(role, "")) if table else None
        reference_definition = reference["definitions"].get(reference["roles"].get(role, "")) if reference else None
        conflicts.append(
            {
                "role": role,
                "role_label": ROLES.get(role, role),
                "kind": item.get("kind", ""),
                "source": source(f"{item.get('table')}:{item.get('uid')}"),
                "value": _masked(definition, item.get("value")),
                "reference": source(f"{item.get('reference_table')}:{item.get('reference_uid')}"),
                "reference_value": _masked(reference_definition, item.get("reference_value")),
            }
        )
    with transaction.atomic():
        audit.record(
            "linkage.golden.view",
            actor=_audit_actor(actor),
            target=record,
            detail={"run": run.pk, "cluster": record.cluster},
        )
    return GoldenView(
        record=record,
        values=rows,
        members=[source(member) for member in record.members or []],
        conflicts=conflicts,
    )
