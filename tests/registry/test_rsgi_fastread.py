"""Registry reads through the RSGI server application (dgov.rsgi): answered on the event loop, same as Django.

On PostgreSQL the reads are batched on the loop with the process's asynchronous connection; on
SQLite the whole read runs on the thread pool. Either way the answer and the access-log row equal
Django's, and every request the fast path must not answer reaches Django unchanged.
"""

import asyncio
import json
import uuid

import pytest
from api_fixtures import *  # noqa: F403
from api_fixtures import BASE, basic
from django.db import connection
from rsgi_fakes import Protocol, Scope, serve

from dgov import rsgi
from dgov.registry import accesslog, fastread, services
from dgov.registry.models import AccessLog

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _journal(settings, tmp_path):
    """A journal directory of the test's own."""
    settings.DATA_DIR = tmp_path
    accesslog.journal.close()
    yield
    accesslog.journal.close()
    fastread.reader.shutdown()  # its thread's database connection must not outlive the test


@pytest.fixture(autouse=True)
def _keep_test_connection():
    """Requests must not close the connection that holds the test's data (as in test_fastread)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def app():
    """The RSGI application as dgov.rsgi builds it, with a reader of the test's own."""
    reader = fastread.AsyncReader(fastread.RegistryReadFastPath(None, enabled=True))
    application = rsgi.Application(rsgi.site_application, threads=2, reader=reader)
    yield application
    asyncio.run(reader.close())
    application.shutdown()


def get(app, path, query="", **headers):
    """GET through the RSGI application: the protocol object holding the answer."""
    return serve(app, Scope("GET", path, query, headers=list(headers.items())), Protocol())


def ingest():
    """Move everything journalled so far into AccessLog."""
    accesslog.journal.close()
    return accesslog.ingest_journals(older_than=-5)


@pytest.mark.parametrize("who", ["ga", "ga_unmask", "shizhong"])
def test_answer_and_log_equal_djangos(app, callers, people, who):
    caller = callers[who]
    record = people[1]
    path = f"{BASE}/{record.uid}"
    before = app.fast_answers
    answer = get(app, path, authorization=caller.auth, **{"x-purpose": "%E6%A0%B8%E9%AA%8C"})
    assert answer.status == 200 and app.fast_answers == before + 1
    assert answer.header("Content-Type") == "application/json; charset=utf-8"
    assert answer.header("Cache-Control") == "private, no-store" and len(answer.header("X-Request-ID")) == 32
    # On PostgreSQL the record was read on the loop, through the reader's own asynchronous connection.
    assert (app.reader._connection is not None) is (connection.vendor == "postgresql")
    assert AccessLog.objects.filter(record=record).count() == 0  # journalled first
    assert ingest() == 1
    fast_row = AccessLog.objects.get(record=record)
    django = caller.get(path, HTTP_X_PURPOSE="%E6%A0%B8%E9%AA%8C")
    assert json.loads(answer.content()) == django.json()
    django_row = AccessLog.objects.filter(record=record).exclude(pk=fast_row.pk).get()
    assert (fast_row.reader, fast_row.purpose, fast_row.fields, fast_row.subject_digest) == (
        django_row.reader,
        django_row.purpose,
        django_row.fields,
        django_row.subject_digest,
    )


def test_many_reads_in_one_turn_are_one_batch(app, callers, people):
    async def many():
        protocols = [Protocol() for _ in people]
        scopes = [Scope("GET", f"{BASE}/{p.uid}", headers=[("authorization", callers["ga"].auth)]) for p in people]
        await asyncio.gather(*(app.__rsgi__(s, p) for s, p in zip(scopes, protocols, strict=True)))
        return protocols

    # One read first warms the client's authentication (its first use updates the client's row, which
    # concurrent threads would contend for on the in-memory SQLite test database).
    assert get(app, f"{BASE}/{people[0].uid}", authorization=callers["ga"].auth).status == 200
    ingest()
    before = app.fast_answers
    answers = asyncio.run(many())
    answered = [json.loads(p.content())["uuid"] for p in answers if p.status == 200]
    live = [str(p.uid) for p in people if p.deleted_at is None]
    assert sorted(answered) == sorted(live)
    assert app.fast_answers - before == len(live)
    assert ingest() == len(live)


def test_refusals_and_other_requests_reach_django(app, callers, people):
    ga = callers["ga"].auth
    cases = [
        (f"{BASE}/{people[0].uid}", "", {}, 401),
        (f"{BASE}/{people[0].uid}", "", {"authorization": basic("ga", "wrong")}, 401),
        (f"{BASE}/{uuid.uuid4()}", "", {"authorization": ga}, 404),
        (f"{BASE}/{people[1].uid}", "", {"authorization": callers["lixia"].auth}, 404),
        (f"{BASE}/{people[0].uid}", "", {"authorization": callers["scjg"].auth}, 403),
        (f"{BASE}/{people[0].uid}", "fields=name", {"authorization": ga}, 200),
    ]
    before = app.fast_answers
    for path, query, headers, expected in cases:
        answer = get(app, path, query, **headers)
        assert answer.status == expected, (path, answer.content())
        if expected != 200:
            assert answer.header("Content-Type").startswith("application/problem+json")
    assert app.fast_answers == before
    assert AccessLog.objects.filter(record=people[0]).count() == 1  # Django logged its own answer


def test_cold_caches_and_a_failed_journal_fall_back_to_django(app, callers, people, monkeypatch):
    services._fields_cache.clear()
    fastread._field_maps.clear()
    first = get(app, f"{BASE}/{people[0].uid}", authorization=callers["ga"].auth)
    assert first.status == 200
    monkeypatch.setattr(accesslog.journal, "append_many", lambda rows: False)
    before = app.fast_answers
    second = get(app, f"{BASE}/{people[1].uid}", authorization=callers["ga"].auth)
    assert second.status == 200 and app.fast_answers == before  # Django answered
    assert AccessLog.objects.filter(record=people[1]).count() == 1
