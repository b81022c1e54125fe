"""Rectification work orders (整改工单): quality findings sent to the department that must fix them.

Life of an order
    A **finding** is a problem that one department must fix in one registry: a quality rule that
    failed (``source = rule``, finding key = the rule code, department = the rule's owner, i.e. the
    field's authoritative source) or a conflict found by entity resolution (``source = linkage``,
    raised by :mod:`dgov.linkage` through the same two functions). :func:`raise_finding` opens an
    order (code ``ZG<yyyymmdd>-<seq>``) due ``QUALITY_ORDER_DEADLINE_DAYS[severity]`` working days
    later (kernel working-day calendar: weekends, statutory holidays, 调休), or updates the active
    one of the same (registry, finding key, department); :func:`clear_finding` closes it as
    resolved when a re-check passes. At most one order per (registry, finding key, department) is
    active (open or submitted) — a partial unique constraint guards it.

    status: ``open`` 待整改 → (department answers) ``submitted`` 已反馈待复核 → (re-check passes)
    ``resolved`` 已整改, or back to ``open`` when the re-check still fails; ``cancelled`` 已撤销 by a
    data administrator (with a reason), when the rule is disabled, or when the rule's responsible
    department changed.

From quality runs (:func:`sync_run`, called once at the end of every successful run)
    Each rule result with failures opens/updates an order to the result's owner; a result that
    passes (failed == 0, something checked) clears it; a result that could not check anything
    changes nothing. A failed run changes no order.

Automatic re-check
    Registry writes announce themselves in the outbox (``registry.record.*``,
    ``registry.records.imported``); :mod:`dgov.quality.handlers` marks the registry's active orders
    (``recheck_requested_at``, :func:`note_registry_change`) in the worker — nothing is added to the
    write itself. The periodic worker job :func:`recheck_due` then requests one quality run per
    marked registry once ``QUALITY_RECHECK_DEBOUNCE_SECONDS`` (default 300) passed after the last
    change (or ``QUALITY_RECHECK_MAX_WAIT_SECONDS``, default 3600, after its previous run, so a
    registry written all day long is still re-checked), never while a run of it is queued or running, and not
    twice within the debounce period (a run that keeps failing is retried at that pace). The
    department's answer (:func:`answer_order`) and **re-check now** (:func:`request_recheck`)
    request the run at once. A run clears the marks set before it started.

Escalation (督办, :func:`escalate_due`, a periodic worker job and ``dgov quality orders escalate``)
    Level 1 on the first working day after ``due_on``: the department and the provincial data
    administrators (provincial 大数据局) are notified. Level 2 ``QUALITY_ORDER_ESCALATION_DAYS``
    (default 5) further working days later: also the department's superiors — its parent
    department (上级部门, usually the people's government of its level) and the government's
    general office (kind ``BG``, 办公厅/办公室, whose duty is 督查) of its division, else of the nearest
    division above. Each level once, with an event, an audit record and in-app/e-mail notices.

Who may do what
    Orders are read by their department, data administrators whose division covers the
    department (provincial ones: all), platform administrators and the CLI. The department answers
    its open orders; the department and rule managers (provincial data administrators, platform
    administrators, CLI) request a re-check; rule managers cancel, with a reason. Every state change
    writes a :class:`RectificationEvent` and an audit record (``quality.order.open``, ``.recheck``,
    ``.resolve``, ``.respond``, ``.recheck_request``, ``.escalate``, ``.cancel``); refusals are
    audited with outcome ``denied``.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import Length
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dgov.kernel.models import Division, Organization
from dgov.kernel.notify import NotificationTemplate, register_template
from dgov.kernel.services import audit
from dgov.kernel.services.calendar import add_working_days, is_workday, previous_workday, working_days_between
from dgov.kernel.services.divisions import scope_prefix
from dgov.quality import services
from dgov.quality.models import (
    Dimension,
    QualityRule,
    QualityRun,
    RectificationEvent,
    RectificationOrder,
    RuleResult,
    Severity,
)
from dgov.registry import services as registry_services
from dgov.registry.models import Registry

logger = logging.getLogger(__name__)

__all__ = [
    "ACTIVE",
    "Deadline",
    "SyncReport",
    "after_run",
    "answer_order",
    "can_view_order",
    "cancel_order",
    "clear_finding",
    "deadline",
    "deadline_days",
    "escalate_due",
    "escalation_job",
    "filter_orders",
    "may_answer",
    "may_cancel",
    "may_recheck",
    "note_registry_change",
    "on_rule_disabled",
    "open_order_counts",
    "order_samples",
    "raise_finding",
    "recheck_due",
    "request_recheck",
    "superiors",
    "sync_run",
    "visible_orders",
]

Status = RectificationOrder.Status
Source = RectificationOrder.Source
ACTIVE = (Status.OPEN, Status.SUBMITTED)
SYSTEM_ACTOR = "system:quality-rectification"  # default actor of run-driven changes
RECHECK_ACTOR = "system:quality-recheck"  # requests re-check runs (departments may not start runs themselves)
ESCALATION_ACTOR = "system:quality-escalation"
DEFAULT_DEADLINE_DAYS = {Severity.HIGH: 5, Severity.MEDIUM: 10, Severity.LOW: 20}
DEFAULT_ESCALATION_DAYS = 5
DEFAULT_RECHECK_DEBOUNCE = 300
DEFAULT_RECHECK_MAX_WAIT = 3600
DEFAULT_NOTIFY_CHANNELS = ("in_app", "email")
DEFAULT_SUPERVISOR_KINDS = ("BG",)
MAX_LEVEL = 2
MAX_NOTE = 2000
MAX_ORDER_SAMPLES = services.MAX_SAMPLES
CODE_PREFIX = "ZG"

# Timeline actions (RectificationEvent.action) and how pages name them.
ACTION_LABELS = {
    "opened": gettext_lazy("下发工单"),
    "recheck_failed": gettext_lazy("复核未通过"),
    "answered": gettext_lazy("部门反馈整改"),
    "recheck_requested": gettext_lazy("申请复核"),
    "resolved": gettext_lazy("复核通过，已办结"),
    "escalated": gettext_lazy("督办"),
    "cancelled": gettext_lazy("撤销"),
}


register_template(
    "quality.order.opened",
    NotificationTemplate(
        title=gettext_lazy("整改工单 {code}：{title}"),
        body=gettext_lazy(
            "信息库“{registry}”发现数据质量问题“{title}”（{failed} 条不合格），由{department}负责整改，"
            "整改期限 {due_on}（{days} 个工作日）。"
        ),
        email_subject=gettext_lazy("【数字政府】整改工单 {code}"),
    ),
)
register_template(
    "quality.order.reopened",
    NotificationTemplate(
        title=gettext_lazy("整改工单 {code} 复核未通过"),
        body=gettext_lazy("“{title}”复核仍有 {failed} 条不合格，请继续整改，整改期限 {due_on}。"),
        email_subject=gettext_lazy("【数字政府】整改工单 {code} 复核未通过"),
    ),
)
register_template(
    "quality.order.resolved",
    NotificationTemplate(
        title=gettext_lazy("整改工单 {code} 已办结"),
        body=gettext_lazy("“{title}”复核通过，工单已办结。"),
        email_subject=gettext_lazy("【数字政府】整改工单 {code} 已办结"),
    ),
)
register_template(
    "quality.order.escalated",
    NotificationTemplate(
        title=gettext_lazy("【督办】整改工单 {code} 已逾期"),
        body=gettext_lazy(
            "{department}的整改工单“{title}”（信息库“{registry}”）已超过整改期限 {due_on}，"
            "逾期 {overdue} 个工作日，现予{level}级督办，请尽快整改。"
        ),
        email_subject=gettext_lazy("【数字政府】督办：整改工单 {code}"),
    ),
)


# --- Settings and time ----------------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    """The current time (one place, so tests can move the clock)."""
    return timezone.now()


def deadline_days(severity: str) -> int:
    """Working days allowed to fix a finding of this severity (``QUALITY_ORDER_DEADLINE_DAYS``)."""
    table = {**DEFAULT_DEADLINE_DAYS, **(getattr(settings, "QUALITY_ORDER_DEADLINE_DAYS", None) or {})}
    return max(1, int(table.get(severity, table[Severity.MEDIUM])))


def _escalation_days() -> int:
    """Further working days after level 1 before level 2."""
    return max(1, int(getattr(settings, "QUALITY_ORDER_ESCALATION_DAYS", DEFAULT_ESCALATION_DAYS)))


def _channels() -> tuple[str, ...]:
    """Notification channels of order notices."""
    return tuple(getattr(settings, "QUALITY_ORDER_NOTIFY_CHANNELS", DEFAULT_NOTIFY_CHANNELS))


def _run_moment(run, now: datetime.datetime) -> datetime.datetime:
    """When a run read the data (its start), else now: marks set before it are covered by it."""
    return getattr(run, "started_at", None) or now


def _run_ref(run) -> dict:
    """A run named in event data: a quality run by id, another kind (a linkage run) by model and id."""
    if run is None:
        return {}
    if isinstance(run, QualityRun):
        return {"run": run.pk}
    return {"run_model": run._meta.label_lower, "run_id": run.pk}


# --- Permissions and scope ------------------------------------------------------------------------------------


def _department(actor) -> Organization | None:
    """The actor's active department (officials, API clients), or None."""
    department = registry_services.department_of(actor)
    return department if department is not None and department.is_active else None


