"""Rectification work orders (整改工单): opened by runs, deadlines in working days, re-check, answers, escalation."""

import datetime
import zoneinfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command

from dgov.kernel.models import AuditRecord, Notification, Organization, OutboxEvent
from dgov.kernel.services.calendar import add_working_days
from dgov.kernel.validators import make_uscc
from dgov.quality import rectification, services
from dgov.quality.models import QualityRule, QualityRun, RectificationEvent, RectificationOrder
from dgov.registry import services as registry_services
from dgov.registry.models import Record

pytestmark = pytest.mark.django_db

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
GA_FINDINGS = {"p.id", "p.id.unique", "p.name", "p.sex", "p.birth", "p.division", "p.household"}


def _orders(**filters):
    return {o.finding_key: o for o in RectificationOrder.objects.filter(**filters)}


def _at(year, month, day, hour=10):
    return datetime.datetime(year, month, day, hour, tzinfo=SHANGHAI)


def _record(registry, person_no):
    return next(r for r in Record.objects.filter(registry=registry) if r.data.get("person_no") == person_no)


def _drain(django_capture_on_commit_callbacks):
    """Run the worker until nothing is left (outbox, periodic jobs, queued runs)."""
    for _round in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            call_command("worker", "--once", verbosity=0)


@pytest.fixture
def instant_recheck(settings):
    """Re-check as soon as the worker sees a change (no debounce)."""
    settings.QUALITY_RECHECK_DEBOUNCE_SECONDS = 0
    return settings


# --- Opening -----------------------------------------------------------------------------------------------


def test_a_run_opens_one_order_per_failing_rule_to_its_owner(users, finished_run, orgs, people):
    orders = _orders()
    assert set(orders) == GA_FINDINGS | {"p.marital"}  # p.fresh passed
    assert {key for key, o in orders.items() if o.department == orgs["ga"]} == GA_FINDINGS
    marital = orders["p.marital"]
    assert marital.department == orgs["mz"] and marital.failed_at_open == marital.failed_now == 8
    assert marital.source == "rule" and marital.rule.code == "p.marital" and marital.dimension == "completeness"
    assert marital.opened_run == marital.last_run == finished_run and marital.status == "open"
    # Deadlines by severity, in working days from the day the order was opened.
    assert orders["p.id"].deadline_days == 5 and marital.deadline_days == 20 and orders["p.name"].deadline_days == 10
    for order in orders.values():
        assert order.due_on == add_working_days(order.opened_on, order.deadline_days)
        assert order.code.startswith(f"ZG{order.opened_on:%Y%m%d}-")
    assert len({o.code for o in orders.values()}) == len(orders)
    # Samples are the run's masked samples: nothing decrypted is kept.
    [sample] = orders["p.id"].samples
    assert "*" in sample["values"]["id_number"] and people["P2"]["id_number"] not in str(orders["p.id"].samples)
    # Timeline, audit and the department's notice.
    assert RectificationEvent.objects.filter(action="opened").count() == len(orders)
    assert AuditRecord.objects.filter(action="quality.order.open").count() == len(orders)
    notes = Notification.objects.filter(user=users["mz"], template="quality.order.opened")
    assert notes.count() == 1 and marital.code in notes.get().title and notes.get().link.endswith(f"{marital.code}/")
    assert not Notification.objects.filter(user=users["wj"]).exists()


