"""Settings come from the environment; production refuses unsafe defaults."""

import os
import subprocess
import sys

import pytest

PROBE = "import dgov.settings as s; print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.PRODUCTION)"
GOOD_KEY = "k" * 40


def _load(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DGOV_") and k != "DATABASE_URL"}
    clean.update({"DGOV_DATA_DIR": str(tmp_path), **env})
    return subprocess.run([sys.executable, "-c", PROBE], env=clean, capture_output=True, text=True, timeout=60)


def test_embedded_defaults(tmp_path):
    result = _load(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "django.db.backends.sqlite3", "False"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DGOV_SECRET_KEY"),
        ({"DGOV_SECRET_KEY": "short"}, "DGOV_SECRET_KEY"),
        ({"DGOV_SECRET_KEY": GOOD_KEY, "DGOV_DEBUG": "1", "DGOV_MASTER_KEY": "00" * 16}, "DGOV_DEBUG"),
        ({"DGOV_SECRET_KEY": GOOD_KEY}, "DGOV_MASTER_KEY"),
    ],
)
def test_production_refuses_unsafe_settings(tmp_path, env, message):
    result = _load(tmp_path, DGOV_ENV="production", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_production_starts_with_real_secrets(tmp_path):
    result = _load(
        tmp_path,
        DGOV_ENV="production",
        DGOV_SECRET_KEY=GOOD_KEY,
        DGOV_MASTER_KEY="00" * 16,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/dgov",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "django.db.backends.postgresql", "True"]
