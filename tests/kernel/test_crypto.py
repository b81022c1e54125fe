"""National cryptography: published SM2/SM3/SM4 vectors, OpenSSL CLI interop, errors, threads, leaks."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from dgov.kernel import crypto
from dgov.kernel.crypto import (
    DEFAULT_SM2_ID,
    CryptoError,
    SM2PrivateKey,
    SM2PublicKey,
    hmac_sm3,
    sm2_ciphertext_from_raw,
    sm2_ciphertext_to_raw,
    sm2_signature_from_raw,
    sm2_signature_to_raw,
    sm3,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

# GM/T 0003.5-2012 (GB/T 32918.5-2017) Annex A, on the recommended curve, ID 1234567812345678.
VECTOR_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
VECTOR_X = 0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020
VECTOR_Y = 0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13
VECTOR_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
VECTOR_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA
VECTOR_Z = "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3"
VECTOR_E = "f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640"
# The same annex's encryption example ("encryption standard", same key), in the GM/T 0009 form.
VECTOR_CIPHERTEXT = bytes.fromhex(
    "307c022004ebfc718e8d1798620432268e77feb6415e2ede0e073c0f4f640ecd2e149a73022100e858f9d81e5430a5"
    "7b36daab8f950a3c64e6ee6a63094d99283aff767e124df0042059983c18f809e262923c53aec295d30383b54e39d6"
    "09d160afcb1908d0bd8766041321886ca989ca9c7d58087307ca93092d651efa"
)
SM2_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
SM2_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
SM2_GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
SM2_GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

needs_openssl_cli = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


_SHARED_KEY = SM2PrivateKey.generate()


@pytest.fixture(scope="module")
def key() -> SM2PrivateKey:
    """One generated key for the tests that only need some key."""
    return _SHARED_KEY


# --- SM3 / HMAC-SM3 / SM4 ----------------------------------------------------------------------


def test_sm3_published_vectors():
    """GB/T 32905-2016 Appendix A examples 1 and 2."""
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_hmac_sm3_follows_rfc2104_over_sm3():
    """HMAC-SM3 equals the textbook H((K^opad) || H((K^ipad) || m)) with a 64-byte block."""
    for key in (b"k" * 16, b"x" * 100):  # a long key is hashed first
        block = (sm3(key) if len(key) > 64 else key).ljust(64, b"\0")
        inner = sm3(bytes(b ^ 0x36 for b in block) + b"message")
        expected = sm3(bytes(b ^ 0x5C for b in block) + inner)
        assert hmac_sm3(key, b"message") == expected
    assert hmac_sm3(b"k1", b"m") != hmac_sm3(b"k2", b"m")


def test_sm4_published_vector():
    """GB/T 32907-2016 Appendix A example 1: one block."""
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert encryptor.update(key).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_published_million_iterations():
    """GB/T 32907-2016 Appendix A example 2: the block encrypted 1,000,000 times."""
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    block = key
    for _ in range(1_000_000):
        block = encryptor.update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


def test_sm4_gcm_round_trip_and_layout():
    key = os.urandom(16)
    blob = sm4_gcm_encrypt(key, b"370102199001011234", b"aad")
    assert len(blob) == 12 + 18 + 16
    assert sm4_gcm_decrypt(key, blob, b"aad") == b"370102199001011234"
    assert sm4_gcm_encrypt(key, b"same", b"") != sm4_gcm_encrypt(key, b"same", b"")  # fresh nonces
    assert sm4_gcm_decrypt(key, sm4_gcm_encrypt(key, b""), b"") == b""


def test_sm4_gcm_matches_an_independent_gcm_composition():
    """Our blob decrypts with cryptography's GCM given the nonce and tag explicitly."""
    key = os.urandom(16)
    blob = sm4_gcm_encrypt(key, b"plain text", b"bound")
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(blob[:12], blob[-16:])).decryptor()
    decryptor.authenticate_additional_data(b"bound")
    assert decryptor.update(blob[12:-16]) + decryptor.finalize() == b"plain text"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b: b[:-1] + bytes([b[-1] ^ 1]), id="tag"),
        pytest.param(lambda b: b[:13] + bytes([b[13] ^ 1]) + b[14:], id="ciphertext"),
        pytest.param(lambda b: bytes([b[0] ^ 1]) + b[1:], id="nonce"),
        pytest.param(lambda b: b[:20], id="truncated"),
    ],
)
def test_sm4_gcm_rejects_tampering(mutate):
    key = os.urandom(16)
    blob = sm4_gcm_encrypt(key, b"sensitive value", b"aad")
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(key, mutate(blob), b"aad")


