"""Trust lists and mutual recognition (互认) of e-licence issuers between dgov instances.

A licence issued by another dgov instance — another province, a city, the national instance —
verifies here when that instance is a federation peer (:class:`~dgov.exchange.models.Peer`, with
pinned SM2 keys) and its signed **trust list** names the issuer. No second key scheme: the list is
signed with the instance's federation key, the one ``GET /api/v1/federation/keys`` publishes and
peers pin (:func:`dgov.exchange.federation.keys_document`).

Publishing (``GET <site>/licences/trust-list.json``, public)
    The list (format ``dgov-trust-list-v1``) names every organization holding an active or retired
    :class:`~dgov.licenses.models.IssuerKey`::

        {"format": "dgov-trust-list-v1", "instance": "<federation code>", "site": "<SITE_URL>",
         "sequence": 84412345, "issued": "2026-…Z", "nextUpdate": "2026-…Z",
         "issuers": [{"id": "<site>/licences/issuers/<USCC>", "name": "…", "uscc": "…",
                      "jwks": {"keys": [...]},              # active and retired keys, never revoked
                      "licenceTypes": [{"code": "…", "name": "…"}],   # the types it has issued
                      "statusListPrefix": "<site>/licences/status/"}]}

    It is served as a JWS in the **flattened JSON serialization** (RFC 7515 §7.2.2,
    ``application/jose+json``): ``{"protected", "payload", "signature"}``, the protected header
    ``{"alg": "SM2", "kid": <federation kid>, "typ": "dgov-trust-list+json"}``, the signature the
    64-byte ``r || s`` of SM2 with SM3 and the default user id (the JOSE SM2 profile of
    :mod:`dgov.oidc.jose`). A JWS needs no canonical JSON: the signed bytes are the ones served.
    ``sequence`` is the issue time in seconds since 2024-01-01T00:00:00Z, so it grows with every
    list (and fits a 32-bit column until 2092); ``nextUpdate`` is ``issued`` +
    ``LICENCE_TRUST_LIST_VALIDITY_SECONDS`` (default one day): the list is not to be relied on later.

Importing (:func:`sync_peer`; the worker job :func:`sync_due`, every ``LICENCE_TRUST_SYNC_SECONDS``;
``dgov licences trust sync [--peer CODE]``)
    For each active peer the list is fetched from ``<peer base URL>/licences/trust-list.json``
    (``dgov.kernel.outbound`` rules, no proxy, no redirects, size and time limits), its signature
    checked against the peer's **pinned** keys, its ``instance`` must be the peer's code, it must not
    be dated in the future nor past its ``nextUpdate``, and its ``sequence`` must not be lower than
    the one last accepted (rollback). Then, in one transaction, the peer's
    :class:`~dgov.licenses.models.TrustedIssuer` rows are replaced: new issuers added, changed ones
    updated, issuers no longer listed marked ``removed`` (their rows keep the sequence, so an older
    list cannot bring them back). Each change is audited (``licenses.trust.add|update|remove``); a
    refused list is audited as ``licenses.trust.refuse`` (``denied``).

    An entry is refused — and reported — when it is malformed, its id is not
    ``<list site>/licences/issuers/<its USCC>``, it has no usable key, or it would **shadow** an
    identity held here: an issuer id of this instance, the USCC of an organization registered here
    (other than this peer's own mirror departments), or an issuer or USCC another peer already
    provides.

Resolving (:class:`PeerIssuers`, named in ``LICENCE_TRUST_RESOLVERS``)
    The verification asks it after the local issuers: an imported issuer is trusted while its row is
    active, its list has not passed ``nextUpdate`` and its peer is not suspended; keys come from its
    JWK Set. Status comes from the issuer's published status-list credentials, fetched over HTTP on
    demand — only from ``<issuer's site>/licences/status/<n>`` — verified with the issuer's keys and
    cached in :class:`~dgov.licenses.models.RemoteStatusList` for the list's ``ttl``, at most
    ``LICENCE_REMOTE_STATUS_MAX_AGE`` seconds. When a list cannot be fetched and no fresh copy is
    cached, the status is unknown (never valid); a failed fetch is not retried for
    ``LICENCE_REMOTE_STATUS_RETRY_SECONDS``. The verification names the peer through which the
    issuer is recognized.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy

from dgov.exchange import federation
from dgov.exchange.models import Peer
from dgov.kernel import outbound
from dgov.kernel.crypto import SM2PublicKey, sm2_signature_to_raw
from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.kernel.validators import is_valid_uscc
from dgov.licenses import credentials, verification
from dgov.licenses.models import IssuerKey, Licence, LicenceType, RemoteStatusList, TrustedIssuer
from dgov.oidc import jose

__all__ = [
    "FORMAT",
    "PATH",
    "TYP",
    "PeerIssuers",
    "SyncReport",
    "TrustListError",
    "build_payload",
    "clear_cache",
    "own_issuers",
    "peer_overview",
    "sign_document",
    "signed_trust_list",
    "sync_due",
    "sync_peer",
    "verify_document",
]

logger = logging.getLogger("dgov.licenses.trust")
_ = gettext_lazy

FORMAT = "dgov-trust-list-v1"
TYP = "dgov-trust-list+json"
PATH = "/licences/trust-list.json"
MEDIA_TYPE = "application/jose+json"
SEQUENCE_EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
MAX_SEQUENCE = 2**31 - 1
MAX_LIST_BYTES = 2 * 1024 * 1024
MAX_ISSUERS = 5000
MAX_KEYS = 20
MAX_TYPES = 500
MAX_KID = 80  # IssuerKey.kid
_FIELDS = ("protected", "payload", "signature")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")
_URL_CHECKS = ("empty", "length", "whitespace", "fragment", "userinfo", "query", "port", "scheme", "insecure")

# --- settings -------------------------------------------------------------------------------------


def sync_interval() -> float:
    """Seconds between two syncs of a peer's trust list (``LICENCE_TRUST_SYNC_SECONDS``, default 300)."""
    return float(getattr(settings, "LICENCE_TRUST_SYNC_SECONDS", 300))


