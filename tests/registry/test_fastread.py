"""The registry read fast path and its access-log journal, through the site's WSGI application.

Each read is made twice: through the WSGI stack as served (access log → fast path → Django) and
through Django alone (the test client); the answers and the access-log rows must be the same,
and every request the fast path must not answer reaches Django unchanged.
"""

import json
import logging
import threading
import uuid

import pytest
from api_fixtures import *  # noqa: F403
from api_fixtures import BASE, REGISTRY, basic, pid
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory

from dgov.kernel.observability import AccessLogApp
from dgov.registry import accesslog, fastread, services
from dgov.registry.fastread import RegistryReadFastPath
from dgov.registry.models import AccessJournalFile, AccessLog

# The fast path reads through its own thread (and connection): the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _journal(settings, tmp_path):
    """A journal directory of the test's own; the process's journal file closed afterwards."""
    settings.DATA_DIR = tmp_path
    accesslog.journal.close()
    yield
    accesslog.journal.close()
    fastread.reader.shutdown()  # its thread's database connection must not outlive the test


def ingest():
    """Move everything journalled so far into AccessLog (as dgov worker does once files are finished)."""
    accesslog.journal.close()
    return accesslog.ingest_journals(older_than=-5)


@pytest.fixture(autouse=True)
def _keep_test_connection():
    """Like Django's test client: requests must not close the connection that holds the test's transaction."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def site():
    """The WSGI stack as dgov.wsgi builds it, with the fast path reachable for counting."""
    fast = RegistryReadFastPath(WSGIHandler(), enabled=True)
    return AccessLogApp(fast, inherited=frozenset({"DGOV_MASTER_KEY_FOR_TEST"})), fast


def wsgi_get(app, path, **headers):
    """GET through a WSGI application: (status code, headers dict, body bytes)."""
    environ = RequestFactory().get(path, **headers).environ
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(response_headers)

    body = app(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    return seen["status"], seen["headers"], data


def log_rows(record):
    """The record's access-log rows, without the moment and id."""
    return [
        (row.reader, row.reader_org_id, row.channel, row.purpose, row.fields, row.subject_digest)
        for row in AccessLog.objects.filter(record=record).order_by("id")
    ]


@pytest.mark.parametrize("who", ["ga", "ga_unmask", "shizhong", "dsj"])
def test_fast_answer_equals_django_answer_and_log(site, callers, people, who):
    app, fast = site
    caller = callers[who]
    record = people[1]  # 李四, 市中区: inside every one of these callers' scope
    path = f"{BASE}/{record.uid}"
    status, headers, body = wsgi_get(app, path, HTTP_AUTHORIZATION=caller.auth, HTTP_X_PURPOSE="%E6%A0%B8%E9%AA%8C")
    assert status == 200 and fast.answered == 1
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Cache-Control"] == "private, no-store" and headers["X-Content-Type-Options"] == "nosniff"
    assert log_rows(record) == []  # journalled, not yet in the table
    assert ingest() == 1
    fast_rows = log_rows(record)
    AccessLog.objects.all().delete()

    django = caller.get(path, HTTP_X_PURPOSE="%E6%A0%B8%E9%AA%8C")
    assert django.status_code == 200
    assert json.loads(body) == django.json()
    assert fast_rows == log_rows(record)
    assert fast_rows[0][3] == "核验" and fast_rows[0][0] == f"client:{caller.client.client_id}"
    content = json.loads(body)["content"]
    if who == "ga_unmask":
        assert content["name"] == "李四" and fast_rows[0][4][-1] == "<unmasked>"
    else:
        assert content["name"] != "李四" and content["id_number"] != pid(22, "370103")


def test_older_schema_version_and_purpose_parameter(site, callers, people, registry, api_orgs):
    app, fast = site
    services.publish_schema_version(
        registry,
        [*registry.current_schema.fields, {"name": "email", "label": "电子邮箱", "type": "string", "authority": "GA"}],
        actor=api_orgs["ga"],
    )
    services.update_record(people[0], {"email": "a@example.cn"}, actor="system:test", source=api_orgs["ga"])
    for version in ("1", "2"):
        path = f"/api/v1/registries/data/{REGISTRY}/{version}/{people[0].uid}?purpose=audit"
        status, _headers, body = wsgi_get(app, path, HTTP_AUTHORIZATION=callers["ga"].auth)
        assert status == 200
        assert json.loads(body) == callers["ga"].get(path).json()
        assert ("email" in json.loads(body)["content"]) is (version == "2")
    assert fast.answered == 2
    ingest()
    assert set(AccessLog.objects.values_list("purpose", flat=True)) == {"audit"}


