"""Cross-checks against an independent implementation: the pure-Python ``gmssl`` package."""

from __future__ import annotations

import pytest
from gmssl import sm2 as gm_sm2
from gmssl import sm3 as gm_sm3
from gmssl import sm4 as gm_sm4
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dgov.kernel.crypto import (
    SM2PrivateKey,
    sm2_ciphertext_from_raw,
    sm2_ciphertext_to_raw,
    sm2_signature_from_raw,
    sm2_signature_to_raw,
    sm3,
)

# gmssl is slow (milliseconds per point multiplication): few examples, no deadline.
FEW = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
messages = st.binary(min_size=0, max_size=300)


def _peer_for(key: SM2PrivateKey) -> gm_sm2.CryptSM2:
    """A gmssl SM2 object holding the same key pair, encrypting in C1C3C2 order (mode=1)."""
    x, y = key.public_key().to_point()
    return gm_sm2.CryptSM2(private_key=f"{key.private_value():064x}", public_key=f"{x:064x}{y:064x}", mode=1)


@pytest.fixture(scope="module")
def pair() -> tuple[SM2PrivateKey, gm_sm2.CryptSM2]:
    """A key both libraries hold (gmssl mis-parses public keys whose x starts with hex "04")."""
    while True:
        key = SM2PrivateKey.generate()
        if not f"{key.public_key().to_point()[0]:064x}".startswith("04"):
            return key, _peer_for(key)


@FEW
@given(message=messages)
def test_our_signatures_verify_with_gmssl(pair, message):
    key, peer = pair
    raw = sm2_signature_to_raw(key.sign(message))
    assert peer.verify_with_sm3(raw.hex(), message)
    tampered = bytes([raw[0] ^ 1]) + raw[1:]
    assert not peer.verify_with_sm3(tampered.hex(), message)


@FEW
@given(message=messages)
def test_gmssl_signatures_verify_with_ours(pair, message):
    key, peer = pair
    signature = sm2_signature_from_raw(bytes.fromhex(peer.sign_with_sm3(message)))
    assert key.public_key().verify(signature, message)
    assert not key.public_key().verify(signature, message + b"!")


@FEW
@given(message=st.binary(min_size=1, max_size=300))
def test_our_ciphertexts_decrypt_with_gmssl(pair, message):
    key, peer = pair
    raw = sm2_ciphertext_to_raw(key.public_key().encrypt(message), point_prefix=False)
    assert peer.decrypt(raw) == message


@FEW
@given(message=st.binary(min_size=1, max_size=300))
def test_gmssl_ciphertexts_decrypt_with_ours(pair, message):
    key, peer = pair
    raw = peer.encrypt(message)
    assert key.decrypt(sm2_ciphertext_from_raw(raw, point_prefix=False)) == message


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=500))
def test_sm3_agrees_with_gmssl(message):
    assert sm3(message).hex() == gm_sm3.sm3_hash(list(message))


@settings(max_examples=25, deadline=None)
@given(key=st.binary(min_size=16, max_size=16), plaintext=st.binary(max_size=200))
def test_sm4_agrees_with_gmssl(key, plaintext):
    """SM4-ECB with PKCS#7 padding, both ways (gmssl always pads)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    ours = encryptor.update(padded) + encryptor.finalize()

    theirs = gm_sm4.CryptSM4()
    theirs.set_key(key, gm_sm4.SM4_ENCRYPT)
    assert theirs.crypt_ecb(plaintext) == ours
    back = gm_sm4.CryptSM4()
    back.set_key(key, gm_sm4.SM4_DECRYPT)
    assert back.crypt_ecb(ours) == plaintext


def test_published_example_key_agrees_with_gmssl():
    """gmssl derives the same public point from the standard's private key."""
    d = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
    ours = SM2PrivateKey.from_private_value(int(d, 16)).public_key().to_point()
    peer = gm_sm2.CryptSM2(private_key=d, public_key="")
    point = peer._kg(int(d, 16), gm_sm2.default_ecc_table["g"])
    assert (int(point[:64], 16), int(point[64:], 16)) == ours
