"""TOTP (RFC 6238): test vectors, the ±1 step window, replay refusal, enrolment URI and QR code."""

import base64
import hashlib

import pytest

from dgov.identity import totp

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(
    ("unix_time", "expected"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc6238_sha1_vectors(unix_time, expected):
    assert totp.code_at(RFC_SECRET, unix_time // 30, digits=8, digest=hashlib.sha1) == expected


def test_six_digit_code_is_the_last_six_of_the_truncation():
    assert totp.code_at(RFC_SECRET, 59 // 30) == "287082"


def test_window_accepts_one_step_either_side_and_nothing_further():
    secret = totp.generate_secret()
    now = 1_800_000_015.0
    step = totp.current_step(now)
    for offset in (-1, 0, 1):
        assert totp.match_step(secret, totp.code_at(secret, step + offset), now=now) == step + offset
    for offset in (-3, -2, 2, 3):
        code = totp.code_at(secret, step + offset)
        if code not in {totp.code_at(secret, step + d) for d in (-1, 0, 1)}:
            assert totp.match_step(secret, code, now=now) is None


def test_a_used_step_cannot_be_used_again():
    secret = totp.generate_secret()
    now = 1_800_000_015.0
    step = totp.current_step(now)
    code = totp.code_at(secret, step)
    assert totp.match_step(secret, code, now=now, after_step=step - 1) == step
    assert totp.match_step(secret, code, now=now, after_step=step) is None
    # an older code is refused once a newer step was used
    assert totp.match_step(secret, totp.code_at(secret, step - 1), now=now, after_step=step) is None


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "abcdef", "12 34 5"])
def test_malformed_codes_are_refused(bad):
    assert totp.match_step(totp.generate_secret(), bad) is None


def test_secrets_are_160_bit_base32_and_normalized():
    secret = totp.generate_secret()
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20
    assert totp.normalize_secret(" " + secret.lower()[:4] + " " + secret.lower()[4:]) == secret
    with pytest.raises(ValueError):
        totp.normalize_secret("not base32 !")
    with pytest.raises(ValueError):
        totp.normalize_secret("")


def test_provisioning_uri_and_qr_svg():
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXP", account="zhang.san", issuer="dgov")
    assert uri.startswith("otpauth://totp/dgov:zhang.san?")
    assert "secret=JBSWY3DPEHPK3PXP" in uri and "issuer=dgov" in uri
    assert "digits=6" in uri and "period=30" in uri and "algorithm=SHA1" in uri
    svg = totp.qr_svg(uri)
    assert svg.startswith("<svg") and "</svg>" in svg and "<script" not in svg
