"""Key registry (密钥管理): SM2 signing keys and SM4 data keys, by purpose, with key ids and rotation.

Each *purpose* ("audit", "pii", "blind-index", …) has at most one **active** key, created on
first use (a system action, audited with no actor). Signatures and ciphertexts carry the key id
(kid, e.g. ``sm2-audit-20261128-ab12cd``) of the key that made them, so after :func:`rotate`
the old key still verifies and decrypts what it produced while new work uses the new key.
A purpose holds one algorithm for its whole life: SM2 for signing, SM4 for data keys.

**Wrapping.** Private keys (PKCS#8 DER) and data keys are stored encrypted with SM4-GCM under
the master key-encryption key (KEK); the associated data binds the kid and purpose. The KEK is
``settings.MASTER_KEY_HEX`` (32 hex digits, from ``DGOV_MASTER_KEY``); without it (embedded
mode) it is read from ``settings.MASTER_KEY_FILE``, which is generated — random, mode 0600 — on
first use. Losing the KEK loses every wrapped key: back it up with the database.

**Cache.** Unwrapped keys are cached in process memory by kid and by purpose, because key
lookups sit on hot paths (every encrypted field value). A cache entry made inside a database
transaction is trusted only while that transaction (or savepoint) is still alive, and becomes
permanent when it commits, so a rolled-back first use never leaves the process encrypting under
a key that does not exist. The active key of a purpose and the status of a kid are re-read from
the database every ``KEY_CACHE_SECONDS`` (settings, default 60), which is how a rotation or
revocation done by another process reaches this one.

**Revocation** stops a key for new work and makes :func:`verify` reject its signatures; data
encrypted under a revoked data key stays readable (:func:`data_key_by_id`), since refusing it
would destroy the data rather than protect it.

**Blind-index keys** are special: rotating the "blind-index" key changes every blind index,
so existing indexes stop matching until they are recomputed. :func:`rotate` refuses it unless
``force=True``.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.signals import setting_changed
from django.db import IntegrityError, transaction
from django.db.models.signals import post_migrate
from django.dispatch import receiver
from django.utils import timezone

from dgov.kernel.crypto import CryptoError, SM2PrivateKey, SM2PublicKey, sm4_gcm_decrypt, sm4_gcm_encrypt
from dgov.kernel.models import KeyRecord

__all__ = [
    "BLIND_INDEX_PURPOSE",
    "KeyPurposeError",
    "MasterKeyError",
    "UnknownKeyError",
    "clear_cache",
    "data_key",
    "data_key_by_id",
    "list_keys",
    "master_key",
    "public_key",
    "revoke",
    "rotate",
    "sign",
    "signing_key",
    "verify",
]

BLIND_INDEX_PURPOSE = "blind-index"
# Rotating these invalidates derived values (blind indexes), so it needs force=True.
GUARDED_PURPOSES = frozenset({BLIND_INDEX_PURPOSE})
DEFAULT_CACHE_SECONDS = 60.0
_PURPOSE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,47}$")


class UnknownKeyError(LookupError):
    """No key with this kid (or not of the algorithm asked for) is in the registry."""


class KeyPurposeError(ValueError):
    """The purpose name is malformed, or it holds keys of another algorithm."""


class MasterKeyError(RuntimeError):
    """The master key is missing or malformed, or it does not unwrap the stored keys."""


# --- master key (KEK) -------------------------------------------------------------------------

_kek_cache: dict[tuple[str, str], bytes] = {}


def _parse_kek(text: str, source: str) -> bytes:
    """Decode a 32-hex-digit master key."""
    text = text.strip()
    if not re.fullmatch(r"[0-9a-fA-F]{32}", text):
        raise MasterKeyError(f"the master key from {source} must be 32 hexadecimal digits (an SM4 key)")
    return bytes.fromhex(text)


def _read_or_create_kek_file(path: Path) -> bytes:
    """Read the embedded-mode master key file, generating it (mode 0600) if it does not exist."""
    try:
        return _parse_kek(path.read_text("ascii"), str(path))
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL: when two processes start together, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the winner may not have written its 33 bytes yet
            text = path.read_text("ascii")
            if len(text.strip()) >= 32:
                return _parse_kek(text, str(path))
            time.sleep(0.01)
        return _parse_kek(path.read_text("ascii"), str(path))
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(16) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return _parse_kek(path.read_text("ascii"), str(path))


def master_key() -> bytes:
    """Return the 16-byte SM4 key-encryption key (see the module docstring for its source)."""
    hex_key = getattr(settings, "MASTER_KEY_HEX", None) or ""
    key_file = str(getattr(settings, "MASTER_KEY_FILE", "") or "")
    source = (hex_key, key_file)
    kek = _kek_cache.get(source)
    if kek is None:
        if hex_key:
            kek = _parse_kek(hex_key, "settings.MASTER_KEY_HEX (DGOV_MASTER_KEY)")
        elif key_file:
            kek = _read_or_create_kek_file(Path(key_file))
        else:
            raise MasterKeyError("no master key: set DGOV_MASTER_KEY or settings.MASTER_KEY_FILE")
        _kek_cache[source] = kek
    return kek


def _aad(kid: str, purpose: str) -> bytes:
    """Associated data binding a wrapped secret to its row."""
    return f"dgov-key-wrap|{kid}|{purpose}".encode()


def _wrap(kid: str, purpose: str, secret: bytes) -> bytes:
    """Encrypt key material under the KEK."""
    return sm4_gcm_encrypt(master_key(), secret, _aad(kid, purpose))


def _unwrap(record: KeyRecord) -> bytes:
    """Decrypt a record's key material, or explain why it cannot be."""
    try:
        return sm4_gcm_decrypt(master_key(), bytes(record.wrapped), _aad(record.kid, record.purpose))
    except CryptoError:
        raise MasterKeyError(
            f"cannot unwrap key {record.kid}: the master key is not the one it was wrapped with, "
            "or the stored row was altered"
        ) from None


