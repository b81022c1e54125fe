"""A second dgov in a subprocess, for tests that need two instances (identity brokering, federation).

The instance has its own data directory (SQLite database, keys) and master key under a temporary
directory, runs ``dgov`` commands through :meth:`Instance.run` and serves HTTP with ``dgov serve``
(Granian, web only) on a free port. ``no_migrations=True`` creates its tables straight from the
models (``tests/instance_settings.py``, as ``pytest --no-migrations`` does), which is faster and
does not depend on migrations of models still being written.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Instance:
    """A dgov running in a subprocess with its own environment."""

    def __init__(self, root, port: int, *, no_migrations: bool = False, env: dict | None = None, name: str = "second"):
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.name = name
        self.no_migrations = no_migrations
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("DGOV_") and k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="instance_settings" if no_migrations else "dgov.settings",
            DGOV_DATA_DIR=str(root),
            DGOV_MASTER_KEY=secrets.token_hex(16),
            DGOV_TESTING="1",  # plain static storage (no collectstatic manifest) and a fast password hasher
            DGOV_SITE_URL=self.url,
            DGOV_OIDC_ISSUER=self.url,
            DGOV_ACCESS_LOG="0",
            PYTHONUNBUFFERED="1",
        )
        if no_migrations:
            self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), self.env.get("PYTHONPATH", "")) if p)
        self.env.update(env or {})
        self.process = None
        self.log = Path(root) / "serve.log"

    def run(self, *args, timeout=300, check: bool = True, input: str | None = None) -> str:
        """Run a ``dgov`` command against this instance; its standard output (a failure fails the test)."""
        result = subprocess.run(
            [sys.executable, "-m", "dgov.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check:
            assert result.returncode == 0, f"dgov {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def migrate(self) -> None:
        """Create the database: migrations, or the models' tables directly with ``no_migrations``."""
        if self.no_migrations:
            self.run("migrate", "--run-syncdb", "-v", "0")
        else:
            self.run("migrate", "-v", "0")

    def serve(self) -> None:
        """Start ``dgov serve`` (web only) and wait until it answers."""
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dgov.cli",
                    "serve",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                    "--no-worker",
                    "--skip-setup",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole, by its id
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the {self.name} instance stopped:\n{self.log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"the {self.name} instance did not answer:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        """Stop the server started by :meth:`serve` (SIGTERM to its process group, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
