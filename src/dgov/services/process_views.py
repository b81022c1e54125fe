"""Application pages (办件): portal apply / my applications / tracking, and the workbench task inbox.

Thin views: parse, authorize, call :mod:`dgov.services.applications`, render. The apply form is
rendered server-side from the item's ``form_schema`` with per-field errors; the inbox shows the
tasks of the official's own department only, and a task of another department is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from dgov.services import applications, prefill_views, result_views, results
from dgov.services.applications import DECISION_LABELS
from dgov.services.form_schema import fields_of
from dgov.services.models import Application, ApplicationTask, ServiceItem


def _form_fields(schema: dict, values: dict, errors: dict) -> list[dict]:
    """The form's fields for the template: name, label, widget, value, required, choices and errors."""
    fields = []
    for name, prop, required in fields_of(schema):
        kind = prop.get("type", "string")
        widget = (
            "select"
            if "enum" in prop
            else {"boolean": "checkbox", "integer": "number", "number": "number"}.get(
                kind, "date" if prop.get("format") == "date" else "text"
            )
        )
        fields.append(
            {
                "name": name,
                "label": prop.get("title", name),
                "help": prop.get("description", ""),
                "widget": widget,
                "value": values.get(name, ""),
                "required": required,
                "choices": prop.get("enum", []),
                "errors": errors.get(name, []),
            }
        )
    return fields


def _posted(schema: dict, post) -> dict:
    """The posted values of the schema's fields (unchecked checkboxes become false)."""
    data = {}
    for name, prop, _required in fields_of(schema):
        if prop.get("type") == "boolean":
            data[name] = post.get(name, "") == "on"
        elif name in post:
            data[name] = post.get(name, "")
    return data


@login_required
def apply(request, code: str):
    """Fill in and submit the application form of an active item (在线申请), with pre-fill and materials.

    ``action=prefill`` is the applicant's consent (数据授权, :mod:`dgov.services.prefill`): the form
    comes back pre-filled, the consent carried in a hidden field. Submitting stores the application
    with its materials in one transaction (:func:`dgov.services.prefill.submit_with_materials`).
    """
    item = get_object_or_404(ServiceItem, basic_code=code, status=ServiceItem.Status.ACTIVE)
    schema = item.form_schema or {}
    values, errors = {}, {}
    page = prefill_views.ApplyPage(request, item)
    if request.method == "POST" and request.POST.get("action") == "prefill":
        values = page.grant()
    elif request.method == "POST":
        values = _posted(schema, request.POST)
        try:
            app = page.submit(values)
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            messages.success(request, gettext("申请已提交，申请编号 %(number)s。") % {"number": app.number})
            return redirect("services:my_application", number=app.number)
    return render(
        request,
        "services/apply.html",
        {
            "item": item,
            "fields": page.mark_sources(_form_fields(schema, values, errors)),
            "form_errors": errors.get("__all__", []),
            **page.context(errors),
        },
        status=400 if errors else 200,
    )


@login_required
def my_applications(request):
    """The applicant's applications with their status and SLA (我的办件)."""
    return render(
        request, "services/my_applications.html", {"applications": applications.applications_of(request.user)[:100]}
    )


@login_required
def my_application(request, number: str):
    """Track one own application: status, due date, event log; the 补正 form when asked for."""
    app = applications.applications_of(request.user).filter(number=number).first()
    if app is None:
        raise Http404
    errors: dict = {}
    values = applications.form_data(app)
    if request.method == "POST":
        values = _posted(app.item.form_schema or {}, request.POST)
        try:
            applications.submit_correction(app, actor=request.user, data=values)
        except ValidationError as exc:
            errors = exc.message_dict
        except applications.TaskConflict as exc:
            messages.error(request, str(exc))
            return redirect("services:my_application", number=number)
        else:
            messages.success(request, gettext("补正材料已提交。"))
            return redirect("services:my_application", number=number)
    # The 补正 form only for the applicant or the verified holder (a walk-in's holder may view it too).
    correction = app.status == Application.Status.CORRECTION and applications.may_correct(app, request.user)
    reason = ""
    if correction:
        last = app.tasks.filter(decision="correct").order_by("-completed_at").first()
        reason = (last.data or {}).get("opinion", "") if last else ""
    return render(
        request,
        "services/my_application.html",
        {
            "app": app,
            "events": app.events.all(),
            "correction": correction,
            "reason": reason,
            "fields": _form_fields(app.item.form_schema or {}, values, errors) if correction else [],
            "materials": app.materials.select_related("licence").defer("sealed_content"),
            "material_url": "services:my_material",
            **result_views.closure_context(app, request.user),
        },
        status=400 if errors else 200,
    )


def _official(request):
    """The user when an official with a department; PermissionDenied otherwise."""
    user = request.user
    if getattr(user, "kind", "") != "official" or getattr(user, "department_id", None) is None:
        raise PermissionDenied(gettext("待办任务仅向部门工作人员开放。"))
    return user


@login_required
def inbox(request):
    """The official's department's open tasks (待办)."""
    user = _official(request)
    tasks = (
        applications.tasks_for(user).select_related("claimed_by").order_by("application__promised_due", "created_at")
    )
    return render(request, "services/inbox.html", {"tasks": tasks[:200]})


@login_required
def task(request, task_id: int):
    """One task of the official's department with the application's data and the decision form."""
    user = _official(request)
    found = applications.visible_task(user, task_id)
    if found is None:
        raise Http404
    app = found.application
    decisions = [(d, DECISION_LABELS[d]) for d in applications.decisions_for(found)]
    data = applications.form_data(app)
    labels = {name: prop.get("title", name) for name, prop, _ in fields_of(app.item.form_schema or {})}
    return render(
        request,
        "services/task.html",
        {
            "task": found,
            "app": app,
            "decisions": decisions,
            "data": [(labels.get(k, k), v) for k, v in data.items()],
            "history": app.tasks.filter(status=ApplicationTask.Status.DONE).select_related("completed_by"),
            "events": app.events.all(),
            "materials": app.materials.select_related("licence").defer("sealed_content"),
            "material_url": "services:material" if user.department_id == app.department_id else "",
            "licence_links": True,
            "licence_fields": results.licence_fields(app) if "approve" in [d for d, _label in decisions] else [],
        },
    )


@login_required
@require_POST
def task_action(request, task_id: int):
    """Claim or complete a task (POST); conflicts and refusals come back as messages."""
    user = _official(request)
    found = applications.visible_task(user, task_id)
    if found is None:
        raise Http404
    try:
        if request.POST.get("action") == "claim":
            applications.claim_task(found, actor=user)
            messages.success(request, gettext("已认领。"))
            return redirect("services:task", task_id=task_id)
        applications.complete_task(
            found,
            actor=user,
            decision=request.POST.get("decision", ""),
            data={"opinion": request.POST.get("opinion", ""), "licence": results.licence_input(request.POST)},
        )
    except applications.TaskConflict as exc:
        messages.error(request, str(exc))
        return redirect("services:inbox")
    except ValidationError as exc:
        for msg in exc.messages:
            messages.error(request, msg)
        return redirect("services:task", task_id=task_id)
    messages.success(request, gettext("已办理。"))
    return redirect("services:inbox")
