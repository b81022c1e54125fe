"""PAdES signatures of licence PDFs (电子证照签章): the platform's certificate chain, signing and verification.

**Certificates.** The instance runs its own small PKI, created on first use: the **licence CA**
("dgov 电子证照签章根证书", ECDSA P-256, 30 years; one active per instance, its private key
wrapped with SM4-GCM under the master key in :class:`~dgov.licenses.models.PdfCertificate`) and,
per issuing department, a **seal certificate** (10 years, never beyond the CA) for the
department's ES256 :class:`~dgov.licenses.models.IssuerKey` — the same key that signs its ES256
credentials, so rotating or revoking that key (:mod:`dgov.licenses.keys`) rotates or revokes its
PDF seal too. The subject names the department (O, CN) and its USCC (organizationIdentifier
``NTRCN-<USCC>``, ETSI EN 319 412-1); key usage digitalSignature + nonRepudiation, extended key
usage documentSigning (RFC 9336). A certificate is replaced 30 days before it ends; the CA a year
before. Retired certificates keep verifying what they signed. SM2 certificates are not used in
PDFs: ordinary readers (Acrobat, Foxit, pdf.js, Poppler) cannot validate them.

**Signing** (:func:`sign_pdf`): PAdES baseline B-B (``ETSI.CAdES.detached``, SHA-256) into the seal
field that :mod:`dgov.licenses.pdf` drew (the signature's appearance *is* the seal), as a
certification signature that permits no changes (DocMDP P=1). No timestamp (B-T): that needs an
RFC 3161 time-stamping authority the platform does not have; the signing time is the signer's
claim, checked against the certificate and the clock.

**Verification** (:func:`verify_pdf`) answers a
:class:`~dgov.licenses.verification.VerificationResult` (kind ``pdf``) with these checks:
``input`` (size, a readable PDF, the seal signature present), ``signature`` (intact; covers the
whole file or only later additions that change nothing — any altered byte or content added after
signing fails it), ``issuer`` (the certificate chains to this instance's licence CA), ``key`` (a seal
certificate this instance issued, its key not revoked), ``identifier`` (the licence identifier in
the signed revision's XMP is well formed, names a licence here, and the signer is that licence's
issuer), then the licence's own status through the credential of the signed version, verified by
:func:`dgov.licenses.verification.verify` (validity, revocation, suspension, superseded versions).
It is never ``valid`` after an error.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
from dataclasses import dataclass
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.crypto import CryptoError, sm4_gcm_decrypt, sm4_gcm_encrypt
from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.kernel.services.keys import master_key
from dgov.licenses import credentials, keys, pdf, qr, verification
from dgov.licenses.models import Credential, IssuerKey, Licence, PdfCertificate
from dgov.licenses.pdf import SEAL_FIELD, read_identifiers
from dgov.licenses.verification import Check, CheckStatus, Verdict, VerificationResult
from dgov.oidc import jose

__all__ = [
    "MAX_PDF_BYTES",
    "ca_certificates",
    "licence_ca",
    "licence_pdf",
    "sign_pdf",
    "signer_certificate",
    "verify_pdf",
]

logger = logging.getLogger("dgov.licenses.pdfsign")

MAX_PDF_BYTES = 5 * 1024 * 1024
CA_YEARS = 30
SIGNER_YEARS = 10
RENEW_SIGNER_BEFORE = datetime.timedelta(days=30)
RENEW_CA_BEFORE = datetime.timedelta(days=365)
CLOCK_SKEW = datetime.timedelta(minutes=5)
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning, RFC 9336
PDF_ALG = "ES256"


# --- certificates ------------------------------------------------------------------------------------


def _fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _ca_aad(fingerprint: str) -> bytes:
    """Associated data binding the wrapped CA key to its certificate."""
    return f"dgov-licence-ca|{fingerprint}".encode()


def _years(start: datetime.datetime, years: int) -> datetime.datetime:
    """``start`` plus whole years (29 February falls back to the 28th)."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return start.replace(year=start.year + years, day=28)


