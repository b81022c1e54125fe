"""Shared builders for the process-side tests of 一网通办 (applications on BPMN processes)."""

from __future__ import annotations

from dgov.kernel.models import Division, Organization

FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "title": "姓名", "minLength": 2, "maxLength": 20},
        "age": {"type": "integer", "title": "年龄", "minimum": 0, "maximum": 150},
        "email": {"type": "string", "title": "电子邮箱", "format": "email"},
        "purpose": {"type": "string", "title": "用途", "enum": ["自用", "经营"]},
    },
    "required": ["name", "age"],
}


def make_world(django_user_model, *, prefix="p", process_key="review", promised=5, legal=20):
    """A province, a county, two departments (市场监管 SCJG, 公安 GA), officials, a citizen and an item."""
    from dgov.kernel.validators import make_uscc
    from dgov.services.models import ServiceItem

    province, _ = Division.objects.get_or_create(
        code="370000", defaults={"name": "山东省", "full_name": "山东省", "level": Division.Level.PROVINCE}
    )
    orgs = {}
    for serial, (key, kind, parent) in enumerate([("scjg", "SCJG", None), ("ga", "GA", None), ("top", "ZF", None)], 1):
        orgs[key] = Organization.objects.create(
            name=f"山东省{key}",
            code=f"370000-{prefix}-{key}",
            uscc=make_uscc("1", "1", "370000", serial=serial + hash(prefix) % 1000),
            level=Organization.Level.PROVINCE,
            division=province,
            kind=kind,
        )
    Organization.objects.filter(pk=orgs["scjg"].pk).update(parent=orgs["top"])
    orgs["scjg"].refresh_from_db()
    users = {
        "a": django_user_model.objects.create_user(
            username=f"{prefix}-a", password="x", kind="official", department=orgs["scjg"]
        ),
        "b": django_user_model.objects.create_user(
            username=f"{prefix}-b", password="x", kind="official", department=orgs["scjg"]
        ),
        "other": django_user_model.objects.create_user(
            username=f"{prefix}-other", password="x", kind="official", department=orgs["ga"]
        ),
        "boss": django_user_model.objects.create_user(
            username=f"{prefix}-boss", password="x", kind="official", department=orgs["top"]
        ),
        "citizen": django_user_model.objects.create_user(username=f"{prefix}-citizen", password="x", kind="person"),
        "citizen2": django_user_model.objects.create_user(username=f"{prefix}-citizen2", password="x", kind="person"),
    }
    item = ServiceItem.objects.create(
        basic_code=f"{prefix}-0001",
        name="食品经营许可",
        type="licensing",
        legal_basis="《食品安全法》",
        department_kind="SCJG",
        legal_limit_days=legal,
        promised_limit_days=promised,
        form_schema=FORM_SCHEMA,
        process_key=process_key,
    )
    return {"province": province, "orgs": orgs, "users": users, "item": item}


GOOD = {"name": "王小明", "age": "30", "purpose": "自用"}


def drain_outbox() -> None:
    """Deliver the outbox once, as the worker does after a commit (decision documents, offers)."""
    from django.core.management import call_command

    call_command("worker", "--once", "--no-tasks", verbosity=0)
