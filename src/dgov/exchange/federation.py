"""Federation (级联) between dgov instances: peers, signed requests and answers, replay protection, mirrors.

Two dgov instances — a province and a city, a province and the national platform — exchange
catalogue entries and serve each other's data services the way X-Road security servers do: every
request between them is signed by the calling instance, every answer by the answering one, and
each side writes the exchange to its own exchange log. This module is the protocol; the exchange
operations built on it (catalogue, requests, data calls) are in :mod:`dgov.exchange.federation_exchange`.

Instances and peers
    Each instance has a *code* (``settings.FEDERATION_INSTANCE``, by default the province code
    ``DEMO_PROVINCE_CODE``) and an SM2 key of purpose ``federation`` (kernel key registry; the
    public keys are published at ``GET /api/v1/federation/keys``). A :class:`~dgov.exchange.models.Peer`
    is another instance: its code, base URL and **pinned** public keys. Only pinned keys are
    trusted; fetching them from the peer's ``/keys`` is trust on first use, so the fingerprints
    (:func:`fingerprint`) are meant to be compared out of band.

Signed request (format ``dgov-federation-v1``)
    Headers ``X-Dgov-Peer`` (the caller's code), ``X-Dgov-Key-Id``, ``X-Dgov-Timestamp`` (Unix
    seconds), ``X-Dgov-Nonce`` (16–64 of ``[A-Za-z0-9_-]``) and ``X-Dgov-Signature`` (base64 DER
    SM2 signature, SM3 digest, user id ``1234567812345678``) over the UTF-8 bytes of::

        "dgov-federation-v1" US caller US callee US METHOD US path US timestamp US nonce US hex(SM3(body))

    (US = U+001F; ``path`` is the part of the URL from ``/api/v1/federation/`` on, query included,
    so a reverse proxy may mount the API under a prefix). Naming the callee keeps a request signed
    for one peer from being replayed to another.

    The receiver (:func:`authenticate`) refuses, in this order: missing or malformed headers
    (401 ``signature_missing``); an unknown caller, a key that is not pinned, or a signature that
    does not verify — all three as 401 ``signature_invalid``, so an unauthenticated caller learns
    nothing about which peers exist; a suspended peer (403 ``peer_suspended``); a timestamp more
    than ``FEDERATION_CLOCK_SKEW`` seconds (default 300) away from the receiver's clock (401
    ``timestamp_out_of_window``); a nonce the peer has used before (401 ``nonce_replayed``).
    Every refusal is written to the receiver's exchange log.

Signed answer (format ``dgov-federation-answer-v1``)
    Every answer of the federation API, refusals included, carries ``X-Dgov-Peer`` (the
    answerer), ``X-Dgov-Key-Id``, ``X-Dgov-Timestamp`` and ``X-Dgov-Signature`` over::

        "dgov-federation-answer-v1" US answerer US requester US status US nonce US timestamp US hex(SM3(body))

    where ``nonce`` is the request's: an answer cannot be replayed for another request. The caller
    (:func:`call_peer`) refuses an answer whose signature, key, answerer or timestamp does not check
    out (``peer_answer_invalid``).

Mirrors
    A department of a peer that files a share request here is represented by a local organization
    with code ``<peer code>:<department code>`` and kind ``PEER`` (:func:`ensure_mirror`), on the
    peer's configured division. It is the consumer of the request and of the grant, so the
    provider's inbox, grants, gateway checks and logs work unchanged. A peer can act only through
    mirrors under its own code; a mirror is refused when the department's USCC already belongs to a
    local organization (the same legal entity must not have two identities here).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import re
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.exchange import log
from dgov.exchange.models import ExchangeLogEntry, Peer, PeerNonce
from dgov.kernel import outbound
from dgov.kernel.crypto import SM2PublicKey, sm3
from dgov.kernel.models import Division, Organization
from dgov.kernel.services import audit
from dgov.kernel.services.audit import canonical_json

__all__ = [
    "ANSWER_FORMAT",
    "FORMAT",
    "KEY_PURPOSE",
    "MIRROR_KIND",
    "IncomingCall",
    "PeerAnswer",
    "PeerError",
    "Refused",
    "add_peer",
    "answer",
    "answer_bytes",
    "authenticate",
    "call_peer",
    "clock_window",
    "ensure_mirror",
    "fetch_keys",
    "find_mirror",
    "find_peer",
    "fingerprint",
    "instance_code",
    "keys_document",
    "mirror_code",
    "parse_keys",
    "public_keys",
    "purge_nonces",
    "request_bytes",
    "resume",
    "set_keys",
    "suspend",
]

FORMAT = "dgov-federation-v1"
ANSWER_FORMAT = "dgov-federation-answer-v1"
KEYS_FORMAT = "dgov-federation-keys-v1"
KEY_PURPOSE = "federation"
SIGNATURE_UID = "1234567812345678"
SEP = "\x1f"
API_PREFIX = "/api/v1/federation/"
MIRROR_KIND = "PEER"
ANSWER_CAP = 4 * 1024 * 1024
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,15}$")
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
KID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
H_PEER, H_KID, H_TIME, H_NONCE, H_SIG = (
    "X-Dgov-Peer",
    "X-Dgov-Key-Id",
    "X-Dgov-Timestamp",
    "X-Dgov-Nonce",
    "X-Dgov-Signature",
)


# --- Settings and formats -------------------------------------------------------------------------


def instance_code() -> str:
    """This instance's federation code (``FEDERATION_INSTANCE``, by default the province code)."""
    code = getattr(settings, "FEDERATION_INSTANCE", "") or getattr(settings, "DEMO_PROVINCE_CODE", "")
    return str(code)


