"""Checks on the URLs dgov itself calls out to (outbound HTTP): webhooks, data services, peers, upstream IdPs.

Every place that stores or calls a URL named by someone else (a department's data service, a
subscriber's callback, a federation peer, an upstream identity provider's endpoints, an OIDC
client's redirect URI) applies the same rules, so they live here once:

* https; plain http only to this machine (``localhost`` or a loopback address, RFC 8252 §7.3)
  or when ``settings.PRODUCTION`` is off (development and tests);
* a host is required; no user:password in the authority, no ``#`` fragment;
* optionally: a valid port, no query, no white space or control characters, a maximum length.

:func:`url_problem` runs the checks a caller names, in the caller's order, and returns the code of
the first one the URL fails (None when it passes all). Callers turn the code into their own
error (field name, translated message, exception type), so this module holds no UI text.

Codes (and what fails them):

``empty``       the URL is empty
``length``      longer than ``max_length`` characters
``whitespace``  contains white space or an ASCII control character
``fragment``    contains ``#`` (even an empty fragment)
``userinfo``    the authority contains ``@`` (user, password, or an empty user part)
``query``       contains ``?`` before any fragment (even an empty query)
``port``        the port is not a number from 0 to 65535
``scheme``      not an http or https URL with a host (an unparsable URL fails here too)
``insecure``    plain http to a host other than loopback while ``PRODUCTION`` is on
"""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

__all__ = ["CHECKS", "direct_opener", "http_allowed", "is_loopback", "url_problem"]

# Every check, in the order used when a caller names none.
CHECKS = ("empty", "length", "whitespace", "fragment", "userinfo", "query", "port", "scheme", "insecure")


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a URL's hostname: lower case, IPv6 without brackets) is this machine."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_allowed(host: str | None) -> bool:
    """Whether plain http to ``host`` is acceptable: a loopback host, or anywhere outside production."""
    return is_loopback(host) or not getattr(settings, "PRODUCTION", False)


def _split(url: str) -> SplitResult | None:
    """The URL's parts, or None when it cannot be parsed (e.g. an unbalanced IPv6 bracket)."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def _bad_port(parts: SplitResult) -> bool:
    """Whether the URL names a port that is not a number from 0 to 65535."""
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return True
    return False


def _fails(check: str, url: str, parts: SplitResult | None, max_length: int) -> bool:
    """Whether ``url`` fails one named check (checks that need the parts pass on an unparsable URL, but ``scheme``)."""
    if check == "empty":
        return not url
    if check == "length":
        return len(url) > max_length
    if check == "whitespace":
        return any(ch.isspace() or ord(ch) < 0x21 for ch in url)
    if check == "fragment":
        return "#" in url
    if check == "query":
        return "?" in url.partition("#")[0]
    if check == "scheme":
        return parts is None or parts.scheme not in ("http", "https") or not parts.hostname
    if parts is None:
        return False
    if check == "userinfo":
        return "@" in parts.netloc
    if check == "port":
        return _bad_port(parts)
    if check == "insecure":
        return parts.scheme == "http" and bool(parts.hostname) and not http_allowed(parts.hostname)
    return False


def url_problem(url: str, checks: Iterable[str] = CHECKS, *, max_length: int = 2000) -> str | None:
    """The code of the first of ``checks`` that ``url`` fails, in the order given; None when it passes them all.

    ``url`` is taken as it is (strip it first if the caller accepts surrounding blanks). An
    unknown check name is a programming error (ValueError).
    """
    checks = tuple(checks)
    unknown = [check for check in checks if check not in CHECKS]
    if unknown:
        raise ValueError(f"unknown outbound URL check(s): {', '.join(unknown)}")
    url = url or ""
    parts = _split(url)
    for check in checks:
        if _fails(check, url, parts, max_length):
            return check
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a 3xx answer is the answer; the request never follows it elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        """Do not follow."""
        return None


def direct_opener() -> urllib.request.OpenerDirector:
    """A urllib opener that ignores proxy settings of the environment and never follows a redirect.

    For signed or checked calls (webhooks, federation peers): the URL that was checked is the one called.
    """
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
