"""The exchange log (交换日志): an SM3 hash chain of gateway calls, SM2-signed checkpoints and receipts.

Modelled on X-Road's message log and built like the audit chain (ADR 0003), reusing the kernel's
canonical JSON, timestamp format, SM3 and key registry rather than a second implementation.

Hashed content (format ``dgov-exchange-v1``)
--------------------------------------------
``hash = hex(SM3(UTF-8("dgov-exchange-v1" US prev_hash US content)))`` where US is U+001F and
``content`` is the canonical JSON (sorted keys, ``,``/``:`` separators, UTF-8 kept) of::

    {"at": "YYYY-MM-DDTHH:MM:SS.ffffffZ", "client": client_id, "code": result code,
     "consumer": consumer department code, "fields": [item codes], "grant": grant id or null,
     "operation": "read" | "verify", "provider": provider department code, "purpose": text,
     "records": [record uids], "request_id": text, "resource": resource code,
     "result": "ok" | "denied" | "error", "status": HTTP status}

``prev_hash`` is the previous entry's hash (64 zeros for entry 1). Appends are serialized on the
single :class:`~dgov.exchange.models.ExchangeLogHead` row (``SELECT … FOR UPDATE``). No personal
value is ever in the log: records are named by their uid, the query value (an ID number) is not
kept.

Group commit
------------
A gateway call's entry — and the registry ``AccessLog`` rows of the records it served — must be
committed before its answer leaves. Holding the head row's lock through each call's own
transaction serialized the gateway at one commit (and, under load, several interpreter-lock
hand-overs) per call. Outside a transaction, :func:`append` therefore hands the entry to the
process's log writer (:class:`LogWriter`, one thread): it takes every entry waiting at that moment,
chains them in arrival order, and stores them with their access-log rows in **one** transaction —
the head row locked once per batch — then wakes the waiting calls. Under light load a batch is
one entry; under load it is what arrived during the previous commit. Inside a caller's
transaction (tests, management commands that log several things atomically) the entry is written
in that transaction, as before. A batch that fails is retried entry by entry in the callers'
threads, so one bad entry cannot lose the others.

Checkpoints
-----------
Every ``settings.EXCHANGE_CHECKPOINT_EVERY`` entries (default 1000) and on
``dgov exchange checkpoint``, an :class:`~dgov.exchange.models.ExchangeCheckpoint` signs
``"dgov-exchange-checkpoint-v1" US seq US hash US created_at`` with the key of purpose
``exchange-log``.

Receipts
--------
:func:`receipt` returns a JSON document (format ``dgov-exchange-receipt-v1``) with the entry's
content, its chain position and hash, the newest checkpoint covering it (if any) and a
``signature`` member: SM2 (with SM3, the default user id ``1234567812345678``) by the key of
purpose ``exchange-receipt`` over the canonical JSON of the document **without** the
``signature`` member. The public key is embedded (PEM) and named by its kid, so a receipt can be
verified offline (:func:`verify_receipt`); a verifier should compare the kid's key with the one
the platform publishes.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.exchange.models import ExchangeCheckpoint, ExchangeLogEntry, ExchangeLogHead
from dgov.kernel.batching import TIMED_OUT, BatchThread
from dgov.kernel.crypto import SM2PublicKey, sm3
from dgov.kernel.services.audit import canonical_json, format_timestamp

__all__ = [
    "CHECKPOINT_PURPOSE",
    "FORMAT",
    "GENESIS_HASH",
    "RECEIPT_FORMAT",
    "RECEIPT_PURPOSE",
    "LogReport",
    "LogUnavailable",
    "append",
    "checkpoint",
    "entry_content",
    "entry_hash",
    "receipt",
    "verify",
    "verify_receipt",
]

FORMAT = "dgov-exchange-v1"
CHECKPOINT_FORMAT = "dgov-exchange-checkpoint-v1"
RECEIPT_FORMAT = "dgov-exchange-receipt-v1"
CHECKPOINT_PURPOSE = "exchange-log"
RECEIPT_PURPOSE = "exchange-receipt"
SM2_USER_ID = "1234567812345678"
GENESIS_HASH = "0" * 64
SEP = "\x1f"


def _clip(value: Any, limit: int) -> str:
    """Text without control characters, at most ``limit`` characters."""
    text = "" if value is None else str(value)
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)[:limit]


def entry_content(entry: ExchangeLogEntry) -> dict:
    """The hashed content of an entry, rebuilt from its stored columns."""
    return {
        "at": format_timestamp(entry.at),
        "client": entry.client_id,
        "code": entry.code,
        "consumer": entry.consumer_code,
        "fields": json.loads(entry.fields_json),
        "grant": entry.grant_id,
        "operation": entry.operation,
        "provider": entry.provider_code,
        "purpose": entry.purpose,
        "records": json.loads(entry.records_json),
        "request_id": entry.request_id,
        "resource": entry.resource_code,
        "result": entry.result,
        "status": entry.status,
    }


def entry_hash(content: dict, prev_hash: str) -> str:
    """The hex SM3 hash of an entry's content chained to ``prev_hash``."""
    return sm3(SEP.join((FORMAT, prev_hash, canonical_json(content))).encode("utf-8")).hex()


