"""dgov.rsgi: the RSGI server application — everything but registry fast reads runs through WSGI on a pool."""

import json

import pytest
from rsgi_fakes import Protocol, Scope, serve

from dgov import rsgi


def echo_app(environ, start_response):
    """A WSGI application answering with what it was given."""
    body = environ["wsgi.input"].read()
    answer = {
        "path": environ["PATH_INFO"].encode("latin-1").decode("utf-8"),
        "query": environ["QUERY_STRING"],
        "method": environ["REQUEST_METHOD"],
        "body": body.decode(),
        "type": environ.get("CONTENT_TYPE"),
        "length": environ.get("CONTENT_LENGTH"),
        "x_a": environ.get("HTTP_X_A"),
        "remote": environ["REMOTE_ADDR"],
        "server": [environ["SERVER_NAME"], environ["SERVER_PORT"]],
        "scheme": environ["wsgi.url_scheme"],
    }
    start_response("201 Created", [("Content-Type", "application/json"), ("X-Echo", "1")])
    return [json.dumps(answer, ensure_ascii=False).encode()]


def test_environ_and_body_reach_the_wsgi_application():
    app = rsgi.Application(echo_app, threads=2)
    scope = Scope(
        "POST",
        "/a b/中",
        "x=%E4%B8%AD&y=1",
        headers=[("content-type", "text/plain"), ("content-length", "20"), ("x-a", "1"), ("x-a", "2")],
    )
    protocol = serve(app, scope, Protocol(b"twenty bytes of body"))
    assert protocol.status == 201 and protocol.header("X-Echo") == "1"
    seen = json.loads(protocol.content())
    assert seen == {
        "path": "/a b/中",
        "query": "x=%E4%B8%AD&y=1",
        "method": "POST",
        "body": "twenty bytes of body",
        "type": "text/plain",
        "length": "20",
        "x_a": "1,2",
        "remote": "127.0.0.1",
        "server": ["127.0.0.1", "8000"],
        "scheme": "http",
    }


def test_long_answers_are_streamed_and_closed(monkeypatch):
    monkeypatch.setattr(rsgi, "WHOLE_BYTES", 1000)
    closed = []

    class Body:
        def __iter__(self):
            for i in range(50):
                yield f"{i:04d}".encode() * 25  # 100 bytes each

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/csv")])
        return Body()

    protocol = serve(rsgi.Application(app, threads=1), Scope("GET", "/export"), Protocol())
    assert protocol.streaming and protocol.status == 200
    assert protocol.content() == b"".join(f"{i:04d}".encode() * 25 for i in range(50))
    assert closed == [True]


def test_short_answers_are_sent_whole_and_closed():
    closed = []

    class Body(list):
        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("204 No Content", [])
        return Body([b""])

    protocol = serve(rsgi.Application(app, threads=1), Scope("DELETE", "/x"), Protocol())
    assert not protocol.streaming and protocol.status == 204 and protocol.body == b"" and closed == [True]


@pytest.fixture
def site():
    """The site as dgov.rsgi serves it (without the fast path), its pool closed afterwards."""
    application = rsgi.Application(rsgi.site_application, threads=2)
    yield application
    application.shutdown()


@pytest.mark.django_db
def test_the_site_through_rsgi_answers_with_request_ids(site):
    protocol = serve(site, Scope("GET", "/healthz", headers=[("x-request-id", "lb-42")]), Protocol())
    assert protocol.status == 200 and protocol.header("X-Request-ID") == "lb-42"
    protocol = serve(site, Scope("GET", "/api/v1/me"), Protocol())
    assert protocol.status == 401 and protocol.header("Content-Type").startswith("application/problem+json")
    assert len(protocol.header("X-Request-ID")) == 32


@pytest.mark.django_db
def test_a_form_post_carries_its_body_and_csrf_refusal(site):
    body = b"username=nobody&password=wrong"
    protocol = serve(
        site,
        Scope("POST", "/login/", headers=[("content-type", "application/x-www-form-urlencoded")]),
        Protocol(body),
    )
    assert protocol.status == 403  # no CSRF cookie: Django refused the form, having read it


def test_worker_start_freezes_the_start_up_objects():
    import gc

    gc.unfreeze()
    try:
        rsgi.Application(lambda environ, start_response: [], threads=1).__rsgi_init__(None)
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # modules, models, URL patterns: out of the collector's walk
        gc.collect()
        # a collection leaves them frozen (a frozen object can still be freed by its reference count)
        assert gc.get_freeze_count() > frozen - 100
    finally:
        gc.unfreeze()
