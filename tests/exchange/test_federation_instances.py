"""Federation between two real dgov instances in one test run.

The province (``370000``, provider) is the live server of this test run, with the exchange test
fixtures (省公安厅's published 人口基本信息 backed by a person registry). The city (``370100``,
consumer) is a second dgov in a subprocess with its own SQLite database and keys
(``tests/instances.py``): 济南市民政局, an official and a gateway client. Each pins the other's
keys. The city reaches the province through a small proxy in this process, which can spoil an
answer and keeps the requests it forwarded so that the test can replay and tamper with them.

Covered: catalogue sync, a request forwarded, approved in the provider's inbox and its status
synced, data calls served with grant checks and logged on both sides, a tampered answer, a
replayed request, a tampered signature, an unknown peer and a suspended peer.
"""

import http.server
import json
import re
import threading
import urllib.error
import urllib.request

import pytest
from exchange_helpers import PERSON_ID
from instances import Instance, free_port

from dgov.exchange import federation, services
from dgov.exchange.models import ExchangeLogEntry, ShareRequest
from dgov.kernel.models import Organization
from dgov.registry.models import AccessLog

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PROVINCE, CITY = "370000", "370100"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

CITY_SETUP = """
import json, pathlib
from dgov.exchange import federation
from dgov.identity.models import User
from dgov.kernel.models import Division, Organization
from dgov.kernel.validators import make_uscc
from dgov.oidc.services import clients
province = Division.objects.create(code="370000", name="山东省", full_name="山东省", level=1)
city = Division.objects.create(code="370100", name="济南市", full_name="山东省济南市", level=2, parent=province)
mz = Organization.objects.create(name="济南市民政局", code="370100-MZJ", uscc=make_uscc("1", "1", "370100", serial=77),
                                 level=2, division=city, kind="MZ")
User.objects.create_user(username="jn-mz", password="Federation-test-passw0rd", kind="official", department=mz)
client, secret = clients.create_client(name="民政业务系统", organization=mz, actor="system:test", redirect_uris=[],
    post_logout_redirect_uris=[], grant_types=["client_credentials"], scopes=["exchange:call"], first_party=False,
    client_id="jn-mz-app")
keys = json.loads(pathlib.Path("{keys}").read_text())
federation.add_peer(code="370000", name="山东省政务数据平台", base_url="{url}", division=province, keys=keys,
                    actor="system:test")
print("SECRET=" + secret)
print("KEYS=" + json.dumps(federation.keys_document()))
"""

CITY_REQUEST = """
import datetime
from dgov.exchange import federation_exchange as fx
from dgov.exchange.models import RemoteResource
from dgov.identity.models import User
remote = RemoteResource.objects.get(peer__code="370000", code="{code}")
official = User.objects.get(username="jn-mz")
end = datetime.date.today() + datetime.timedelta(days=30)
row = fx.request_remote(remote, actor=official, items={{"name": "full", "id_number": "verify"}},
    purpose="低保资格审核", legal_basis="《社会救助暂行办法》", period_end=end)
print("REQUEST=" + str(row.remote_id) + " " + row.status)
"""

CITY_STATE = """
import json
from dgov.exchange.models import ExchangeLogEntry, RemoteShareRequest
rows = [dict(operation=e.operation, result=e.result, code=e.code, status=e.status, consumer=e.consumer_code,
             client=e.client_id, provider=e.provider_code, request_id=e.request_id, records=e.records)
        for e in ExchangeLogEntry.objects.order_by("seq")]
requests = [dict(status=r.status, grant=r.grant) for r in RemoteShareRequest.objects.all()]
print("STATE=" + json.dumps(dict(log=rows, requests=requests), ensure_ascii=False))
"""


class Proxy(http.server.ThreadingHTTPServer):
    """Forwards to the province; ``tamper`` spoils the next answers; ``seen`` keeps what it forwarded."""

    daemon_threads = True

    def __init__(self, target: str):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.target, self.tamper, self.seen = target, False, []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower().startswith("x-dgov-") or k == "Content-Type"}
        self.server.seen.append((self.command, self.path, headers, body))
        status, answer_headers, content = send(self.server.target, self.command, self.path, headers, body)
        if self.server.tamper:
            content = content.replace(b"\\u738b", b"\\u6c6a").replace("王".encode(), "汪".encode())
        self.send_response(status)
        for name, value in answer_headers.items():
            if name.lower().startswith("x-dgov-") or name.lower() == "content-type":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = _forward

    def log_message(self, *args):
        pass


