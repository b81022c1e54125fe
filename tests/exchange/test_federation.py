"""Federation (级联), one instance at a time: signed requests from a peer whose key the test holds.

The peer ``370100`` is simulated: the test signs its requests with a generated SM2 key pinned for
it, and verifies this instance's signed answers with the published key. Caller-side checks (a
tampered or replayed answer) use a fake transport. The full exchange between two real instances
is in test_federation_instances.py.
"""

import base64
import datetime
import json
import secrets
import time

import pytest
from exchange_helpers import PERSON_ID

from dgov.exchange import federation, services
from dgov.exchange import federation_exchange as fx
from dgov.exchange.models import ExchangeLogEntry, Peer, PeerNonce, RemoteResource, ShareRequest
from dgov.kernel.crypto import SM2PrivateKey
from dgov.kernel.models import AuditRecord, Organization
from dgov.kernel.services.audit import canonical_json
from dgov.kernel.validators import make_uscc
from dgov.registry.models import AccessLog

pytestmark = pytest.mark.django_db

HERE, PEER = "370000", "370100"
END = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
CITY_MZ = {"code": "370100-MZJ", "name": "济南市民政局", "uscc": make_uscc("1", "1", "370100", serial=77)}


@pytest.fixture(autouse=True)
def _instance(settings):
    """This instance is the province (370000)."""
    settings.FEDERATION_INSTANCE = HERE


@pytest.fixture
def peer_key():
    """The simulated peer's SM2 key."""
    return SM2PrivateKey.generate()


@pytest.fixture
def peer(province, peer_key):
    """The city platform 370100, its key pinned as ``k1``, mirrors on 济南市."""
    return federation.add_peer(
        code=PEER,
        name="济南市政务数据平台",
        base_url="http://127.0.0.1:9",
        division="370100",
        keys=[{"kid": "k1", "public_key": peer_key.public_key().to_pem().decode()}],
        actor="system:test",
    )


def signed(
    client,
    key,
    method,
    path,
    payload=None,
    *,
    caller=PEER,
    callee=HERE,
    skew=0,
    nonce=None,
    kid="k1",
    body=None,
):
    """Send a request signed like a peer does (``body`` overrides the bytes sent after signing)."""
    data = canonical_json(payload).encode() if payload is not None else b""
    ts = str(int(time.time()) + skew)
    nonce = nonce or secrets.token_hex(16)
    signature = key.sign(federation.request_bytes(caller, callee, method, path, ts, nonce, data))
    headers = {
        "HTTP_X_DGOV_PEER": caller,
        "HTTP_X_DGOV_KEY_ID": kid,
        "HTTP_X_DGOV_TIMESTAMP": ts,
        "HTTP_X_DGOV_NONCE": nonce,
        "HTTP_X_DGOV_SIGNATURE": base64.b64encode(signature).decode(),
    }
    if method == "GET":
        response = client.get(path, **headers)
    else:
        response = client.post(
            path, data=body if body is not None else data, content_type="application/json", **headers
        )
    response.nonce = nonce
    return response


def answer_ok(response, requester=PEER) -> bool:
    """Whether this instance's answer is signed by its published key over the request's nonce."""
    keys = federation.public_keys()
    data = federation.answer_bytes(
        response["X-Dgov-Peer"],
        requester,
        response.status_code,
        response.nonce,
        response["X-Dgov-Timestamp"],
        response.content,
    )
    return response["X-Dgov-Peer"] == HERE and federation._verify(
        keys, response["X-Dgov-Key-Id"], response["X-Dgov-Signature"], data
    )


def last_entry() -> ExchangeLogEntry:
    return ExchangeLogEntry.objects.order_by("-seq").first()


# --- Signing, keys ---------------------------------------------------------------------------------


def test_signed_bytes_bind_every_part(peer_key):
    parts = (PEER, HERE, "POST", "/api/v1/federation/requests", "1700000000", "n" * 32, b"{}")
    data = federation.request_bytes(*parts)
    assert data.startswith(b"dgov-federation-v1\x1f370100\x1f370000\x1fPOST\x1f")
    keys = [{"kid": "k1", "public_key": peer_key.public_key().to_pem().decode()}]
    signature = base64.b64encode(peer_key.sign(data)).decode()
    assert federation._verify(keys, "k1", signature, data)
    for i in range(len(parts)):
        changed = list(parts)
        changed[i] = changed[i] + (b"x" if isinstance(changed[i], bytes) else "x")
        assert not federation._verify(keys, "k1", signature, federation.request_bytes(*changed))
    assert not federation._verify(keys, "k2", signature, data)  # not pinned
    assert not federation._verify(keys, "k1", "not base64!", data)


