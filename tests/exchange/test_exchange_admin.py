"""The exchange admin is read-only: rows are added and changed through the services; the history is never deleted."""

import datetime

import pytest

from dgov.exchange import log, services

pytestmark = pytest.mark.django_db
BASIS = {"purpose": "低保审核", "legal_basis": "社会救助暂行办法"}


@pytest.fixture
def root(client, django_user_model):
    """A logged-in superuser: only the admin classes themselves can refuse."""
    user = django_user_model.objects.create_superuser(username="root", password="x" * 16, kind="admin")
    client.force_login(user)
    return user


def test_requests_can_be_viewed_but_not_added_or_changed(client, root, users, resources):
    until = datetime.date.today() + datetime.timedelta(days=30)
    share = services.request_share(resources["person"], actor=users["mz"], items=["name"], period_end=until, **BASIS)
    before = share.status
    assert client.get("/admin/exchange/sharerequest/").status_code == 200
    assert client.get("/admin/exchange/sharerequest/add/").status_code == 403
    page = client.get(f"/admin/exchange/sharerequest/{share.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/exchange/sharerequest/{share.pk}/change/", {"status": "refused"}).status_code == 403
    share.refresh_from_db()
    assert share.status == before
    assert client.get("/admin/exchange/grant/add/").status_code == 403
    assert client.get("/admin/exchange/subscription/add/").status_code == 403


def test_the_exchange_log_and_data_services_are_never_deleted(client, root):
    entry = log.append(operation="read", result="ok", consumer_code="c", provider_code="p", resource_code="r")
    assert client.get("/admin/exchange/exchangelogentry/add/").status_code == 403
    assert client.get(f"/admin/exchange/exchangelogentry/{entry.pk}/delete/").status_code == 403
    assert client.post(f"/admin/exchange/exchangelogentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/exchange/exchangecheckpoint/add/").status_code == 403
    assert client.get("/admin/exchange/dataservice/add/").status_code == 403
    changelist = client.get("/admin/exchange/exchangelogentry/").content.decode()
    assert "delete_selected" not in changelist
