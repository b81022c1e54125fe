"""EncryptedTextField (SM4-GCM at rest) and keyed blind indexes."""

from __future__ import annotations

import base64

import pytest
from django.core.exceptions import FieldError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from dgov.kernel.crypto import CryptoError, sm4_gcm_decrypt
from dgov.kernel.fields import EncryptedTextField, blind_index, decrypt_value, encrypt_value, normalize
from dgov.kernel.models import KeyRecord, SentMessage
from dgov.kernel.services import keys

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with an empty key cache."""
    keys.clear_cache()
    yield
    keys.clear_cache()


def message(to: str) -> SentMessage:
    """A saved SentMessage, whose ``to`` is an EncryptedTextField."""
    return SentMessage.objects.create(
        channel="sms", gateway="test", to=to, to_index=blind_index(to, purpose="phone"), status="sent"
    )


def stored(obj: SentMessage) -> str:
    """The raw column value of ``obj.to``, as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name('to')} FROM kernel_sentmessage WHERE id = %s", [obj.pk]
        )
        return cursor.fetchone()[0]


def test_values_are_encrypted_at_rest_and_decrypted_on_load():
    obj = message("13812345678")
    raw = stored(obj)
    version, kid, payload = raw.split(":")
    assert version == "v1" and kid == keys.data_key("pii")[0]
    assert "13812345678" not in raw
    blob = base64.b64decode(payload)
    assert sm4_gcm_decrypt(keys.data_key_by_id(kid), blob, kid.encode()) == b"13812345678"
    assert SentMessage.objects.get(pk=obj.pk).to == "13812345678"
    assert obj.to == "13812345678"  # the instance keeps the plain value


def test_equal_values_have_different_ciphertexts():
    a, b = message("13812345678"), message("13812345678")
    assert stored(a) != stored(b)


@pytest.mark.parametrize("text", ["张三 370102199001011234", "", "😀 emoji", "x" * 10_000])
def test_round_trip_of_any_text(text):
    obj = message(text)
    assert SentMessage.objects.get(pk=obj.pk).to == text


def test_empty_and_none_are_stored_as_they_are():
    obj = message("")
    assert stored(obj) == ""
    field = EncryptedTextField()
    assert field.get_prep_value(None) is None
    assert field.get_prep_value("") == ""
    assert field.from_db_value(None, None, connection) is None
    assert field.from_db_value("", None, connection) == ""


def test_lookups_on_ciphertext_are_refused():
    message("13812345678")
    for lookup in (
        {"to": "13812345678"},
        {"to__icontains": "138"},
        {"to__in": ["x"]},
        {"to__startswith": "1"},
    ):
        with pytest.raises(FieldError, match="blind_index"):
            list(SentMessage.objects.filter(**lookup))
    with pytest.raises(FieldError):
        list(SentMessage.objects.filter(to__lower="x"))


def test_isnull_and_empty_lookups_still_work():
    message("13812345678")
    empty = message("")
    assert SentMessage.objects.filter(to__isnull=False).count() == 2
    assert list(SentMessage.objects.filter(to="")) == [empty]
    assert list(SentMessage.objects.exclude(to="")) != [empty]


def test_exact_lookup_through_the_blind_index():
    target = message("13812345678")
    message("13900000000")
    index = blind_index(" 138-1234-5678 ", purpose="phone")
    assert list(SentMessage.objects.filter(to_index=index)) == [target]


def test_tampered_or_moved_ciphertext_is_rejected():
    obj = message("13812345678")
    version, kid, payload = stored(obj).split(":")
    blob = bytearray(base64.b64decode(payload))
    blob[15] ^= 1
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE kernel_sentmessage SET {connection.ops.quote_name('to')} = %s WHERE id = %s",
            [f"v1:{kid}:{base64.b64encode(bytes(blob)).decode()}", obj.pk],
        )
    with pytest.raises(CryptoError):
        SentMessage.objects.get(pk=obj.pk)


def test_ciphertext_is_bound_to_its_kid():
    kid, _ = keys.data_key("pii")
    other_kid, _ = keys.data_key("other")
    value = encrypt_value("secret")
    # Re-labelled with another key id: the AAD no longer matches (and neither does the key).
    with pytest.raises(CryptoError):
        decrypt_value(value.replace(kid, other_kid))
    with pytest.raises(CryptoError, match="unknown key"):
        decrypt_value(value.replace(kid, "sm4-pii-20000101-000000"))
    for garbage in ("plain text", "v1:only-kid", f"v1:{kid}:***", f"v2:{kid}:AAAA", "v1:密钥:AAAA"):
        with pytest.raises(CryptoError):
            decrypt_value(garbage)


