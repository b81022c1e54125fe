"""Decryption worker of quality runs (数据抽取): opens sealed personal values and writes NDJSON lines.

:mod:`dgov.quality.extract` starts it as ``python -m dgov.quality.extract_worker`` (a fresh
interpreter: no locks, threads or database connections are inherited) when a large registry with
personal fields is loaded on a machine with more than one core. The parent reads the records from
the database and writes pickled messages to the worker's stdin:

* ``("open", path)`` — the NDJSON file this worker writes (in the run's private work directory);
* ``("keys", {kid: key})`` — SM4 data keys the following rows need (only in memory and the pipe);
* ``("rows", [(id, prefix, sealed, uid), …])`` — each line is ``prefix + <decrypted JSON object> + "}"``
  (``"{}"`` for a record without sealed values);
* ``("end", None)``.

The worker answers on stdout with one pickled message: ``("done", count)``, ``("error", (uid,
message))`` for a value that cannot be decrypted (malformed, forged, unknown key: the parent fails
the run naming the record), or ``("crash", traceback)``. It needs neither Django settings nor the
database. Pickle is safe here: both ends are this module and its parent, on the same machine.
"""

from __future__ import annotations

import contextlib
import pickle  # noqa: S403 - a private pipe between this process and the parent that started it
import sys
import traceback


def _work(inp) -> tuple[str, object]:
    """Handle the parent's messages until the end; return the answer."""
    from dgov.kernel.crypto import CryptoError
    from dgov.kernel.fields import open_sealed

    keys: dict[str, bytes] = {}
    key_for = keys.get
    handle = None
    count = 0
    try:
        while True:
            kind, payload = pickle.load(inp)  # noqa: S301 - from the parent process
            if kind == "open":
                handle = open(payload, "w", encoding="utf-8")  # noqa: SIM115 - closed below
            elif kind == "keys":
                keys.update(payload)
            elif kind == "rows":
                lines = []
                for _id, prefix, sealed, uid in payload:
                    if sealed:
                        try:
                            private = open_sealed(sealed, key_for)
                        except CryptoError as exc:
                            return "error", (uid, str(exc))
                    else:
                        private = "{}"
                    lines.append(f"{prefix}{private}}}\n")
                handle.writelines(lines)
                count += len(lines)
            elif kind == "end":
                return "done", count
    finally:
        if handle is not None:
            handle.close()


def main() -> None:
    """Entry point of ``python -m dgov.quality.extract_worker``."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    try:
        answer = _work(inp)
    except EOFError:
        return  # the parent stopped (it failed or was interrupted): nothing to answer
    except Exception:  # noqa: BLE001 - reported to the parent, which fails the run
        answer = ("crash", traceback.format_exc())
    with contextlib.suppress(BrokenPipeError):
        out.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
        out.flush()


if __name__ == "__main__":
    main()
