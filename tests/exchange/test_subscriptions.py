"""Change subscriptions: signed webhooks to a real HTTP receiver, retries with backoff, grants, pausing, search."""

import datetime
import http.server
import json
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from exchange_helpers import PERSON_ID

from dgov.exchange import services, subscriptions
from dgov.exchange.models import Delivery, ExchangeLogEntry, Subscription
from dgov.kernel.models import AuditRecord
from dgov.registry import services as registry_services

pytestmark = pytest.mark.django_db

BASE = "/api/v1/exchange/subscriptions/"


class Receiver:
    """A loopback HTTP server recording every POST and answering with the status the test sets."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 204
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                self.send_response(receiver.status)
                if receiver.status in (301, 302):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/dgov"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def grant(name_request):
    """MZ holds a grant on the person resource: name and birth_date in full (无条件, granted at once)."""
    return name_request.grant


@pytest.fixture
def record(person_registry):
    return registry_services.find_record(person_registry, "id_number", PERSON_ID)


def change(record, orgs, **values):
    registry_services.update_record(record, values, actor="system:test", source=orgs["ga"])


def drain():
    call_command("worker", "--once", "--no-tasks", verbosity=0)


def test_signed_webhook_reaches_receiver_and_verifies(users, orgs, resources, grant, record, receiver):
    sub = subscriptions.subscribe(resources["person"], actor=users["mz"], callback_url=receiver.url)
    assert sub.grant_id == grant.pk and sub.registry_code == "t.person"
    change(record, orgs, name="王大明", income="100")
    drain()  # outbox → delivery → the periodic job sends it
    assert len(receiver.requests) == 1
    hit = receiver.requests[0]
    headers = {k.lower(): v for k, v in hit["headers"].items()}
    body = json.loads(hit["body"])
    assert headers["content-type"].startswith("application/json")
    assert headers["x-dgov-event"] == "record.updated" and body["event"] == "record.updated"
    assert headers["x-dgov-delivery"] == body["delivery"]
    # Only granted items that changed; income changed too but is not granted. No values, no ID number.
    assert body["items"] == ["name"] and body["record"] == str(record.uid)
    assert "王大明" not in hit["body"].decode() and PERSON_ID not in hit["body"].decode()
    keys = {k["kid"]: k["public_key"] for k in subscriptions.public_keys()}
    assert subscriptions.verify_signature(
        public_key_pem=keys[headers["x-dgov-key-id"]],
        timestamp=headers["x-dgov-timestamp"],
        delivery_uid=headers["x-dgov-delivery"],
        body=hit["body"],
        signature_b64=headers["x-dgov-signature"],
    )
    # A tampered body or another timestamp does not verify.
    assert not subscriptions.verify_signature(
        public_key_pem=keys[headers["x-dgov-key-id"]],
        timestamp=str(int(headers["x-dgov-timestamp"]) + 1),
        delivery_uid=headers["x-dgov-delivery"],
        body=hit["body"],
        signature_b64=headers["x-dgov-signature"],
    )
    assert not subscriptions.verify_signature(
        public_key_pem=keys[headers["x-dgov-key-id"]],
        timestamp=headers["x-dgov-timestamp"],
        delivery_uid=headers["x-dgov-delivery"],
        body=hit["body"].replace(b"name", b"nam3"),
        signature_b64=headers["x-dgov-signature"],
    )
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 204)
    entry = ExchangeLogEntry.objects.get(operation="webhook")
    assert (entry.result, entry.consumer_code, entry.provider_code, entry.status) == (
        "ok",
        "370000-MZT",
        "370000-GAT",
        204,
    )
    assert entry.records == [str(record.uid)] and entry.request_id == str(delivery.uid)
    assert services.verify_log().ok
    # A change of an item that is not granted sends nothing; a repeated drain sends nothing twice.
    change(record, orgs, income="200")
    drain()
    assert len(receiver.requests) == 1 and Delivery.objects.count() == 1


def test_retries_back_off_then_dead_and_pause(settings, users, orgs, resources, grant, record, receiver):
    settings.EXCHANGE_WEBHOOK_PAUSE_AFTER = 0
    receiver.status = 500
    sub = subscriptions.subscribe(resources["person"], actor=users["mz"], callback_url=receiver.url)
    change(record, orgs, name="王大明")
    drain()
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        "failed",
        1,
        500,
        "http_500",
    )
    first_wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 24 <= first_wait <= 36  # 30 s ± 20 %
    # Not due yet: nothing is sent.
    assert subscriptions.send_due(now=delivery.last_attempt_at + datetime.timedelta(seconds=20)) == 0
    waits = []
    for _ in range(5):
        delivery.refresh_from_db()
        moment = delivery.next_attempt_at + datetime.timedelta(seconds=1)
        assert subscriptions.send_due(now=moment) == 1
        delivery.refresh_from_db()
        if delivery.next_attempt_at:
            waits.append((delivery.next_attempt_at - moment).total_seconds())
    assert delivery.state == "dead" and delivery.attempts == 6 and delivery.next_attempt_at is None
    for got, step in zip(waits, (120, 600, 3600, 21600), strict=True):
        assert step * 0.8 <= got + 1 <= step * 1.2 + 1
    assert len(receiver.requests) == 6
    # Every attempt is in the exchange log; the receiver's retries carry the same delivery id.
    assert ExchangeLogEntry.objects.filter(operation="webhook", result="error", code="http_500").count() == 6
    assert {r["headers"]["X-Dgov-Delivery"] for r in receiver.requests} == {str(delivery.uid)}
    # Retry-now gives a dead delivery one more attempt; now the receiver accepts it.
    receiver.status = 200
    subscriptions.retry_now(delivery, actor=users["mz"])
    assert subscriptions.send_due() == 1
    delivery.refresh_from_db()
    assert delivery.state == "delivered" and delivery.delivered_at is not None
    sub.refresh_from_db()
    assert sub.consecutive_failures == 0 and sub.status == "active"
    assert AuditRecord.objects.filter(action="exchange.delivery.retry").exists()


def test_redirect_is_a_failure_and_failures_pause_subscription(
    settings, users, orgs, resources, grant, record, receiver
):
    settings.EXCHANGE_WEBHOOK_PAUSE_AFTER = 2
    receiver.status = 302
    sub = subscriptions.subscribe(resources["person"], actor=users["mz"], callback_url=receiver.url)
    change(record, orgs, name="甲")
    change(record, orgs, name="乙")
    drain()
    assert len(receiver.requests) == 2  # the redirect was not followed
    sub.refresh_from_db()
    assert sub.status == "paused" and sub.consecutive_failures == 2 and "2" in sub.status_reason
    assert set(Delivery.objects.values_list("last_error", flat=True)) == {"http_302"}
    assert AuditRecord.objects.filter(action="exchange.subscription.auto_pause").count() == 1
    # Paused: new changes queue deliveries, nothing is sent.
    change(record, orgs, name="丙")
    drain()
    assert Delivery.objects.count() == 3 and len(receiver.requests) == 2
    later = datetime.timedelta(days=1)
    from django.utils import timezone

    assert subscriptions.send_due(now=timezone.now() + later) == 0
    # Resumed: everything due goes out.
    receiver.status = 204
    subscriptions.resume(sub, actor=users["mz"])
    assert subscriptions.send_due(now=timezone.now() + later) == 3
    assert set(Delivery.objects.values_list("state", flat=True)) == {"delivered"}


def test_revoked_grant_means_no_delivery(users, orgs, resources, grant, record, receiver):
    subscriptions.subscribe(resources["person"], actor=users["mz"], callback_url=receiver.url)
    change(record, orgs, name="甲")
    # The delivery is queued by the outbox; the grant is revoked before it is sent.
    from dgov.kernel.services import events

    events.autodiscover()
    events.drain("test-worker")
    assert Delivery.objects.filter(state="pending").count() == 1
    services.revoke(grant, actor=users["ga"], reason="停止共享")
    assert subscriptions.send_due() == 1
    delivery = Delivery.objects.get()
    assert delivery.state == "dead" and delivery.last_error == "grant_revoked"
    assert receiver.requests == []
    entry = ExchangeLogEntry.objects.get(operation="webhook")
    assert (entry.result, entry.code) == ("denied", "grant_revoked")
    # Later changes create no delivery at all, and a new subscription is refused.
    change(record, orgs, name="乙")
    drain()
    assert Delivery.objects.count() == 1 and receiver.requests == []
    with pytest.raises(PermissionDenied):
        subscriptions.subscribe(resources["person"], actor=users["mz"], callback_url=receiver.url)


def test_subscribe_rules(settings, users, resources, grant):
    with pytest.raises(PermissionDenied):  # RS holds no grant
        subscriptions.subscribe(resources["person"], actor=users["rs"], callback_url="https://rs.example/hook")
    with pytest.raises(ValidationError):
        subscriptions.subscribe(resources["person"], actor=users["mz"], callback_url="ftp://mz.example/hook")
    settings.PRODUCTION = True
    with pytest.raises(ValidationError):
        subscriptions.subscribe(resources["person"], actor=users["mz"], callback_url="http://mz.example/hook")
    assert subscriptions.subscribe(resources["person"], actor=users["mz"], callback_url="http://127.0.0.1:8/h")
    assert subscriptions.subscribe(resources["person"], actor=users["mz"], callback_url="https://mz.example/h")
    assert AuditRecord.objects.filter(action="exchange.subscription.create", outcome="denied").count() == 1


def test_api_with_client_token_and_search(client, users, orgs, resources, grant, record, receiver, make_client):
    token = make_client()(client)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    created = client.post(
        BASE,
        {"resource": resources["person"].code.replace("/", "-"), "callback_url": receiver.url},
        content_type="application/json",
        **auth,
    )
    assert created.status_code == 201, created.content
    sub_id = created.json()["id"]
    assert Subscription.objects.get(pk=sub_id).created_by == "client:mz-system"
    assert [s["id"] for s in client.get(BASE, **auth).json()] == [sub_id]
    keys = client.get(BASE + "keys", **auth)
    assert keys.status_code == 200 and keys.json()[0]["public_key"].startswith("-----BEGIN PUBLIC KEY-----")

    receiver.status = 503
    change(record, orgs, name="甲")
    drain()
    receiver.status = 204
    change(record, orgs, birth_date="1990-05-18")
    drain()
    failed = client.get(f"{BASE}{sub_id}/deliveries?state=failed", **auth).json()
    assert len(failed) == 1 and failed[0]["last_status_code"] == 503 and failed[0]["payload"]["items"] == ["name"]
    delivered = client.get(f"{BASE}{sub_id}/deliveries?state=delivered", **auth).json()
    assert len(delivered) == 1 and delivered[0]["payload"]["items"] == ["birth_date"]
    today = datetime.date.today().isoformat()
    assert len(client.get(f"{BASE}{sub_id}/deliveries?since={today}&until={today}", **auth).json()) == 2
    yesterday = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    assert client.get(f"{BASE}{sub_id}/deliveries?until={yesterday}", **auth).json() == []

    retried = client.post(f"{BASE}{sub_id}/deliveries/{failed[0]['uid']}/retry", **auth)
    assert retried.status_code == 200 and retried.json()["state"] == "failed"
    drain()
    assert len(client.get(f"{BASE}{sub_id}/deliveries?state=delivered", **auth).json()) == 2
    again = client.post(f"{BASE}{sub_id}/deliveries/{failed[0]['uid']}/retry", **auth)
    assert again.status_code == 409 and again["Content-Type"].startswith("application/problem+json")

    paused = client.post(f"{BASE}{sub_id}/pause", {"reason": "维护"}, content_type="application/json", **auth)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    second = client.post(f"{BASE}{sub_id}/pause", **auth)
    assert second.status_code == 409, second.content
    assert client.post(f"{BASE}{sub_id}/resume", **auth).json()["status"] == "active"
    assert client.post(f"{BASE}{sub_id}/end", **auth).json()["status"] == "ended"

    # Another department's client sees nothing and cannot touch it.
    other = make_client("rs", "rs-system")(client)
    other_auth = {"HTTP_AUTHORIZATION": f"Bearer {other}"}
    assert client.get(BASE, **other_auth).json() == []
    assert client.get(f"{BASE}{sub_id}", **other_auth).status_code == 404
    assert client.post(f"{BASE}{sub_id}/pause", **other_auth).status_code == 404
    assert client.get(f"{BASE}{sub_id}/deliveries", **other_auth).status_code == 404
    # A client without the scope may not subscribe; no credentials is 401.
    bare = make_client("mz", "mz-bare", scopes=("registry:read",))(client)
    refused = client.post(
        BASE,
        {"resource": resources["person"].code, "callback_url": receiver.url},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {bare}",
    )
    assert refused.status_code == 403
    assert client.get(BASE).status_code == 401


def test_pages(client, users, orgs, resources, grant, record, receiver):
    client.force_login(users["mz"])
    page = client.get("/workbench/exchange/subscriptions/")
    assert page.status_code == 200 and "变更订阅" in page.content.decode()
    made = client.post(
        "/workbench/exchange/subscriptions/",
        {"resource": resources["person"].code, "callback_url": receiver.url, "description": "低保"},
    )
    assert made.status_code == 302
    sub = Subscription.objects.get()
    receiver.status = 500
    change(record, orgs, name="甲")
    drain()
    detail = client.get(f"/workbench/exchange/subscriptions/{sub.pk}/?state=failed")
    assert detail.status_code == 200 and "http_500" in detail.content.decode()
    delivery = Delivery.objects.get()
    receiver.status = 204
    assert (
        client.post(f"/workbench/exchange/subscriptions/{sub.pk}/deliveries/{delivery.uid}/retry/").status_code == 302
    )
    drain()
    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    assert client.post(f"/workbench/exchange/subscriptions/{sub.pk}/change/", {"action": "pause"}).status_code == 302
    sub.refresh_from_db()
    assert sub.status == "paused"
    client.force_login(users["rs"])
    assert client.get(f"/workbench/exchange/subscriptions/{sub.pk}/").status_code == 404
    assert client.post(f"/workbench/exchange/subscriptions/{sub.pk}/change/", {"action": "end"}).status_code == 404