def test_everything_else_reaches_django(site, callers, people):
    app, fast = site
    ga = callers["ga"].auth
    gone = people[2]
    services.delete_record(gone, actor="system:test", source=callers["ga"].client.organization, reason="迁出")
    cases = [
        (f"{BASE}/{people[0].uid}", {}, 401),  # no credentials
        (f"{BASE}/{people[0].uid}", {"HTTP_AUTHORIZATION": basic("ga", "wrong")}, 401),
        (f"{BASE}/{people[0].uid}", {"HTTP_AUTHORIZATION": "Bearer abc"}, 401),
        (f"/api/v1/registries/data/nope/1/{people[0].uid}", {"HTTP_AUTHORIZATION": ga}, 404),
        (f"{BASE[:-2]}/9/{people[0].uid}", {"HTTP_AUTHORIZATION": ga}, 404),
        (f"{BASE}/{uuid.uuid4()}", {"HTTP_AUTHORIZATION": ga}, 404),
        (f"{BASE}/{gone.uid}", {"HTTP_AUTHORIZATION": ga}, 404),
        (f"{BASE}/{people[1].uid}", {"HTTP_AUTHORIZATION": callers["lixia"].auth}, 404),  # outside its division
        (f"{BASE}/{people[0].uid}", {"HTTP_AUTHORIZATION": callers["scjg"].auth}, 403),  # no access to the registry
        (f"{BASE}/{pid(11)}", {"HTTP_AUTHORIZATION": ga}, 200),  # by identifier value
        (f"{BASE}/{people[0].uid}?fields=name", {"HTTP_AUTHORIZATION": ga}, 200),  # another parameter
    ]
    for path, headers, expected in cases:
        status, response_headers, body = wsgi_get(app, path, **headers)
        assert status == expected, (path, body)
        if expected != 200:
            assert response_headers["Content-Type"].startswith("application/problem+json")
    assert fast.answered == 0
    # Django, not the fast path, answered the reads that succeeded, and logged them itself.
    assert AccessLog.objects.filter(record=people[0]).count() == 2


def test_client_without_read_scope_reaches_django(site, api_orgs, people):
    from dgov.identity.services import create_api_client

    app, fast = site
    writer, secret = create_api_client("只写系统", api_orgs["ga"], ["registry:write"], actor=None, client_id="w-only")
    status, _headers, body = wsgi_get(app, f"{BASE}/{people[0].uid}", HTTP_AUTHORIZATION=basic("w-only", secret))
    assert status == 403 and "registry:read" in json.loads(body)["detail"]
    assert fast.answered == 0


def test_no_answer_without_a_committed_log(site, callers, people, monkeypatch):
    app, fast = site
    monkeypatch.setattr(accesslog.journal, "append_many", lambda rows: False)
    status, _headers, _body = wsgi_get(app, f"{BASE}/{people[0].uid}", HTTP_AUTHORIZATION=callers["ga"].auth)
    assert status == 200 and fast.answered == 0  # Django answered, with its own log row
    assert AccessLog.objects.filter(record=people[0]).count() == 1


def test_disabled_fast_path_passes_everything_on(callers, people):
    fast = RegistryReadFastPath(WSGIHandler(), enabled=False)
    status, _headers, _body = wsgi_get(fast, f"{BASE}/{people[0].uid}", HTTP_AUTHORIZATION=callers["ga"].auth)
    assert status == 200 and fast.answered == 0


def entry(people, api_orgs, i=0, **extra):
    """A read of 张三's record by a system actor."""
    return services.access_log_entry(
        people[0].registry, record_id=people[0].pk, values={"id_number": pid(11)}, actor=f"system:t{i}",
        purpose="journal", fields=["name"], department=api_orgs["ga"], **extra,
    )


