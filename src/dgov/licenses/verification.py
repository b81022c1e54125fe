"""Verification of e-licences (证照核验): online against the register, offline from cached keys and status lists.

:func:`verify` takes what a holder presents — the compact VC-JOSE credential (``vc+jwt``), the
signed QR payload (``licence-qr+jwt``, see :mod:`dgov.licenses.qr`) or the QR URL
``<site>/licences/q/<payload>`` — and answers a :class:`VerificationResult`: an overall verdict,
the list of checks that led to it (each with a status, a stable reason code and a reason in the
active language) and, once the signature has verified, a summary of the licence with personal data
masked.

The checks, in order: ``input`` (structure and size limits), ``algorithm`` (``typ`` and ``alg``:
ES256 or SM2 only, never ``none``, HS256 or RS256), ``issuer`` (known and trusted), ``key`` (the
``kid`` belongs to that issuer and is not revoked), ``signature``, ``identifier`` (check character,
the issuer code inside it is the signer's, consistent ids), ``validity`` (``validFrom`` /
``validUntil`` against now), ``revocation`` and ``suspension`` (status bits) and, online for the
platform's own issuers, ``record`` (the register: superseded versions, the copy on file).

**Never valid on an error.** The verdict is ``valid`` only when every required check passed; any
exception anywhere is turned into a failed ``internal`` check (verdict ``error``). After the
signature fails, nothing the credential claims is trusted: later checks are skipped and no summary
is disclosed.

**Where trust comes from** is a :class:`TrustResolver`: it names trusted issuers, finds keys by
``kid``, reads status bits and, for issuers whose register it holds, the credential's record.
:class:`LocalIssuers` resolves the platform's own issuing departments (organizations holding
:class:`~dgov.licenses.models.IssuerKey` rows) from the database, status from the working copy of
the lists (a change is seen at once). Issuers of other dgov instances come from their signed
trust lists (:class:`dgov.licenses.trust.PeerIssuers`, named in ``LICENCE_TRUST_RESOLVERS``),
asked after the local one (:class:`ChainResolver`); the result names the peer that recognizes
them. :class:`OfflineVerifier` is a resolver built from cached issuer JWK Sets and **published**
status-list credentials alone — it never touches the database — each list verified with its
issuer's key, and its freshness (``validFrom`` + ``ttl``) reported.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import connection
from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy, pgettext_lazy

from dgov.kernel.crypto import sm3
from dgov.kernel.masking import mask_id_number, mask_name
from dgov.kernel.services import wrapped_keys
from dgov.kernel.services.wrapped_keys import MISSING
from dgov.licenses import credentials, statuslist
from dgov.oidc import jose

__all__ = [
    "ALGORITHMS",
    "Check",
    "ChainResolver",
    "CredentialRecord",
    "KeyRecord",
    "LicenceSummary",
    "LocalIssuers",
    "OfflineVerifier",
    "QR_TYP",
    "StatusReading",
    "StatusRef",
    "TrustResolver",
    "TrustedIssuer",
    "VerificationResult",
    "Verdict",
    "default_resolver",
    "log_verification",
    "verify",
]

logger = logging.getLogger("dgov.licenses.verification")

# Reasons are translated when shown, not when checked: a result renders in the language active then,
# and a verifier that only reads the verdict pays for no translation look-ups.
_ = gettext_lazy

ALGORITHMS = ("ES256", "SM2")
VC_TYP = "vc+jwt"
QR_TYP = "licence-qr+jwt"
QR_PATH = "/licences/q/"
ISSUER_PATH = "/licences/issuers/"
STATUS_PATH = "/licences/status/"

# Size limits: a credential with a long text item stays far below 64 KiB; a QR payload is ~600
# characters; a published list of 131,072 bits is a few KiB even when many bits are set.
MAX_CREDENTIAL_LENGTH = 64 * 1024
MAX_QR_LENGTH = 4 * 1024
MAX_STATUS_LIST_LENGTH = 1024 * 1024
MAX_STATUS_LIST_BYTES = 2 * 1024 * 1024  # 16,777,216 entries
DEFAULT_TTL_SECONDS = 300.0  # Bitstring Status List: ttl absent means 5 minutes
_COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")  # empty signature: alg none
_USCC = re.compile(r"^[0-9A-Z]{18}$")


# --- results ---------------------------------------------------------------------------------------


class Verdict:
    """The overall answer of a verification (stable codes; labels via :func:`verdict_label`)."""

    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN_ISSUER = "unknown_issuer"
    SUPERSEDED = "superseded"
    REVOKED = "revoked"
    EXPIRED = "expired"
    SUSPENDED = "suspended"
    NOT_YET_VALID = "not_yet_valid"
    STATUS_UNKNOWN = "status_unknown"
    ERROR = "error"


# Which verdict wins when several checks fail: a forged or broken credential says nothing else.
_PRECEDENCE = (
    Verdict.ERROR,
    Verdict.INVALID,
    Verdict.UNKNOWN_ISSUER,
    Verdict.SUPERSEDED,
    Verdict.REVOKED,
    Verdict.EXPIRED,
    Verdict.SUSPENDED,
    Verdict.NOT_YET_VALID,
    Verdict.STATUS_UNKNOWN,
)

VERDICT_LABELS = {
    Verdict.VALID: pgettext_lazy("licence verdict", "有效"),
    Verdict.INVALID: gettext_lazy("无效（验证未通过）"),
    Verdict.UNKNOWN_ISSUER: gettext_lazy("签发机构不受信任"),
    Verdict.SUPERSEDED: gettext_lazy("已被新版本取代"),
    Verdict.REVOKED: gettext_lazy("已撤销"),
    Verdict.EXPIRED: gettext_lazy("已过有效期"),
    Verdict.SUSPENDED: gettext_lazy("已暂停"),
    Verdict.NOT_YET_VALID: gettext_lazy("尚未生效"),
    Verdict.STATUS_UNKNOWN: gettext_lazy("无法确认当前状态"),
    Verdict.ERROR: gettext_lazy("核验出错"),
}

CHECK_LABELS = {
    "input": gettext_lazy("格式与大小"),
    "algorithm": gettext_lazy("签名算法"),
    "issuer": gettext_lazy("签发机构"),
    "key": gettext_lazy("签名密钥"),
    "signature": gettext_lazy("数字签名"),
    "identifier": gettext_lazy("证照标识"),
    "validity": gettext_lazy("有效期"),
    "revocation": gettext_lazy("撤销状态"),
    "suspension": gettext_lazy("暂停状态"),
    "record": gettext_lazy("签发记录"),
    "internal": gettext_lazy("核验过程"),
}


class _Text:
    """A message with parameters, formatted when shown (in the language active then)."""

    __slots__ = ("message", "params")

    def __init__(self, message: Any, params: Mapping[str, Any]) -> None:
        self.message, self.params = message, params

    def __str__(self) -> str:
        return str(self.message) % self.params


def _fmt(message: Any, params: Mapping[str, Any]) -> _Text:
    """``message % params``, deferred until the text is shown."""
    return _Text(message, params)


def verdict_label(verdict: str) -> str:
    """The human label of a verdict in the active language."""
    return str(VERDICT_LABELS.get(verdict, verdict))


class CheckStatus:
    """How one check came out."""

    PASSED = "passed"
    FAILED = "failed"
    WARNING = "warning"
    SKIPPED = "skipped"


@dataclass
class Check:
    """One step of a verification: which (``code``), how it came out, and why (stable code + text)."""

    code: str
    status: str
    reason_code: str
    message: Any  # a (lazy) string or a message with parameters, translated when shown
    verdict: str = ""  # the verdict a failed check implies

    @property
    def reason(self) -> str:
        """Why, in the active language."""
        return str(self.message)

    @property
    def label(self) -> str:
        """The check's name in the active language."""
        return str(CHECK_LABELS.get(self.code, self.code))

    def as_dict(self) -> dict[str, str]:
        """The check as JSON members."""
        return {
            "code": self.code,
            "label": self.label,
            "status": self.status,
            "reason_code": self.reason_code,
            "reason": self.reason,
        }