def _sees_all(actor) -> bool:
    """CLI, platform administrators and provincial data administrators (people or their clients) see every order."""
    if services._is_system(actor) or registry_services.is_admin(actor):
        return True
    department = _department(actor)
    return bool(
        department is not None
        and department.kind == services.DATA_ADMIN_KIND
        and department.level == Organization.Level.PROVINCE
    )


def visible_orders(actor) -> QuerySet[RectificationOrder]:
    """The orders the actor may read: its department's, those in a data administrator's division, or all."""
    orders = RectificationOrder.objects.select_related("registry", "department", "department__division", "rule")
    if _sees_all(actor):
        return orders
    department = _department(actor)
    if department is None:
        return orders.none()
    if department.kind == services.DATA_ADMIN_KIND:
        prefix = scope_prefix(department.division.code)
        return orders.filter(Q(department=department) | Q(department__division__code__startswith=prefix))
    return orders.filter(department=department)


def can_view_order(actor, order: RectificationOrder) -> bool:
    """Whether the actor may read the order (see :func:`visible_orders`)."""
    if _sees_all(actor):
        return True
    department = _department(actor)
    if department is None:
        return False
    if department.pk == order.department_id:
        return True
    return department.kind == services.DATA_ADMIN_KIND and order.department.division.code.startswith(
        scope_prefix(department.division.code)
    )


