"""Workbench pages: request form, approval inbox, revoke, exchange log with receipts (scoped to the department)."""

import datetime

import pytest
from exchange_helpers import PERSON_ID

from dgov.exchange import log, services
from dgov.exchange.models import Grant, ShareRequest

pytestmark = pytest.mark.django_db
END = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()


def test_request_approve_revoke_through_pages(client, users, resources):
    key = resources["person"].code.replace("/", "-")
    client.force_login(users["mz"])
    page = client.get(f"/workbench/exchange/new/{key}/")
    assert page.status_code == 200 and "人口基本信息" in page.content.decode()
    response = client.post(
        f"/workbench/exchange/new/{key}/",
        {
            "items": ["name", "income"],
            "verify": ["income"],
            "purpose": "低保审核",
            "legal_basis": "社会救助暂行办法",
            "period_end": END,
        },
    )
    assert response.status_code == 302
    request = ShareRequest.objects.get()
    assert request.status == "submitted" and request.items == {"name": "full", "income": "verify"}
    assert "低保审核" not in client.get("/workbench/exchange/inbox/").content.decode()  # not the provider
    assert client.post(f"/workbench/exchange/requests/{request.pk}/decide/", {"action": "approve"}).status_code == 403

    client.force_login(users["ga"])
    inbox = client.get("/workbench/exchange/inbox/").content.decode()
    assert "低保审核" in inbox and request.due_on.isoformat() in inbox
    client.post(f"/workbench/exchange/requests/{request.pk}/decide/", {"action": "refuse", "reason": ""})
    assert ShareRequest.objects.get().status == "submitted"  # a refusal needs a reason
    client.post(f"/workbench/exchange/requests/{request.pk}/decide/", {"action": "approve"})
    grant = Grant.objects.get()
    assert "山东省民政厅" in client.get("/workbench/exchange/").content.decode()
    client.post(f"/workbench/exchange/grants/{grant.pk}/revoke/", {"reason": "停止合作"})
    assert services.grant_state(Grant.objects.get()) == "revoked"


def test_log_page_and_receipt_download_are_scoped(client, users, resources, make_client):
    services.request_share(
        resources["person"],
        actor=users["mz"],
        items=["name"],
        purpose="p",
        legal_basis="b",
        period_end=datetime.date.fromisoformat(END),
    )
    token = make_client()(client)
    read = client.get(
        f"/api/v1/exchange/resources/{resources['person'].code.replace('/', '-')}/records/{PERSON_ID}",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    seq = read.json()["exchange"]["seq"]
    for who in ("mz", "ga"):  # consumer and provider
        client.force_login(users[who])
        page = client.get("/workbench/exchange/log/").content.decode()
        assert "101001000/000001" in page
        download = client.get(f"/workbench/exchange/log/{seq}/receipt.json")
        assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
        assert log.verify_receipt(download.json())
    client.force_login(users["rs"])
    assert "101001000/000001" not in client.get("/workbench/exchange/log/").content.decode()
    assert client.get(f"/workbench/exchange/log/{seq}/receipt.json").status_code == 404
    # the consumer's client fetches the receipt through the API; another department's client cannot
    api = client.get(f"/api/v1/exchange/log/{seq}/receipt", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.status_code == 200 and log.verify_receipt(api.json())
    rs_token = make_client("rs", client_id="rs-system")(client)
    other = client.get(f"/api/v1/exchange/log/{seq}/receipt", HTTP_AUTHORIZATION=f"Bearer {rs_token}")
    assert other.status_code == 404 and other["Content-Type"].startswith("application/problem+json")


def test_pages_are_for_officials(client, citizen):
    client.force_login(citizen)
    assert client.get("/workbench/exchange/").status_code == 403
    client.logout()
    assert client.get("/workbench/exchange/").status_code == 302
