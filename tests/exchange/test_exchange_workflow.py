"""Requests, decisions, grants: sharing types, working-day deadlines, refusals, revocation, expiry, audit."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from dgov.exchange import services
from dgov.exchange.models import Grant, ShareRequest
from dgov.kernel.models import AuditRecord

pytestmark = pytest.mark.django_db

END = datetime.date.today() + datetime.timedelta(days=60)


def ask(users, resource, items, who="mz", **kw):
    return services.request_share(
        resource,
        actor=users[who],
        items=items,
        purpose="低保资格审核",
        legal_basis="《社会救助暂行办法》",
        period_end=kw.pop("period_end", END),
        **kw,
    )


def test_unconditional_items_are_granted_at_once(users, resources, orgs):
    request = ask(users, resources["person"], ["name", "birth_date"])
    assert request.status == "granted"
    grant = request.grant
    assert grant.items == {"name": "full", "birth_date": "full"}
    assert services.grant_state(grant) == "active"
    assert grant.valid_until == timezone.make_aware(
        datetime.datetime.combine(END + datetime.timedelta(days=1), datetime.time.min)
    )
    assert AuditRecord.objects.filter(action="exchange.request.granted", target_id=str(request.pk)).exists()
    items, grant_id, _code = services.live_grant_items(orgs["mz"], resources["person"])
    assert items == {"name": "full", "birth_date": "full"} and grant_id == grant.pk


def test_conditional_item_goes_to_the_provider_with_a_working_day_deadline(users, resources, monkeypatch):
    # 2026-09-30 (Wednesday) + 5 working days skips the National Day holiday week (10-01 … 10-07).
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: datetime.date(2026, 9, 30))
    request = ask(
        users, resources["person"], {"name": "full", "income": "verify"}, period_end=datetime.date(2026, 12, 31)
    )
    assert request.status == "submitted" and request.sharing_type == "conditional"
    from dgov.kernel.services.calendar import add_working_days, is_workday

    assert request.due_on == add_working_days(datetime.date(2026, 9, 30), 5)
    assert request.due_on > datetime.date(2026, 10, 7)  # the holiday week does not count
    assert not Grant.objects.exists()
    assert list(services.approval_inbox(users["ga"])) == [request]
    assert list(services.approval_inbox(users["rs"])) == []
    assert is_workday(request.due_on)


def test_approve_and_refuse_are_for_provider_officials_only(users, resources):
    request = ask(users, resources["person"], ["id_number"])
    with pytest.raises(PermissionDenied):
        services.approve(request, actor=users["rs"])
    with pytest.raises(PermissionDenied):
        services.approve(request, actor=users["mz"])  # the consumer cannot grant itself
    assert AuditRecord.objects.filter(action="exchange.request.approve", outcome="denied").count() == 2
    with pytest.raises(ValidationError):
        services.refuse(request, actor=users["ga"], reason="  ")
    services.refuse(request, actor=users["ga"], reason="用途与共享条件不符")
    request.refresh_from_db()
    assert request.status == "refused" and request.reason == "用途与共享条件不符" and request.decided_by == users["ga"]
    with pytest.raises(services.InvalidTransition):
        services.approve(request, actor=users["ga"])


def test_approval_grants_the_requested_items(users, resources, orgs):
    request = ask(users, resources["person"], {"id_number": "verify", "name": "full"})
    grant = services.approve(request, actor=users["ga2"], reason="同意")
    assert grant.items == {"id_number": "verify", "name": "full"}
    assert ShareRequest.objects.get(pk=request.pk).status == "granted"
    assert AuditRecord.objects.filter(action="exchange.request.approve", outcome="success").exists()


def test_not_shared_resource_is_refused_with_its_basis(users, resources):
    request = ask(users, resources["secret"], ["name"])
    assert request.status == "refused" and "人民警察法" in request.reason
    assert not Grant.objects.exists()


def test_bad_requests(users, resources):
    with pytest.raises(ValidationError) as exc:
        ask(users, resources["person"], ["nope"])
    assert "items" in exc.value.message_dict
    with pytest.raises(ValidationError):
        ask(users, resources["person"], {"name": "everything"})
    with pytest.raises(ValidationError):
        ask(users, resources["person"], ["name"], period_end=datetime.date.today() - datetime.timedelta(days=1))
    with pytest.raises(ValidationError):
        services.request_share(
            resources["person"], actor=users["mz"], items=["name"], purpose="", legal_basis="", period_end=END
        )
    with pytest.raises(ValidationError):
        ask(users, resources["person"], ["name"], who="ga")  # its own resource


def test_withdraw_by_the_consumer(users, resources):
    request = ask(users, resources["person"], ["income"])
    with pytest.raises(PermissionDenied):
        services.withdraw(request, actor=users["ga"])
    services.withdraw(request, actor=users["mz"])
    assert ShareRequest.objects.get(pk=request.pk).status == "withdrawn"
    assert list(services.approval_inbox(users["ga"])) == []


def test_revoke_and_expire(users, resources, orgs):
    grant = ask(users, resources["person"], ["name"]).grant
    with pytest.raises(PermissionDenied):
        services.revoke(grant, actor=users["mz"], reason="x")
    with pytest.raises(ValidationError):
        services.revoke(grant, actor=users["ga"], reason="")
    services.revoke(grant, actor=users["ga"], reason="数据用途超出授权")
    assert services.grant_state(grant) == "revoked"
    assert services.live_grant_items(orgs["mz"], resources["person"])[2] == "grant_revoked"

    other = ask(users, resources["person"], ["birth_date"], who="rs").grant
    later = other.valid_until + datetime.timedelta(seconds=1)
    assert services.live_grant_items(orgs["rs"], resources["person"], now=later)[2] == "grant_expired"
    assert services.expire_grants(now=later) == 1
    assert services.expire_grants(now=later) == 0
    assert AuditRecord.objects.filter(action="exchange.grant.expire").count() == 1
    assert AuditRecord.objects.filter(action="exchange.grant.revoke", outcome="success").count() == 1