def test_sm4_gcm_rejects_wrong_key_aad_and_key_size():
    key = os.urandom(16)
    blob = sm4_gcm_encrypt(key, b"value", b"kid-1")
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(key, blob, b"kid-2")
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(os.urandom(16), blob, b"kid-1")
    with pytest.raises(CryptoError):
        sm4_gcm_encrypt(b"short", b"value")
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(key, b"x" * 10)


# --- SM2: the published example ----------------------------------------------------------------


def test_sm2_public_key_derived_from_published_private_key():
    private = SM2PrivateKey.from_private_value(VECTOR_D)
    assert private.public_key().to_point() == (VECTOR_X, VECTOR_Y)
    assert private.private_value() == VECTOR_D


def test_sm2_published_signature_verifies():
    public = SM2PublicKey.from_point(VECTOR_X, VECTOR_Y)
    signature = encode_dss_signature(VECTOR_R, VECTOR_S)
    assert public.verify(signature, b"message digest")
    assert public.verify(signature, b"message digest", uid=b"1234567812345678")
    assert not public.verify(signature, b"message digesT")
    assert not public.verify(signature, b"message digest", uid=b"ALICE123@YAHOO.COM")
    assert not public.verify(encode_dss_signature(VECTOR_R, VECTOR_S ^ 1), b"message digest")


def test_sm2_published_z_and_e_values():
    """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA) and e = SM3(Z || M) as published."""

    def be(n: int) -> bytes:
        return n.to_bytes(32, "big")

    z = sm3(
        (len(DEFAULT_SM2_ID) * 8).to_bytes(2, "big")
        + DEFAULT_SM2_ID
        + be(SM2_A)
        + be(SM2_B)
        + be(SM2_GX)
        + be(SM2_GY)
        + be(VECTOR_X)
        + be(VECTOR_Y)
    )
    assert z.hex() == VECTOR_Z
    assert sm3(z + b"message digest").hex() == VECTOR_E


def test_sm2_published_ciphertext_decrypts():
    private = SM2PrivateKey.from_private_value(VECTOR_D)
    assert private.decrypt(VECTOR_CIPHERTEXT) == b"encryption standard"


# --- SM2: behaviour -----------------------------------------------------------------------------


def test_sm2_sign_verify_round_trip(key):
    public = key.public_key()
    signature = key.sign(b"payload")
    assert signature[0] == 0x30
    assert public.verify(signature, b"payload")
    assert not public.verify(signature, b"payload!")
    assert not SM2PrivateKey.generate().public_key().verify(signature, b"payload")
    assert key.sign(b"payload") != signature  # randomized k


def test_sm2_distinguishing_id_is_bound_and_overridable(key):
    public = key.public_key()
    signature = key.sign(b"payload", uid=b"official-42@dgov")
    assert public.verify(signature, b"payload", uid=b"official-42@dgov")
    assert not public.verify(signature, b"payload")
    assert not public.verify(key.sign(b"payload"), b"payload", uid=b"official-42@dgov")
    with pytest.raises(ValueError):
        key.sign(b"payload", uid=b"")


@pytest.mark.parametrize("garbage", [b"", b"\x30\x00", b"not a signature", b"\x30" + b"\xff" * 80])
def test_sm2_verify_returns_false_on_malformed_signatures(key, garbage):
    assert key.public_key().verify(garbage, b"payload") is False
    # The failed verification leaves no stale error behind for the next operation.
    assert key.public_key().verify(key.sign(b"next"), b"next")


def test_sm2_encrypt_decrypt_round_trip(key):
    ciphertext = key.public_key().encrypt(b"secret")
    assert ciphertext[0] == 0x30
    assert key.decrypt(ciphertext) == b"secret"
    assert key.public_key().encrypt(b"secret") != ciphertext
    assert key.decrypt(key.public_key().encrypt(b"x" * 5000)) == b"x" * 5000