def may_answer(actor, order: RectificationOrder) -> bool:
    """The order's own department answers it (整改反馈), while it is open."""
    department = _department(actor)
    return order.status == Status.OPEN and department is not None and department.pk == order.department_id


def _may_ask_recheck(actor, order: RectificationOrder) -> bool:
    """The order's department or a rule manager (whatever the order's state)."""
    department = _department(actor)
    return services.may_manage_rules(actor) or (department is not None and department.pk == order.department_id)


def may_recheck(actor, order: RectificationOrder) -> bool:
    """The department or a rule manager may ask for a re-check of an active order."""
    return order.status in ACTIVE and _may_ask_recheck(actor, order)


def may_cancel(actor, order: RectificationOrder | None = None) -> bool:
    """Rule managers (provincial data administrators, platform administrators, CLI) cancel active orders."""
    return services.may_manage_rules(actor) and (order is None or order.status in ACTIVE)


def order_samples(order: RectificationOrder, actor) -> list[dict]:
    """The order's masked samples that the actor may see (within the actor's division scope of the registry)."""
    return services.visible_samples(order.samples, services.sample_prefix(actor, order.registry))


# --- Deadlines ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """Where an order stands against its deadline, in working days."""

    due_on: datetime.date
    remaining: int  # working days left after today (0 on the due day or later)
    overdue: int  # working days past the due day (0 when not overdue)
    is_overdue: bool  # active and today is after the due day


def deadline(order: RectificationOrder, today: datetime.date | None = None) -> Deadline:
    """The order's remaining or overdue working days as of ``today`` (closed orders: as of closing)."""
    if order.status not in ACTIVE and order.closed_at is not None:
        today = timezone.localdate(order.closed_at)
    today = today or timezone.localdate(_now())
    if today <= order.due_on:
        return Deadline(order.due_on, working_days_between(today, order.due_on), 0, False)
    return Deadline(order.due_on, 0, working_days_between(order.due_on, today), order.status in ACTIVE)


def filter_orders(
    orders: QuerySet[RectificationOrder],
    *,
    status: str = "",
    department: str = "",
    registry: str = "",
    overdue: bool = False,
    source: str = "",
    today: datetime.date | None = None,
) -> QuerySet[RectificationOrder]:
    """Narrow a query of orders: status (``active``, ``all`` or a status), department/registry code, overdue."""
    if status == "active":
        orders = orders.filter(status__in=ACTIVE)
    elif status and status != "all":
        if status not in Status.values:
            raise ValidationError(_("未知的工单状态：%(status)s") % {"status": status}, code="status")
        orders = orders.filter(status=status)
    if source:
        if source not in Source.values:
            raise ValidationError(_("未知的工单来源：%(source)s") % {"source": source}, code="source")
        orders = orders.filter(source=source)
    if department:
        orders = orders.filter(department__code=department)
    if registry:
        orders = orders.filter(registry__code=registry)
    if overdue:
        orders = orders.filter(status__in=ACTIVE, due_on__lt=today or timezone.localdate(_now()))
    return orders


def open_order_counts(*, by: str = "department", orders: QuerySet | None = None) -> dict[str, int]:
    """Active orders counted per department code (``by="department"``) or registry code (``by="registry"``)."""
    key = {"department": "department__code", "registry": "registry__code"}[by]
    base = orders if orders is not None else RectificationOrder.objects.all()
    rows = base.filter(status__in=ACTIVE).order_by().values(key).annotate(n=Count("id"))
    return {row[key]: row["n"] for row in rows}


# --- Events, audit, notices -----------------------------------------------------------------------------------


def _event(order: RectificationOrder, action: str, *, actor, note: str = "", data: dict | None = None) -> None:
    """Append a step to the order's timeline."""
    RectificationEvent.objects.create(
        order=order, actor=services._actor_label(actor), action=action, note=note[:MAX_NOTE], data=data or {}
    )


def _audit(action: str, order: RectificationOrder, *, actor, detail: dict | None = None) -> None:
    """Audit an order change (codes and counts, never data values)."""
    audit.record(
        f"quality.order.{action}",
        actor=services._audit_actor(actor),
        target=order,
        detail={
            "code": order.code,
            "registry": order.registry.code,
            "finding": order.finding_key,
            "department": order.department.code,
            "status": order.status,
            **(detail or {}),
        },
    )


def _officials(department_ids) -> QuerySet:
    """Active officials of these departments."""
    return (
        get_user_model()
        .objects.filter(kind="official", department_id__in=list(department_ids), is_active=True)
        .order_by("pk")
    )


