"""National cryptography (国密): SM2 signatures and encryption, SM3 hashing, SM4-GCM.

* **SM2** (GB/T 32918) runs in C: the system OpenSSL 3 ``libcrypto`` (its default provider has
  SM2), called through ``ctypes``. Keys are standard PEM/DER — PKCS#8 private keys and
  SubjectPublicKeyInfo public keys, exactly what ``openssl genpkey -algorithm SM2`` writes —
  signatures are DER ``SEQUENCE {r, s}`` and ciphertexts the GM/T 0009 ASN.1 structure
  ``SEQUENCE {x, y, hash, ciphertext}`` (C1C3C2 order) that OpenSSL produces. Every signature
  binds the signer's distinguishing ID (default ``1234567812345678``, GB/T 35276), which is set
  explicitly on every operation.
* **SM3** (GB/T 32905), **HMAC-SM3** and **SM4-GCM** (GB/T 32907) come from ``cryptography``.

The module does not need Django. Loaded keys keep their ``EVP_PKEY`` for their whole life, so
repeated signing does not re-parse PEM; per-call contexts are freed before returning, and the
``EVP_PKEY`` is freed when the Python object is collected. ``ctypes`` releases the GIL while
OpenSSL works, and a shared ``EVP_PKEY`` is only read, so key objects can be used from many
threads at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
import weakref
from collections import OrderedDict
from ctypes import POINTER, byref, c_char_p, c_int, c_long, c_size_t, c_ulong, c_void_p

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "DEFAULT_SM2_ID",
    "CryptoError",
    "SM2PrivateKey",
    "SM2PublicKey",
    "clear_public_key_cache",
    "hmac_sm3",
    "keyed_hmac_sm3",
    "sm2_ciphertext_from_raw",
    "sm2_ciphertext_to_raw",
    "sm2_signature_from_raw",
    "sm2_signature_to_raw",
    "sm3",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
]

DEFAULT_SM2_ID = b"1234567812345678"
SM4_KEY_SIZE = 16
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16
# Order n of the SM2 recommended curve (GB/T 32918.5); a private scalar lies in [1, n-2].
SM2_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
# The ID's bit length is hashed as 16 bits (ENTL), which bounds it to 8191 bytes.
_MAX_ID_LEN = 8191


class CryptoError(Exception):
    """A cryptographic operation failed: bad key, corrupt or forged data, wrong password."""


# --- SM3, HMAC-SM3, SM4-GCM (cryptography) ---------------------------------------------------


def sm3(data: bytes) -> bytes:
    """Return the 32-byte SM3 digest of ``data``."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """Return the 32-byte HMAC-SM3 of ``data`` under ``key``."""
    mac = _hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


def keyed_hmac_sm3(key: bytes) -> _hmac.HMAC:
    """An HMAC-SM3 state keyed with ``key``: ``.copy()`` it per message (keying once is ~3x faster for many)."""
    return _hmac.HMAC(key, hashes.SM3())


# Data keys are few and used for many values: keep their cipher objects (bounded, cleared when full).
_sm4_objects: dict[bytes, algorithms.SM4] = {}


def _sm4(key: bytes) -> algorithms.SM4:
    """Return the (cached) cipher object for an SM4 key."""
    key = _bytes(key)
    found = _sm4_objects.get(key)
    if found is None:
        if len(key) != SM4_KEY_SIZE:
            raise CryptoError("SM4 keys are 16 bytes")
        if len(_sm4_objects) >= 256:
            _sm4_objects.clear()
        found = _sm4_objects[key] = algorithms.SM4(key)
    return found


def sm4_gcm_encrypt(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Encrypt with SM4-GCM under a fresh random nonce; return ``nonce(12) || ciphertext || tag(16)``."""
    nonce = os.urandom(GCM_NONCE_SIZE)
    encryptor = Cipher(_sm4(key), modes.GCM(nonce)).encryptor()
    if aad:
        encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return nonce + ciphertext + encryptor.tag