def list_validity() -> datetime.timedelta:
    """How long a published trust list may be relied on (``LICENCE_TRUST_LIST_VALIDITY_SECONDS``, default 1 day)."""
    return datetime.timedelta(seconds=float(getattr(settings, "LICENCE_TRUST_LIST_VALIDITY_SECONDS", 86400)))


def fetch_timeout() -> float:
    """Seconds one fetch of a trust list or status list may take in all (``LICENCE_TRUST_FETCH_TIMEOUT``, default 5)."""
    return float(getattr(settings, "LICENCE_TRUST_FETCH_TIMEOUT", 5))


def status_max_age() -> float:
    """The longest a fetched remote status list is used without asking again (``LICENCE_REMOTE_STATUS_MAX_AGE``)."""
    return float(getattr(settings, "LICENCE_REMOTE_STATUS_MAX_AGE", 3600))


def status_retry_seconds() -> float:
    """Seconds a status list that failed to fetch is not tried again (``LICENCE_REMOTE_STATUS_RETRY_SECONDS``)."""
    return float(getattr(settings, "LICENCE_REMOTE_STATUS_RETRY_SECONDS", 30))


# The verification's dateTime helpers: UTC text out (seconds, "Z"), zoned instants in.
_utc_text = verification._utc_text
_instant = verification._instant


def sequence_of(issued: datetime.datetime) -> int:
    """The sequence number of a list issued at ``issued``: whole seconds since 2024-01-01T00:00:00Z."""
    return max(0, int((issued - SEQUENCE_EPOCH).total_seconds()))


# --- publishing ------------------------------------------------------------------------------------


def own_issuers() -> list[dict[str, Any]]:
    """This instance's issuers for its trust list: organizations with an active or retired key, by USCC."""
    live = (IssuerKey.Status.ACTIVE, IssuerKey.Status.RETIRED)
    key_rows = (
        IssuerKey.objects.filter(status__in=live)
        .order_by("organization_id", "-created_at", "-id")
        .values_list("organization_id", "kid", "alg", "public_jwk")
    )
    jwks: dict[int, list[dict]] = {}
    for organization_id, kid, alg, public_jwk in key_rows:
        jwks.setdefault(organization_id, []).append({**public_jwk, "kid": kid, "alg": alg})
    if not jwks:
        return []
    issued_types: dict[int, set[int]] = {}
    pairs = Licence.objects.filter(issuer_id__in=list(jwks)).order_by().values_list("issuer_id", "licence_type_id")
    for issuer_id, type_id in pairs.distinct():
        issued_types.setdefault(issuer_id, set()).add(type_id)
    names = dict(
        (pk, (code, name))
        for pk, code, name in LicenceType.objects.filter(
            pk__in={pk for ids in issued_types.values() for pk in ids}
        ).values_list("pk", "code", "name")
    )
    prefix = credentials.site_url() + verification.STATUS_PATH
    entries = []
    for organization in Organization.objects.filter(pk__in=list(jwks)).order_by("uscc"):
        types = sorted(names[pk] for pk in issued_types.get(organization.pk, ()) if pk in names)
        entries.append(
            {
                "id": credentials.issuer_url(organization),
                "name": organization.name,
                "uscc": organization.uscc,
                "jwks": {"keys": jwks[organization.pk]},
                "licenceTypes": [{"code": code, "name": name} for code, name in types],
                "statusListPrefix": prefix,
            }
        )
    return entries


def build_payload(
    *,
    instance: str,
    site: str,
    issuers: Sequence[dict[str, Any]],
    issued: datetime.datetime,
    next_update: datetime.datetime,
) -> dict[str, Any]:
    """The trust-list document of an instance (unsigned)."""
    return {
        "format": FORMAT,
        "instance": instance,
        "site": site,
        "sequence": sequence_of(issued),
        "issued": _utc_text(issued),
        "nextUpdate": _utc_text(next_update),
        "issuers": list(issuers),
    }