def test_sm2_decrypt_rejects_tampering_and_other_keys(key):
    ciphertext = bytearray(key.public_key().encrypt(b"secret message"))
    ciphertext[-1] ^= 1
    with pytest.raises(CryptoError):
        key.decrypt(bytes(ciphertext))
    with pytest.raises(CryptoError):
        SM2PrivateKey.generate().decrypt(key.public_key().encrypt(b"secret message"))
    with pytest.raises(CryptoError):
        key.decrypt(b"garbage")


def test_sm2_pem_and_der_round_trips(key):
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert SM2PrivateKey.from_pem(pem).private_value() == key.private_value()
    assert SM2PrivateKey.from_pem(pem.decode()).private_value() == key.private_value()
    assert SM2PrivateKey.from_der(key.to_der()).private_value() == key.private_value()
    public_pem = key.public_key().to_pem()
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert SM2PublicKey.from_pem(public_pem) == key.public_key()
    assert SM2PublicKey.from_der(key.public_key().to_der()) == key.public_key()
    assert hash(SM2PublicKey.from_pem(public_pem)) == hash(key.public_key())


def test_sm2_encrypted_pem(key):
    pem = key.to_pem(password="correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert SM2PrivateKey.from_pem(pem, password=b"correct horse").private_value() == key.private_value()
    with pytest.raises(CryptoError):
        SM2PrivateKey.from_pem(pem, password="wrong")
    with pytest.raises(CryptoError):
        SM2PrivateKey.from_pem(pem)
    with pytest.raises(ValueError):
        key.to_pem(password="")


def test_sm2_refuses_other_curves_and_garbage():
    p256 = ec.generate_private_key(ec.SECP256R1())
    private_pem = p256.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = p256.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(CryptoError, match="not an SM2 key"):
        SM2PrivateKey.from_pem(private_pem)
    with pytest.raises(CryptoError, match="not an SM2 key"):
        SM2PublicKey.from_pem(public_pem)
    with pytest.raises(CryptoError):
        SM2PrivateKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CryptoError):
        SM2PublicKey.from_der(b"\x30\x03\x02\x01\x00")


def test_sm2_points_and_scalars_are_validated():
    with pytest.raises(CryptoError):
        SM2PublicKey.from_point(VECTOR_X, VECTOR_Y + 1)  # not on the curve
    with pytest.raises(CryptoError):
        SM2PublicKey.from_point(-1, 5)
    with pytest.raises(CryptoError):
        SM2PrivateKey.from_private_value(0)
    with pytest.raises(CryptoError):
        SM2PrivateKey.from_private_value(crypto.SM2_ORDER)


def test_signature_and_ciphertext_format_conversions(key):
    signature = key.sign(b"m")
    raw = sm2_signature_to_raw(signature)
    assert len(raw) == 64
    assert sm2_signature_from_raw(raw) == signature
    assert (int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")) == decode_dss_signature(
        signature
    )
    with pytest.raises(CryptoError):
        sm2_signature_from_raw(b"short")
    with pytest.raises(CryptoError):
        sm2_signature_to_raw(b"junk")

    ciphertext = key.public_key().encrypt(b"hello")
    raw_ct = sm2_ciphertext_to_raw(ciphertext)
    assert raw_ct[0] == 4 and len(raw_ct) == 65 + 32 + 5
    assert sm2_ciphertext_from_raw(raw_ct) == ciphertext
    bare = sm2_ciphertext_to_raw(ciphertext, point_prefix=False)
    assert bare == raw_ct[1:]
    assert key.decrypt(sm2_ciphertext_from_raw(bare, point_prefix=False)) == b"hello"
    with pytest.raises(CryptoError):
        sm2_ciphertext_to_raw(ciphertext + b"\x00")
    with pytest.raises(CryptoError):
        sm2_ciphertext_from_raw(b"\x05" + raw_ct[1:])


