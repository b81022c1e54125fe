"""Shared builders of the metrics and supervision tests: a small province and applications with a moved history."""

from __future__ import annotations

__all__ = ["no_result_documents", "world"]

import datetime
import zoneinfo

import pytest

from dgov.kernel.models import Division, Organization
from dgov.kernel.services import calendar
from dgov.kernel.validators import make_uscc
from dgov.services import applications
from dgov.services.models import Application, ApplicationEvent, ServiceItem, ServiceRating

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
APPROVE = ["accept", "pass", "approve"]
DENY = ["accept", "pass", "deny"]


def at(day: int, hour: int = 9, month: int = 11) -> datetime.datetime:
    """A local time in 2026."""
    return datetime.datetime(2026, month, day, hour, 0, tzinfo=TZ)


def _org(code: str, name: str, kind: str, division: Division, level: int, serial: int) -> Organization:
    """A department."""
    return Organization.objects.create(
        name=name,
        code=code,
        uscc=make_uscc("1", "1", division.code[:6], serial=serial),
        level=level,
        division=division,
        kind=kind,
    )


@pytest.fixture
def no_result_documents():
    """Closing applications here need no decision PDFs (result delivery has its own tests and takes seconds)."""
    from dgov.services.applications import application_closed
    from dgov.services.results import deliver

    uid = "dgov.services.results.deliver"
    connected = application_closed.disconnect(dispatch_uid=uid)
    yield
    if connected:
        application_closed.connect(deliver, dispatch_uid=uid)


@pytest.fixture
def world(db, django_user_model):
    """Province 370000 with 济南 (历下区) and 青岛; county 市场监管, provincial 公安, DSJ and a city ZWFW."""
    province = Division.objects.create(code="370000", name="山东省", full_name="山东省", level=1)
    jinan = Division.objects.create(code="370100", name="济南市", full_name="山东省济南市", level=2, parent=province)
    Division.objects.create(code="370200", name="青岛市", full_name="山东省青岛市", level=2, parent=province)
    lixia = Division.objects.create(code="370102", name="历下区", full_name="山东省济南市历下区", level=3, parent=jinan)
    orgs = {
        "scjg": _org("370102-SCJG", "历下区市场监督管理局", "SCJG", lixia, 3, 1),
        "ga": _org("370000-GA", "山东省公安厅", "GA", province, 1, 2),
        "dsj": _org("370000-DSJ", "山东省大数据局", "DSJ", province, 1, 3),
        "zwfw_city": _org("370100-ZWFW", "济南市政务服务管理办公室", "ZWFW", jinan, 2, 4),
        "zwfw_qd": _org("370200-ZWFW", "青岛市政务服务管理办公室", "ZWFW", Division.objects.get(code="370200"), 2, 5),
    }

    def official(name, org):
        return django_user_model.objects.create_user(username=name, password="x", kind="official", department=org)

    users = {key: official(f"m-{key}", org) for key, org in orgs.items()}
    users["citizen"] = django_user_model.objects.create_user(username="m-citizen", password="x", kind="person")
    users["admin"] = django_user_model.objects.create_user(username="m-admin", password="x", kind="admin")
    item_a = ServiceItem.objects.create(
        basic_code="m-0001",
        name="食品经营许可",
        type="licensing",
        legal_basis="《食品安全法》",
        department_kind="SCJG",
        legal_limit_days=20,
        promised_limit_days=5,
    )
    item_b = ServiceItem.objects.create(
        basic_code="m-0002",
        name="异地就医备案",
        type="public_service",
        legal_basis="《社会保险法》",
        department_kind="GA",
        legal_limit_days=10,
        promised_limit_days=0,
    )
    return {
        "divisions": {"province": province, "jinan": jinan, "lixia": lixia},
        "orgs": orgs,
        "users": users,
        "items": {"a": item_a, "b": item_b},
    }


def _drive(app: Application, official, decisions: list[str]) -> Application:
    """Complete the open official tasks with the given decisions (others are passed)."""
    for decision in decisions:
        task = app.tasks.filter(status="open").exclude(lane="applicant").first()
        applications.complete_task(task, actor=official, decision=decision, data={"opinion": "理由"})
    return Application.objects.get(pk=app.pk)


def make_app(
    world,
    item_key: str,
    *,
    submitted: datetime.datetime,
    decisions: list[str],
    closed: datetime.datetime | None = None,
    accepted: datetime.datetime | None = None,
    channel: str = "online",
    delivery: str = "electronic",
    visits: int = 0,
    paused_days: int = 0,
    score: int | None = None,
) -> Application:
    """One application through the services, its history moved to the given times."""
    item = world["items"][item_key]
    division = world["divisions"]["lixia"] if item_key == "a" else world["divisions"]["province"]
    official = world["users"]["scjg" if item_key == "a" else "ga"]
    citizen = world["users"]["citizen"]
    app = applications.submit(
        item, applicant=citizen, data={}, actor=citizen, division=division, channel=channel, delivery=delivery
    )
    app = _drive(app, official, decisions)
    for n in range(visits):
        ApplicationEvent.objects.create(application=app, kind="visit", channel="window", detail={"reason": f"v{n}"})
    day = submitted.astimezone(TZ).date()
    Application.objects.filter(pk=app.pk).update(
        submitted_at=submitted,
        accepted_at=accepted
        if accepted
        else (submitted + datetime.timedelta(hours=1) if "accept" in decisions else None),
        completed_at=closed,
        paused_days=paused_days,
        promised_due=calendar.add_working_days(day, item.promised_limit_days + paused_days),
        legal_due=calendar.add_working_days(day, item.legal_limit_days + paused_days),
    )
    app.events.update(at=submitted)
    if score is not None:
        rating = ServiceRating.objects.create(application=app, score=score, department=app.department)
        ServiceRating.objects.filter(pk=rating.pk).update(
            created_at=(closed or submitted) + datetime.timedelta(hours=2)
        )
    return Application.objects.get(pk=app.pk)