def test_keys_are_published_without_signature(client):
    document = client.get("/api/v1/federation/keys").json()
    assert document["format"] == "dgov-federation-keys-v1" and document["instance"] == HERE
    (key,) = document["keys"]
    assert key["kid"].startswith("sm2-federation-") and "BEGIN PUBLIC KEY" in key["public_key"]
    assert key["fingerprint"] == federation.fingerprint(key["public_key"])
    assert federation.parse_keys(document) == [{"kid": key["kid"], "public_key": key["public_key"]}]


def test_peers_are_managed_and_audited(peer, peer_key):
    assert peer.keys[0]["kid"] == "k1" and peer.division.code == "370100"
    with pytest.raises(Exception, match="已登记"):
        federation.add_peer(
            code=PEER, name="x", base_url="http://127.0.0.1:9", division="370100", keys=peer.keys, actor="system:test"
        )
    with pytest.raises(Exception, match="级联编码"):
        federation.add_peer(
            code=HERE, name="x", base_url="http://127.0.0.1:9", division="370100", keys=peer.keys, actor="system:test"
        )
    with pytest.raises(Exception, match="SM2"):
        federation.set_keys(peer, [{"kid": "k2", "public_key": "junk"}], actor="system:test")
    other = SM2PrivateKey.generate()
    federation.set_keys(peer, [{"kid": "k2", "public_key": other.public_key().to_pem().decode()}], actor="system:test")
    federation.suspend(peer, actor="system:test", reason="演练")
    federation.resume(peer, actor="system:test")
    actions = list(AuditRecord.objects.filter(action__startswith="exchange.peer.").values_list("action", flat=True))
    assert sorted(actions) == [
        "exchange.peer.add",
        "exchange.peer.keys",
        "exchange.peer.resume",
        "exchange.peer.suspend",
    ]


# --- Refusals: every one logged, the same code whatever an unauthenticated caller got wrong ----------------


def test_catalogue_is_signed_both_ways_and_logged(client, peer, peer_key, resources):
    response = signed(client, peer_key, "GET", "/api/v1/federation/catalog")
    assert response.status_code == 200 and answer_ok(response)
    document = response.json()
    assert document["format"] == fx.CATALOG_FORMAT and document["instance"] == HERE
    (entry,) = document["resources"]  # the 不予共享 resource is not offered
    assert entry["code"] == resources["person"].code and entry["provider"]["code"] == "370000-GAT"
    assert {i["code"] for i in entry["items"]} == {"id_number", "name", "birth_date", "income"}
    assert PERSON_ID not in response.content.decode()  # metadata, no data
    logged = last_entry()
    assert (logged.operation, logged.result, logged.consumer_code, logged.client_id, logged.request_id) == (
        "fed-catalog",
        "ok",
        PEER,
        "peer:370100",
        response.nonce,
    )


@pytest.mark.parametrize(
    "change, status, code",
    [
        ({"body": b'{"resource": "other"}'}, 401, "signature_invalid"),  # tampered after signing
        ({"caller": "999999"}, 401, "signature_invalid"),  # unknown peer
        ({"kid": "k9"}, 401, "signature_invalid"),  # key not pinned
        ({"callee": "110000"}, 401, "signature_invalid"),  # signed for another instance
        ({"skew": -301}, 401, "timestamp_out_of_window"),
        ({"skew": 310}, 401, "timestamp_out_of_window"),
    ],
)
def test_bad_requests_are_refused_and_logged(client, peer, peer_key, resources, change, status, code):
    payload = {"resource": resources["person"].code, "items": {"name": "full"}}
    response = signed(client, peer_key, "POST", "/api/v1/federation/requests", payload, **change)
    assert response.status_code == status and response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code
    assert "370100" not in problem["detail"] and "k1" not in problem["detail"]
    assert "X-Dgov-Signature" in response  # refusals are signed too
    logged = last_entry()
    assert (logged.operation, logged.result, logged.code, logged.status) == ("fed-request", "denied", code, status)
    assert not ShareRequest.objects.exists() and not Organization.objects.filter(kind="PEER").exists()