def _checkpoint_payload(seq: int, hash_hex: str, created_at: str) -> bytes:
    """The bytes a checkpoint's SM2 signature covers."""
    return SEP.join((CHECKPOINT_FORMAT, str(seq), hash_hex, created_at)).encode("utf-8")


def _lock_head() -> ExchangeLogHead:
    """The chain head locked for this transaction (created from the last entry when missing)."""
    locked = ExchangeLogHead.objects.select_for_update()
    head = locked.filter(pk=1).first()
    if head is None:
        last = ExchangeLogEntry.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, last_hash = last or (0, GENESIS_HASH)
        head, _created = locked.get_or_create(pk=1, defaults={"seq": seq, "hash": last_hash})
    return head


def _write_checkpoint(seq: int, hash_hex: str) -> ExchangeCheckpoint:
    """Sign and store a checkpoint for entry ``seq`` (inside the caller's transaction)."""
    from dgov.kernel.services import keys

    created_at = timezone.now()
    kid, signature = keys.sign(CHECKPOINT_PURPOSE, _checkpoint_payload(seq, hash_hex, format_timestamp(created_at)))
    entry = ExchangeCheckpoint(seq=seq, hash=hash_hex, created_at=created_at, kid=kid, signature=signature.hex())
    entry.save()
    return entry


class LogUnavailable(Exception):
    """The entry could not be written in time (the database is down or stalled): the call must not be served."""


def _chain(entries: list[ExchangeLogEntry], reads=()) -> None:
    """Chain ``entries`` in order after the head; store them and the access-log ``reads`` (caller's transaction)."""
    from dgov.registry.models import AccessLog

    head = _lock_head()
    every = int(getattr(settings, "EXCHANGE_CHECKPOINT_EVERY", 1000) or 0)
    due = []
    for entry in entries:
        entry.seq, entry.prev_hash = head.seq + 1, head.hash
        entry.hash = entry_hash(entry_content(entry), head.hash)
        head.seq, head.hash = entry.seq, entry.hash
        if every > 0 and entry.seq % every == 0:
            due.append(entry)
    ExchangeLogEntry.objects.bulk_create(entries)
    head.save(update_fields=["seq", "hash"])
    for entry in due:
        _write_checkpoint(entry.seq, entry.hash)
    if reads:
        AccessLog.objects.bulk_create([AccessLog(**read._asdict()) for read in reads], batch_size=500)


class LogWriter(BatchThread):
    """The process's exchange-log writer: the entries waiting at each moment, chained and committed together."""

    name = "dgov-exchange-log"

    def handle(self, items: list) -> list:
        """Store one batch of ``(entry, reads)`` in one transaction (its own connection, this thread's)."""
        with transaction.atomic():
            _chain([entry for entry, _reads in items], [read for _entry, reads in items for read in reads])
        return [None] * len(items)


writer = LogWriter(max_batch=200)
"""The process's log writer; :func:`append` hands it every entry written outside a transaction."""

WRITE_TIMEOUT = 30.0  # seconds a call waits for its entry before it is refused as unlogged


def _group_commit() -> bool:
    """Whether this call's entry goes through the writer: outside a transaction, unless turned off."""
    if not getattr(settings, "EXCHANGE_LOG_GROUP_COMMIT", True):
        return False
    return not transaction.get_connection().in_atomic_block