def sign_document(payload: dict[str, Any], kid: str, sign: Callable[[bytes], bytes]) -> dict[str, str]:
    """``payload`` as a flattened JWS JSON object, signed by ``sign`` (a DER SM2 signature of the signing input)."""
    header = {"alg": "SM2", "kid": kid, "typ": TYP}
    protected = jose.b64url_encode(json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    body = jose.b64url_encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    signature = sm2_signature_to_raw(sign(f"{protected}.{body}".encode("ascii")))
    return {"protected": protected, "payload": body, "signature": jose.b64url_encode(signature)}


def signed_trust_list(now: datetime.datetime | None = None) -> dict[str, str]:
    """This instance's trust list, signed with its federation key (what ``/licences/trust-list.json`` serves)."""
    from dgov.kernel.services import keys as kernel_keys

    now = (now or timezone.now()).replace(microsecond=0)
    payload = build_payload(
        instance=federation.instance_code(),
        site=credentials.site_url(),
        issuers=own_issuers(),
        issued=now,
        next_update=now + list_validity(),
    )
    kid, key = kernel_keys.signing_key(federation.KEY_PURPOSE)
    return sign_document(payload, kid, key.sign)


# --- checking a peer's list -------------------------------------------------------------------------


class TrustListError(Exception):
    """A trust list that is not accepted: a stable ``code`` (``signature_invalid``, ``rollback`` …)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


LIST_ERRORS = {
    "peer_suspended": _("已暂停与该级联对端的交换，不同步其信任列表"),
    "unavailable": _("无法获取对端的信任列表"),
    "too_large": _("对端的信任列表过大"),
    "malformed": _("信任列表格式不正确"),
    "signature_invalid": _("信任列表的签名无效（不是对端已固定的公钥签发的）"),
    "wrong_instance": _("信任列表不是该对端平台发布的"),
    "future": _("信任列表的签发时间晚于当前时间"),
    "expired": _("信任列表已过期（已过其 nextUpdate）"),
    "rollback": _("信任列表的版本低于已接受的版本（疑为回滚攻击）"),
}

ENTRY_ERRORS = {
    "malformed": _("条目格式不正确"),
    "bad_id": _("签发者标识与对端网址或统一社会信用代码不符"),
    "bad_status_prefix": _("状态列表地址不在签发者所在平台"),
    "no_keys": _("没有可用的签名公钥"),
    "local_issuer": _("与本平台的签发机构标识相同，不得覆盖本平台机构"),
    "local_uscc": _("统一社会信用代码属于本平台已登记的组织，不得覆盖"),
    "other_peer": _("该签发机构已由其他对端平台提供"),
    "duplicate": _("在信任列表中重复出现"),
}


def list_error_text(code: str) -> str:
    """The reason a trust list was refused, in the active language."""
    return str(LIST_ERRORS.get(code, _("同步信任列表失败")))


def entry_error_text(code: str) -> str:
    """The reason an entry of a trust list was refused, in the active language."""
    return str(ENTRY_ERRORS.get(code, _("条目未被接受")))


def _pinned_key(peer: Peer, kid: str) -> jose.PublicJwk | None:
    """The peer's pinned SM2 key ``kid`` as a JOSE verification key, or None."""
    pem = next((k.get("public_key") for k in peer.keys or () if isinstance(k, dict) and k.get("kid") == kid), None)
    if not isinstance(pem, str):
        return None
    try:
        return jose.PublicJwk(kid, "SM2", SM2PublicKey.from_pem(pem))
    except Exception:  # noqa: BLE001 - an unusable pinned key verifies nothing
        return None


def verify_document(
    document: bytes | str | dict, peer: Peer, *, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """A peer's trust list payload once its form, signature, instance and dates check out; else TrustListError."""
    now = now or timezone.now()
    if isinstance(document, bytes | str):
        if len(document) > MAX_LIST_BYTES:
            raise TrustListError("too_large")
        try:
            document = json.loads(document)
        except (ValueError, RecursionError):
            raise TrustListError("malformed") from None
    if not isinstance(document, dict) or set(document) != set(_FIELDS):
        raise TrustListError("malformed")
    parts = [document[name] for name in _FIELDS]
    if not all(isinstance(part, str) and _B64URL.match(part) for part in parts):
        raise TrustListError("malformed")
    protected, body, signature_text = parts
    try:
        header = json.loads(jose.b64url_decode(protected))
        signature = jose.b64url_decode(signature_text)
    except (jose.JoseError, ValueError, RecursionError):
        raise TrustListError("malformed") from None
    if not isinstance(header, dict) or header.get("alg") != "SM2" or header.get("typ") != TYP or header.get("crit"):
        raise TrustListError("malformed")
    kid = header.get("kid")
    key = _pinned_key(peer, kid) if isinstance(kid, str) and federation.KID_RE.match(kid) else None
    if key is None or not key.verify(f"{protected}.{body}".encode("ascii"), signature):
        raise TrustListError("signature_invalid")
    try:
        payload = json.loads(jose.b64url_decode(body))
    except (jose.JoseError, ValueError, RecursionError):
        raise TrustListError("malformed") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TrustListError("malformed")
    if payload.get("instance") != peer.code:
        raise TrustListError("wrong_instance")
    sequence, issued = payload.get("sequence"), _instant(payload.get("issued"))
    next_update = _instant(payload.get("nextUpdate"))
    site, issuers = payload.get("site"), payload.get("issuers")
    if (
        isinstance(sequence, bool)
        or not isinstance(sequence, int)
        or not 0 <= sequence <= MAX_SEQUENCE
        or issued is None
        or next_update is None
        or next_update <= issued
        or not isinstance(site, str)
        or outbound.url_problem(site, _URL_CHECKS, max_length=200)
        or site.endswith("/")
        or not isinstance(issuers, list)
        or len(issuers) > MAX_ISSUERS
    ):
        raise TrustListError("malformed")
    if issued > now + datetime.timedelta(seconds=federation.clock_window()):
        raise TrustListError("future")
    if next_update <= now:
        raise TrustListError("expired")
    return payload


# --- importing ---------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    """What one sync of a peer's trust list did: accepted or why not, issuers added/updated/removed, entries refused."""

    peer: str
    ok: bool = True
    code: str = ""
    sequence: int | None = None
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)

    def fail(self, code: str) -> SyncReport:
        """Mark the whole list refused."""
        self.ok, self.code = False, code
        return self

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON members (the CLI's output)."""
        return {
            "peer": self.peer,
            "ok": self.ok,
            "code": self.code,
            "sequence": self.sequence,
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
            "refused": self.refused,
        }

    @property
    def message(self) -> str:
        """One line for people, in the active language."""
        if not self.ok:
            return list_error_text(self.code)
        text = str(
            _("已同步信任列表（版本 %(seq)s）：新增 %(added)s，更新 %(updated)s，移除 %(removed)s，未变 %(same)s")
        )
        text %= {
            "seq": self.sequence,
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "same": self.unchanged,
        }
        if self.refused:
            text += str(_("；拒绝 %(n)s 个条目")) % {"n": len(self.refused)}
            reasons = [
                f"{entry['uscc'] or entry['issuer'] or '?'}：{entry_error_text(entry['reason'])}"
                for entry in self.refused
            ]
            text += "（" + "；".join(reasons[:5]) + ("……" if len(reasons) > 5 else "") + "）"
        return text


@dataclass
class _Entry:
    """An accepted entry of a trust list, cleaned."""

    issuer_id: str
    uscc: str
    name: str
    jwks: dict[str, list[dict]]
    licence_types: list[dict[str, str]]


def _clean_keys(jwks: Any) -> list[dict]:
    """The usable verification keys of a JWK Set (ES256 or SM2, a kid, loadable), at most ``MAX_KEYS``."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    usable: list[dict] = []
    for jwk in keys if isinstance(keys, list) else ():
        if len(usable) >= MAX_KEYS:
            break
        if not isinstance(jwk, dict) or jwk.get("alg") not in verification.ALGORITHMS:
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID or any(k["kid"] == kid for k in usable):
            continue
        try:
            public = jose.PublicJwk.from_dict(dict(jwk))
        except (jose.JoseError, ValueError, TypeError):
            continue
        if public.alg != jwk["alg"]:
            continue
        usable.append({**public.to_dict(), "kid": kid, "alg": jwk["alg"]})
    return usable


def _clean_types(types: Any) -> list[dict[str, str]]:
    """The licence types of an entry: ``[{code, name}]`` with short strings, at most ``MAX_TYPES``."""
    out = []
    for entry in types if isinstance(types, list) else ():
        if len(out) >= MAX_TYPES:
            break
        if isinstance(entry, dict) and isinstance(entry.get("code"), str) and isinstance(entry.get("name", ""), str):
            code, name = entry["code"].strip()[:32], entry.get("name", "").strip()[:100]
            if code:
                out.append({"code": code, "name": name})
    return out


def _clean_entry(raw: Any, site: str) -> tuple[_Entry | None, str, str, str]:
    """(entry or None, issuer id, USCC, refusal code) of one raw issuer entry."""
    if not isinstance(raw, dict):
        return None, "", "", "malformed"
    issuer_id = raw.get("id") if isinstance(raw.get("id"), str) else ""
    uscc = raw.get("uscc") if isinstance(raw.get("uscc"), str) else ""
    name = raw.get("name") if isinstance(raw.get("name"), str) else ""
    issuer_id, uscc, name = issuer_id[:300], uscc[:18], name.strip()[:200]
    if not issuer_id or not uscc or not name:
        return None, issuer_id, uscc, "malformed"
    if not is_valid_uscc(uscc) or issuer_id != f"{site}{verification.ISSUER_PATH}{uscc}":
        return None, issuer_id, uscc, "bad_id"
    if raw.get("statusListPrefix", f"{site}{verification.STATUS_PATH}") != f"{site}{verification.STATUS_PATH}":
        return None, issuer_id, uscc, "bad_status_prefix"
    keys = _clean_keys(raw.get("jwks"))
    if not keys:
        return None, issuer_id, uscc, "no_keys"
    return _Entry(issuer_id, uscc, name, {"keys": keys}, _clean_types(raw.get("licenceTypes"))), issuer_id, uscc, ""


def _local_prefix() -> str:
    """Issuer ids of this instance start with this."""
    return credentials.site_url() + verification.ISSUER_PATH


def _local_holders(peer: Peer, usccs: set[str]) -> set[str]:
    """Which of ``usccs`` belong to organizations registered here (other than this peer's own mirrors)."""
    held: set[str] = set()
    ordered = sorted(usccs)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        for uscc, kind, code in Organization.objects.filter(uscc__in=chunk).values_list("uscc", "kind", "code"):
            if not (kind == federation.MIRROR_KIND and code.startswith(f"{peer.code}:")):
                held.add(uscc)
    return held


def _shadows(entry: _Entry, *, local_usccs: set[str], others: dict[str, TrustedIssuer], other_usccs: set[str]) -> str:
    """The refusal code when ``entry`` would shadow an identity held here ('' when it does not)."""
    if entry.issuer_id.startswith(_local_prefix()):
        return "local_issuer"
    if entry.uscc in local_usccs:
        return "local_uscc"
    held = others.get(entry.issuer_id)
    if (held is not None and held.status == TrustedIssuer.Status.ACTIVE) or entry.uscc in other_usccs:
        return "other_peer"
    return ""


def _kids(jwks: Any) -> list[str]:
    """The key ids of a stored JWK Set."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    return [k.get("kid", "") for k in keys if isinstance(k, dict)] if isinstance(keys, list) else []


def _audit_detail(peer: Peer, row: TrustedIssuer, sequence: int, **extra) -> dict[str, Any]:
    """The audit detail of a change to an imported issuer."""
    return {
        "peer": peer.code,
        "issuer": row.issuer_id,
        "uscc": row.uscc,
        "name": row.name,
        "sequence": sequence,
        "kids": _kids(row.jwks),
        **extra,
    }


def _refuse_list(peer: Peer, code: str, *, actor, detail: dict | None = None) -> None:
    """Audit a refused list (a bad signature, a rollback …: what an attacker would cause)."""
    with transaction.atomic():
        audit.record(
            "licenses.trust.refuse",
            actor=actor,
            target=peer,
            outcome="denied",
            detail={"peer": peer.code, "code": code, **(detail or {})},
        )


def apply_payload(
    peer: Peer, payload: dict[str, Any], *, actor=None, now: datetime.datetime | None = None
) -> SyncReport:
    """Replace ``peer``'s imported issuers by a verified trust list, atomically; every change audited."""
    now = now or timezone.now()
    report = SyncReport(peer=peer.code, sequence=payload["sequence"])
    sequence, site = payload["sequence"], payload["site"]
    next_update = _instant(payload["nextUpdate"])
    with transaction.atomic():
        Peer.objects.select_for_update().filter(pk=peer.pk).first()  # one sync of a peer at a time
        current = {row.issuer_id: row for row in TrustedIssuer.objects.select_for_update().filter(peer=peer)}
        accepted = max((row.list_version for row in current.values()), default=0)
        if current and sequence < accepted:
            report.fail("rollback")
        else:
            _apply(peer, payload, site, sequence, next_update, current, report, actor=actor, now=now)
    if not report.ok:
        _refuse_list(peer, report.code, actor=actor, detail={"sequence": sequence, "accepted": accepted})
        return report
    transaction.on_commit(clear_cache)
    clear_cache()
    return report


def _apply(
    peer: Peer,
    payload: dict[str, Any],
    site: str,
    sequence: int,
    next_update: datetime.datetime,
    current: dict[str, TrustedIssuer],
    report: SyncReport,
    *,
    actor,
    now: datetime.datetime,
) -> None:
    """The body of :func:`apply_payload` (inside its transaction)."""
    others = {
        row.issuer_id: row
        for row in TrustedIssuer.objects.exclude(peer=peer).only("issuer_id", "uscc", "status", "peer_id")
    }
    other_usccs = {row.uscc for row in others.values() if row.status == TrustedIssuer.Status.ACTIVE}
    cleaned = [_clean_entry(raw, site) for raw in payload["issuers"]]
    local_usccs = _local_holders(peer, {entry.uscc for entry, *_rest in cleaned if entry is not None})
    seen_ids: set[str] = set()
    seen_usccs: set[str] = set()
    keep: set[str] = set()
    for entry, issuer_id, uscc, code in cleaned:
        if entry is not None and (issuer_id in seen_ids or uscc in seen_usccs):
            code = "duplicate"
        elif entry is not None:
            code = _shadows(entry, local_usccs=local_usccs, others=others, other_usccs=other_usccs)
        seen_ids.add(issuer_id)
        seen_usccs.add(uscc)
        if code:
            report.refused.append({"issuer": issuer_id, "uscc": uscc, "reason": code})
            logger.warning("trust list of %s: entry %s refused (%s)", peer.code, issuer_id[:120], code)
            continue
        keep.add(entry.issuer_id)
        _upsert(peer, entry, current, others, report, sequence=sequence, next_update=next_update, actor=actor, now=now)
    gone = [row for issuer_id, row in current.items() if issuer_id not in keep]
    for row in gone:
        if row.status == TrustedIssuer.Status.ACTIVE:
            row.status = TrustedIssuer.Status.REMOVED
            row.save(update_fields=["status"])
            audit.record("licenses.trust.remove", actor=actor, target=row, detail=_audit_detail(peer, row, sequence))
            report.removed.append(row.issuer_id)
    if gone:
        RemoteStatusList.objects.filter(issuer__in=[row.pk for row in gone]).delete()
    # Every row of the peer, removed ones included, carries the sequence: an older list cannot come back.
    TrustedIssuer.objects.filter(peer=peer).update(list_version=sequence, fetched_at=now, valid_until=next_update)


def _upsert(
    peer: Peer,
    entry: _Entry,
    current: dict[str, TrustedIssuer],
    others: dict[str, TrustedIssuer],
    report: SyncReport,
    *,
    sequence: int,
    next_update: datetime.datetime,
    actor,
    now: datetime.datetime,
) -> None:
    """Add, take over (a row another peer's list removed), update or keep one accepted entry; audited."""
    values = {
        "name": entry.name,
        "uscc": entry.uscc,
        "jwks": entry.jwks,
        "licence_types": entry.licence_types,
        "status": TrustedIssuer.Status.ACTIVE,
    }
    row = current.get(entry.issuer_id)
    if row is None:
        extra: dict[str, Any] = {"types": [t["code"] for t in entry.licence_types]}
        taken = others.get(entry.issuer_id)
        if taken is not None:  # listed by another peer before, and removed there since
            RemoteStatusList.objects.filter(issuer_id=taken.pk).delete()
            row = TrustedIssuer.objects.select_for_update().get(pk=taken.pk)
            extra["previous_peer"] = row.peer_id
            row.peer = peer
        else:
            row = TrustedIssuer(peer=peer, issuer_id=entry.issuer_id)
        for name, value in values.items():
            setattr(row, name, value)
        row.list_version, row.fetched_at, row.valid_until = sequence, now, next_update
        row.save()
        current[row.issuer_id] = row
        audit.record("licenses.trust.add", actor=actor, target=row, detail=_audit_detail(peer, row, sequence, **extra))
        report.added.append(row.issuer_id)
        return
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    if not changed:
        report.unchanged += 1
        return
    before = {"kids": _kids(row.jwks), "status": row.status, "name": row.name}
    for name in changed:
        setattr(row, name, values[name])
    row.save(update_fields=changed)
    if "jwks" in changed:  # cached status lists may be signed by a key no longer listed
        RemoteStatusList.objects.filter(issuer=row).delete()
    audit.record(
        "licenses.trust.update",
        actor=actor,
        target=row,
        detail=_audit_detail(peer, row, sequence, changed=changed, before=before),
    )
    report.updated.append(row.issuer_id)


_OPENER = outbound.direct_opener()  # no proxy, no redirects


class FetchError(Exception):
    """An HTTP fetch that yielded no usable body: ``unavailable`` or ``too_large``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def http_get(url: str, *, accept: str, limit: int, timeout: float | None = None) -> bytes:
    """GET ``url`` under the outbound rules: 200 only, at most ``limit`` bytes, within ``timeout`` seconds in all."""
    if outbound.url_problem(url, _URL_CHECKS, max_length=500):
        raise FetchError("unavailable")
    timeout = fetch_timeout() if timeout is None else timeout
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "dgov-licences"})  # noqa: S310
    chunks, size = [], 0
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            if response.status != 200:
                raise FetchError("unavailable")
            while True:
                if time.monotonic() > deadline:
                    raise FetchError("unavailable")
                chunk = response.read(64 * 1024)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise FetchError("too_large")
                chunks.append(chunk)
    except FetchError:
        raise
    except (OSError, ValueError, urllib.error.URLError):
        raise FetchError("unavailable") from None
    return b"".join(chunks)


def trust_list_url(peer: Peer) -> str:
    """Where a peer publishes its trust list."""
    return peer.base_url.rstrip("/") + PATH


_attempted: dict[int, float] = {}  # peer id -> monotonic time of this process's last sync attempt


def sync_peer(peer: Peer, *, actor=None, now: datetime.datetime | None = None) -> SyncReport:
    """Fetch, check and apply a peer's trust list; the report says what happened (the peer's faults never raise)."""
    now = now or timezone.now()
    _attempted[peer.pk] = time.monotonic()
    report = SyncReport(peer=peer.code)
    if peer.status != Peer.Status.ACTIVE:
        return report.fail("peer_suspended")
    try:
        document = http_get(trust_list_url(peer), accept=f"{MEDIA_TYPE}, application/json", limit=MAX_LIST_BYTES)
    except FetchError as exc:
        logger.warning("trust list of %s could not be fetched: %s", peer.code, exc.code)
        return report.fail(exc.code)
    try:
        payload = verify_document(document, peer, now=now)
    except TrustListError as exc:
        logger.warning("trust list of %s refused: %s", peer.code, exc.code)
        if exc.code in ("signature_invalid", "wrong_instance", "expired", "future"):
            _refuse_list(peer, exc.code, actor=actor)
        return report.fail(exc.code)
    return apply_payload(peer, payload, actor=actor, now=now)


def sync_due(now: datetime.datetime | None = None) -> int:
    """Worker job: sync every active peer whose trust list was not synced for ``LICENCE_TRUST_SYNC_SECONDS``."""
    now = now or timezone.now()
    interval = sync_interval()
    cutoff = now - datetime.timedelta(seconds=interval)
    fetched = dict(
        TrustedIssuer.objects.values("peer_id").annotate(last=Max("fetched_at")).values_list("peer_id", "last")
    )
    done = 0
    for peer in Peer.objects.filter(status=Peer.Status.ACTIVE).order_by("code"):
        last_try = _attempted.get(peer.pk)
        if last_try is not None and time.monotonic() - last_try < interval:
            continue
        if fetched.get(peer.pk) is not None and fetched[peer.pk] > cutoff:
            continue
        report = sync_peer(peer, now=now)
        if not report.ok:
            logger.warning("trust list sync with %s failed: %s", peer.code, report.code)
        done += 1
    return done


# --- what the workbench shows -------------------------------------------------------------------------


@dataclass
class PeerTrust:
    """One peer's imported issuers for the workbench page."""

    peer: Peer
    issuers: list[TrustedIssuer]
    sequence: int | None
    fetched_at: datetime.datetime | None
    valid_until: datetime.datetime | None
    expired: bool

    @property
    def active(self) -> list[TrustedIssuer]:
        """The issuers currently recognized."""
        return [row for row in self.issuers if row.status == TrustedIssuer.Status.ACTIVE]


def peer_overview(now: datetime.datetime | None = None) -> list[PeerTrust]:
    """Every peer with its imported issuers (active first), the list's sequence, fetch time and validity."""
    now = now or timezone.now()
    rows: dict[int, list[TrustedIssuer]] = {}
    for row in TrustedIssuer.objects.order_by("status", "name"):
        rows.setdefault(row.peer_id, []).append(row)
    out = []
    for peer in Peer.objects.order_by("code"):
        issuers = rows.get(peer.pk, [])
        valid_until = max((r.valid_until for r in issuers if r.valid_until), default=None)
        out.append(
            PeerTrust(
                peer=peer,
                issuers=issuers,
                sequence=max((r.list_version for r in issuers), default=None),
                fetched_at=max((r.fetched_at for r in issuers), default=None),
                valid_until=valid_until,
                expired=valid_until is not None and valid_until <= now,
            )
        )
    return out


# --- the resolver ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Known:
    """An imported issuer as the resolver holds it."""

    trusted: verification.TrustedIssuer
    jwks: dict
    valid_until: datetime.datetime | None


@dataclass
class _Index:
    """Every recognized issuer by id, and their keys by kid (None for a kid two issuers claim)."""

    issuers: dict[str, _Known]
    keys: dict[str, verification.KeyRecord | None]


_resolvers: weakref.WeakSet = weakref.WeakSet()  # every resolver of this process, for clear_cache()


class PeerIssuers:
    """A :class:`~dgov.licenses.verification.TrustResolver` for the issuers imported from peers' trust lists."""

    def __init__(self) -> None:
        _resolvers.add(self)
        self._lock = threading.Lock()
        self._index: tuple[float, _Index] | None = None
        self._failed: dict[str, float] = {}  # status-list URL -> monotonic time until which it is not fetched
        self._verifiers: dict[tuple[str, str, str], verification.OfflineVerifier] = {}

    def clear(self) -> None:
        """Forget the cached issuers, failed fetches and verified lists."""
        with self._lock:
            self._index = None
            self._failed.clear()
            self._verifiers.clear()

    def _load(self) -> _Index:
        """The recognized issuers from the database (cached per process for ``KEY_CACHE_SECONDS``)."""
        cached = self._index
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        issuers: dict[str, _Known] = {}
        keys: dict[str, verification.KeyRecord | None] = {}
        rows = (
            TrustedIssuer.objects.filter(status=TrustedIssuer.Status.ACTIVE, peer__status=Peer.Status.ACTIVE)
            .order_by("pk")
            .values_list("pk", "issuer_id", "uscc", "name", "jwks", "valid_until", "peer__name", "peer__code")
        )
        for pk, issuer_id, uscc, name, jwks, valid_until, peer_name, peer_code in rows:
            trusted = verification.TrustedIssuer(
                id=issuer_id, uscc=uscc, name=name, origin=f"peer:{peer_code}", ref=pk, via=peer_name
            )
            issuers[issuer_id] = _Known(trusted, jwks if isinstance(jwks, dict) else {}, valid_until)
            for jwk in _clean_keys(jwks):
                kid = jwk["kid"]
                if kid in keys:
                    keys[kid] = None  # claimed by two issuers: trust neither
                    continue
                keys[kid] = verification.KeyRecord(kid, jwk["alg"], issuer_id, jose.PublicJwk.from_dict(jwk))
        index = _Index(issuers, keys)
        if not connection.in_atomic_block:  # what a transaction reads may still be rolled back
            with self._lock:
                self._index = (time.monotonic() + float(getattr(settings, "KEY_CACHE_SECONDS", 60)), index)
        return index

    def _known(self, issuer_id: str) -> _Known | None:
        """The imported issuer with this id while its list is valid."""
        known = self._load().issuers.get(issuer_id) if isinstance(issuer_id, str) else None
        if known is None or (known.valid_until is not None and known.valid_until <= timezone.now()):
            return None
        return known

    def issuer(self, issuer_id: str) -> verification.TrustedIssuer | None:
        """An issuer named by a peer's current trust list."""
        known = self._known(issuer_id)
        return known.trusted if known else None

    def key(self, kid: str) -> verification.KeyRecord | None:
        """A key of an imported issuer whose list is valid."""
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID:
            return None
        record = self._load().keys.get(kid)
        if record is None or self._known(record.issuer_id) is None:
            return None
        return record

    def record(self, issuer: verification.TrustedIssuer, credential_id: str) -> verification.CredentialRecord | None:
        """The register of an imported issuer is at its own instance, not here."""
        return None

    def status(
        self, issuer: verification.TrustedIssuer, refs: Sequence[verification.StatusRef], now: datetime.datetime
    ) -> list[verification.StatusReading]:
        """The status bits from the issuer's published lists, fetched from its own site and cached."""
        known = self._known(issuer.id)
        prefix = verification.issuer_origin(issuer.id) + verification.STATUS_PATH
        wanted = [
            known is not None and ref.url.startswith(prefix) and bool(_DIGITS.match(ref.url[len(prefix) :]))
            for ref in refs
        ]
        urls = {ref.url for ref, ok in zip(refs, wanted, strict=True) if ok}  # empty: no query at all
        rows = RemoteStatusList.objects.filter(url__in=urls)
        cached = {row["url"]: row for row in rows.values("url", "issuer_id", "published", "fetched_at", "ttl_seconds")}
        readings = []
        for ref, ok in zip(refs, wanted, strict=True):
            if not ok:
                readings.append(verification.StatusReading(None, "status.list_unknown", source="remote"))
                continue
            readings.append(self._reading(issuer, known, ref, cached.get(ref.url), now))
        return readings

    def _reading(
        self,
        issuer: verification.TrustedIssuer,
        known: _Known,
        ref: verification.StatusRef,
        row: dict[str, Any] | None,
        now: datetime.datetime,
    ) -> verification.StatusReading:
        """One status bit from the cached list ``row``, or from a fresh fetch when the cache is stale."""
        fresh = (
            row is not None
            and row["issuer_id"] == issuer.ref
            and row["fetched_at"] + datetime.timedelta(seconds=min(row["ttl_seconds"], status_max_age())) > now
        )
        reading = None
        if fresh:
            fetched_at = row["fetched_at"]
            reading = self._verifier(issuer, known, ref.url, row["published"], fetched_at).status(issuer, [ref], now)[0]
            if reading.value is None and reading.error != "status.index_out_of_range":
                reading = None  # the cached copy no longer verifies (the issuer's keys changed): fetch it again
        if reading is None:
            fetched = self._fetch(issuer, known, ref, now)
            if isinstance(fetched, str):
                return verification.StatusReading(None, fetched, source="remote")
            jws, fetched_at = fetched
            reading = self._verifier(issuer, known, ref.url, jws, fetched_at).status(issuer, [ref], now)[0]
        if reading.value is None:
            return verification.StatusReading(None, reading.error, source="remote")
        return verification.StatusReading(
            reading.value,
            source="remote",
            published_at=reading.published_at,
            ttl_seconds=reading.ttl_seconds,
            fetched_at=fetched_at,
        )

    def _verifier(
        self, issuer: verification.TrustedIssuer, known: _Known, url: str, jws: str, fetched_at: datetime.datetime
    ) -> verification.OfflineVerifier:
        """An offline verifier holding the issuer's keys and one list (remembered per fetch)."""
        memo = (issuer.id, url, fetched_at.isoformat())
        verifier = self._verifiers.get(memo)
        if verifier is None:
            verifier = verification.OfflineVerifier({issuer.id: {"name": issuer.name, "jwks": known.jwks}}, {url: jws})
            with self._lock:
                if len(self._verifiers) > 1000:
                    self._verifiers.clear()
                self._verifiers[memo] = verifier
        return verifier

    def _back_off(self, url: str) -> None:
        """Do not fetch ``url`` again for ``LICENCE_REMOTE_STATUS_RETRY_SECONDS`` (no amplification of failures)."""
        with self._lock:
            if len(self._failed) > 10_000:
                self._failed.clear()
            self._failed[url] = time.monotonic() + status_retry_seconds()

    def _fetch(
        self, issuer: verification.TrustedIssuer, known: _Known, ref: verification.StatusRef, now: datetime.datetime
    ) -> tuple[str, datetime.datetime] | str:
        """Fetch, verify and cache the list at ``ref.url``: (jws, fetched at), or the reason code it is unusable."""
        if self._failed.get(ref.url, 0.0) > time.monotonic():
            return "status.list_unavailable"
        try:
            body = http_get(ref.url, accept="application/vc+jwt", limit=verification.MAX_STATUS_LIST_LENGTH).decode(
                "ascii"
            )
        except (FetchError, UnicodeDecodeError) as exc:
            logger.warning("status list %s of %s could not be fetched: %s", ref.url, issuer.id, exc)
            self._back_off(ref.url)
            return "status.list_unavailable"
        fetched_at = timezone.now()
        jws = body.strip()
        reading = self._verifier(issuer, known, ref.url, jws, fetched_at).status(issuer, [ref], now)[0]
        if reading.value is None and reading.error != "status.index_out_of_range":
            logger.warning("status list %s of %s is not usable: %s", ref.url, issuer.id, reading.error)
            self._back_off(ref.url)
            return reading.error or "status.list_invalid"
        ttl = max(0, min(int(reading.ttl_seconds or 0), int(status_max_age())))
        _store(ref.url, issuer.ref, jws, fetched_at, ttl)
        return jws, fetched_at


def _store(url: str, issuer_pk: int, jws: str, fetched_at: datetime.datetime, ttl: int) -> None:
    """Keep a verified remote status list (a concurrent fetch of the same list may win; either is fine)."""
    values = {"issuer_id": issuer_pk, "published": jws, "fetched_at": fetched_at, "ttl_seconds": ttl}
    try:
        with transaction.atomic():
            RemoteStatusList.objects.update_or_create(url=url, defaults=values)
    except IntegrityError:  # pragma: no cover - another process stored it meanwhile
        logger.info("status list %s stored concurrently", url)


def clear_cache() -> None:
    """Forget what every resolver of this process cached (after a sync; in tests)."""
    for resolver in list(_resolvers):
        resolver.clear()


@receiver(post_save, sender=TrustedIssuer)
@receiver(post_delete, sender=TrustedIssuer)
@receiver(post_save, sender=Peer)
def _on_change(**kwargs) -> None:
    """An issuer imported or removed, or a peer suspended, in this process: look them up again."""
    clear_cache()


@receiver(post_migrate)
def _on_post_migrate(**kwargs) -> None:
    """Tables re-created (test databases): cached rows may be gone."""
    clear_cache()
