"""Fixtures of the authentication tests: a TOTP-enrolled official, SMS codes read from the simulator.

Imported with ``from auth_fixtures import *`` by tests/identity/test_identity_login.py and _account.py.
"""

import re

import pytest
from django.core.management import call_command

from dgov.identity import services, totp
from dgov.kernel.models import SentMessage


@pytest.fixture
def secret():
    """A fresh TOTP secret."""
    return totp.generate_secret()


@pytest.fixture
def enrolled_official(official, secret):
    """``official`` with a confirmed authenticator using ``secret`` and a mobile number."""
    official.phone = "13812345678"
    official.save()
    services.provision_totp([official], secret, actor="system:test")
    return official


def current_code(secret, offset=0):
    """The TOTP code of the current step (plus ``offset`` steps)."""
    return totp.code_at(secret, totp.current_step() + offset)


def last_sms_code():
    """Deliver queued notifications through the simulated gateway and read the newest code sent."""
    call_command("worker", "--once", "--no-tasks", verbosity=0)
    message = SentMessage.objects.filter(channel="sms", status="sent").order_by("-id").first()
    assert message is not None, "no SMS was sent"
    return re.search(r"(\d{6})", message.body).group(1)


__all__ = ["current_code", "enrolled_official", "last_sms_code", "secret"]
