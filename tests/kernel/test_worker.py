"""``dgov worker``: outbox + django-tasks jobs in one loop, heartbeat, graceful stop on SIGTERM."""

import os
import signal
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from dgov.kernel import tasks
from dgov.kernel.management.commands.worker import BackgroundWorker
from dgov.kernel.models import OutboxEvent, WorkerHeartbeat
from dgov.kernel.services import events


@pytest.fixture
def handler():
    registered = []

    def _register(pattern, func):
        name = f"test.worker.{func.__name__}.{len(registered)}"
        events.subscribe(pattern, name=name)(func)
        registered.append(name)

    yield _register
    for name in registered:
        events.unsubscribe(name)


@pytest.mark.django_db
def test_once_runs_tasks_and_events_and_records_heartbeat(handler, capsys):
    seen = []
    handler("test.worker.ping", lambda e: seen.append(e.pk))
    with transaction.atomic():
        old = events.publish("test.worker.old", {})
        ping = events.publish("test.worker.ping", {})
    OutboxEvent.objects.filter(pk=old.pk).update(
        status=OutboxEvent.Status.DELIVERED, delivered_at=timezone.now() - timedelta(days=90)
    )
    result = tasks.prune_outbox.enqueue(older_than_days=30)

    call_command("worker", "--once")

    assert seen == [ping.pk]
    row = DBTaskResult.objects.get(pk=result.id)
    assert row.status == TaskResultStatus.SUCCESSFUL and row.return_value == 1
    assert not OutboxEvent.objects.filter(pk=old.pk).exists()
    beat = WorkerHeartbeat.objects.get()
    assert beat.stopped_at is not None  # --once marks itself stopped: /readyz does not count it
    assert (beat.events_delivered, beat.tasks_run) == (1, 1)
    assert "delivered 1 events, 0 failed, ran 1 tasks" in capsys.readouterr().out


@pytest.mark.django_db
def test_failed_task_is_recorded_and_does_not_stop_the_worker():
    result = tasks.prune_outbox.enqueue(older_than_days="not a number")
    call_command("worker", "--once", verbosity=0)
    row = DBTaskResult.objects.get(pk=result.id)
    assert row.status == TaskResultStatus.FAILED and "TypeError" in row.exception_class_path


@pytest.mark.django_db
def test_no_tasks_flag_leaves_tasks_queued():
    result = tasks.prune_outbox.enqueue()
    call_command("worker", "--once", "--no-tasks", verbosity=0)
    assert DBTaskResult.objects.get(pk=result.id).status == TaskResultStatus.READY


@pytest.mark.django_db
def test_heartbeat_is_written_while_running(handler):
    worker = BackgroundWorker(interval=0.01, heartbeat_every=0)
    beats = []

    def observe(event):
        beats.append(WorkerHeartbeat.objects.get(worker_id=worker.worker_id).stopped_at)
        worker.stop()

    handler("test.worker.observe", observe)
    with transaction.atomic():
        events.publish("test.worker.observe", {})
    worker.run()  # loops until the handler asks it to stop
    assert beats == [None]  # alive while working
    beat = WorkerHeartbeat.objects.get(worker_id=worker.worker_id)
    assert beat.stopped_at is not None and beat.events_delivered == 1
    assert events.worker_status() == "missing"


@pytest.mark.django_db
def test_sigterm_stops_gracefully_after_the_current_event(handler):
    done = []

    def slow(event):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-event
        done.append(event.pk)

    handler("test.worker.sigterm", slow)
    with transaction.atomic():
        first = events.publish("test.worker.sigterm", {})
        second = events.publish("test.worker.sigterm", {})
    previous = signal.getsignal(signal.SIGTERM)
    call_command("worker", "--interval", "0.05", "--batch-size", "1", verbosity=0)  # returns on SIGTERM
    assert done == [first.pk]  # the event in hand was finished, the next one left for later
    assert OutboxEvent.objects.get(pk=first.pk).status == OutboxEvent.Status.DELIVERED
    assert OutboxEvent.objects.get(pk=second.pk).status == OutboxEvent.Status.PENDING
    assert WorkerHeartbeat.objects.get().stopped_at is not None
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_deliver_each_event_once(handler):
    """PostgreSQL: two workers claiming at once (SKIP LOCKED) never deliver an event twice."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has a single writer; concurrent claims are a PostgreSQL property")
    seen = []
    lock = threading.Lock()

    def record(event):
        with lock:
            seen.append((event.pk, threading.get_ident()))

    handler("test.worker.concurrent", record)
    with transaction.atomic():
        for i in range(200):
            events.publish("test.worker.concurrent", {"i": i}, aggregate="demo.case", aggregate_id=str(i % 7))

    errors = []

    def work(name):
        try:
            while events.drain(name, limit=10).claimed:
                pass
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    ids = [pk for pk, _ in seen]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 200
    assert not OutboxEvent.objects.exclude(status=OutboxEvent.Status.DELIVERED).exists()
    # Per aggregate, delivery followed id order even with two workers.
    by_agg = {}
    for pk in ids:
        by_agg.setdefault(OutboxEvent.objects.get(pk=pk).aggregate_id, []).append(pk)
    assert all(v == sorted(v) for v in by_agg.values())


@pytest.mark.django_db
def test_every_periodic_job_answers_a_count():
    """The worker adds up what its periodic jobs return: each answers an int (here, on an empty platform)."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    for path in settings.WORKER_PERIODIC_JOBS:
        answer = import_string(path)()
        assert isinstance(answer, int) and not isinstance(answer, bool), path