def _provincial_data_admins() -> list[int]:
    """Ids of the active provincial 大数据局 departments."""
    return list(
        Organization.objects.filter(
            kind=services.DATA_ADMIN_KIND, level=Organization.Level.PROVINCE, is_active=True
        ).values_list("pk", flat=True)
    )


def superiors(department: Organization) -> list[Organization]:
    """Whom level-2 escalation reaches: the parent department and the supervising office (kind BG) of the division.

    The office is looked for on the department's division, then on each division above it (a county
    has no 办公室 of its own in the demo set); ``QUALITY_ORDER_SUPERVISOR_KINDS`` names the kinds.
    """
    found: list[Organization] = []
    if department.parent_id:
        parent = Organization.objects.filter(pk=department.parent_id, is_active=True).first()
        if parent is not None:
            found.append(parent)
    kinds = tuple(getattr(settings, "QUALITY_ORDER_SUPERVISOR_KINDS", DEFAULT_SUPERVISOR_KINDS))
    division = department.division
    while division is not None:
        offices = list(Organization.objects.filter(division=division, kind__in=kinds, is_active=True))
        if offices:
            found.extend(o for o in offices if o.pk != department.pk and o not in found)
            break
        division = Division.objects.filter(pk=division.parent_id).first() if division.parent_id else None
    return found


def _link(order: RectificationOrder) -> str:
    """The order's page."""
    return reverse("quality:order", kwargs={"code": order.code})


def _notify(order: RectificationOrder, template: str, department_ids, *, actor, **extra) -> int:
    """Send a notice about the order to the active officials of the given departments; how many were notified."""
    from dgov.kernel.services.notify import notify

    channels = _channels()
    if not channels:
        return 0
    context = {
        "code": order.code,
        "title": order.title,
        "registry": order.registry.name,
        "department": order.department.name,
        "failed": order.failed_now,
        "due_on": order.due_on.isoformat(),
        "days": order.deadline_days,
        "link": _link(order),
        **extra,
    }
    sent = 0
    for user in _officials(department_ids):
        notify(user, template, context, channels=channels, actor=services._audit_actor(actor))
        sent += 1
    return sent


# --- Findings -------------------------------------------------------------------------------------------------


def _active(registry: Registry, finding_key: str, department: Organization) -> QuerySet[RectificationOrder]:
    """The active order of a finding (at most one)."""
    return RectificationOrder.objects.filter(
        registry=registry, finding_key=finding_key, department=department, status__in=ACTIVE
    )


def _next_code(day: datetime.date) -> str:
    """The next free order code of the day: ``ZG20261129-0001``."""
    prefix = f"{CODE_PREFIX}{day:%Y%m%d}-"
    last = (
        RectificationOrder.objects.filter(code__startswith=prefix)
        .order_by(Length("code").desc(), "-code")
        .values_list("code", flat=True)
        .first()
    )
    seq = int(last[len(prefix) :]) + 1 if last else 1
    return f"{prefix}{seq:04d}"


def _clean_samples(samples) -> list[dict]:
    """Samples as stored on an order (already masked by the caller), bounded."""
    if not isinstance(samples, list):
        raise ValidationError(_("samples 应为列表"), code="samples")
    return [s for s in samples if isinstance(s, dict)][:MAX_ORDER_SAMPLES]


def _check_finding(source: str, finding_key: str, dimension: str, severity: str, failed) -> None:
    """Refuse malformed findings (a programming error of the caller, reported as ValidationError)."""
    problems = []
    if source not in Source.values:
        problems.append(_("未知的工单来源：%(source)s") % {"source": source})
    if not finding_key or len(finding_key) > 200:
        problems.append(_("问题标识应为 1–200 个字符"))
    if dimension not in Dimension.values:
        problems.append(_("未知的质量维度：%(dimension)s") % {"dimension": dimension})
    if severity not in Severity.values:
        problems.append(_("未知的严重程度：%(severity)s") % {"severity": severity})
    if isinstance(failed, bool) or not isinstance(failed, int) or failed < 0:
        problems.append(_("不合格数应为非负整数"))
    if problems:
        raise ValidationError(problems)