def sm4_gcm_decrypt(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    """Decrypt ``nonce || ciphertext || tag`` from :func:`sm4_gcm_encrypt`; raise CryptoError if forged."""
    cipher = _sm4(key)
    if len(blob) < GCM_NONCE_SIZE + GCM_TAG_SIZE:
        raise CryptoError("SM4-GCM data is too short")
    nonce, ciphertext, tag = blob[:GCM_NONCE_SIZE], blob[GCM_NONCE_SIZE:-GCM_TAG_SIZE], blob[-GCM_TAG_SIZE:]
    decryptor = Cipher(cipher, modes.GCM(nonce, tag)).decryptor()
    if aad:
        decryptor.authenticate_additional_data(aad)
    try:
        return decryptor.update(ciphertext) + decryptor.finalize()
    except InvalidTag:
        raise CryptoError(
            "SM4-GCM authentication failed: wrong key, wrong associated data or tampered data"
        ) from None


# --- libcrypto binding ------------------------------------------------------------------------


def _load_libcrypto() -> ctypes.CDLL:
    """Load OpenSSL 3 libcrypto (``DGOV_LIBCRYPTO`` may name another path)."""
    candidates = [
        os.environ.get("DGOV_LIBCRYPTO") or "",
        "libcrypto.so.3",
        ctypes.util.find_library("crypto") or "",
    ]
    errors = []
    for name in filter(None, candidates):
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
            continue
        lib.OpenSSL_version_num.restype = c_ulong
        if lib.OpenSSL_version_num() >= 0x30000000:
            return lib
        errors.append(f"{name}: OpenSSL older than 3.0")
    raise ImportError("SM2 needs the OpenSSL 3 libcrypto shared library: " + "; ".join(errors))


_lib = _load_libcrypto()
_PP = POINTER(c_void_p)


def _bind(name: str, restype, *argtypes):
    """Declare the C signature of a libcrypto function and return it."""
    func = getattr(_lib, name)
    func.restype = restype
    func.argtypes = list(argtypes)
    return func


_ERR_get_error = _bind("ERR_get_error", c_ulong)
_ERR_error_string_n = _bind("ERR_error_string_n", None, c_ulong, c_char_p, c_size_t)
_ERR_clear_error = _bind("ERR_clear_error", None)
_BIO_new = _bind("BIO_new", c_void_p, c_void_p)
_BIO_s_mem = _bind("BIO_s_mem", c_void_p)
_BIO_new_mem_buf = _bind("BIO_new_mem_buf", c_void_p, c_char_p, c_int)
_BIO_ctrl = _bind("BIO_ctrl", c_long, c_void_p, c_int, c_long, c_void_p)
_BIO_free = _bind("BIO_free", c_int, c_void_p)
_PEM_read_bio_PrivateKey = _bind("PEM_read_bio_PrivateKey", c_void_p, c_void_p, c_void_p, c_void_p, c_char_p)
_PEM_read_bio_PUBKEY = _bind("PEM_read_bio_PUBKEY", c_void_p, c_void_p, c_void_p, c_void_p, c_void_p)
_PEM_write_bio_PKCS8PrivateKey = _bind(
    "PEM_write_bio_PKCS8PrivateKey", c_int, c_void_p, c_void_p, c_void_p, c_char_p, c_int, c_void_p, c_char_p
)
_PEM_write_bio_PUBKEY = _bind("PEM_write_bio_PUBKEY", c_int, c_void_p, c_void_p)
_i2d_PKCS8PrivateKey_bio = _bind(
    "i2d_PKCS8PrivateKey_bio", c_int, c_void_p, c_void_p, c_void_p, c_char_p, c_int, c_void_p, c_void_p
)
_d2i_AutoPrivateKey = _bind("d2i_AutoPrivateKey", c_void_p, c_void_p, _PP, c_long)
_d2i_PUBKEY = _bind("d2i_PUBKEY", c_void_p, c_void_p, _PP, c_long)
_i2d_PUBKEY = _bind("i2d_PUBKEY", c_int, c_void_p, _PP)
_EVP_PKEY_free = _bind("EVP_PKEY_free", None, c_void_p)
_EVP_PKEY_is_a = _bind("EVP_PKEY_is_a", c_int, c_void_p, c_char_p)
_EVP_PKEY_get_bn_param = _bind("EVP_PKEY_get_bn_param", c_int, c_void_p, c_char_p, _PP)
_BN_bn2binpad = _bind("BN_bn2binpad", c_int, c_void_p, c_char_p, c_int)
_BN_clear_free = _bind("BN_clear_free", None, c_void_p)
_EVP_PKEY_CTX_new_from_name = _bind("EVP_PKEY_CTX_new_from_name", c_void_p, c_void_p, c_char_p, c_char_p)
_EVP_PKEY_CTX_new_from_pkey = _bind("EVP_PKEY_CTX_new_from_pkey", c_void_p, c_void_p, c_void_p, c_char_p)
_EVP_PKEY_CTX_free = _bind("EVP_PKEY_CTX_free", None, c_void_p)
_EVP_PKEY_CTX_set1_id = _bind("EVP_PKEY_CTX_set1_id", c_int, c_void_p, c_char_p, c_int)
_EVP_PKEY_keygen_init = _bind("EVP_PKEY_keygen_init", c_int, c_void_p)
_EVP_PKEY_generate = _bind("EVP_PKEY_generate", c_int, c_void_p, _PP)
_EVP_PKEY_encrypt_init = _bind("EVP_PKEY_encrypt_init", c_int, c_void_p)
_EVP_PKEY_encrypt = _bind(
    "EVP_PKEY_encrypt", c_int, c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t
)
_EVP_PKEY_decrypt_init = _bind("EVP_PKEY_decrypt_init", c_int, c_void_p)
_EVP_PKEY_decrypt = _bind(
    "EVP_PKEY_decrypt", c_int, c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t
)
_EVP_MD_fetch = _bind("EVP_MD_fetch", c_void_p, c_void_p, c_char_p, c_char_p)
_EVP_CIPHER_fetch = _bind("EVP_CIPHER_fetch", c_void_p, c_void_p, c_char_p, c_char_p)
_EVP_MD_CTX_new = _bind("EVP_MD_CTX_new", c_void_p)
_EVP_MD_CTX_free = _bind("EVP_MD_CTX_free", None, c_void_p)
_EVP_MD_CTX_set_pkey_ctx = _bind("EVP_MD_CTX_set_pkey_ctx", None, c_void_p, c_void_p)
_EVP_DigestSignInit = _bind("EVP_DigestSignInit", c_int, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p)
_EVP_DigestSign = _bind("EVP_DigestSign", c_int, c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t)
_EVP_DigestVerifyInit = _bind("EVP_DigestVerifyInit", c_int, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p)
_EVP_DigestVerify = _bind("EVP_DigestVerify", c_int, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t)

_BIO_CTRL_INFO = 3  # BIO_get_mem_data
# Fetched once: an implicit fetch inside every sign/verify would search the provider store each time.
_SM3_MD = _EVP_MD_fetch(None, b"SM3", None)
_SM4_CBC = _EVP_CIPHER_fetch(None, b"SM4-CBC", None)
if not _SM3_MD or not _SM4_CBC:
    raise ImportError("this OpenSSL build lacks SM3 or SM4")
# Upper bounds of DER signature and GM/T 0009 ciphertext overheads for a 256-bit curve.
_MAX_SIG_LEN = 72
_CIPHER_OVERHEAD = 128


def _openssl_error(message: str) -> CryptoError:
    """Drain this thread's OpenSSL error queue into a CryptoError."""
    reasons = []
    buf = ctypes.create_string_buffer(256)
    while code := _ERR_get_error():
        _ERR_error_string_n(code, buf, len(buf))
        reasons.append(buf.value.decode("ascii", "replace"))
    return CryptoError(f"{message}: {'; '.join(reasons)}" if reasons else message)


def _bio_bytes(bio: int) -> bytes:
    """Return everything written to a memory BIO."""
    ptr = c_void_p()
    size = _BIO_ctrl(bio, _BIO_CTRL_INFO, 0, byref(ptr))
    return ctypes.string_at(ptr, size) if size > 0 else b""


def _new_mem_bio() -> int:
    """Return a new, empty, writable memory BIO."""
    bio = _BIO_new(_BIO_s_mem())
    if not bio:
        raise _openssl_error("cannot allocate a BIO")
    return bio


def _bytes(data) -> bytes:
    """Accept bytes-like input (bytearray, memoryview) where OpenSSL gets a ``char *``."""
    return data if type(data) is bytes else bytes(data)


def _check_uid(uid: bytes) -> bytes:
    """Validate an SM2 distinguishing ID."""
    if not isinstance(uid, bytes | bytearray) or not 0 < len(uid) <= _MAX_ID_LEN:
        raise ValueError("the SM2 distinguishing ID must be 1..8191 bytes")
    return bytes(uid)


class _PKey:
    """Owner of one ``EVP_PKEY`` pointer, freed when the owning key object goes away."""

    __slots__ = ("ptr", "__weakref__")

    def __init__(self, ptr: int):
        self.ptr = ptr
        weakref.finalize(self, _EVP_PKEY_free, ptr)


def _adopt_sm2(ptr: int | None, what: str) -> _PKey:
    """Wrap a freshly loaded ``EVP_PKEY``, refusing keys that are not SM2."""
    if not ptr:
        raise _openssl_error(f"cannot load the SM2 {what}")
    if _EVP_PKEY_is_a(ptr, b"SM2") != 1:
        _EVP_PKEY_free(ptr)
        _ERR_clear_error()
        raise CryptoError(f"the {what} is not an SM2 key")
    return _PKey(ptr)


def _pkey_ctx(pkey: _PKey) -> int:
    """Return a new ``EVP_PKEY_CTX`` for ``pkey`` (the caller frees it)."""
    ctx = _EVP_PKEY_CTX_new_from_pkey(None, pkey.ptr, None)
    if not ctx:
        raise _openssl_error("cannot create an SM2 context")
    return ctx


# --- minimal DER, just enough for SM2 structures ----------------------------------------------

_OID_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1
_OID_SM2 = bytes.fromhex("06082a811ccf5501822d")  # 1.2.156.10197.1.301


def _der(tag: int, content: bytes) -> bytes:
    """Encode one DER TLV."""
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    else:
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _der_int(value: int) -> bytes:
    """Encode a non-negative DER INTEGER."""
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _der_read(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    """Read one TLV with the expected ``tag`` at ``pos``; return (content, next position)."""
    try:
        if data[pos] != tag:
            raise CryptoError(f"malformed DER: expected tag {tag:#x} at offset {pos}")
        size = data[pos + 1]
        pos += 2
        if size & 0x80:
            count = size & 0x7F
            if not 0 < count <= 4:
                raise CryptoError("malformed DER length")
            size = int.from_bytes(data[pos : pos + count], "big")
            pos += count
    except IndexError:
        raise CryptoError("truncated DER") from None
    if pos + size > len(data):
        raise CryptoError("truncated DER")
    return data[pos : pos + size], pos + size


def sm2_signature_to_raw(signature: bytes) -> bytes:
    """Convert a DER SM2 signature to the 64-byte ``r || s`` form some peers use."""
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        raise CryptoError("malformed SM2 signature") from None
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sm2_signature_from_raw(raw: bytes) -> bytes:
    """Convert a 64-byte ``r || s`` SM2 signature to DER."""
    if len(raw) != 64:
        raise CryptoError("a raw SM2 signature is 64 bytes (r || s)")
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def sm2_ciphertext_to_raw(ciphertext: bytes, *, point_prefix: bool = True) -> bytes:
    """Convert a GM/T 0009 ASN.1 SM2 ciphertext to raw ``C1 || C3 || C2`` bytes.

    C1 is ``04 || x || y`` (65 bytes), or ``x || y`` with ``point_prefix=False`` as some
    libraries expect.
    """
    body, end = _der_read(ciphertext, 0, 0x30)
    if end != len(ciphertext):
        raise CryptoError("trailing bytes after the SM2 ciphertext")
    x, pos = _der_read(body, 0, 0x02)
    y, pos = _der_read(body, pos, 0x02)
    c3, pos = _der_read(body, pos, 0x04)
    c2, pos = _der_read(body, pos, 0x04)
    if pos != len(body) or len(c3) != 32:
        raise CryptoError("malformed SM2 ciphertext")
    try:
        point = int.from_bytes(x, "big").to_bytes(32, "big") + int.from_bytes(y, "big").to_bytes(32, "big")
    except OverflowError:
        raise CryptoError("SM2 ciphertext point coordinates exceed 256 bits") from None
    return (b"\x04" if point_prefix else b"") + point + c3 + c2


def sm2_ciphertext_from_raw(raw: bytes, *, point_prefix: bool = True) -> bytes:
    """Convert raw ``C1 || C3 || C2`` bytes (see :func:`sm2_ciphertext_to_raw`) to GM/T 0009 ASN.1."""
    if point_prefix:
        if raw[:1] != b"\x04":
            raise CryptoError("raw SM2 ciphertext must start with an uncompressed point (04)")
        raw = raw[1:]
    if len(raw) < 96:
        raise CryptoError("raw SM2 ciphertext is too short")
    x, y, c3, c2 = raw[:32], raw[32:64], raw[64:96], raw[96:]
    return _der(
        0x30,
        _der_int(int.from_bytes(x, "big"))
        + _der_int(int.from_bytes(y, "big"))
        + _der(0x04, c3)
        + _der(0x04, c2),
    )


# --- SM2 keys ---------------------------------------------------------------------------------


# OpenSSL 3.0's decoders take about a millisecond per key, so verifiers that load the same
# public key again and again (trust lists, certificates) get the parsed, immutable object back.
_PUBLIC_CACHE_SIZE = 512
_public_cache: OrderedDict[bytes, SM2PublicKey] = OrderedDict()
_public_cache_lock = threading.Lock()


def _cached_public(data: bytes, load) -> SM2PublicKey:
    """Return the public key encoded by ``data``, parsing it with ``load`` only on a cache miss."""
    with _public_cache_lock:
        found = _public_cache.get(data)
        if found is not None:
            _public_cache.move_to_end(data)
            return found
    key = load(data)
    with _public_cache_lock:
        _public_cache[data] = key
        while len(_public_cache) > _PUBLIC_CACHE_SIZE:
            _public_cache.popitem(last=False)
    return key


def clear_public_key_cache() -> None:
    """Forget the parsed public keys kept by :meth:`SM2PublicKey.from_pem` / ``from_der``."""
    with _public_cache_lock:
        _public_cache.clear()


@contextlib.contextmanager
def _sm2_digest_ctx(pkey, uid: bytes, init, what: str):
    """An SM3 digest-sign/verify context bound to ``pkey`` and the distinguishing ID ``uid``."""
    uid = _check_uid(uid)
    mctx = _EVP_MD_CTX_new()
    pctx = _EVP_PKEY_CTX_new_from_pkey(None, pkey.ptr, None)
    try:
        if not mctx or not pctx:
            raise _openssl_error("cannot create an SM2 context")
        if _EVP_PKEY_CTX_set1_id(pctx, uid, len(uid)) <= 0:
            raise _openssl_error("cannot set the SM2 distinguishing ID")
        _EVP_MD_CTX_set_pkey_ctx(mctx, pctx)
        if init(mctx, None, _SM3_MD, None, pkey.ptr) != 1:
            raise _openssl_error(f"cannot start SM2 {what}")
        yield mctx
    finally:
        # The MD context does not own a pkey context given through set_pkey_ctx: free both.
        _EVP_MD_CTX_free(mctx)
        _EVP_PKEY_CTX_free(pctx)


class SM2PublicKey:
    """An SM2 public key: verifies signatures and encrypts. Immutable, so safely shared."""

    __slots__ = ("_pkey",)

    def __init__(self, pkey: _PKey):
        self._pkey = pkey

    @classmethod
    def from_pem(cls, data: bytes | str) -> SM2PublicKey:
        """Load a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo)."""
        if isinstance(data, str):
            data = data.encode("ascii")
        return _cached_public(bytes(data), cls._parse_pem)

    @classmethod
    def from_der(cls, data: bytes) -> SM2PublicKey:
        """Load a DER SubjectPublicKeyInfo."""
        return _cached_public(bytes(data), cls._parse_der)

    @classmethod
    def _parse_pem(cls, data: bytes) -> SM2PublicKey:
        """Parse PEM with OpenSSL."""
        bio = _BIO_new_mem_buf(data, len(data))
        try:
            ptr = _PEM_read_bio_PUBKEY(bio, None, None, None)
        finally:
            _BIO_free(bio)
        return cls(_adopt_sm2(ptr, "public key"))

    @classmethod
    def _parse_der(cls, data: bytes) -> SM2PublicKey:
        """Parse DER with OpenSSL."""
        cursor = c_void_p(ctypes.cast(c_char_p(data), c_void_p).value)
        ptr = _d2i_PUBKEY(None, ctypes.cast(byref(cursor), _PP), len(data))
        return cls(_adopt_sm2(ptr, "public key"))

    @classmethod
    def from_point(cls, x: int, y: int) -> SM2PublicKey:
        """Build a public key from the affine coordinates of its point (checked to be on the curve)."""
        if not (0 <= x < 2**256 and 0 <= y < 2**256):
            raise CryptoError("SM2 point coordinates are 256-bit integers")
        point = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
        spki = _der(0x30, _der(0x30, _OID_EC_PUBLIC_KEY + _OID_SM2) + _der(0x03, b"\x00" + point))
        return cls.from_der(spki)

    def to_der(self) -> bytes:
        """Return the DER SubjectPublicKeyInfo."""
        size = _i2d_PUBKEY(self._pkey.ptr, None)
        if size <= 0:
            raise _openssl_error("cannot encode the SM2 public key")
        buf = ctypes.create_string_buffer(size)
        cursor = c_void_p(ctypes.addressof(buf))
        if _i2d_PUBKEY(self._pkey.ptr, ctypes.cast(byref(cursor), _PP)) != size:
            raise _openssl_error("cannot encode the SM2 public key")
        return buf.raw

    def to_pem(self) -> bytes:
        """Return the PEM ``PUBLIC KEY``."""
        bio = _new_mem_bio()
        try:
            if _PEM_write_bio_PUBKEY(bio, self._pkey.ptr) != 1:
                raise _openssl_error("cannot encode the SM2 public key")
            return _bio_bytes(bio)
        finally:
            _BIO_free(bio)

    def to_point(self) -> tuple[int, int]:
        """Return the affine coordinates (x, y) of the public point."""
        encoded = self.to_der()[-65:]
        if encoded[0] != 0x04:
            raise CryptoError("unexpected SM2 public key encoding")
        return int.from_bytes(encoded[1:33], "big"), int.from_bytes(encoded[33:], "big")

    def verify(self, signature: bytes, data: bytes, uid: bytes = DEFAULT_SM2_ID) -> bool:
        """Return whether ``signature`` (DER) is a valid SM2-with-SM3 signature of ``data`` by ``uid``."""
        signature, data = _bytes(signature), _bytes(data)
        with _sm2_digest_ctx(self._pkey, uid, _EVP_DigestVerifyInit, "verification") as mctx:
            ok = _EVP_DigestVerify(mctx, signature, len(signature), data, len(data)) == 1
        if not ok:
            # A malformed or wrong signature leaves reasons on the queue; they are not errors here.
            _ERR_clear_error()
        return ok

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` to this key; return the GM/T 0009 ASN.1 ciphertext (C1C3C2)."""
        plaintext = _bytes(plaintext)
        ctx = _pkey_ctx(self._pkey)
        try:
            if _EVP_PKEY_encrypt_init(ctx) != 1:
                raise _openssl_error("cannot start SM2 encryption")
            size = c_size_t(len(plaintext) + _CIPHER_OVERHEAD)
            out = ctypes.create_string_buffer(size.value)
            if _EVP_PKEY_encrypt(ctx, out, byref(size), plaintext, len(plaintext)) != 1:
                raise _openssl_error("SM2 encryption failed")
            return out.raw[: size.value]
        finally:
            _EVP_PKEY_CTX_free(ctx)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and self.to_der() == other.to_der()

    def __hash__(self) -> int:
        return hash(self.to_der())

    def __repr__(self) -> str:
        x, _y = self.to_point()
        return f"<SM2PublicKey x={x:064x}>"


class SM2PrivateKey:
    """An SM2 private key: signs and decrypts; :meth:`public_key` gives its public half."""

    __slots__ = ("_pkey", "_public")

    def __init__(self, pkey: _PKey):
        self._pkey = pkey
        self._public: SM2PublicKey | None = None

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        """Generate a new random key on the SM2 recommended curve."""
        ctx = _EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
        if not ctx:
            raise _openssl_error("cannot create an SM2 key generation context")
        try:
            ptr = c_void_p()
            if _EVP_PKEY_keygen_init(ctx) != 1 or _EVP_PKEY_generate(ctx, byref(ptr)) != 1:
                raise _openssl_error("SM2 key generation failed")
        finally:
            _EVP_PKEY_CTX_free(ctx)
        return cls(_adopt_sm2(ptr.value, "private key"))

    @classmethod
    def from_pem(cls, data: bytes | str, password: bytes | str | None = None) -> SM2PrivateKey:
        """Load a PEM private key (PKCS#8, encrypted with ``password`` if given, or SEC1)."""
        if isinstance(data, str):
            data = data.encode("ascii")
        if isinstance(password, str):
            password = password.encode("utf-8")
        bio = _BIO_new_mem_buf(data, len(data))
        try:
            # With no callback, OpenSSL takes the last argument as the passphrase itself; an empty
            # one makes an encrypted key fail instead of prompting on a terminal.
            ptr = _PEM_read_bio_PrivateKey(bio, None, None, password if password is not None else b"")
        finally:
            _BIO_free(bio)
        return cls(_adopt_sm2(ptr, "private key"))

    @classmethod
    def from_der(cls, data: bytes) -> SM2PrivateKey:
        """Load an unencrypted DER private key (PKCS#8 or SEC1)."""
        data = _bytes(data)
        cursor = c_void_p(ctypes.cast(c_char_p(data), c_void_p).value)
        ptr = _d2i_AutoPrivateKey(None, ctypes.cast(byref(cursor), _PP), len(data))
        return cls(_adopt_sm2(ptr, "private key"))

    @classmethod
    def from_private_value(cls, value: int) -> SM2PrivateKey:
        """Build the key whose private scalar is ``value`` (the public point is derived by OpenSSL)."""
        if not 1 <= value <= SM2_ORDER - 2:
            raise CryptoError("an SM2 private value lies in [1, n-2]")
        ec_private_key = _der(0x30, _der_int(1) + _der(0x04, value.to_bytes(32, "big")))
        pkcs8 = _der(
            0x30, _der_int(0) + _der(0x30, _OID_EC_PUBLIC_KEY + _OID_SM2) + _der(0x04, ec_private_key)
        )
        return cls.from_der(pkcs8)

    def private_value(self) -> int:
        """Return the private scalar d (handle with care: this is the secret)."""
        bn = c_void_p()
        if _EVP_PKEY_get_bn_param(self._pkey.ptr, b"priv", byref(bn)) != 1:
            raise _openssl_error("cannot read the SM2 private value")
        try:
            buf = ctypes.create_string_buffer(32)
            if _BN_bn2binpad(bn, buf, 32) != 32:
                raise _openssl_error("cannot read the SM2 private value")
            return int.from_bytes(buf.raw, "big")
        finally:
            _BN_clear_free(bn)

    def to_der(self) -> bytes:
        """Return the unencrypted PKCS#8 DER encoding (for wrapping under a key-encryption key)."""
        bio = _new_mem_bio()
        try:
            if _i2d_PKCS8PrivateKey_bio(bio, self._pkey.ptr, None, None, 0, None, None) != 1:
                raise _openssl_error("cannot encode the SM2 private key")
            return _bio_bytes(bio)
        finally:
            _BIO_free(bio)

    def to_pem(self, password: bytes | str | None = None) -> bytes:
        """Return the PKCS#8 PEM, encrypted (PBES2, PBKDF2, SM4-CBC) when ``password`` is given."""
        if isinstance(password, str):
            password = password.encode("utf-8")
        if password is not None and not password:
            raise ValueError("an empty password would not protect the key")
        bio = _new_mem_bio()
        try:
            cipher = _SM4_CBC if password else None
            size = len(password) if password else 0
            if _PEM_write_bio_PKCS8PrivateKey(bio, self._pkey.ptr, cipher, password, size, None, None) != 1:
                raise _openssl_error("cannot encode the SM2 private key")
            return _bio_bytes(bio)
        finally:
            _BIO_free(bio)

    def public_key(self) -> SM2PublicKey:
        """Return the matching public key (computed once)."""
        if self._public is None:
            self._public = SM2PublicKey.from_der(self._public_der())
        return self._public

    def _public_der(self) -> bytes:
        """Return the DER SubjectPublicKeyInfo of this key."""
        return SM2PublicKey(self._pkey).to_der()

    def sign(self, data: bytes, uid: bytes = DEFAULT_SM2_ID) -> bytes:
        """Sign ``data`` with SM2-with-SM3 as ``uid``; return the DER signature."""
        data = _bytes(data)
        with _sm2_digest_ctx(self._pkey, uid, _EVP_DigestSignInit, "signing") as mctx:
            size = c_size_t(_MAX_SIG_LEN)
            out = ctypes.create_string_buffer(_MAX_SIG_LEN)
            if _EVP_DigestSign(mctx, out, byref(size), data, len(data)) != 1:
                raise _openssl_error("SM2 signing failed")
            return out.raw[: size.value]

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt a GM/T 0009 ASN.1 ciphertext; raise CryptoError if it is corrupt or not for this key."""
        ciphertext = _bytes(ciphertext)
        ctx = _pkey_ctx(self._pkey)
        try:
            if _EVP_PKEY_decrypt_init(ctx) != 1:
                raise _openssl_error("cannot start SM2 decryption")
            size = c_size_t(len(ciphertext))
            out = ctypes.create_string_buffer(max(size.value, 1))
            if _EVP_PKEY_decrypt(ctx, out, byref(size), ciphertext, len(ciphertext)) != 1:
                raise _openssl_error("SM2 decryption failed")
            return out.raw[: size.value]
        finally:
            _EVP_PKEY_CTX_free(ctx)

    def __repr__(self) -> str:
        return f"<SM2PrivateKey of {self.public_key()!r}>"