def test_missing_headers_and_replays_are_refused(client, peer, peer_key):
    response = client.get("/api/v1/federation/catalog")
    assert response.status_code == 401 and response.json()["code"] == "signature_missing"
    nonce = secrets.token_hex(16)
    assert signed(client, peer_key, "GET", "/api/v1/federation/catalog", nonce=nonce).status_code == 200
    replay = signed(client, peer_key, "GET", "/api/v1/federation/catalog", nonce=nonce)
    assert replay.status_code == 401 and replay.json()["code"] == "nonce_replayed"
    assert (last_entry().code, last_entry().result) == ("nonce_replayed", "denied")
    assert PeerNonce.objects.count() == 1
    # Nonces are forgotten once their timestamps could no longer pass the clock check.
    assert federation.purge_nonces(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=599)) == 0
    assert federation.purge_nonces(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=601)) == 1


def test_a_suspended_peer_is_refused(client, peer, peer_key):
    federation.suspend(peer, actor="system:test", reason="安全检查")
    response = signed(client, peer_key, "GET", "/api/v1/federation/catalog")
    assert response.status_code == 403 and response.json()["code"] == "peer_suspended"
    assert last_entry().code == "peer_suspended"


# --- Requests from a peer's department ----------------------------------------------------------------------


def file(client, key, resource, items, **extra):
    payload = {
        "consumer": CITY_MZ,
        "resource": resource.code,
        "items": items,
        "purpose": "低保资格审核",
        "legal_basis": "《社会救助暂行办法》",
        "period_end": END,
        "requested_by": "jn-mz",
        **extra,
    }
    return signed(client, key, "POST", "/api/v1/federation/requests", payload)


def test_a_conditional_request_goes_to_the_providers_inbox_and_its_status_is_polled(
    client, peer, peer_key, users, resources
):
    response = file(client, peer_key, resources["person"], {"name": "full", "id_number": "verify"})
    assert response.status_code == 201 and answer_ok(response)
    status = response.json()
    assert status["status"] == "submitted" and status["due_on"] and status["grant"] is None
    mirror = Organization.objects.get(code="370100:370100-MZJ")
    assert (mirror.kind, mirror.name, mirror.division.code, mirror.level) == ("PEER", "济南市民政局", "370100", 2)
    request = ShareRequest.objects.get(pk=status["id"])
    assert request.consumer == mirror and request.requested_by is None
    assert list(services.approval_inbox(users["ga"])) == [request]  # the provider's ordinary inbox
    record = AuditRecord.objects.get(action="exchange.request.submitted")
    assert record.actor_label == "peer:370100" and record.detail["requested_by"] == "jn-mz"
    assert last_entry().operation == "fed-request" and last_entry().consumer_code == mirror.code

    services.approve(request, actor=users["ga"])
    local = services.request_share(
        resources["person"],
        actor=users["mz"],
        items=["name"],
        purpose="p",
        legal_basis="b",
        period_end=datetime.date.fromisoformat(END),
    )
    polled = signed(client, peer_key, "GET", f"/api/v1/federation/requests?ids={request.pk},{local.pk},x")
    assert polled.status_code == 200 and answer_ok(polled)
    (doc,) = polled.json()["requests"]  # another department's request is not the peer's business
    assert doc["status"] == "granted" and doc["grant"]["state"] == "active"
    assert doc["grant"]["items"] == {"name": "full", "id_number": "verify"}
    # A second request reuses the mirror.
    assert file(client, peer_key, resources["person"], {"birth_date": "full"}).json()["status"] == "granted"
    assert Organization.objects.filter(kind="PEER").count() == 1


def test_bad_requests_of_a_peer_are_refused_without_a_mirror(client, peer, peer_key, orgs, resources):
    bad = file(client, peer_key, resources["person"], {"nope": "full"}, purpose="")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"
    assert len(bad.json()["errors"]) == 2
    secret = file(client, peer_key, resources["secret"], {"name": "full"})
    assert secret.status_code == 404 and secret.json()["code"] == "resource_not_found"
    taken = dict(CITY_MZ, uscc=orgs["mz"].uscc)  # a local department's USCC: never a second identity
    conflict = file(client, peer_key, resources["person"], {"name": "full"}, consumer=taken)
    assert conflict.status_code == 409 and conflict.json()["code"] == "mirror_conflict"
    assert not Organization.objects.filter(kind="PEER").exists() and not ShareRequest.objects.exists()


# --- Data calls of a peer's clients -----------------------------------------------------------------------------


