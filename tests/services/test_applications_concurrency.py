"""Exactly one of two officials completing the same task wins (PostgreSQL row lock + version compare-and-swap)."""

import threading

import pytest
from django.db import connection

from dgov.services import applications
from dgov.services.models import ApplicationEvent, ApplicationTask

from .process_helpers import GOOD, make_world


@pytest.mark.django_db(transaction=True)
def test_two_officials_complete_the_same_task_exactly_one_wins(django_user_model):
    if connection.vendor != "postgresql":
        pytest.skip("the in-memory SQLite test database does not take concurrent writers")
    world = make_world(django_user_model, prefix="conc")
    users = world["users"]
    rounds = 5
    for _ in range(rounds):
        app = applications.submit(world["item"], applicant=users["citizen"], data=GOOD, actor=users["citizen"])
        task_id = app.tasks.get(status="open").pk
        barrier = threading.Barrier(2)
        outcomes = []

        def official(user, decision, task_id=task_id, barrier=barrier, outcomes=outcomes):
            try:
                task = ApplicationTask.objects.get(pk=task_id)
                barrier.wait()
                applications.complete_task(task, actor=user, decision=decision, data={"opinion": "并发"})
                outcomes.append(("won", decision))
            except applications.TaskConflict:
                outcomes.append(("lost", decision))
            except Exception as exc:  # pragma: no cover - reported below
                outcomes.append(("error", repr(exc)))
            finally:
                connection.close()

        threads = [
            threading.Thread(target=official, args=(users["a"], "accept")),
            threading.Thread(target=official, args=(users["b"], "reject")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(o[0] for o in outcomes) == ["lost", "won"], outcomes
        winner = next(o[1] for o in outcomes if o[0] == "won")
        app.refresh_from_db()
        assert app.version == 2
        done = ApplicationTask.objects.get(pk=task_id)
        assert done.status == "done" and done.decision == winner
        decided = app.events.filter(kind__in=[ApplicationEvent.Kind.ACCEPTED, ApplicationEvent.Kind.REJECTED])
        assert decided.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_and_completions_do_not_deadlock(django_user_model):
    """Regression: locking an application must not lock its item (select_for_update of=self), or submits deadlock."""
    if connection.vendor != "postgresql":
        pytest.skip("the in-memory SQLite test database does not take concurrent writers")
    world = make_world(django_user_model, prefix="mix")
    users = world["users"]
    errors = []

    def worker(official, citizen):
        try:
            for _ in range(8):
                app = applications.submit(world["item"], applicant=citizen, data=GOOD, actor=citizen)
                applications.complete_task(app.tasks.get(status="open"), actor=official, decision="accept")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))
        finally:
            connection.close()

    pairs = [(users["a"], users["citizen"]), (users["b"], users["citizen2"]), (users["a"], users["citizen2"])]
    threads = [threading.Thread(target=worker, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ApplicationTask.objects.filter(spec_name="review_task", status="open").count() == 24