def _raise(
    *,
    source: str,
    registry: Registry,
    finding_key: str,
    department: Organization,
    title: str,
    dimension: str,
    fields,
    failed: int,
    samples,
    detail: dict | None,
    severity: str,
    run,
    actor,
    rule: QualityRule | None = None,
) -> tuple[RectificationOrder, bool]:
    """Open or update the finding's order; (order, opened)."""
    _check_finding(source, finding_key, dimension, severity, failed)
    samples = _clean_samples(samples)
    now = _now()
    moment = _run_moment(run, now)
    quality_run = run if isinstance(run, QualityRun) else None
    for _attempt in range(8):
        try:
            with transaction.atomic():
                order = _active(registry, finding_key, department).select_for_update().first()
                if order is not None:
                    _update(order, failed, samples, detail, quality_run, run, moment, now, actor=actor)
                    return order, False
                today = timezone.localdate(now)
                days = deadline_days(severity)
                order = RectificationOrder.objects.create(
                    code=_next_code(today),
                    source=source,
                    registry=registry,
                    rule=rule,
                    finding_key=finding_key,
                    title=(title or finding_key)[:300],
                    dimension=dimension,
                    department=department,
                    fields=list(fields or []),
                    opened_run=quality_run,
                    last_run=quality_run,
                    failed_at_open=failed,
                    failed_now=failed,
                    samples=samples,
                    detail={**(detail or {}), "severity": severity, **_run_ref(run)},
                    deadline_days=days,
                    opened_on=today,
                    due_on=add_working_days(today, days),
                )
                _event(
                    order,
                    "opened",
                    actor=actor,
                    data={"failed": failed, "due_on": order.due_on.isoformat(), **_run_ref(run)},
                )
                _audit(
                    "open",
                    order,
                    actor=actor,
                    detail={"failed": failed, "severity": severity, "due_on": order.due_on.isoformat()},
                )
                _notify(order, "quality.order.opened", [department.pk], actor=actor)
                return order, True
        except IntegrityError:
            # Another process opened the same finding (then update it) or took the code (then take the next).
            continue
    raise RuntimeError(f"could not open a rectification order for {registry.code}:{finding_key}")


def _update(order, failed, samples, detail, quality_run, run, moment, now, *, actor) -> None:
    """A re-check that still fails: new counts and samples; a submitted order reopens (if the run saw the answer)."""
    reopened = False
    answered_after = order.recheck_requested_at is not None and order.recheck_requested_at > moment
    if order.status == Status.SUBMITTED and not answered_after:
        order.status = Status.OPEN
        reopened = True
    if order.recheck_requested_at is not None and not answered_after:
        order.recheck_requested_at = None
    previous = order.failed_now
    order.failed_now = failed
    order.samples = samples
    if detail:
        order.detail = {**(order.detail or {}), **detail}
    if quality_run is not None:
        order.last_run = quality_run
    elif run is not None:
        order.detail = {**(order.detail or {}), **_run_ref(run)}
    order.save()
    data = {"failed": failed, "previous": previous, **_run_ref(run)}
    if reopened:
        data["reopened"] = True
    _event(order, "recheck_failed", actor=actor, data=data)
    _audit("recheck", order, actor=actor, detail={"failed": failed, "previous": previous, "reopened": reopened})
    if reopened:
        _notify(order, "quality.order.reopened", [order.department_id], actor=actor)


def raise_finding(
    *,
    source,
    registry,
    finding_key,
    department,
    title,
    dimension,
    fields,
    failed,
    samples,
    detail=None,
    severity="medium",
    run=None,
    actor,
) -> RectificationOrder:
    """Open a rectification order for a finding, or update the active one of the same (registry, key, department).

    ``samples`` must already be masked (they are shown to the department). A new order is due
    :func:`deadline_days` working days after today and its department is notified; an existing one
    gets the new counts and samples and a ``recheck_failed`` step, and a submitted one goes back to
    open unless the department answered after ``run`` started (the answer's own re-check follows).
    ``run`` is a :class:`QualityRun` or another run object (a linkage run: kept in ``detail``).
    """
    order, _opened = _raise(
        source=source,
        registry=registry,
        finding_key=finding_key,
        department=department,
        title=title,
        dimension=dimension,
        fields=fields,
        failed=failed,
        samples=samples,
        detail=detail,
        severity=severity,
        run=run,
        actor=actor,
    )
    return order


def clear_finding(*, registry, finding_key, department, actor, run=None, note="") -> RectificationOrder | None:
    """Close the finding's active order as resolved (the re-check passed); None when there is none."""
    now = _now()
    with transaction.atomic():
        order = _active(registry, finding_key, department).select_for_update().first()
        if order is None:
            return None
        previous = order.failed_now
        order.status = Status.RESOLVED
        order.failed_now = 0
        order.samples = []
        order.closed_at = now
        order.closed_by = services._actor_label(actor)
        order.recheck_requested_at = None
        if isinstance(run, QualityRun):
            order.last_run = run
        elif run is not None:
            order.detail = {**(order.detail or {}), **_run_ref(run)}
        order.save()
        _event(order, "resolved", actor=actor, note=note or "", data={"previous": previous, **_run_ref(run)})
        _audit("resolve", order, actor=actor, detail={"previous": previous, **_run_ref(run)})
        _notify(order, "quality.order.resolved", [order.department_id], actor=actor)
    return order


def _close_cancelled(order: RectificationOrder, *, actor, reason: str, data: dict | None = None) -> None:
    """Cancel a locked active order (event and audit)."""
    order.status = Status.CANCELLED
    order.closed_at = _now()
    order.closed_by = services._actor_label(actor)
    order.recheck_requested_at = None
    order.save()
    _event(order, "cancelled", actor=actor, note=reason, data=data)
    _audit("cancel", order, actor=actor, detail={"reason": reason[:200], **(data or {})})


# --- From quality runs ----------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    """What a run did to the registry's orders (order codes)."""

    opened: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


