"""Supervision of overdue and nearly due applications (超期/临期办件督办).

The list (:func:`due_applications`) holds the *open* applications of the viewer's scope (the same
scope as the metrics, :func:`dgov.services.metrics.applications_in_scope`: the provincial 大数据局 /
政务服务管理办公室 see all, a city's see their city's departments, any other official their own
department's) that are

* **超期** (overdue): flagged by the SLA clock, or not paused for 补正 and past their promised due date;
* **临期** (due soon): not overdue, and warned by the SLA clock or, not paused, due within
  ``SERVICES_SLA_WARNING_DAYS`` working days.

"Days overdue" are working days from the promised due date to today (negative: days left).

督办 (:func:`supervise`) is for supervisors: platform administrators, system actors and the
DSJ / ZWFW offices (the province's for every application, a city's for its city's). It appends an
``escalated`` event to the application's log (detail: who, from which office, the note), writes the
audit record ``services.supervise`` and sends an in-app notice to the officials of the
application's department (the claimants of its open tasks first). An official of an ordinary
department sees its own list but does not supervise itself.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dgov.kernel.masking import mask_name
from dgov.kernel.notify import NotificationTemplate, register_template
from dgov.kernel.services import audit, calendar
from dgov.kernel.services.divisions import scope_prefix
from dgov.kernel.services.notify import notify
from dgov.registry.services import department_of
from dgov.services import metrics
from dgov.services.applications import LIVE
from dgov.services.catalogue import ADMIN_KINDS
from dgov.services.models_process import Application, ApplicationEvent, ApplicationTask

__all__ = [
    "SORTS",
    "STATES",
    "due_applications",
    "may_supervise",
    "rows_of",
    "supervise",
    "visible_application",
]

SUPERVISE_TEMPLATE = "services.supervise"
MAX_NOTE = 500
MAX_RECIPIENTS = 50
STATES = ("all", "overdue", "warned")
#: Sort orders of the list: most overdue first (default), least overdue first, by department.
SORTS = {
    "days": ("promised_due", "submitted_at"),
    "-days": ("-promised_due", "-submitted_at"),
    "department": ("department__code", "promised_due"),
}

register_template(
    SUPERVISE_TEMPLATE,
    NotificationTemplate(
        title=gettext_lazy("【督办】办件 {number}"),
        body=gettext_lazy("{office}对办件 {number}（{item}，承诺办结日期 {due}）进行督办：{note}请尽快办结。"),
    ),
)


def _today() -> datetime.date:
    """Today in the platform's time zone."""
    return timezone.localdate()


def _warn_until(today: datetime.date) -> datetime.date:
    """The last due date that counts as 临期 today."""
    return calendar.add_working_days(today, int(getattr(settings, "SERVICES_SLA_WARNING_DAYS", 2)))


def _warned_q(today: datetime.date) -> Q:
    """Due soon (and not overdue): warned, or running and due within the warning days."""
    soon = Q(warned=True) | Q(paused_since__isnull=True, promised_due__lte=_warn_until(today))
    return soon & ~metrics.overdue_q(today)


def due_applications(
    actor, *, state: str = "all", department: str = "", sort: str = "days", today: datetime.date | None = None
) -> QuerySet[Application]:
    """Open overdue / due-soon applications in the actor's scope, sorted; ValidationError for a bad state or sort."""
    errors = {}
    if state not in STATES:
        errors["state"] = [_("状态应为 %(values)s 之一。") % {"values": "、".join(STATES)}]
    if sort not in SORTS:
        errors["sort"] = [_("排序应为 %(values)s 之一。") % {"values": "、".join(SORTS)}]
    if errors:
        raise ValidationError(errors)
    today = today or _today()
    overdue, warned = metrics.overdue_q(today), _warned_q(today)
    wanted = {"overdue": overdue, "warned": warned}.get(state, overdue | warned)
    qs = metrics.applications_in_scope(actor).exclude(status__in=Application.CLOSED).filter(wanted)
    if department:
        qs = qs.filter(department__code=department)
    open_tasks = ApplicationTask.objects.filter(status__in=LIVE).select_related("claimed_by")
    return (
        qs.select_related("item", "department__division")  # the division: may_supervise, per row
        .prefetch_related(Prefetch("tasks", queryset=open_tasks, to_attr="open_tasks"))
        .order_by(*SORTS[sort], "pk")
    )


