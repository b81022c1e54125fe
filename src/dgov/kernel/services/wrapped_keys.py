"""Signing-key rows wrapped under the master key (包装密钥), and the per-process key caches.

Apps that keep their own JOSE signing keys as database rows — the OIDC provider's token keys
(:mod:`dgov.oidc.services.keys`) and the licence issuers' credential keys
(:mod:`dgov.licenses.keys`) — share what is the same about them here:

- **Wrapping.** The PKCS#8 private key is stored encrypted with SM4-GCM under the platform's
  master key (:func:`dgov.kernel.services.keys.master_key`); the associated data
  ``<prefix>|kid|alg`` binds the blob to its row, so a wrapped blob moved to another row does not
  unwrap. Each app keeps its prefix (``dgov-oidc-key``, ``dgov-licence-key``): stored keys depend on it.
- **Caching.** :class:`TimedCache` holds entries per process for ``KEY_CACHE_SECONDS`` (settings,
  default 60) and only fills outside transactions (what is read or created in one may still be
  rolled back). Every cache is cleared after ``migrate`` (re-created test databases).
- **Life cycle.** :func:`create_once` makes the first active key even when another process races
  for it; :func:`retire` and :func:`revoke` move a row to its next status.

The models have ``kid``, ``alg``, ``status`` (``Status.ACTIVE/RETIRED/REVOKED``), ``public_jwk``,
``wrapped``, ``retired_at`` and ``revoked_at``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_migrate
from django.dispatch import receiver
from django.utils import timezone

from dgov.kernel.crypto import CryptoError, sm4_gcm_decrypt, sm4_gcm_encrypt
from dgov.kernel.services.keys import master_key

__all__ = [
    "MISSING",
    "UNKNOWN_KID_SECONDS",
    "TimedCache",
    "cache_seconds",
    "create_once",
    "may_cache",
    "retire",
    "revoke",
    "unwrap",
    "wrap",
]

#: How long a kid that is not in the database is remembered as unknown.
UNKNOWN_KID_SECONDS = 5.0

#: What :meth:`TimedCache.get` answers for a key it does not hold (cached values may be None).
MISSING: Any = object()

T = TypeVar("T")


def cache_seconds() -> float:
    """How long cached keys are trusted before the database is asked again."""
    return float(getattr(settings, "KEY_CACHE_SECONDS", 60))


def may_cache() -> bool:
    """Cache only outside transactions: what is read or created in one may still be rolled back."""
    return not connection.in_atomic_block


def _aad(prefix: str, kid: str, alg: str) -> bytes:
    """Associated data binding wrapped key material to its row."""
    return f"{prefix}|{kid}|{alg}".encode()


def wrap(prefix: str, kid: str, alg: str, der: bytes) -> bytes:
    """The private key ``der`` (PKCS#8) wrapped under the master key for the row ``kid``/``alg``."""
    return sm4_gcm_encrypt(master_key(), der, _aad(prefix, kid, alg))


def unwrap(prefix: str, record, *, what: str) -> bytes:
    """The PKCS#8 private key of a stored row; RuntimeError naming ``what`` when it does not unwrap."""
    try:
        return sm4_gcm_decrypt(master_key(), bytes(record.wrapped), _aad(prefix, record.kid, record.alg))
    except CryptoError:
        raise RuntimeError(f"cannot unwrap {what} {record.kid}: wrong master key or altered row") from None


class TimedCache:
    """A per-process map whose entries expire, filled only outside transactions, cleared after migrate."""

    def __init__(self, *, limit: int | None = None):
        """An empty cache; with ``limit`` it is emptied when it grows past that many entries."""
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.limit = limit
        _caches.add(self)

    def get(self, key: Hashable) -> Any:
        """The value cached for ``key`` if not expired, else :data:`MISSING`."""
        hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return MISSING

    def put(self, key: Hashable, value: Any, seconds: float | None = None) -> None:
        """Remember ``value`` for ``seconds`` (default ``KEY_CACHE_SECONDS``), unless inside a transaction."""
        seconds = cache_seconds() if seconds is None else seconds
        if not may_cache() or seconds <= 0:
            return
        expiry = time.monotonic() + seconds
        with self._lock:
            if self.limit is not None and len(self._entries) > self.limit:
                self._entries.clear()
            self._entries[key] = (expiry, value)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()


_caches: weakref.WeakSet[TimedCache] = weakref.WeakSet()


@receiver(post_migrate)
def _on_post_migrate(**kwargs) -> None:
    """Tables re-created (test databases): cached kids may be gone."""
    for cache in list(_caches):
        cache.clear()


def create_once(create: Callable[[], T], existing: Callable[[], T]) -> T:
    """``create()`` the first active key, or ``existing()`` when a concurrent caller made it meanwhile."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                return create()
        except IntegrityError:  # pragma: no cover - another process created it meanwhile
            return existing()


def retire(record) -> None:
    """Mark an active key retired (it still verifies); the caller holds the row lock and audits."""
    record.status = record.Status.RETIRED
    record.retired_at = timezone.now()
    record.save(update_fields=["status", "retired_at"])


def revoke(record) -> None:
    """Mark a key revoked (it stops verifying); the caller holds the row lock and audits."""
    record.status = record.Status.REVOKED
    record.revoked_at = timezone.now()
    record.retired_at = record.retired_at or record.revoked_at
    record.save(update_fields=["status", "retired_at", "revoked_at"])
