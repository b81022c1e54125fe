"""The exchange log's group commit: concurrent gateway calls outside a transaction, failures, timeouts, leases.

These tests commit for real (``transaction=True``): the log writer is a thread with its own
database connection, used only when the call is not inside a transaction.
"""

import datetime
import threading

import pytest
from django.db import connections
from django.test import Client
from exchange_helpers import PERSON_ID

from dgov.exchange import log, services
from dgov.exchange.models import ExchangeLogEntry, RateBucket
from dgov.kernel.batching import TIMED_OUT
from dgov.registry.models import AccessLog

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def granted(users, resources, name_request):
    """A grant of name and birth date to 省民政厅 (approved by 省公安厅 when the request needs it)."""
    if name_request.status == "submitted":
        services.approve(name_request, actor=users["ga"])
    return resources["person"]


@pytest.fixture
def token(client, make_client):
    return make_client()(client)


def _query(client, resource, token, identifier=PERSON_ID):
    return client.post(
        f"/api/v1/exchange/resources/{resource.code.replace('/', '-')}/records/query",
        {"identifier": identifier, "items": ["name"]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_concurrent_calls_are_chained_in_batches_with_their_access_log_rows(granted, token):
    before = ExchangeLogEntry.objects.count()
    answers, errors = [], []

    def caller():
        own = Client()
        try:
            for _ in range(5):
                response = _query(own, granted, token)
                answers.append((response.status_code, response.json()))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connection must not outlive the test database

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(answers) == 40 and {status for status, _body in answers} == {200}
    seqs = sorted(body["exchange"]["seq"] for _status, body in answers)
    assert len(set(seqs)) == 40  # every call its own entry
    assert ExchangeLogEntry.objects.count() == before + 40
    for _status, body in answers:  # the answer names the committed entry
        entry = ExchangeLogEntry.objects.get(seq=body["exchange"]["seq"])
        assert entry.hash == body["exchange"]["hash"] and entry.records == [body["record"]]
    assert AccessLog.objects.filter(channel="exchange").count() == 40
    report = log.verify()
    assert report.ok, report.problems
    assert log.writer.batches >= 1


def test_a_failed_batch_is_written_entry_by_entry(granted, token, client, monkeypatch):
    def broken(items):
        raise RuntimeError("batch failed")

    monkeypatch.setattr(log.writer, "handle", broken)
    response = _query(client, granted, token)
    assert response.status_code == 200, response.content
    entry = ExchangeLogEntry.objects.get(seq=response.json()["exchange"]["seq"])
    assert entry.result == "ok" and AccessLog.objects.filter(channel="exchange").count() == 1
    assert log.verify().ok


def test_an_unlogged_call_is_refused_with_503(granted, token, client, monkeypatch):
    monkeypatch.setattr(log.writer, "submit", lambda item, timeout: (False, TIMED_OUT))
    response = _query(client, granted, token)
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "log_unavailable" and "王小明" not in response.content.decode()
    assert not AccessLog.objects.filter(channel="exchange").exists()  # nothing served, nothing read


def test_busy_clients_lease_tokens_from_the_shared_bucket(settings):
    settings.EXCHANGE_RATE_PER_SECOND, settings.EXCHANGE_RATE_BURST = 100, 100
    services._leases.clear()
    now = datetime.datetime.now(datetime.UTC)  # one instant: no refill between the takes

    def tokens():
        return RateBucket.objects.get(pk="lease-client").tokens

    assert services.take_token("lease-client", now=now)  # takes a lease of 10 tokens from the bucket
    assert tokens() == pytest.approx(90)
    for _ in range(9):  # spent locally: the bucket row is not touched
        assert services.take_token("lease-client", now=now)
    assert tokens() == pytest.approx(90)
    assert services.take_token("lease-client", now=now)  # the next lease
    assert tokens() == pytest.approx(80)
    RateBucket.objects.filter(pk="lease-client").update(tokens=0.5)
    services._leases.clear()
    assert not services.take_token("lease-client", now=now)  # an empty bucket refuses
    assert tokens() == pytest.approx(0.5)