def test_journal_lines_from_many_threads_all_reach_the_table(people, api_orgs):
    rows = [entry(people, api_orgs, i) for i in range(8)]  # the database is the main thread's (SQLite)
    threads = [
        threading.Thread(target=lambda row=row: [accesslog.log_read(row) for _ in range(25)]) for row in rows
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert ingest() == 200
    rows = AccessLog.objects.filter(purpose="journal")
    assert rows.count() == 200 and {row.reader for row in rows} == {f"system:t{i}" for i in range(8)}
    assert rows.first().subject_digest == services.access_log_entry(
        people[0].registry, record_id=people[0].pk, values={"id_number": pid(11)}, actor="x", fields=[]
    ).subject_digest != ""
    assert list(accesslog.journal_dir().glob("*.jsonl")) == []  # ingested files are removed


def test_a_journal_file_is_copied_in_slices_all_in_one_transaction(people, api_orgs, monkeypatch, settings):
    settings.ACCESS_JOURNAL_INGEST_PAUSE = 0
    monkeypatch.setattr(accesslog, "INGEST_SLICE", 7)
    assert accesslog.log_reads([entry(people, api_orgs, i % 3) for i in range(30)])
    assert ingest() == 30
    rows = AccessLog.objects.filter(purpose="journal")
    assert rows.count() == 30 and sorted({row.reader for row in rows}) == ["system:t0", "system:t1", "system:t2"]
    assert all(row.record_id == people[0].pk and row.fields == ["name"] for row in rows)


def test_lines_written_after_an_ingested_file_closed_are_not_lost(people, api_orgs):
    accesslog.log_read(entry(people, api_orgs))
    assert ingest() == 1
    accesslog.log_read(entry(people, api_orgs, 1))  # most likely within the same second
    assert ingest() == 1
    assert AccessLog.objects.filter(purpose="journal").count() == 2


def test_journal_file_is_ingested_once_and_incomplete_lines_skipped(people, api_orgs):
    accesslog.log_read(entry(people, api_orgs))
    accesslog.journal.close()
    [path] = accesslog.journal_dir().glob("*.jsonl")
    with open(path, "ab") as handle:
        handle.write(b'[1, 2, "cut sho')  # the process died in the middle of a line
    kept = path.read_bytes()
    assert accesslog.ingest_journals(older_than=-5) == 1
    path.write_bytes(kept)  # a crash after the commit, before the file was deleted
    assert accesslog.ingest_journals(older_than=-5) == 0
    assert not path.exists() and AccessLog.objects.filter(purpose="journal").count() == 1
    marker = AccessJournalFile.objects.get(name=path.name)
    assert (marker.rows, marker.skipped) == (1, 1)


def test_files_of_the_current_seconds_wait_and_the_worker_ingests_finished_ones(people, api_orgs, monkeypatch):
    from django.core.management import call_command

    accesslog.log_read(entry(people, api_orgs))
    accesslog.journal.close()
    assert accesslog.ingest_journals() == 0  # still within the last seconds: maybe still being written
    [path] = accesslog.journal_dir().glob("*.jsonl")
    second, rest = path.name.split("-", 1)
    path.rename(path.with_name(f"{int(second) - 60}-{rest}"))
    call_command("worker", "--once")
    assert AccessLog.objects.filter(purpose="journal").count() == 1


def test_access_log_app_request_id_and_clean_environ(caplog):
    seen = {}

    def inner(environ, start_response):
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    app = AccessLogApp(inner, inherited=frozenset({"DGOV_MASTER_KEY_FOR_TEST", "HTTP_PROXY"}))
    environ = RequestFactory().get("/x?a=1").environ
    environ.update(DGOV_MASTER_KEY_FOR_TEST="secret", HTTP_PROXY="http://evil")
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured.update(status=status, headers=dict(headers))

    with caplog.at_level(logging.INFO, logger="dgov.access"):
        app(environ, start_response)
        environ = RequestFactory().get("/y", HTTP_X_REQUEST_ID="lb-123").environ
        app(environ, start_response)
    assert "DGOV_MASTER_KEY_FOR_TEST" not in seen and "HTTP_PROXY" not in seen
    assert captured["headers"]["X-Request-ID"] == "lb-123"
    lines = [json.loads(record.getMessage()) for record in caplog.records if record.name == "dgov.access"]
    assert [(r["path"], r["status"], r["query"]) for r in lines] == [("/x", 204, "a=1"), ("/y", 204, "")]
    assert lines[1]["request_id"] == "lb-123" and len(lines[0]["request_id"]) == 32
    assert lines[0]["logger"] == "dgov.access" and lines[0]["msg"] == "GET /x 204"