def _key_usage(*, signer: bool) -> x509.KeyUsage:
    """digitalSignature + nonRepudiation for seals; keyCertSign + cRLSign for the CA."""
    return x509.KeyUsage(
        digital_signature=signer,
        content_commitment=signer,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_name() -> x509.Name:
    """The licence CA's distinguished name (the instance's federation code tells instances apart)."""
    instance = str(getattr(settings, "FEDERATION_INSTANCE", "") or "dgov")
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dgov"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, instance[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, f"dgov 电子证照签章根证书 {instance}"[:64]),
        ]
    )


@dataclass(frozen=True)
class _Ca:
    """The active licence CA: its row, certificate and private key."""

    row: PdfCertificate
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _create_ca(now: datetime.datetime) -> PdfCertificate:
    """Generate, store and audit a new active licence CA (inside the caller's transaction)."""
    private = ec.generate_private_key(ec.SECP256R1())
    name = _ca_name()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(_years(now, CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signer=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False)
        .sign(private, hashes.SHA256())
    )
    fingerprint = _fingerprint(cert)
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    row = PdfCertificate.objects.create(
        kind=PdfCertificate.Kind.CA,
        subject=cert.subject.rfc4514_string()[:300],
        serial=format(cert.serial_number, "x")[:40],
        fingerprint=fingerprint,
        certificate=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        wrapped=sm4_gcm_encrypt(master_key(), der, _ca_aad(fingerprint)),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )
    audit.record(
        "licenses.pdf_ca.create",
        actor=None,
        target=row,
        detail={"fingerprint": fingerprint, "subject": row.subject, "reason": "first use"},
    )
    return row


def _load_ca(row: PdfCertificate) -> _Ca:
    """Unwrap a stored CA."""
    try:
        der = sm4_gcm_decrypt(master_key(), bytes(row.wrapped), _ca_aad(row.fingerprint))
    except CryptoError:
        raise RuntimeError(
            f"cannot unwrap the licence CA key {row.fingerprint[:16]}: wrong master key or altered row"
        ) from None
    private = serialization.load_der_private_key(der, password=None)
    return _Ca(row, x509.load_pem_x509_certificate(row.certificate.encode("ascii")), private)


def licence_ca(now: datetime.datetime | None = None) -> _Ca:
    """The instance's active licence CA, created (and audited) on first use, renewed a year before it ends."""
    now = now or timezone.now()
    active = PdfCertificate.Status.ACTIVE
    row = PdfCertificate.objects.filter(kind=PdfCertificate.Kind.CA, status=active).first()
    if row is None or row.not_after - RENEW_CA_BEFORE <= now:
        with transaction.atomic():
            current = (
                PdfCertificate.objects.select_for_update().filter(kind=PdfCertificate.Kind.CA, status=active).first()
            )
            if current is not None and current.not_after - RENEW_CA_BEFORE > now:
                row = current  # another process renewed it meanwhile
            else:
                if current is not None:
                    current.status = PdfCertificate.Status.RETIRED
                    current.save(update_fields=["status"])
                try:
                    with transaction.atomic():
                        row = _create_ca(now)
                except IntegrityError:  # pragma: no cover - a concurrent first use won
                    row = PdfCertificate.objects.get(kind=PdfCertificate.Kind.CA, status=active)
    return _load_ca(row)


def ca_certificates() -> list[x509.Certificate]:
    """Every licence CA certificate of this instance (active and retired): the trust anchors of its PDFs."""
    rows = PdfCertificate.objects.filter(kind=PdfCertificate.Kind.CA).order_by("-created_at", "-id")
    return [x509.load_pem_x509_certificate(row.certificate.encode("ascii")) for row in rows]