@dataclass
class LicenceSummary:
    """What a verifier needs to know of a verified licence; the holder's name and ID number masked."""

    identifier: str = ""
    version: int | None = None
    type_code: str = ""
    type_name: str = ""
    number: str = ""
    issuer_name: str = ""
    issuer_uscc: str = ""
    holder_kind: str = ""
    holder_name: str = ""
    holder_id: str = ""
    valid_from: str = ""
    valid_until: str | None = None
    issued: str = ""
    recognized_by: str = ""  # the peer instance through whose trust list the issuer is recognized (互认)

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON members."""
        return dict(vars(self))


@dataclass
class VerificationResult:
    """The answer of :func:`verify`: verdict, checks, what was presented and the licence summary."""

    verdict: str
    checks: list[Check]
    kind: str  # "credential", "qr" or "" when not recognizable
    mode: str  # "online" or "offline"
    checked_at: datetime.datetime
    summary: LicenceSummary | None = None
    identifier: str = ""  # for the verification log (only when the signature verified)
    version: int | None = None
    issuer_uscc: str = ""

    @property
    def valid(self) -> bool:
        """Whether the licence verified as valid."""
        return self.verdict == Verdict.VALID

    @property
    def verdict_label(self) -> str:
        """The verdict in the active language."""
        return verdict_label(self.verdict)

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [check for check in self.checks if check.status == CheckStatus.FAILED]

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON members (the verify API's answer)."""
        return {
            "verdict": self.verdict,
            "verdict_label": self.verdict_label,
            "valid": self.valid,
            "kind": self.kind,
            "mode": self.mode,
            "checked_at": self.checked_at.isoformat().replace("+00:00", "Z"),
            "checks": [check.as_dict() for check in self.checks],
            "licence": self.summary.as_dict() if self.summary else None,
        }


# --- the trust hook -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedIssuer:
    """An issuer the verifier trusts: its id (URL), USCC, name, where the trust comes from."""

    id: str
    uscc: str
    name: str = ""
    origin: str = "local"  # "local", "cache" (offline), or the trust list that named it ("peer:<code>")
    registered: bool = False  # this instance holds the issuer's register (online record check)
    ref: int | None = None  # the Organization's pk for local issuers; the TrustedIssuer row's for a peer's
    via: str = ""  # the name of the peer instance whose trust list recognizes the issuer (互认来源)


@dataclass(frozen=True)
class KeyRecord:
    """A verification key and the issuer it belongs to; ``jwk`` is None when the key is revoked."""

    kid: str
    alg: str
    issuer_id: str
    jwk: jose.PublicJwk | None
    revoked: bool = False


@dataclass(frozen=True)
class StatusRef:
    """One ``BitstringStatusListEntry`` of a credential: purpose, list URL and index."""

    purpose: str
    url: str
    index: int


@dataclass(frozen=True)
class StatusReading:
    """The value of one status bit, or why it could not be read (``error``: a reason code)."""

    value: bool | None
    error: str = ""
    source: str = "working"  # "working" (the register's working copy), "published" (a list credential)
    # or "remote" (a list credential just fetched from, or cached within its ttl of, the issuer's own site)
    published_at: datetime.datetime | None = None
    ttl_seconds: float | None = None
    fetched_at: datetime.datetime | None = None  # "remote": when this instance fetched the list


@dataclass(frozen=True)
class CredentialRecord:
    """What the register knows of a credential: superseded or not, the SM3 digest of the copy on file."""

    superseded_at: datetime.datetime | None
    digest: bytes
    summary: Callable[[], LicenceSummary] | None = None  # the licence from the register, loaded on demand


class TrustResolver(Protocol):
    """Where a verification learns whom to trust (the hook the trust list plugs into)."""

    def issuer(self, issuer_id: str) -> TrustedIssuer | None:
        """The trusted issuer with this id (URL), or None when it is not trusted."""

    def key(self, kid: str) -> KeyRecord | None:
        """The verification key ``kid`` (of whichever trusted issuer), or None when unknown."""

    def status(self, issuer: TrustedIssuer, refs: Sequence[StatusRef], now: datetime.datetime) -> list[StatusReading]:
        """One reading per status entry of a credential of ``issuer``."""

    def record(self, issuer: TrustedIssuer, credential_id: str) -> CredentialRecord | None:
        """The register's record of a credential (only asked for issuers with ``registered``)."""


def issuer_uscc(issuer_id: str) -> str:
    """The USCC at the end of an issuer URL ``…/licences/issuers/<USCC>`` ("" when it is not one)."""
    if not isinstance(issuer_id, str) or ISSUER_PATH not in issuer_id:
        return ""
    tail = issuer_id.rsplit(ISSUER_PATH, 1)[1]
    return tail if _USCC.match(tail) else ""


def issuer_origin(issuer_id: str) -> str:
    """The site an issuer URL belongs to (everything before ``/licences/issuers/``)."""
    return issuer_id.rsplit(ISSUER_PATH, 1)[0] if ISSUER_PATH in issuer_id else ""