def sync_run(run: QualityRun, *, actor=None) -> SyncReport:
    """After a successful run: open/update an order per failing rule, clear those of passing rules, clear marks.

    Results that checked nothing change nothing; a run that did not succeed changes nothing. The
    registry's re-check marks set before the run started are cleared (the run covered them). An
    active order of a rule whose responsible department has since changed is cancelled (the new
    owner gets its own order).
    """
    report = SyncReport()
    if run.status != QualityRun.Status.SUCCEEDED:
        return report
    actor = actor if actor is not None else SYSTEM_ACTOR
    registry = run.registry
    results: list[RuleResult] = list(run.results.select_related("rule", "owner").order_by("rule_code"))
    severities = dict(QualityRule.objects.filter(registry=registry).values_list("code", "severity"))
    with transaction.atomic():
        # The departments holding an active order per finding: one query instead of two per rule.
        holders: dict[str, set[int]] = {}
        for key, department_id in RectificationOrder.objects.filter(
            registry=registry, source=Source.RULE, status__in=ACTIVE
        ).values_list("finding_key", "department_id"):
            holders.setdefault(key, set()).add(department_id)
        for result in results:
            if not result.checked:
                continue  # nothing could be checked: neither a failure nor a pass
            held = holders.get(result.rule_code, set())
            if held - {result.owner_id}:  # the rule's responsible department changed
                stale = (
                    RectificationOrder.objects.select_for_update(of=("self",))
                    .filter(registry=registry, source=Source.RULE, finding_key=result.rule_code, status__in=ACTIVE)
                    .exclude(department_id=result.owner_id)
                )
                for order in stale.select_related("registry", "department"):
                    _close_cancelled(
                        order,
                        actor=actor,
                        reason=_("规则的责任部门已变更为%(department)s") % {"department": result.owner.name},
                        data={"new_department": result.owner.code, **_run_ref(run)},
                    )
                    report.cancelled.append(order.code)
            if result.failed:
                order, opened = _raise(
                    source=Source.RULE,
                    registry=registry,
                    finding_key=result.rule_code,
                    department=result.owner,
                    title=result.rule_name,
                    dimension=result.dimension,
                    fields=result.fields,
                    failed=int(result.failed),
                    samples=result.samples or [],
                    detail={
                        "checked": int(result.checked),
                        "pass_rate": str(result.pass_rate) if result.pass_rate is not None else None,
                        "rule_type": result.rule_type,
                    },
                    severity=severities.get(result.rule_code, Severity.MEDIUM),
                    run=run,
                    actor=actor,
                    rule=result.rule,
                )
                (report.opened if opened else report.updated).append(order.code)
            elif result.owner_id in held:
                order = clear_finding(
                    registry=registry, finding_key=result.rule_code, department=result.owner, actor=actor, run=run
                )
                if order is not None:
                    report.resolved.append(order.code)
        # The run covered the changes made before it started (also for rules it could not check).
        RectificationOrder.objects.filter(
            registry=registry,
            source=Source.RULE,
            status__in=ACTIVE,
            recheck_requested_at__isnull=False,
            recheck_requested_at__lte=_run_moment(run, _now()),
        ).update(recheck_requested_at=None)
    return report


def after_run(run: QualityRun, *, actor=None) -> SyncReport | None:
    """The hook of :func:`dgov.quality.services.execute_run`: :func:`sync_run`, never failing the run itself.

    It runs inside the run's transaction (so the orders agree with the stored results and the
    day's trend snapshot counts them) in a savepoint of its own: if the bookkeeping fails, it alone
    is rolled back and logged, the run still succeeds, and the registry's re-check marks stay, so
    :func:`recheck_due` asks for another run that tries again.
    """
    try:
        return sync_run(run, actor=actor)
    except Exception:  # noqa: BLE001 - the run succeeded; orders catch up with the next run
        logger.exception("rectification orders of run %s were not updated", run.pk)
        return None


def on_rule_disabled(rule: QualityRule, *, actor) -> list[str]:
    """Cancel the active orders of a rule that was disabled; their codes."""
    cancelled = []
    with transaction.atomic():
        orders = (
            RectificationOrder.objects.select_for_update(of=("self",))
            .filter(Q(rule=rule) | Q(source=Source.RULE, registry_id=rule.registry_id, finding_key=rule.code))
            .filter(status__in=ACTIVE)
        )
        for order in orders.select_related("registry", "department"):
            _close_cancelled(order, actor=actor, reason=_("规则“%(code)s”已停用") % {"code": rule.code})
            cancelled.append(order.code)
    return cancelled


# --- Department actions ---------------------------------------------------------------------------------------


def _locked(order: RectificationOrder) -> RectificationOrder:
    """The order re-read under a row lock."""
    return (
        RectificationOrder.objects.select_for_update(of=("self",))
        .select_related("registry", "department", "department__division")
        .get(pk=order.pk)
    )


def _clean_note(note, *, required: bool, name: str) -> str:
    """A free-text note: stripped, bounded, required where it must be."""
    text = (note or "").strip() if isinstance(note, str) or note is None else None
    if text is None:
        raise ValidationError(_("%(name)s应为文本") % {"name": name}, code="note")
    if required and not text:
        raise ValidationError(_("请填写%(name)s") % {"name": name}, code="required")
    if len(text) > MAX_NOTE:
        raise ValidationError(_("%(name)s至多 %(n)d 字") % {"name": name, "n": MAX_NOTE}, code="max_length")
    return text