def test_deadline_counts_working_days_over_weekends_and_holidays(rules, registries, monkeypatch):
    # Wednesday 30 September 2026: 1–7 October is the National Day holiday, Saturday 10 October a 调休 working day.
    monkeypatch.setattr(rectification, "_now", lambda: _at(2026, 9, 30))
    services.run_registry(registries["person"], actor="system:test")
    orders = _orders()
    assert orders["p.id"].opened_on == datetime.date(2026, 9, 30)
    assert orders["p.id"].due_on == datetime.date(2026, 10, 13)  # 8, 9, 10 (Sat, 调休), 12, 13 October
    assert orders["p.id"].code == "ZG20260930-0001" or orders["p.id"].code.startswith("ZG20260930-")
    # Friday 27 November 2026, a medium rule (10 working days): two weekends later.
    monkeypatch.setattr(rectification, "_now", lambda: _at(2026, 11, 27))
    order = rectification.raise_finding(
        source="linkage",
        registry=registries["person"],
        finding_key="t.person:name",
        department=Organization.objects.get(code="370000-MZ"),
        title="姓名与权威来源不一致",
        dimension="consistency",
        fields=["name"],
        failed=3,
        samples=[],
        actor="system:test",
    )
    assert order.deadline_days == 10 and order.due_on == datetime.date(2026, 12, 11)
    assert rectification.deadline(order, datetime.date(2026, 12, 4)).remaining == 5
    late = rectification.deadline(order, datetime.date(2026, 12, 15))
    assert late.is_overdue and late.overdue == 2 and late.remaining == 0


def test_deadline_days_follow_the_setting(settings, rules, registries):
    settings.QUALITY_ORDER_DEADLINE_DAYS = {"high": 2, "medium": 3}
    services.run_registry(registries["person"], actor="system:test")
    orders = _orders()
    assert orders["p.id"].deadline_days == 2 and orders["p.name"].deadline_days == 3
    assert orders["p.marital"].deadline_days == 20  # not in the setting: the default


def test_a_rerun_updates_the_same_orders(finished_run, registries):
    before = {key: o.code for key, o in _orders().items()}
    again = services.run_registry(registries["person"], actor="system:test")
    after = _orders()
    assert {key: o.code for key, o in after.items()} == before
    assert RectificationOrder.objects.count() == len(before)
    assert all(o.last_run == again and o.opened_run == finished_run for o in after.values())
    assert RectificationEvent.objects.filter(action="recheck_failed").count() == len(before)
    assert AuditRecord.objects.filter(action="quality.order.recheck").count() == len(before)


def test_a_failed_run_changes_no_order(finished_run, registries):
    from django.db import connection

    record = Record.objects.filter(registry=registries["person"]).order_by("id").first()
    with connection.cursor() as cursor:  # a sealed value that cannot be decrypted: the run fails
        cursor.execute(f"UPDATE {Record._meta.db_table} SET sealed = %s WHERE id = %s", ["v1:lost-key:AAAA", record.pk])
    events = RectificationEvent.objects.count()
    failed = services.run_registry(registries["person"], actor="system:test")
    assert failed.status == "failed"
    assert RectificationEvent.objects.count() == events
    assert all(o.last_run == finished_run and o.status == "open" for o in RectificationOrder.objects.all())


def test_results_that_checked_nothing_close_nothing(finished_run, registries, orgs):
    report = services.load_rules(
        [
            {
                "code": "p.marital.code",
                "registry": "t.person",
                "name": "婚姻状况代码",
                "type": "pattern",
                "fields": ["marital_status"],
                "params": {"pattern": "[0-9]{2}"},
            }
        ],
        actor="system:test",
    )
    assert report.ok, report.to_text()
    order = rectification.raise_finding(
        source="rule",
        registry=registries["person"],
        finding_key="p.marital.code",
        department=orgs["mz"],
        title="婚姻状况代码",
        dimension="conformity",
        fields=["marital_status"],
        failed=1,
        samples=[],
        actor="system:test",
    )
    run = services.run_registry(registries["person"], actor="system:test")
    assert run.results.get(rule_code="p.marital.code").checked == 0  # every value is missing
    order.refresh_from_db()
    assert order.status == "open" and order.last_run is None


# --- Closing through registry writes -------------------------------------------------------------------------