class LocalIssuers:
    """The platform's own issuing departments, from the database (status from the lists' working copy)."""

    _UNKNOWN_SECONDS = 5.0

    def __init__(self) -> None:
        self._issuers = wrapped_keys.TimedCache(limit=10_000)
        self._keys = wrapped_keys.TimedCache(limit=10_000)

    def clear(self) -> None:
        """Forget cached issuers and keys."""
        self._issuers.clear()
        self._keys.clear()

    def _prefix(self) -> str:
        """Issuer URLs of this instance start with this."""
        return credentials.site_url() + ISSUER_PATH

    def issuer(self, issuer_id: str) -> TrustedIssuer | None:
        """An organization of this instance that holds licence signing keys."""
        found = self._issuers.get(issuer_id)
        if found is not MISSING:
            return found
        found = None
        uscc = issuer_uscc(issuer_id)
        if uscc and issuer_id == self._prefix() + uscc:
            from dgov.kernel.models import Organization
            from dgov.licenses.models import IssuerKey

            row = Organization.objects.filter(uscc=uscc).values("pk", "name").first()
            if row is not None and IssuerKey.objects.filter(organization_id=row["pk"]).exists():
                found = TrustedIssuer(
                    id=issuer_id, uscc=uscc, name=row["name"], origin="local", registered=True, ref=row["pk"]
                )
        self._issuers.put(issuer_id, found, wrapped_keys.cache_seconds() if found else self._UNKNOWN_SECONDS)
        return found

    def key(self, kid: str) -> KeyRecord | None:
        """An issuer key of this instance by ``kid`` (revoked keys come back with ``revoked``)."""
        if not isinstance(kid, str) or not 0 < len(kid) <= 80:
            return None
        found = self._keys.get(kid)
        if found is not MISSING:
            return found
        from dgov.licenses.models import IssuerKey

        row = IssuerKey.objects.filter(kid=kid).values("alg", "status", "public_jwk", "organization__uscc").first()
        found = None
        if row is not None and row["alg"] in ALGORITHMS:
            revoked = row["status"] == IssuerKey.Status.REVOKED
            jwk = None
            if not revoked:
                jwk = jose.PublicJwk.from_dict({**row["public_jwk"], "kid": kid, "alg": row["alg"]})
            found = KeyRecord(kid, row["alg"], self._prefix() + row["organization__uscc"], jwk, revoked)
        self._keys.put(kid, found, wrapped_keys.cache_seconds() if row is not None else self._UNKNOWN_SECONDS)
        return found

    def status(self, issuer: TrustedIssuer, refs: Sequence[StatusRef], now: datetime.datetime) -> list[StatusReading]:
        """The bits of the working copies, read with one statement (one byte per entry, not whole lists)."""
        from dgov.licenses.models import StatusList

        prefix = credentials.site_url() + STATUS_PATH
        wanted: list[tuple[int, int]] = []
        for ref in refs:
            tail = ref.url[len(prefix) :] if ref.url.startswith(prefix) else ""
            wanted.append((int(tail), ref.index) if tail.isdigit() and len(tail) <= 12 else (0, -1))
        parts, params = [], []
        table = connection.ops.quote_name(StatusList._meta.db_table)
        for position, (list_id, index) in enumerate(wanted):
            if index < 0:
                continue
            parts.append(
                f"SELECT {position}, organization_id, purpose, size, substr(bits, CAST(%s AS INTEGER), 1) "  # noqa: S608
                f"FROM {table} WHERE id = %s"
            )
            params += [index // 8 + 1, list_id]
        rows: dict[int, tuple] = {}
        if parts:
            with connection.cursor() as cursor:
                cursor.execute(" UNION ALL ".join(parts), params)
                rows = {int(row[0]): row[1:] for row in cursor.fetchall()}
        readings = []
        for position, ref in enumerate(refs):
            row = rows.get(position)
            if wanted[position][1] < 0 or row is None:
                readings.append(StatusReading(None, "status.list_unknown"))
                continue
            organization_id, purpose, size, byte = row
            byte = bytes(byte or b"")
            if organization_id != issuer.ref or purpose != ref.purpose:
                readings.append(StatusReading(None, "status.list_mismatch"))
            elif not 0 <= ref.index < size or len(byte) != 1:
                readings.append(StatusReading(None, "status.index_out_of_range"))
            else:
                readings.append(StatusReading(bool(byte[0] & (0x80 >> (ref.index % 8))), source="working"))
        return readings

    def record(self, issuer: TrustedIssuer, credential_id: str) -> CredentialRecord | None:
        """The credential's row: superseded or not, the digest of the copy on file (the licence summary on demand).

        One plain statement (the ORM's query building costs more than the query on this hot path).
        """
        from dgov.licenses.models import Credential, Licence

        credential_table = connection.ops.quote_name(Credential._meta.db_table)
        licence_table = connection.ops.quote_name(Licence._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT c.id, c.superseded_at, c.jws FROM {credential_table} c "  # noqa: S608 - table names only
                f"JOIN {licence_table} l ON l.id = c.licence_id WHERE c.credential_id = %s AND l.issuer_id = %s",
                [credential_id[:200], issuer.ref],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        pk, superseded_at, jws = row
        if isinstance(superseded_at, str):  # SQLite without Django's converters hands back text
            superseded_at = parse_datetime(superseded_at)
        if superseded_at is not None and timezone.is_naive(superseded_at):  # SQLite stores UTC, naive
            superseded_at = timezone.make_aware(superseded_at, datetime.UTC)
        return CredentialRecord(superseded_at, sm3(jws.encode("ascii")), lambda: _register_summary(pk, issuer))


def _register_summary(credential_pk: int, issuer: TrustedIssuer) -> LicenceSummary:
    """The summary of a licence from the register (QR verifications: the payload carries no holder data).

    One plain statement for the fields shown; only the holder's two fields are decrypted (with the
    model fields' own converters), never the licence data.
    """
    from dgov.licenses.models import Credential, Licence, LicenceType

    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.version, c.issued_at, l.identifier, l.number, l.holder_kind, l.holder_name, l.holder_id, "  # noqa: S608
            f"l.valid_from, l.valid_until, t.code, t.name FROM {quote(Credential._meta.db_table)} c "
            f"JOIN {quote(Licence._meta.db_table)} l ON l.id = c.licence_id "
            f"JOIN {quote(LicenceType._meta.db_table)} t ON t.id = l.licence_type_id WHERE c.id = %s",
            [credential_pk],
        )
        version, issued_at, identifier, number, kind, name, holder_id, start, until, code, type_name = cursor.fetchone()
    name = Licence._meta.get_field("holder_name").from_db_value(name, None, connection)
    holder_id = Licence._meta.get_field("holder_id").from_db_value(holder_id, None, connection)
    return LicenceSummary(
        identifier=identifier,
        version=version,
        type_code=code,
        type_name=type_name,
        number=number,
        issuer_name=issuer.name,
        issuer_uscc=issuer.uscc,
        holder_kind=kind,
        holder_name=_mask_holder_name(kind, name),
        holder_id=_mask_holder_id(kind, holder_id),
        valid_from=_iso_date(start),
        valid_until=_iso_date(until) or None,
        issued=_utc_text(issued_at),
    )


def _iso_date(value: Any) -> str:
    """A date column as YYYY-MM-DD (SQLite may hand back text)."""
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, datetime.date) else str(value)[:10]


def _utc_text(value: Any) -> str:
    """A timestamp column as an XML Schema dateTime in UTC (naive values are UTC, as Django stores them)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if not isinstance(value, datetime.datetime):
        return ""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    return value.astimezone(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class ChainResolver:
    """Several resolvers asked in turn: the local issuers first, then the trust list's."""

    def __init__(self, resolvers: Sequence[TrustResolver]) -> None:
        self.resolvers = list(resolvers)
        self._owner: dict[str, TrustResolver] = {}

    def issuer(self, issuer_id: str) -> TrustedIssuer | None:
        """The first resolver that trusts ``issuer_id``."""
        for resolver in self.resolvers:
            found = resolver.issuer(issuer_id)
            if found is not None:
                if len(self._owner) > 10_000:
                    self._owner.clear()
                self._owner[issuer_id] = resolver
                return found
        return None

    def key(self, kid: str) -> KeyRecord | None:
        """The first resolver that knows ``kid``."""
        for resolver in self.resolvers:
            found = resolver.key(kid)
            if found is not None:
                return found
        return None

    def _for(self, issuer: TrustedIssuer) -> TrustResolver:
        """The resolver that vouched for ``issuer``."""
        owner = self._owner.get(issuer.id)
        if owner is None:
            for resolver in self.resolvers:
                if resolver.issuer(issuer.id) is not None:
                    return resolver
            raise LookupError(issuer.id)
        return owner

    def status(self, issuer: TrustedIssuer, refs: Sequence[StatusRef], now: datetime.datetime) -> list[StatusReading]:
        """Status from the resolver that vouched for the issuer."""
        return self._for(issuer).status(issuer, refs, now)

    def record(self, issuer: TrustedIssuer, credential_id: str) -> CredentialRecord | None:
        """The record from the resolver that vouched for the issuer."""
        return self._for(issuer).record(issuer, credential_id)


_local = LocalIssuers()
_default: ChainResolver | None = None
_default_lock = threading.Lock()


