"""Transactional outbox: publish in the caller's transaction, deliver at least once, retry, dead, requeue."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from dgov.kernel.models import OutboxDelivery, OutboxEvent
from dgov.kernel.services import events


class Boom(Exception):
    """A handler failure raised on purpose."""


@pytest.fixture
def subscribe():
    """Register handlers for the test only (the registry is process-wide)."""
    registered = []

    def _subscribe(pattern, func, name=None):
        name = name or f"test.{func.__name__}.{len(registered)}"
        events.subscribe(pattern, name=name)(func)
        registered.append(name)
        return name

    yield _subscribe
    for name in registered:
        events.unsubscribe(name)


def drain_once():
    call_command("worker", "--once", "--no-tasks", verbosity=0)


def make_due(*evs):
    OutboxEvent.objects.filter(pk__in=[e.pk for e in evs]).update(next_attempt_at=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_publish_outside_atomic_raises():
    with pytest.raises(events.NotInTransaction):
        events.publish("test.outside", {"a": 1})
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_publish_rejects_bad_type_and_payload():
    with pytest.raises(ValueError):
        events.publish("test.*", {})
    with pytest.raises(TypeError):
        events.publish("test.list", [1, 2])


@pytest.mark.django_db
def test_rolled_back_event_is_never_delivered(subscribe):
    seen = []
    subscribe("test.rollback", lambda e: seen.append(e.pk))
    with pytest.raises(Boom), transaction.atomic():
        events.publish("test.rollback", {"x": 1})
        raise Boom
    drain_once()
    assert seen == []
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_committed_event_is_delivered_once(subscribe):
    seen = []
    subscribe("test.once", lambda e: seen.append((e.pk, e.payload["x"])))
    with transaction.atomic():
        ev = events.publish("test.once", {"x": 7}, aggregate="demo.thing", aggregate_id=3)
    drain_once()
    drain_once()
    assert seen == [(ev.pk, 7)]
    ev.refresh_from_db()
    assert ev.status == OutboxEvent.Status.DELIVERED
    assert ev.delivered_at is not None and ev.locked_by == ""
    assert ev.aggregate_id == "3"
    assert OutboxDelivery.objects.get(event=ev).status == OutboxDelivery.Status.DELIVERED


@pytest.mark.django_db
def test_event_without_handlers_is_settled():
    with transaction.atomic():
        ev = events.publish("test.nobody.listens", {})
    drain_once()
    ev.refresh_from_db()
    assert ev.status == OutboxEvent.Status.DELIVERED


@pytest.mark.django_db
def test_failing_handler_backs_off_then_dies(subscribe, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.OUTBOX_BACKOFF_BASE = 10
    calls = []

    def broken(event):
        calls.append(event.pk)
        raise Boom("provider down")

    name = subscribe("test.broken", broken)
    with transaction.atomic():
        ev = events.publish("test.broken", {})

    before = timezone.now()
    drain_once()
    ev.refresh_from_db()
    assert ev.status == OutboxEvent.Status.PENDING and ev.attempts == 1
    assert "provider down" in ev.last_error and name in ev.last_error
    # First retry waits base seconds ±20 % jitter.
    assert before + timedelta(seconds=7.9) <= ev.next_attempt_at <= timezone.now() + timedelta(seconds=12.1)
    drain_once()  # not due yet: nothing happens
    assert calls == [ev.pk]

    make_due(ev)
    before = timezone.now()
    drain_once()
    ev.refresh_from_db()
    assert ev.attempts == 2
    assert ev.next_attempt_at >= before + timedelta(seconds=15.9)  # doubled

    make_due(ev)
    drain_once()
    ev.refresh_from_db()
    assert ev.status == OutboxEvent.Status.DEAD and ev.attempts == 3
    assert len(calls) == 3
    delivery = OutboxDelivery.objects.get(event=ev, handler=name)
    assert delivery.status == OutboxDelivery.Status.FAILED and delivery.attempts == 3

    make_due(ev)
    drain_once()
    assert len(calls) == 3  # dead events are not retried


def test_backoff_is_capped(settings):
    settings.OUTBOX_BACKOFF_BASE = 2
    settings.OUTBOX_BACKOFF_MAX = 60
    assert 1.6 <= events.backoff_delay(1) <= 2.4
    assert 3.2 <= events.backoff_delay(2) <= 4.8
    assert events.backoff_delay(30) <= 72


@pytest.mark.django_db
def test_one_failing_handler_does_not_rerun_the_other(subscribe):
    ok_calls, flaky_calls = [], []

    def ok(event):
        ok_calls.append(event.pk)

    def flaky(event):
        flaky_calls.append(event.pk)
        if len(flaky_calls) == 1:
            raise Boom("first time fails")

    ok_name = subscribe("test.pair", ok)
    flaky_name = subscribe("test.pair", flaky)
    with transaction.atomic():
        ev = events.publish("test.pair", {})
    drain_once()
    ev.refresh_from_db()
    assert ev.status == OutboxEvent.Status.PENDING
    make_due(ev)
    drain_once()
    ev.refresh_from_db()
    assert ev.status == OutboxEvent.Status.DELIVERED and ev.attempts == 1
    assert ok_calls == [ev.pk]
    assert flaky_calls == [ev.pk, ev.pk]
    rows = dict(OutboxDelivery.objects.filter(event=ev).values_list("handler", "attempts"))
    assert rows == {ok_name: 1, flaky_name: 2}


@pytest.mark.django_db
def test_failed_handler_writes_are_rolled_back(subscribe, django_user_model):
    def writes_then_fails(event):
        django_user_model.objects.create(username="ghost")
        raise Boom

    subscribe("test.rollback.handler", writes_then_fails)
    with transaction.atomic():
        events.publish("test.rollback.handler", {})
    drain_once()
    assert not django_user_model.objects.filter(username="ghost").exists()


def test_patterns_match_exact_star_and_prefix(subscribe):
    exact = subscribe("test.pattern.a", lambda e: None)
    prefix = subscribe("test.pattern.*", lambda e: None)
    everything = subscribe("*", lambda e: None)
    assert [s.name for s in events.handlers_for("test.pattern.a")][-3:] == [exact, prefix, everything]
    names = {s.name for s in events.handlers_for("test.pattern.b.c")}
    assert prefix in names and everything in names and exact not in names
    names = {s.name for s in events.handlers_for("test.patternx")}
    assert prefix not in names and everything in names


@pytest.mark.parametrize("bad", ["", "a*", "a.*.b", "*.x", "a**"])
def test_bad_patterns_are_refused(bad):
    with pytest.raises(ValueError):
        events.subscribe(bad)


@pytest.mark.django_db
def test_events_of_one_aggregate_are_delivered_in_order(subscribe):
    order = []
    failed_once = set()

    def handler(event):
        if event.payload["n"] == 1 and 1 not in failed_once:
            failed_once.add(1)
            raise Boom("first event fails once")
        order.append((event.aggregate_id, event.payload["n"]))

    subscribe("test.ordered", handler)
    with transaction.atomic():
        for n in (1, 2, 3):
            events.publish("test.ordered", {"n": n}, aggregate="demo.case", aggregate_id="A")
        events.publish("test.ordered", {"n": 9}, aggregate="demo.case", aggregate_id="B")
    drain_once()
    # A's first event waits for its retry and holds back A's later events; B is not blocked.
    assert order == [("B", 9)]
    assert OutboxEvent.objects.filter(aggregate_id="A", status=OutboxEvent.Status.PENDING).count() == 3
    make_due(*OutboxEvent.objects.filter(aggregate_id="A"))
    drain_once()
    assert order == [("B", 9), ("A", 1), ("A", 2), ("A", 3)]


@pytest.mark.django_db
def test_claim_respects_leases_and_aggregate_order():
    with transaction.atomic():
        first = events.publish("test.lease", {}, aggregate="demo.case", aggregate_id="L")
        second = events.publish("test.lease", {}, aggregate="demo.case", aggregate_id="L")
        other = events.publish("test.lease", {})
    # Another worker holds the first event: its successor must wait, the unrelated event need not.
    OutboxEvent.objects.filter(pk=first.pk).update(
        locked_by="other", locked_until=timezone.now() + timedelta(minutes=5)
    )
    claimed = events.claim_batch("me")
    assert [e.pk for e in claimed] == [other.pk]
    assert OutboxEvent.objects.get(pk=other.pk).locked_by == "me"
    # Once the other worker's lease has expired (it died), the events are claimable again, in order.
    OutboxEvent.objects.filter(pk=first.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    claimed = events.claim_batch("me-again")
    assert [e.pk for e in claimed] == [first.pk, second.pk]


@pytest.mark.django_db
def test_requeue_dead_event_is_audited(subscribe, settings, django_user_model):
    from dgov.kernel.models import AuditRecord

    settings.OUTBOX_MAX_ATTEMPTS = 1
    calls = []

    def handler(event):
        calls.append(event.pk)
        if len(calls) == 1:
            raise Boom("dies")

    subscribe("test.requeue", handler)
    with transaction.atomic():
        ev = events.publish("test.requeue", {})
    drain_once()
    ev.refresh_from_db()
    assert ev.status == OutboxEvent.Status.DEAD

    nobody = django_user_model.objects.create_user(username="nobody", password="x-Passw0rd!")
    with pytest.raises(PermissionDenied):
        events.requeue(ev, actor=nobody)
    admin = django_user_model.objects.create_superuser(username="root", password="x-Passw0rd!")
    events.requeue(ev, actor=admin)
    assert ev.status == OutboxEvent.Status.PENDING and ev.attempts == 0
    record = AuditRecord.objects.get(action="kernel.outbox.requeue")
    assert record.target_id == str(ev.pk)
    assert "dies" in record.detail_json

    drain_once()
    ev.refresh_from_db()
    assert ev.status == OutboxEvent.Status.DELIVERED and calls == [ev.pk, ev.pk]
    with pytest.raises(ValueError):
        events.requeue(ev, actor=admin)  # only dead events


@pytest.mark.django_db
def test_prometheus_counters(subscribe, django_capture_on_commit_callbacks):
    def value(name, event_type):
        return REGISTRY.get_sample_value(name, {"event_type": event_type}) or 0.0

    subscribe("test.metrics.ok", lambda e: None)
    subscribe("test.metrics.bad", lambda e: (_ for _ in ()).throw(Boom()))
    published = value("dgov_outbox_events_published_total", "test.metrics.ok")
    delivered = value("dgov_outbox_events_delivered_total", "test.metrics.ok")
    failed = value("dgov_outbox_events_failed_total", "test.metrics.bad")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events.publish("test.metrics.ok", {})
        events.publish("test.metrics.bad", {})
    assert value("dgov_outbox_events_published_total", "test.metrics.ok") == published + 1
    drain_once()
    assert value("dgov_outbox_events_delivered_total", "test.metrics.ok") == delivered + 1
    assert value("dgov_outbox_events_failed_total", "test.metrics.bad") == failed + 1
    events.refresh_gauges()
    assert REGISTRY.get_sample_value("dgov_outbox_backlog", {"status": "pending"}) == 1.0


@pytest.mark.django_db
def test_handler_can_publish_follow_up_events(subscribe):
    seen = []

    def first(event):
        events.publish("test.chain.second", {"from": event.pk})

    subscribe("test.chain.first", first)
    subscribe("test.chain.second", lambda e: seen.append(e.payload["from"]))
    with transaction.atomic():
        ev = events.publish("test.chain.first", {})
    drain_once()  # --once keeps passing until nothing is due, so the follow-up is delivered too
    assert seen == [ev.pk]


@pytest.mark.django_db
def test_prune_delivered_events():
    with transaction.atomic():
        old = events.publish("test.prune", {})
        recent = events.publish("test.prune", {})
    OutboxEvent.objects.filter(pk=old.pk).update(
        status=OutboxEvent.Status.DELIVERED, delivered_at=timezone.now() - timedelta(days=40)
    )
    OutboxEvent.objects.filter(pk=recent.pk).update(
        status=OutboxEvent.Status.DELIVERED, delivered_at=timezone.now()
    )
    assert events.prune_delivered(older_than_days=30) == 1
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [recent.pk]