def test_a_registry_write_marks_the_orders_and_the_worker_rechecks_and_closes(
    finished_run, registries, orgs, instant_recheck, django_capture_on_commit_callbacks
):
    OutboxEvent.objects.filter(status="pending").update(status="delivered")  # a worker that kept up so far
    record = _record(registries["person"], "P5")  # P5 has no name
    with django_capture_on_commit_callbacks(execute=True):
        registry_services.update_record(record, {"name": "钱五"}, actor="system:test", source=orgs["ga"])
    # The worker: the outbox marks the order whose rule reads the changed field, the job requests a run,
    # and the run closes the order.
    _drain(django_capture_on_commit_callbacks)
    orders = _orders()
    assert orders["p.name"].status == "resolved" and orders["p.name"].failed_now == 0
    assert orders["p.name"].closed_by == services.WORKER_ACTOR and orders["p.name"].closed_at is not None
    assert orders["p.id"].status == "open"
    run = QualityRun.objects.exclude(pk=finished_run.pk).get()
    assert run.status == "succeeded" and run.requested_by == rectification.RECHECK_ACTOR
    assert orders["p.name"].last_run == run
    assert not RectificationOrder.objects.filter(recheck_requested_at__isnull=False).exists()
    actions = list(orders["p.name"].events.values_list("action", flat=True))
    assert actions == ["opened", "recheck_requested", "resolved"]
    assert AuditRecord.objects.filter(action="quality.order.resolve", target_id=str(orders["p.name"].pk)).exists()
    # The rules that read other fields were not marked for this write (only re-checked by the run).
    assert not orders["p.id"].events.filter(action="recheck_requested").exists()


def test_marks_follow_the_changed_fields(finished_run, registries):
    assert rectification.note_registry_change("t.person", fields=["marital_status"]) == 1
    marked = set(
        RectificationOrder.objects.filter(recheck_requested_at__isnull=False).values_list("finding_key", flat=True)
    )
    assert marked == {"p.marital"}
    assert rectification.note_registry_change("t.person") == len(GA_FINDINGS) + 1  # a later change moves marks
    assert rectification.note_registry_change("t.household") == 0


def test_rechecks_are_debounced_and_never_queued_twice(finished_run, registries, settings):
    settings.QUALITY_RECHECK_DEBOUNCE_SECONDS = 300
    settings.QUALITY_RECHECK_MAX_WAIT_SECONDS = 3600
    now = rectification._now()
    rectification.note_registry_change("t.person", fields=["name"], at=now)
    assert rectification.recheck_due(now + datetime.timedelta(seconds=60)) == 0  # changed a minute ago
    # The finished run was requested just now: wait a debounce period after it as well.
    assert rectification.recheck_due(now + datetime.timedelta(seconds=301)) == 1
    run = QualityRun.objects.get(status="queued")
    assert run.requested_by == rectification.RECHECK_ACTOR
    assert RectificationOrder.objects.get(finding_key="p.name").events.filter(action="recheck_requested").count() == 1
    assert rectification.recheck_due(now + datetime.timedelta(seconds=900)) == 0  # one is queued
    # A registry written all day long: the debounce never passes, the maximum wait after its last run does.
    run.delete()
    for minute in range(0, 60):
        rectification.note_registry_change("t.person", fields=["name"], at=now + datetime.timedelta(minutes=minute))
    assert rectification.recheck_due(now + datetime.timedelta(minutes=59, seconds=30)) == 0
    assert rectification.recheck_due(now + datetime.timedelta(minutes=60, seconds=30)) == 1


# --- Answers and re-checks -----------------------------------------------------------------------------------