def send(base: str, method: str, path: str, headers: dict, body: bytes = b""):
    """An HTTP exchange without proxies: ``(status, headers, body)`` whatever the status."""
    request = urllib.request.Request(base + path, data=body or None, headers=headers, method=method)
    try:
        with _NO_PROXY.open(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def post_json(url: str, payload: dict, token: str):
    status, _headers, body = send(
        url,
        "POST",
        "",
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        json.dumps(payload).encode(),
    )
    return status, json.loads(body)


def city_state(city) -> dict:
    out = city.run("shell", "-c", CITY_STATE)
    return json.loads(re.search(r"^STATE=(.*)$", out, re.M).group(1))


@pytest.fixture
def proxy(live_server):
    server = Proxy(live_server.url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def city(tmp_path_factory, proxy, settings):
    """The city instance: set up, pinned to the province's keys (through the proxy), serving."""
    settings.FEDERATION_INSTANCE = PROVINCE
    root = tmp_path_factory.mktemp("city")
    keys = root / "province-keys.json"
    keys.write_text(json.dumps(federation.keys_document()))
    instance = Instance(
        root,
        free_port(),
        no_migrations=True,
        name="city",
        env={"DGOV_FEDERATION_INSTANCE": CITY, "DGOV_DEMO_PROVINCE": PROVINCE, "DGOV_FEDERATION_TIMEOUT": "20"},
    )
    instance.migrate()
    out = instance.run("shell", "-c", CITY_SETUP.format(keys=keys, url=proxy.url))
    instance.secret = re.search(r"^SECRET=(\S+)$", out, re.M).group(1)
    instance.keys = json.loads(re.search(r"^KEYS=(.*)$", out, re.M).group(1))
    instance.serve()
    yield instance
    instance.stop()


def test_two_instances_exchange_catalogue_requests_and_data(city, proxy, live_server, users, resources):
    person = resources["person"]
    key = person.code.replace("/", "-")
    peer = federation.add_peer(
        code=CITY, name="济南市政务数据平台", base_url=city.url, division="370100", keys=city.keys, actor="system:test"
    )

    # 1. The city pulls the province's catalogue (CLI); both logs record it.
    out = city.run("exchange", "peer", "sync", PROVINCE)
    assert json.loads(out.splitlines()[0])["catalogue"] == {"created": 1, "updated": 0, "withdrawn": 0}
    served = ExchangeLogEntry.objects.get(operation="fed-catalog")
    assert (served.result, served.consumer_code) == ("ok", CITY)

    # 2. An official of 济南市民政局 files a request; the province's 省公安厅 approves it in its inbox.
    out = city.run("shell", "-c", CITY_REQUEST.format(code=person.code))
    remote_id, status = re.search(r"^REQUEST=(\d+) (\w+)$", out, re.M).groups()
    assert status == "submitted"
    request = ShareRequest.objects.get(pk=int(remote_id))
    mirror = Organization.objects.get(code="370100:370100-MZJ", kind="PEER")
    assert request.consumer == mirror and list(services.approval_inbox(users["ga"])) == [request]
    services.approve(request, actor=users["ga"])

    # 3. The city learns the decision by polling.
    out = city.run("exchange", "peer", "sync", PROVINCE)
    assert json.loads(out.splitlines()[0])["requests"] == 1

    # 4. The city's client calls its own gateway; the province serves it under its grant checks.
    status, body, _content = send(
        city.url,
        "POST",
        "/oidc/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        f"grant_type=client_credentials&client_id=jn-mz-app&client_secret={city.secret}".encode(),
    )
    token = json.loads(_content)["access_token"]
    base = f"{city.url}/api/v1/exchange/peers/{PROVINCE}/resources/{key}"
    status, answer = post_json(f"{base}/records/query", {"identifier": PERSON_ID, "items": ["name"]}, token)
    assert status == 200, answer
    assert answer["items"] == {"name": "王小明"} and answer["peer_exchange"]["instance"] == PROVINCE
    provider_entry = ExchangeLogEntry.objects.get(seq=answer["peer_exchange"]["seq"])
    assert (
        provider_entry.operation,
        provider_entry.result,
        provider_entry.consumer_code,
        provider_entry.client_id,
        provider_entry.provider_code,
    ) == ("read", "ok", "370100:370100-MZJ", "370100:jn-mz-app", "370000-GAT")
    assert AccessLog.objects.get(channel="exchange").reader_org == mirror

    status, refused = post_json(f"{base}/records/query", {"identifier": PERSON_ID, "items": ["birth_date"]}, token)
    assert (status, refused["code"]) == (403, "item_not_granted")  # the province's grant check
    assert ExchangeLogEntry.objects.order_by("-seq").first().code == "item_not_granted"
    status, verified = post_json(
        f"{base}/verify", {"identifier": PERSON_ID, "item": "id_number", "op": "eq", "value": PERSON_ID}, token
    )
    assert (status, verified["result"]) == (200, True)

    # 5. A tampered answer is refused by the city.
    proxy.tamper = True
    status, spoiled = post_json(f"{base}/records/query", {"identifier": PERSON_ID, "items": ["name"]}, token)
    proxy.tamper = False
    assert (status, spoiled["code"]) == (502, "peer_answer_invalid") and "汪" not in json.dumps(spoiled)

    # 6. A replayed request, a tampered one and one from an unknown peer are refused by the province.
    method, path, headers, body = next(s for s in reversed(proxy.seen) if s[1].endswith("/gateway/read"))
    before = ExchangeLogEntry.objects.order_by("-seq").first().seq
    replay = send(live_server.url, method, path, headers, body)
    tampered = send(live_server.url, method, path, headers, body.replace(b"name", b"birth_date"))
    unknown = send(live_server.url, method, path, dict(headers, **{"X-Dgov-Peer": "110000"}), body)
    assert [(s, json.loads(b)["code"]) for s, _h, b in (replay, tampered, unknown)] == [
        (401, "nonce_replayed"),
        (401, "signature_invalid"),
        (401, "signature_invalid"),
    ]
    assert PERSON_ID not in replay[2].decode() + tampered[2].decode()
    refusals = ExchangeLogEntry.objects.filter(seq__gt=before).order_by("seq")
    assert [(e.result, e.code) for e in refusals] == [
        ("denied", "nonce_replayed"),
        ("denied", "signature_invalid"),
        ("denied", "signature_invalid"),
    ]

    # 7. Once the province suspends the city, the city's calls are refused there and the client told so.
    federation.suspend(peer, actor="system:test", reason="安全检查")
    status, suspended = post_json(f"{base}/records/query", {"identifier": PERSON_ID, "items": ["name"]}, token)
    assert (status, suspended["code"]) == (502, "peer_refused")

    # The city's log recorded its side of every exchange, correlated by the request id (the nonce).
    state = city_state(city)
    assert state["requests"] == [{"status": "granted", "grant": state["requests"][0]["grant"]}]
    assert state["requests"][0]["grant"]["state"] == "active"
    ops = [(e["operation"], e["result"], e["code"]) for e in state["log"]]
    assert ops == [
        ("fed-catalog", "ok", ""),
        ("fed-request", "ok", "submitted"),
        ("fed-catalog", "ok", ""),
        ("fed-status", "ok", ""),
        ("read", "ok", ""),
        ("read", "denied", "item_not_granted"),
        ("verify", "ok", ""),
        ("read", "error", "peer_answer_invalid"),
        ("read", "error", "peer_suspended"),
    ]
    city_read = state["log"][4]
    assert (city_read["consumer"], city_read["client"], city_read["provider"]) == (
        "370100-MZJ",
        "jn-mz-app",
        "370000:370000-GAT",
    )
    assert city_read["request_id"] == provider_entry.request_id and city_read["records"] == provider_entry.records
