"""Applications (办件) on BPMN processes: submit, schema errors, tasks and decisions, 补正 clock, SLA, scopes, audit."""

import datetime
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from dgov.kernel.models import AuditRecord, Notification
from dgov.kernel.services import calendar
from dgov.services import applications
from dgov.services.models import Application, ApplicationEvent, ApplicationTask

from .process_helpers import GOOD, drain_outbox, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(django_user_model):
    return make_world(django_user_model)


def _submit(world, **kw):
    return applications.submit(
        world["item"],
        applicant=world["users"]["citizen"],
        data=kw.pop("data", GOOD),
        actor=world["users"]["citizen"],
        **kw,
    )


def _open_task(app):
    return app.tasks.get(status__in=["open", "claimed"])


def test_submit_runs_to_first_task(world):
    app = _submit(world)
    assert app.status == Application.Status.SUBMITTED
    assert app.department == world["orgs"]["scjg"]
    task = _open_task(app)
    assert (task.spec_name, task.name, task.department) == ("accept", "受理", world["orgs"]["scjg"])
    assert applications.form_data(app) == {"name": "王小明", "age": 30, "purpose": "自用"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT form_data FROM services_application WHERE id = %s", [app.pk])
        assert "王小明" not in cursor.fetchone()[0]  # sealed at rest
    assert "spec" not in app.workflow_state
    assert app.promised_due == calendar.add_working_days(datetime.date.today(), 5)
    assert list(app.events.values_list("kind", flat=True)) == ["submitted"]
    assert AuditRecord.objects.filter(action="services.application.submit", target_id=str(app.pk)).exists()


def test_schema_errors_are_per_field(world):
    with pytest.raises(ValidationError) as info:
        _submit(world, data={"name": "王", "age": "abc", "email": "nope", "purpose": "x", "extra": 1})
    errors = info.value.message_dict
    assert set(errors) == {"name", "age", "email", "purpose", "extra"}
    with pytest.raises(ValidationError) as info:
        _submit(world, data={})
    assert set(info.value.message_dict) == {"name", "age"}
    assert not Application.objects.exists()


def test_full_path_to_approval(world):
    a = world["users"]["a"]
    app = _submit(world)
    applications.complete_task(_open_task(app), actor=a, decision="accept")
    app.refresh_from_db()
    assert app.status == Application.Status.IN_PROGRESS and app.accepted_at
    assert _open_task(app).spec_name == "review_task"
    applications.complete_task(_open_task(app), actor=a, decision="pass")
    applications.complete_task(_open_task(app), actor=world["users"]["b"], decision="approve")
    app.refresh_from_db()
    assert app.status == Application.Status.APPROVED and app.completed_at
    assert not app.tasks.filter(status__in=["open", "claimed"]).exists()
    kinds = list(app.events.values_list("kind", flat=True))
    assert kinds == ["submitted", "accepted", "task_completed", "approved", "completed"]
    # The decision document is drawn and signed by the worker after the commit (dgov.services.results).
    drain_outbox()
    kinds = list(app.events.values_list("kind", flat=True))
    assert kinds == ["submitted", "accepted", "task_completed", "approved", "completed", "result_delivered"]
    assert Notification.objects.filter(
        user=world["users"]["citizen"], template="services.application.completed"
    ).exists()
    assert AuditRecord.objects.filter(action="services.task.complete").count() == 3


def test_reject_needs_reason_and_closes(world):
    app = _submit(world)
    task = _open_task(app)
    with pytest.raises(ValidationError):
        applications.complete_task(task, actor=world["users"]["a"], decision="reject")
    with pytest.raises(ValidationError):
        applications.complete_task(task, actor=world["users"]["a"], decision="approve")  # not on 受理
    applications.complete_task(task, actor=world["users"]["a"], decision="reject", data={"opinion": "不属于受理范围"})
    app.refresh_from_db()
    assert app.status == Application.Status.REJECTED


def test_parallel_review(django_user_model):
    world = make_world(django_user_model, prefix="par", process_key="parallel_review")
    a = world["users"]["a"]
    app = _submit(world)
    applications.complete_task(_open_task(app), actor=a, decision="accept")
    names = set(app.tasks.filter(status="open").values_list("spec_name", flat=True))
    assert names == {"review_documents", "review_site"}
    for task in list(app.tasks.filter(status="open")):
        applications.complete_task(task, actor=a, decision="pass")
    assert _open_task(app).spec_name == "decide"
    applications.complete_task(_open_task(app), actor=a, decision="deny", data={"opinion": "不符合条件"})
    app.refresh_from_db()
    assert app.status == Application.Status.DENIED


def test_correction_pauses_the_clock(world):
    app = _submit(world)
    due = app.promised_due
    monday = datetime.date(2026, 11, 30)
    applications.complete_task(
        _open_task(app), actor=world["users"]["a"], decision="correct", data={"opinion": "缺少营业执照"}
    )
    app.refresh_from_db()
    assert app.paused_since is not None
    # Pretend the request was made on a Monday, and the applicant answers a week later.
    Application.objects.filter(pk=app.pk).update(paused_since=datetime.datetime(2026, 11, 30, 1, tzinfo=datetime.UTC))
    app.refresh_from_db()
    assert app.status == Application.Status.CORRECTION and app.paused_since
    task = _open_task(app)
    assert task.lane == "applicant" and task.assignee == world["users"]["citizen"] and task.department is None
    assert Notification.objects.filter(template="services.application.correction").exists()
    # A paused application is neither warned nor escalated, however late it is.
    assert applications.sla_sweep(today=due + datetime.timedelta(days=30)) == {"warned": 0, "escalated": 0}
    with pytest.raises(PermissionDenied):
        applications.submit_correction(app, actor=world["users"]["citizen2"], data=GOOD)
    with pytest.raises(ValidationError):
        applications.submit_correction(app, actor=world["users"]["citizen"], data={"name": ""})
    with mock.patch("dgov.services.applications._today", return_value=monday + datetime.timedelta(days=7)):
        app = applications.submit_correction(app, actor=world["users"]["citizen"], data={**GOOD, "age": 31})
    paused = calendar.working_days_between(monday, monday + datetime.timedelta(days=7))
    assert app.paused_days == paused > 0
    assert app.promised_due == calendar.add_working_days(due, paused)
    assert app.status == Application.Status.SUBMITTED and app.paused_since is None
    assert applications.form_data(app)["age"] == 31
    assert _open_task(app).spec_name == "accept"
    kinds = list(app.events.values_list("kind", flat=True))
    assert kinds == ["submitted", "correction_requested", "correction_submitted"]


def test_sla_warning_then_escalation(world):
    app = _submit(world)
    due = app.promised_due
    before = calendar.add_working_days(due, -1)
    assert applications.sla_sweep(today=calendar.add_working_days(due, -5)) == {"warned": 0, "escalated": 0}
    assert applications.sla_sweep(today=before) == {"warned": 1, "escalated": 0}
    assert applications.sla_sweep(today=before) == {"warned": 0, "escalated": 0}  # once
    after = due + datetime.timedelta(days=1)
    assert applications.sla_sweep(today=after) == {"warned": 0, "escalated": 1}
    assert applications.sla_sweep(today=after) == {"warned": 0, "escalated": 0}
    app.refresh_from_db()
    assert app.warned and app.overdue
    officials = world["users"]
    assert Notification.objects.filter(user=officials["a"], template="services.sla.warning").exists()
    assert Notification.objects.filter(user=officials["boss"], template="services.sla.overdue").exists()
    assert not Notification.objects.filter(user=officials["other"]).exists()
    assert set(app.events.values_list("kind", flat=True)) >= {"warned", "escalated"}
    assert AuditRecord.objects.filter(action="services.sla.escalate").exists()


def test_scopes(world):
    app = _submit(world)
    task = _open_task(app)
    other = world["users"]["other"]
    assert applications.visible_task(other, task.pk) is None
    assert applications.visible_task(world["users"]["a"], task.pk) == task
    assert not applications.tasks_for(other).exists()
    with pytest.raises(PermissionDenied):
        applications.complete_task(task, actor=other, decision="accept")
    with pytest.raises(PermissionDenied):
        applications.complete_task(task, actor=world["users"]["citizen"], decision="accept")
    with pytest.raises(PermissionDenied):
        applications.claim_task(task, actor=other)
    assert list(applications.applications_of(world["users"]["citizen2"])) == []


def test_claim_then_only_claimant_completes(world):
    app = _submit(world)
    task = applications.claim_task(_open_task(app), actor=world["users"]["a"])
    assert task.status == "claimed"
    with pytest.raises(applications.TaskConflict):
        applications.claim_task(task, actor=world["users"]["b"])
    with pytest.raises(applications.TaskConflict):
        applications.complete_task(task, actor=world["users"]["b"], decision="accept")
    applications.complete_task(task, actor=world["users"]["a"], decision="accept")
    assert ApplicationTask.objects.get(pk=task.pk).completed_by == world["users"]["a"]


def test_second_completion_of_same_task_loses(world):
    app = _submit(world)
    task = _open_task(app)
    stale = ApplicationTask.objects.get(pk=task.pk)
    applications.complete_task(task, actor=world["users"]["a"], decision="accept")
    with pytest.raises(applications.TaskConflict):
        applications.complete_task(stale, actor=world["users"]["b"], decision="reject", data={"opinion": "x"})
    assert app.events.filter(kind=ApplicationEvent.Kind.REJECTED).count() == 0


def test_sla_job_reports_its_work_as_a_count_for_the_worker():
    """The worker adds up what periodic jobs return: the SLA job answers a number, never a dict."""
    from dgov.services import applications

    assert applications.sla_job() == 0


def test_holder_index_is_the_verified_identity_blind_index(world, django_user_model):
    """Applications of verified persons carry the blind index the registries and e-licences use."""
    from dgov.kernel.fields import blind_index
    from dgov.licenses.services import holder_index

    citizen = world["users"]["citizen"]
    assert _submit(world).holder_id == f"account:{citizen.pk}"  # not verified yet

    id_number = "370102199001011231"
    django_user_model.objects.filter(pk=citizen.pk).update(
        real_name_level=2, id_number_digest=blind_index(id_number, purpose="resident_id")
    )
    citizen.refresh_from_db()
    app = _submit(world)
    assert (app.holder_kind, app.holder_id) == ("person", holder_index("person", id_number))
    assert id_number not in app.holder_id


def test_enterprise_applications_carry_the_uscc_blind_index(world, django_user_model):
    """A verified enterprise is indexed by its USCC's blind index, as its e-licences are."""
    from dgov.licenses.services import holder_index

    uscc = "91370100MA3C00042X"
    company = django_user_model.objects.create_user(username="p-company", password="x", kind="enterprise")
    django_user_model.objects.filter(pk=company.pk).update(real_name_level=2, enterprise_uscc=uscc)
    company.refresh_from_db()
    app = applications.submit(world["item"], applicant=company, data=GOOD, actor=company)
    assert (app.holder_kind, app.holder_id) == ("enterprise", holder_index("enterprise", uscc))
    assert uscc not in app.holder_id


def test_lists_leave_the_process_state_and_the_decision_pdf_in_the_database(world):
    citizen, official = world["users"]["citizen"], world["users"]["a"]
    applications.submit(world["item"], applicant=citizen, data=GOOD, actor=citizen)
    listed = applications.applications_of(citizen).get()
    assert {"workflow_state", "result_pdf"} <= listed.get_deferred_fields()
    task = applications.tasks_for(official).get()
    assert {"workflow_state", "result_pdf"} <= task.application.get_deferred_fields()
    assert listed.workflow_state  # still there when an object asks for it
