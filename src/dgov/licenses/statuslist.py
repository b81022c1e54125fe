"""Bitstring Status Lists (W3C): allocation of random indexes, status bits and batched publication.

Every credential gets one entry in its issuer's revocation list and one in its suspension list,
at an index chosen uniformly at random among the free ones (so an index reveals nothing about
issuance order or volume). A list holds ``LICENCE_STATUS_LIST_SIZE`` bits (at least 131,072, the
specification's minimum for herd privacy); a new list is opened when one is
``_FULL_FRACTION`` full.

Changing a status flips the bit in the working copy at once (``StatusList.bits``) and marks the
list dirty; :func:`publish_due` (a worker job) re-signs dirty lists as
``BitstringStatusListCredential`` VC-JOSE documents in batches, at most every
``LICENCE_STATUS_PUBLISH_SECONDS``. Verifiers fetch the published credential; the platform's own
online verification reads the working copy, so it sees a change at once.

The encoding is the specification's: the bitstring, index 0 the most significant bit of the
first byte, GZIP-compressed and base64url-encoded without padding, with the multibase prefix ``u``.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import io
import secrets

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dgov.kernel.models import Organization
from dgov.licenses.models import Credential, StatusList

MIN_SIZE = 131_072
_FULL_FRACTION = 0.75
_PROBE_MAX = 64  # up to this many new entries, candidates are checked by query instead of reading every used index


class StatusListError(ValueError):
    """An encoded status list or an index is not usable."""


def list_size() -> int:
    """Bits per new list (``LICENCE_STATUS_LIST_SIZE``, never below the specification's 131,072)."""
    return max(MIN_SIZE, int(getattr(settings, "LICENCE_STATUS_LIST_SIZE", MIN_SIZE)))


def encode(bits: bytes) -> str:
    """The ``encodedList`` value of a bitstring: multibase ``u`` + base64url(GZIP(bits)), no padding."""
    packed = gzip.compress(bytes(bits), compresslevel=9, mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode(encoded: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
    """The bitstring of an ``encodedList`` value; refuses anything malformed or oversized."""
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise StatusListError("encodedList is not multibase base64url")
    text = encoded[1:]
    try:
        packed = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        with gzip.GzipFile(fileobj=io.BytesIO(packed)) as stream:
            bits = stream.read(max_bytes + 1)
    except (ValueError, OSError, EOFError) as exc:
        raise StatusListError(f"encodedList does not decode: {exc}") from None
    if not bits:
        raise StatusListError("encodedList is empty")
    if len(bits) > max_bytes:
        raise StatusListError("encodedList is too large")
    return bits


def bit(bits: bytes, index: int) -> bool:
    """Whether bit ``index`` is set (index 0 = most significant bit of byte 0)."""
    if not 0 <= index < len(bits) * 8:
        raise StatusListError(f"status index {index} is outside the list")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def _set_bit(bits: bytearray, index: int, value: bool) -> None:
    """Set or clear bit ``index`` in place."""
    mask = 0x80 >> (index % 8)
    if value:
        bits[index // 8] |= mask
    else:
        bits[index // 8] &= ~mask & 0xFF


def _open_list(organization: Organization, purpose: str) -> StatusList:
    """The list of ``organization`` for ``purpose`` that takes new entries, opening one when needed (locked)."""
    current = (
        StatusList.objects.select_for_update()
        .filter(organization=organization, purpose=purpose)
        .order_by("-id")
        .first()
    )
    if current is None or current.used >= current.size * _FULL_FRACTION:
        size = list_size()
        current = StatusList.objects.create(
            organization=organization, purpose=purpose, size=size, bits=bytes(size // 8), dirty=True
        )
    return current


def allocate(organization: Organization, purpose: str, count: int = 1) -> list[tuple[StatusList, int]]:
    """Reserve ``count`` random free indexes in ``organization``'s ``purpose`` lists (inside the caller's transaction).

    The list row is locked until the caller commits, so concurrent issuers never share an index;
    the credentials' unique (list, index) constraints guard it too.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("allocate() must run inside transaction.atomic(), with the credentials it numbers")
    slots: list[tuple[StatusList, int]] = []
    while len(slots) < count:
        status_list = _open_list(organization, purpose)
        room = int(status_list.size * _FULL_FRACTION) - status_list.used
        chosen = _free_indexes(status_list, purpose, min(count - len(slots), max(room, 1)))
        status_list.used += len(chosen)
        status_list.save(update_fields=["used"])
        slots.extend((status_list, index) for index in chosen)
    return slots


def _free_indexes(status_list: StatusList, purpose: str, wanted: int) -> list[int]:
    """``wanted`` distinct indexes of ``status_list`` no credential uses, drawn uniformly among the free ones.

    A few indexes (single issuance, variation) are drawn at random and checked against the
    credentials in one query per round (the list is at most three-quarters full, so rounds are few);
    many (bulk issuance) are drawn against the list's whole set of used indexes, read once.
    """
    column = "revocation" if purpose == StatusList.Purpose.REVOCATION else "suspension"
    entries = Credential.objects.filter(**{f"{column}_list": status_list})
    field = f"{column}_index"
    chosen: list[int] = []
    if wanted <= _PROBE_MAX:
        while len(chosen) < wanted:
            candidates = {secrets.randbelow(status_list.size) for _ in range(wanted - len(chosen))} - set(chosen)
            taken = set(entries.filter(**{f"{field}__in": candidates}).values_list(field, flat=True))
            chosen.extend(candidates - taken)
        return chosen
    taken = set(entries.values_list(field, flat=True))
    while len(chosen) < wanted:
        index = secrets.randbelow(status_list.size)
        if index not in taken:
            taken.add(index)
            chosen.append(index)
    return chosen


def set_status(status_list: StatusList, index: int, value: bool) -> bool:
    """Set (``True``) or clear bit ``index`` of ``status_list`` in its working copy; returns whether it changed."""
    with transaction.atomic():
        locked = StatusList.objects.select_for_update().get(pk=status_list.pk)
        bits = bytearray(locked.bits)
        if bit(bits, index) == value:
            return False
        _set_bit(bits, index, value)
        locked.bits = bytes(bits)
        locked.dirty = True
        locked.save(update_fields=["bits", "dirty"])
    return True


def is_set(status_list_id: int, index: int) -> bool:
    """The current (working) value of bit ``index`` of list ``status_list_id``."""
    bits = StatusList.objects.values_list("bits", flat=True).get(pk=status_list_id)
    return bit(bytes(bits), index)


def publish_interval() -> float:
    """Seconds between publications of a changed list (``LICENCE_STATUS_PUBLISH_SECONDS``, default 60)."""
    return float(getattr(settings, "LICENCE_STATUS_PUBLISH_SECONDS", 60))


def due_lists(now: datetime.datetime | None = None) -> list[StatusList]:
    """Dirty lists whose last publication is older than the interval (or never published)."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(seconds=publish_interval())
    due = Q(published_at__isnull=True) | Q(published_at__lte=cutoff)
    return list(StatusList.objects.filter(due, dirty=True).select_related("organization"))
