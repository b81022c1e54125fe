"""Supervision (督办) of overdue and nearly due applications: the list, its scope and sorting, the 督办 action.

Dates are relative to today (the pages use today): o1 is 3 working days overdue (its task claimed),
o2 falls due tomorrow's working day (临期), o3 is due in ten working days (not listed), o4 is
closed, o5 is overdue on paper but paused for 补正 (not listed); g1 (公安厅) is 5 working days overdue.
"""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from dgov.kernel.models import AuditRecord, Notification
from dgov.kernel.services import calendar
from dgov.services import applications, supervision
from dgov.services.models import Application, ApplicationEvent

from .metrics_helpers import *  # noqa: F403
from .metrics_helpers import APPROVE, TZ, make_app

pytestmark = pytest.mark.usefixtures("no_result_documents")
PAGE = "/workbench/services/supervision/"


def _due(app: Application, working_days: int, **changes) -> Application:
    """Move the application's promised due date ``working_days`` from today (negative: in the past)."""
    due = calendar.add_working_days(timezone.localdate(), working_days)
    Application.objects.filter(pk=app.pk).update(promised_due=due, **changes)
    return Application.objects.get(pk=app.pk)


@pytest.fixture
def due(world):
    """The applications of the module docstring."""
    submitted = datetime.datetime.now(TZ) - datetime.timedelta(days=20)
    users = world["users"]
    apps = {
        "o1": _due(make_app(world, "a", submitted=submitted, decisions=["accept"]), -3),
        "o2": _due(make_app(world, "a", submitted=submitted, decisions=["accept"]), 1),
        "o3": _due(make_app(world, "a", submitted=submitted, decisions=[]), 10),
        "o4": _due(make_app(world, "a", submitted=submitted, closed=submitted, decisions=APPROVE), -8),
        "o5": _due(
            make_app(world, "a", submitted=submitted, decisions=[]),
            -4,
            status=Application.Status.CORRECTION,
            paused_since=timezone.now(),
        ),
        "g1": _due(make_app(world, "b", submitted=submitted, decisions=["accept"]), -5),
    }
    task = apps["o1"].tasks.get(status="open")
    applications.claim_task(task, actor=users["scjg"])
    return apps


def _numbers(found) -> list[str]:
    return [app.number for app in found]


def test_list_scope_states_and_sorting(due, world):
    users, n = world["users"], {key: app.number for key, app in due.items()}
    assert _numbers(supervision.due_applications(users["dsj"])) == [n["g1"], n["o1"], n["o2"]]
    assert _numbers(supervision.due_applications(users["dsj"], sort="-days")) == [n["o2"], n["o1"], n["g1"]]
    assert _numbers(supervision.due_applications(users["dsj"], state="overdue")) == [n["g1"], n["o1"]]
    assert _numbers(supervision.due_applications(users["dsj"], state="warned")) == [n["o2"]]
    assert _numbers(supervision.due_applications(users["dsj"], department="370000-GA")) == [n["g1"]]
    # A plain department sees its own; a city office its city's departments; another city's office nothing.
    assert _numbers(supervision.due_applications(users["scjg"])) == [n["o1"], n["o2"]]
    assert _numbers(supervision.due_applications(users["ga"])) == [n["g1"]]
    assert _numbers(supervision.due_applications(users["zwfw_city"])) == [n["o1"], n["o2"]]
    assert _numbers(supervision.due_applications(users["zwfw_qd"])) == []
    with pytest.raises(ValidationError) as exc:
        supervision.due_applications(users["dsj"], state="late", sort="name")
    assert set(exc.value.message_dict) == {"state", "sort"}
    with pytest.raises(PermissionDenied):
        supervision.due_applications(users["citizen"])


def test_rows_show_days_overdue_claimants_and_a_masked_applicant(due, world):
    rows = {row["app"].number: row for row in supervision.rows_of(supervision.due_applications(world["users"]["dsj"]))}
    today = timezone.localdate()
    first = rows[due["o1"].number]
    # Working days in (due date, today]: 3 on a working day (2 on a weekend: the Friday is the last one).
    expected = 3 if calendar.is_workday(today) else 2
    assert first["overdue"] is True and first["days"] == expected and first["claimants"] == ["m-scjg"]
    assert first["days"] == calendar.working_days_between(due["o1"].promised_due, today)
    assert rows[due["o2"].number]["overdue"] is False and rows[due["o2"].number]["days"] < 0
    assert rows[due["g1"].number]["days"] == expected + 2
    # The citizen account has no verified name: nothing to show, and never the name in clear.
    assert first["applicant"] == ""


