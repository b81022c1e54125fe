"""Applications (办件) of 一网通办 on BPMN processes: submit, claim and complete tasks, 补正, the SLA clock.

Every operation runs in one transaction, writes an :class:`ApplicationEvent` (the log metrics are
computed from) and an audit record, and takes the acting user keyword-only.

* :func:`submit` validates the form against the item's ``form_schema`` (per-field messages as a
  Django ``ValidationError``), starts the item's process (``process_key``), runs engine steps to the
  first user task and persists the compact state (:mod:`dgov.services.processes`).
* :func:`complete_task` — two officials completing the same task: exactly one wins. The application
  row is locked (``select_for_update``) and its ``version`` is compared-and-swapped, so the loser
  gets :class:`TaskConflict` (HTTP 409) on PostgreSQL (row lock) and on SQLite (CAS) alike.
* SLA clock: due dates in working days (``dgov.kernel.services.calendar``) from the submission
  day; a correction request (补正) pauses it until the applicant resubmits, and the due dates move
  by the paused working days. :func:`sla_sweep` (a periodic worker job) warns before and escalates
  after the promised due date, notifying officials through the kernel's notifications.
"""

from __future__ import annotations

import datetime
import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from SpiffWorkflow.util.task import TaskState

from dgov.kernel.models import Division, Organization
from dgov.kernel.notify import NotificationTemplate, register_template
from dgov.kernel.services import audit, calendar
from dgov.kernel.services.notify import notify
from dgov.kernel.services.organizations import find_department
from dgov.licenses.models import HolderKind
from dgov.licenses.services import holder_index
from dgov.services import processes
from dgov.services.form_schema import validate_form
from dgov.services.models_process import Application, ApplicationEvent, ApplicationTask

__all__ = [
    "TaskConflict",
    "DECISIONS",
    "decisions_for",
    "submit",
    "claim_task",
    "complete_task",
    "submit_correction",
    "may_correct",
    "applications_of",
    "tasks_for",
    "visible_task",
    "sla_sweep",
    "form_data",
    "application_closed",
]

# Decisions an official can take per task (node id); any other official task is simply passed (通过).
DECISIONS = {
    "accept": ("accept", "reject", "correct"),
    "decide": ("approve", "deny"),
}
DEFAULT_DECISIONS = ("pass",)
#: Task statuses that still wait for someone (待办).
LIVE = (ApplicationTask.Status.OPEN, ApplicationTask.Status.CLAIMED)
DECISION_LABELS = {
    "accept": gettext_lazy("受理"),
    "reject": gettext_lazy("不予受理"),
    "correct": gettext_lazy("要求补正"),
    "approve": gettext_lazy("准予"),
    "deny": gettext_lazy("不予准予"),
    "pass": gettext_lazy("审查通过"),
}
# End events → the application's final status.
END_STATUS = {
    "end_completed": Application.Status.APPROVED,
    "end_denied": Application.Status.DENIED,
    "end_rejected": Application.Status.REJECTED,
}

WARN_TEMPLATE = "services.sla.warning"
ESCALATE_TEMPLATE = "services.sla.overdue"
CORRECTION_TEMPLATE = "services.application.correction"
DONE_TEMPLATE = "services.application.completed"
register_template(
    WARN_TEMPLATE,
    NotificationTemplate(
        title=gettext_lazy("办件即将超期：{number}"),
        body=gettext_lazy("办件 {number}（{item}）将于 {due} 到期，请及时办理。"),
    ),
)
register_template(
    ESCALATE_TEMPLATE,
    NotificationTemplate(
        title=gettext_lazy("办件已超期：{number}"),
        body=gettext_lazy("办件 {number}（{item}）已超过承诺时限 {due}，已提请督办。"),
    ),
)
register_template(
    CORRECTION_TEMPLATE,
    NotificationTemplate(
        title=gettext_lazy("请补正申请材料：{number}"),
        body=gettext_lazy("您的申请 {number}（{item}）需要补正：{reason}"),
    ),
)
register_template(
    DONE_TEMPLATE,
    NotificationTemplate(
        title=gettext_lazy("办件已办结：{number}"),
        body=gettext_lazy("您的申请 {number}（{item}）已办结：{result}。"),
        # The result (决定书, e-licence) is on the tracking page the link opens (dgov.services.results).
        sms_code="DGOV_0101",
        sms_text="您的申请${number}已办结：${result}。请登录一网通办“我的办件”查看办理结果。",
    ),
)