def _recheck_run(registry: Registry) -> QualityRun | None:
    """Request a run of the registry for a re-check, unless one is already queued (which covers it)."""
    queued = QualityRun.objects.filter(registry=registry, status=QualityRun.Status.QUEUED).order_by("-id").first()
    if queued is not None:
        return queued
    try:
        return services.request_run(registry, actor=RECHECK_ACTOR)
    except ValidationError:
        return None  # no enabled rules left: nothing to re-check with


def answer_order(order: RectificationOrder, *, actor, note: str) -> RectificationOrder:
    """The department answers an open order (整改反馈): note, status submitted, and a re-check run at once.

    PermissionDenied (audited) unless the actor works for the order's department; ValidationError
    when the note is missing or the order is not open.
    """
    department = _department(actor)
    if department is None or department.pk != order.department_id:
        raise services._deny(
            "quality.order.respond", actor=actor, target=order, message=_("只有整改部门可以反馈整改情况")
        )
    text = _clean_note(note, required=True, name=_("整改说明"))
    with transaction.atomic():
        locked = _locked(order)
        if locked.status != Status.OPEN:
            raise ValidationError(
                _("只能反馈待整改的工单（当前：%(status)s）") % {"status": locked.get_status_display()}, code="state"
            )
        locked.status = Status.SUBMITTED
        locked.response = text
        locked.recheck_requested_at = _now()
        locked.save()
        run = _recheck_run(locked.registry) if locked.source == Source.RULE else None
        data = {"run": run.pk} if run is not None else {}
        _event(locked, "answered", actor=actor, note=text, data=data)
        _audit("respond", locked, actor=actor, detail=data)
    return locked


def request_recheck(order: RectificationOrder, *, actor, note: str = "") -> QualityRun | None:
    """Ask for a re-check of an active order now (the department or a rule manager); the run requested, if any."""
    if not _may_ask_recheck(actor, order) or not can_view_order(actor, order):
        raise services._deny(
            "quality.order.recheck_request", actor=actor, target=order, message=_("无权申请复核该工单")
        )
    text = _clean_note(note, required=False, name=_("说明"))
    with transaction.atomic():
        locked = _locked(order)
        if locked.status not in ACTIVE:
            raise ValidationError(_("工单已办结或已撤销"), code="state")
        locked.recheck_requested_at = _now()
        locked.save(update_fields=["recheck_requested_at", "updated_at"])
        run = _recheck_run(locked.registry) if locked.source == Source.RULE else None
        data = {"run": run.pk} if run is not None else {}
        _event(locked, "recheck_requested", actor=actor, note=text, data=data)
        _audit("recheck_request", locked, actor=actor, detail=data)
    return run


def cancel_order(order: RectificationOrder, *, actor, reason: str) -> RectificationOrder:
    """Cancel an active order with a reason (rule managers); PermissionDenied (audited) or ValidationError."""
    if not may_cancel(actor):
        raise services._deny("quality.order.cancel", actor=actor, target=order, message=_("只有数据管理员可以撤销工单"))
    text = _clean_note(reason, required=True, name=_("撤销原因"))
    with transaction.atomic():
        locked = _locked(order)
        if locked.status not in ACTIVE:
            raise ValidationError(_("工单已办结或已撤销"), code="state")
        _close_cancelled(locked, actor=actor, reason=text)
    return locked


# --- Automatic re-check ---------------------------------------------------------------------------------------


def note_registry_change(registry_code: str, *, fields=None, at: datetime.datetime | None = None) -> int:
    """Mark the registry's active orders for a re-check after a write (``fields``: the changed fields, None: any).

    An order whose rule reads none of the changed fields is left alone; orders without fields
    (table-level rules) and writes that add or remove records (``fields=None``) mark every order.
    One SELECT of the registry's few active orders and at most one UPDATE; returns how many were marked.
    """
    rows = list(
        RectificationOrder.objects.filter(registry__code=registry_code, status__in=ACTIVE).values_list(
            "pk", "fields", "recheck_requested_at"
        )
    )
    if not rows:
        return 0
    at = at or _now()
    changed = set(fields) if fields is not None else None
    ids = [
        pk
        for pk, order_fields, marked in rows
        if (changed is None or not order_fields or changed & set(order_fields)) and (marked is None or marked < at)
    ]
    if ids:
        RectificationOrder.objects.filter(pk__in=ids).update(recheck_requested_at=at)
    return len(ids)


def _recheck_seconds(name: str, default: int) -> datetime.timedelta:
    """A re-check timing setting as a timedelta."""
    return datetime.timedelta(seconds=max(0.0, float(getattr(settings, name, default))))