def append(
    *,
    operation: str,
    result: str,
    code: str = "",
    status: int = 200,
    consumer_code: str = "",
    client_id: str = "",
    provider_code: str = "",
    resource_code: str = "",
    fields: list[str] | tuple[str, ...] = (),
    purpose: str = "",
    records: list[str] | tuple[str, ...] = (),
    grant_id: int | None = None,
    request_id: str = "",
    reads=(),
) -> ExchangeLogEntry:
    """Append one entry to the chain, with the registry access-log rows ``reads`` (``ReadLog``\\ s), and return it.

    Committed before this returns: by the process's :class:`LogWriter` together with the other
    entries waiting (outside a transaction), else in the caller's transaction. Raises
    :class:`LogUnavailable` when the writer did not store it within ``WRITE_TIMEOUT``.
    """
    if result not in ExchangeLogEntry.Result.values:
        raise ValueError(f"exchange log result must be one of {ExchangeLogEntry.Result.values}, not {result!r}")
    entry = ExchangeLogEntry(
        at=timezone.now(),
        request_id=_clip(request_id, 64),
        operation=_clip(operation, 16),
        consumer_code=_clip(consumer_code, 32),
        client_id=_clip(client_id, 64),
        provider_code=_clip(provider_code, 32),
        resource_code=_clip(resource_code, 40),
        fields_json=canonical_json([_clip(f, 64) for f in fields]),
        purpose=_clip(purpose, 255),
        records_json=canonical_json([_clip(r, 64) for r in records]),
        result=result,
        code=_clip(code, 32),
        status=int(status),
        grant_id=grant_id,
    )
    reads = list(reads)
    if _group_commit():
        ok, outcome = writer.submit((entry, reads), timeout=WRITE_TIMEOUT)
        if ok:
            return entry
        if outcome is TIMED_OUT:
            raise LogUnavailable("the exchange log writer did not answer in time")
        entry.pk = entry.seq = None  # the batch failed: write this entry alone, here
    try:
        with transaction.atomic():
            _chain([entry], reads)
    except DatabaseError as exc:
        raise LogUnavailable(str(exc)) from exc
    return entry


def checkpoint() -> ExchangeCheckpoint | None:
    """Sign a checkpoint at the chain head now (None for an empty log); reuse one already there."""
    with transaction.atomic():
        head = _lock_head()
        if head.seq == 0:
            return None
        existing = ExchangeCheckpoint.objects.filter(seq=head.seq).first()
        return existing or _write_checkpoint(head.seq, head.hash)


# --- Verifying ----------------------------------------------------------------------------------


@dataclasses.dataclass
class LogReport:
    """The outcome of :func:`verify`: entries and checkpoints checked, problems (seq, kind, message)."""

    ok: bool
    entries_checked: int
    checkpoints_checked: int
    last_seq: int
    last_hash: str
    problems: list[dict]

    def as_dict(self) -> dict:
        """The report as plain data."""
        return dataclasses.asdict(self)


def _checkpoint_ok(cp: ExchangeCheckpoint) -> bool:
    """Whether a checkpoint's SM2 signature verifies under its kid."""
    from dgov.kernel.services import keys

    try:
        payload = _checkpoint_payload(cp.seq, cp.hash, format_timestamp(cp.created_at))
        return bool(keys.verify(cp.kid, payload, bytes.fromhex(cp.signature)))
    except (ValueError, TypeError):
        return False


