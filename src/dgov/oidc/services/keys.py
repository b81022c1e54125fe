"""Token signing keys (令牌签名密钥): one active key per algorithm, created on first use, rotated by kid.

RS256, ES256 and SM2 keys live in :class:`~dgov.oidc.models.SigningKey`, their PKCS#8 private
key wrapped with SM4-GCM under the platform's master key (the same KEK as the kernel key
registry, ``dgov.kernel.services.keys.master_key``), with ``dgov-oidc-key|kid|alg`` as associated
data so a wrapped blob moved to another row does not unwrap. The kernel registry itself holds
only SM2 and SM4 keys, so these rows are kept beside it rather than in it.

Rotation retires the active key and creates a new one; retired keys stay in the JWKS so tokens
signed before the rotation still verify until they expire. Revocation takes a key out of the
JWKS at once: every token it signed stops verifying.

Each process caches the active keys and the public keys by kid for ``KEY_CACHE_SECONDS``; that
is how a rotation made by another process reaches this one (meanwhile it signs with the retired
key, which stays valid). A key created on first use inside a transaction that is still open is
not cached (nothing read inside a transaction is), so a rollback cannot leave the process
signing with a key nobody can verify.
"""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from dgov.kernel.services import audit, wrapped_keys
from dgov.kernel.services.wrapped_keys import MISSING
from dgov.oidc import jose
from dgov.oidc.models import SigningKey

__all__ = [
    "active_key",
    "clear_cache",
    "jwks",
    "list_keys",
    "public_key",
    "revoke_key",
    "rotate_key",
]

#: Associated-data prefix of wrapped keys (stored rows depend on it: never change it).
_AAD_PREFIX = "dgov-oidc-key"

_active = wrapped_keys.TimedCache()  # alg -> private key
_public = wrapped_keys.TimedCache(limit=1000)  # kid -> public key | None
_jwks = wrapped_keys.TimedCache()  # "jwks" -> document


def clear_cache() -> None:
    """Forget every cached key (after a rotation in tests, or a restored database)."""
    _active.clear()
    _public.clear()
    _jwks.clear()


def _new_kid(alg: str) -> str:
    """A key id: algorithm, creation date (Asia/Shanghai) and 8 random hex digits."""
    return f"{alg.lower()}-{timezone.localdate():%Y%m%d}-{secrets.token_hex(4)}"


def _new_record(alg: str) -> SigningKey:
    """Generate and store a new active key (the caller holds the transaction and audits)."""
    kid = _new_kid(alg)
    key = jose.generate(alg, kid)
    return SigningKey.objects.create(
        kid=kid,
        alg=alg,
        status=SigningKey.Status.ACTIVE,
        public_jwk=key.public().to_dict(),
        wrapped=wrapped_keys.wrap(_AAD_PREFIX, kid, alg, key.to_der()),
    )


def _load(record: SigningKey) -> jose.PrivateJwk:
    """Unwrap a stored private key."""
    der = wrapped_keys.unwrap(_AAD_PREFIX, record, what="OIDC signing key")
    return jose.load_private(record.alg, record.kid, der)


def _check_alg(alg: str) -> str:
    """Refuse algorithms the provider does not sign with."""
    if alg not in jose.ALGORITHMS:
        raise ValueError(f"unsupported signing algorithm {alg!r}: use one of {', '.join(jose.ALGORITHMS)}")
    return alg


def active_key(alg: str) -> jose.PrivateJwk:
    """The active signing key of ``alg``, generated (and audited) on first use."""
    hit = _active.get(alg)
    if hit is not MISSING:
        return hit
    _check_alg(alg)
    record = SigningKey.objects.filter(alg=alg, status=SigningKey.Status.ACTIVE).first()
    if record is None:
        record = wrapped_keys.create_once(
            lambda: _create_first(alg),
            lambda: SigningKey.objects.get(alg=alg, status=SigningKey.Status.ACTIVE),
        )
    key = _load(record)
    _active.put(alg, key)
    _public.put(key.kid, key.public())
    return key


def _create_first(alg: str) -> SigningKey:
    """Create and audit the first active key of ``alg``."""
    record = _new_record(alg)
    audit.record(
        "oidc.key.create", actor=None, target=record, detail={"kid": record.kid, "alg": alg, "reason": "first use"}
    )
    return record


def public_key(kid: str) -> jose.PublicJwk | None:
    """The verification key ``kid`` (active or retired), or None if unknown or revoked."""
    hit = _public.get(kid)
    if hit is not MISSING:
        return hit
    if not kid or len(kid) > 80:
        return None
    record = SigningKey.objects.filter(kid=kid).values("alg", "status", "public_jwk").first()
    found = None
    if record is not None and record["status"] != SigningKey.Status.REVOKED:
        found = jose.PublicJwk.from_dict({**record["public_jwk"], "kid": kid, "alg": record["alg"]})
    _public.put(kid, found, None if record is not None else wrapped_keys.UNKNOWN_KID_SECONDS)
    return found


def jwks() -> dict:
    """The JWK Set (RFC 7517 §5): every active and retired key, newest first."""
    document = _jwks.get("jwks")
    if document is not MISSING:
        return document
    rows = SigningKey.objects.exclude(status=SigningKey.Status.REVOKED).order_by("-created_at", "-id")
    keys = [{**row.public_jwk, "kid": row.kid, "alg": row.alg} for row in rows.only("kid", "alg", "public_jwk")]
    document = {"keys": keys}
    _jwks.put("jwks", document, min(wrapped_keys.cache_seconds(), 30.0))
    return document


def list_keys() -> list[SigningKey]:
    """Every signing key (without the wrapped material), by algorithm then newest first."""
    return list(SigningKey.objects.defer("wrapped"))


def rotate_key(alg: str, *, actor) -> SigningKey:
    """Retire the active key of ``alg`` (it stays in the JWKS) and make a new one active."""
    _check_alg(alg)
    with transaction.atomic():
        current = SigningKey.objects.select_for_update().filter(alg=alg, status=SigningKey.Status.ACTIVE).first()
        if current is not None:
            wrapped_keys.retire(current)
        record = _new_record(alg)
        audit.record(
            "oidc.key.rotate",
            actor=actor,
            target=record,
            detail={"kid": record.kid, "alg": alg, "previous": current.kid if current else ""},
        )
        transaction.on_commit(clear_cache)
    clear_cache()
    return record


def revoke_key(kid: str, *, actor) -> SigningKey:
    """Revoke key ``kid``: it leaves the JWKS and its tokens stop verifying; an active key is replaced."""
    with transaction.atomic():
        record = SigningKey.objects.select_for_update().filter(kid=kid).first()
        if record is None:
            raise LookupError(f"no signing key {kid!r}")
        if record.status == SigningKey.Status.REVOKED:
            return record
        was_active = record.status == SigningKey.Status.ACTIVE
        wrapped_keys.revoke(record)
        replacement = _new_record(record.alg) if was_active else None
        audit.record(
            "oidc.key.revoke",
            actor=actor,
            target=record,
            detail={"kid": kid, "alg": record.alg, "replacement": replacement.kid if replacement else ""},
        )
        transaction.on_commit(clear_cache)
    clear_cache()
    return record
