"""dgov as a relying party of an upstream OpenID Connect provider: discovery, keys, code exchange, id_token checks.

The protocol half of identity brokering (:mod:`dgov.oidc.services.broker` holds the rules about
accounts). Everything here speaks to the upstream over HTTP with the standard library's
``urllib.request`` — a timeout on every call (``OIDC_UPSTREAM_TIMEOUT``, 10 s), no redirects
followed, answers capped at 1 MiB — and raises :class:`UpstreamError` with a short code:

* ``unavailable`` — the upstream cannot be reached, answers with an HTTP error or something that is
  not the JSON expected, or its discovery document names another issuer;
* ``token_refused`` — the token endpoint refused the code (``error`` in its answer);
* ``bad_signature`` / ``bad_claims`` / ``nonce_mismatch`` — the id_token fails verification;
* ``userinfo_mismatch`` — the UserInfo answer is about another ``sub``.

Discovery metadata is cached per issuer for ``METADATA_SECONDS``; the JWKS too, and fetched again
at once when an id_token names an unknown ``kid`` (key rotation) — at most every
``JWKS_REFETCH_SECONDS``, so tokens with made-up key ids cannot make dgov hammer the upstream.
id_tokens are verified with :mod:`dgov.oidc.jose` (RS256, ES256, SM2): signature by the JWKS key
named by ``kid`` whose algorithm is the header's, ``iss`` equal to the discovered issuer, ``aud``
containing our client_id (``azp`` ours when there are several audiences), ``exp``/``iat`` within
60 s of skew, the ``nonce`` we sent, ``at_hash`` when present.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

from django.conf import settings

from dgov.kernel import outbound
from dgov.oidc import jose

__all__ = [
    "ALGORITHMS",
    "Metadata",
    "UpstreamError",
    "authorization_url",
    "check_url",
    "discover",
    "exchange_code",
    "forget",
    "published_keys",
    "signing_key",
    "userinfo",
    "validate_id_token",
]

ALGORITHMS = ("RS256", "ES256", "SM2")
MAX_BODY = 1024 * 1024
METADATA_SECONDS = 3600.0
JWKS_SECONDS = 3600.0
JWKS_REFETCH_SECONDS = 10.0
CLOCK_SKEW_SECONDS = 60
USER_AGENT = "dgov-broker/1 (OpenID Connect relying party)"


class UpstreamError(Exception):
    """The upstream or its answer failed: ``code`` says how (module docstring), ``detail`` is for the audit log."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail[:300]


@dataclass(frozen=True, slots=True)
class Metadata:
    """The parts of an upstream's discovery document dgov uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str = ""
    end_session_endpoint: str = ""


@dataclass(slots=True)
class _KeySet:
    """An upstream's verification keys as last fetched."""

    fetched_at: float
    keys: list[jose.PublicJwk] = field(default_factory=list)


_lock = threading.Lock()
_metadata: dict[str, tuple[float, Metadata]] = {}
_keysets: dict[str, _KeySet] = {}


def forget(issuer: str | None = None) -> None:
    """Drop cached metadata and keys (of one issuer, or all): the next login fetches them again."""
    with _lock:
        if issuer is None:
            _metadata.clear()
            _keysets.clear()
        else:
            _metadata.pop(issuer, None)
            _keysets.pop(issuer, None)


# --- HTTP -------------------------------------------------------------------------------------------------


def check_url(url: str) -> str:
    """``url`` if dgov may call it: https, or plain http to loopback or outside production; else UpstreamError."""
    if outbound.url_problem(str(url or ""), ("scheme", "userinfo", "fragment", "insecure")) is None:
        return url
    raise UpstreamError("unavailable", f"refused URL {str(url)[:120]!r}: https required")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: every endpoint is named by the issuer's own discovery document."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        """Refuse the redirect (urllib then raises HTTPError with the 3xx status)."""
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _timeout() -> float:
    """Seconds each upstream call may take."""
    return float(getattr(settings, "OIDC_UPSTREAM_TIMEOUT", 10) or 10)


