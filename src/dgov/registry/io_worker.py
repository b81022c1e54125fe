"""The worker process of large imports: reads an import file and cleans its rows beside the writer.

``dgov.registry.io`` starts it as ``python -m dgov.registry.io_worker`` (a fresh interpreter: no
locks, threads or database connections are inherited, and the parent's main module is not
re-imported) for large files on machines with more than one core. The parent writes the job to
the worker's stdin; the worker opens the same file, skips the header the parent already mapped,
and writes pickled messages to its stdout: ``("rows", [(line, cleaned, errors, raw, prepared), …])``
chunks, then ``("end", None)``; a decoding or CSV syntax error is sent as ``("decode", args)`` or
``("csv", message)``, any other failure as ``("crash", traceback)``. A thread hands the messages
to the pipe, so the worker keeps cleaning while the parent writes a batch to the database;
``QUEUE_BYTES`` (plus the pipe's buffer) bounds how far it runs ahead. Cleaning needs no database
(division codes and ID regions come from GB/T 2260 in python-stdnum), so the worker does not
connect to it for valid rows.

When the parent writes (not a dry run), the job also carries the data keys it looked up (blind
index and personal data, with their key ids): the worker then prepares each clean row as stored
(``bulk.RowSealer``: blind indexes, public JSON, SM4-GCM sealed personal values), so that the
parent only checks and inserts. The keys exist only in the two processes' memory and the pipe.

Pickle is safe here: both ends are this module and its parent, on the same machine.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle  # noqa: S403 - a private pipe between this process and the parent that started it
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator

CHUNK_ROWS = 1000
PIPE_BYTES = 1 << 20
QUEUE_BYTES = 32 << 20  # about 45 chunks of prepared rows: several of the parent's batches


def _send(out, message) -> None:
    """Write one message to the parent."""
    out.write(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


class _Outbox:
    """A write-only stream to the parent whose writes are done by a thread, with up to ``limit`` bytes queued.

    The parent reads in bursts (between database writes); without this queue the worker would
    wait on a full pipe during each burst and the parent on an empty one after it. A failed write
    (the parent stopped reading) is raised by the next ``write`` or ``flush``.
    """

    def __init__(self, out, limit: int = QUEUE_BYTES):
        self._out = out
        self._limit = limit
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = 0  # bytes queued or being written
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._drain, name="import-worker-out", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> int:
        """Queue ``data``, waiting while more than the limit is queued."""
        with self._cond:
            while self._queued >= self._limit and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            self._queue.append(data)
            self._queued += len(data)
            self._cond.notify_all()
        return len(data)

    def _drain(self) -> None:
        """The thread: write queued data to the pipe in order until closed."""
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                data = self._queue.popleft()
            try:
                self._out.write(data)
            except BaseException as exc:  # noqa: BLE001 - handed to the writing thread
                with self._cond:
                    self._error = exc
                    self._queue.clear()
                    self._queued = 0
                    self._cond.notify_all()
                return
            with self._cond:
                self._queued -= len(data)
                self._cond.notify_all()

    def flush(self) -> None:
        """Wait until everything queued is in the pipe."""
        with self._cond:
            while self._queued and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
        self._out.flush()

    def close(self) -> None:
        """Stop the thread (after it wrote what is queued) and close the pipe."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        self._out.close()


def _work(spec: dict, out) -> None:
    """Set Django up, then read, clean and send the rows of the file in chunks."""
    try:
        import django

        django.setup()
        from django.utils import translation

        from dgov.registry import io as registry_io
        from dgov.registry import schema

        if spec.get("language"):
            translation.activate(spec["language"])
        fields = schema.parse_fields(spec["fields"], identifier=spec["identifier"])
        clean = schema.compile_cleaner(tuple(fields), accept_labels=True)  # enum labels → codes, like the parent
        sealer = keys = None
        if spec.get("sealing"):
            from dgov.registry import bulk

            sealer = bulk.RowSealer(spec["sealing"]["registry"], fields)
            keys = bulk.SealingKeys(*spec["sealing"]["keys"])
        source = registry_io._open_source(spec["path"], spec["format"], spec["encoding"] or None)
        try:
            next(source.rows, None)  # the header, already mapped by the parent
            pairs = [tuple(pair) for pair in spec["pairs"]]
            chunk = []
            for item in registry_io._parse_rows(source.rows, pairs, spec["width"], clean):
                if sealer is not None and item[1] is not None:
                    item = (item[0], item[1], None, None, sealer.prepare(item[1], keys))
                chunk.append(item)
                if len(chunk) >= CHUNK_ROWS:
                    _send(out, ("rows", chunk))
                    chunk = []
            if chunk:
                _send(out, ("rows", chunk))
        finally:
            source.close()
        _send(out, ("end", None))
    except UnicodeDecodeError as exc:
        _send(out, ("decode", exc.args))
    except BrokenPipeError:
        pass  # the parent stopped reading (it found what it needed, or it was interrupted)
    except Exception as exc:  # noqa: BLE001 - every failure goes to the parent, which raises it
        import csv

        _send(out, ("csv", str(exc)) if isinstance(exc, csv.Error) else ("crash", traceback.format_exc()))
    out.flush()


def main() -> None:
    """Worker entry point: the job on stdin, messages on stdout (stray prints go to stderr)."""
    spec = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - written by the parent process
    out = _Outbox(os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=1 << 16))
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        _work(spec, out)
    finally:
        with contextlib.suppress(BrokenPipeError):
            out.close()


def _widen_pipe(pipe) -> None:
    """Let the worker run up to ~1 MiB (several chunks) ahead, riding out moments without a free core."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or above the system's pipe-max-size: the default buffer works, only tighter


def stream(spec: dict) -> Iterator[tuple[str, object]]:
    """Start a worker for ``spec`` and yield its messages until the end; the worker stops when this stops."""
    from django.conf import settings

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
    # The same import path as this process (benchmarks and tests may have put src/ on it).
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "dgov.registry.io_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    _widen_pipe(process.stdout)
    try:
        process.stdin.write(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))
        process.stdin.close()
        while True:
            try:
                kind, payload = pickle.load(process.stdout)  # noqa: S301 - from the worker started above
            except EOFError:
                code = process.wait()
                raise RuntimeError(f"import worker exited unexpectedly (exit code {code})") from None
            if kind == "end":
                return
            if kind == "crash":
                raise RuntimeError(f"import worker failed:\n{payload}")
            yield kind, payload
            if kind in ("decode", "csv"):
                return
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()


if __name__ == "__main__":
    main()