def call(client, key, operation, **payload):
    body = {
        "consumer": {"code": CITY_MZ["code"]},
        "client": "jn-mz-app",
        "resource": payload.pop("resource"),
        "identifier": PERSON_ID,
        **payload,
    }
    return signed(client, key, "POST", f"/api/v1/federation/gateway/{operation}", body)


def test_data_calls_go_through_the_gateway_for_the_mirror(client, peer, peer_key, users, resources):
    code = resources["person"].code
    none = call(client, peer_key, "read", resource=code, items=["name"])
    assert none.status_code == 403 and none.json()["code"] == "no_grant"  # no mirror yet: nothing granted
    assert last_entry().consumer_code == "370100:370100-MZJ"

    file(client, peer_key, resources["person"], {"name": "full", "birth_date": "full"})  # 无条件: granted at once
    read = call(client, peer_key, "read", resource=code, items=["name"])
    assert read.status_code == 200 and answer_ok(read)
    assert read.json()["items"] == {"name": "王小明"}
    entry = ExchangeLogEntry.objects.get(seq=read.json()["exchange"]["seq"])
    assert (entry.operation, entry.consumer_code, entry.client_id, entry.provider_code, entry.request_id) == (
        "read",
        "370100:370100-MZJ",
        "370100:jn-mz-app",
        "370000-GAT",
        read.nonce,
    )
    access = AccessLog.objects.get(channel="exchange")
    assert access.reader_org.code == "370100:370100-MZJ"  # the citizen sees which department read

    refused = call(client, peer_key, "read", resource=code, items=["income"])
    assert refused.status_code == 403 and refused.json()["code"] == "item_not_granted" and answer_ok(refused)
    assert refused.json()["exchange_seq"] == last_entry().seq
    verified = call(client, peer_key, "verify", resource=code, item="birth_date", op="eq", value="1990-05-17")
    assert verified.status_code == 200 and verified.json()["result"] is True
    malformed = call(client, peer_key, "verify", resource=code, item="birth_date", op="near")
    assert malformed.status_code == 400 and malformed.json()["code"] == "bad_request"
    assert PERSON_ID not in "".join(ExchangeLogEntry.objects.values_list("fields_json", "records_json")[0])


# --- The caller's side: answers are verified ----------------------------------------------------------------------


class FakeResponse:
    def __init__(self, status, headers, body):
        self.status, self.code, self.headers, self.body = status, status, headers, body

    def read(self, limit=-1):
        return self.body

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakePeer:
    """Answers like a peer would, signed with ``key``; ``tamper`` spoils the answer in one way."""

    def __init__(self, key, document, tamper=""):
        self.key, self.document, self.tamper, self.requests = key, document, tamper, []

    def open(self, request, timeout=None):
        if self.tamper == "down":
            raise OSError("connection refused")
        self.requests.append(request)
        nonce = request.get_header("X-dgov-nonce")
        body = json.dumps(self.document).encode()
        ts = str(int(time.time()))
        signed_nonce = "f" * 32 if self.tamper == "nonce" else nonce
        signature = self.key.sign(federation.answer_bytes(PEER, HERE, 200, signed_nonce, ts, body))
        if self.tamper == "body":
            body = body.replace(b"\\u6d4e", b"\\u6d4f")
        headers = {
            "X-Dgov-Peer": PEER,
            "X-Dgov-Key-Id": "k1",
            "X-Dgov-Timestamp": ts,
            "X-Dgov-Signature": base64.b64encode(signature).decode(),
        }
        return FakeResponse(200, headers, body)


CATALOGUE = {
    "format": fx.CATALOG_FORMAT,
    "instance": PEER,
    "resources": [
        {
            "code": "101001000/000009",
            "name": "济南市居住证信息",
            "provider": {"code": "370100-GA", "name": "济南市公安局"},
            "sharing_type": "conditional",
            "version": 2,
            "items": [{"code": "name", "name": "姓名", "data_type": "C", "sharing_type": "conditional"}],
        }
    ],
}


@pytest.mark.parametrize(
    "tamper, code", [("body", "peer_answer_invalid"), ("nonce", "peer_answer_invalid"), ("down", "peer_unavailable")]
)
def test_a_tampered_or_missing_answer_is_refused_and_logged(monkeypatch, peer, peer_key, tamper, code):
    monkeypatch.setattr(federation, "_OPENER", FakePeer(peer_key, CATALOGUE, tamper))
    with pytest.raises(federation.PeerError) as caught:
        fx.sync_catalogue(peer)
    assert caught.value.code == code
    assert (last_entry().operation, last_entry().code, last_entry().result) == ("fed-catalog", code, "error")
    assert not RemoteResource.objects.exists()


