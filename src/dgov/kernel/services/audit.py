"""The audit chain (审计链): append-only records of every state change, hash-chained with SM3.

Writing
-------
``record(action, *, actor, target, outcome, detail)`` appends one ``AuditRecord`` **inside the
caller's transaction** (it raises ``AuditError`` outside ``transaction.atomic``), so a change and
its audit record commit or roll back together. The client IP, request id and user agent come from
the audit context (``dgov.kernel.audit_context``), which the middleware fills for every request.

Appending is serialized on the single ``AuditHead`` row (id=1), read with ``SELECT … FOR UPDATE``
in the caller's transaction: on PostgreSQL concurrent writers queue on that row lock; on SQLite
every write transaction already holds the database write lock from ``BEGIN IMMEDIATE``. An append
costs one locked read, one insert and one update.

Hashed content (format ``dgov-audit-v1``)
-----------------------------------------
``hash = hex(SM3(UTF-8(text)))`` where ``text`` joins these 15 values with U+001F (unit separator)::

    "dgov-audit-v1", occurred_at, actor_kind, actor_id, actor_label, action, target_type,
    target_id, target_label, outcome, detail_json, ip, request_id, user_agent, prev_hash

* ``occurred_at`` is UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fraction digits), built
  from what the database returns, so SQLite (text) and PostgreSQL (timestamptz) agree.
* ``detail_json`` is stored as canonical JSON text (sorted keys, ``,``/``:`` separators, UTF-8 not
  escaped, no NaN) and hashed exactly as stored; a text column returns it byte for byte on both
  databases (a jsonb column would not: it reorders keys and rewrites numbers).
* Text values have control characters (U+0000–U+001F, U+007F) replaced by spaces when written, and
  JSON escapes them, so a separator can only appear where the format puts it; ``verify()`` rejects
  a row whose text has any other number of separators (which would let a forger move content
  between fields without changing the hash).
* ``prev_hash`` is the previous record's hash (64 zeros for record 1). ``seq`` is *not* hashed:
  the chain itself fixes each record's position, so a record moved elsewhere keeps a valid hash
  and is reported as *reordered* rather than *altered*; ``verify()`` requires ``seq`` to run
  1, 2, 3 … without gaps, and signed checkpoints bind ``seq`` to ``hash``.

Checkpoints
-----------
Every ``settings.AUDIT_CHECKPOINT_EVERY`` records (checked on ``seq`` inside ``record()``) and on
``dgov audit checkpoint``, an ``AuditCheckpoint`` states "record ``seq`` has ``hash``", signed
with SM2 by ``keys.sign("audit-checkpoint", payload)`` where ``payload`` is UTF-8 of
``"dgov-audit-checkpoint-v1" US seq US hash US created_at`` (created_at formatted as above). After
commit the checkpoint is also appended as one JSON line to ``settings.AUDIT_CHECKPOINT_FILE``,
outside the database: deleting the newest records *and* their checkpoint rows is still detected
from the file. (After restoring the database from a backup, archive the file and start a new one:
the older file rightly reports the lost tail.) A failure to sign an automatic checkpoint is logged
and does not fail the business transaction; the next multiple retries.

Verifying
---------
``verify()`` streams the rows in ``seq`` order through a raw DB-API cursor in chunks (tuples, no
ORM instances). The database itself builds each record's hashed text as UTF-8 bytes (SQLite
``||``/``CAST AS BLOB``, PostgreSQL ``concat_ws``/``to_char``/``convert_to``), which is much
cheaper than fetching fifteen strings per row; ``canonical_text()`` is the Python reference of the
same text and the tests hold the two together. Every hash is recomputed, and the **first** problem
is reported:

* ``altered`` — a record's content no longer matches its hash (or the chain matches but disagrees
  with a signed checkpoint: the chain up to there was rewritten and re-hashed);
* ``deleted`` — a gap in ``seq``, or a record whose predecessor hash names no stored record;
* ``inserted`` — a record the chain does not link to (the next record links past it), or records
  beyond the chain head;
* ``reordered`` — a record whose predecessor is stored later in the log;
* ``truncated`` — a signed checkpoint (database or file) or the chain head names records past the
  end of the log;
* ``checkpoint-forged`` — a checkpoint whose SM2 signature does not verify, or two validly signed
  checkpoints for one ``seq`` that disagree; ``checkpoint-missing`` — a signed checkpoint in the
  file that the database lacks.

What a hash chain cannot show: someone with write access to the database can append forged
records after the newest checkpoint and move the head with them, since SM3 is unkeyed. Signed
checkpoints bound that window to the records written since the last one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.audit_context import current_audit_context
from dgov.kernel.models.audit import AuditCheckpoint, AuditHead, AuditRecord

__all__ = [
    "CHECKPOINT_PURPOSE",
    "FORMAT",
    "GENESIS_HASH",
    "AuditError",
    "Problem",
    "VerifyReport",
    "canonical_json",
    "canonical_text",
    "checkpoint",
    "checkpoint_payload",
    "format_timestamp",
    "record",
    "record_hash",
    "verify",
]

logger = logging.getLogger(__name__)

FORMAT = "dgov-audit-v1"
CHECKPOINT_FORMAT = "dgov-audit-checkpoint-v1"
CHECKPOINT_PURPOSE = "audit-checkpoint"
GENESIS_HASH = "0" * 64
SEP = "\x1f"
SEP_BYTE = b"\x1f"
HASHED_FIELDS = (
    "occurred_at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "outcome",
    "detail_json",
    "ip",
    "request_id",
    "user_agent",
    "prev_hash",
)
_SEPARATORS = len(HASHED_FIELDS)  # separators in a well-formed text: one before each field
_CONTROL = {code: " " for code in [*range(0x20), 0x7F]}
_FROM_SETTINGS: Any = object()
_OUTCOMES = frozenset(AuditRecord.Outcome.values)


class AuditError(Exception):
    """The audit chain cannot be written as asked (for example outside a transaction)."""


def _make_sm3_hex() -> Callable[[bytes], str]:
    """Return the fastest available ``bytes -> hex SM3`` (OpenSSL through hashlib, else ``cryptography``)."""
    from dgov.kernel.crypto import sm3

    try:
        if hashlib.new("sm3", b"abc").digest() == sm3(b"abc"):
            return lambda data: hashlib.new("sm3", data).hexdigest()
    except ValueError:  # an OpenSSL build without SM3 in hashlib
        pass
    return lambda data: sm3(data).hex()


sm3_hex = _make_sm3_hex()


# --- Canonical forms --------------------------------------------------------------------------


def cli_actor() -> str:
    """The audit actor of a management command: ``system:cli:<operating-system user>``."""
    import getpass

    return f"system:cli:{getpass.getuser()}"


def format_timestamp(value) -> str:
    """Return a datetime (or a database's text for one) as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if isinstance(value, str):
        if value.endswith("Z") and len(value) == 27 and value[10] == "T":
            return value
        value = datetime.fromisoformat(value)
    # Django stores naive UTC on SQLite.
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """Return ``value`` as canonical JSON text: sorted keys, compact, UTF-8 kept, NaN refused."""
    text = json.dumps(
        value,
        cls=DjangoJSONEncoder,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )
    # Lone surrogates cannot be stored as UTF-8 on either database.
    return text.encode("utf-8", "replace").decode("utf-8")


def _clean(value: Any, limit: int) -> str:
    """Return ``value`` as storable text: no control characters, valid UTF-8, at most ``limit`` chars."""
    text = str(value).translate(_CONTROL)[:limit]
    return text.encode("utf-8", "replace").decode("utf-8")


def canonical_text(values: dict[str, str]) -> str:
    """Return the text whose SM3 is a record's hash, from its hashed field values."""
    return SEP.join((FORMAT, *(values[name] for name in HASHED_FIELDS)))


def record_hash(values: dict[str, str]) -> str:
    """Return the hex SM3 hash of a record from its hashed field values (occurred_at already canonical)."""
    return sm3_hex(canonical_text(values).encode("utf-8"))


def checkpoint_payload(seq: int, hash_hex: str, created_at: str) -> bytes:
    """Return the bytes an audit checkpoint's SM2 signature covers."""
    return SEP.join((CHECKPOINT_FORMAT, str(seq), hash_hex, created_at)).encode("utf-8")


# --- Writing ----------------------------------------------------------------------------------


def _describe_actor(actor: Any) -> tuple[str, str, str]:
    """Return (kind, id, label) for a user, a ``"kind:label"`` string or None (the system)."""
    if actor is None:
        return "system", "", "system"
    if isinstance(actor, str):
        kind, sep, _rest = actor.partition(":")
        return (_clean(kind, 32) if sep and kind else "system"), "", _clean(actor, 200)
    # Principals that are not users (API clients) name themselves, so their ids never pass for user ids.
    describe = getattr(actor, "audit_identity", None)
    if callable(describe):
        kind, ident, label = describe()
        return _clean(kind, 32), _clean(ident, 64), _clean(label, 200)
    if not getattr(actor, "is_authenticated", False):
        return "anonymous", "", "anonymous"
    username = actor.get_username()
    display = getattr(actor, "display_name", "") or ""
    label = f"{username} {display}" if display and display != username else username
    return "user", _clean(actor.pk, 64), _clean(label, 200)


def _describe_target(target: Any) -> tuple[str, str, str]:
    """Return (type, id, label) for a model instance, a (type, id[, label]) tuple, a label or None."""
    if target is None:
        return "", "", ""
    if isinstance(target, models.Model):
        meta = target._meta
        pk = "" if target.pk is None else target.pk
        return f"{meta.app_label}.{meta.model_name}", _clean(pk, 64), _clean(target, 200)
    if isinstance(target, tuple) and len(target) in (2, 3):
        label = target[2] if len(target) == 3 else ""
        return _clean(target[0], 100), _clean(target[1], 64), _clean(label, 200)
    if isinstance(target, str):
        return "", "", _clean(target, 200)
    raise TypeError(f"audit target must be a model instance, tuple or string, not {type(target).__name__}")


def _lock_head() -> AuditHead:
    """Return the chain head locked for this transaction, creating it (from the last record) if absent."""
    locked = AuditHead.objects.select_for_update()
    head = locked.filter(pk=1).first()
    if head is None:
        last = AuditRecord.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, last_hash = last or (0, GENESIS_HASH)
        head, _created = locked.get_or_create(pk=1, defaults={"seq": seq, "hash": last_hash})
    return head


def record(
    action: str,
    *,
    actor: Any = None,
    target: Any = None,
    outcome: str = "success",
    detail: dict | None = None,
) -> AuditRecord:
    """Append an audit record to the chain inside the caller's transaction and return it."""
    if not connection.in_atomic_block:
        raise AuditError("audit.record() must run inside transaction.atomic(), with the change it audits")
    if outcome not in _OUTCOMES:
        raise ValueError(f"audit outcome must be one of {sorted(_OUTCOMES)}, not {outcome!r}")
    action = _clean(action, 100)
    if not action.strip():
        raise ValueError("audit action must not be empty")
    context = current_audit_context()
    actor_kind, actor_id, actor_label = _describe_actor(actor if actor is not None else context.actor)
    target_type, target_id, target_label = _describe_target(target)
    occurred_at = timezone.now()
    values = {
        "occurred_at": format_timestamp(occurred_at),
        "actor_kind": actor_kind,
        "actor_id": actor_id,
        "actor_label": actor_label,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "target_label": target_label,
        "outcome": outcome,
        "detail_json": canonical_json(detail if detail is not None else {}),
        "ip": _clean(context.ip, 45),
        "request_id": _clean(context.request_id, 64),
        "user_agent": _clean(context.user_agent, 256),
    }
    head = _lock_head()
    seq = head.seq + 1
    values["prev_hash"] = head.hash
    digest = record_hash(values)
    values["occurred_at"] = occurred_at
    entry = AuditRecord(seq=seq, hash=digest, **values)
    entry.save()
    AuditHead.objects.filter(pk=1).update(seq=seq, hash=digest)
    every = int(getattr(settings, "AUDIT_CHECKPOINT_EVERY", 0) or 0)
    if every > 0 and seq % every == 0:
        try:
            with transaction.atomic():
                _write_checkpoint(seq, digest)
        except Exception:
            # The change itself must not fail because a checkpoint could not be signed; the next
            # multiple of AUDIT_CHECKPOINT_EVERY tries again and verify() still checks the chain.
            logger.exception("audit checkpoint at seq %s could not be written", seq)
    return entry


def recent_records(*, actor_kind: str = "user", actor_ids=None, limit: int = 20) -> list[AuditRecord]:
    """The newest audit records, optionally only those by the given actors (ids or an id subquery)."""
    qs = AuditRecord.objects.order_by("-seq")
    if actor_ids is not None:
        qs = qs.filter(actor_kind=actor_kind, actor_id__in=actor_ids)
    return list(qs[:limit])


def _checkpoint_file() -> Path | None:
    """Return the configured checkpoint file, or None when the file copy is switched off."""
    path = getattr(settings, "AUDIT_CHECKPOINT_FILE", None)
    return Path(path) if path else None


def _append_line(path: Path, line: str) -> None:
    """Append one line to ``path`` in a single write and flush it to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_checkpoint(seq: int, hash_hex: str) -> AuditCheckpoint:
    """Sign and store a checkpoint for record ``seq``; copy it to the checkpoint file after commit."""
    from dgov.kernel.services import keys

    created_at = timezone.now()
    created_text = format_timestamp(created_at)
    kid, signature = keys.sign(CHECKPOINT_PURPOSE, checkpoint_payload(seq, hash_hex, created_text))
    entry = AuditCheckpoint(seq=seq, hash=hash_hex, created_at=created_at, kid=kid, signature=signature.hex())
    entry.save()
    path = _checkpoint_file()
    if path is not None:
        fields = {"seq": seq, "hash": hash_hex, "created_at": created_text, "kid": kid}
        line = json.dumps({**fields, "signature": signature.hex()}, sort_keys=True)
        transaction.on_commit(partial(_append_line, path, line), robust=True)
    return entry


def checkpoint(*, actor: Any = None) -> AuditCheckpoint:
    """Sign a checkpoint at the chain head now (auditing that as well); reuse one already there."""
    with transaction.atomic():
        head = _lock_head()
        existing = AuditCheckpoint.objects.filter(seq=head.seq).first()
        if existing is not None and head.seq > 0:
            return existing
        entry = record("kernel.audit.checkpoint", actor=actor)
        # record() may have written the periodic checkpoint for this very seq.
        existing = AuditCheckpoint.objects.filter(seq=entry.seq).first()
        return existing or _write_checkpoint(entry.seq, entry.hash)


# --- Verifying --------------------------------------------------------------------------------


@dataclasses.dataclass
class Problem:
    """One integrity problem found by ``verify()``."""

    seq: int | None
    kind: str
    message: str
    action: str = ""
    occurred_at: str = ""


@dataclasses.dataclass
class VerifyReport:
    """The outcome of checking the audit chain."""

    ok: bool
    records_checked: int
    first_seq: int | None
    last_seq: int | None
    last_hash: str
    first_problem: Problem | None
    problems: list[Problem]
    checkpoints_checked: int
    last_checkpoint: dict | None
    warnings: list[str]
    elapsed: float

    def as_dict(self) -> dict:
        """Return the report as plain data (for ``--json``)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Checkpoint:
    """A checkpoint as read from the database or the file, before its signature is judged."""

    seq: int
    hash: str
    created_at: str
    kid: str
    signature: str
    source: str


def _read_checkpoint_file(path: Path | None) -> tuple[list[_Checkpoint], list[Problem]]:
    """Parse the checkpoint file; an unreadable line is itself a problem."""
    entries: list[_Checkpoint] = []
    problems: list[Problem] = []
    if path is None or not path.exists():
        return entries, problems
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                entries.append(
                    _Checkpoint(
                        seq=int(data["seq"]),
                        hash=str(data["hash"]),
                        created_at=str(data["created_at"]),
                        kid=str(data["kid"]),
                        signature=str(data["signature"]),
                        source=f"file:{number}",
                    )
                )
            except (ValueError, KeyError, TypeError):
                problems.append(
                    Problem(
                        None,
                        "checkpoint-forged",
                        _("检查点文件 %(path)s 第 %(line)s 行无法解析") % {"path": path, "line": number},
                    )
                )
    return entries, problems


def _signature_ok(entry: _Checkpoint) -> bool:
    """Return whether a checkpoint's SM2 signature verifies under its key id."""
    from dgov.kernel.services import keys

    try:
        return bool(
            keys.verify(
                entry.kid,
                checkpoint_payload(entry.seq, entry.hash, entry.created_at),
                bytes.fromhex(entry.signature),
            )
        )
    except Exception:  # unknown key id, malformed hex or DER: not a valid signature either way
        return False


@dataclasses.dataclass
class _Anchors:
    """Checkpoints whose signatures verify, by seq, and what was wrong with the others."""

    hashes: dict[int, tuple[str, str]]  # seq -> (hash, source)
    file_only: dict[int, str]  # seq -> source, valid checkpoints the database lacks
    problems: list[Problem]
    checked: int
    latest: dict | None
    warnings: list[str]


def _load_anchors(path: Path | None) -> _Anchors:
    """Read checkpoints from the database and the file, verify their signatures and reconcile them."""
    # The file first: a checkpoint it holds was committed before this read of the table, so a
    # checkpoint written concurrently cannot look like one the database lacks.
    file_entries, problems = _read_checkpoint_file(path)
    db_entries = [
        _Checkpoint(seq, hash_hex, format_timestamp(created), kid, signature, "db")
        for seq, hash_hex, created, kid, signature in AuditCheckpoint.objects.order_by("seq").values_list(
            "seq", "hash", "created_at", "kid", "signature"
        )
    ]
    by_seq: dict[int, list[_Checkpoint]] = {}
    for entry in [*db_entries, *file_entries]:
        by_seq.setdefault(entry.seq, []).append(entry)
    verdicts: dict[tuple, bool] = {}
    anchors: dict[int, tuple[str, str]] = {}
    file_only: dict[int, str] = {}
    latest = None
    for seq in sorted(by_seq):
        valid: list[_Checkpoint] = []
        for entry in by_seq[seq]:
            key = (entry.seq, entry.hash, entry.created_at, entry.kid, entry.signature)
            if key not in verdicts:
                verdicts[key] = _signature_ok(entry)
            if verdicts[key]:
                valid.append(entry)
            else:
                problems.append(
                    Problem(
                        seq,
                        "checkpoint-forged",
                        _("第 %(seq)s 条的检查点（来源 %(source)s）SM2 签名验证失败：检查点被伪造或篡改")
                        % {"seq": seq, "source": entry.source},
                    )
                )
        if not valid:
            continue
        if len({entry.hash for entry in valid}) > 1:
            problems.append(
                Problem(
                    seq,
                    "checkpoint-forged",
                    _("第 %(seq)s 条有多个签名有效但哈希不同的检查点：签名密钥可能已泄露")
                    % {"seq": seq},
                )
            )
            continue
        anchors[seq] = (valid[0].hash, valid[0].source)
        if not any(entry.source == "db" for entry in valid):
            file_only[seq] = valid[0].source
        latest = {
            "seq": seq,
            "hash": valid[0].hash,
            "created_at": valid[0].created_at,
            "kid": valid[0].kid,
            "source": ",".join(sorted({entry.source.split(":")[0] for entry in valid})),
        }
    warnings = []
    in_file = {entry.seq for entry in file_entries}
    missing = [entry.seq for entry in db_entries if entry.seq not in in_file]
    if path is not None and missing:
        # Not an integrity failure (the copy is written after commit and may have failed), but
        # without it a truncation that also removes checkpoint rows would go unnoticed.
        warnings.append(
            _("检查点文件 %(path)s 缺少数据库中的 %(n)s 个检查点（最新为第 %(seq)s 条）")
            % {"path": path, "n": len(missing), "seq": max(missing)}
        )
    return _Anchors(anchors, file_only, problems, len(verdicts), latest, warnings)


def _stream_sql(vendor: str) -> str:
    """Return the SELECT yielding (seq, UTF-8 bytes of the hashed text, prev_hash, hash) in seq order.

    The database concatenates the fields itself: one bytes value per row is far cheaper to fetch
    than fifteen separate strings, and it is hashed without a decode/encode round trip.
    """
    table = connection.ops.quote_name(AuditRecord._meta.db_table)
    fields = HASHED_FIELDS[1:]
    if vendor == "postgresql":
        when = "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        # concat_ws drops NULLs rather than nulling the result; the separator count then catches them.
        text = f"convert_to(concat_ws(chr(31), '{FORMAT}', {when}, {', '.join(fields)}), 'UTF8')"
    elif vendor == "sqlite":
        # Django stores str(datetime) in UTC: a space before the time and no fraction when it is zero.
        when = (
            "substr(occurred_at, 1, 10) || 'T' || substr(occurred_at, 12, 8) || "
            "CASE WHEN length(occurred_at) = 19 THEN '.000000' ELSE substr(occurred_at, 20) END || 'Z'"
        )
        joined = " || char(31) || ".join([f"'{FORMAT}'", f"({when})", *fields])
        text = f"CAST({joined} AS BLOB)"
    else:
        raise AuditError(f"audit verification supports SQLite and PostgreSQL, not {vendor}")
    return f"SELECT seq, {text}, prev_hash, hash FROM {table} WHERE seq >= %s ORDER BY seq"  # noqa: S608


def _self_consistent(text, stored) -> bool:
    """Whether hashed-text bytes are well formed and hash to the stored hash."""
    if text is None:
        return False
    text = bytes(text)  # psycopg may hand bytea over as a memoryview
    return text.count(SEP_BYTE) == _SEPARATORS and sm3_hex(text) == stored


class _Walker:
    """Looks things up in the log to tell what kind of tampering broke the chain at a record."""

    def __init__(self, cursor, head_seq: int | None):
        self.cursor = cursor
        self.table = connection.ops.quote_name(AuditRecord._meta.db_table)
        self.head_seq = head_seq

    def seq_of_hash(self, hash_hex: str) -> int | None:
        """Return the seq of the record stored with ``hash_hex``."""
        self.cursor.execute(f"SELECT seq FROM {self.table} WHERE hash = %s", [hash_hex])  # noqa: S608
        row = self.cursor.fetchone()
        return None if row is None else int(row[0])

    def prev_hash_of(self, seq: int) -> str | None:
        """Return the prev_hash stored on record ``seq`` (None when there is no such record)."""
        self.cursor.execute(f"SELECT prev_hash FROM {self.table} WHERE seq = %s", [seq])  # noqa: S608
        row = self.cursor.fetchone()
        return None if row is None else row[0]

    def brief(self, seq: int) -> tuple[str, str]:
        """Return (action, occurred_at) of record ``seq`` for the report, or blanks."""
        try:
            found = AuditRecord.objects.filter(seq=seq).values_list("action", "occurred_at").first()
            return ("", "") if found is None else (found[0] or "", format_timestamp(found[1]))
        except (TypeError, ValueError, AttributeError):  # a tampered row may not even parse
            return "", ""

    def classify(self, row: tuple, expected: int, prev: str) -> Problem:
        """Explain why ``row`` (seq, text bytes, prev_hash, hash) does not follow the hash ``prev``."""
        seq, text, prev_hash, stored = row
        self_ok = _self_consistent(text, stored)

        def problem(at: int, kind: str, message: str) -> Problem:
            return Problem(at, kind, message, *self.brief(at))

        if seq > expected:
            if prev_hash == prev and self_ok:
                return problem(
                    seq,
                    "altered",
                    _("序号从第 %(expected)s 条跳到第 %(seq)s 条，但哈希链连续：第 %(seq)s 条的序号被改动")
                    % {"expected": expected, "seq": seq},
                )
            last = seq - 1
            return problem(
                expected,
                "deleted",
                _("第 %(first)s 至第 %(last)s 条审计记录缺失（已被删除）") % {"first": expected, "last": last}
                if last > expected
                else _("第 %(first)s 条审计记录缺失（已被删除）") % {"first": expected},
            )
        if seq < expected:
            return problem(seq, "inserted", _("第 %(seq)s 条的序号重复：有记录被插入") % {"seq": seq})
        if prev_hash == prev:
            if self.head_seq is not None and seq > self.head_seq:
                return problem(
                    seq,
                    "inserted",
                    _("第 %(seq)s 条是链头之后插入的记录，且其哈希不正确") % {"seq": seq},
                )
            return problem(
                seq,
                "altered",
                _("第 %(seq)s 条审计记录被篡改：内容与其存储的 SM3 哈希不一致") % {"seq": seq},
            )
        found = self.seq_of_hash(prev_hash) if isinstance(prev_hash, str) else None
        if found is not None and found > seq:
            return problem(
                seq,
                "reordered",
                _("第 %(seq)s 条审计记录的位置被调换：它原本紧跟在第 %(found)s 条之后")
                % {"seq": seq, "found": found},
            )
        if found is not None and found < seq - 1:
            return problem(
                found + 1,
                "inserted",
                _("第 %(first)s 至第 %(last)s 条是插入的记录：第 %(seq)s 条的前一条哈希指向第 %(found)s 条")
                % {"first": found + 1, "last": seq - 1, "seq": seq, "found": found},
            )
        if found is None:
            following = self.prev_hash_of(seq + 1)
            if (following is not None and following == prev) or (
                following is None and self.head_seq is not None and seq > self.head_seq
            ):
                return problem(
                    seq,
                    "inserted",
                    _("第 %(seq)s 条是插入的记录：它不在哈希链上") % {"seq": seq},
                )
            if self_ok:
                return problem(
                    seq,
                    "deleted",
                    _(
                        "第 %(seq)s 条之前的审计记录缺失：其前一条哈希在日志中不存在"
                        "（记录被删除后重新编号，或第 %(before)s 条被改写并重算了哈希）"
                    )
                    % {"seq": seq, "before": seq - 1},
                )
        return problem(
            seq,
            "altered",
            _("第 %(seq)s 条审计记录被篡改：前一条哈希与内容均不一致") % {"seq": seq},
        )


def verify(
    *,
    from_seq: int = 1,
    checkpoint_file: Path | str | None = _FROM_SETTINGS,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = 20000,
) -> VerifyReport:
    """Check the audit chain (from ``from_seq``) and its signed checkpoints; report the first problem."""
    started = time.perf_counter()
    from_seq = max(1, int(from_seq))
    if checkpoint_file is _FROM_SETTINGS:
        path = _checkpoint_file()
    else:
        path = Path(checkpoint_file) if checkpoint_file else None
    head = AuditHead.objects.filter(pk=1).values_list("seq", "hash").first()
    anchors = _load_anchors(path)
    problems: list[Problem] = list(anchors.problems)
    warnings: list[str] = list(anchors.warnings)
    anchor_seqs = sorted(seq for seq in anchors.hashes if seq >= from_seq)

    vendor = connection.vendor
    lookup = connection.cursor()
    walker = _Walker(lookup, head[0] if head else None)
    prev = GENESIS_HASH
    if from_seq > 1:
        lookup.execute(f"SELECT hash FROM {walker.table} WHERE seq = %s", [from_seq - 1])  # noqa: S608
        prev_found = lookup.fetchone()
        if prev_found is None:
            problems.append(
                Problem(
                    from_seq - 1,
                    "deleted",
                    _("第 %(seq)s 条审计记录缺失（已被删除）") % {"seq": from_seq - 1},
                )
            )
        else:
            prev = prev_found[0]
    total = max(0, (head[0] if head else 0) - from_seq + 1)

    expected = from_seq
    checked = 0
    first_seq: int | None = None
    chain_problem: Problem | None = None
    next_anchor_index = 0
    next_anchor = anchor_seqs[0] if anchor_seqs else -1
    last_good_anchor = 0
    sep = SEP_BYTE
    separators = _SEPARATORS
    hash_hex = sm3_hex
    sql = _stream_sql(vendor)
    # A server-side cursor streams inside a transaction; outside one (autocommit) PostgreSQL would
    # materialize the whole result first. SQLite stays in autocommit so writers are not blocked.
    reading = transaction.atomic() if vendor == "postgresql" else contextlib.nullcontext()
    with reading:
        cursor = connection.chunked_cursor()
        try:
            cursor.execute(sql, [from_seq])
            while chain_problem is None:
                rows = cursor.fetchmany(chunk_size)
                if not rows:
                    break
                if first_seq is None:
                    first_seq = rows[0][0]
                for row in rows:
                    seq, text, ph, h = row
                    if (
                        text is None
                        or hash_hex(text) != h
                        or ph != prev
                        or seq != expected
                        or text.count(sep) != separators
                    ):
                        chain_problem = walker.classify(row, expected, prev)
                        break
                    if seq == next_anchor:
                        anchor_hash, source = anchors.hashes[seq]
                        if anchor_hash != h:
                            chain_problem = Problem(
                                seq,
                                "altered",
                                _(
                                    "第 %(seq)s 条的哈希与已签名检查点（来源 %(source)s）不一致："
                                    "第 %(first)s 至第 %(seq)s 条之间的记录被改写并重算了哈希链"
                                )
                                % {"seq": seq, "source": source, "first": last_good_anchor + 1},
                                *walker.brief(seq),
                            )
                            break
                        last_good_anchor = seq
                        next_anchor_index += 1
                        if next_anchor_index < len(anchor_seqs):
                            next_anchor = anchor_seqs[next_anchor_index]
                        else:
                            next_anchor = -1
                    prev = h
                    expected += 1
                    checked += 1
                if progress is not None:
                    progress(checked, max(total, checked))
        finally:
            cursor.close()

    if chain_problem is not None:
        problems.append(chain_problem)
    problems.extend(_tail_problems(lookup, walker.table, anchors, warnings))
    lookup.close()
    problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return VerifyReport(
        ok=not problems,
        records_checked=checked,
        first_seq=first_seq,
        last_seq=expected - 1 if checked else None,
        last_hash=prev if checked else "",
        first_problem=problems[0] if problems else None,
        problems=problems,
        checkpoints_checked=anchors.checked,
        last_checkpoint=anchors.latest,
        warnings=warnings,
        elapsed=time.perf_counter() - started,
    )


def _tail_problems(cursor, table: str, anchors: _Anchors, warnings: list[str]) -> list[Problem]:
    """Compare the end of the log with the chain head and the signed checkpoints (one snapshot)."""
    head_table = connection.ops.quote_name(AuditHead._meta.db_table)
    cursor.execute(
        f"SELECT (SELECT MAX(seq) FROM {table}), "  # noqa: S608
        f"(SELECT seq FROM {head_table} WHERE id = 1), (SELECT hash FROM {head_table} WHERE id = 1)"
    )
    max_seq, head_seq, head_hash = cursor.fetchone()
    max_seq = int(max_seq or 0)
    problems: list[Problem] = []
    if anchors.hashes:
        top = max(anchors.hashes)
        if top > max_seq:
            problems.append(
                Problem(
                    max_seq + 1,
                    "truncated",
                    _(
                        "日志末尾被截断：已签名检查点（来源 %(source)s）证明存在第 %(top)s 条，"
                        "但日志只到第 %(last)s 条"
                    )
                    % {"source": anchors.hashes[top][1], "top": top, "last": max_seq},
                )
            )
    for seq, source in sorted(anchors.file_only.items()):
        if seq <= max_seq:
            problems.append(
                Problem(
                    seq,
                    "checkpoint-missing",
                    _("检查点文件（%(source)s）中第 %(seq)s 条的签名检查点在数据库中缺失：检查点表被删改")
                    % {"source": source, "seq": seq},
                )
            )
    if head_seq is None:
        if max_seq:
            warnings.append(_("审计链头记录缺失，无法用它核对日志末尾"))
        return problems
    head_seq = int(head_seq)
    if head_seq > max_seq:
        problems.append(
            Problem(
                max_seq + 1,
                "truncated",
                _("日志末尾被截断：链头记录显示应有 %(head)s 条，但日志只到第 %(last)s 条")
                % {"head": head_seq, "last": max_seq},
            )
        )
    elif head_seq < max_seq:
        problems.append(
            Problem(
                head_seq + 1,
                "inserted",
                _("第 %(first)s 至第 %(last)s 条不是通过审计服务写入的：链头只到第 %(head)s 条")
                % {"first": head_seq + 1, "last": max_seq, "head": head_seq},
            )
        )
    elif max_seq:
        cursor.execute(f"SELECT hash FROM {table} WHERE seq = %s", [max_seq])  # noqa: S608
        if cursor.fetchone()[0] != head_hash:
            problems.append(
                Problem(
                    max_seq,
                    "altered",
                    _("第 %(seq)s 条的哈希与链头记录不一致") % {"seq": max_seq},
                )
            )
    return problems
