"""Fixtures shared by the one-stop services tests."""

import pytest


@pytest.fixture(autouse=True)
def _fresh_licence_key_cache():
    """Issuer keys are cached per process by department id, and test databases reuse ids: start clean."""
    from dgov.licenses import keys

    keys.clear_cache()
    yield
    keys.clear_cache()