def test_supervise_records_event_audit_and_notices(due, world):
    users, app = world["users"], due["o1"]
    event = supervision.supervise(app, actor=users["dsj"], note="请三日内办结")
    assert event.kind == ApplicationEvent.Kind.ESCALATED
    assert event.detail["supervision"] is True and event.detail["by"] == "m-dsj"
    assert event.detail["office"] == "370000-DSJ" and event.detail["note"] == "请三日内办结"
    record = AuditRecord.objects.filter(action="services.supervise", outcome="success").get()
    assert record.target_id == str(app.pk) and '"number":"' + app.number in record.detail_json.replace(" ", "")
    notices = Notification.objects.filter(template="services.supervise")
    assert {note.user.username for note in notices} == {"m-scjg"}
    assert app.number in notices[0].title and "请三日内办结" in notices[0].body
    # The city office of 济南 may supervise its county department's application too.
    supervision.supervise(app, actor=users["zwfw_city"])
    assert app.events.filter(kind=ApplicationEvent.Kind.ESCALATED).count() == 2


def test_supervise_is_refused_to_departments_and_for_closed_applications(due, world):
    users = world["users"]
    with pytest.raises(PermissionDenied):
        supervision.supervise(due["o1"], actor=users["scjg"])
    assert AuditRecord.objects.filter(action="services.supervise", outcome="denied").count() == 1
    with pytest.raises(PermissionDenied):
        supervision.supervise(due["g1"], actor=users["zwfw_city"])  # a provincial department, not 济南's
    with pytest.raises(ValidationError):
        supervision.supervise(due["o4"], actor=users["dsj"])
    with pytest.raises(ValidationError):
        supervision.supervise(due["o1"], actor=users["dsj"], note="很" * 501)
    assert not ApplicationEvent.objects.filter(kind=ApplicationEvent.Kind.ESCALATED).exists()


def test_supervision_page_and_action(due, world, client):
    users = world["users"]
    client.force_login(users["dsj"])
    page = client.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    for key in ("o1", "o2", "g1"):
        assert due[key].number in html
    assert due["o3"].number not in html and due["o5"].number not in html
    assert html.index(due["g1"].number) < html.index(due["o1"].number)  # most overdue first
    assert "m-scjg" in html  # the claimant
    answer = client.post(f"{PAGE}{due['o1'].number}/supervise/", {"note": "加快办理"})
    assert answer.status_code == 302
    assert due["o1"].events.filter(kind=ApplicationEvent.Kind.ESCALATED, detail__note="加快办理").exists()
    english = client.get(PAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Overdue and nearly due applications" in english and "Days overdue" in english
    bad = client.get(PAGE, {"sort": "bogus"})
    assert bad.status_code == 200 and due["g1"].number in bad.content.decode()


def test_supervision_page_scope_and_404(due, world, client):
    users = world["users"]
    client.force_login(users["scjg"])
    html = client.get(PAGE).content.decode()
    assert due["o1"].number in html and due["g1"].number not in html
    assert "由政务服务管理机构督办" in html
    # Another department's application is a 404; its own department may not supervise itself (403).
    assert client.post(f"{PAGE}{due['g1'].number}/supervise/").status_code == 404
    assert client.post(f"{PAGE}{due['o1'].number}/supervise/").status_code == 403
    client.force_login(users["zwfw_qd"])
    assert client.post(f"{PAGE}{due['o1'].number}/supervise/").status_code == 404
    client.force_login(users["citizen"])
    assert client.get(PAGE).status_code == 403
    assert not ApplicationEvent.objects.filter(kind=ApplicationEvent.Kind.ESCALATED).exists()


def test_supervision_page_queries_do_not_grow_with_rows(due, world, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(world["users"]["zwfw_city"])  # a city office: may_supervise looks at each row's division
    with CaptureQueriesContext(connection) as before:
        assert client.get(PAGE).status_code == 200
    submitted = datetime.datetime.now(TZ) - datetime.timedelta(days=20)
    for _n in range(3):
        _due(make_app(world, "a", submitted=submitted, decisions=["accept"]), -2)
    with CaptureQueriesContext(connection) as after:
        page = client.get(PAGE)
    assert page.content.decode().count('class="supervise-form"') == 5  # o1, o2 and the three new ones
    assert len(after.captured_queries) == len(before.captured_queries)
