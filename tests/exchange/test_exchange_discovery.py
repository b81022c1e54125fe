"""Service discovery (listClients, listMethods, allowedMethods, getOpenAPI), oversize answers, the log switch."""

import datetime
import json

import pytest
from django.core import checks
from exchange_helpers import OTHER_ID, PERSON_ID

from dgov.exchange import services
from dgov.exchange.models import ExchangeLogEntry
from dgov.registry.models import AccessLog

pytestmark = pytest.mark.django_db

END = datetime.date.today() + datetime.timedelta(days=30)
BASE = "/api/v1/exchange"


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


def post(client, path, body, token):
    return client.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def key(resource):
    return resource.code.replace("/", "-")


def test_list_methods_lists_shareable_resources_of_a_provider(client, resources, orgs, token):
    response = get(client, f"{BASE}/listMethods", token)
    assert response.status_code == 200, response.content
    services_ = response.json()["services"]
    person = key(resources["person"])
    assert [(s["operation"], s["method"], s["path"]) for s in services_] == [
        ("read", "GET", f"{BASE}/resources/{person}/records/{{identifier}}"),
        ("query", "POST", f"{BASE}/resources/{person}/records/query"),
        ("verify", "POST", f"{BASE}/resources/{person}/verify"),
    ]  # 在逃人员信息 is 不予共享: no methods
    assert {s["provider"] for s in services_} == {"370000-GAT"}
    assert services_[0]["service_code"] == f"{resources['person'].code}:read"
    assert get(client, f"{BASE}/listMethods?provider=370000-GAT", token).json()["services"] == services_
    assert get(client, f"{BASE}/listMethods?provider=370000-MZT", token).json()["services"] == []
    missing = get(client, f"{BASE}/listMethods?provider=NOPE", token)
    assert missing.status_code == 404 and missing.json()["code"] == "provider_not_found"


def test_allowed_methods_follow_the_live_grants(client, users, resources, token):
    assert get(client, f"{BASE}/allowedMethods", token).json()["services"] == []
    given = grant(users, resources["person"], {"name": "full", "income": "verify"})
    allowed = get(client, f"{BASE}/allowedMethods", token).json()["services"]
    assert [s["operation"] for s in allowed] == ["read", "query", "verify"]
    assert allowed[0]["items"] == {"name": "full"}
    assert allowed[2]["items"] == {"income": "verify", "name": "full"}
    services.revoke(given, actor=users["ga"], reason="停止合作")
    assert get(client, f"{BASE}/allowedMethods", token).json()["services"] == []
    grant(users, resources["person"], {"income": "verify"})
    verify_only = get(client, f"{BASE}/allowedMethods?provider=370000-GAT", token).json()["services"]
    assert [(s["operation"], s["items"]) for s in verify_only] == [("verify", {"income": "verify"})]


def test_list_clients_names_providers_and_consumers(client, users, resources, token, make_client):
    members = get(client, f"{BASE}/listClients", token).json()["members"]
    roles = {m["member_code"]: m["roles"] for m in members}
    assert roles == {"370000-GAT": ["provider"], "370000-MZT": ["consumer"]}
    grant(users, resources["person"], {"name": "full"}, who="rs")  # RS holds a grant, no client
    roles = {m["member_code"]: m["roles"] for m in get(client, f"{BASE}/listClients", token).json()["members"]}
    assert roles["370000-RST"] == ["consumer"] and "370000-DSJ" not in roles
    assert all(m["object_type"] == "MEMBER" and m["name"] for m in members)


def test_get_openapi_describes_items_without_data(client, users, resources, token):
    person = resources["person"]
    response = get(client, f"{BASE}/getOpenAPI?resource={key(person)}", token)
    assert response.status_code == 200, response.content
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert sorted(document["paths"]) == [
        f"{BASE}/resources/{key(person)}/records/query",
        f"{BASE}/resources/{key(person)}/records/{{identifier}}",
        f"{BASE}/resources/{key(person)}/verify",
    ]
    items = document["components"]["schemas"][f"Items_{key(person).replace('-', '_')}"]["properties"]
    assert set(items) == {"id_number", "name", "birth_date", "income"}
    assert items["birth_date"]["format"] == "date" and items["birth_date"]["title"] == "出生日期"
    assert items["name"]["type"] == ["string", "null"]
    verify_body = document["paths"][f"{BASE}/resources/{key(person)}/verify"]["post"]["requestBody"]
    assert verify_body["content"]["application/json"]["schema"]["properties"]["op"]["enum"] == [
        "eq",
        "lt",
        "gt",
        "exists",
    ]
    assert document["components"]["securitySchemes"]["clientCredentials"]["type"] == "oauth2"
    text = response.content.decode()
    assert "王小明" not in text and PERSON_ID not in text and "3200" not in text
    by_provider = get(client, f"{BASE}/getOpenAPI?provider=370000-GAT", token).json()
    assert by_provider["paths"] == document["paths"]
    assert get(client, f"{BASE}/getOpenAPI?resource={key(resources['secret'])}", token).status_code == 404
    assert get(client, f"{BASE}/getOpenAPI?provider=370000-MZT", token).status_code == 404
    assert get(client, f"{BASE}/getOpenAPI", token).status_code == 400
    both = f"{BASE}/getOpenAPI?provider=370000-GAT&resource={key(person)}"
    assert get(client, both, token).status_code == 400