def default_resolver() -> ChainResolver:
    """The local issuers, then every resolver named in ``LICENCE_TRUST_RESOLVERS`` (dotted paths to classes)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                extra = [import_string(path)() for path in getattr(settings, "LICENCE_TRUST_RESOLVERS", ())]
                _default = ChainResolver([_local, *extra])
    return _default


def clear_cache() -> None:
    """Forget cached issuers and keys (after a key or organization change; in tests)."""
    _local.clear()


@receiver(post_save, sender="licenses.IssuerKey")
@receiver(post_delete, sender="licenses.IssuerKey")
@receiver(post_save, sender="kernel.Organization")
def _on_change(**kwargs) -> None:
    """A key revoked or an organization renamed in this process: look them up again."""
    clear_cache()


@receiver(post_migrate)
def _on_post_migrate(**kwargs) -> None:
    """Tables re-created (test databases): cached rows may be gone."""
    clear_cache()


# --- offline ----------------------------------------------------------------------------------------


@dataclass
class _PublishedList:
    """A verified published status list (or why it is not usable)."""

    error: str = ""
    issuer_id: str = ""
    purpose: str = ""
    bits: bytes = b""
    published_at: datetime.datetime | None = None
    valid_until: datetime.datetime | None = None
    ttl_seconds: float = DEFAULT_TTL_SECONDS


class OfflineVerifier:
    """Verification with no database: cached issuer JWK Sets plus published status-list credentials.

    ``jwks_by_issuer`` maps issuer ids (URLs) to their JWK Set (``{"keys": [...]}``) or to their
    issuer document (``{"name", "jwks": {...}}``); ``status_list_credentials`` are the published
    ``BitstringStatusListCredential`` documents (compact JWS, as served at ``/licences/status/<id>``),
    as a sequence or as ``{url: jws}``. Each list is verified with its issuer's key the first time a
    credential refers to it, and remembered. ``max_status_age``: how old a list may be (from its
    ``validFrom``) before its bits no longer count; past its ``ttl`` the status checks warn.
    """

    def __init__(
        self,
        jwks_by_issuer: Mapping[str, Mapping[str, Any]],
        status_list_credentials: Iterable[str] | Mapping[str, str] = (),
        *,
        max_status_age: datetime.timedelta | None = None,
        leeway: datetime.timedelta = datetime.timedelta(minutes=5),
    ) -> None:
        self.max_status_age = max_status_age or datetime.timedelta(
            seconds=float(getattr(settings, "LICENCE_OFFLINE_MAX_STATUS_AGE", 86400))
        )
        self.leeway = leeway
        self._issuers: dict[str, TrustedIssuer] = {}
        self._keys: dict[str, KeyRecord | None] = {}
        for issuer_id, document in (jwks_by_issuer or {}).items():
            self._add_issuer(str(issuer_id), document)
        self._raw: dict[str, str] = {}
        items = (
            status_list_credentials.items()
            if isinstance(status_list_credentials, Mapping)
            else ((None, jws) for jws in status_list_credentials or ())
        )
        for url, jws in items:
            if not isinstance(jws, str):
                continue
            jws = jws.strip()
            url = url or _peek_id(jws)
            if url:
                self._raw[url] = jws
        self._lists: dict[tuple[str, str], _PublishedList] = {}

    def _add_issuer(self, issuer_id: str, document: Mapping[str, Any]) -> None:
        """Remember one issuer and its keys (unusable JWKs are left out)."""
        if not isinstance(document, Mapping):
            return
        jwks = document.get("jwks", document) if "keys" not in document else document
        name = document.get("name", "") if isinstance(document.get("name", ""), str) else ""
        self._issuers[issuer_id] = TrustedIssuer(
            id=issuer_id, uscc=issuer_uscc(issuer_id), name=name, origin="cache", registered=False
        )
        keys = jwks.get("keys", []) if isinstance(jwks, Mapping) else []
        for jwk in keys if isinstance(keys, list) else []:
            if not isinstance(jwk, Mapping) or jwk.get("alg") not in ALGORITHMS or not isinstance(jwk.get("kid"), str):
                continue
            try:
                public = jose.PublicJwk.from_dict(dict(jwk))
            except (jose.JoseError, ValueError, TypeError):
                continue
            kid = jwk["kid"]
            if kid in self._keys and self._keys[kid] is not None and self._keys[kid].issuer_id != issuer_id:
                self._keys[kid] = None  # the same kid claimed by two issuers: trust neither
                continue
            self._keys[kid] = KeyRecord(kid, jwk["alg"], issuer_id, public)

    @classmethod
    def from_database(cls, uscc: str | None = None, **kwargs) -> OfflineVerifier:
        """A verifier from what this instance publishes (JWK Sets, published lists), for one issuer or all."""
        from dgov.kernel.models import Organization
        from dgov.licenses import keys
        from dgov.licenses.models import IssuerKey, StatusList

        organizations = Organization.objects.filter(
            pk__in=IssuerKey.objects.values("organization_id").distinct()
        ).order_by("pk")
        if uscc is not None:
            organizations = organizations.filter(uscc=uscc)
        jwks = {
            credentials.issuer_url(organization): {"name": organization.name, **keys.issuer_jwks(organization)}
            for organization in organizations
        }
        published = (
            StatusList.objects.filter(organization__in=organizations)
            .exclude(published="")
            .values_list("pk", "published")
        )
        lists = {credentials.status_list_url(list_id): jws for list_id, jws in published}
        return cls(jwks, lists, **kwargs)

    # TrustResolver

    def issuer(self, issuer_id: str) -> TrustedIssuer | None:
        """An issuer whose keys are cached."""
        return self._issuers.get(issuer_id)

    def key(self, kid: str) -> KeyRecord | None:
        """A cached key."""
        return self._keys.get(kid) if isinstance(kid, str) else None

    def record(self, issuer: TrustedIssuer, credential_id: str) -> CredentialRecord | None:
        """Offline there is no register."""
        return None

    def status(self, issuer: TrustedIssuer, refs: Sequence[StatusRef], now: datetime.datetime) -> list[StatusReading]:
        """Bits from the published lists, each verified with the issuer's key."""
        readings = []
        for ref in refs:
            published = self._published(ref.url, ref.purpose)
            if published.error:
                readings.append(StatusReading(None, published.error, source="published"))
            elif published.issuer_id != issuer.id:
                readings.append(StatusReading(None, "status.list_mismatch", source="published"))
            elif not 0 <= ref.index < len(published.bits) * 8:
                readings.append(StatusReading(None, "status.index_out_of_range", source="published"))
            elif published.valid_until is not None and published.valid_until < now:
                readings.append(StatusReading(None, "status.list_expired", source="published"))
            else:
                readings.append(
                    StatusReading(
                        statuslist.bit(published.bits, ref.index),
                        source="published",
                        published_at=published.published_at,
                        ttl_seconds=published.ttl_seconds,
                    )
                )
        return readings

    def _published(self, url: str, purpose: str) -> _PublishedList:
        """The verified list at ``url`` for ``purpose`` (verified once, then remembered)."""
        memo = self._lists.get((url, purpose))
        if memo is None:
            try:
                memo = self._verify_list(url, purpose)
            except Exception:  # noqa: BLE001 - whatever goes wrong, the list is not usable
                logger.warning("status list %s could not be verified", url, exc_info=True)
                memo = _PublishedList(error="status.list_invalid")
            self._lists[(url, purpose)] = memo
        return memo

    def _verify_list(self, url: str, purpose: str) -> _PublishedList:
        """Check a published status-list credential: structure, signature by its issuer's key, claims."""
        jws = self._raw.get(url)
        if jws is None:
            return _PublishedList(error="status.list_missing")
        parsed = _split(jws, MAX_STATUS_LIST_LENGTH)
        if parsed is None:
            return _PublishedList(error="status.list_invalid")
        header, claims, signing_input, signature = parsed
        if header.get("alg") not in ALGORITHMS or header.get("typ") != VC_TYP or header.get("crit"):
            return _PublishedList(error="status.list_invalid")
        issuer_id = _issuer_id(claims.get("issuer"))
        record = self.key(str(header.get("kid", "")))
        if not issuer_id or self.issuer(issuer_id) is None or record is None or record.jwk is None:
            return _PublishedList(error="status.list_untrusted")
        if record.issuer_id != issuer_id or record.alg != header.get("alg"):
            return _PublishedList(error="status.list_untrusted")
        if not record.jwk.verify(signing_input, signature):
            return _PublishedList(error="status.list_signature")
        types = claims.get("type")
        subject = claims.get("credentialSubject")
        if (
            claims.get("id") != url
            or not isinstance(types, list)
            or "BitstringStatusListCredential" not in types
            or not isinstance(subject, dict)
            or subject.get("type") != "BitstringStatusList"
            or subject.get("statusPurpose") != purpose
        ):
            return _PublishedList(error="status.list_mismatch")
        published_at = _instant(claims.get("validFrom"))
        if published_at is None:
            return _PublishedList(error="status.list_invalid")
        valid_until = _instant(claims.get("validUntil")) if claims.get("validUntil") is not None else None
        ttl = subject.get("ttl", DEFAULT_TTL_SECONDS * 1000)
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl < 0:
            return _PublishedList(error="status.list_invalid")
        bits = statuslist.decode(subject.get("encodedList"), max_bytes=MAX_STATUS_LIST_BYTES)
        return _PublishedList(
            issuer_id=issuer_id,
            purpose=purpose,
            bits=bits,
            published_at=published_at,
            valid_until=valid_until,
            ttl_seconds=float(ttl) / 1000,
        )

    def verify(self, presented: Any, *, now: datetime.datetime | None = None) -> VerificationResult:
        """Verify a credential or QR payload from the cached keys and lists alone."""
        return _Run(self, mode="offline", now=now, leeway=self.leeway, max_status_age=self.max_status_age).run(
            presented
        )


