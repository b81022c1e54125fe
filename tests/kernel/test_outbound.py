"""The shared rules for URLs dgov calls out to: loopback hosts, https in production, the problem codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dgov.kernel.outbound import CHECKS, http_allowed, is_loopback, url_problem


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("example.org", False),
        ("localhost.example.org", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_http_is_allowed_everywhere_outside_production_and_only_to_loopback_in_production(settings):
    settings.PRODUCTION = False
    assert http_allowed("example.org") and http_allowed("localhost")
    settings.PRODUCTION = True
    assert not http_allowed("example.org")
    assert http_allowed("localhost") and http_allowed("127.0.0.1") and http_allowed("::1")


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org",
        "https://example.org/hook",
        "https://example.org:8443/a/b",
        "https://[2001:db8::1]/x",
        "http://localhost:8000/cb",
        "http://127.0.0.1/cb",
        "http://[::1]:9000/cb",
    ],
)
def test_good_urls_have_no_problem_in_production(settings, url):
    settings.PRODUCTION = True
    assert url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty"),
        ("https://example.org/" + "x" * 2000, "length"),
        ("https://example.org/a b", "whitespace"),
        ("https://example.org/\x01", "whitespace"),
        ("https://example.org/#top", "fragment"),
        ("https://example.org/#", "fragment"),
        ("https://user@example.org/", "userinfo"),
        ("https://user:secret@example.org/", "userinfo"),
        ("https://:secret@example.org/", "userinfo"),
        ("https://@example.org/", "userinfo"),
        ("https://example.org/?a=1", "query"),
        ("https://example.org/?", "query"),
        ("https://example.org:99999/", "port"),
        ("https://example.org:abc/", "port"),
        ("ftp://example.org/", "scheme"),
        ("https:///path", "scheme"),
        ("example.org/path", "scheme"),
        ("https://[::1/", "scheme"),  # unparsable: no crash, refused as not a URL
        ("http://example.org/", "insecure"),
    ],
)
def test_each_problem_has_its_code(settings, url, problem):
    settings.PRODUCTION = True
    assert url_problem(url) == problem


def test_plain_http_is_only_a_problem_in_production(settings):
    settings.PRODUCTION = False
    assert url_problem("http://example.org/") is None
    settings.PRODUCTION = True
    assert url_problem("http://example.org/") == "insecure"


def test_only_the_named_checks_run_in_the_order_given(settings):
    settings.PRODUCTION = True
    url = "ftp://user@example.org/?q#f"
    assert url_problem(url) == "fragment"
    assert url_problem(url, ("scheme", "userinfo")) == "scheme"
    assert url_problem(url, ("userinfo", "scheme")) == "userinfo"
    assert url_problem(url, ("query", "fragment")) == "query"
    assert url_problem("https://example.org:99999/", ("scheme", "insecure")) is None
    assert url_problem("https://example.org/?a=1", ()) is None


def test_max_length_is_the_callers(settings):
    url = "https://example.org/" + "x" * 80
    assert url_problem(url, ("length",), max_length=len(url)) is None
    assert url_problem(url, ("length",), max_length=len(url) - 1) == "length"


def test_an_unknown_check_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown outbound URL check"):
        url_problem("https://example.org/", ("scheme", "nonsense"))


@given(st.text(max_size=200))
def test_any_text_gets_an_answer_and_an_accepted_url_is_https_with_a_host(text):
    problem = url_problem(text)
    assert problem is None or problem in CHECKS
    if problem is None:
        assert text.lower().startswith(("https://", "http://"))
        assert "#" not in text and "@" not in text.split("/")[2]
