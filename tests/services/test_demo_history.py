"""Demo application history (演示办件历史): real-looking rows, plausible metrics, resumable open copies, run once."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db.models import F

from dgov.services import applications, demo_history, metrics, processes
from dgov.services.models import Application, ApplicationEvent, ApplicationTask, ServiceRating

from .metrics_helpers import *  # noqa: F403

pytestmark = pytest.mark.usefixtures("no_result_documents")
COUNT = 80


@pytest.fixture
def province(db, settings):
    """A small demo province (libraries, departments, officials, the verified citizen) with the demo catalogue."""
    from dgov.licenses import catalogue as licence_catalogue
    from dgov.registry import demo as registry_demo
    from dgov.services import catalogue

    settings.DEMO_PROVINCE_CODE = "370000"
    registry_demo.generate(province_code="370000", persons=300, enterprises=40, seed=7)
    licence_catalogue.load_types(
        licence_catalogue.read_type_file(licence_catalogue.DEMO_TYPES), actor="system:test", province_code="370000"
    )
    report = catalogue.load_catalogue(
        catalogue.read_catalogue_file(catalogue.DEMO_ITEMS), actor="system:test", province_code="370000"
    )
    assert report.ok
    catalogue.implement_items("370000", actor="system:test")


@pytest.fixture
def history(province):
    """The history generated once."""
    return demo_history.generate(province_code="370000", count=COUNT, seed=3)


def test_history_has_the_asked_number_of_real_looking_applications(history):
    assert history.applications == Application.objects.count()
    assert history.applications >= COUNT * 0.95 and history.real >= 3 and history.bulk > history.real
    assert history.statuses.get("approved", 0) > COUNT / 2
    assert sum(history.statuses.values()) == history.applications
    # Every application starts with its submission, at its submission time; none is closed before it began.
    firsts = ApplicationEvent.objects.filter(kind="submitted").values_list("application_id", "at")
    assert len(firsts) == history.applications
    assert not Application.objects.filter(completed_at__lt=F("submitted_at")).exists()
    for app in Application.objects.filter(pk__in=dict(firsts)).only("pk", "submitted_at")[:50]:
        assert app.events.get(kind="submitted").at == app.submitted_at
        assert app.number.startswith(app.submitted_at.astimezone(demo_history._tz()).strftime("%Y%m%d"))
    # Closed ones have no live task; open ones (not paused) wait on exactly one official task.
    closed = Application.objects.filter(status__in=Application.CLOSED)
    assert not ApplicationTask.objects.filter(application__in=closed, status__in=applications.LIVE).exists()
    for app in Application.objects.exclude(status__in=Application.CLOSED):
        live = list(app.tasks.filter(status__in=applications.LIVE))
        assert len(live) == 1
        assert (live[0].lane == processes.APPLICANT_LANE) == (app.status == Application.Status.CORRECTION)
    # Window applications were visits; a few applications were corrected; ratings came from the applicants.
    assert ApplicationEvent.objects.filter(kind="visit", application__channel="window", detail__reason="submit").count()
    assert history.visits == ApplicationEvent.objects.filter(kind="visit").count() > 0
    assert history.ratings == ServiceRating.objects.count() > 0
    assert ServiceRating.objects.filter(rated_by=F("application__applicant")).count() == history.ratings


def test_history_metrics_are_plausible(history):
    filters = metrics.parse_filters(actor="system:test")
    total = metrics.compute("system:test", group="month", filters=filters).total
    assert total.submitted >= COUNT * 0.8
    for rate in (total.full_online_rate, total.instant_rate, total.satisfaction_rate, total.compression):
        assert 0 <= rate <= 1
    assert 0 < total.on_time_rate < 1
    assert 0 < total.full_online_rate < 1
    assert total.avg_visits > 0
    assert 0 < total.avg_days_used < total.avg_legal_days


def test_open_copies_resume_like_real_applications(history):
    from dgov.kernel.models import AuditRecord

    samples = set(AuditRecord.objects.filter(action="services.application.submit").values_list("target_id", flat=True))
    copies = [
        app for app in Application.objects.filter(status="in_progress").order_by("-pk") if str(app.pk) not in samples
    ]
    assert copies, "no open bulk copy to resume"
    app = copies[0]
    task = app.tasks.get(status="open")
    official = app.department.officials.first()
    decision = applications.decisions_for(task)[0]
    applications.complete_task(task, actor=official, decision=decision)
    app.refresh_from_db()
    if task.spec_name == "decide":
        assert app.status == Application.Status.APPROVED and app.completed_at is not None
    else:
        assert app.tasks.get(status="open").spec_name != task.spec_name
    kind = {"pass": "task_completed", "approve": "approved", "accept": "accepted"}[decision]
    assert app.events.filter(kind=kind).order_by("-at", "-pk").first().at > app.submitted_at


def test_history_is_generated_once_by_the_demo_and_more_by_the_cli(history, capsys):
    from dgov.services import demo

    before = Application.objects.count()
    demo.seed(province_code="370000")
    assert Application.objects.count() == before
    call_command("services", "history", "--count", "5", "--seed", "8")
    assert "办件历史：生成" in capsys.readouterr().out
    assert before < Application.objects.count() <= before + 5