def clock_window() -> int:
    """How far (seconds) a signed timestamp may be from this clock (``FEDERATION_CLOCK_SKEW``, default 300)."""
    return int(getattr(settings, "FEDERATION_CLOCK_SKEW", 300))


def _digest(body: bytes) -> str:
    """The hex SM3 digest of a body."""
    return sm3(body or b"").hex()


def request_bytes(caller: str, callee: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The bytes a federation request's SM2 signature covers (format ``dgov-federation-v1``)."""
    parts = (FORMAT, caller, callee, method.upper(), path, timestamp, nonce, _digest(body))
    return SEP.join(parts).encode("utf-8")


def answer_bytes(answerer: str, requester: str, status: int, nonce: str, timestamp: str, body: bytes) -> bytes:
    """The bytes a federation answer's SM2 signature covers (format ``dgov-federation-answer-v1``)."""
    parts = (ANSWER_FORMAT, answerer, requester, str(int(status)), nonce, timestamp, _digest(body))
    return SEP.join(parts).encode("utf-8")


def _verify(keys: list[dict], kid: str, signature_b64: str, data: bytes) -> bool:
    """Whether ``signature_b64`` verifies under the pinned key ``kid`` (False for anything malformed)."""
    pem = next((k.get("public_key") for k in keys or () if isinstance(k, dict) and k.get("kid") == kid), None)
    if not pem:
        return False
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        return bool(SM2PublicKey.from_pem(pem).verify(signature, data))
    except Exception:  # noqa: BLE001 - a malformed key or signature is simply not valid
        return False


def _within_window(timestamp: str, now: float | None = None) -> bool:
    """Whether a Unix-seconds timestamp lies within the clock window."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        return False
    now = time.time() if now is None else now
    return abs(int(timestamp) - now) <= clock_window()


# --- Own keys -------------------------------------------------------------------------------------


def fingerprint(public_key_pem: str | bytes) -> str:
    """The SM3 fingerprint of a public key (hex of its DER, in groups of four) for out-of-band comparison."""
    digest = sm3(SM2PublicKey.from_pem(public_key_pem).to_der()).hex()
    return ":".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def public_keys() -> list[dict]:
    """This instance's federation keys peers may pin: kid, status, algorithm and PEM; never revoked ones."""
    from dgov.kernel.services import keys

    published = keys.published_keys(KEY_PURPOSE, uid=SIGNATURE_UID)
    return [{**key, "fingerprint": fingerprint(key["public_key"])} for key in published]


def keys_document() -> dict:
    """What ``GET /api/v1/federation/keys`` publishes: the instance code and its federation keys."""
    return {"format": KEYS_FORMAT, "instance": instance_code(), "keys": public_keys()}


def _sign(data: bytes) -> tuple[str, str]:
    """``(kid, base64 signature)`` of data with this instance's federation key."""
    from dgov.kernel.services import keys

    kid, signature = keys.sign(KEY_PURPOSE, data)
    return kid, base64.b64encode(signature).decode("ascii")


# --- Peers ----------------------------------------------------------------------------------------


def check_base_url(url: str) -> str:
    """A peer's base URL: https (http only for loopback hosts or outside production), no user, query or fragment."""
    url = (url or "").strip().rstrip("/")
    problem = outbound.url_problem(url, ("scheme", "userinfo", "query", "fragment", "insecure"))
    if problem is None:
        return url
    if problem == "scheme":
        message = _("对端地址须为 https 网址")
    elif problem == "insecure":
        message = _("生产环境中对端地址须使用 https")
    else:
        message = _("对端地址不能含用户名、查询参数或片段")
    raise ValidationError({"base_url": [message]}, code="bad_url")


def _is_sm2_pem(pem: str) -> bool:
    """Whether text is a PEM SM2 public key."""
    try:
        SM2PublicKey.from_pem(pem)
    except Exception:  # noqa: BLE001 - anything unparsable is not a key
        return False
    return True


def parse_keys(document) -> list[dict]:
    """Pinnable keys ``[{"kid", "public_key"}]`` from a keys document or list; ValidationError when none is valid."""
    entries = document.get("keys") if isinstance(document, dict) else document
    out = []
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or entry.get("status") == "revoked":
            continue
        kid, pem = str(entry.get("kid", "")), entry.get("public_key", "")
        if not KID_RE.match(kid) or not isinstance(pem, str):
            continue
        if _is_sm2_pem(pem):
            out.append({"kid": kid, "public_key": pem})
    if not out:
        raise ValidationError({"keys": [_("没有可用的 SM2 公钥")]}, code="no_keys")
    return out


_OPENER = outbound.direct_opener()  # no proxy, no redirects


def _timeout() -> float:
    """Seconds one call to a peer may take (``FEDERATION_TIMEOUT``, default 10)."""
    return float(getattr(settings, "FEDERATION_TIMEOUT", 10))


def fetch_keys(base_url: str) -> dict:
    """A peer's published keys document (``GET <base_url>/api/v1/federation/keys``; trust on first use)."""
    url = check_base_url(base_url) + API_PREFIX + "keys"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
    try:
        with _OPENER.open(request, timeout=_timeout()) as response:
            document = json.loads(response.read(ANSWER_CAP))
    except (OSError, ValueError) as exc:
        raise ValidationError({"keys": [_("无法获取对端公钥")]}, code="peer_unavailable") from exc
    if not isinstance(document, dict) or document.get("format") != KEYS_FORMAT:
        raise ValidationError({"keys": [_("对端公钥文档格式不正确")]}, code="bad_keys")
    return document


def find_peer(code: str) -> Peer | None:
    """The peer with this code, or None."""
    return Peer.objects.select_related("division").filter(code=str(code or "")[:16]).first()


def add_peer(*, code: str, name: str, base_url: str, division: Division | str, keys, actor) -> Peer:
    """Register a peer with its pinned keys and the division its mirror departments sit on; audited."""
    code, name = (code or "").strip(), (name or "").strip()
    errors: dict[str, list[str]] = {}
    if not CODE_RE.match(code):
        errors["code"] = [_("对端编码须为 1–16 位字母、数字或连字符")]
    elif code == instance_code():
        errors["code"] = [_("对端编码不能与本平台的级联编码相同")]
    elif Peer.objects.filter(code=code).exists():
        errors["code"] = [_("对端编码已登记")]
    if not name:
        errors["name"] = [_("须填写对端名称")]
    if not isinstance(division, Division):
        division = Division.objects.filter(code=str(division or "").strip()).first()
    if division is None or division.level > Division.Level.COUNTY or not division.is_current or division.placeholder:
        errors["division"] = [_("镜像部门所在区划须为现行的省、市、县级区划")]
    try:
        base_url = check_base_url(base_url)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        pinned = parse_keys(keys)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors, code="invalid_peer")
    now = timezone.now()
    with transaction.atomic():
        peer = Peer.objects.create(
            code=code,
            name=name,
            base_url=base_url,
            keys=pinned,
            division=division,
            created_by=_label(actor),
            created_at=now,
            updated_at=now,
        )
        audit.record(
            "exchange.peer.add",
            actor=actor,
            target=peer,
            detail={"code": code, "base_url": base_url, "division": division.code, "kids": [k["kid"] for k in pinned]},
        )
    return peer