#: Sent inside the transaction that closes an application (办结 or 不予受理), with ``application``,
#: ``actor`` and the decision's ``data`` (opinion; licence items the official entered): result delivery
#: (决定书, e-licence) and 一件事 completion listen to it. A receiver that raises rolls the completion
#: back, so receivers refuse only what must not be completed.
application_closed = Signal()


class TaskConflict(Exception):
    """The task was completed (or claimed) by someone else first; reload and look again (HTTP 409)."""


# --- helpers ----------------------------------------------------------------------------------------


def _today() -> datetime.date:
    """Today in the platform's time zone."""
    return timezone.localdate()


def _label(actor) -> str:
    """A short actor label for the event log."""
    return str(getattr(actor, "username", actor) or "")[:150]


def _event(app: Application, kind: str, actor, **detail) -> ApplicationEvent:
    """Append one entry to the application's event log."""
    return ApplicationEvent.objects.create(
        application=app, kind=kind, actor_label=_label(actor), channel=app.channel, detail=detail
    )


def _new_number() -> str:
    """A unique, unguessable-enough application number: date + random digits."""
    return _today().strftime("%Y%m%d") + "".join(secrets.choice("0123456789") for _ in range(10))


def _competent_department(item, division: Division) -> Organization:
    """The item's implementing organization at the division, else its department kind there (or above)."""
    impl = item.implementations.filter(division_code=division.code).select_related("organization").first()
    if impl is not None:
        return impl.organization
    node = division
    while node is not None:
        dept = find_department(node.code, item.department_kind)
        if dept is not None:
            return dept
        node = node.parent
    raise ValidationError({"division": [_("该事项在所选地区没有承办部门。")]})


def _default_division() -> Division:
    """The demo province's division, where an application lands when none is given."""
    code = getattr(settings, "DEMO_PROVINCE_CODE", "370000")
    division = Division.objects.filter(code=code).first() or Division.objects.order_by("level", "code").first()
    if division is None:
        raise ValidationError({"division": [_("请选择办理地。")]})
    return division


def _holder(applicant) -> tuple[str, str]:
    """The applicant's subject kind and holder index.

    A verified person is indexed by the blind index of their ID number and an enterprise by that of
    its USCC — the same digests the registries and e-licences use, so an application can be matched
    with the holder's records and licences; an unverified account by ``account:<id>``.
    """
    kind = str(getattr(applicant, "kind", "") or "person")[:16]
    digest = getattr(applicant, "id_number_digest", "") or ""
    uscc = getattr(applicant, "enterprise_uscc", "") or ""
    if kind == HolderKind.ENTERPRISE and uscc:
        return kind, holder_index(HolderKind.ENTERPRISE, uscc)
    if digest:
        return kind, digest
    return kind, f"account:{applicant.pk}"


def _holder_number(applicant, kind: str) -> str:
    """The verified ID number (person) or USCC (enterprise) of the account, "" when not verified."""
    if kind == HolderKind.ENTERPRISE:
        return getattr(applicant, "enterprise_uscc", "") or ""
    return (getattr(applicant, "id_number", "") or "") if getattr(applicant, "id_number_digest", "") else ""


def form_data(app: Application) -> dict:
    """The application's form data (decrypted)."""
    return json.loads(app.form_data or "{}")


def _dump_form(cleaned: dict) -> str:
    """Validated form data as stored (sealed by the encrypted field)."""
    return json.dumps(cleaned, ensure_ascii=False, sort_keys=True)


def _sync_tasks(app: Application, workflow) -> list[ApplicationTask]:
    """Create ApplicationTask rows for new READY user tasks; cancel rows whose engine task is gone."""
    ready = processes.ready_user_tasks(workflow)
    ready_ids = {str(t.id) for t in ready}
    live = {t.spiff_id: t for t in app.tasks.filter(status__in=LIVE)}
    for spiff_id, row in live.items():
        if spiff_id not in ready_ids:
            row.status = ApplicationTask.Status.CANCELLED
            row.save(update_fields=["status"])
    created = []
    for task in ready:
        if str(task.id) in live:
            continue
        lane = task.task_spec.lane or ""
        applicant_task = lane == processes.APPLICANT_LANE
        created.append(
            ApplicationTask.objects.create(
                application=app,
                spiff_id=str(task.id),
                spec_name=task.task_spec.name,
                name=task.task_spec.bpmn_name or task.task_spec.name,
                lane=lane,
                department=None if applicant_task else app.department,
                assignee=app.applicant if applicant_task else None,
            )
        )
    return created


