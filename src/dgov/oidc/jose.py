"""Compact JWS (RFC 7515) and JWK (RFC 7517) for the three signing algorithms of the provider.

* ``RS256`` — RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), the algorithm every OpenID
  Connect relying party supports; RSA-2048 keys.
* ``ES256`` — ECDSA on P-256 with SHA-256, signature ``r || s`` (64 bytes, RFC 7518 §3.4).
* ``SM2`` — SM2 signature (GB/T 32918.2) with the SM3 digest over ``Z || message``, where Z binds
  the default distinguishing ID ``1234567812345678`` (GB/T 35276); the JWS signature is the
  64-byte ``r || s`` like ES256. Public keys are JWKs ``{"kty": "EC", "crv": "SM2", "x", "y"}``.
  The name is not IANA-registered; ADR 0011 records why this one.

RSA and ECDSA run in ``cryptography``; SM2 in OpenSSL's libcrypto through ``dgov.kernel.crypto``.
The module knows nothing of Django or of where keys are stored: :class:`PrivateJwk` and
:class:`PublicJwk` wrap a key with its ``kid`` and ``alg``. Verification refuses a header whose
``alg`` is not the key's own (no algorithm confusion, no ``none``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from dgov.kernel.crypto import (
    SM2PrivateKey,
    SM2PublicKey,
    sm2_signature_from_raw,
    sm2_signature_to_raw,
    sm3,
)

__all__ = [
    "ALGORITHMS",
    "JoseError",
    "PrivateJwk",
    "PublicJwk",
    "b64url_decode",
    "b64url_encode",
    "generate",
    "left_hash",
    "load_private",
    "sign",
    "split",
]

ALGORITHMS = ("RS256", "ES256", "SM2")
RSA_BITS = 2048
# Tokens are small; anything much larger is not ours and is refused before any parsing.
MAX_TOKEN_LENGTH = 16_384


class JoseError(ValueError):
    """A token is malformed, its header is not acceptable or its signature does not verify."""


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url without padding; raise JoseError on anything else."""
    if not isinstance(text, str) or "=" in text or any(ch in text for ch in "+/ \n\r\t"):
        raise JoseError("malformed base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JoseError("malformed base64url") from None


def _int_b64(value: int, size: int | None = None) -> str:
    """An unsigned big-endian integer as base64url (fixed ``size`` bytes when given)."""
    size = size or max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(size, "big"))


