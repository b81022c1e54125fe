"""QR codes of e-licences (证照二维码): a compact issuer-signed payload in a URL, rendered with segno.

The QR code carries the URL ``<site>/licences/q/<payload>``: opened by a phone it lands on the
public verification page (online verification); read by a scanner app, the payload alone is
verified offline with a cached issuer key and cached status lists.

The payload is a compact JWS (``typ`` ``licence-qr+jwt``; ES256 or SM2, the same algorithm as the
licence's credential; signed with the issuing department's active key) of these claims:

=======  ===========================================================================================
``iss``  the issuer id (``<site>/licences/issuers/<USCC>``); status lists are at ``<site>/licences/status/<id>``
``sub``  the licence identifier (证照标识, with its check character)
``ver``  the licence version the QR code stands for
``nbf``  start of validity (NumericDate: 00:00 Asia/Shanghai of the first day)
``exp``  end of validity (23:59:59 of the last day); absent for long-term licences
``st``   the credential's status entries ``[[revocation list id, index], [suspension list id, index]]``
``dig``  SM3 digest (base64url) of the full credential (the compact VC-JOSE) the QR code stands for
``tn``   the licence type's name (证照名称), for the scanner's display
=======  ===========================================================================================

No personal data is in the payload (no holder name or ID number): URLs end up in access logs and
browser histories. Online, the verification page shows the holder masked from the register.
The URL is about 600 characters: a version 19 code (93 × 93 modules) at error-correction level M.
"""

from __future__ import annotations

import datetime
import io

import segno
from django.utils import timezone

from dgov.kernel.crypto import sm3
from dgov.licenses import credentials, keys
from dgov.licenses.models import Credential, Licence
from dgov.licenses.verification import QR_PATH, QR_TYP
from dgov.oidc import jose

__all__ = ["QR_TYP", "qr_claims", "qr_payload", "qr_png", "qr_svg", "qr_url"]


def _epoch(day: datetime.date, *, end_of_day: bool = False) -> int:
    """NumericDate of the start (or last second) of ``day`` in the platform's time zone."""
    clock = datetime.time(23, 59, 59) if end_of_day else datetime.time(0, 0)
    moment = timezone.make_aware(datetime.datetime.combine(day, clock), timezone.get_default_timezone())
    return int(moment.timestamp())


def _current(licence: Licence) -> Credential:
    """The credential of the licence's current version, with its key."""
    return Credential.objects.select_related("key").get(licence=licence, version=licence.version)


def qr_claims(licence: Licence, credential: Credential | None = None) -> dict:
    """The QR payload's claims for a licence (its current credential unless one is given)."""
    credential = credential or _current(licence)
    claims = {
        "iss": credentials.issuer_url(licence.issuer),
        "sub": licence.identifier,
        "ver": credential.version,
        "nbf": _epoch(licence.valid_from),
        "st": [
            [credential.revocation_list_id, credential.revocation_index],
            [credential.suspension_list_id, credential.suspension_index],
        ],
        "dig": jose.b64url_encode(sm3(credential.jws.encode("ascii"))),
        "tn": licence.licence_type.name,
    }
    if licence.valid_until is not None:
        claims["exp"] = _epoch(licence.valid_until, end_of_day=True)
    return claims


def qr_payload(licence: Licence, credential: Credential | None = None) -> str:
    """The signed QR payload (compact JWS): signed with the issuer's active key of the credential's algorithm."""
    credential = credential or _current(licence)
    key, _key_id = keys.active_key(licence.issuer, credential.key.alg)
    return jose.sign(qr_claims(licence, credential), key, typ=QR_TYP)


def qr_url(licence: Licence, credential: Credential | None = None) -> str:
    """The URL a QR code carries: ``<site>/licences/q/<payload>``."""
    return f"{credentials.site_url()}{QR_PATH}{qr_payload(licence, credential)}"


def _code(licence: Licence, credential: Credential | None) -> segno.QRCode:
    """The QR code (error correction M: survives some wear of a printed code)."""
    return segno.make_qr(qr_url(licence, credential), error="m", boost_error=False)


def qr_svg(licence: Licence, credential: Credential | None = None, *, scale: int = 3, border: int = 4) -> str:
    """The QR code of a licence as inline SVG markup (for pages and the PDF rendering)."""
    return _code(licence, credential).svg_inline(scale=scale, border=border, dark="#000", light="#fff")


def qr_png(licence: Licence, credential: Credential | None = None, *, scale: int = 6, border: int = 4) -> bytes:
    """The QR code of a licence as PNG bytes."""
    buffer = io.BytesIO()
    _code(licence, credential).save(buffer, kind="png", scale=scale, border=border)
    return buffer.getvalue()
