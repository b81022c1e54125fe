"""Credential signing keys of issuing departments (签发密钥): ES256 and SM2, created on first use.

Each issuing department signs its licences' credentials with its own key pair per algorithm,
stored in :class:`~dgov.licenses.models.IssuerKey` with the PKCS#8 private key wrapped with
SM4-GCM under the platform's master key (associated data ``dgov-licence-key|kid|alg``), the way
the OIDC provider keeps its token keys. Rotation retires the active key (its credentials still
verify: retired keys stay in the issuer's JWK Set); revocation takes a key out of the set, so
every credential it signed stops verifying.

Public keys are cached per process by kid for ``KEY_CACHE_SECONDS``; nothing read inside an open
transaction is cached.
"""

from __future__ import annotations

import secrets
import threading
import time

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_migrate
from django.dispatch import receiver
from django.utils import timezone

from dgov.kernel.crypto import CryptoError, sm4_gcm_decrypt, sm4_gcm_encrypt
from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.kernel.services.keys import master_key
from dgov.licenses.models import IssuerKey
from dgov.oidc import jose

__all__ = ["ALGORITHMS", "active_key", "clear_cache", "issuer_jwks", "public_key", "revoke_key", "rotate_key"]

ALGORITHMS = ("ES256", "SM2")

_lock = threading.Lock()
_active: dict[tuple[int, str], tuple[float, jose.PrivateJwk, int]] = {}
_public: dict[str, tuple[float, tuple[jose.PublicJwk, int] | None]] = {}
_UNKNOWN_KID_SECONDS = 5.0


def _cache_seconds() -> float:
    """How long cached keys are trusted before the database is asked again."""
    return float(getattr(settings, "KEY_CACHE_SECONDS", 60))


def clear_cache() -> None:
    """Forget every cached key (after a rotation, or in tests)."""
    with _lock:
        _active.clear()
        _public.clear()


@receiver(post_migrate)
def _on_post_migrate(**kwargs) -> None:
    """Tables re-created (test databases): cached kids may be gone."""
    clear_cache()


def _aad(kid: str, alg: str) -> bytes:
    """Associated data binding wrapped key material to its row."""
    return f"dgov-licence-key|{kid}|{alg}".encode()


def _check_alg(alg: str) -> str:
    """Refuse algorithms licences are not signed with."""
    if alg not in ALGORITHMS:
        raise ValueError(f"unsupported credential algorithm {alg!r}: use one of {', '.join(ALGORITHMS)}")
    return alg


def _new_record(organization: Organization, alg: str) -> IssuerKey:
    """Generate and store a new active key (the caller holds the transaction and audits)."""
    kid = f"{organization.uscc}-{alg.lower()}-{timezone.localdate():%Y%m%d}-{secrets.token_hex(4)}"
    key = jose.generate(alg, kid)
    return IssuerKey.objects.create(
        organization=organization,
        kid=kid,
        alg=alg,
        status=IssuerKey.Status.ACTIVE,
        public_jwk=key.public().to_dict(),
        wrapped=sm4_gcm_encrypt(master_key(), key.to_der(), _aad(kid, alg)),
    )


def _load(record: IssuerKey) -> jose.PrivateJwk:
    """Unwrap a stored private key."""
    try:
        der = sm4_gcm_decrypt(master_key(), bytes(record.wrapped), _aad(record.kid, record.alg))
    except CryptoError:
        raise RuntimeError(f"cannot unwrap licence signing key {record.kid}: wrong master key or altered row") from None
    return jose.load_private(record.alg, record.kid, der)


def _may_cache() -> bool:
    """Cache only outside transactions: what is read or created in one may still be rolled back."""
    return not connection.in_atomic_block