def _peek_id(jws: str) -> str:
    """The ``id`` claim of a compact JWS, unverified ("" when there is none)."""
    parsed = _split(jws, MAX_STATUS_LIST_LENGTH)
    if parsed is None:
        return ""
    value = parsed[1].get("id")
    return value if isinstance(value, str) else ""


# --- parsing helpers ---------------------------------------------------------------------------------


def _split(token: str, limit: int) -> tuple[dict, dict, bytes, bytes] | None:
    """(header, claims, signing input, signature) of a compact JWS within ``limit``; None when malformed."""
    if not isinstance(token, str) or not 0 < len(token) <= limit or not _COMPACT.match(token):
        return None
    head, body, sig = token.split(".")
    try:
        header = json.loads(jose.b64url_decode(head))
        claims = json.loads(jose.b64url_decode(body))
        signature = jose.b64url_decode(sig)
    except (jose.JoseError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    if jose.b64url_encode(signature) != sig:  # one encoding per signature: no malleable copies
        return None
    return header, claims, f"{head}.{body}".encode("ascii"), signature


def _instant(value: Any) -> datetime.datetime | None:
    """An aware datetime from an XML Schema dateTime with a zone; None when it is not one."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _epoch(value: Any) -> datetime.datetime | None:
    """An aware datetime from a JWT NumericDate (integer seconds); None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 253402300800:
        return None
    return datetime.datetime.fromtimestamp(value, tz=datetime.UTC)


def _issuer_id(value: Any) -> str:
    """The issuer id of a VC ``issuer`` member (a URL string or an object with ``id``)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= 300 else ""


def _mask_holder_name(kind: str, name: Any) -> str:
    """A person's name masked; an organization's name shown (it is public)."""
    text = name if isinstance(name, str) else ""
    return mask_name(text) if kind == "person" else text[:200]


def _mask_holder_id(kind: str, value: Any) -> str:
    """A resident ID number masked; a USCC shown (it is public)."""
    text = value if isinstance(value, str) else ""
    return mask_id_number(text) if kind == "person" else text[:40]


def _text(value: Any, limit: int = 200) -> str:
    """A string member, or "" when it is not one."""
    return value[:limit] if isinstance(value, str) else ""


def _positive_int(value: Any) -> int | None:
    """An integer ≥ 1 (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 1 << 53 else None


def _index(value: Any) -> int | None:
    """A status-list index: an integer 0 ≤ i < 2**30 (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 30 else None


@dataclass
class _Claims:
    """What a credential or a QR payload says, in one shape, before it is trusted."""

    kind: str
    issuer_id: str
    identifier: str
    version: int
    credential_id: str
    valid_from: datetime.datetime
    valid_until: datetime.datetime | None
    status: list[StatusRef]
    type_code: str = ""
    digest: bytes | None = None  # QR: SM3 of the credential it stands for
    summary: LicenceSummary = field(default_factory=LicenceSummary)


class _InputError(Exception):
    """The presented input is not a credential or QR payload (reason code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code, self.message = code, message


def _credential_claims(claims: dict) -> _Claims:
    """The claims of a VC 2.0 licence credential; raises :class:`_InputError` when its shape is wrong."""
    bad = _InputError("input.not_a_licence", _("内容不是电子证照凭证"))
    context = claims.get("@context")
    types = claims.get("type")
    if not isinstance(context, list) or not context or context[0] != credentials.VC_CONTEXT:
        raise bad
    if not isinstance(types, list) or "VerifiableCredential" not in types or credentials.VC_TYPE not in types:
        raise bad
    subject = claims.get("credentialSubject")
    licence = subject.get("licence") if isinstance(subject, dict) else None
    if not isinstance(licence, dict):
        raise bad
    identifier, version = licence.get("identifier"), _positive_int(licence.get("version"))
    issuer_id = _issuer_id(claims.get("issuer"))
    valid_from = _instant(claims.get("validFrom"))
    valid_until = _instant(claims.get("validUntil")) if claims.get("validUntil") is not None else None
    if not isinstance(identifier, str) or len(identifier) > 200 or version is None or not issuer_id:
        raise bad
    if valid_from is None or (claims.get("validUntil") is not None and valid_until is None):
        raise _InputError("input.bad_dates", _("凭证的有效期格式不正确"))
    entries = claims.get("credentialStatus")
    entries = [entries] if isinstance(entries, dict) else entries
    refs = _status_refs(entries)
    issuer = claims.get("issuer")
    summary = LicenceSummary(
        identifier=identifier,
        version=version,
        type_code=_text(licence.get("typeCode"), 40),
        type_name=_text(licence.get("typeName")),
        number=_text(licence.get("number"), 64),
        issuer_name=_text(issuer.get("name")) if isinstance(issuer, dict) else "",
        issuer_uscc=issuer_uscc(issuer_id),
        holder_kind=_text(subject.get("holderKind"), 20),
        holder_name=_mask_holder_name(subject.get("holderKind"), subject.get("name")),
        holder_id=_mask_holder_id(subject.get("holderKind"), subject.get("identifier")),
        valid_from=_text(licence.get("validFrom"), 20),
        valid_until=_text(licence.get("validUntil"), 20) or None,
        issued=_text(licence.get("issued"), 40),
    )
    return _Claims(
        kind="credential",
        issuer_id=issuer_id,
        identifier=identifier,
        version=version,
        credential_id=_text(claims.get("id"), 300),
        valid_from=valid_from,
        valid_until=valid_until,
        status=refs,
        type_code=summary.type_code,
        summary=summary,
    )


def _status_refs(entries: Any) -> list[StatusRef]:
    """The revocation and suspension entries (exactly one each); raises :class:`_InputError` otherwise."""
    bad = _InputError("input.bad_status", _("凭证的状态条目不完整或格式不正确"))
    if not isinstance(entries, list) or not 1 <= len(entries) <= 4:
        raise bad
    refs: dict[str, StatusRef] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("type") != "BitstringStatusListEntry":
            raise bad
        purpose, url, index = (
            entry.get("statusPurpose"),
            entry.get("statusListCredential"),
            entry.get("statusListIndex"),
        )
        if purpose not in ("revocation", "suspension") or purpose in refs:
            raise bad
        if not isinstance(url, str) or not 0 < len(url) <= 300:
            raise bad
        if not isinstance(index, str) or not index.isdigit() or len(index) > 9:
            raise bad
        refs[purpose] = StatusRef(purpose, url, int(index))
    if set(refs) != {"revocation", "suspension"}:
        raise bad
    return [refs["revocation"], refs["suspension"]]


def _qr_claims(claims: dict) -> _Claims:
    """The claims of a QR payload (see :mod:`dgov.licenses.qr`); raises :class:`_InputError` when malformed."""
    bad = _InputError("input.not_a_licence", _("二维码内容不是电子证照核验码"))
    issuer_id, identifier = _issuer_id(claims.get("iss")), claims.get("sub")
    version = _positive_int(claims.get("ver"))
    valid_from = _epoch(claims.get("nbf"))
    valid_until = _epoch(claims.get("exp")) if claims.get("exp") is not None else None
    status, digest = claims.get("st"), claims.get("dig")
    if not issuer_id or not issuer_origin(issuer_id) or not isinstance(identifier, str) or len(identifier) > 200:
        raise bad
    if version is None or valid_from is None or (claims.get("exp") is not None and valid_until is None):
        raise bad
    if not isinstance(status, list) or len(status) != 2 or not isinstance(digest, str) or len(digest) != 43:
        raise bad
    refs = []
    for purpose, pair in zip(("revocation", "suspension"), status, strict=True):
        if not isinstance(pair, list) or len(pair) != 2 or _positive_int(pair[0]) is None or _index(pair[1]) is None:
            raise bad
        refs.append(StatusRef(purpose, f"{issuer_origin(issuer_id)}{STATUS_PATH}{pair[0]}", pair[1]))
    try:
        digest_bytes = jose.b64url_decode(digest)
    except jose.JoseError:
        raise bad from None
    summary = LicenceSummary(
        identifier=identifier,
        version=version,
        type_name=_text(claims.get("tn")),
        issuer_uscc=issuer_uscc(issuer_id),
        valid_from=timezone.localtime(valid_from).date().isoformat(),
        valid_until=timezone.localtime(valid_until).date().isoformat() if valid_until else None,
    )
    return _Claims(
        kind="qr",
        issuer_id=issuer_id,
        identifier=identifier,
        version=version,
        credential_id=credentials.credential_id(identifier, version),
        valid_from=valid_from,
        valid_until=valid_until,
        status=refs,
        digest=digest_bytes,
        summary=summary,
    )


def qr_payload_of(presented: str) -> str | None:
    """The payload of a QR URL ``<site>/licences/q/<payload>`` (None when ``presented`` is not such a URL)."""
    if not presented.startswith(("http://", "https://")):
        return None
    try:
        path = urlsplit(presented).path
    except ValueError:
        return ""
    if QR_PATH not in path:
        return ""
    return unquote(path.rsplit(QR_PATH, 1)[1]).strip("/")


# --- the verification run -----------------------------------------------------------------------------


class _Run:
    """One verification: checks in order, each failure recorded with its reason; never valid on an error."""

    def __init__(
        self,
        resolver: TrustResolver,
        *,
        mode: str,
        now: datetime.datetime | None,
        leeway: datetime.timedelta = datetime.timedelta(minutes=5),
        max_status_age: datetime.timedelta | None = None,
    ) -> None:
        self.resolver = resolver
        self.mode = mode
        self.now = now or timezone.now()
        self.leeway = leeway
        self.max_status_age = max_status_age
        self.checks: list[Check] = []
        self.kind = ""
        self.summary: LicenceSummary | None = None
        self.claims: _Claims | None = None
        self.verified = False

    def passed(self, code: str, reason_code: str, reason: Any) -> None:
        """Record a passed check."""
        self.checks.append(Check(code, CheckStatus.PASSED, reason_code, reason))

    def warn(self, code: str, reason_code: str, reason: Any) -> None:
        """Record a check that passed with a caveat."""
        self.checks.append(Check(code, CheckStatus.WARNING, reason_code, reason))

    def fail(self, code: str, reason_code: str, reason: Any, verdict: str = Verdict.INVALID) -> None:
        """Record a failed check and the verdict it implies."""
        self.checks.append(Check(code, CheckStatus.FAILED, reason_code, reason, verdict))

    def skip(self, *codes: str) -> None:
        """Record checks that could not run because an earlier one failed."""
        for code in codes:
            if not any(check.code == code for check in self.checks):
                self.checks.append(Check(code, CheckStatus.SKIPPED, "skipped", _("前序检查未通过，未进行此项检查")))

    def run(self, presented: Any) -> VerificationResult:
        """Run every check; an exception becomes a failed ``internal`` check (verdict ``error``)."""
        try:
            self._run(presented)
        except Exception:  # noqa: BLE001 - never answer valid (or crash) on an error
            logger.exception("licence verification failed with an error")
            self.fail("internal", "internal.error", _("核验过程中出错，无法给出结论"), Verdict.ERROR)
        return self._result()

    def _required(self) -> tuple[str, ...]:
        """The checks that must pass for a valid verdict."""
        required = (
            "input",
            "algorithm",
            "issuer",
            "key",
            "signature",
            "identifier",
            "validity",
            "revocation",
            "suspension",
        )
        if self.mode == "online":
            required += ("record",)
        return required

    def _result(self) -> VerificationResult:
        """The verdict: the strongest failure, else valid only when every required check passed."""
        failures = {check.verdict or Verdict.INVALID for check in self.checks if check.status == CheckStatus.FAILED}
        verdict = next((v for v in _PRECEDENCE if v in failures), None)
        if verdict is None:
            done = {check.code for check in self.checks if check.status in (CheckStatus.PASSED, CheckStatus.WARNING)}
            verdict = Verdict.VALID if set(self._required()) <= done else Verdict.ERROR
        claims = self.claims if self.verified else None
        order = {code: position for position, code in enumerate(CHECK_LABELS)}
        return VerificationResult(
            verdict=verdict,
            checks=sorted(self.checks, key=lambda check: order.get(check.code, len(order))),
            kind=self.kind,
            mode=self.mode,
            checked_at=self.now,
            summary=self.summary if self.verified else None,
            identifier=claims.identifier if claims else "",
            version=claims.version if claims else None,
            issuer_uscc=issuer_uscc(claims.issuer_id) if claims else "",
        )

    def _run(self, presented: Any) -> None:
        """The checks in order."""
        later = ("algorithm", "issuer", "key", "signature", "identifier", "validity", "revocation", "suspension")
        if self.mode == "online":
            later += ("record",)
        parsed = self._input(presented)
        if parsed is None:
            return self.skip(*later)
        header, payload, signing_input, signature = parsed
        if not self._algorithm(header):
            return self.skip(*later)
        try:
            claims = _qr_claims(payload) if self.kind == "qr" else _credential_claims(payload)
        except _InputError as exc:
            self.fail("input", exc.code, exc.message)
            return self.skip(*later)
        if claims.kind == "credential":
            claims.digest = sm3(signing_input + b"." + jose.b64url_encode(signature).encode("ascii"))
        self.claims = claims
        self.passed(
            "input",
            "input.ok",
            _("电子证照凭证（VC-JOSE）格式正确") if self.kind == "credential" else _("电子证照二维码格式正确"),
        )
        issuer = self._issuer(claims)
        if issuer is None:
            return self.skip(*later)
        key = self._key(header, issuer)
        if key is None:
            return self.skip(*later)
        if not key.verify(signing_input, signature):
            self.fail("signature", "signature.invalid", _("数字签名验证失败：内容被篡改或签名伪造"))
            return self.skip(*later)
        self.verified = True
        self.summary = claims.summary
        if issuer.name:
            self.summary.issuer_name = issuer.name
        self.summary.recognized_by = issuer.via
        self.passed("signature", "signature.ok", _("数字签名有效，内容未被篡改"))
        self._identifier(claims, issuer)
        self._validity(claims)
        self._status(claims, issuer)
        if self.mode == "online":
            self._record(claims, issuer)
        return None

    def _input(self, presented: Any) -> tuple[dict, dict, bytes, bytes] | None:
        """Size, form and encoding of what was presented; sets ``kind``."""
        if isinstance(presented, bytes | bytearray):
            presented = bytes(presented[: MAX_CREDENTIAL_LENGTH + 1]).decode("utf-8", "replace")
        if not isinstance(presented, str) or not presented.strip():
            self.fail("input", "input.empty", _("没有提交凭证或二维码内容"))
            return None
        text = presented.strip()
        if len(text) > MAX_CREDENTIAL_LENGTH:
            self.fail(
                "input", "input.too_large", _fmt(_("提交的内容过大（超过 %(n)s 个字符）"), {"n": MAX_CREDENTIAL_LENGTH})
            )
            return None
        payload = qr_payload_of(text)
        if payload is not None:
            if not payload:
                self.fail("input", "input.not_a_licence", _("该网址不是电子证照核验码"))
                return None
            text = payload
            self.kind = "qr"
        limit = MAX_QR_LENGTH if self.kind == "qr" else MAX_CREDENTIAL_LENGTH
        if len(text) > limit:
            self.fail("input", "input.too_large", _fmt(_("提交的内容过大（超过 %(n)s 个字符）"), {"n": limit}))
            return None
        parsed = _split(text, limit)
        if parsed is None:
            self.fail("input", "input.malformed", _("内容不是有效的紧凑 JWS（三段 base64url 编码的 JSON）"))
            return None
        typ = parsed[0].get("typ")
        if typ == QR_TYP:
            self.kind = "qr"
        elif typ == VC_TYP and self.kind != "qr":
            self.kind = "credential"
        if self.kind == "qr" and len(text) > MAX_QR_LENGTH:
            self.fail("input", "input.too_large", _fmt(_("提交的内容过大（超过 %(n)s 个字符）"), {"n": MAX_QR_LENGTH}))
            return None
        return parsed

    def _algorithm(self, header: dict) -> bool:
        """``typ`` and ``alg`` acceptable: a licence credential or QR payload signed with ES256 or SM2."""
        alg, typ = header.get("alg"), header.get("typ")
        if header.get("crit"):
            self.fail("algorithm", "algorithm.crit", _("签名头包含不支持的关键参数（crit）"))
        elif not isinstance(alg, str) or alg.lower() == "none":
            self.fail("algorithm", "algorithm.none", _("凭证未签名（alg 为 none 或缺失），不予接受"))
        elif alg not in ALGORITHMS:
            self.fail(
                "algorithm",
                "algorithm.not_allowed",
                _fmt(_("签名算法 %(alg)s 不被接受（仅接受 ES256 与 SM2）"), {"alg": alg[:20]}),
            )
        elif typ not in (VC_TYP, QR_TYP) or (self.kind == "qr" and typ != QR_TYP):
            self.fail("algorithm", "algorithm.typ", _("凭证类型（typ）不是电子证照凭证或核验码"))
        else:
            self.passed("algorithm", "algorithm.ok", _fmt(_("签名算法 %(alg)s"), {"alg": alg}))
            return True
        return False

    def _issuer(self, claims: _Claims) -> TrustedIssuer | None:
        """The issuer is known and trusted."""
        issuer = self.resolver.issuer(claims.issuer_id)
        if issuer is None:
            self.fail(
                "issuer",
                "issuer.unknown",
                _fmt(_("签发机构 %(issuer)s 不在受信任的签发机构中"), {"issuer": claims.issuer_id[:120]}),
                Verdict.UNKNOWN_ISSUER,
            )
            return None
        name = {"name": issuer.name or issuer.uscc}
        if issuer.origin == "local":
            self.passed("issuer", "issuer.trusted", _fmt(_("%(name)s（本平台签发机构）"), name))
        elif issuer.via:
            self.passed(
                "issuer",
                "issuer.recognized",
                _fmt(_("%(name)s（经 %(via)s 的信任列表互认）"), {**name, "via": issuer.via}),
            )
        else:
            self.passed("issuer", "issuer.trusted", _fmt(_("%(name)s（受信任的签发机构）"), name))
        return issuer

    def _key(self, header: dict, issuer: TrustedIssuer) -> jose.PublicJwk | None:
        """The key named by ``kid`` exists, belongs to the issuer, is not revoked, and is of the header's ``alg``."""
        kid = header.get("kid")
        record = self.resolver.key(kid) if isinstance(kid, str) and 0 < len(kid) <= 200 else None
        if record is None:
            self.fail("key", "key.unknown", _("签名密钥未知（kid 不属于任何受信任的签发机构）"))
        elif record.issuer_id != issuer.id:
            self.fail("key", "key.other_issuer", _("签名密钥不属于所声明的签发机构（疑为他人冒签）"))
        elif record.revoked or record.jwk is None:
            self.fail("key", "key.revoked", _("签名密钥已被吊销，其签发的凭证不再有效"))
        elif record.alg != header.get("alg"):
            self.fail("key", "key.alg_mismatch", _("签名算法与密钥不符"))
        else:
            self.passed("key", "key.ok", _fmt(_("签名密钥属于该签发机构（%(kid)s）"), {"kid": record.kid}))
            return record.jwk
        return None

    def _identifier(self, claims: _Claims, issuer: TrustedIssuer) -> None:
        """Check character, the issuer code inside the identifier, and consistent ids."""
        try:
            parts = credentials.parse_identifier(claims.identifier)
        except credentials.IdentifierError:
            self.fail("identifier", "identifier.malformed", _("证照标识格式或校验位不正确"))
            return
        if parts["issuer_uscc"] != issuer.uscc:
            self.fail("identifier", "identifier.issuer_mismatch", _("证照标识中的颁发机构代码与签名机构不一致"))
        elif claims.credential_id != credentials.credential_id(claims.identifier, claims.version) or (
            claims.type_code and claims.type_code != parts["type_code"]
        ):
            self.fail("identifier", "identifier.inconsistent", _("凭证标识、证照标识与证照类型代码不一致"))
        else:
            self.passed("identifier", "identifier.ok", _fmt(_("证照标识 %(id)s 校验通过"), {"id": claims.identifier}))

    def _validity(self, claims: _Claims) -> None:
        """``validFrom`` ≤ now ≤ ``validUntil``."""
        until = timezone.localtime(claims.valid_until).date().isoformat() if claims.valid_until else _("长期")
        start = timezone.localtime(claims.valid_from).date().isoformat()
        if claims.valid_from > self.now + self.leeway:
            self.fail(
                "validity",
                "validity.not_yet_valid",
                _fmt(_("尚未生效：有效期自 %(start)s 起"), {"start": start}),
                Verdict.NOT_YET_VALID,
            )
        elif claims.valid_until is not None and claims.valid_until < self.now:
            self.fail(
                "validity",
                "validity.expired",
                _fmt(_("已过有效期：有效期至 %(until)s"), {"until": until}),
                Verdict.EXPIRED,
            )
        else:
            self.passed(
                "validity",
                "validity.ok",
                _fmt(_("在有效期内：%(start)s 至 %(until)s"), {"start": start, "until": until}),
            )

    def _status(self, claims: _Claims, issuer: TrustedIssuer) -> None:
        """The revocation and suspension bits (working copy online, published lists offline)."""
        readings = self.resolver.status(issuer, claims.status, self.now)
        if len(readings) != len(claims.status):
            raise RuntimeError("the resolver answered a different number of status readings")
        for ref, reading in zip(claims.status, readings, strict=True):
            code = ref.purpose
            if reading.value is None:
                self.fail(
                    code, reading.error or "status.unavailable", _status_error(reading.error), Verdict.STATUS_UNKNOWN
                )
                continue
            stale = self._staleness(reading)
            if stale is not None and stale[0] == "failed":
                self.fail(code, "status.stale", stale[1], Verdict.STATUS_UNKNOWN)
                continue
            if reading.value:
                if code == "revocation":
                    reason = _("已撤销") if self.mode == "online" else _("已撤销（证照被撤销，或已换发新版本）")
                    self.fail(code, "status.revoked", reason, Verdict.REVOKED)
                else:
                    self.fail(code, "status.suspended", _("已暂停"), Verdict.SUSPENDED)
                continue
            reason = _("未撤销") if code == "revocation" else _("未暂停")
            if reading.source == "working":
                self.passed(code, "status.ok", _fmt(_("%(state)s（签发机构实时状态）"), {"state": reason}))
            elif reading.source == "remote":
                self.passed(
                    code, "status.ok", _fmt(_("%(state)s；%(note)s"), {"state": reason, "note": _remote_note(reading)})
                )
            elif stale is not None:
                self.warn(code, "status.aging", _fmt(_("%(state)s；%(note)s"), {"state": reason, "note": stale[1]}))
            else:
                note = _published_note(reading, self.now)
                self.passed(code, "status.ok", _fmt(_("%(state)s；%(note)s"), {"state": reason, "note": note}))

    def _staleness(self, reading: StatusReading) -> tuple[str, Any] | None:
        """None for a fresh list; ("warning", text) past its ttl; ("failed", text) past the maximum age."""
        if reading.source != "published" or reading.published_at is None:
            return None
        if reading.published_at > self.now + self.leeway:
            return "failed", _("状态列表的发布时间晚于当前时间，不予采信")
        age = self.now - reading.published_at
        note = _published_note(reading, self.now)
        if self.max_status_age is not None and age > self.max_status_age:
            return "failed", _fmt(_("状态列表已过期（%(note)s），无法确认当前状态"), {"note": note})
        if age.total_seconds() > (reading.ttl_seconds or 0):
            return "warning", _fmt(_("状态列表已超过建议的缓存时长（%(note)s），此后的变更可能未反映"), {"note": note})
        return None

    def _record(self, claims: _Claims, issuer: TrustedIssuer) -> None:
        """Online, for issuers whose register this instance holds: superseded versions, the copy on file."""
        if not issuer.registered:
            self.passed("record", "record.not_registered", _("签发机构的登记簿不在本平台，以状态列表为准"))
            return
        record = self.resolver.record(issuer, claims.credential_id)
        if record is None:
            self.fail("record", "record.unknown", _("签发机构没有签发该凭证的记录"))
            return
        matches = record.digest == claims.digest
        if matches and claims.kind == "qr" and record.summary is not None:
            self.summary = record.summary()  # the QR payload carries no holder data: the register's summary
        if not matches:
            self.fail("record", "record.mismatch", _("与签发记录中的凭证不一致"))
        elif record.superseded_at is not None:
            when = timezone.localtime(record.superseded_at).date().isoformat()
            self.fail(
                "record",
                "record.superseded",
                _fmt(_("该版本已于 %(date)s 被新版本取代，请出示最新版本"), {"date": when}),
                Verdict.SUPERSEDED,
            )
        else:
            self.passed("record", "record.ok", _("与签发记录一致，为当前版本"))


def _published_note(reading: StatusReading, now: datetime.datetime) -> Any:
    """When a published list was issued, how old it is and its ttl."""
    if reading.published_at is None:
        return ""
    minutes = max(0, int((now - reading.published_at).total_seconds() // 60))
    return _fmt(
        _("状态列表发布于 %(at)s，距今 %(minutes)s 分钟，缓存时长 %(ttl)s 秒"),
        {
            "at": timezone.localtime(reading.published_at).strftime("%Y-%m-%d %H:%M"),
            "minutes": minutes,
            "ttl": int(reading.ttl_seconds or 0),
        },
    )


def _remote_note(reading: StatusReading) -> Any:
    """When a remote issuer published the list and when this instance fetched it."""
    fetched = timezone.localtime(reading.fetched_at).strftime("%Y-%m-%d %H:%M") if reading.fetched_at else "—"
    published = timezone.localtime(reading.published_at).strftime("%Y-%m-%d %H:%M") if reading.published_at else "—"
    return _fmt(
        _("状态列表由签发机构于 %(published)s 发布，本平台于 %(fetched)s 从签发机构获取"),
        {"published": published, "fetched": fetched},
    )


def _status_error(code: str) -> Any:
    """The reason text of a status that could not be read."""
    texts = {
        "status.list_unknown": _("找不到凭证所引用的状态列表"),
        "status.list_missing": _("没有该凭证的状态列表（离线核验需先缓存已发布的状态列表）"),
        "status.list_invalid": _("状态列表凭证格式不正确"),
        "status.list_untrusted": _("状态列表不是由该签发机构的密钥签发的"),
        "status.list_signature": _("状态列表凭证签名无效（可能被篡改）"),
        "status.list_mismatch": _("状态列表与凭证的签发机构或用途不符"),
        "status.list_expired": _("状态列表已过有效期"),
        "status.index_out_of_range": _("状态位序超出状态列表范围"),
        "status.list_unavailable": _("无法从签发机构获取状态列表，且没有未过期的缓存"),
    }
    return texts.get(code, _("无法读取状态"))


def verify(
    presented: Any,
    *,
    online: bool = True,
    resolver: TrustResolver | None = None,
    offline: OfflineVerifier | None = None,
    now: datetime.datetime | None = None,
) -> VerificationResult:
    """Verify a credential, QR payload or QR URL: online against the register, or offline.

    Offline without an ``offline`` verifier, one is built from what this instance publishes for
    the issuer the input names (its JWK Set and published status lists) — what a verifier who
    cached them would see.
    """
    if online:
        return _Run(resolver or default_resolver(), mode="online", now=now).run(presented)
    if offline is None:
        try:
            offline = OfflineVerifier.from_database(uscc=_peek_issuer_uscc(presented))
        except Exception:  # noqa: BLE001 - never answer valid (or crash) on an error
            logger.exception("could not load the published keys and status lists")
            offline = OfflineVerifier({})
    return offline.verify(presented, now=now)


def _peek_issuer_uscc(presented: Any) -> str:
    """The issuer USCC an input claims (unverified; "" when none), to load only that issuer's data."""
    if not isinstance(presented, str):
        return ""
    text = presented.strip()
    text = qr_payload_of(text) or text
    parsed = _split(text, MAX_CREDENTIAL_LENGTH)
    if parsed is None:
        return ""
    claims = parsed[1]
    return issuer_uscc(_issuer_id(claims.get("issuer") or claims.get("iss")))


def log_verification(result: VerificationResult, *, channel: str) -> None:
    """One log line per verification: channel, verdict, failed reason codes, licence identifier — no holder data."""
    logger.info(
        "licence verification",
        extra={
            "channel": channel,
            "verdict": result.verdict,
            "mode": result.mode,
            "kind": result.kind,
            "licence_identifier": result.identifier,
            "licence_version": result.version,
            "issuer_uscc": result.issuer_uscc,
            "failed_checks": ",".join(check.reason_code for check in result.failed),
        },
    )