def _signer_name(organization: Organization) -> x509.Name:
    """A department's seal certificate subject: country, name, USCC as organizationIdentifier."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization.name[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRCN-{organization.uscc}"),
            x509.NameAttribute(NameOID.COMMON_NAME, organization.name[:64]),
        ]
    )


def _issue_signer(organization: Organization, key: jose.PrivateJwk, key_id: int, now: datetime.datetime):
    """Certify ``key`` for ``organization`` under the active CA (inside the caller's transaction)."""
    ca = licence_ca(now)
    public = key.key.public_key()
    not_after = min(_years(now, SIGNER_YEARS), ca.cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_signer_name(organization))
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signer=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    row = PdfCertificate.objects.create(
        kind=PdfCertificate.Kind.SIGNER,
        key_id=key_id,
        ca=ca.row,
        subject=cert.subject.rfc4514_string()[:300],
        serial=format(cert.serial_number, "x")[:40],
        fingerprint=_fingerprint(cert),
        certificate=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )
    audit.record(
        "licenses.pdf_certificate.create",
        actor=None,
        target=row,
        detail={"organization": organization.code, "kid": key.kid, "fingerprint": row.fingerprint},
    )
    return row, cert


@dataclass(frozen=True)
class SignerCertificate:
    """A department's seal: its certificate row, the certificate, its CA's certificate and the private key."""

    row: PdfCertificate
    cert: x509.Certificate
    ca_cert: x509.Certificate
    key: jose.PrivateJwk


def signer_certificate(organization: Organization, now: datetime.datetime | None = None) -> SignerCertificate:
    """The seal certificate of ``organization``'s active ES256 key, issued (and audited) when missing or ending."""
    now = now or timezone.now()
    key, key_id = keys.active_key(organization, PDF_ALG)
    active = PdfCertificate.Status.ACTIVE
    row = (
        PdfCertificate.objects.select_related("ca")
        .filter(kind=PdfCertificate.Kind.SIGNER, key_id=key_id, status=active)
        .first()
    )
    if row is None or row.not_after - RENEW_SIGNER_BEFORE <= now:
        with transaction.atomic():
            IssuerKey.objects.select_for_update().filter(pk=key_id).first()  # one issuance per key at a time
            current = (
                PdfCertificate.objects.select_related("ca")
                .filter(kind=PdfCertificate.Kind.SIGNER, key_id=key_id, status=active)
                .first()
            )
            if current is not None and current.not_after - RENEW_SIGNER_BEFORE > now:
                row = current
            else:
                if current is not None:
                    current.status = PdfCertificate.Status.RETIRED
                    current.save(update_fields=["status"])
                row, _cert = _issue_signer(organization, key, key_id, now)
                row = PdfCertificate.objects.select_related("ca").get(pk=row.pk)
    return SignerCertificate(
        row=row,
        cert=x509.load_pem_x509_certificate(row.certificate.encode("ascii")),
        ca_cert=x509.load_pem_x509_certificate(row.ca.certificate.encode("ascii")),
        key=key,
    )


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    """The certificate as pyHanko's asn1crypto object."""
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


# --- signing -------------------------------------------------------------------------------------------


def sign_pdf(data: bytes, organization: Organization, *, reason: str | None = None) -> bytes:
    """Sign a rendered licence PDF's seal field for ``organization`` (PAdES B-B, certification, no changes)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import NoOpStampStyle
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    seal = signer_certificate(organization)
    signer = signers.SimpleSigner(
        signing_cert=_asn1(seal.cert),
        signing_key=asn1_keys.PrivateKeyInfo.load(seal.key.to_der()),
        cert_registry=SimpleCertificateStore.from_certs([_asn1(seal.ca_cert)]),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason or _("电子证照签发"),
        name=organization.name,
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    out = signers.PdfSigner(meta, signer=signer, stamp_style=NoOpStampStyle()).sign_pdf(writer)
    return out.getvalue()


# --- verification --------------------------------------------------------------------------------------


class _Stop(Exception):
    """A failed check ends the run (nothing after a failed integrity or trust check can be believed)."""


class _PdfRun:
    """One PDF verification: checks in order, stopping at the first failure; never valid on an error."""

    def __init__(self, now: datetime.datetime):
        self.now = now
        self.checks: list = []
        self.identifier = ""
        self.version: int | None = None
        self.issuer_uscc = ""

    def passed(self, code: str, reason_code: str, reason: str) -> None:
        """Record a passed check."""
        self.checks.append(Check(code, CheckStatus.PASSED, reason_code, reason))

    def fail(self, code: str, reason_code: str, reason: str, verdict: str):
        """Record a failed check and stop."""
        self.checks.append(Check(code, CheckStatus.FAILED, reason_code, reason, verdict))
        raise _Stop

    def result(self, verdict: str, summary=None):
        """The verification result of this run."""
        return VerificationResult(
            verdict=verdict,
            checks=self.checks,
            kind="pdf",
            mode="online",
            checked_at=self.now,
            summary=summary,
            identifier=self.identifier,
            version=self.version,
            issuer_uscc=self.issuer_uscc,
        )


def verify_pdf(data: Any, *, now: datetime.datetime | None = None):
    """Verify a licence PDF (bytes): integrity, trust, signer, identifier and the licence's status.

    Returns a :class:`~dgov.licenses.verification.VerificationResult` (``kind`` ``pdf``); the
    verify page and API call this for an uploaded file.
    """
    run = _PdfRun(now or timezone.now())
    try:
        return _verify(run, data)
    except _Stop:
        failed = [check for check in run.checks if check.verdict]
        return run.result(failed[-1].verdict if failed else Verdict.ERROR)
    except Exception:  # noqa: BLE001 - never answer valid (or crash) on an error
        logger.exception("licence PDF verification failed")
        run.checks.append(Check("internal", CheckStatus.FAILED, "internal", _("核验过程出错"), Verdict.ERROR))
        return run.result(Verdict.ERROR)


def _verify(run: _PdfRun, data: Any):
    """The checks of :func:`verify_pdf` (raises :class:`_Stop` at the first failure)."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    limit = int(getattr(settings, "LICENCE_PDF_MAX_BYTES", MAX_PDF_BYTES))
    if not isinstance(data, bytes | bytearray | memoryview) or not data:
        run.fail("input", "pdf.empty", _("没有收到 PDF 文件"), Verdict.INVALID)
    data = bytes(data)
    if len(data) > limit:
        run.fail(
            "input", "pdf.too_large", _("文件过大（上限 %(n)s MB）") % {"n": limit // (1024 * 1024)}, Verdict.INVALID
        )
    if data.lstrip()[:5] != b"%PDF-":
        run.fail("input", "pdf.not_pdf", _("不是 PDF 文件"), Verdict.INVALID)
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if reader.encrypted:
            run.fail("input", "pdf.encrypted", _("PDF 文件已加密，无法核验"), Verdict.INVALID)
        signatures = [sig for sig in reader.embedded_regular_signatures if sig.field_name == SEAL_FIELD]
    except _Stop:
        raise
    except Exception:  # noqa: BLE001 - any parser failure is a bad file, not a crash
        run.fail("input", "pdf.malformed", _("PDF 文件已损坏或格式不正确"), Verdict.INVALID)
    if len(signatures) != 1:
        run.fail("input", "pdf.unsigned", _("PDF 中没有电子证照签章"), Verdict.INVALID)
    run.passed("input", "pdf.ok", _("PDF 文件可读，含电子证照签章"))
    signature = signatures[0]
    status = _check_signature(run, reader, signature)
    seal = _check_signer(run, status)
    licence, version = _check_identifier(run, reader, signature, seal)
    return _check_licence(run, licence, version)


def _described(reader, revision: int | None = None) -> dict[str, str]:
    """What a revision of the document (default: the latest) says it is: the dgov identifiers of its XMP and
    the title, subject, author and keywords of its document information; empty when unreadable.

    Read by reference because pyHanko's historical resolver cannot rebuild metadata streams.
    """
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.metadata.xmp_xml import parse_xmp

    def _load(pointer):
        ref = generic.Reference(pointer.idnum, pointer.generation)
        return reader.get_object(ref) if revision is None else reader.get_object(ref, revision=revision)

    found: dict[str, str] = {}
    try:
        root = reader.root if revision is None else reader.get_historical_root(revision)
        found.update(read_identifiers(parse_xmp(io.BytesIO(_load(root.raw_get("/Metadata")).data))))
    except Exception:  # noqa: BLE001 - missing or unreadable metadata
        return {}
    try:
        trailer = reader.trailer_view if revision is None else reader.get_historical_resolver(revision).trailer_view
        info = _load(trailer.raw_get("/Info"))
        for key in ("/Title", "/Subject", "/Author", "/Keywords"):
            found[key] = str(info.get(key, ""))
    except Exception:  # noqa: BLE001 - no document information: the XMP alone names the licence
        logger.debug("no readable document information in revision %s", revision)
    return found


def _check_signature(run: _PdfRun, reader, signature):
    """Integrity (intact, whole file or harmless additions) and the chain to this instance's CA."""
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        signed_at = signature.self_reported_timestamp
    except Exception:  # noqa: BLE001 - a mangled /M is a bad signature
        signed_at = None
    if signed_at is None or signed_at > run.now + CLOCK_SKEW:
        run.fail("signature", "pdf.signing_time", _("签章时间缺失或晚于当前时间"), Verdict.INVALID)
    anchors = [_asn1(cert) for cert in ca_certificates()]
    if not anchors:
        run.fail("issuer", "pdf.no_ca", _("本平台尚未签发过电子证照签章证书"), Verdict.UNKNOWN_ISSUER)
    context = ValidationContext(trust_roots=anchors, allow_fetching=False, moment=signed_at)
    try:
        status = validate_pdf_signature(signature, context)
    except Exception:  # noqa: BLE001 - pyHanko refuses structurally broken signatures by raising
        logger.info("PDF signature could not be validated", exc_info=True)
        run.fail("signature", "pdf.altered", _("签章数据已损坏，文件在签章后被改动"), Verdict.INVALID)
    if not (status.intact and status.valid):
        run.fail("signature", "pdf.altered", _("签名与文件内容不符：文件在签章后被改动"), Verdict.INVALID)
    if status.coverage is None or status.coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        run.fail("signature", "pdf.coverage", _("签名没有覆盖签章时的整个文件"), Verdict.INVALID)
    level = status.modification_level
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE and (
        level is None or level > ModificationLevel.LTA_UPDATES or status.docmdp_ok is False
    ):
        run.fail("signature", "pdf.modified", _("签章后又追加了修改（增量更新），内容可能已被改动"), Verdict.INVALID)
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE and _described(reader) != _described(
        reader, signature.signed_revision
    ):
        # pyHanko lets metadata change with validation data; a licence's name and identifiers may not.
        run.fail("signature", "pdf.modified", _("签章后修改了文件的证照标识或描述信息（增量更新）"), Verdict.INVALID)
    run.passed("signature", "pdf.intact", _("签章有效，签章后文件未被改动"))
    if not status.trusted:
        run.fail("issuer", "pdf.untrusted", _("签章证书不是由本平台电子证照根证书签发的"), Verdict.UNKNOWN_ISSUER)
    run.passed("issuer", "pdf.trusted", _("签章证书由本平台电子证照根证书签发"))
    return status


def _check_signer(run: _PdfRun, status) -> PdfCertificate:
    """The signing certificate is a seal certificate of this instance whose key is not revoked."""
    fingerprint = hashlib.sha256(status.signing_cert.dump()).hexdigest()
    seal = (
        PdfCertificate.objects.select_related("key", "key__organization")
        .filter(kind=PdfCertificate.Kind.SIGNER, fingerprint=fingerprint)
        .first()
    )
    if seal is None or seal.key is None:
        run.fail("key", "pdf.unknown_certificate", _("本平台没有签发过该签章证书"), Verdict.UNKNOWN_ISSUER)
    if seal.key.status == IssuerKey.Status.REVOKED:
        run.fail("key", "pdf.key_revoked", _("签章密钥已吊销，其签章不再有效"), Verdict.INVALID)
    run.passed("key", "pdf.key_ok", _("签章证书属于 %(org)s，密钥未吊销") % {"org": seal.key.organization.name})
    return seal


def _check_identifier(run: _PdfRun, reader, signature, seal: PdfCertificate):
    """The licence named in the signed revision's XMP exists and was issued by the signer."""
    found = _described(reader, signature.signed_revision)  # what the issuer signed, not a later revision
    identifier, version_text = found.get("identifier", ""), found.get("version", "")
    if not identifier or "\x00" in identifier + version_text + found.get("credential_id", ""):
        run.fail("identifier", "pdf.no_identifier", _("PDF 中没有证照标识"), Verdict.INVALID)
    try:
        parsed = credentials.parse_identifier(identifier)
        version = int(version_text)
    except (credentials.IdentifierError, ValueError):
        run.fail("identifier", "identifier.malformed", _("证照标识格式或校验位不正确"), Verdict.INVALID)
    run.identifier, run.version, run.issuer_uscc = identifier, version, parsed["issuer_uscc"]
    if found.get("credential_id") != credentials.credential_id(identifier, version):
        run.fail("identifier", "pdf.identifier_mismatch", _("PDF 中的证照标识与凭证标识不一致"), Verdict.INVALID)
    licence = Licence.objects.select_related("issuer", "licence_type").filter(identifier=identifier).first()
    if licence is None:
        run.fail("identifier", "pdf.unknown_licence", _("本平台没有签发过该证照"), Verdict.INVALID)
    signer_org = seal.key.organization
    if licence.issuer_id != signer_org.pk or parsed["issuer_uscc"] != signer_org.uscc:
        run.fail(
            "identifier",
            "pdf.wrong_issuer",
            _("签章单位 %(signer)s 不是该证照的签发机构") % {"signer": signer_org.name},
            Verdict.INVALID,
        )
    run.passed("identifier", "identifier.ok", _("证照标识有效，签章单位即签发机构"))
    return licence, version


def _check_licence(run: _PdfRun, licence: Licence, version: int):
    """The licence's status through the credential of the signed version (the verification module's checks)."""
    credential = Credential.objects.filter(licence=licence, version=version).first()
    if credential is None:
        run.fail("record", "pdf.unknown_version", _("该证照没有此版本"), Verdict.INVALID)
    result = verification.verify(credential.jws, now=run.now)
    if result.verdict in (Verdict.ERROR, Verdict.INVALID, Verdict.UNKNOWN_ISSUER):
        reason = "；".join(check.reason for check in result.failed) or result.verdict_label
        run.fail(
            "record",
            "pdf.credential_invalid",
            _("该版本的电子证照凭证未通过核验：%(r)s") % {"r": reason},
            result.verdict,
        )
    status_codes = ("validity", "revocation", "suspension", "record")
    run.checks.extend(check for check in result.checks if check.code in status_codes)
    return run.result(result.verdict, result.summary)


def licence_pdf(licence: Licence, credential: Credential | None = None) -> bytes:
    """The signed PDF of a licence version (default: the current one): drawn, then sealed by its issuer."""
    credential = credential or Credential.objects.get(licence=licence, version=licence.version)
    layout = pdf.resolve_layout(licence.licence_type)
    page = pdf.licence_page(
        licence,
        credential,
        json.loads(licence.data or "{}"),
        qr_payload=qr.qr_url(licence, credential),
        layout=layout,
    )
    return sign_pdf(pdf.render(page, layout), licence.issuer)
