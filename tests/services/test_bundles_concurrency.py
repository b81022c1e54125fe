"""Two members of a bundle closing at the same time: the case is settled exactly once (PostgreSQL row lock)."""

import threading

import pytest
from django.db import connection

from dgov.kernel.models import Notification
from dgov.services import applications, bundles
from dgov.services.models import Bundle, BundleCase, ServiceItem

from .process_helpers import FORM_SCHEMA, GOOD, make_world


@pytest.mark.django_db(transaction=True)
def test_members_closing_together_settle_the_case_once(django_user_model):
    if connection.vendor != "postgresql":
        pytest.skip("the in-memory SQLite test database does not take concurrent writers")
    world = make_world(django_user_model, prefix="bconc")
    users = world["users"]
    second = ServiceItem.objects.create(
        basic_code="bconc-0002",
        name="户籍证明",
        type="confirmation",
        legal_basis="《户口登记条例》",
        department_kind="GA",
        legal_limit_days=20,
        promised_limit_days=5,
        form_schema=FORM_SCHEMA,
    )
    bundle = Bundle.objects.create(
        code="bconc", name="并发一件事", form_mapping={"name": ["bconc-0001.name", "bconc-0002.name"]}
    )
    bundle.items.set([world["item"], second])
    data = {
        "name": GOOD["name"],
        **{f"{code}.{k}": v for code in ("bconc-0001", "bconc-0002") for k, v in GOOD.items() if k != "name"},
    }
    officials = {"SCJG": users["a"], "GA": users["other"]}
    for _round in range(4):
        case = bundles.submit_bundle(bundle, applicant=users["citizen"], data=data, actor=users["citizen"])
        tasks = [app.tasks.get(status="open") for app in case.applications.select_related("department")]
        barrier = threading.Barrier(len(tasks))
        errors = []

        def close(task, barrier=barrier, errors=errors):
            try:
                official = officials[task.application.department.kind]
                barrier.wait()
                applications.complete_task(task, actor=official, decision="reject", data={"opinion": "不符合条件"})
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(repr(exc))
            finally:
                connection.close()

        threads = [threading.Thread(target=close, args=(task,)) for task in tasks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        case.refresh_from_db()
        assert case.status == BundleCase.Status.PARTLY and case.completed_at
        notes = Notification.objects.filter(template="services.bundle.completed", link__endswith=f"/{case.number}/")
        assert notes.count() == 1