def test_the_department_answers_and_the_recheck_closes_or_reopens(
    finished_run, registries, orgs, users, django_capture_on_commit_callbacks
):
    orders = _orders()
    with django_capture_on_commit_callbacks(execute=True):
        answered = rectification.answer_order(orders["p.sex"], actor=users["ga"], note="已核对户籍原始资料并更正性别")
        rectification.answer_order(orders["p.name"], actor=users["ga"], note="已补录")
    assert answered.status == "submitted" and answered.response.startswith("已核对")
    run = QualityRun.objects.get(status="queued")  # one run for both answers
    assert run.requested_by == rectification.RECHECK_ACTOR
    assert AuditRecord.objects.filter(action="quality.order.respond").count() == 2
    with pytest.raises(ValidationError):
        rectification.answer_order(answered, actor=users["ga"], note="再次反馈")  # already submitted
    with pytest.raises(PermissionDenied):
        rectification.answer_order(orders["p.marital"], actor=users["ga"], note="不是本部门的工单")
    assert AuditRecord.objects.filter(action="quality.order.respond", outcome="denied").count() == 1
    with pytest.raises(ValidationError):
        rectification.answer_order(orders["p.marital"], actor=users["mz"], note="   ")
    # GA fixed the sex of P3 but not the name of P5.
    registry_services.update_record(
        _record(registries["person"], "P3"), {"sex": "1"}, actor="system:test", source=orgs["ga"]
    )
    call_command("worker", "--once", verbosity=0)
    run.refresh_from_db()
    assert run.status == "succeeded"
    sex, name = (RectificationOrder.objects.get(pk=orders[key].pk) for key in ("p.sex", "p.name"))
    assert sex.status == "resolved"
    assert name.status == "open" and name.events.filter(action="recheck_failed", data__reopened=True).exists()
    assert Notification.objects.filter(user=users["ga"], template="quality.order.reopened").count() == 1
    assert Notification.objects.filter(user=users["ga"], template="quality.order.resolved").count() == 1


def test_a_run_that_started_before_the_answer_does_not_reopen(finished_run, registries, users, monkeypatch):
    order = _orders()["p.name"]
    later = rectification._now() + datetime.timedelta(hours=1)
    monkeypatch.setattr(rectification, "_now", lambda: later)
    rectification.answer_order(order, actor=users["ga"], note="已补录")
    monkeypatch.undo()
    QualityRun.objects.filter(status="queued").delete()
    services.run_registry(registries["person"], actor="system:test")  # started before the (future) answer
    order.refresh_from_db()
    assert order.status == "submitted" and order.recheck_requested_at == later


def test_recheck_now_and_its_permissions(finished_run, users, django_capture_on_commit_callbacks):
    order = _orders()["p.id"]
    with django_capture_on_commit_callbacks(execute=True):
        run = rectification.request_recheck(order, actor=users["dsj"], note="数据已批量更正")
    assert run.status == "queued" and rectification.request_recheck(order, actor=users["ga"]) == run
    assert order.events.filter(action="recheck_requested").count() == 2
    with pytest.raises(PermissionDenied):
        rectification.request_recheck(order, actor=users["mz"])
    assert AuditRecord.objects.filter(action="quality.order.recheck_request", outcome="denied").exists()


# --- Cancelling ----------------------------------------------------------------------------------------------


def test_disabling_a_rule_cancels_its_orders(finished_run, users):
    rule = QualityRule.objects.get(code="p.marital")
    services.set_rule_enabled(rule, False, actor=users["dsj"])
    order = _orders()["p.marital"]
    assert order.status == "cancelled" and order.closed_by == "q-dsj"
    assert order.events.filter(action="cancelled").exists()
    assert AuditRecord.objects.filter(action="quality.order.cancel", target_id=str(order.pk)).exists()
    # Loading a rule set that disables a rule does the same.
    report = services.load_rules(
        [
            {
                "code": "p.name",
                "registry": "t.person",
                "name": "姓名必填",
                "type": "required",
                "fields": ["name"],
                "enabled": False,
            }
        ],
        actor="system:test",
    )
    assert report.updated == ["p.name"] and _orders()["p.name"].status == "cancelled"


def test_data_administrators_cancel_with_a_reason(finished_run, users):
    order = _orders()["p.household"]
    with pytest.raises(PermissionDenied):
        rectification.cancel_order(order, actor=users["ga"], reason="不需要")
    with pytest.raises(ValidationError):
        rectification.cancel_order(order, actor=users["dsj"], reason="")
    cancelled = rectification.cancel_order(order, actor=users["dsj"], reason="所属户数据迁移中，另行处理")
    assert cancelled.status == "cancelled" and cancelled.events.get(action="cancelled").note.startswith("所属户")
    with pytest.raises(ValidationError):
        rectification.cancel_order(cancelled, actor=users["dsj"], reason="再次撤销")


