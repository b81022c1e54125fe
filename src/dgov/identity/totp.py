"""Time-based one-time passwords (TOTP, RFC 6238) and their enrolment QR codes.

The parameters are the ones every authenticator app understands without asking: HMAC-SHA1,
6 digits, 30-second steps, a 160-bit secret written in Base32 without padding. RFC 6238 is
HOTP (RFC 4226) with the counter taken from the clock, so a code is
``truncate(HMAC-SHA1(secret, big-endian 64-bit step)) mod 10^6`` with ``step = unix_time // 30``.

:func:`match_step` accepts the current step and one step either side (clock drift of up to 30
seconds each way) and returns the step the code belongs to, so the caller can refuse a step that
was already used — a code works once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

__all__ = [
    "DIGITS",
    "PERIOD",
    "WINDOW",
    "code_at",
    "current_step",
    "generate_secret",
    "match_step",
    "normalize_secret",
    "provisioning_uri",
    "qr_svg",
]

DIGITS = 6
PERIOD = 30
WINDOW = 1
SECRET_BYTES = 20


def generate_secret() -> str:
    """A new random secret: 20 bytes (the HMAC-SHA1 block RFC 4226 recommends), Base32 without padding."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def normalize_secret(secret: str) -> str:
    """A Base32 secret as typed or printed (spaces, lower case) in canonical form; ValueError if invalid."""
    text = "".join(str(secret or "").split()).upper().rstrip("=")
    if not text:
        raise ValueError("empty TOTP secret")
    _decode(text)
    return text


def _decode(secret: str) -> bytes:
    """The key bytes of a Base32 secret (padding restored)."""
    text = secret.upper().rstrip("=")
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (ValueError, TypeError) as exc:
        raise ValueError("not a Base32 TOTP secret") from exc


def current_step(now: float | None = None) -> int:
    """The RFC 6238 time step of ``now`` (Unix seconds, default: the clock)."""
    return int((time.time() if now is None else now) // PERIOD)


def code_at(secret: str, step: int, *, digits: int = DIGITS, digest=hashlib.sha1) -> str:
    """The code of ``step`` for ``secret`` (RFC 4226 dynamic truncation), zero-padded."""
    mac = hmac.new(_decode(secret), struct.pack(">Q", step), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % (10**digits)).zfill(digits)


def match_step(secret: str, code: str, *, now: float | None = None, after_step: int = 0) -> int | None:
    """The step within ±WINDOW of now whose code is ``code`` and which is later than ``after_step``, or None."""
    code = "".join(str(code or "").split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    here = current_step(now)
    found = None
    # Every candidate is compared (constant-time each), so timing does not tell which step matched.
    for step in range(here - WINDOW, here + WINDOW + 1):
        if hmac.compare_digest(code_at(secret, step), code) and step > after_step and found is None:
            found = step
    return found


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/…`` URI that authenticator apps read from a QR code (Key URI Format)."""
    label = quote(f"{issuer}:{account}", safe=":@")
    params = urlencode(
        {"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": PERIOD},
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{params}"


def qr_svg(data: str, *, scale: int = 4) -> str:
    """An inline ``<svg>`` QR code of ``data`` (drawn on the server by segno; no script, no request)."""
    import segno

    return segno.make(data, error="m").svg_inline(scale=scale, dark="#0a2f5c", light="#ffffff")
