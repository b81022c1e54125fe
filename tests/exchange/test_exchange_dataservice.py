"""Department data services: the gateway proxying to a department's own HTTP service (a real loopback server).

The server plays the department's service: it verifies dgov's SM2 signature and bearer secret on
every request, answers from its own records, and misbehaves on demand (500, slow, garbage,
oversize, redirect, extra items, the identifier as record id).
"""

import datetime
import http.server
import io
import json
import sys
import threading
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection
from exchange_helpers import PERSON_ID

from dgov.exchange import dataservice, services
from dgov.exchange.models import DataService, ExchangeLogEntry
from dgov.kernel.models import AuditRecord

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
SECRET = "s3cret-bearer-token-of-the-department"
LICENCE = "370102199005170031"
OTHER = "370102198501020052"
RECORDS = {
    LICENCE: {
        "record": "DL-0001",
        "items": {"licence_no": LICENCE, "holder": "王小明", "class": "C1", "points": 9, "valid_until": "2030-05-17"},
    },
    OTHER: {
        "record": "DL-0002",
        "items": {"licence_no": OTHER, "holder": "李四", "class": "A2", "points": 12, "valid_until": "2027-01-02"},
    },
}


class DeptService:
    """A loopback HTTP server playing a department's data service; ``mode`` picks its (mis)behaviour."""

    def __init__(self, public_keys: dict[str, str]):
        self.requests: list[dict] = []
        self.mode = "normal"
        self.public_keys = public_keys
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = dataservice.verify_request_signature(
                    public_key_pem=service.public_keys.get(headers.get("x-dgov-key-id", ""), ""),
                    timestamp=headers.get("x-dgov-timestamp", ""),
                    request_id=headers.get("x-dgov-request-id", ""),
                    body=body,
                    signature_b64=headers.get("x-dgov-signature", ""),
                )
                payload = json.loads(body)
                service.requests.append({"headers": headers, "body": payload, "verified": verified, "path": self.path})
                if not verified:
                    return self.answer(401, {"error": "bad signature"})
                if service.secret is not None and headers.get("authorization") != f"Bearer {service.secret}":
                    return self.answer(401, {"error": "bad credential"})
                mode = service.mode
                if mode == "500":
                    return self.answer(500, {"error": "internal detail that must not leak: ORA-00942"})
                if mode == "slow":
                    time.sleep(2.5)
                    return self.answer(200, {"record": "late", "items": {}})
                if mode == "garbage":
                    return self.raw(200, b"<html>not json ORA-00942</html>")
                if mode == "oversize":
                    return self.raw(200, json.dumps({"record": "DL-0001", "items": {"holder": "x" * 5000}}).encode())
                if mode == "oversize-stream":
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(json.dumps({"record": "DL-0001", "items": {"holder": "x" * 5000}}).encode())
                    self.close_connection = True
                    return None
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{service.port}/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if "identifiers" in payload:
                    rows = [self.record(i, payload["items"]) for i in payload["identifiers"]]
                    if mode == "short-batch":
                        rows = rows[:-1]
                    return self.answer(200, {"records": rows})
                row = self.record(payload["identifier"], payload["items"])
                return self.answer(404, {"error": "no record"}) if row is None else self.answer(200, row)

            def record(self, identifier, asked):
                row = RECORDS.get(identifier)
                if row is None:
                    return None
                if service.mode == "extra":  # a careless service answers everything it has
                    return {"record": row["record"], "items": dict(row["items"])}
                if service.mode == "identifier-as-record":
                    return {"record": identifier, "items": {c: row["items"].get(c) for c in asked}}
                return {"record": row["record"], "items": {c: row["items"].get(c) for c in asked}}

            def answer(self, status, data):
                return self.raw(status, json.dumps(data, ensure_ascii=False).encode())

            def raw(self, status, data: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.secret: str | None = None
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/dgov/licences?v=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dept(db):
    """The department's service, trusting the platform's published signing keys."""
    keys = {k["kid"]: k["public_key"] for k in dataservice.public_keys()}
    server = DeptService(keys)
    yield server
    server.close()


@pytest.fixture
def licences(orgs, users):
    """GA's published 机动车驾驶证信息 (有条件共享), items not linked to any registry."""
    from dgov.catalog import services as catalog

    catalog.ensure_standard_classes(actor="system:test")
    from dgov.catalog.models import ResourceClass

    resource = catalog.create_resource(
        actor=users["ga"],
        classification=ResourceClass.objects.get(code="101001"),
        data={
            "name": "机动车驾驶证信息",
            "sharing_type": "conditional",
            "sharing_conditions": "用于社会救助核查",
            "format": "database",
            "sharing_mode": "api",
            "open_type": "none",
            "update_cycle": "realtime",
            "summary": "驾驶证的准驾车型、记分和有效期。",
            "keywords": "驾驶证",
        },
        items=[
            {"code": "licence_no", "name": "驾驶证号", "data_type": "C", "length": 18},
            {"code": "holder", "name": "持证人", "data_type": "C", "length": 50},
            {"code": "class", "name": "准驾车型", "data_type": "C", "length": 10},
            {"code": "points", "name": "累积记分", "data_type": "I", "length": 3},
            {"code": "valid_until", "name": "有效期至", "data_type": "D", "length": 10},
        ],
    )
    catalog.publish(resource, actor=users["dsj"], note="发布")
    resource.refresh_from_db()
    return resource


@pytest.fixture
def service(users, licences, dept):
    """GA's data service for the licences, with a bearer secret."""
    dept.secret = SECRET
    return dataservice.register(
        licences, actor=users["ga"], endpoint_url=dept.url, timeout=1, credential=SECRET, description="驾驶证核查服务"
    )


@pytest.fixture
def granted(users, licences):
    """MZ holds holder and class in full, points and valid_until verify-only (approved by GA)."""
    request = services.request_share(
        licences,
        actor=users["mz"],
        items={"holder": "full", "class": "full", "points": "verify", "valid_until": "verify"},
        purpose="低保家庭车辆核查",
        legal_basis="《社会救助暂行办法》",
        period_end=datetime.date.today() + datetime.timedelta(days=30),
    )
    return services.approve(request, actor=users["ga"])


@pytest.fixture
def token(client, make_client):
    return make_client()(client)


def key(resource):
    return resource.code.replace("/", "-")


def post(client, path, token, data):
    return client.post(path, data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def query(client, resource, token, identifier=LICENCE, items=None):
    body = {"identifier": identifier, **({"items": items} if items is not None else {})}
    return post(client, f"/api/v1/exchange/resources/{key(resource)}/records/query", token, body)


def last_entry():
    return ExchangeLogEntry.objects.order_by("-seq").first()


# --- Reads ------------------------------------------------------------------------------------------


def test_read_is_proxied_signed_and_only_granted_items_travel(client, licences, service, granted, token, dept):
    response = query(client, licences, token)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["resource"] == licences.code and body["record"] == "DL-0001"
    assert body["items"] == {"class": "C1", "holder": "王小明"}  # verify-only items are not returned
    (hit,) = dept.requests
    assert hit["verified"] and hit["headers"]["authorization"] == f"Bearer {SECRET}"
    assert hit["path"] == "/dgov/licences?v=1"
    assert hit["body"] == {
        "identifier": LICENCE,
        "items": ["class", "holder"],
        "consumer": "370000-MZT",
        "operation": "read",
    }
    assert hit["headers"]["x-dgov-consumer"] == "370000-MZT" and hit["headers"]["x-dgov-operation"] == "read"
    assert hit["headers"]["x-dgov-request-id"]
    entry = ExchangeLogEntry.objects.get(seq=body["exchange"]["seq"])
    assert (entry.result, entry.operation, entry.consumer_code, entry.provider_code, entry.status) == (
        "ok",
        "read",
        "370000-MZT",
        "370000-GAT",
        200,
    )
    assert entry.records == ["DL-0001"] and entry.fields == ["class", "holder"]
    assert entry.request_id == hit["headers"]["x-dgov-request-id"] and entry.purpose == "低保家庭车辆核查"
    assert LICENCE not in entry.fields_json + entry.records_json

    # The GET form, narrowed to one item.
    got = client.get(
        f"/api/v1/exchange/resources/{key(licences)}/records/{OTHER}?items=holder", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert got.status_code == 200 and got.json()["items"] == {"holder": "李四"}
    assert dept.requests[-1]["body"]["items"] == ["holder"]
    assert services.verify_log().ok


def test_items_the_service_adds_are_dropped(client, licences, service, granted, token, dept):
    dept.mode = "extra"
    body = query(client, licences, token).json()
    assert body["items"] == {"class": "C1", "holder": "王小明"}
    assert "licence_no" not in json.dumps(body) and "points" not in body["items"]


def test_ungranted_items_are_refused_before_the_service_is_asked(client, licences, service, granted, token, dept):
    response = query(client, licences, token, items=["holder", "points"])  # points is verify-only
    assert response.status_code == 403 and response.json()["code"] == "item_not_granted"
    response = query(client, licences, token, items=["licence_no"])
    assert response.status_code == 403 and response.json()["code"] == "item_not_granted"
    assert dept.requests == []
    assert last_entry().code == "item_not_granted"


def test_no_record_is_404_and_logged(client, licences, service, granted, token, dept):
    response = query(client, licences, token, identifier="370102200001010000")
    assert response.status_code == 404 and response.json()["code"] == "record_not_found"
    assert response["Content-Type"].startswith(PROBLEM)
    entry = last_entry()
    assert (entry.result, entry.code, entry.status, entry.records) == ("error", "record_not_found", 404, [])


def test_batch_read(client, licences, service, granted, token, dept):
    response = post(
        client,
        f"/api/v1/exchange/resources/{key(licences)}/records/batch",
        token,
        {"identifiers": [OTHER, "370102200001010000", LICENCE], "items": ["holder"]},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["records"] == [
        {"record": "DL-0002", "items": {"holder": "李四"}},
        None,
        {"record": "DL-0001", "items": {"holder": "王小明"}},
    ]
    (hit,) = dept.requests  # one call for the batch
    assert hit["body"]["identifiers"] == [OTHER, "370102200001010000", LICENCE] and hit["body"]["items"] == ["holder"]
    entry = ExchangeLogEntry.objects.get(seq=body["exchange"]["seq"])
    assert entry.records == ["DL-0002", "DL-0001"] and entry.result == "ok"


def test_batch_over_the_record_limit_never_reaches_the_service(
    client, settings, licences, service, granted, token, dept
):
    settings.EXCHANGE_MAX_RECORDS = 2
    response = post(
        client,
        f"/api/v1/exchange/resources/{key(licences)}/records/batch",
        token,
        {"identifiers": [LICENCE, OTHER, "x"]},
    )
    assert response.status_code == 422 and response.json()["code"] == "too_large"
    assert dept.requests == []


def test_a_batch_answer_of_another_length_is_a_bad_answer(client, licences, service, granted, token, dept):
    dept.mode = "short-batch"
    response = post(
        client, f"/api/v1/exchange/resources/{key(licences)}/records/batch", token, {"identifiers": [LICENCE, OTHER]}
    )
    assert response.status_code == 502 and response.json()["code"] == "upstream_bad_answer"


# --- Verification -------------------------------------------------------------------------------------


def verify(client, resource, token, item, op, value=None, identifier=LICENCE):
    return post(
        client,
        f"/api/v1/exchange/resources/{key(resource)}/verify",
        token,
        {"identifier": identifier, "item": item, "op": op, "value": value},
    )


def test_verification_compares_in_dgov_and_never_returns_the_value(client, licences, service, granted, token, dept):
    cases = [
        ("points", "eq", 9, True),
        ("points", "eq", "9.0", True),
        ("points", "lt", 10, True),
        ("points", "gt", 9, False),
        ("valid_until", "gt", "2029-12-31", True),
        ("valid_until", "lt", "2029-12-31", False),
        ("holder", "eq", "王小明", True),
        ("holder", "eq", "王大明", False),
        ("class", "exists", None, True),
    ]
    for item, op, value, expected in cases:
        response = verify(client, licences, token, item, op, value)
        assert response.status_code == 200, (item, op, response.content)
        body = response.json()
        assert body["result"] is expected, (item, op, value)
        assert set(body) == {"result", "exchange"} and "王小明" not in response.content.decode()
        hit = dept.requests[-1]
        assert hit["body"]["items"] == [item] and hit["body"]["operation"] == "verify" and hit["verified"]
        entry = ExchangeLogEntry.objects.get(seq=body["exchange"]["seq"])
        assert (entry.operation, entry.result, entry.fields, entry.records) == ("verify", "ok", [item], ["DL-0001"])
    missing = verify(client, licences, token, "points", "eq", 9, identifier="370102200001010000")
    assert missing.status_code == 200 and missing.json()["result"] is False
    assert last_entry().code == "no_record"


def test_verification_refusals_never_reach_the_service(client, licences, service, granted, token, dept):
    assert verify(client, licences, token, "licence_no", "eq", "x").json()["code"] == "item_not_granted"
    assert verify(client, licences, token, "holder", "lt", "x").json()["code"] == "bad_operator"
    assert verify(client, licences, token, "points", "eq", "nine").json()["code"] == "bad_value"
    assert verify(client, licences, token, "valid_until", "eq", "2030-13-45").json()["code"] == "bad_value"
    assert dept.requests == []


# --- Upstream failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("500", 502, "upstream_error"),
        ("slow", 504, "upstream_timeout"),
        ("garbage", 502, "upstream_bad_answer"),
        ("oversize", 502, "upstream_bad_answer"),
        ("oversize-stream", 502, "upstream_bad_answer"),
        ("redirect", 502, "upstream_error"),
        ("identifier-as-record", 502, "upstream_bad_answer"),
    ],
)
def test_upstream_failures_map_to_problems(
    client, settings, licences, service, granted, token, dept, mode, status, code
):
    settings.EXCHANGE_MAX_RESPONSE_BYTES = 2000
    dept.mode = mode
    started = time.monotonic()
    response = query(client, licences, token)
    assert time.monotonic() - started < 2.4  # the one-second timeout holds
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code and body["exchange_seq"] == last_entry().seq
    text = response.content.decode()
    assert "ORA-00942" not in text and "xxxx" not in text and "127.0.0.1" not in text and LICENCE not in text
    entry = last_entry()
    assert (entry.result, entry.code, entry.status, entry.records) == ("error", code, status, [])
    assert len(dept.requests) == 1  # a redirect is not followed
    # A verification fails the same way.
    failed = verify(client, licences, token, "points", "eq", 9)
    assert failed.status_code == status and failed.json()["code"] == code


def test_unreachable_service_is_502(client, licences, users, granted, token):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    dataservice.register(licences, actor=users["ga"], endpoint_url=f"http://127.0.0.1:{port}/x")
    response = query(client, licences, token)
    assert response.status_code == 502 and response.json()["code"] == "upstream_error"


def test_a_wrong_credential_is_an_upstream_error(client, users, licences, service, granted, token, dept):
    dataservice.change(service, actor=users["ga"], credential="another-secret-value")
    response = query(client, licences, token)
    assert response.status_code == 502 and response.json()["code"] == "upstream_error"


# --- Suspension, grants, routing ------------------------------------------------------------------------


def test_suspended_service_is_503_and_not_called(client, users, licences, service, granted, token, dept):
    dataservice.suspend(service, actor=users["ga"], reason="系统升级")
    response = query(client, licences, token)
    assert response.status_code == 503 and response.json()["code"] == "service_suspended"
    assert "系统升级" not in response.content.decode()
    assert dept.requests == [] and last_entry().code == "service_suspended"
    dataservice.resume(service, actor=users["ga"])
    assert query(client, licences, token).status_code == 200


def test_no_grant_and_no_scope_never_reach_the_service(client, licences, service, make_client, dept):
    rs_token = make_client("rs", "rs-system")(client)
    response = query(client, licences, rs_token)
    assert response.status_code == 403 and response.json()["code"] == "no_grant"
    entry = last_entry()
    assert (entry.consumer_code, entry.provider_code, entry.code) == ("370000-RST", "370000-GAT", "no_grant")
    other = make_client("mz", "mz-no-scope", scopes=("registry:read",))(client)
    assert query(client, licences, other).json()["code"] == "scope_missing"
    assert dept.requests == []


def test_revoked_grant_is_refused(client, users, licences, service, granted, token, dept):
    services.revoke(granted, actor=users["ga"], reason="核查结束")
    response = query(client, licences, token)
    assert response.status_code == 403 and response.json()["code"] == "grant_revoked"
    assert dept.requests == []


def test_rate_limit_applies(client, settings, licences, service, granted, token, dept):
    settings.EXCHANGE_RATE_PER_SECOND = 0.001
    settings.EXCHANGE_RATE_BURST = 1
    assert query(client, licences, token).status_code == 200
    limited = query(client, licences, token)
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert len(dept.requests) == 1


def test_without_a_service_the_resource_still_has_no_data_service(client, licences, granted, token):
    dataservice.forget_routes()
    response = query(client, licences, token)
    assert response.status_code == 404 and response.json()["code"] == "no_data_service"


def test_stale_route_falls_back_to_the_registry_path(client, users, resources, token, monkeypatch):
    """A process that still believes a code is proxied hands the call back to the registry path."""
    monkeypatch.setattr(dataservice, "_routes", (time.monotonic() + 3600, frozenset({resources["person"].code})))
    services.request_share(
        resources["person"],
        actor=users["mz"],
        items={"name": "full"},
        purpose="核查",
        legal_basis="依据",
        period_end=datetime.date.today(),
    )
    response = query(client, resources["person"], token, identifier=PERSON_ID)
    assert response.status_code == 200 and response.json()["items"] == {"name": "王小明"}


# --- Discovery ---------------------------------------------------------------------------------------------


def test_discovery_lists_proxied_resources(client, users, licences, service, granted, token):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    methods = client.get("/api/v1/exchange/listMethods?provider=370000-GAT", **auth).json()["services"]
    assert {m["service_code"] for m in methods} >= {f"{licences.code}:read", f"{licences.code}:verify"}
    allowed = client.get("/api/v1/exchange/allowedMethods", **auth).json()["services"]
    verify_method = next(m for m in allowed if m["service_code"] == f"{licences.code}:verify")
    assert verify_method["items"] == {"class": "full", "holder": "full", "points": "verify", "valid_until": "verify"}
    document = client.get(f"/api/v1/exchange/getOpenAPI?resource={key(licences)}", **auth).json()
    props = document["components"]["schemas"][f"Items_{key(licences).replace('-', '_')}"]["properties"]
    assert set(props) == {"licence_no", "holder", "class", "points", "valid_until"}
    assert props["points"]["type"] == ["integer", "null"]
    members = {
        m["member_code"]: m["roles"] for m in client.get("/api/v1/exchange/listClients", **auth).json()["members"]
    }
    assert "provider" in members["370000-GAT"]
    dataservice.suspend(service, actor=users["ga"], reason="维护")
    methods = client.get("/api/v1/exchange/listMethods?provider=370000-GAT", **auth).json()["services"]
    assert not any(m["resource"] == licences.code for m in methods)


# --- Registration rules --------------------------------------------------------------------------------------


def test_registration_rules(settings, users, licences, resources, dept):
    with pytest.raises(PermissionDenied):
        dataservice.register(licences, actor=users["mz"], endpoint_url="https://mz.example/x")
    assert AuditRecord.objects.filter(action="exchange.dataservice.create", outcome="denied").exists()
    for bad in (
        "ftp://ga.example/x",
        "https://user:pw@ga.example/x",
        "https://ga.example/x#frag",
        "https://ga.example:99999/x",
        "ga.example/x",
        "",
    ):
        with pytest.raises(ValidationError):
            dataservice.register(licences, actor=users["ga"], endpoint_url=bad)
    settings.PRODUCTION = True
    with pytest.raises(ValidationError):
        dataservice.register(licences, actor=users["ga"], endpoint_url="http://ga.example/x")
    with pytest.raises(ValidationError):
        dataservice.register(licences, actor=users["ga"], endpoint_url="https://ga.example/x", timeout=300)
    with pytest.raises(ValidationError):
        dataservice.register(licences, actor=users["ga"], endpoint_url="https://ga.example/x", credential="a b c d e f")
    # Registry-backed and 不予共享 resources are served by the registry (or not at all).
    with pytest.raises(ValidationError):
        dataservice.register(resources["person"], actor=users["ga"], endpoint_url="https://ga.example/x")
    with pytest.raises(ValidationError):
        dataservice.register(resources["secret"], actor=users["ga"], endpoint_url="https://ga.example/x")
    made = dataservice.register(licences, actor=users["ga"], endpoint_url="http://127.0.0.1:9/x")  # loopback
    assert made.status == "active" and made.timeout == 10 and not made.has_credential
    with pytest.raises(ValidationError):
        dataservice.register(licences, actor=users["ga"], endpoint_url="https://ga.example/y")  # one per resource


def test_secret_is_encrypted_and_changes_are_audited(users, licences, service, dept):
    with connection.cursor() as cursor:
        cursor.execute("SELECT credential FROM exchange_dataservice WHERE id = %s", [service.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("v1:") and SECRET not in stored
    assert DataService.objects.get(pk=service.pk).credential == SECRET
    dataservice.change(service, actor=users["ga"], timeout=5, description="新说明")
    dataservice.change(service, actor=users["ga"], clear_credential=True)
    assert not DataService.objects.get(pk=service.pk).has_credential
    with pytest.raises(ValidationError):
        dataservice.suspend(service, actor=users["ga"], reason=" ")
    dataservice.suspend(service, actor=users["ga"], reason="维护")
    with pytest.raises(ValidationError):
        dataservice.suspend(service, actor=users["ga"], reason="again")
    with pytest.raises(PermissionDenied):
        dataservice.resume(service, actor=users["mz"])
    dataservice.resume(service, actor=users["ga2"])  # any official of the provider department
    actions = list(
        AuditRecord.objects.filter(action__startswith="exchange.dataservice.", outcome="success")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "exchange.dataservice.create",
        "exchange.dataservice.change",
        "exchange.dataservice.change",
        "exchange.dataservice.suspend",
        "exchange.dataservice.resume",
    ]
    assert AuditRecord.objects.filter(action="exchange.dataservice.resume", outcome="denied").exists()
    dumped = json.dumps(list(AuditRecord.objects.values("detail_json")), ensure_ascii=False, default=str)
    assert SECRET not in dumped


def test_check_probes_with_a_signed_empty_batch(users, licences, service, dept):
    result = dataservice.check(service, actor=users["ga"])
    assert result.ok and result.code == "ok"
    (hit,) = dept.requests
    assert hit["verified"] and hit["body"] == {"identifiers": [], "items": [], "consumer": "", "operation": "check"}
    service.refresh_from_db()
    assert service.last_check_ok is True and service.last_check_at is not None
    dept.mode = "500"
    result = dataservice.check(service, actor=users["ga"])
    assert not result.ok and result.code == "upstream_error"
    service.refresh_from_db()
    assert service.last_check_ok is False and service.last_check_code == "upstream_error"
    assert AuditRecord.objects.filter(action="exchange.dataservice.check").count() == 2
    with pytest.raises(PermissionDenied):
        dataservice.check(service, actor=users["mz"])


# --- Pages -------------------------------------------------------------------------------------------------


def test_pages_register_change_suspend_and_check(client, users, licences, dept):
    client.force_login(users["ga"])
    page = client.get("/workbench/exchange/services/")
    assert page.status_code == 200 and "本部门还没有登记数据服务" in page.content.decode()
    assert licences.code in page.content.decode()  # offered in the resource list
    response = client.post(
        "/workbench/exchange/services/",
        {"resource": licences.code, "endpoint_url": dept.url, "timeout": "2", "credential": SECRET},
    )
    assert response.status_code == 302, response.content.decode()
    service = DataService.objects.get()
    assert service.credential == SECRET and service.timeout == 2 and service.created_by == "x-ga"
    detail = client.get(f"/workbench/exchange/services/{service.pk}/").content.decode()
    assert dept.url.replace("&", "&amp;") in detail and SECRET not in detail and "已设置（不显示）" in detail
    assert "BEGIN PUBLIC KEY" in detail  # the keys the department verifies signatures with
    dept.secret = SECRET
    change_url = f"/workbench/exchange/services/{service.pk}/change/"
    client.post(change_url, {"action": "check"})
    service.refresh_from_db()
    assert service.last_check_ok is True
    assert "正常" in client.get(f"/workbench/exchange/services/{service.pk}/").content.decode()
    client.post(change_url, {"action": "suspend", "reason": "升级"})
    service.refresh_from_db()
    assert service.status == "suspended" and service.status_reason == "升级"
    client.post(change_url, {"action": "resume"})
    client.post(change_url, {"action": "save", "endpoint_url": dept.url, "timeout": "3", "credential": ""})
    service.refresh_from_db()
    assert service.status == "active" and service.timeout == 3 and service.credential == SECRET  # kept
    bad = client.post("/workbench/exchange/services/", {"resource": licences.code, "endpoint_url": "https://x.example"})
    assert bad.status_code == 200 and "已登记数据服务" in bad.content.decode()

    # Another department sees nothing of it and cannot change it.
    client.force_login(users["mz"])
    assert licences.code not in client.get("/workbench/exchange/services/").content.decode()
    assert client.get(f"/workbench/exchange/services/{service.pk}/").status_code == 404
    assert client.post(change_url, {"action": "suspend", "reason": "x"}).status_code == 404
    refused = client.post("/workbench/exchange/services/", {"resource": licences.code, "endpoint_url": dept.url})
    assert refused.status_code == 200 and "只有信息资源提供部门的工作人员" in refused.content.decode()
    assert DataService.objects.get().status == "active"


def test_pages_are_for_officials(client, citizen):
    client.force_login(citizen)
    assert client.get("/workbench/exchange/services/").status_code == 403


# --- CLI --------------------------------------------------------------------------------------------------


def run(*args, stdin: str = "") -> str:
    out = io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command("exchange", "service", *args, stdout=out)
    finally:
        sys.stdin = old
    return out.getvalue()


def test_cli_add_list_suspend_resume_check(licences, dept):
    from django.core.management.base import CommandError

    dept.secret = SECRET
    assert "registered" in run(
        "add", licences.code, "--url", dept.url, "--timeout", "2", "--credential-stdin", stdin=SECRET + "\n"
    )
    service = DataService.objects.get()
    assert service.credential == SECRET and service.created_by.startswith("system:cli:")
    listing = run("list")
    assert licences.code in listing and "credential=yes" in listing and SECRET not in listing
    data = json.loads(run("list", "--json", "--provider", "370000-GAT"))
    assert data[0]["resource"] == licences.code and data[0]["credential"] is True
    assert run("list", "--json", "--provider", "370000-MZT").strip() == "[]"
    assert "OK ok" in run("check", licences.code)
    assert "suspended" in run("suspend", licences.code, "--reason", "维护")
    with pytest.raises(CommandError):
        run("suspend", licences.code, "--reason", "again")
    assert "resumed" in run("resume", licences.code)
    run("change", licences.code, "--timeout", "4", "--clear-credential")
    service.refresh_from_db()
    assert service.timeout == 4 and not service.has_credential
    dept.mode = "500"
    with pytest.raises(SystemExit) as exited:
        run("check", licences.code)
    assert exited.value.code == 1
    with pytest.raises(CommandError):
        run("add", licences.code, "--url", "ftp://x")
    with pytest.raises(CommandError):
        run("resume", "999999999/999999")
    actors = set(
        AuditRecord.objects.filter(action__startswith="exchange.dataservice.").values_list("actor_label", flat=True)
    )
    assert actors and all(a.startswith("system:cli:") for a in actors)
