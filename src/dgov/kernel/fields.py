"""Encrypted model fields (字段级加密) and keyed blind indexes for exact look-up.

``EncryptedTextField`` stores text as ``v1:<kid>:<base64(nonce || ciphertext || tag)>``:
SM4-GCM under the active data key of purpose ``"pii"``, with the kid as associated data (so a
ciphertext cannot be moved under another key id). Python code sees plain ``str``; ``None`` and
``""`` are stored as they are. Because every encryption uses a fresh nonce, equal values have
different ciphertexts and the database cannot compare them: every lookup except ``isnull``
(and ``exact`` against ``None``/``""``) is refused. Exact search goes through a companion
column holding :func:`blind_index` of the value.

``blind_index(value, purpose=...)`` is HMAC-SM3 under the data key of purpose
``"blind-index"`` over ``purpose || 0x00 || normalized value``, as 64 hex digits. The purpose
separates domains (an ID number and a phone with the same digits index differently).
Normalization, applied before hashing so that trivially different spellings match:

* every value: Unicode NFKC (full-width ``１２３Ｘ`` becomes ``123X``), surrounding whitespace
  stripped;
* ID-like purposes — ``id_number``, ``resident_id``, ``uscc``, ``passport``,
  ``organization_code``, or any purpose ending in ``.`` or ``_`` plus one of them (e.g.
  ``registry.id_number``) — also drop inner whitespace and hyphens and are upper-cased (the
  check character ``X`` of a resident ID number, USCC letters);
* ``phone``-like purposes (``phone``, ``mobile`` and ``….phone``/``…_phone``) drop inner
  whitespace and hyphens.

Key material is cached by the key registry, so a value costs one SM4-GCM operation (a few
microseconds) and no database query. Bulk writers look the keys up once per batch and pass them
in (``key=``): :func:`blind_index_key`, ``keys.data_key(PII_PURPOSE)``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import unicodedata
from collections.abc import Callable

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.lookups import Exact, IsNull
from django.utils.translation import gettext_lazy as _

from dgov.kernel.crypto import CryptoError, keyed_hmac_sm3, sm4_gcm_decrypt, sm4_gcm_encrypt

__all__ = [
    "PII_PURPOSE",
    "EncryptedTextField",
    "blind_index",
    "decrypt_value",
    "encrypt_value",
    "normalize",
    "open_sealed",
    "sealed_kid",
]

PII_PURPOSE = "pii"
PREFIX = "v1"
_ID_KINDS = ("id_number", "resident_id", "uscc", "passport", "organization_code")
_PHONE_KINDS = ("phone", "mobile")
_INNER_SPACE = re.compile(r"[\s\-]+")


_keys_module = None


def _keys():
    """The key registry service, imported on first use (it imports the models, which import us)."""
    global _keys_module
    if _keys_module is None:
        from dgov.kernel.services import keys

        _keys_module = keys
    return _keys_module


def _kind(purpose: str) -> str:
    """The last dotted component of a purpose (``registry.id_number`` → ``id_number``)."""
    return purpose.rsplit(".", 1)[-1]


def _matches(purpose: str, kinds: tuple[str, ...]) -> bool:
    """Whether ``purpose`` names one of ``kinds`` (exactly, or as its last component or suffix)."""
    kind = _kind(purpose)
    return kind in kinds or any(kind.endswith("_" + k) for k in kinds)


@functools.lru_cache(maxsize=256)
def _rule(purpose: str) -> str:
    """Which normalization a purpose gets: ``id``, ``phone`` or ``""`` (decided once per purpose)."""
    if _matches(purpose, _ID_KINDS):
        return "id"
    return "phone" if _matches(purpose, _PHONE_KINDS) else ""


def normalize(value: str, *, purpose: str) -> str:
    """Normalize ``value`` for the blind index of ``purpose`` (rules in the module docstring)."""
    text = unicodedata.normalize("NFKC", str(value)).strip()
    rule = _rule(purpose)
    if rule == "id":
        return _INNER_SPACE.sub("", text).upper()
    if rule == "phone":
        return _INNER_SPACE.sub("", text)
    return text


def blind_index_key() -> bytes:
    """The active blind-index key, for callers that index many values with one key-registry lookup."""
    keys = _keys()
    return keys.data_key(keys.BLIND_INDEX_PURPOSE)[1]


# Keyed HMAC-SM3 states, one per blind-index key (few), copied per value: about 3x faster than keying anew.
_hmac_states: dict[bytes, object] = {}


def _hmac_state(key: bytes):
    """The keyed HMAC-SM3 state for ``key`` (cached; bounded, cleared when full)."""
    state = _hmac_states.get(key)
    if state is None:
        if len(_hmac_states) >= 16:
            _hmac_states.clear()
        state = _hmac_states[key] = keyed_hmac_sm3(key)
    return state


def blind_index(value: str, *, purpose: str, key: bytes | None = None) -> str:
    """Return the keyed HMAC-SM3 blind index (64 hex digits) of ``value`` for exact look-up.

    ``key``: the blind-index key from :func:`blind_index_key`, when the caller looked it up once
    for many values; by default the active key is looked up for this value.
    """
    if not purpose:
        raise ValueError("a blind index needs a purpose")
    if key is None:
        key = blind_index_key()
    mac = _hmac_state(key).copy()
    mac.update(purpose.encode() + b"\x00" + normalize(value, purpose=purpose).encode())
    return mac.finalize().hex()


def encrypt_value(value: str, *, purpose: str = PII_PURPOSE, key: tuple[str, bytes] | None = None) -> str:
    """Encrypt ``value`` as ``v1:<kid>:<base64>`` under the active data key of ``purpose``.

    ``key``: ``(kid, key)`` of that data key, when the caller looked it up once for many values.
    """
    kid, key = key if key is not None else _keys().data_key(purpose)
    blob = sm4_gcm_encrypt(key, value.encode("utf-8"), kid.encode())
    return f"{PREFIX}:{kid}:{base64.b64encode(blob).decode('ascii')}"


def _registry_key(kid: str) -> bytes | None:
    """The SM4 data key ``kid`` from the key registry, or None when there is no such key."""
    keys = _keys()
    try:
        return keys.data_key_by_id(kid)
    except keys.UnknownKeyError:
        return None


def decrypt_value(stored: str) -> str:
    """Decrypt a ``v1:<kid>:<base64>`` value; raise CryptoError if it is malformed or forged."""
    return open_sealed(stored, _registry_key)


def sealed_kid(stored: str) -> str:
    """The key id of a ``v1:<kid>:<base64>`` value ("" when it is not one)."""
    version, _sep, rest = stored.partition(":")
    return rest.partition(":")[0] if version == PREFIX else ""


def open_sealed(stored: str, key_for: Callable[[str], bytes | None]) -> str:
    """Decrypt a ``v1:<kid>:<base64>`` value with the key ``key_for(kid)`` returns (None: unknown key).

    What :func:`decrypt_value` does without the key registry, for processes that were handed the
    keys (the quality runs' decryption workers). CryptoError if it is malformed, forged or its key unknown.
    """
    version, _sep, rest = stored.partition(":")
    kid, _sep, payload = rest.partition(":")
    if version != PREFIX or not kid or not payload:
        raise CryptoError("not an encrypted field value (expected v1:<kid>:<base64>)")
    try:
        blob = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError(f"corrupt encrypted field value under key {kid}") from None
    key = key_for(kid)
    if key is None:
        raise CryptoError(f"encrypted field value under unknown key {kid}")
    return sm4_gcm_decrypt(key, blob, kid.encode()).decode("utf-8")


class _EmptyOnlyExact(Exact):
    """``exact`` allowed only against None (becomes isnull) or "" (stored in the clear)."""

    def __init__(self, lhs, rhs):
        if rhs is not None and rhs != "":
            raise FieldError(_refusal(lhs.output_field, "exact"))
        super().__init__(lhs, rhs)


def _refusal(field: models.Field, lookup: str) -> str:
    """The error message for a refused lookup."""
    return (
        f"{field.model.__name__ if hasattr(field, 'model') else ''}.{field.name}: lookup '{lookup}' is not "
        "possible on an encrypted field (its ciphertext is randomized); filter on its blind index "
        "column with dgov.kernel.fields.blind_index(value, purpose=...) instead"
    )


class EncryptedTextField(models.TextField):
    """Text encrypted at rest with SM4-GCM under the active "pii" data key; plain ``str`` in Python."""

    description = _("加密文本（SM4-GCM）")

    def __init__(self, *args, purpose: str = PII_PURPOSE, **kwargs):
        self.purpose = purpose
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        """Include a non-default key purpose in migrations."""
        name, path, args, kwargs = super().deconstruct()
        if self.purpose != PII_PURPOSE:
            kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def get_prep_value(self, value):
        """Encrypt a Python value for the database."""
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_value(value, purpose=self.purpose)

    def from_db_value(self, value, expression, connection):
        """Decrypt a database value."""
        if value is None or value == "":
            return value
        return decrypt_value(value)

    def get_lookup(self, lookup_name):
        """Allow isnull (and exact None/""); refuse every other lookup with a clear error."""
        if lookup_name == "isnull":
            return IsNull
        if lookup_name == "exact":
            return _EmptyOnlyExact
        raise FieldError(_refusal(self, lookup_name))

    def get_transform(self, lookup_name):
        """Refuse transforms (lower, unaccent, …): they would run on ciphertext."""
        raise FieldError(_refusal(self, lookup_name))
