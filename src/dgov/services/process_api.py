"""The applications API (办件接口) at /api/v1/services/applications: submit, read own, task inbox, complete tasks.

=======  ===============================  ==========================================================
method   path                             what
=======  ===============================  ==========================================================
POST     ``""``                           submit an application (form validated against the item)
GET      ``""``                           the caller's own applications
GET      ``/tasks``                       the caller's task inbox (officials: their department's)
POST     ``/tasks/{id}/claim``            claim a task (认领)
POST     ``/tasks/{id}/complete``         complete a task with a decision (409 when someone was first)
GET      ``/{number}``                    one application (its applicant, or its department's officials)
POST     ``/{number}/correction``         the applicant resubmits the form (补正)
POST     ``/{number}/rating``             rate a closed application (好差评; 409 when already rated)
=======  ===============================  ==========================================================

Callers: logged-in users (session) and users' bearer tokens. Errors are problem+json: 400 with
per-field ``errors`` for form data, 403 for another department's task, 404 for objects the caller
may not see (no IDOR), 409 when another official completed or claimed the task first.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, prefetch_related_objects
from django.http import Http404, HttpRequest
from django.utils.translation import gettext
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from dgov.api.auth import bearer_auth, session_auth
from dgov.kernel.models import Division
from dgov.services import applications, ratings
from dgov.services.models import Application, ApplicationTask, ServiceItem

router = Router(tags=["services"], auth=[bearer_auth, session_auth])
# The open tasks of applications, fetched once per list (the reverse relation fills ``task.application``).
_OPEN_TASKS = Prefetch(
    "tasks", queryset=ApplicationTask.objects.filter(status__in=applications.LIVE), to_attr="open_tasks"
)


class SubmitIn(Schema):
    """A new application: the item's basic code, the form data and (optionally) the division code."""

    item: str = Field(max_length=32)
    data: dict[str, Any]
    division: str | None = Field(default=None, max_length=12)


class CorrectionIn(Schema):
    """Resubmitted form data (补正)."""

    data: dict[str, Any]


class CompleteIn(Schema):
    """A decision on a task and the official's opinion (required for reject / correct / deny)."""

    decision: str = Field(max_length=16)
    opinion: str = Field(default="", max_length=2000)
    # Licence items for an approval that issues an e-licence (dgov.services.results), by item name.
    licence: dict[str, str] = Field(default_factory=dict)


class TaskOut(Schema):
    """A task of an application."""

    id: int
    application: str
    item: str
    name: str
    node: str
    lane: str
    status: str
    decisions: list[str]
    created_at: datetime.datetime


class ApplicationOut(Schema):
    """An application with its status, SLA clock and open tasks."""

    number: str
    item: str
    item_name: str
    status: str
    channel: str
    department: str
    submitted_at: datetime.datetime
    completed_at: datetime.datetime | None
    promised_due: datetime.date | None
    legal_due: datetime.date | None
    paused: bool
    paused_days: int
    overdue: bool
    tasks: list[TaskOut]


def _task_out(task: ApplicationTask) -> dict:
    """A task as TaskOut data."""
    return {
        "id": task.pk,
        "application": task.application.number,
        "item": task.application.item.basic_code,
        "name": task.name,
        "node": task.spec_name,
        "lane": task.lane,
        "status": task.status,
        "decisions": list(applications.decisions_for(task)),
        "created_at": task.created_at,
    }


def _app_out(app: Application) -> dict:
    """An application as ApplicationOut data (its open tasks are fetched unless already prefetched)."""
    prefetch_related_objects([app], _OPEN_TASKS)
    return {
        "number": app.number,
        "item": app.item.basic_code,
        "item_name": app.item.name,
        "status": app.status,
        "channel": app.channel,
        "department": app.department.name,
        "submitted_at": app.submitted_at,
        "completed_at": app.completed_at,
        "promised_due": app.promised_due,
        "legal_due": app.legal_due,
        "paused": app.paused_since is not None,
        "paused_days": app.paused_days,
        "overdue": app.overdue,
        "tasks": [_task_out(t) for t in app.open_tasks],
    }


def _conflict(exc: applications.TaskConflict):
    """409 problem+json for a lost race."""
    return HttpError(409, str(exc))


def _visible_application(user, number: str) -> Application:
    """The application if the caller is its applicant or verified holder, or an official of its department; else 404."""
    app = applications.applications_of(user).filter(number=number).first()
    if app is not None:
        return app
    dept_id = getattr(user, "department_id", None)
    app = Application.objects.select_related("item", "department").filter(number=number).first()
    if app is None or dept_id is None or dept_id != app.department_id:
        raise Http404
    return app


