"""Settings for the test suite: the normal settings with testing switches on."""

import os
import tempfile

os.environ.setdefault("DGOV_TESTING", "1")
os.environ.setdefault("DGOV_DATA_DIR", tempfile.mkdtemp(prefix="dgov-test-"))
os.environ.setdefault("DGOV_MASTER_KEY", "00112233445566778899aabbccddeeff")

from dgov.settings import *  # noqa: E402,F403

# Tests read log lines as they are written (pytest captures them per test): no buffering.
LOGGING["handlers"]["console"]["flush_interval"] = 0  # noqa: F405
# Every test client is 127.0.0.1: no per-address limit on licence verification unless a test sets one.
LICENCE_VERIFY_RATE_PER_MINUTE = 0
# `dgov demo` in tests (catalog, exchange, registry …) generates a short application history, not six months' worth;
# tests/services/test_demo_history.py passes its own counts.
SERVICES_DEMO_HISTORY_COUNT = 40