def rows_of(applications, *, today: datetime.date | None = None) -> list[dict]:
    """Display rows for a page of applications: state, working days overdue, claimants, masked applicant."""
    today = today or _today()
    rows = []
    for app in applications:
        days = calendar.working_days_between(app.promised_due, today) if app.promised_due else None
        overdue = app.overdue or (
            app.paused_since is None and app.promised_due is not None and app.promised_due < today
        )
        claimants = sorted(
            {
                (task.claimed_by.display_name or task.claimed_by.username)
                for task in getattr(app, "open_tasks", [])
                if task.claimed_by_id
            }
        )
        rows.append(
            {
                "app": app,
                "overdue": overdue,
                "days": days,
                "paused": app.paused_since is not None,
                "claimants": claimants,
                "applicant": mask_name(app.holder_name),
            }
        )
    return rows


def visible_application(actor, number: str) -> Application | None:
    """The application with this number if it is in the actor's scope (else None: a 404, no IDOR)."""
    return (
        metrics.applications_in_scope(actor)
        .select_related("item", "department", "department__division")
        .filter(number=str(number)[:32])
        .first()
    )


def may_supervise(actor, app: Application) -> bool:
    """Supervisors (see the module docstring) of the application's department."""
    if metrics.sees_all(actor):
        return True
    department = department_of(actor)
    return bool(
        department is not None
        and department.is_active
        and department.kind in ADMIN_KINDS
        and app.department.division.code.startswith(scope_prefix(department.division.code))
    )


def _recipients(app: Application) -> list:
    """The claimants of the open tasks, then the department's active officials (at most MAX_RECIPIENTS)."""
    User = get_user_model()
    claimants = list(
        User.objects.filter(
            pk__in=app.tasks.filter(status=ApplicationTask.Status.CLAIMED).values("claimed_by"), is_active=True
        )
    )
    seen = {user.pk for user in claimants}
    others = User.objects.filter(department=app.department, is_active=True).exclude(pk__in=seen).order_by("pk")
    return (claimants + list(others))[:MAX_RECIPIENTS]


def _office_label(actor) -> str:
    """Who supervises, as the notice names it: the office's name, or the actor."""
    department = department_of(actor)
    if department is not None:
        return department.name
    return str(getattr(actor, "display_name", "") or getattr(actor, "username", "") or actor)


def supervise(app: Application, *, actor, note: str = "") -> ApplicationEvent:
    """督办 an open application: an ``escalated`` event, an audit record and notices to its department.

    PermissionDenied (audited) when the actor may not supervise it, ValidationError for a closed
    application or a note longer than :data:`MAX_NOTE`.
    """
    note = str(note or "").strip()
    if not may_supervise(actor, app):
        with transaction.atomic():
            audit.record("services.supervise", actor=actor, target=app, outcome="denied", detail={"number": app.number})
        raise PermissionDenied(_("只有政务服务管理机构可以督办。"))
    if len(note) > MAX_NOTE:
        raise ValidationError({"note": [_("督办意见不能超过 %(max)d 个字。") % {"max": MAX_NOTE}]})
    with transaction.atomic():
        locked = Application.objects.select_for_update(of=("self",)).select_related("item", "department").get(pk=app.pk)
        if locked.is_closed:
            raise ValidationError({"application": [_("该办件已办结，无需督办。")]})
        department = department_of(actor)
        by = str(getattr(actor, "username", actor) or "")[:150]
        event = ApplicationEvent.objects.create(
            application=locked,
            kind=ApplicationEvent.Kind.ESCALATED,
            actor_label=by,
            channel=locked.channel,
            detail={
                "supervision": True,
                "by": by,
                "office": department.code if department is not None else "",
                "note": note,
                "due": locked.promised_due.isoformat() if locked.promised_due else "",
            },
        )
        recipients = _recipients(locked)
        audit.record(
            "services.supervise",
            actor=actor,
            target=locked,
            detail={
                "number": locked.number,
                "department": locked.department.code,
                "event": event.pk,
                "notified": len(recipients),
            },
        )
        context = {
            "number": locked.number,
            "item": locked.item.name,
            "due": locked.promised_due.isoformat() if locked.promised_due else "—",
            "office": _office_label(actor),
            "note": f"{note}。" if note and not note.endswith(("。", "！", ".", "!")) else note,
            "link": reverse("services:supervision"),
        }
        for person in recipients:
            notify(person, SUPERVISE_TEMPLATE, context, channels=("in_app",), actor=actor)
    return event
