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

from django.db import transaction
from django.utils import timezone

from dgov.kernel.models import Organization
from dgov.kernel.services import audit, wrapped_keys
from dgov.kernel.services.wrapped_keys import MISSING
from dgov.licenses.models import IssuerKey
from dgov.oidc import jose

__all__ = ["ALGORITHMS", "active_key", "clear_cache", "issuer_jwks", "public_key", "revoke_key", "rotate_key"]

ALGORITHMS = ("ES256", "SM2")

#: Associated-data prefix of wrapped keys (stored rows depend on it: never change it).
_AAD_PREFIX = "dgov-licence-key"

_active = wrapped_keys.TimedCache()  # (organization pk, alg) -> (private key, row id)
_public = wrapped_keys.TimedCache(limit=10_000)  # kid -> (public key, row id) | None


def clear_cache() -> None:
    """Forget every cached key (after a rotation, or in tests)."""
    _active.clear()
    _public.clear()


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
        wrapped=wrapped_keys.wrap(_AAD_PREFIX, kid, alg, key.to_der()),
    )


def _load(record: IssuerKey) -> jose.PrivateJwk:
    """Unwrap a stored private key."""
    der = wrapped_keys.unwrap(_AAD_PREFIX, record, what="licence signing key")
    return jose.load_private(record.alg, record.kid, der)


def active_key(organization: Organization, alg: str) -> tuple[jose.PrivateJwk, int]:
    """The active signing key of ``organization`` for ``alg`` and its row id, generated (and audited) on first use."""
    cache_key = (organization.pk, alg)
    hit = _active.get(cache_key)
    if hit is not MISSING:
        return hit
    _check_alg(alg)
    record = IssuerKey.objects.filter(organization=organization, alg=alg, status=IssuerKey.Status.ACTIVE).first()
    if record is None:
        record = wrapped_keys.create_once(
            lambda: _create_first(organization, alg),
            lambda: IssuerKey.objects.get(organization=organization, alg=alg, status=IssuerKey.Status.ACTIVE),
        )
    key = _load(record)
    _active.put(cache_key, (key, record.pk))
    _public.put(key.kid, (key.public(), record.pk))
    return key, record.pk


def _create_first(organization: Organization, alg: str) -> IssuerKey:
    """Create and audit the first active key of ``organization`` for ``alg``."""
    record = _new_record(organization, alg)
    audit.record(
        "licenses.key.create", actor=None, target=record, detail={"kid": record.kid, "alg": alg, "reason": "first use"}
    )
    return record


def public_key(kid: str) -> jose.PublicJwk | None:
    """The verification key ``kid`` (active or retired), or None if unknown or revoked."""
    found = _public_entry(kid)
    return found[0] if found else None


def _public_entry(kid: str) -> tuple[jose.PublicJwk, int] | None:
    """(public key, row id) of ``kid`` from the cache or the database; None when unknown or revoked."""
    hit = _public.get(kid)
    if hit is not MISSING:
        return hit
    if not kid or len(kid) > 80:
        return None
    record = IssuerKey.objects.filter(kid=kid).values("pk", "alg", "status", "public_jwk").first()
    found = None
    if record is not None and record["status"] != IssuerKey.Status.REVOKED:
        found = (jose.PublicJwk.from_dict({**record["public_jwk"], "kid": kid, "alg": record["alg"]}), record["pk"])
    _public.put(kid, found, None if record is not None else wrapped_keys.UNKNOWN_KID_SECONDS)
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
            wrapped_keys.retire(current)
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
        record = (
            IssuerKey.objects.select_for_update(of=("self",)).select_related("organization").filter(kid=kid).first()
        )
        if record is None:
            raise LookupError(f"no licence signing key {kid!r}")
        if record.status == IssuerKey.Status.REVOKED:
            return record
        was_active = record.status == IssuerKey.Status.ACTIVE
        wrapped_keys.revoke(record)
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