def recheck_due(now: datetime.datetime | None = None) -> int:
    """Worker job: request a re-check run for each registry whose marked orders are due; runs requested.

    Due: the newest mark is ``QUALITY_RECHECK_DEBOUNCE_SECONDS`` old — or the registry's previous
    run was requested ``QUALITY_RECHECK_MAX_WAIT_SECONDS`` ago, so that a registry written all day
    long is still re-checked (every mark is younger than that run) — and no run of the registry is
    queued or running, and none was requested within the debounce period (a run that keeps failing
    is retried at that pace).
    """
    now = now or _now()
    debounce = _recheck_seconds("QUALITY_RECHECK_DEBOUNCE_SECONDS", DEFAULT_RECHECK_DEBOUNCE)
    max_wait = _recheck_seconds("QUALITY_RECHECK_MAX_WAIT_SECONDS", DEFAULT_RECHECK_MAX_WAIT)
    marked = (
        RectificationOrder.objects.filter(status__in=ACTIVE, source=Source.RULE, recheck_requested_at__isnull=False)
        .order_by()
        .values("registry_id")
        .annotate(last=Max("recheck_requested_at"))
    )
    requested = 0
    for row in marked:
        runs = QualityRun.objects.filter(registry_id=row["registry_id"])
        if runs.filter(status__in=(QualityRun.Status.QUEUED, QualityRun.Status.RUNNING)).exists():
            continue
        previous = runs.aggregate(at=Max("requested_at"))["at"]
        if previous is not None and debounce and previous > now - debounce:
            continue
        if not (row["last"] <= now - debounce or previous is None or previous <= now - max_wait):
            continue
        registry = Registry.objects.select_related("owner").get(pk=row["registry_id"])
        try:
            run = services.request_run(registry, actor=RECHECK_ACTOR)
        except ValidationError:
            # No enabled rule is left to re-check with: drop the marks rather than ask again forever.
            RectificationOrder.objects.filter(registry=registry, source=Source.RULE, status__in=ACTIVE).update(
                recheck_requested_at=None
            )
            continue
        with transaction.atomic():
            orders = RectificationOrder.objects.filter(
                registry=registry, source=Source.RULE, status__in=ACTIVE, recheck_requested_at__isnull=False
            ).select_related("registry", "department")
            for order in orders:
                _event(order, "recheck_requested", actor=RECHECK_ACTOR, data={"run": run.pk, "reason": "data_changed"})
                _audit("recheck_request", order, actor=RECHECK_ACTOR, detail={"run": run.pk, "reason": "data_changed"})
        requested += 1
    return requested


# --- Escalation -----------------------------------------------------------------------------------------------


def _cutoffs(today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """(c1, c2): an active order due before c1 has reached level 1, before c2 level 2.

    Level 1 is reached on the first working day after ``due_on``, i.e. when some working day lies
    in (due_on, today]: ``due_on`` before the last working day on or before today. Level 2 needs
    ``1 + N`` working days in (due_on, today]: ``due_on`` before the N-th working day before that one.
    """
    last = today if is_workday(today) else previous_workday(today)
    return last, add_working_days(last, -_escalation_days())


def escalate_due(*, today: datetime.date | None = None, actor=ESCALATION_ACTOR) -> list[tuple[str, int]]:
    """Escalate active overdue orders (督办): each level once; returns (order code, level) for each escalation."""
    today = today or timezone.localdate(_now())
    c1, c2 = _cutoffs(today)
    due = RectificationOrder.objects.filter(status__in=ACTIVE).filter(
        Q(escalation_level__lt=1, due_on__lt=c1) | Q(escalation_level__lt=MAX_LEVEL, due_on__lt=c2)
    )
    done: list[tuple[str, int]] = []
    for pk in due.order_by("due_on", "id").values_list("pk", flat=True):
        with transaction.atomic():
            order = (
                RectificationOrder.objects.select_for_update(of=("self",))
                .select_related("registry", "department", "department__division")
                .filter(pk=pk, status__in=ACTIVE)
                .first()
            )
            if order is None:
                continue
            target = MAX_LEVEL if order.due_on < c2 else 1 if order.due_on < c1 else 0
            while order.escalation_level < target:
                order.escalation_level += 1
                _escalate(order, order.escalation_level, today, actor=actor)
                done.append((order.code, order.escalation_level))
    return done


def _escalate(order: RectificationOrder, level: int, today: datetime.date, *, actor) -> None:
    """Record and announce one escalation level of a locked order."""
    order.escalated_at = _now()
    order.save(update_fields=["escalation_level", "escalated_at", "updated_at"])
    overdue = working_days_between(order.due_on, today)
    recipients = [order.department, *Organization.objects.filter(pk__in=_provincial_data_admins())]
    if level >= 2:
        recipients += superiors(order.department)
    unique: dict[int, Organization] = {org.pk: org for org in recipients}
    notified = _notify(order, "quality.order.escalated", unique.keys(), actor=actor, overdue=overdue, level=level)
    data = {"level": level, "overdue": overdue, "recipients": sorted(org.code for org in unique.values())}
    _event(order, "escalated", actor=actor, data={**data, "notified": notified})
    _audit("escalate", order, actor=actor, detail={**data, "notified": notified})


def escalation_job() -> int:
    """Worker job: :func:`escalate_due` for today (cheap when nothing is due: one indexed query)."""
    return len(escalate_due())