def _end_status(workflow) -> str | None:
    """The final status when the process has completed (by its end event), else None."""
    if not workflow.is_completed():
        return None
    for task in workflow.get_tasks(state=TaskState.COMPLETED):
        if task.task_spec.name in END_STATUS:
            return END_STATUS[task.task_spec.name]
    return Application.Status.APPROVED


def _pause(app: Application) -> None:
    """Stop the SLA clock (补正)."""
    if app.paused_since is None:
        app.paused_since = timezone.now()


def _resume(app: Application) -> int:
    """Restart the SLA clock; the due dates move by the paused working days, which are returned."""
    if app.paused_since is None:
        return 0
    days = max(calendar.working_days_between(timezone.localtime(app.paused_since), _today()), 0)
    app.paused_days += days
    if days:
        if app.promised_due:
            app.promised_due = calendar.add_working_days(app.promised_due, days)
        if app.legal_due:
            app.legal_due = calendar.add_working_days(app.legal_due, days)
        app.warned = False
    app.paused_since = None
    return days


# --- operations -------------------------------------------------------------------------------------


def submit(
    item,
    *,
    applicant,
    data: dict,
    channel: str = Application.Channel.ONLINE,
    actor,
    division: Division | None = None,
    holder: tuple[str, str, str, str] | None = None,
    window_official=None,
    bundle_case=None,
    delivery: str = Application.Delivery.ELECTRONIC,
) -> Application:
    """Validate the form, start the item's BPMN process up to its first user task and persist the application.

    ``applicant`` is the applicant's account; a walk-in applicant at a window may have none (``None``),
    and then ``holder`` gives ``(kind, holder index, name, ID number or USCC)`` — the index is what lets them find the
    application online once they verify an account (:func:`applications_of`). ``window_official``
    is the official who took it at a window (一窗受理), ``bundle_case`` the 一件事 it belongs to.
    Callers that add materials or events of their own wrap this in their transaction.
    """
    if applicant is None and holder is None:
        raise ValidationError({"applicant": [_("请指明申请人。")]})
    if delivery not in Application.Delivery.values:
        raise ValidationError({"delivery": [_("未知的结果送达方式。")]})
    if channel not in Application.Channel.values:
        raise ValidationError({"channel": [_("未知的申请渠道。")]})
    if getattr(item, "status", "active") != "active":
        raise ValidationError({"item": [_("该事项已停用。")]})
    cleaned, errors = validate_form(item.form_schema or {}, data)
    if errors:
        raise ValidationError(errors)
    division = division or _default_division()
    department = _competent_department(item, division)
    with transaction.atomic():
        definition = processes.definition_for(item.process_key or "review", actor=actor)
        workflow = processes.new_workflow(definition)
        today = _today()
        if holder is not None:
            kind, holder_id, holder_name, holder_number = holder
        else:
            kind, holder_id = _holder(applicant)
            holder_name = getattr(applicant, "display_name", "") or ""
            holder_number = _holder_number(applicant, kind)
        app = Application.objects.create(
            number=_new_number(),
            item=item,
            applicant=applicant,
            holder_kind=kind,
            holder_id=holder_id,
            holder_name=holder_name,
            holder_number=holder_number,
            window_official=window_official,
            bundle_case=bundle_case,
            delivery=delivery,
            division=division,
            department=department,
            definition=definition,
            form_data=_dump_form(cleaned),
            channel=channel,
            workflow_state=processes.dump_state(workflow),
            promised_due=calendar.add_working_days(today, item.promised_limit_days),
            legal_due=calendar.add_working_days(today, item.legal_limit_days),
        )
        tasks = _sync_tasks(app, workflow)
        _event(app, ApplicationEvent.Kind.SUBMITTED, actor, item=item.basic_code, process=str(definition))
        audit.record(
            "services.application.submit",
            actor=actor,
            target=app,
            detail={
                "item": item.basic_code,
                "channel": channel,
                "process": str(definition),
                "tasks": [t.spec_name for t in tasks],
            },
        )
    return app