def set_keys(peer: Peer, keys, *, actor) -> Peer:
    """Replace a peer's pinned keys (after its key rotation); audited with the kids before and after."""
    pinned = parse_keys(keys)
    with transaction.atomic():
        locked = Peer.objects.select_for_update().get(pk=peer.pk)
        before = [k.get("kid") for k in locked.keys]
        locked.keys, locked.updated_at = pinned, timezone.now()
        locked.save(update_fields=["keys", "updated_at"])
        audit.record(
            "exchange.peer.keys",
            actor=actor,
            target=locked,
            detail={"from": before, "to": [k["kid"] for k in pinned]},
        )
    peer.refresh_from_db()
    return peer


def _set_status(peer: Peer, *, actor, status: str, reason: str, action: str) -> Peer:
    """Change a peer's status (no-op when unchanged); audited."""
    with transaction.atomic():
        locked = Peer.objects.select_for_update().get(pk=peer.pk)
        if locked.status != status:
            locked.status, locked.status_reason, locked.updated_at = status, reason[:300], timezone.now()
            locked.save(update_fields=["status", "status_reason", "updated_at"])
            audit.record(action, actor=actor, target=locked, detail={"reason": reason[:300]})
    peer.refresh_from_db()
    return peer


def suspend(peer: Peer, *, actor, reason: str) -> Peer:
    """Stop exchanging with a peer: its requests are refused (403) and none are sent to it; a reason is required."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("暂停须写明原因")]}, code="reason_required")
    return _set_status(peer, actor=actor, status=Peer.Status.SUSPENDED, reason=reason, action="exchange.peer.suspend")


def resume(peer: Peer, *, actor) -> Peer:
    """Exchange with a suspended peer again."""
    return _set_status(peer, actor=actor, status=Peer.Status.ACTIVE, reason="", action="exchange.peer.resume")


def _label(actor) -> str:
    """A short name of the actor for the peer row."""
    if hasattr(actor, "get_username"):
        return actor.get_username()[:150]
    return str(actor or "system")[:150]


# --- Calling a peer --------------------------------------------------------------------------------


class PeerError(Exception):
    """A call to a peer that did not yield a verified answer: ``peer_unavailable`` or ``peer_answer_invalid``."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass
class PeerAnswer:
    """A verified answer of a peer: HTTP status, parsed JSON (None when not JSON) and the request's nonce."""

    status: int
    data: dict | None
    nonce: str

    @property
    def code(self) -> str:
        """The problem's machine code (``code`` member) of a refusal, or ''."""
        value = (self.data or {}).get("code") if isinstance(self.data, dict) else ""
        return value if isinstance(value, str) and re.fullmatch(r"[a-z_]{1,32}", value) else ""


def call_peer(peer: Peer, method: str, path: str, *, payload: dict | None = None) -> PeerAnswer:
    """Send a signed request to a peer and return its verified answer; PeerError when there is none.

    ``path`` starts with ``/api/v1/federation/`` (query included). The answer must be signed by a
    key pinned for the peer, over this request's nonce, within the clock window.
    """
    if not path.startswith(API_PREFIX):
        raise ValueError("federation paths start with " + API_PREFIX)
    method = method.upper()
    body = canonical_json(payload).encode("utf-8") if payload is not None else b""
    caller, nonce, timestamp = instance_code(), secrets.token_hex(16), str(int(time.time()))
    kid, signature = _sign(request_bytes(caller, peer.code, method, path, timestamp, nonce, body))
    headers = {
        H_PEER: caller,
        H_KID: kid,
        H_TIME: timestamp,
        H_NONCE: nonce,
        H_SIG: signature,
        "Accept": "application/json",
    }
    if payload is not None:
        headers["Content-Type"] = "application/json; charset=utf-8"
    url = peer.base_url.rstrip("/") + path
    if urlsplit(url).scheme not in ("http", "https"):
        raise PeerError("peer_unavailable")
    request = urllib.request.Request(url, data=body if payload is not None else None, headers=headers, method=method)  # noqa: S310
    try:
        with _OPENER.open(request, timeout=_timeout()) as response:
            status, answer_headers, content = response.status, response.headers, response.read(ANSWER_CAP + 1)
    except urllib.error.HTTPError as exc:
        status, answer_headers = exc.code, exc.headers
        try:
            content = exc.read(ANSWER_CAP + 1)
        except OSError:
            content = b""
        finally:
            exc.close()
    except (OSError, ValueError):
        raise PeerError("peer_unavailable") from None
    if len(content) > ANSWER_CAP:
        raise PeerError("peer_answer_invalid")
    signed = answer_bytes(
        str(answer_headers.get(H_PEER, "")),
        caller,
        status,
        nonce,
        str(answer_headers.get(H_TIME, "")),
        content,
    )
    if (
        answer_headers.get(H_PEER) != peer.code
        or not _within_window(str(answer_headers.get(H_TIME, "")))
        or not _verify(peer.keys, str(answer_headers.get(H_KID, "")), str(answer_headers.get(H_SIG, "")), signed)
    ):
        raise PeerError("peer_answer_invalid")
    data = None
    with contextlib.suppress(ValueError):
        data = json.loads(content) if content else None
    return PeerAnswer(status, data if isinstance(data, dict) else None, nonce)