def left_hash(alg: str, value: str) -> str:
    """``at_hash``/``c_hash``: base64url of the left half of the hash that goes with ``alg``.

    SHA-256 for RS256 and ES256 (OIDC Core §3.1.3.6); SM3 for SM2 (ADR 0011).
    """
    data = value.encode("ascii")
    digest = sm3(data) if alg == "SM2" else hashlib.sha256(data).digest()
    return b64url_encode(digest[: len(digest) // 2])


@dataclass(frozen=True, slots=True)
class PublicJwk:
    """A public verification key with its key id and algorithm."""

    kid: str
    alg: str
    key: Any  # rsa.RSAPublicKey | ec.EllipticCurvePublicKey | SM2PublicKey

    def to_dict(self) -> dict[str, str]:
        """The JWK members (RFC 7517/7518; SM2 as kty EC, crv SM2)."""
        base = {"kid": self.kid, "use": "sig", "alg": self.alg}
        if self.alg == "RS256":
            numbers = self.key.public_numbers()
            return {"kty": "RSA", **base, "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
        if self.alg == "ES256":
            numbers = self.key.public_numbers()
            return {"kty": "EC", "crv": "P-256", **base, "x": _int_b64(numbers.x, 32), "y": _int_b64(numbers.y, 32)}
        x, y = self.key.to_point()
        return {"kty": "EC", "crv": "SM2", **base, "x": _int_b64(x, 32), "y": _int_b64(y, 32)}

    @classmethod
    def from_dict(cls, jwk: dict[str, Any]) -> PublicJwk:
        """Load a JWK produced by :meth:`to_dict` (or by any other JOSE library, for the same algorithms)."""
        try:
            kid, kty, alg = str(jwk.get("kid", "")), jwk["kty"], jwk.get("alg")
            if kty == "RSA":
                n = int.from_bytes(b64url_decode(jwk["n"]), "big")
                e = int.from_bytes(b64url_decode(jwk["e"]), "big")
                return cls(kid, alg or "RS256", rsa.RSAPublicNumbers(e, n).public_key())
            if kty == "EC":
                x = int.from_bytes(b64url_decode(jwk["x"]), "big")
                y = int.from_bytes(b64url_decode(jwk["y"]), "big")
                if jwk["crv"] == "P-256":
                    return cls(kid, alg or "ES256", ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key())
                if jwk["crv"] == "SM2":
                    return cls(kid, alg or "SM2", SM2PublicKey.from_point(x, y))
        except (KeyError, TypeError, ValueError) as exc:
            raise JoseError(f"unusable JWK: {exc}") from None
        raise JoseError("unsupported JWK type or curve")

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (JWS form) is valid over ``signing_input``."""
        try:
            if self.alg == "RS256":
                self.key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
                return True
            if len(signature) != 64:
                return False
            if self.alg == "ES256":
                der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
                self.key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
                return True
            return self.key.verify(sm2_signature_from_raw(signature), signing_input)
        except (InvalidSignature, ValueError):
            return False


@dataclass(frozen=True, slots=True)
class PrivateJwk:
    """A private signing key with its key id and algorithm."""

    kid: str
    alg: str
    key: Any  # rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | SM2PrivateKey

    def public(self) -> PublicJwk:
        """The verification half."""
        return PublicJwk(self.kid, self.alg, self.key.public_key())

    def sign_bytes(self, signing_input: bytes) -> bytes:
        """The JWS signature of ``signing_input``."""
        if self.alg == "RS256":
            return self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        if self.alg == "ES256":
            r, s = decode_dss_signature(self.key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return sm2_signature_to_raw(self.key.sign(signing_input))

    def to_der(self) -> bytes:
        """Unencrypted PKCS#8 DER (for wrapping under the master key)."""
        if self.alg == "SM2":
            return self.key.to_der()
        return self.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def generate(alg: str, kid: str) -> PrivateJwk:
    """A fresh key pair for ``alg``."""
    if alg == "RS256":
        return PrivateJwk(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS))
    if alg == "ES256":
        return PrivateJwk(kid, alg, ec.generate_private_key(ec.SECP256R1()))
    if alg == "SM2":
        return PrivateJwk(kid, alg, SM2PrivateKey.generate())
    raise JoseError(f"unsupported algorithm {alg!r}")


def load_private(alg: str, kid: str, der: bytes) -> PrivateJwk:
    """Load a PKCS#8 DER private key written by :meth:`PrivateJwk.to_der`."""
    if alg == "SM2":
        return PrivateJwk(kid, alg, SM2PrivateKey.from_der(der))
    key = serialization.load_der_private_key(der, password=None)
    expected = rsa.RSAPrivateKey if alg == "RS256" else ec.EllipticCurvePrivateKey
    if alg not in ("RS256", "ES256") or not isinstance(key, expected):
        raise JoseError(f"stored key {kid} is not an {alg} key")
    return PrivateJwk(kid, alg, key)


def _json(data: dict) -> bytes:
    """Compact JSON, UTF-8."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(claims: dict[str, Any], key: PrivateJwk, *, typ: str = "JWT", header: dict[str, Any] | None = None) -> str:
    """A compact JWS of ``claims`` with header ``{alg, kid, typ}`` and any extra ``header`` members (e.g. ``cty``)."""
    header = {**(header or {}), "alg": key.alg, "kid": key.kid, "typ": typ}
    signing_input = f"{b64url_encode(_json(header))}.{b64url_encode(_json(claims))}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{b64url_encode(key.sign_bytes(signing_input))}"


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Parse a compact JWS without verifying it: (header, claims, signing input, signature)."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise JoseError("not a compact JWS")
    head, body, sig = token.split(".")
    try:
        header = json.loads(b64url_decode(head))
        claims = json.loads(b64url_decode(body))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise JoseError("malformed JWS header or payload") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JoseError("malformed JWS header or payload")
    if header.get("crit"):
        raise JoseError("critical header parameters are not supported")
    return header, claims, f"{head}.{body}".encode("ascii"), b64url_decode(sig)


def verify(token: str, find_key) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS with the key ``find_key(kid)`` returns; return (header, claims).

    ``find_key`` returns a :class:`PublicJwk` or None. The header's ``alg`` must equal the key's.
    """
    header, claims, signing_input, signature = split(token)
    key = find_key(str(header.get("kid", "")))
    if key is None:
        raise JoseError("unknown signing key")
    if header.get("alg") != key.alg:
        raise JoseError("the token's algorithm is not its key's")
    if not key.verify(signing_input, signature):
        raise JoseError("bad signature")
    return header, claims