def _call(url: str, *, data: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    """GET (or POST a form) and return (status, body); UpstreamError when the upstream cannot be reached."""
    check_url(url)
    body = urlencode(data).encode("ascii") if data is not None else None
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by check_url
        url,
        data=body,
        headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
        method="POST" if data is not None else "GET",
    )
    if body is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with _opener.open(request, timeout=_timeout()) as response:
            status, payload = response.status, response.read(MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read(MAX_BODY + 1) if exc.fp is not None else b""
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise UpstreamError("unavailable", f"{urlsplit(url).netloc}: {exc}") from None
    if len(payload) > MAX_BODY:
        raise UpstreamError("unavailable", f"{urlsplit(url).netloc}: answer too large")
    return status, payload


def _json_object(payload: bytes, what: str) -> dict[str, Any]:
    """A JSON object from an upstream answer, or UpstreamError."""
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UpstreamError("unavailable", f"{what}: not JSON") from None
    if not isinstance(value, dict):
        raise UpstreamError("unavailable", f"{what}: not a JSON object")
    return value


# --- discovery and keys ----------------------------------------------------------------------------------


def _same_issuer(a: str, b: str) -> bool:
    """Issuer identifiers compared as configured (a trailing slash aside)."""
    return str(a).rstrip("/") == str(b).rstrip("/")


def discover(issuer: str, *, refresh: bool = False) -> Metadata:
    """The issuer's metadata (OpenID Connect Discovery 1.0), cached for ``METADATA_SECONDS``."""
    now = time.monotonic()
    with _lock:
        hit = _metadata.get(issuer)
    if hit is not None and hit[0] > now and not refresh:
        return hit[1]
    url = f"{str(issuer).rstrip('/')}/.well-known/openid-configuration"
    status, payload = _call(url)
    if status != 200:
        raise UpstreamError("unavailable", f"discovery answered HTTP {status}")
    document = _json_object(payload, "discovery")
    if not _same_issuer(document.get("issuer", ""), issuer):
        raise UpstreamError("unavailable", f"discovery names issuer {str(document.get('issuer'))[:100]!r}")
    try:
        metadata = Metadata(
            issuer=str(document["issuer"]),
            authorization_endpoint=check_url(document["authorization_endpoint"]),
            token_endpoint=check_url(document["token_endpoint"]),
            jwks_uri=check_url(document["jwks_uri"]),
            userinfo_endpoint=check_url(document["userinfo_endpoint"]) if document.get("userinfo_endpoint") else "",
            end_session_endpoint=str(document.get("end_session_endpoint") or ""),
        )
    except KeyError as exc:
        raise UpstreamError("unavailable", f"discovery lacks {exc}") from None
    with _lock:
        _metadata[issuer] = (now + METADATA_SECONDS, metadata)
    return metadata


def _fetch_keys(metadata: Metadata) -> _KeySet:
    """Fetch the JWKS and keep the signing keys dgov can verify with (others are skipped)."""
    status, payload = _call(metadata.jwks_uri)
    if status != 200:
        raise UpstreamError("unavailable", f"JWKS answered HTTP {status}")
    document = _json_object(payload, "JWKS")
    found: list[jose.PublicJwk] = []
    for item in document.get("keys") or []:
        if not isinstance(item, dict) or item.get("use", "sig") != "sig":
            continue
        try:
            key = jose.PublicJwk.from_dict(item)
        except jose.JoseError:
            continue  # a key type dgov does not verify with (e.g. OKP): not ours to use
        if key.alg in ALGORITHMS:
            found.append(key)
    keyset = _KeySet(time.monotonic(), found)
    with _lock:
        _keysets[metadata.issuer] = keyset
    return keyset


def published_keys(metadata: Metadata) -> list[jose.PublicJwk]:
    """The upstream's usable verification keys, fetched now."""
    return list(_fetch_keys(metadata).keys)


def _choose(keyset: _KeySet, kid: str, alg: str) -> jose.PublicJwk | None:
    """The key named ``kid`` (or, without a kid, the only key of ``alg``)."""
    if kid:
        return next((k for k in keyset.keys if k.kid == kid), None)
    of_alg = [k for k in keyset.keys if k.alg == alg]
    return of_alg[0] if len(of_alg) == 1 else None


def signing_key(metadata: Metadata, kid: str, alg: str) -> jose.PublicJwk | None:
    """The upstream's verification key ``kid``: from the cache, else from a fresh JWKS (rotation)."""
    now = time.monotonic()
    with _lock:
        keyset = _keysets.get(metadata.issuer)
    if keyset is None or now - keyset.fetched_at > JWKS_SECONDS:
        keyset = _fetch_keys(metadata)
    key = _choose(keyset, kid, alg)
    if key is None and now - keyset.fetched_at >= JWKS_REFETCH_SECONDS:
        key = _choose(_fetch_keys(metadata), kid, alg)
    return key


# --- the code flow ----------------------------------------------------------------------------------------


def authorization_url(
    metadata: Metadata, *, client_id: str, redirect_uri: str, scopes, state: str, nonce: str, challenge: str
) -> str:
    """The authorization request (code flow, PKCE S256) the browser is sent to."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    separator = "&" if urlsplit(metadata.authorization_endpoint).query else "?"
    return f"{metadata.authorization_endpoint}{separator}{urlencode(params)}"


def _basic(client_id: str, secret: str) -> str:
    """HTTP Basic credentials of a client, each part form-urlencoded first (RFC 6749 §2.3.1)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def exchange_code(
    metadata: Metadata, *, client_id: str, client_secret: str, code: str, redirect_uri: str, verifier: str
) -> dict[str, Any]:
    """Redeem the code at the token endpoint (``client_secret_basic``); return the token answer."""
    status, payload = _call(
        metadata.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        headers={"Authorization": _basic(client_id, client_secret)},
    )
    if status != 200:
        try:
            error = str(_json_object(payload, "token error").get("error", ""))[:60]
        except UpstreamError:
            error = ""
        if status in (400, 401) and error:
            raise UpstreamError("token_refused", f"token endpoint: {error}")
        raise UpstreamError("unavailable", f"token endpoint answered HTTP {status}")
    answer = _json_object(payload, "token")
    if not isinstance(answer.get("id_token"), str):
        raise UpstreamError("bad_claims", "the token answer has no id_token (is openid among the scopes?)")
    return answer


def validate_id_token(
    metadata: Metadata, token: str, *, client_id: str, nonce: str, access_token: str = "", now: int | None = None
) -> dict[str, Any]:
    """The claims of a valid id_token from this upstream for this login, or UpstreamError (module docstring)."""
    try:
        header, _claims, _input, _signature = jose.split(token)
    except jose.JoseError as exc:
        raise UpstreamError("bad_signature", str(exc)) from None
    alg = str(header.get("alg", ""))
    if alg not in ALGORITHMS:
        raise UpstreamError("bad_signature", f"algorithm {alg[:20]!r} is not accepted")
    key = signing_key(metadata, str(header.get("kid", "")), alg)
    if key is None:
        raise UpstreamError("bad_signature", "no published key matches the token's kid")
    try:
        _header, claims = jose.verify(token, lambda _kid: key)
    except jose.JoseError as exc:
        raise UpstreamError("bad_signature", str(exc)) from None
    now = int(time.time()) if now is None else now
    if claims.get("iss") != metadata.issuer:
        raise UpstreamError("bad_claims", "iss is not the upstream's issuer")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise UpstreamError("bad_claims", "aud does not name this client")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise UpstreamError("bad_claims", "azp does not name this client")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or exp <= now - CLOCK_SKEW_SECONDS:
        raise UpstreamError("bad_claims", "the id_token has expired")
    if not isinstance(iat, int) or iat > now + CLOCK_SKEW_SECONDS:
        raise UpstreamError("bad_claims", "the id_token is issued in the future")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= 255:
        raise UpstreamError("bad_claims", "sub is missing or too long")
    if not nonce or claims.get("nonce") != nonce:
        raise UpstreamError("nonce_mismatch", "the id_token's nonce is not this login's")
    at_hash = claims.get("at_hash")
    if at_hash is not None and access_token and at_hash != jose.left_hash(alg, access_token):
        raise UpstreamError("bad_claims", "at_hash does not match the access token")
    return claims


def userinfo(metadata: Metadata, access_token: str, *, sub: str) -> dict[str, Any]:
    """The UserInfo claims (OIDC Core §5.3) for the id_token's ``sub``; UpstreamError otherwise."""
    if not metadata.userinfo_endpoint or not access_token:
        return {}
    status, payload = _call(metadata.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"})
    if status != 200:
        raise UpstreamError("unavailable", f"userinfo answered HTTP {status}")
    claims = _json_object(payload, "userinfo")
    if claims.get("sub") != sub:
        raise UpstreamError("userinfo_mismatch", "userinfo is about another subject")
    return claims
