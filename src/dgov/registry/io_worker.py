"""The worker process of large imports: reads an import file and cleans its rows beside the writer.

``dgov.registry.io`` starts it as ``python -m dgov.registry.io_worker`` (a fresh interpreter: no
locks, threads or database connections are inherited, and the parent's main module is not
re-imported) for large files on machines with more than one core. The parent writes the job to
the worker's stdin; the worker opens the same file, skips the header the parent already mapped,
and writes pickled messages to its stdout: ``("rows", [(line, cleaned, errors, raw), …])`` chunks,
then ``("end", None)``; a decoding or CSV syntax error is sent as ``("decode", args)`` or ``("csv",
message)``, any other failure as ``("crash", traceback)``. The pipe's buffer bounds how far the
worker runs ahead. Cleaning needs no database (division codes and ID regions come from GB/T 2260 in
python-stdnum), so the worker does not connect to it for valid rows.

Pickle is safe here: both ends are this module and its parent, on the same machine.
"""

from __future__ import annotations

import contextlib
import os
import pickle  # noqa: S403 - a private pipe between this process and the parent that started it
import subprocess
import sys
import traceback
from collections.abc import Iterator

CHUNK_ROWS = 1000
PIPE_BYTES = 1 << 20


def _send(out, message) -> None:
    """Write one message to the parent."""
    pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)


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
        clean = schema.compile_cleaner(tuple(fields))
        source = registry_io._open_source(spec["path"], spec["format"], spec["encoding"] or None)
        try:
            next(source.rows, None)  # the header, already mapped by the parent
            pairs = [tuple(pair) for pair in spec["pairs"]]
            chunk = []
            for item in registry_io._parse_rows(source.rows, pairs, spec["width"], clean):
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
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=1 << 16)
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