def _authorize_task(task: ApplicationTask, actor) -> None:
    """Officials of the task's department (or the applicant for applicant tasks) may act on it."""
    if task.lane == processes.APPLICANT_LANE:
        if task.assignee_id is None or task.assignee_id != getattr(actor, "pk", None):
            raise PermissionDenied(_("只有申请人本人可以办理此任务。"))
        return
    dept = getattr(actor, "department", None)
    if not getattr(actor, "is_authenticated", False) or dept is None or dept.pk != task.department_id:
        raise PermissionDenied(_("此任务不属于您所在的部门。"))


def claim_task(task: ApplicationTask, *, actor) -> ApplicationTask:
    """Claim an open task (认领) for the acting official; a task claimed by someone else raises TaskConflict."""
    _authorize_task(task, actor)
    with transaction.atomic():
        updated = ApplicationTask.objects.filter(pk=task.pk, status=ApplicationTask.Status.OPEN).update(
            status=ApplicationTask.Status.CLAIMED, claimed_by=actor
        )
        task.refresh_from_db()
        if not updated:
            if task.status == ApplicationTask.Status.CLAIMED and task.claimed_by_id == actor.pk:
                return task
            raise TaskConflict(_("该任务已被他人认领或已办结。"))
        _event(task.application, ApplicationEvent.Kind.TASK_CLAIMED, actor, task=task.spec_name)
        audit.record("services.task.claim", actor=actor, target=task, detail={"application": task.application.number})
    return task


def decisions_for(task: ApplicationTask) -> tuple[str, ...]:
    """The decisions an official may take on this task (none on the applicant's 补正 task)."""
    if task.lane == processes.APPLICANT_LANE:
        return ()
    return DECISIONS.get(task.spec_name, DEFAULT_DECISIONS)


def _advance(app: Application, task: ApplicationTask, *, engine_data: dict, expected_version: int) -> None:
    """Run the engine task, persist the new state with a version compare-and-swap; the caller holds the row lock."""
    workflow = processes.restore(app.definition, app.workflow_state)
    spiff = next((t for t in processes.ready_user_tasks(workflow) if str(t.id) == task.spiff_id), None)
    if spiff is None:
        raise TaskConflict(_("该任务已办结或已撤销。"))
    spiff.data.update(engine_data)
    spiff.run()
    workflow.do_engine_steps()
    end = _end_status(workflow)
    swapped = Application.objects.filter(pk=app.pk, version=expected_version).update(version=expected_version + 1)
    if not swapped:
        raise TaskConflict(_("该办件已被他人更新，请刷新后重试。"))
    app.version = expected_version + 1
    app.workflow_state = processes.dump_state(workflow)
    if end is not None:
        app.status = end
        app.completed_at = timezone.now()
        app.paused_since = None
    _sync_tasks(app, workflow)


def complete_task(task: ApplicationTask, *, actor, decision: str, data: dict | None = None) -> ApplicationTask:
    """Complete an official's task with a decision; of two officials completing the same task exactly one wins."""
    _authorize_task(task, actor)
    if task.lane == processes.APPLICANT_LANE:
        raise PermissionDenied(_("补正任务由申请人提交补正材料完成。"))
    if decision not in decisions_for(task):
        raise ValidationError({"decision": [_("此任务不能作出该决定。")]})
    data = dict(data or {})
    opinion = str(data.get("opinion", ""))[:2000]
    if decision in {"reject", "correct", "deny"} and not opinion.strip():
        raise ValidationError({"opinion": [_("请填写理由。")]})
    with transaction.atomic():
        app = (
            Application.objects.select_for_update(of=("self",))
            .select_related("definition", "item")
            .get(pk=task.application_id)
        )
        row = ApplicationTask.objects.select_for_update().get(pk=task.pk)
        if row.status not in LIVE:
            raise TaskConflict(_("该任务已被他人办结。"))
        if row.status == ApplicationTask.Status.CLAIMED and row.claimed_by_id not in (None, actor.pk):
            raise TaskConflict(_("该任务已被他人认领。"))
        _advance(app, row, engine_data={"decision": decision}, expected_version=app.version)
        now = timezone.now()
        ApplicationTask.objects.filter(pk=row.pk).update(
            status=ApplicationTask.Status.DONE,
            completed_by=actor,
            claimed_by=row.claimed_by or actor,
            decision=decision,
            data={"opinion": opinion},
            completed_at=now,
        )
        kinds = []
        if row.spec_name == "accept":
            if decision == "accept":
                app.accepted_at = now
                app.status = Application.Status.IN_PROGRESS
                kinds.append(ApplicationEvent.Kind.ACCEPTED)
            elif decision == "correct":
                app.status = Application.Status.CORRECTION
                _pause(app)
                kinds.append(ApplicationEvent.Kind.CORRECTION_REQUESTED)
            else:
                kinds.append(ApplicationEvent.Kind.REJECTED)
        elif decision == "approve":
            kinds.append(ApplicationEvent.Kind.APPROVED)
        elif decision == "deny":
            kinds.append(ApplicationEvent.Kind.DENIED)
        else:
            kinds.append(ApplicationEvent.Kind.TASK_COMPLETED)
        if app.is_closed:
            kinds.append(ApplicationEvent.Kind.COMPLETED)
        app.save()
        for kind in kinds:
            _event(app, kind, actor, task=row.spec_name, decision=decision)
        audit.record(
            "services.task.complete",
            actor=actor,
            target=row,
            detail={"application": app.number, "task": row.spec_name, "decision": decision, "status": app.status},
        )
        if app.is_closed:
            application_closed.send(sender=Application, application=app, actor=actor, data=data)
        context = {"number": app.number, "item": app.item.name, "link": f"/services/my/{app.number}/"}
        if app.applicant is None:
            pass  # a walk-in applicant without an account is told at the window (or by the result's delivery)
        elif decision == "correct":
            notify(
                app.applicant, CORRECTION_TEMPLATE, {**context, "reason": opinion}, channels=("in_app",), actor=actor
            )
        elif app.is_closed and app.bundle_case_id is None:
            notify(
                app.applicant,
                DONE_TEMPLATE,
                {**context, "result": app.get_status_display(), "link": f"/services/my/{app.number}/#result"},
                channels=tuple(getattr(settings, "SERVICES_RESULT_NOTIFY_CHANNELS", ("in_app", "sms"))),
                actor=actor,
            )
    row.refresh_from_db()
    return row


