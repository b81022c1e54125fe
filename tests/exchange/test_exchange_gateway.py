"""The gateway with real client-credentials tokens: field filtering, refusals, logging, access log, rate limit."""

import datetime

import pytest
from exchange_helpers import OTHER_ID, PERSON_ID

from dgov.exchange import services
from dgov.exchange.models import ExchangeLogEntry
from dgov.registry.models import AccessLog

pytestmark = pytest.mark.django_db

END = datetime.date.today() + datetime.timedelta(days=30)
PROBLEM = "application/problem+json"


def url(resource, identifier=PERSON_ID, query=""):
    return f"/api/v1/exchange/resources/{resource.code.replace('/', '-')}/records/{identifier}{query}"


def grant(users, resource, items, who="mz"):
    request = services.request_share(
        resource,
        actor=users[who],
        items=items,
        purpose="低保资格审核",
        legal_basis="《社会救助暂行办法》",
        period_end=END,
    )
    if request.status == "submitted":
        services.approve(request, actor=users["ga"])
    return request.grant


@pytest.fixture
def token(client, make_client):
    return make_client()(client)


def get(client, path, token):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_granted_items_only_and_logged_everywhere(client, users, resources, token):
    grant(users, resources["person"], {"name": "full", "birth_date": "full", "income": "verify"})
    response = get(client, url(resources["person"]), token)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["items"] == {
        "name": "王小明",
        "birth_date": "1990-05-17",
    }  # income is verify-only, id_number not granted
    assert PERSON_ID not in response.content.decode()
    entry = ExchangeLogEntry.objects.get(seq=body["exchange"]["seq"])
    assert (entry.result, entry.consumer_code, entry.provider_code, entry.client_id) == (
        "ok",
        "370000-MZT",
        "370000-GAT",
        "mz-system",
    )
    assert entry.fields == ["birth_date", "name"] and entry.records == [body["record"]]
    assert entry.purpose == "低保资格审核"
    assert PERSON_ID not in entry.fields_json + entry.records_json
    read = AccessLog.objects.get(channel="exchange")
    assert read.reader == "client:mz-system" and sorted(read.fields) == ["birth_date", "name"]
    assert read.reader_org.code == "370000-MZT" and read.subject_digest  # "who read my data" finds it

    narrowed = get(client, url(resources["person"], query="?items=name"), token)
    assert narrowed.json()["items"] == {"name": "王小明"}
    queried = client.post(
        f"/api/v1/exchange/resources/{resources['person'].code.replace('/', '-')}/records/query",
        {"identifier": PERSON_ID, "items": ["birth_date"]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert queried.status_code == 200 and queried.json()["items"] == {"birth_date": "1990-05-17"}


def test_item_not_granted_is_403_without_leaks(client, users, resources, token):
    grant(users, resources["person"], ["name"])
    response = get(client, url(resources["person"], query="?items=name,id_number"), token)
    assert response.status_code == 403 and response["Content-Type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["code"] == "item_not_granted" and "id_number" not in problem["detail"]
    assert "王小明" not in response.content.decode() and PERSON_ID not in response.content.decode()
    entry = ExchangeLogEntry.objects.get(seq=problem["exchange_seq"])
    assert (entry.result, entry.code, entry.status) == ("denied", "item_not_granted", 403)
    assert not AccessLog.objects.filter(channel="exchange").exists()


def test_no_grant_revoked_expired(client, users, resources, token, orgs):
    response = get(client, url(resources["person"]), token)
    assert response.status_code == 403 and response.json()["code"] == "no_grant"
    g = grant(users, resources["person"], ["name"])
    assert get(client, url(resources["person"]), token).status_code == 200
    services.revoke(g, actor=users["ga"], reason="停止使用")
    response = get(client, url(resources["person"]), token)
    assert response.status_code == 403 and response.json()["code"] == "grant_revoked"
    # an expired grant (period over): move the validity into the past
    g2 = grant(users, resources["person"], ["name"])
    type(g2).objects.filter(pk=g2.pk).update(valid_until=g2.valid_from)
    response = get(client, url(resources["person"]), token)
    assert response.status_code == 403 and response.json()["code"] in ("grant_expired", "grant_revoked")
    codes = list(ExchangeLogEntry.objects.order_by("seq").values_list("code", flat=True))
    assert codes[0] == "no_grant" and "grant_revoked" in codes


def test_unknown_resource_or_record_and_bad_tokens(client, users, resources, token, make_client):
    grant(users, resources["person"], ["name"])
    assert get(client, url(resources["person"], identifier=OTHER_ID), token).json()["items"] == {"name": "李四"}
    missing = get(client, url(resources["person"], identifier="110105194912310021"), token)
    assert missing.status_code == 404 and missing["Content-Type"].startswith(PROBLEM)
    assert missing.json()["code"] == "record_not_found"
    nothing = client.get("/api/v1/exchange/resources/999999999-000001/records/x", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert nothing.status_code == 404 and nothing.json()["code"] == "resource_not_found"
    unauth = client.get(url(resources["person"]))
    assert unauth.status_code == 401 and unauth["Content-Type"].startswith(PROBLEM)
    assert client.get(url(resources["person"]), HTTP_AUTHORIZATION="Bearer junk").status_code == 401
    no_scope = make_client(client_id="mz-reader", scopes=("registry:read",))(client)
    refused = get(client, url(resources["person"]), no_scope)
    assert refused.status_code == 403 and refused.json()["code"] == "scope_missing"
    # another department's client with no grant of its own
    rs = make_client("rs", client_id="rs-system")(client)
    assert get(client, url(resources["person"]), rs).json()["code"] == "no_grant"


def test_rate_limit_answers_429(client, users, resources, token, settings):
    grant(users, resources["person"], ["name"])
    settings.EXCHANGE_RATE_PER_SECOND = 0.001
    settings.EXCHANGE_RATE_BURST = 2
    statuses = [get(client, url(resources["person"]), token).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = get(client, url(resources["person"]), token)
    assert response["Retry-After"] and response.json()["code"] == "rate_limited"
    assert ExchangeLogEntry.objects.filter(code="rate_limited").count() == 2


def test_verification_answers_without_the_value(client, users, resources, token):
    grant(users, resources["person"], {"income": "verify", "name": "full"})
    path = f"/api/v1/exchange/resources/{resources['person'].code.replace('/', '-')}/verify"

    def ask(**payload):
        return client.post(path, payload, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")

    below = ask(identifier=PERSON_ID, item="income", op="lt", value="4000")
    assert below.status_code == 200 and below.json()["result"] is True
    assert "3200" not in below.content.decode()
    assert ask(identifier=OTHER_ID, item="income", op="lt", value="4000").json()["result"] is False
    assert ask(identifier=PERSON_ID, item="income", op="eq", value="3200.5").json()["result"] is True
    assert ask(identifier=PERSON_ID, item="income", op="exists").json()["result"] is True
    assert ask(identifier="110105194912310021", item="income", op="exists").json()["result"] is False
    assert ask(identifier=PERSON_ID, item="name", op="eq", value="王小明").json()["result"] is True
    assert ask(identifier=PERSON_ID, item="name", op="gt", value="a").status_code == 400
    assert ask(identifier=PERSON_ID, item="income", op="lt", value="lots").status_code == 400
    denied = ask(identifier=PERSON_ID, item="birth_date", op="eq", value="1990-05-17")
    assert denied.status_code == 403 and denied.json()["code"] == "item_not_granted"
    assert ask(identifier=PERSON_ID, item="income", op="like", value="1").status_code == 422
    # verify-only items are never read
    read = get(client, url(resources["person"], query="?items=income"), token)
    assert read.status_code == 403
    verified = ExchangeLogEntry.objects.filter(operation="verify", result="ok")
    assert verified.count() == 6 and all(PERSON_ID not in e.fields_json + e.records_json for e in verified)
    assert AccessLog.objects.filter(channel="exchange-verify").count() == 5