def test_a_peers_catalogue_is_pulled_and_withdrawals_noticed(monkeypatch, peer, peer_key):
    fake = FakePeer(peer_key, CATALOGUE)
    monkeypatch.setattr(federation, "_OPENER", fake)
    outcome = fx.sync_peer(peer)
    assert outcome["ok"] and outcome["catalogue"] == {"created": 1, "updated": 0, "withdrawn": 0}
    request = fake.requests[0]
    assert request.full_url == "http://127.0.0.1:9/api/v1/federation/catalog"
    assert request.get_header("X-dgov-peer") == HERE
    remote = RemoteResource.objects.get()
    assert (remote.provider_name, remote.version, remote.items[0]["code"]) == ("济南市公安局", 2, "name")
    assert fx.sync_catalogue(peer).changed is False
    fake.document = dict(CATALOGUE, resources=[])
    assert fx.sync_catalogue(peer).withdrawn == 1
    assert not fx.remote_resources().exists()
    assert AuditRecord.objects.filter(action="exchange.peer.sync").count() == 2
    peer.refresh_from_db()
    assert peer.last_sync_ok is True and peer.last_sync_at is not None
    assert Peer.objects.get().last_sync_code == ""


# --- Pages and CLI --------------------------------------------------------------------------------------------


class FakeProvider(FakePeer):
    """A peer that answers the catalogue, a filed request and status polls."""

    def __init__(self, key):
        super().__init__(key, CATALOGUE)
        self.status = {
            "id": 41,
            "resource": "101001000/000009",
            "status": "submitted",
            "reason": "",
            "due_on": END,
            "decided_at": None,
            "grant": None,
        }

    def open(self, request, timeout=None):
        if request.full_url.endswith("/requests"):
            self.document = self.status
        elif "/requests?ids=" in request.full_url:
            self.document = {"requests": [self.status]}
        else:
            self.document = CATALOGUE
        answer = super().open(request, timeout)
        if request.full_url.endswith("/requests"):
            answer.status = 201
            signed_bytes = federation.answer_bytes(
                PEER, HERE, 201, request.get_header("X-dgov-nonce"), answer.headers["X-Dgov-Timestamp"], answer.body
            )
            answer.headers["X-Dgov-Signature"] = base64.b64encode(self.key.sign(signed_bytes)).decode()
        return answer


def test_officials_request_a_peers_resource_and_see_its_status(client, monkeypatch, peer, peer_key, users, citizen):
    fake = FakeProvider(peer_key)
    monkeypatch.setattr(federation, "_OPENER", fake)
    fx.sync_catalogue(peer)
    client.force_login(users["mz"])
    page = client.get("/workbench/exchange/federation/?q=居住证").content.decode()
    assert "济南市居住证信息" in page and "/workbench/exchange/federation/370100/101001000-000009/" in page
    form = client.get("/workbench/exchange/federation/370100/101001000-000009/")
    assert form.status_code == 200 and "济南市公安局" in form.content.decode()
    bad = client.post("/workbench/exchange/federation/370100/101001000-000009/", {"items": ["name"], "purpose": ""})
    assert bad.status_code == 200 and "须写明用途" in bad.content.decode() and not fake.requests[1:]
    posted = client.post(
        "/workbench/exchange/federation/370100/101001000-000009/",
        {
            "items": ["name"],
            "verify": ["name"],
            "purpose": "居住证核验",
            "legal_basis": "《居住证暂行条例》",
            "period_end": END,
        },
    )
    assert posted.status_code == 302
    sent = json.loads(fake.requests[-1].data)
    assert sent["consumer"]["code"] == "370000-MZT" and sent["items"] == {"name": "verify"}
    remote = fx.remote_requests_of(users["mz"].department).get()
    assert (remote.remote_id, remote.status, remote.provider_name) == (41, "submitted", "济南市公安局")
    assert AuditRecord.objects.filter(action="exchange.remote_request.submit", outcome="success").count() == 1
    assert last_entry().operation == "fed-request" and last_entry().provider_code == "370100:370100-GA"

    fake.status = dict(
        fake.status,
        status="granted",
        decided_at="2026-11-29T08:00:00+08:00",
        grant={
            "items": {"name": "verify"},
            "valid_from": "2026-11-29T00:00:00+08:00",
            "valid_until": f"{END}T00:00:00+08:00",
            "state": "active",
        },
    )
    assert fx.sync_requests(peer) == 1 and fx.sync_requests(peer) == 0
    remote.refresh_from_db()
    assert remote.status == "granted" and remote.grant["state"] == "active"
    assert AuditRecord.objects.filter(action="exchange.remote_request.update").count() == 1
    assert "已授权" in client.get("/workbench/exchange/federation/").content.decode()
    assert client.get("/workbench/exchange/federation/370100/101001000-000999/").status_code == 404

    client.force_login(citizen)
    assert client.get("/workbench/exchange/federation/").status_code == 403