def test_a_new_responsible_department_gets_its_own_order(finished_run, registries, orgs):
    rule = QualityRule.objects.get(code="p.marital")
    report = services.load_rules(
        [
            {
                "code": "p.marital",
                "registry": "t.person",
                "name": rule.name,
                "type": "not_null",
                "fields": ["marital_status"],
                "severity": "low",
                "owner": "370000-WJ",
            }
        ],
        actor="system:test",
    )
    assert report.updated == ["p.marital"]
    services.run_registry(registries["person"], actor="system:test")
    orders = RectificationOrder.objects.filter(finding_key="p.marital")
    assert {(o.department.code, o.status) for o in orders} == {("370000-MZ", "cancelled"), ("370000-WJ", "open")}


# --- The generic finding API (used by entity resolution) -----------------------------------------------------


def test_findings_from_another_source(registries, orgs, users):
    finding = {
        "source": "linkage",
        "registry": registries["person"],
        "finding_key": "t.person:name",
        "department": orgs["mz"],
        "title": "姓名与公安户籍不一致",
        "dimension": "consistency",
        "fields": ["name"],
        "samples": [{"uid": "u1", "division": "370102", "values": {"name": "张*"}}],
    }
    opened = rectification.raise_finding(**finding, failed=4, severity="high", actor="system:linkage")
    assert opened.source == "linkage" and opened.deadline_days == 5 and opened.opened_run is None
    again = rectification.raise_finding(**finding, failed=2, actor="system:linkage")
    assert again.pk == opened.pk and again.failed_now == 2 and again.failed_at_open == 4
    closed = rectification.clear_finding(
        registry=registries["person"],
        finding_key="t.person:name",
        department=orgs["mz"],
        actor="system:linkage",
        note="比对一致",
    )
    assert (
        closed.pk == opened.pk
        and closed.status == "resolved"
        and closed.events.get(action="resolved").note == "比对一致"
    )
    assert (
        rectification.clear_finding(
            registry=registries["person"], finding_key="t.person:name", department=orgs["mz"], actor="system:linkage"
        )
        is None
    )
    reopened = rectification.raise_finding(**finding, failed=1, actor="system:linkage")
    assert reopened.pk != opened.pk and reopened.code != opened.code
    with pytest.raises(ValidationError):
        rectification.raise_finding(**{**finding, "dimension": "beauty"}, failed=1, actor="system:linkage")
    with pytest.raises(ValidationError):
        rectification.raise_finding(**finding, failed=-1, actor="system:linkage")
    actions = set(AuditRecord.objects.filter(action__startswith="quality.order.").values_list("action", flat=True))
    assert actions == {"quality.order.open", "quality.order.recheck", "quality.order.resolve"}


# --- Scope ---------------------------------------------------------------------------------------------------


def test_who_sees_which_orders(finished_run, orgs, users):
    def keys(user):
        return set(rectification.visible_orders(user).values_list("finding_key", flat=True))

    assert keys(users["mz"]) == {"p.marital"}
    assert keys(users["ga"]) == GA_FINDINGS
    assert keys(users["dsj"]) == GA_FINDINGS | {"p.marital"}  # provincial data administrators: all
    assert keys(users["admin"]) == GA_FINDINGS | {"p.marital"}
    assert keys(users["dsj_city"]) == set()  # a city's data administrators: departments in their city only
    assert keys(users["wj"]) == set() and keys(users["citizen"]) == set()
    order = _orders()["p.marital"]
    assert rectification.can_view_order(users["mz"], order) and not rectification.can_view_order(users["ga"], order)


# --- Escalation ----------------------------------------------------------------------------------------------