def verify(*, chunk_size: int = 5000) -> LogReport:
    """Recompute the whole chain and check the checkpoints and the head; report every problem found.

    Kinds: ``altered`` (content does not match its hash, or a signed checkpoint disagrees),
    ``deleted`` (a gap in seq or a broken link), ``inserted`` (entries past the head),
    ``truncated`` (the head or a checkpoint names entries past the end), ``checkpoint-forged``.
    """
    problems: list[dict] = []

    def problem(seq, kind, message):
        problems.append({"seq": seq, "kind": kind, "message": message})

    checkpoints = {}
    checked_cps = 0
    for cp in ExchangeCheckpoint.objects.order_by("seq"):
        checked_cps += 1
        if not _checkpoint_ok(cp):
            problem(cp.seq, "checkpoint-forged", _("第 %(seq)s 条的检查点签名无效") % {"seq": cp.seq})
        else:
            checkpoints[cp.seq] = cp.hash
    prev, expected, checked = GENESIS_HASH, 1, 0
    last_seq = 0
    queryset = ExchangeLogEntry.objects.order_by("seq")
    for entry in queryset.iterator(chunk_size=chunk_size):
        if entry.seq != expected:
            problem(expected, "deleted", _("第 %(seq)s 条交换日志缺失") % {"seq": expected})
            expected = entry.seq
        try:
            recomputed = entry_hash(entry_content(entry), entry.prev_hash)
        except (ValueError, TypeError):
            recomputed = ""
        if recomputed != entry.hash:
            problem(entry.seq, "altered", _("第 %(seq)s 条交换日志被篡改：内容与哈希不一致") % {"seq": entry.seq})
        elif entry.prev_hash != prev:
            problem(entry.seq, "deleted", _("第 %(seq)s 条交换日志的前一条哈希不连续") % {"seq": entry.seq})
        if entry.seq in checkpoints and checkpoints[entry.seq] != entry.hash:
            problem(entry.seq, "altered", _("第 %(seq)s 条的哈希与已签名检查点不一致：日志被改写") % {"seq": entry.seq})
        prev = entry.hash
        last_seq = entry.seq
        expected = entry.seq + 1
        checked += 1
    head = ExchangeLogHead.objects.filter(pk=1).values_list("seq", "hash").first()
    top_checkpoint = max(checkpoints) if checkpoints else 0
    if top_checkpoint > last_seq:
        problem(
            last_seq + 1, "truncated", _("日志末尾被截断：已签名检查点证明存在第 %(seq)s 条") % {"seq": top_checkpoint}
        )
    if head is not None:
        if head[0] > last_seq:
            problem(last_seq + 1, "truncated", _("日志末尾被截断：链头显示应有 %(seq)s 条") % {"seq": head[0]})
        elif head[0] < last_seq:
            problem(head[0] + 1, "inserted", _("第 %(seq)s 条之后的记录不是通过交换日志服务写入的") % {"seq": head[0]})
        elif last_seq and head[1] != prev:
            problem(last_seq, "altered", _("第 %(seq)s 条的哈希与链头不一致") % {"seq": last_seq})
    problems.sort(key=lambda p: p["seq"] or 0)
    return LogReport(not problems, checked, checked_cps, last_seq, prev if checked else "", problems)


# --- Receipts -----------------------------------------------------------------------------------


def _signing_bytes(document: dict) -> bytes:
    """The bytes a receipt's signature covers: canonical JSON of the document without ``signature``."""
    return canonical_json({k: v for k, v in document.items() if k != "signature"}).encode("utf-8")


def receipt(entry: ExchangeLogEntry) -> dict:
    """A signed receipt of one exchange (format ``dgov-exchange-receipt-v1``), verifiable offline."""
    from dgov.kernel.services import keys

    covering = ExchangeCheckpoint.objects.filter(seq__gte=entry.seq).order_by("seq").first()
    document = {
        "format": RECEIPT_FORMAT,
        "issuer": str(getattr(settings, "SITE_URL", "")),
        "issued_at": format_timestamp(timezone.now()),
        "entry": entry_content(entry),
        "chain": {
            "hash_format": FORMAT,
            "seq": entry.seq,
            "prev_hash": entry.prev_hash,
            "hash": entry.hash,
            "checkpoint": None
            if covering is None
            else {
                "seq": covering.seq,
                "hash": covering.hash,
                "created_at": format_timestamp(covering.created_at),
                "kid": covering.kid,
                "signature": covering.signature,
            },
        },
    }
    kid, signature = keys.sign(RECEIPT_PURPOSE, _signing_bytes(document))
    document["signature"] = {
        "alg": "SM2-SM3",
        "uid": SM2_USER_ID,
        "kid": kid,
        "public_key": keys.public_key(kid).to_pem().decode("ascii"),
        "value": base64.b64encode(signature).decode("ascii"),
    }
    return document


def verify_receipt(document: dict, *, public_key_pem: str | bytes | None = None) -> bool:
    """Whether a receipt is intact: its entry hashes to the stated hash and the SM2 signature verifies.

    Uses only the document (and ``public_key_pem`` when given, which should be the platform's
    published key for the receipt's kid), no database: what an offline verifier does.
    """
    try:
        if document.get("format") != RECEIPT_FORMAT:
            return False
        chain, signed = document["chain"], document["signature"]
        if entry_hash(document["entry"], chain["prev_hash"]) != chain["hash"]:
            return False
        key = SM2PublicKey.from_pem(public_key_pem or signed["public_key"])
        return bool(key.verify(base64.b64decode(signed["value"]), _signing_bytes(document)))
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    except Exception:  # noqa: BLE001 - a malformed key or signature is an invalid receipt, nothing more
        return False