def test_discovery_needs_a_gateway_client_and_is_not_logged(client, users, resources, make_client):
    assert client.get(f"{BASE}/listClients").status_code == 401
    client.force_login(users["mz"])
    session = client.get(f"{BASE}/listMethods")
    assert session.status_code == 401  # only bearer tokens are accepted
    client.logout()
    no_scope = make_client("rs", "rs-system", scopes=("registry:read",))(client)
    refused = get(client, f"{BASE}/listMethods", no_scope)
    assert refused.status_code == 403 and refused.json()["code"] == "scope_missing"
    assert refused["Content-Type"].startswith("application/problem+json")
    token = make_client()(client)
    for path in ("listClients", "listMethods", "allowedMethods", f"getOpenAPI?resource={key(resources['person'])}"):
        assert get(client, f"{BASE}/{path}", token).status_code == 200
    assert not ExchangeLogEntry.objects.exists()


def test_oversize_answer_is_refused_and_logged(client, users, resources, token, settings):
    grant(users, resources["person"], {"name": "full", "birth_date": "full"})
    path = f"{BASE}/resources/{key(resources['person'])}/records/query"
    served = post(client, path, {"identifier": PERSON_ID}, token)
    assert served.status_code == 200
    settings.EXCHANGE_MAX_RESPONSE_BYTES = len(served.content) - 1
    response = post(client, path, {"identifier": PERSON_ID}, token)
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "too_large" and response["Content-Type"].startswith("application/problem+json")
    assert "王小明" not in response.content.decode() and PERSON_ID not in response.content.decode()
    entry = ExchangeLogEntry.objects.get(seq=body["exchange_seq"])
    assert (entry.result, entry.code, entry.status, entry.records) == ("denied", "too_large", 422, [])
    assert AccessLog.objects.filter(channel="exchange").count() == 1  # only the served read
    narrow = post(client, path, {"identifier": PERSON_ID, "items": ["birth_date"]}, token)
    assert narrow.status_code == 200  # fewer items fit


def test_batch_read_and_its_record_limit(client, users, resources, token, settings):
    grant(users, resources["person"], {"name": "full"})
    path = f"{BASE}/resources/{key(resources['person'])}/records/batch"
    response = post(client, path, {"identifiers": [OTHER_ID, "370102199901010000", PERSON_ID]}, token)
    assert response.status_code == 200, response.content
    body = response.json()
    assert [r and r["items"] for r in body["records"]] == [{"name": "李四"}, None, {"name": "王小明"}]
    entry = ExchangeLogEntry.objects.get(seq=body["exchange"]["seq"])
    assert len(entry.records) == 2 and entry.result == "ok"
    assert AccessLog.objects.filter(channel="exchange").count() == 2
    settings.EXCHANGE_MAX_RECORDS = 2
    refused = post(client, path, {"identifiers": [OTHER_ID, PERSON_ID, OTHER_ID]}, token)
    assert refused.status_code == 422 and refused.json()["code"] == "too_large"
    logged = ExchangeLogEntry.objects.get(seq=refused.json()["exchange_seq"])
    assert (logged.result, logged.code) == ("denied", "too_large")
    assert AccessLog.objects.filter(channel="exchange").count() == 2


def test_log_can_be_turned_off_only_for_a_benchmark(client, users, resources, token, settings):
    grant(users, resources["person"], {"name": "full"})
    path = f"{BASE}/resources/{key(resources['person'])}/records/query"
    settings.EXCHANGE_LOG_ENABLED = False
    errors = [e for e in checks.run_checks(tags=[checks.Tags.security]) if e.id == "exchange.E001"]
    assert len(errors) == 1
    logged = post(client, path, {"identifier": PERSON_ID}, token)
    assert logged.status_code == 200 and logged.json()["exchange"]["seq"] == 1  # ignored: still logged
    settings.EXCHANGE_BENCHMARK = True
    assert not [e for e in checks.run_checks(tags=[checks.Tags.security]) if e.id == "exchange.E001"]
    unlogged = post(client, path, {"identifier": PERSON_ID}, token)
    assert unlogged.status_code == 200 and unlogged.json()["exchange"] is None
    assert unlogged.json()["items"] == {"name": "王小明"}
    assert ExchangeLogEntry.objects.count() == 1
    assert AccessLog.objects.filter(channel="exchange").count() == 2  # the citizen's view is kept
    refused = post(client, path, {"identifier": PERSON_ID, "items": ["income"]}, token)
    assert refused.status_code == 403 and json.loads(refused.content)["exchange_seq"] is None


def test_batch_read_looks_every_record_up_in_one_statement(client, users, resources, token):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    grant(users, resources["person"], {"name": "full"})
    path = f"{BASE}/resources/{key(resources['person'])}/records/batch"
    post(client, path, {"identifiers": [PERSON_ID]}, token)  # warm the per-process caches
    counts = []
    for identifiers in ([PERSON_ID], [PERSON_ID, OTHER_ID, "370102199901010000", PERSON_ID.lower(), PERSON_ID]):
        with CaptureQueriesContext(connection) as queries:
            response = post(client, path, {"identifiers": identifiers}, token)
        assert response.status_code == 200, response.content
        counts.append(len(queries))
    assert counts[0] == counts[1]  # five identifiers cost what one does
    rows = response.json()["records"]
    assert [r and r["items"]["name"] for r in rows] == ["王小明", "李四", None, "王小明", "王小明"]
    assert rows[0]["record"] == rows[3]["record"] == rows[4]["record"]