def active_key(organization: Organization, alg: str) -> tuple[jose.PrivateJwk, int]:
    """The active signing key of ``organization`` for ``alg`` and its row id, generated (and audited) on first use."""
    now = time.monotonic()
    cache_key = (organization.pk, alg)
    hit = _active.get(cache_key)
    if hit is not None and hit[0] > now:
        return hit[1], hit[2]
    _check_alg(alg)
    record = IssuerKey.objects.filter(organization=organization, alg=alg, status=IssuerKey.Status.ACTIVE).first()
    if record is None:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = _new_record(organization, alg)
                    audit.record(
                        "licenses.key.create",
                        actor=None,
                        target=record,
                        detail={"kid": record.kid, "alg": alg, "reason": "first use"},
                    )
            except IntegrityError:  # pragma: no cover - another process created it meanwhile
                record = IssuerKey.objects.get(organization=organization, alg=alg, status=IssuerKey.Status.ACTIVE)
    key = _load(record)
    if _may_cache():
        with _lock:
            _active[cache_key] = (now + _cache_seconds(), key, record.pk)
            _public[key.kid] = (now + _cache_seconds(), (key.public(), record.pk))
    return key, record.pk


def public_key(kid: str) -> jose.PublicJwk | None:
    """The verification key ``kid`` (active or retired), or None if unknown or revoked."""
    found = _public_entry(kid)
    return found[0] if found else None


def _public_entry(kid: str) -> tuple[jose.PublicJwk, int] | None:
    """(public key, row id) of ``kid`` from the cache or the database; None when unknown or revoked."""
    now = time.monotonic()
    hit = _public.get(kid)
    if hit is not None and hit[0] > now:
        return hit[1]
    if not kid or len(kid) > 80:
        return None
    record = IssuerKey.objects.filter(kid=kid).values("pk", "alg", "status", "public_jwk").first()
    found = None
    if record is not None and record["status"] != IssuerKey.Status.REVOKED:
        found = (jose.PublicJwk.from_dict({**record["public_jwk"], "kid": kid, "alg": record["alg"]}), record["pk"])
    if _may_cache():
        lifetime = _cache_seconds() if record is not None else _UNKNOWN_KID_SECONDS
        with _lock:
            if len(_public) > 10_000:
                _public.clear()
            _public[kid] = (now + lifetime, found)
    return found


def issuer_jwks(organization: Organization) -> dict:
    """The JWK Set of an issuing department: its active and retired keys, newest first."""
    rows = (
        IssuerKey.objects.filter(organization=organization)
        .exclude(status=IssuerKey.Status.REVOKED)
        .order_by("-created_at", "-id")
        .only("kid", "alg", "public_jwk")
    )
    return {"keys": [{**row.public_jwk, "kid": row.kid, "alg": row.alg} for row in rows]}


def rotate_key(organization: Organization, alg: str, *, actor) -> IssuerKey:
    """Retire the active key of ``organization`` for ``alg`` (it still verifies) and make a new one active."""
    _check_alg(alg)
    with transaction.atomic():
        current = (
            IssuerKey.objects.select_for_update()
            .filter(organization=organization, alg=alg, status=IssuerKey.Status.ACTIVE)
            .first()
        )
        if current is not None:
            current.status = IssuerKey.Status.RETIRED
            current.retired_at = timezone.now()
            current.save(update_fields=["status", "retired_at"])
        record = _new_record(organization, alg)
        audit.record(
            "licenses.key.rotate",
            actor=actor,
            target=record,
            detail={"kid": record.kid, "alg": alg, "previous": current.kid if current else ""},
        )
        transaction.on_commit(clear_cache)
    clear_cache()
    return record


def revoke_key(kid: str, *, actor) -> IssuerKey:
    """Revoke key ``kid``: its credentials stop verifying; an active key is replaced."""
    with transaction.atomic():
        record = IssuerKey.objects.select_for_update().select_related("organization").filter(kid=kid).first()
        if record is None:
            raise LookupError(f"no licence signing key {kid!r}")
        if record.status == IssuerKey.Status.REVOKED:
            return record
        was_active = record.status == IssuerKey.Status.ACTIVE
        record.status = IssuerKey.Status.REVOKED
        record.revoked_at = timezone.now()
        record.retired_at = record.retired_at or record.revoked_at
        record.save(update_fields=["status", "retired_at", "revoked_at"])
        replacement = _new_record(record.organization, record.alg) if was_active else None
        audit.record(
            "licenses.key.revoke",
            actor=actor,
            target=record,
            detail={"kid": kid, "alg": record.alg, "replacement": replacement.kid if replacement else ""},
        )
        transaction.on_commit(clear_cache)
    clear_cache()
    return record