def may_correct(app: Application, user) -> bool:
    """Whether ``user`` may submit the 补正 online: the applicant, or the verified holder the application is for."""
    if not getattr(user, "is_authenticated", False):
        return False
    if app.applicant_id is not None and app.applicant_id == user.pk:
        return True
    if getattr(user, "real_name_level", 1) < 2 or not app.holder_id:
        return False
    kind, holder_id = _holder(user)
    return not holder_id.startswith("account:") and (kind, holder_id) == (app.holder_kind, app.holder_id)


def submit_correction(app: Application, *, actor, data: dict, on_behalf: bool = False) -> Application:
    """The applicant resubmits the form (补正); the SLA clock restarts and the process returns to 受理.

    The applicant or the verified holder (:func:`may_correct`) submits it; ``on_behalf`` is the window
    official submitting it for an applicant standing at the window (``dgov.services.window`` checks
    the official and the holder's document first). Callers adding files wrap this in their transaction.
    """
    if on_behalf:
        if not (getattr(actor, "is_official", False) and getattr(actor, "department_id", None)):
            raise PermissionDenied(_("只有窗口工作人员可以代为提交补正。"))
    elif not may_correct(app, actor):
        raise PermissionDenied(_("只有申请人本人可以提交补正。"))
    cleaned, errors = validate_form(app.item.form_schema or {}, data)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = Application.objects.select_for_update(of=("self",)).select_related("definition", "item").get(pk=app.pk)
        row = (
            locked.tasks.select_for_update()
            .filter(lane=processes.APPLICANT_LANE, status=ApplicationTask.Status.OPEN)
            .first()
        )
        if row is None or locked.status != Application.Status.CORRECTION:
            raise TaskConflict(_("该办件当前不需要补正。"))
        _advance(locked, row, engine_data={"decision": ""}, expected_version=locked.version)
        ApplicationTask.objects.filter(pk=row.pk).update(
            status=ApplicationTask.Status.DONE, completed_by=actor, completed_at=timezone.now()
        )
        locked.form_data = _dump_form(cleaned)
        days = _resume(locked)
        locked.status = Application.Status.SUBMITTED
        locked.save()
        _event(locked, ApplicationEvent.Kind.CORRECTION_SUBMITTED, actor, paused_days=days, on_behalf=on_behalf)
        audit.record(
            "services.application.correct",
            actor=actor,
            target=locked,
            detail={"paused_days": days, "on_behalf": on_behalf},
        )
    return locked


# --- queries ----------------------------------------------------------------------------------------