def test_rows_stay_readable_after_rotation(official):
    old = message("13812345678")
    old_kid = stored(old).split(":")[1]
    keys.rotate("pii", actor=official)
    new = message("13900000000")
    assert stored(new).split(":")[1] != old_kid
    assert SentMessage.objects.get(pk=old.pk).to == "13812345678"
    assert SentMessage.objects.get(pk=new.pk).to == "13900000000"


def test_bulk_create_and_reads_cost_no_key_queries():
    keys.data_key("pii")
    rows = [
        SentMessage(channel="sms", gateway="t", to=f"1380000{i:04d}", to_index="", status="sent")
        for i in range(300)
    ]
    with CaptureQueriesContext(connection) as queries:
        SentMessage.objects.bulk_create(rows, batch_size=100)
        values = list(SentMessage.objects.order_by("id").values_list("to", flat=True))
    assert values == [f"1380000{i:04d}" for i in range(300)]
    assert all("kernel_keyrecord" not in q["sql"] for q in queries.captured_queries)


def test_field_with_its_own_purpose_and_deconstruct():
    field = EncryptedTextField(purpose="health")
    assert field.deconstruct()[3]["purpose"] == "health"
    assert "purpose" not in EncryptedTextField().deconstruct()[3]
    value = field.get_prep_value("诊断")
    assert value.split(":")[1] == keys.data_key("health")[0]
    assert field.from_db_value(value, None, connection) == "诊断"


# --- blind index ----------------------------------------------------------------------------------


def test_blind_index_is_keyed_deterministic_hex():
    index = blind_index("370102199001011234", purpose="id_number")
    assert len(index) == 64 and int(index, 16) >= 0
    assert blind_index("370102199001011234", purpose="id_number") == index
    assert blind_index("370102199001011235", purpose="id_number") != index
    assert KeyRecord.objects.filter(purpose=keys.BLIND_INDEX_PURPOSE, status="active").exists()


def test_blind_index_normalizes_id_numbers_and_phones():
    base = blind_index("37010219900101123X", purpose="id_number")
    for spelling in (
        "37010219900101123x",
        " 37010219900101123X ",
        "３７０１０２１９９００１０１１２３Ｘ",
        "370102 19900101 123X",
    ):
        assert blind_index(spelling, purpose="id_number") == base
    assert blind_index("37010219900101123x", purpose="registry.id_number") != base  # other domain
    assert normalize("9137 0102-ma3c1234 5x", purpose="uscc") == "91370102MA3C12345X"
    assert normalize(" 138 1234-5678 ", purpose="phone") == "13812345678"
    assert normalize(" 张三 ", purpose="name") == "张三"
    assert normalize("Ab c", purpose="name") == "Ab c"  # no case folding for free text
    assert blind_index("Ab", purpose="name") != blind_index("AB", purpose="name")


def test_blind_index_separates_purposes():
    assert blind_index("13812345678", purpose="phone") != blind_index("13812345678", purpose="id_number")
    with pytest.raises(ValueError):
        blind_index("x", purpose="")


def test_blind_index_depends_on_the_key(official):
    before = blind_index("13812345678", purpose="phone")
    keys.rotate(keys.BLIND_INDEX_PURPOSE, actor=official, force=True)
    assert blind_index("13812345678", purpose="phone") != before


@settings(max_examples=30, deadline=None)
@given(text=st.text(max_size=60))
def test_encrypt_decrypt_any_unicode(text):
    assert decrypt_value(encrypt_value(text)) == text


def test_open_sealed_with_keys_handed_over():
    from dgov.kernel.fields import open_sealed, sealed_kid

    stored = encrypt_value("甲乙")
    kid = sealed_kid(stored)
    assert stored.startswith(f"v1:{kid}:") and sealed_kid("not sealed") == ""
    handed = {kid: keys.data_key_by_id(kid)}
    assert open_sealed(stored, handed.get) == "甲乙" == decrypt_value(stored)
    with pytest.raises(CryptoError, match="unknown key"):
        open_sealed(stored, {}.get)
    with pytest.raises(CryptoError, match="not an encrypted field value"):
        open_sealed("plain", handed.get)