@router.post("", response={201: ApplicationOut}, summary="提交申请")
def submit(request: HttpRequest, payload: SubmitIn):
    """Submit an application for an active item; the form is validated against the item's schema."""
    user = request.auth
    if not hasattr(user, "kind"):
        raise PermissionDenied(gettext("只有登录的个人或企业用户可以提交申请。"))
    item = ServiceItem.objects.filter(basic_code=payload.item, status=ServiceItem.Status.ACTIVE).first()
    if item is None:
        raise Http404
    division = None
    if payload.division:
        division = Division.objects.filter(code=payload.division).first()
        if division is None:
            raise HttpError(400, gettext("未知的行政区划代码。"))
    app = applications.submit(item, applicant=user, data=payload.data, actor=user, division=division)
    return Status(201, _app_out(app))


@router.get("", response=list[ApplicationOut], summary="我的办件")
def mine(request: HttpRequest):
    """The caller's own applications, newest first (at most 100)."""
    return [_app_out(a) for a in applications.applications_of(request.auth).prefetch_related(_OPEN_TASKS)[:100]]


@router.get("/tasks", response=list[TaskOut], summary="待办任务")
def inbox(request: HttpRequest):
    """Open and claimed tasks of the caller's department (officials) or the caller's own 补正 tasks."""
    return [_task_out(t) for t in applications.tasks_for(request.auth)[:200]]


def _task(request: HttpRequest, task_id: int) -> ApplicationTask:
    """A task the caller may see, else 404."""
    task = applications.visible_task(request.auth, task_id)
    if task is None:
        raise Http404
    return task


@router.post("/tasks/{task_id}/claim", response=TaskOut, summary="认领任务")
def claim(request: HttpRequest, task_id: int):
    """Claim an open task of the caller's department."""
    try:
        task = applications.claim_task(_task(request, task_id), actor=request.auth)
    except applications.TaskConflict as exc:
        raise _conflict(exc) from None
    return _task_out(task)


@router.post("/tasks/{task_id}/complete", response=ApplicationOut, summary="办理任务")
def complete(request: HttpRequest, task_id: int, payload: CompleteIn):
    """Complete a task with a decision; 409 when another official completed it first."""
    task = _task(request, task_id)
    try:
        applications.complete_task(
            task,
            actor=request.auth,
            decision=payload.decision,
            data={"opinion": payload.opinion, "licence": payload.licence},
        )
    except applications.TaskConflict as exc:
        raise _conflict(exc) from None
    return _app_out(Application.objects.select_related("item", "department").get(pk=task.application_id))


@router.get("/{number}", response=ApplicationOut, summary="办件详情")
def detail(request: HttpRequest, number: str):
    """One application, for its applicant or the officials of its department."""
    return _app_out(_visible_application(request.auth, number))


@router.post("/{number}/correction", response=ApplicationOut, summary="提交补正")
def correction(request: HttpRequest, number: str, payload: CorrectionIn):
    """The applicant resubmits the form after a correction request (补正)."""
    app = _visible_application(request.auth, number)
    try:
        app = applications.submit_correction(app, actor=request.auth, data=payload.data)
    except applications.TaskConflict as exc:
        raise _conflict(exc) from None
    return _app_out(app)


class RatingIn(Schema):
    """A rating (好差评): score 1 (非常不满意) … 5 (非常满意), an optional comment and the channel."""

    score: int
    comment: str = Field(default="", max_length=2000)
    channel: str = Field(default="online", max_length=16)


class RatingOut(Schema):
    """A rating as stored, with the rectification order a bad rating opened."""

    application: str
    score: int
    channel: str
    created_at: datetime.datetime
    rectification: str | None
    rectification_due: datetime.date | None


@router.post("/{number}/rating", response={201: RatingOut}, summary="评价办件（好差评）")
def rate(request: HttpRequest, number: str, payload: RatingIn):
    """Rate an own closed application once (applicant or verified holder); 409 when it was rated already."""
    app = applications.applications_of(request.auth).filter(number=number).first()
    if app is None:
        raise Http404
    try:
        rating = ratings.rate(
            app, actor=request.auth, score=payload.score, comment=payload.comment, channel=payload.channel
        )
    except ratings.AlreadyRated as exc:
        raise HttpError(409, str(exc)) from None
    order = getattr(rating, "rectification", None) if rating.is_bad else None
    return Status(
        201,
        {
            "application": app.number,
            "score": rating.score,
            "channel": rating.channel,
            "created_at": rating.created_at,
            "rectification": order.code if order else None,
            "rectification_due": order.due_on if order else None,
        },
    )