def test_cli_manages_peers(tmp_path, province, peer_key, settings):
    from io import StringIO

    from django.core.management import call_command

    document = {
        "format": "dgov-federation-keys-v1",
        "instance": PEER,
        "keys": [{"kid": "k1", "status": "active", "public_key": peer_key.public_key().to_pem().decode()}],
    }
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(document))

    def run(*args):
        out = StringIO()
        call_command("exchange", "peer", *args, stdout=out)
        return out.getvalue()

    assert json.loads(run("keys"))["instance"] == HERE
    added = run(
        "add",
        PEER,
        "--name",
        "济南市政务数据平台",
        "--url",
        "http://127.0.0.1:9",
        "--division",
        "370100",
        "--keys-file",
        str(path),
    )
    assert "k1" in added and federation.fingerprint(document["keys"][0]["public_key"]) in added
    assert json.loads(run("list", "--json"))[0]["kids"] == ["k1"]
    run("suspend", PEER, "--reason", "演练")
    assert Peer.objects.get().status == "suspended"
    run("resume", PEER)
    assert Peer.objects.get().status == "active"
    assert "k1" in run("keys", PEER)
    with pytest.raises(Exception, match="no peer"):
        run("resume", "999999")
    with pytest.raises(SystemExit):
        run("sync", PEER)  # the peer does not answer: exit status 1
    assert Peer.objects.get().last_sync_code == "peer_unavailable"


def test_local_clients_call_a_peers_resource_through_their_own_gateway(
    client, monkeypatch, peer, peer_key, make_client
):
    token = make_client()(client)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    query = {"identifier": PERSON_ID, "items": ["name"]}

    def post(peer_code="370100", key="101001000-000009"):
        return client.post(
            f"/api/v1/exchange/peers/{peer_code}/resources/{key}/records/query",
            query,
            content_type="application/json",
            **auth,
        )

    unknown = post("999999")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "peer_not_found")
    assert unknown.json()["exchange_seq"] == last_entry().seq and last_entry().consumer_code == "370000-MZT"
    assert post().json()["code"] == "resource_not_found"  # not in the synced catalogue
    assert (
        client.post(
            "/api/v1/exchange/peers/370100/resources/x/records/query", query, content_type="application/json"
        ).status_code
        == 401
    )

    fake = FakePeer(peer_key, CATALOGUE)
    monkeypatch.setattr(federation, "_OPENER", fake)
    fx.sync_catalogue(peer)
    fake.document = {
        "resource": "101001000/000009",
        "record": "r-1",
        "items": {"name": "王小明"},
        "exchange": {"seq": 7, "hash": "a" * 64},
    }
    read = post()
    assert read.status_code == 200, read.content
    body = read.json()
    assert body["items"] == {"name": "王小明"} and body["peer_exchange"] == {
        "instance": PEER,
        "seq": 7,
        "hash": "a" * 64,
    }
    sent = json.loads(fake.requests[-1].data)
    assert sent == {
        "consumer": {"code": "370000-MZT"},
        "client": "mz-system",
        "resource": "101001000/000009",
        "identifier": PERSON_ID,
        "items": ["name"],
    }
    entry = ExchangeLogEntry.objects.get(seq=body["exchange"]["seq"])
    assert (entry.operation, entry.provider_code, entry.records, entry.request_id) == (
        "read",
        "370100:370100-GA",
        ["r-1"],
        fake.requests[-1].get_header("X-dgov-nonce"),
    )
    assert PERSON_ID not in entry.fields_json + entry.records_json

    fake.document = {"unexpected": True}
    malformed = post()
    assert (malformed.status_code, malformed.json()["code"]) == (502, "peer_answer_invalid")
    assert malformed["Content-Type"].startswith("application/problem+json")