@pytest.fixture
def superiors(orgs, province, django_user_model):
    """The provincial government (GA's parent) and its general office (办公厅), each with an official."""
    gov = Organization.objects.create(
        name="山东省人民政府",
        code="370000-GOV",
        uscc=make_uscc("1", "1", "370000", serial=91),
        level=1,
        division=province,
        kind="GOV",
    )
    office = Organization.objects.create(
        name="山东省人民政府办公厅",
        code="370000-BGT",
        uscc=make_uscc("1", "1", "370000", serial=92),
        level=1,
        division=province,
        kind="BG",
        parent=gov,
    )
    Organization.objects.filter(pk=orgs["ga"].pk).update(parent=gov)
    return {
        key: django_user_model.objects.create_user(username=f"q-{key}", kind="official", department=org)
        for key, org in (("gov", gov), ("office", office))
    }


def test_overdue_orders_escalate_once_per_level(users, superiors, finished_run):
    order = _orders()["p.id"]  # high: due five working days after opening
    RectificationOrder.objects.exclude(pk=order.pk).update(due_on=datetime.date(2030, 1, 4))
    due = order.due_on
    assert rectification.escalate_due(today=due) == []
    first = add_working_days(due, 1)
    assert rectification.escalate_due(today=first) == [(order.code, 1)]
    assert rectification.escalate_due(today=first) == []  # once per level
    order.refresh_from_db()
    assert order.escalation_level == 1 and order.escalated_at is not None
    event = order.events.get(action="escalated")
    assert event.data["level"] == 1 and event.data["overdue"] == 1
    assert event.data["recipients"] == ["370000-DSJ", "370000-GA"]
    for key in ("ga", "dsj"):
        assert Notification.objects.filter(user=users[key], template="quality.order.escalated").count() == 1
    assert not Notification.objects.filter(user=superiors["gov"], template="quality.order.escalated").exists()

    def mine(done):
        return [item for item in done if item[0] == order.code]

    assert mine(rectification.escalate_due(today=add_working_days(due, 5))) == []
    second = add_working_days(due, 6)  # five further working days (QUALITY_ORDER_ESCALATION_DAYS)
    assert mine(rectification.escalate_due(today=second)) == [(order.code, 2)]
    assert mine(rectification.escalate_due(today=second + datetime.timedelta(days=30))) == []
    order.refresh_from_db()
    assert order.escalation_level == 2
    assert order.events.filter(action="escalated").count() == 2
    assert set(order.events.filter(action="escalated").last().data["recipients"]) == {
        "370000-GA",
        "370000-DSJ",
        "370000-GOV",
        "370000-BGT",
    }
    for user in superiors.values():
        assert Notification.objects.filter(user=user, template="quality.order.escalated").count() == 1
    assert AuditRecord.objects.filter(action="quality.order.escalate", target_id=str(order.pk)).count() == 2


def test_a_long_overdue_order_reaches_both_levels_at_once_and_closed_ones_never(finished_run, settings):
    settings.QUALITY_ORDER_ESCALATION_DAYS = 2
    orders = _orders()
    rectification.cancel_order(orders["p.name"], actor="system:test", reason="测试")
    today = add_working_days(orders["p.birth"].due_on, 8)  # p.marital (low) is due 10 working days later
    done = rectification.escalate_due(today=today)
    codes = {code for code, _level in done}
    assert orders["p.name"].code not in codes
    assert (orders["p.birth"].code, 1) in done and (orders["p.birth"].code, 2) in done
    assert orders["p.marital"].code not in codes  # low severity: not due yet
    assert rectification.escalate_due(today=today) == []


def test_weekend_days_after_the_deadline_do_not_escalate(registries, orgs):
    order = rectification.raise_finding(
        source="linkage",
        registry=registries["person"],
        finding_key="k",
        department=orgs["ga"],
        title="t",
        dimension="consistency",
        fields=[],
        failed=1,
        samples=[],
        actor="system:test",
    )
    RectificationOrder.objects.filter(pk=order.pk).update(due_on=datetime.date(2026, 11, 27))  # a Friday
    assert rectification.escalate_due(today=datetime.date(2026, 11, 28)) == []  # Saturday
    assert rectification.escalate_due(today=datetime.date(2026, 11, 29)) == []  # Sunday
    assert rectification.escalate_due(today=datetime.date(2026, 11, 30)) == [(order.code, 1)]  # Monday
