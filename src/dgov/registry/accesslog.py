"""Access-log journal for the registry read fast path (谁查了我的数据 — who read my data).

Every read of a record leaves an :class:`~dgov.registry.models.AccessLog` row, and the data must
not leave the platform before the read is recorded: a citizen's record of who read their data is
only worth something if no read escapes it. The Django read path inserts the row in the request's
transaction. The fast path (:mod:`dgov.registry.fastread`) answers thousands of reads a second,
and a database round trip and commit per read would cost more than the rest of the read (ADR 0013),
so it records the read in a local journal instead:

* :func:`log_read` / :func:`log_reads` append one line per read to this process's journal file
  in ``DATA_DIR/accesslog/`` (``O_APPEND``, one ``write`` per call — the fast path writes a whole
  batch of reads at once — files named by the second they were started in, a new file each
  second), before the answer is sent. A journal that cannot be
  written makes the fast path pass the request to Django, which logs it directly.
* A background thread per process ``fdatasync``\\ s the current file every
  ``ACCESS_JOURNAL_SYNC_SECONDS`` (default 0.2 s) when it has new lines: a read's line survives a
  crash of the process at once and of the machine after at most that long.
* :func:`ingest_journals`, run by ``dgov worker`` on every pass, moves the lines of finished files
  (older than ``INGEST_AFTER_SECONDS``) into ``AccessLog`` in one transaction per file together with
  an :class:`~dgov.registry.models.AccessJournalFile` marker, so a file is never ingested twice,
  then deletes the file. "Who read my data" shows a fast-path read a few seconds later.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction

from dgov.registry.models import AccessJournalFile, AccessLog

logger = logging.getLogger(__name__)

INGEST_AFTER_SECONDS = 3.0  # a file is finished once its second is this far in the past
MAX_FILES_PER_PASS = 200
INGEST_SLICE = 500  # rows per COPY statement (see _insert)


class ReadLog(NamedTuple):
    """The values of one :class:`AccessLog` row, cheap to build on the read path (no model instance)."""

    registry_id: int
    record_id: int
    subject_digest: str
    reader_org_id: int | None
    reader: str
    channel: str
    purpose: str
    fields: list[str]
    at: datetime.datetime

    def save(self) -> AccessLog:
        """Insert the row now, in the caller's transaction (the Django read path)."""
        return AccessLog.objects.create(**self._asdict())

    def line(self) -> bytes:
        """The journal line of this read (a JSON array, newline-terminated)."""
        return (json.dumps([*self[:8], self.at.isoformat()], ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> ReadLog:
        """Parse a journal line; ValueError when it is not a complete one."""
        values = json.loads(line)
        if not isinstance(values, list) or len(values) != len(cls._fields):
            raise ValueError("not an access-log journal line")
        at = datetime.datetime.fromisoformat(values[8]) if isinstance(values[8], str) else None
        if at is None or at.tzinfo is None:
            raise ValueError("bad time in an access-log journal line")
        return cls(*values[:8], at)


def journal_dir() -> Path:
    """The directory of the journal files (created on first use)."""
    path = Path(settings.DATA_DIR) / "accesslog"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Journal:
    """This process's journal: one file per second, appended to under a lock, synced in the background."""

    def __init__(self):
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._second = -1
        self._pid = 0
        self._token = ""
        self._dirty = False
        self._retired: list[int] = []
        self._syncer: threading.Thread | None = None

    def append(self, row: ReadLog) -> bool:
        """Write the read's line; True once the kernel has it, False when it could not be written."""
        return self.append_many([row])

    def append_many(self, rows: list[ReadLog]) -> bool:
        """Write the lines of several reads with one ``write``; True once the kernel has them all.

        The fast path records a whole batch of reads this way (one system call, and one release of
        the interpreter lock, per batch instead of per read). False when they could not be written:
        then none of those reads may be answered.
        """
        if not rows:
            return True
        data = b"".join([row.line() for row in rows])
        try:
            with self._lock:
                fd = self._file(int(time.time()))
                written = os.write(fd, data)
                while written < len(data):  # a regular file takes it all, unless the disk is full
                    more = os.write(fd, data[written:])
                    if more <= 0:
                        raise OSError("short write to the access-log journal")
                    written += more
                self._dirty = True
        except OSError:
            logger.exception("access-log journal write failed")
            return False
        return True

    def _file(self, second: int) -> int:
        """The descriptor of this second's file (opening it, and retiring the last one, when the second changed)."""
        pid = os.getpid()
        if self._fd is not None and second == self._second and pid == self._pid:
            return self._fd
        if pid != self._pid:  # a new process (or a fork): its own token, files and syncer
            self._pid, self._token, self._fd, self._syncer, self._retired = pid, secrets.token_hex(4), None, None, []
        if self._fd is not None:
            self._retired.append(self._fd)  # synced and closed by the syncer, outside the lock
        path = journal_dir() / f"{second}-{pid}-{self._token}.jsonl"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._second = second
        if self._syncer is None or not self._syncer.is_alive():
            self._syncer = threading.Thread(target=self._sync_loop, name="dgov-accesslog-sync", daemon=True)
            self._syncer.start()
        return self._fd

    def _sync_loop(self) -> None:
        """Flush new lines to disk every few hundred milliseconds, never while holding the writers' lock."""
        interval = float(getattr(settings, "ACCESS_JOURNAL_SYNC_SECONDS", 0.2))
        while True:
            time.sleep(interval)
            self.sync()

    def sync(self) -> None:
        """Flush the current file's new lines and close retired files (each after a final fsync)."""
        with self._lock:
            retired, self._retired = self._retired, []
            current = os.dup(self._fd) if (self._dirty and self._fd is not None) else None
            self._dirty = False
        for fd in retired:
            try:
                os.fsync(fd)
            except OSError:
                logger.exception("access-log journal sync failed")
            finally:
                os.close(fd)
        if current is not None:
            try:
                os.fdatasync(current)
            except OSError:
                logger.exception("access-log journal sync failed")
            finally:
                os.close(current)

    def close(self) -> None:
        """Sync and close every file of this process (tests, process exit).

        Lines written afterwards go to a file with a new token in its name, even within the same
        second: a closed file may already be ingested, and a name is ingested only once.
        """
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                self._retired.append(self._fd)
                self._token = secrets.token_hex(4)
            self._fd, self._second = None, -1
            self._dirty = False
        self.sync()


journal = Journal()
"""The process's journal; :func:`log_read` appends to it."""


def log_read(row: ReadLog) -> bool:
    """Record one fast-path read in the journal; False if it could not be recorded (the caller must not answer)."""
    return journal.append(row)


def log_reads(rows: list[ReadLog]) -> bool:
    """Record several fast-path reads with one write; False if they could not be (none may be answered)."""
    return journal.append_many(rows)


def ingest_journals(*, older_than: float | None = None, limit: int = MAX_FILES_PER_PASS) -> int:
    """Move finished journal files into ``AccessLog`` (one transaction per file, never twice); returns rows added.

    A line that is not complete (the process died while writing it) is skipped and counted in the
    log; the rest of its file is ingested.
    """
    directory = journal_dir()
    cutoff = time.time() - (INGEST_AFTER_SECONDS if older_than is None else older_than)
    finished = []
    for path in directory.glob("*.jsonl"):
        second, _sep, _rest = path.name.partition("-")
        if second.isdigit() and int(second) < cutoff:
            finished.append(path)
    added = 0
    for path in sorted(finished)[:limit]:
        try:
            added += _ingest_file(path)
        except Exception:  # noqa: BLE001 - one bad file must not stop the others; it is retried next pass
            logger.exception("access-log journal %s could not be ingested", path.name)
    return added


def _ingest_file(path: Path) -> int:
    """Ingest one finished file and delete it; returns the rows added (0 when it was ingested before)."""
    rows, bad = [], 0
    with open(path, "rb") as handle:
        for line in handle:
            try:
                rows.append(ReadLog.from_line(line))
            except (ValueError, TypeError):
                bad += 1
    if bad:
        logger.warning("access-log journal %s: %d incomplete line(s) skipped", path.name, bad)
    try:
        with transaction.atomic():
            AccessJournalFile.objects.create(name=path.name, rows=len(rows), skipped=bad)
            _insert(rows)
    except IntegrityError:
        if not AccessJournalFile.objects.filter(name=path.name).exists():
            raise  # not a file seen before: a real error, the file stays for the next pass
        rows = []  # ingested before, and a crash kept the file: only delete it
    path.unlink(missing_ok=True)
    return len(rows)


def _insert(rows: list[ReadLog]) -> None:
    """Insert the rows into ``AccessLog`` in the caller's transaction: ``COPY`` on PostgreSQL.

    ``COPY`` costs the worker and the database a fraction of what model instances and multi-row
    ``INSERT`` statements do. The worker runs on the same cores as the reads it records, so a
    file is copied in slices of ``INGEST_SLICE`` rows with a short pause between them
    (``ACCESS_JOURNAL_INGEST_PAUSE``, 10 ms): the same work, spread out instead of a burst that
    the reads being answered at that moment would wait behind.
    """
    connection = connections[router.db_for_write(AccessLog)]
    if connection.vendor != "postgresql":
        AccessLog.objects.bulk_create([AccessLog(**row._asdict()) for row in rows], batch_size=1000)
        return
    meta = AccessLog._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in ReadLog._fields)
    statement = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"
    pause = float(getattr(settings, "ACCESS_JOURNAL_INGEST_PAUSE", 0.01))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), INGEST_SLICE):
            if start and pause > 0:
                time.sleep(pause)
            with cursor.cursor.copy(statement) as copy:
                for row in rows[start : start + INGEST_SLICE]:
                    copy.write_row((*row[:7], json.dumps(row.fields, ensure_ascii=False), row.at))