# --- Answering a peer -------------------------------------------------------------------------------


class Refused(Exception):
    """A refused federation request (already logged): HTTP status, machine code, safe message."""

    def __init__(self, status: int, code: str, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, list(errors or ())


@dataclass
class IncomingCall:
    """An authenticated federation request: the peer, its nonce and the operation asked for."""

    peer: Peer
    nonce: str
    operation: str

    @property
    def client_id(self) -> str:
        """How the peer itself appears as the client in this instance's logs."""
        return f"peer:{self.peer.code}"


def _header(request: HttpRequest, name: str) -> str:
    """A request header's value (at most 512 characters), or ''."""
    return str(request.headers.get(name, "") or "")[:512]


def _signed_path(request: HttpRequest) -> str:
    """The path a caller signed: from ``/api/v1/federation/`` on, query included."""
    full = request.get_full_path()
    at = full.find(API_PREFIX)
    return full[at:] if at >= 0 else full


def log_federation(
    operation: str, *, result: str, code: str = "", status: int = 200, peer_code: str = "", **fields
) -> ExchangeLogEntry:
    """Append a federation exchange to this instance's exchange log (``client`` ``peer:<code>`` unless given)."""
    fields.setdefault("client_id", f"peer:{peer_code}" if peer_code else "")
    return log.append(operation=operation, result=result, code=code, status=status, **fields)


def authenticate(request: HttpRequest, operation: str, *, now: float | None = None) -> IncomingCall:
    """Check a signed request (headers, peer, key, signature, status, clock, nonce); log and raise refusals."""
    claimed = _header(request, H_PEER)
    nonce = _header(request, H_NONCE)
    timestamp = _header(request, H_TIME)
    kid, signature = _header(request, H_KID), _header(request, H_SIG)

    def refuse(status: int, code: str, message: str) -> Refused:
        log_federation(
            operation,
            result="denied",
            code=code,
            status=status,
            peer_code=claimed,
            consumer_code=claimed,
            request_id=nonce if NONCE_RE.match(nonce) else "",
        )
        return Refused(status, code, message)

    if not (claimed and kid and signature and timestamp and NONCE_RE.match(nonce)):
        raise refuse(401, "signature_missing", _("级联请求缺少签名信息"))
    peer = find_peer(claimed) if CODE_RE.match(claimed) else None
    signed = request_bytes(
        claimed, instance_code(), request.method or "", _signed_path(request), timestamp, nonce, request.body
    )
    if peer is None or not _verify(peer.keys, kid, signature, signed):
        raise refuse(401, "signature_invalid", _("级联请求签名无效"))
    if peer.status != Peer.Status.ACTIVE:
        raise refuse(403, "peer_suspended", _("本平台已暂停与该对端的级联交换"))
    if not _within_window(timestamp, now):
        raise refuse(401, "timestamp_out_of_window", _("级联请求时间戳超出允许范围，请校准时钟"))
    if not remember_nonce(peer, nonce):
        raise refuse(401, "nonce_replayed", _("级联请求已处理过（重放）"))
    return IncomingCall(peer=peer, nonce=nonce, operation=operation)


def answer(response: HttpResponse, request: HttpRequest) -> HttpResponse:
    """Sign an answer of the federation API for the request's caller and nonce (refusals too)."""
    requester = _header(request, H_PEER)
    nonce = _header(request, H_NONCE)
    timestamp = str(int(time.time()))
    kid, signature = _sign(
        answer_bytes(instance_code(), requester, response.status_code, nonce, timestamp, response.content)
    )
    response[H_PEER] = instance_code()
    response[H_KID] = kid
    response[H_TIME] = timestamp
    response[H_SIG] = signature
    if NONCE_RE.match(nonce):
        response[H_NONCE] = nonce
    return response


# --- Replay protection ------------------------------------------------------------------------------


def remember_nonce(peer: Peer, nonce: str, now=None) -> bool:
    """Record a peer's nonce; False when the peer has used it before (a replay)."""
    try:
        with transaction.atomic():
            PeerNonce.objects.create(peer=peer, nonce=nonce, seen_at=now or timezone.now())
    except IntegrityError:
        return False
    return True


def purge_nonces(now=None) -> int:
    """Forget nonces older than twice the clock window (their timestamps are refused anyway); how many."""
    cutoff = (now or timezone.now()) - datetime.timedelta(seconds=2 * clock_window())
    deleted, _detail = PeerNonce.objects.filter(seen_at__lt=cutoff).delete()
    return deleted


# --- Mirrors ------------------------------------------------------------------------------------------


class MirrorError(Exception):
    """A peer's department that cannot be mirrored here: ``mirror_invalid`` or ``mirror_conflict``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def mirror_code(peer: Peer, department_code: str) -> str:
    """The local code of a peer's department: ``<peer code>:<department code>``."""
    return f"{peer.code}:{department_code}"


def find_mirror(peer: Peer, department_code: str) -> Organization | None:
    """The active mirror of a peer's department, or None."""
    return Organization.objects.filter(
        code=mirror_code(peer, str(department_code or "")), kind=MIRROR_KIND, is_active=True
    ).first()


def is_mirror(organization: Organization | None) -> bool:
    """Whether an organization represents a department of a peer."""
    return organization is not None and organization.kind == MIRROR_KIND


def ensure_mirror(peer: Peer, department: dict) -> Organization:
    """The mirror of a peer's department (``{"code", "name", "uscc"}``), made on first use; else MirrorError."""
    from dgov.kernel.services import organizations

    department = department if isinstance(department, dict) else {}
    code = str(department.get("code") or "").strip()
    name = str(department.get("name") or "").strip()[:128]
    uscc = str(department.get("uscc") or "").strip().upper()
    local_code = mirror_code(peer, code)
    if not code or not name or len(local_code) > 32 or not re.fullmatch(r"[A-Za-z0-9_.:-]+", code):
        raise MirrorError("mirror_invalid", _("对端部门信息不完整或编码过长"))
    existing = Organization.objects.filter(code=local_code).first()
    if existing is not None:
        if existing.kind != MIRROR_KIND or existing.uscc != uscc:
            raise MirrorError("mirror_conflict", _("对端部门与本平台已登记的组织冲突"))
        if not existing.is_active:
            raise MirrorError("mirror_conflict", _("对端部门在本平台的镜像已停用"))
        return existing
    if Organization.objects.filter(uscc=uscc).exists():
        raise MirrorError("mirror_conflict", _("对端部门与本平台已登记的组织冲突"))
    try:
        return organizations.create_organization(
            name,
            local_code,
            uscc,
            peer.division,
            actor=f"peer:{peer.code}",
            kind=MIRROR_KIND,
            duties=_("级联对端 %(peer)s 的部门在本平台的镜像") % {"peer": peer.code},
        )
    except ValidationError:
        raise MirrorError("mirror_invalid", _("对端部门信息不符合本平台的组织登记规则")) from None
    except IntegrityError:  # a concurrent first request made it
        mirror = find_mirror(peer, code)
        if mirror is None:
            raise MirrorError("mirror_conflict", _("对端部门与本平台已登记的组织冲突")) from None
        return mirror