def test_sm2_keys_are_usable_from_many_threads(key):
    """One EVP_PKEY shared by threads that sign, verify, encrypt and decrypt at once."""
    public = key.public_key()
    failures: list[str] = []

    def work(n: int) -> None:
        for i in range(15):
            message = f"thread {n} message {i}".encode()
            if not public.verify(key.sign(message), message):
                failures.append(f"verify {n}/{i}")
            if key.decrypt(public.encrypt(message)) != message:
                failures.append(f"decrypt {n}/{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def _rss() -> int:
    """Resident set size of this process in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_sm2_operations_do_not_leak_native_memory(key):
    """Every EVP object is freed: leaking one context per call would add megabytes here."""
    public = key.public_key()
    public_pem, private_der = public.to_pem(), key.to_der()
    crypto.clear_public_key_cache()

    def churn(rounds: int) -> None:
        for _ in range(rounds):
            public.verify(key.sign(b"x" * 64), b"x" * 64)
            for _ in range(20):
                # Rejected only after the contexts are built and Z is hashed: cheap, same objects.
                public.verify(b"\x30\x06\x02\x01\x01\x02\x01\x01", b"x" * 64)
        for _ in range(rounds // 10):
            SM2PublicKey.from_pem(public_pem)
            SM2PrivateKey.from_der(private_der)
            key.decrypt(public.encrypt(b"y" * 32))

    churn(50)  # warm up allocator arenas and OpenSSL's caches
    before = _rss()
    churn(200)
    assert _rss() - before < 128 * 1024


# --- interoperability with the openssl command line ---------------------------------------------


def _openssl(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True).stdout


@needs_openssl_cli
def test_keys_generated_by_openssl_cli_load_and_interoperate(tmp_path):
    key_file, pub_file, msg_file, sig_file = (tmp_path / n for n in ("k.pem", "p.pem", "m.bin", "s.der"))
    _openssl("genpkey", "-algorithm", "SM2", "-out", str(key_file))
    _openssl("pkey", "-in", str(key_file), "-pubout", "-out", str(pub_file))
    private = SM2PrivateKey.from_pem(key_file.read_bytes())
    public = SM2PublicKey.from_pem(pub_file.read_bytes())
    assert private.public_key() == public

    message = b"interop: \xe6\x95\xb0\xe5\xad\x97\xe6\x94\xbf\xe5\xba\x9c"
    msg_file.write_bytes(message)
    distid = "distid:" + DEFAULT_SM2_ID.decode()
    # CLI signs, we verify.
    _openssl(
        "pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", str(key_file),
        "-in", str(msg_file), "-out", str(sig_file), "-pkeyopt", distid,
    )  # fmt: skip
    assert public.verify(sig_file.read_bytes(), message)
    # We sign, CLI verifies.
    sig_file.write_bytes(private.sign(message))
    result = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pubin", "-inkey", str(pub_file),
         "-in", str(msg_file), "-sigfile", str(sig_file), "-pkeyopt", distid],
        capture_output=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # Ciphertexts both ways.
    assert _openssl("pkeyutl", "-decrypt", "-inkey", str(key_file), stdin=public.encrypt(message)) == message
    cli_ciphertext = _openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", str(pub_file), stdin=message)
    assert private.decrypt(cli_ciphertext) == message


@needs_openssl_cli
def test_our_pem_files_are_read_by_openssl_cli(tmp_path, key):
    (tmp_path / "k.pem").write_bytes(key.to_pem(password="pw"))
    text = _openssl("pkey", "-in", str(tmp_path / "k.pem"), "-passin", "pass:pw", "-pubout")
    assert SM2PublicKey.from_pem(text) == key.public_key()


@settings(max_examples=60, deadline=None)
@given(blob=st.binary(max_size=200))
def test_parsers_fail_only_with_crypto_error(blob):
    for parse in (sm2_ciphertext_to_raw, sm2_signature_to_raw):
        with contextlib.suppress(CryptoError):
            parse(blob)
    assert _SHARED_KEY.public_key().verify(blob, b"m") is False
    with pytest.raises(CryptoError):
        _SHARED_KEY.decrypt(blob)


def test_oversized_ciphertext_coordinates_are_rejected():
    bad = crypto._der(
        0x30, crypto._der_int(2**300) + crypto._der_int(1) + crypto._der(4, b"a" * 32) + crypto._der(4, b"x")
    )
    with pytest.raises(CryptoError, match="256 bits"):
        sm2_ciphertext_to_raw(bad)