# --- cache --------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Entry:
    """An unwrapped key as cached in this process."""

    kid: str
    purpose: str
    algorithm: str
    status: str
    secret: bytes | None = None  # SM4 data key
    private: SM2PrivateKey | None = None
    public: SM2PublicKey | None = None
    checked: float = 0.0  # monotonic time the status was last read from the database
    # While not None: (position in the connection's on-commit list, our callback) — the entry is
    # trusted only while that callback is still pending there, i.e. its transaction is alive.
    guard: tuple | None = None


_by_kid: dict[str, _Entry] = {}
_active: dict[str, _Entry] = {}


_cache_seconds_value: list[float] = []


def _cache_seconds() -> float:
    """How long a cached status or active key is trusted before the database is asked again."""
    # Read once: a missing setting costs an exception per lookup, and this is on the hot path.
    if not _cache_seconds_value:
        _cache_seconds_value.append(float(getattr(settings, "KEY_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)))
    return _cache_seconds_value[0]


def clear_cache() -> None:
    """Forget every cached key and master key (after restoring a database, or between tests)."""
    _by_kid.clear()
    _active.clear()
    _kek_cache.clear()
    _cache_seconds_value.clear()


@receiver(setting_changed)
def _on_setting_changed(setting, **kwargs):
    """A new master key or cache lifetime in tests makes cached keys meaningless."""
    if setting in {"MASTER_KEY_HEX", "MASTER_KEY_FILE", "KEY_CACHE_SECONDS"}:
        clear_cache()


@receiver(post_migrate)
def _on_post_migrate(**kwargs):
    """Tables flushed or re-created (test teardown, a fresh database): cached kids may be gone."""
    clear_cache()


def _guard(entry: _Entry) -> tuple | None:
    """Tie ``entry`` to the current transaction, if any (see _Entry.guard)."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return None

    def committed():
        # A test capturing on-commit callbacks runs them inside its still-open transaction.
        if not connection.in_atomic_block:
            entry.guard = None

    transaction.on_commit(committed)
    return (len(connection.run_on_commit) - 1, committed)


def _alive(entry: _Entry) -> bool:
    """Whether the transaction that cached ``entry`` has committed or is still open."""
    guard = entry.guard
    if guard is None:
        return True
    # Callbacks only ever leave the list from its tail (savepoint rollback) or all at once
    # (commit, rollback), so a surviving callback keeps its position.
    position, callback = guard
    pending = transaction.get_connection().run_on_commit
    return position < len(pending) and pending[position][1] is callback


def _trusted(entry: _Entry, now: float) -> bool:
    """Whether a cached entry may be used without asking the database."""
    return now - entry.checked < _cache_seconds() and _alive(entry)


def _remember(record: KeyRecord) -> _Entry:
    """Cache a record (unwrapping it unless its material is already cached) and return the entry."""
    entry = _by_kid.get(record.kid)
    if entry is None:
        entry = _Entry(kid=record.kid, purpose=record.purpose, algorithm=record.algorithm, status=record.status)
        secret = _unwrap(record)
        if record.algorithm == KeyRecord.Algorithm.SM2:
            entry.private = SM2PrivateKey.from_der(secret)
            entry.public = entry.private.public_key()
        else:
            entry.secret = secret
    else:
        entry.status = record.status
    entry.checked = time.monotonic()
    entry.guard = _guard(entry)
    _by_kid[record.kid] = entry
    return entry


# --- lookups ------------------------------------------------------------------------------------


def _check_purpose(purpose: str) -> str:
    """Validate a purpose name."""
    if not isinstance(purpose, str) or not _PURPOSE_RE.match(purpose):
        raise KeyPurposeError(
            f"invalid key purpose {purpose!r}: 1–48 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return purpose


def _new_kid(algorithm: str, purpose: str) -> str:
    """Return a fresh key id: algorithm, purpose, creation date (Asia/Shanghai) and 6 random hex digits."""
    day = timezone.localdate().strftime("%Y%m%d")
    return f"{algorithm}-{purpose}-{day}-{secrets.token_hex(3)}"


def _new_record(purpose: str, algorithm: str) -> KeyRecord:
    """Generate and store a new active key (the caller holds the transaction and audits)."""
    kid = _new_kid(algorithm, purpose)
    if algorithm == KeyRecord.Algorithm.SM2:
        private = SM2PrivateKey.generate()
        secret = private.to_der()
        public_pem = private.public_key().to_pem().decode("ascii")
    else:
        secret = secrets.token_bytes(16)
        public_pem = ""
    return KeyRecord.objects.create(
        kid=kid,
        purpose=purpose,
        algorithm=algorithm,
        status=KeyRecord.Status.ACTIVE,
        public_pem=public_pem,
        wrapped=_wrap(kid, purpose, secret),
    )


def _create_first(purpose: str, algorithm: str) -> KeyRecord:
    """Create the first active key of a purpose on first use, or take the one a concurrent caller made."""
    from dgov.kernel.services import audit

    with transaction.atomic():
        try:
            with transaction.atomic():
                record = _new_record(purpose, algorithm)
                audit.record(
                    "kernel.key.create",
                    actor=None,
                    target=record,
                    detail={
                        "kid": record.kid,
                        "purpose": purpose,
                        "algorithm": algorithm,
                        "reason": "first use",
                    },
                )
        except IntegrityError:
            record = KeyRecord.objects.get(purpose=purpose, status=KeyRecord.Status.ACTIVE)
    return record


def _active_entry(purpose: str, algorithm: str) -> _Entry:
    """Return the cached active key of ``purpose``, loading or creating it when needed."""
    entry = _active.get(purpose)
    if entry is not None and entry.algorithm == algorithm and _trusted(entry, time.monotonic()):
        return entry
    _check_purpose(purpose)
    record = KeyRecord.objects.filter(purpose=purpose, status=KeyRecord.Status.ACTIVE).first()
    if record is None:
        used = KeyRecord.objects.filter(purpose=purpose).values_list("algorithm", flat=True).first()
        if used is not None and used != algorithm:
            raise KeyPurposeError(f"key purpose {purpose!r} holds {used.upper()} keys, not {algorithm.upper()}")
        record = _create_first(purpose, algorithm)
    if record.algorithm != algorithm:
        raise KeyPurposeError(f"key purpose {purpose!r} holds {record.algorithm.upper()} keys, not {algorithm.upper()}")
    entry = _remember(record)
    _active[purpose] = entry
    return entry


def _entry(kid: str) -> _Entry:
    """Return the cached entry for ``kid`` (any status), loading it when needed."""
    entry = _by_kid.get(kid)
    if entry is not None and _trusted(entry, time.monotonic()):
        return entry
    record = KeyRecord.objects.filter(kid=kid).first()
    if record is None:
        _by_kid.pop(kid, None)
        raise UnknownKeyError(f"no key {kid!r} in the key registry")
    return _remember(record)


def signing_key(purpose: str) -> tuple[str, SM2PrivateKey]:
    """Return (kid, key) of the active SM2 signing key of ``purpose``, created on first use."""
    entry = _active_entry(purpose, KeyRecord.Algorithm.SM2)
    return entry.kid, entry.private


def sign(purpose: str, data: bytes) -> tuple[str, bytes]:
    """Sign ``data`` with the active key of ``purpose``; return (kid, DER SM2 signature)."""
    kid, key = signing_key(purpose)
    return kid, key.sign(data)


def verify(kid: str, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` over ``data`` was made by key ``kid`` (active or retired; not revoked)."""
    try:
        entry = _entry(kid)
    except UnknownKeyError:
        return False
    if entry.public is None or entry.status == KeyRecord.Status.REVOKED:
        return False
    return entry.public.verify(signature, data)


def public_key(kid: str) -> SM2PublicKey:
    """Return the SM2 public key ``kid`` (for publishing in trust lists or verifying elsewhere)."""
    entry = _entry(kid)
    if entry.public is None:
        raise UnknownKeyError(f"key {kid!r} is not an SM2 key")
    return entry.public


def data_key(purpose: str) -> tuple[str, bytes]:
    """Return (kid, 16-byte SM4 key) of the active data key of ``purpose``, created on first use."""
    entry = _active_entry(purpose, KeyRecord.Algorithm.SM4)
    return entry.kid, entry.secret


def data_key_by_id(kid: str) -> bytes:
    """Return the SM4 data key ``kid`` whatever its status (old ciphertexts must stay readable)."""
    entry = _by_kid.get(kid)
    # Material never changes, so the status refresh of _entry() is not needed on this hot path.
    if entry is None or entry.secret is None or not _alive(entry):
        entry = _entry(kid)
        if entry.secret is None:
            raise UnknownKeyError(f"key {kid!r} is not an SM4 data key")
    return entry.secret


def list_keys(purpose: str | None = None) -> list[KeyRecord]:
    """Return the registry's keys (optionally of one purpose), by purpose then newest first."""
    records = KeyRecord.objects.defer("wrapped")
    if purpose is not None:
        records = records.filter(purpose=purpose)
    return list(records)


def published_keys(purpose: str, *, uid: str) -> list[dict]:
    """The SM2 keys of ``purpose`` others may trust, active and retired, never revoked; the first is made on first use.

    Each is ``{"kid", "status", "alg": "SM2-SM3", "uid", "public_key"}`` (PEM), ``uid`` being the
    signer's distinguishing ID the signatures bind.
    """
    signing_key(purpose)
    return [
        {
            "kid": record.kid,
            "status": record.status,
            "alg": "SM2-SM3",
            "uid": uid,
            "public_key": public_key(record.kid).to_pem().decode("ascii"),
        }
        for record in list_keys(purpose)
        if record.status != KeyRecord.Status.REVOKED
    ]


# --- state changes ----------------------------------------------------------------------------


def rotate(purpose: str, *, actor, algorithm: str | None = None, force: bool = False) -> str:
    """Retire the active key of ``purpose`` and make a new one active; return the new kid.

    ``algorithm`` (sm2/sm4) is needed only for a purpose that has no key yet. Rotating the
    blind-index key needs ``force=True`` (see the module docstring).
    """
    from dgov.kernel.services import audit, events

    _check_purpose(purpose)
    if purpose in GUARDED_PURPOSES and not force:
        raise KeyPurposeError(
            f"rotating {purpose!r} invalidates every stored blind index until they are recomputed; "
            "pass force=True (dgov keys rotate --force) once a re-index is planned"
        )
    with transaction.atomic():
        current = KeyRecord.objects.select_for_update().filter(purpose=purpose, status=KeyRecord.Status.ACTIVE).first()
        used = (
            current.algorithm
            if current
            else KeyRecord.objects.filter(purpose=purpose).values_list("algorithm", flat=True).first()
        )
        if algorithm is not None and algorithm not in KeyRecord.Algorithm.values:
            raise KeyPurposeError(f"unknown algorithm {algorithm!r}: use sm2 or sm4")
        if used and algorithm and algorithm != used:
            raise KeyPurposeError(f"key purpose {purpose!r} holds {used.upper()} keys, not {algorithm.upper()}")
        chosen = used or algorithm
        if chosen is None:
            raise KeyPurposeError(f"key purpose {purpose!r} has no key yet: name the algorithm (sm2 or sm4)")
        if current is not None:
            current.status = KeyRecord.Status.RETIRED
            current.retired_at = timezone.now()
            current.save(update_fields=["status", "retired_at"])
        record = _new_record(purpose, chosen)
        previous = current.kid if current else ""
        audit.record(
            "kernel.key.rotate",
            actor=actor,
            target=record,
            detail={"kid": record.kid, "purpose": purpose, "algorithm": chosen, "previous": previous},
        )
        events.publish(
            "kernel.key.rotated",
            {"kid": record.kid, "purpose": purpose, "algorithm": chosen, "previous": previous},
            aggregate="kernel.key",
            aggregate_id=purpose,
        )
        _forget(purpose, previous)
        transaction.on_commit(lambda: _forget(purpose, previous))
    return record.kid


def revoke(kid: str, *, actor) -> str | None:
    """Revoke key ``kid``; if it was active, a new key replaces it. Return the replacement's kid, if any."""
    from dgov.kernel.services import audit, events

    with transaction.atomic():
        record = KeyRecord.objects.select_for_update().filter(kid=kid).first()
        if record is None:
            raise UnknownKeyError(f"no key {kid!r} in the key registry")
        if record.status == KeyRecord.Status.REVOKED:
            return None
        was_active = record.status == KeyRecord.Status.ACTIVE
        record.status = KeyRecord.Status.REVOKED
        record.revoked_at = timezone.now()
        if was_active:
            record.retired_at = record.revoked_at
        record.save(update_fields=["status", "retired_at", "revoked_at"])
        replacement = _new_record(record.purpose, record.algorithm) if was_active else None
        detail = {
            "kid": kid,
            "purpose": record.purpose,
            "replacement": replacement.kid if replacement else "",
        }
        audit.record("kernel.key.revoke", actor=actor, target=record, detail=detail)
        events.publish("kernel.key.revoked", detail, aggregate="kernel.key", aggregate_id=record.purpose)
        _forget(record.purpose, kid)
        transaction.on_commit(lambda: _forget(record.purpose, kid))
    return replacement.kid if replacement else None


def _forget(purpose: str, kid: str) -> None:
    """Drop the cached active key of ``purpose`` and the cached status of ``kid``."""
    _active.pop(purpose, None)
    if kid:
        _by_kid.pop(kid, None)