def applications_of(user) -> QuerySet[Application]:
    """The applications of a citizen or enterprise (我的办件): submitted from the account, or for its verified subject.

    A verified account also sees what was submitted for its subject elsewhere — at a window for a
    walk-in applicant, by an agent — found through the holder index (the blind index of the
    verified ID number or USCC).
    """
    if not getattr(user, "is_authenticated", False):
        return Application.objects.none()
    mine = Q(applicant=user)
    if getattr(user, "real_name_level", 1) >= 2:
        kind, holder_id = _holder(user)
        if not holder_id.startswith("account:"):
            mine |= Q(holder_kind=kind, holder_id=holder_id)
    # Lists never read the process state or the decision PDF: they load only when an object asks for them.
    return Application.objects.filter(mine).select_related("item", "department").defer("workflow_state", "result_pdf")


def tasks_for(user, *, include_done: bool = False) -> QuerySet[ApplicationTask]:
    """The task inbox (待办) of an official: tasks of the official's department; an applicant's own tasks otherwise."""
    statuses = list(LIVE)
    if include_done:
        statuses.append(ApplicationTask.Status.DONE)
    # The process state (~40 KB) and the decision PDF stay in the database: lists and task pages never read them.
    qs = (
        ApplicationTask.objects.filter(status__in=statuses)
        .select_related("application", "application__item")
        .defer("application__workflow_state", "application__result_pdf")
    )
    dept = getattr(user, "department", None)
    if getattr(user, "kind", "") == "official" and dept is not None:
        return qs.filter(department=dept)
    return qs.filter(assignee=user)


def visible_task(user, task_id: int) -> ApplicationTask | None:
    """The task if ``user`` may see it (no IDOR), else None."""
    return tasks_for(user, include_done=True).filter(pk=task_id).first()


# --- SLA --------------------------------------------------------------------------------------------


def _officials_to_tell(app: Application, *, escalate: bool) -> list:
    """Claimants of open tasks, else the department's officials; on escalation also the parent organization's."""
    User = get_user_model()
    claimed = list(
        User.objects.filter(pk__in=app.tasks.filter(status=ApplicationTask.Status.CLAIMED).values("claimed_by"))
    )
    people = claimed or list(User.objects.filter(department=app.department, is_active=True).order_by("pk")[:20])
    if escalate and app.department.parent_id:
        people += list(User.objects.filter(department_id=app.department.parent_id, is_active=True).order_by("pk")[:20])
    return people


def sla_sweep(*, today: datetime.date | None = None, actor="system:worker") -> dict:
    """Periodic job: warn before and escalate after the promised due date of open, unpaused applications."""
    today = today or _today()
    warn_days = int(getattr(settings, "SERVICES_SLA_WARNING_DAYS", 2))
    warn_until = calendar.add_working_days(today, warn_days)
    open_apps = Application.objects.exclude(status__in=Application.CLOSED).filter(paused_since__isnull=True)
    counts = {"warned": 0, "escalated": 0}
    candidates = open_apps.filter(
        Q(overdue=False, promised_due__lt=today) | Q(warned=False, promised_due__lte=warn_until)
    )
    for app_id in candidates.values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            app = (
                Application.objects.select_for_update(of=("self",)).select_related("item", "department").get(pk=app_id)
            )
            if app.is_closed or app.paused_since is not None:
                continue
            escalate = not app.overdue and app.promised_due < today
            warn = not escalate and not app.warned and app.promised_due <= warn_until
            if not (escalate or warn):
                continue
            if escalate:
                app.overdue = True
                app.warned = True
                kind, template, action = ApplicationEvent.Kind.ESCALATED, ESCALATE_TEMPLATE, "services.sla.escalate"
            else:
                app.warned = True
                kind, template, action = ApplicationEvent.Kind.WARNED, WARN_TEMPLATE, "services.sla.warn"
            app.save(update_fields=["overdue", "warned"])
            _event(app, kind, actor, due=app.promised_due.isoformat())
            audit.record(action, actor=actor, target=app, detail={"due": app.promised_due.isoformat()})
            context = {"number": app.number, "item": app.item.name, "due": app.promised_due.isoformat()}
            for person in _officials_to_tell(app, escalate=escalate):
                notify(person, template, context, channels=("in_app",), actor=actor)
            counts["escalated" if escalate else "warned"] += 1
    return counts


def sla_job() -> int:
    """Worker entry point: :func:`sla_sweep` for today; returns how many applications it changed."""
    return sum(sla_sweep().values())
