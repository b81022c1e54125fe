"""Key registry: creation on first use, wrapping, rotation, revocation, caching and the command."""

from __future__ import annotations

import io
import stat

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from dgov.kernel.crypto import SM2PrivateKey, SM2PublicKey, sm4_gcm_decrypt
from dgov.kernel.models import AuditRecord, KeyRecord, OutboxEvent
from dgov.kernel.services import keys

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts (and leaves) with an empty key cache."""
    keys.clear_cache()
    yield
    keys.clear_cache()


def audited(action: str) -> list[AuditRecord]:
    """Audit records of ``action``, oldest first."""
    return list(AuditRecord.objects.filter(action=action).order_by("seq"))


# --- first use ----------------------------------------------------------------------------------


def test_signing_key_is_created_on_first_use_and_audited():
    kid, key = keys.signing_key("audit-test")
    assert isinstance(key, SM2PrivateKey)
    assert kid.startswith("sm2-audit-test-") and len(kid.rsplit("-", 1)[-1]) == 6
    record = KeyRecord.objects.get(kid=kid)
    assert (record.purpose, record.algorithm, record.status) == ("audit-test", "sm2", "active")
    assert SM2PublicKey.from_pem(record.public_pem) == key.public_key()
    [created] = audited("kernel.key.create")
    assert created.target_id == str(record.pk)
    assert created.actor_kind == "system"
    assert keys.signing_key("audit-test")[0] == kid
    assert KeyRecord.objects.count() == 1


def test_data_key_is_created_on_first_use():
    kid, key = keys.data_key("pii")
    assert kid.startswith("sm4-pii-") and len(key) == 16
    assert keys.data_key("pii") == (kid, key)
    assert keys.data_key_by_id(kid) == key
    assert KeyRecord.objects.get(kid=kid).public_pem == ""


def test_cached_keys_need_no_query():
    keys.data_key("pii")
    kid, _ = keys.signing_key("audit-test")
    with CaptureQueriesContext(connection) as queries:
        for _ in range(100):
            keys.data_key("pii")
            keys.signing_key("audit-test")
            keys.verify(kid, b"m", b"")
    assert len(queries) == 0


def test_a_purpose_keeps_its_algorithm():
    keys.data_key("pii")
    with pytest.raises(keys.KeyPurposeError, match="SM4"):
        keys.signing_key("pii")
    keys.clear_cache()
    with pytest.raises(keys.KeyPurposeError):
        keys.signing_key("pii")


@pytest.mark.parametrize("purpose", ["", "Upper", "has space", "-lead", "x" * 49, "中文"])
def test_malformed_purposes_are_refused(purpose):
    with pytest.raises(keys.KeyPurposeError):
        keys.data_key(purpose)


# --- signing ------------------------------------------------------------------------------------


def test_sign_and_verify_by_kid():
    kid, signature = keys.sign("audit-test", b"checkpoint 42")
    assert keys.verify(kid, b"checkpoint 42", signature)
    assert not keys.verify(kid, b"checkpoint 43", signature)
    assert not keys.verify("sm2-nope-20260101-000000", b"checkpoint 42", signature)
    assert keys.public_key(kid).verify(signature, b"checkpoint 42")
    keys.clear_cache()  # a fresh process verifies from the database alone
    assert keys.verify(kid, b"checkpoint 42", signature)


def test_public_key_of_unknown_or_symmetric_kid():
    with pytest.raises(keys.UnknownKeyError):
        keys.public_key("sm2-none-20260101-000000")
    kid, _ = keys.data_key("pii")
    with pytest.raises(keys.UnknownKeyError):
        keys.public_key(kid)
    assert keys.verify(kid, b"m", b"sig") is False
    with pytest.raises(keys.UnknownKeyError):
        keys.data_key_by_id(keys.signing_key("audit-test")[0])
    with pytest.raises(keys.UnknownKeyError):
        keys.data_key_by_id("sm4-none-20260101-000000")


# --- wrapping -----------------------------------------------------------------------------------


def test_secrets_are_stored_wrapped_under_the_master_key():
    kid, key = keys.data_key("pii")
    skid, private = keys.signing_key("audit-test")
    record = KeyRecord.objects.get(kid=kid)
    wrapped = bytes(record.wrapped)
    assert key not in wrapped and len(wrapped) == 12 + 16 + 16
    assert sm4_gcm_decrypt(keys.master_key(), wrapped, f"dgov-key-wrap|{kid}|pii".encode()) == key
    private_record = KeyRecord.objects.get(kid=skid)
    assert private.private_value().to_bytes(32, "big") not in bytes(private_record.wrapped)


def test_a_wrapped_key_moved_to_another_row_does_not_unwrap():
    kid_a, _ = keys.data_key("pii")
    kid_b, _ = keys.data_key("other")
    KeyRecord.objects.filter(kid=kid_b).update(wrapped=KeyRecord.objects.get(kid=kid_a).wrapped)
    keys.clear_cache()
    with pytest.raises(keys.MasterKeyError, match=kid_b):
        keys.data_key_by_id(kid_b)


def test_a_different_master_key_cannot_unwrap(settings):
    kid, _ = keys.data_key("pii")
    settings.MASTER_KEY_HEX = "ffeeddccbbaa99887766554433221100"
    with pytest.raises(keys.MasterKeyError, match="master key"):
        keys.data_key_by_id(kid)


def test_malformed_master_key_is_refused(settings):
    settings.MASTER_KEY_HEX = "not-hex"
    with pytest.raises(keys.MasterKeyError, match="32 hexadecimal"):
        keys.master_key()


def test_embedded_mode_generates_a_private_master_key_file(settings, tmp_path):
    path = tmp_path / "keys" / "master.key"
    settings.MASTER_KEY_HEX = None
    settings.MASTER_KEY_FILE = path
    kek = keys.master_key()
    assert len(kek) == 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert bytes.fromhex(path.read_text().strip()) == kek
    kid, key = keys.data_key("pii")
    keys.clear_cache()  # a restarted process reads the same file
    assert keys.master_key() == kek
    assert keys.data_key_by_id(kid) == key


# --- rotation and revocation --------------------------------------------------------------------


def test_rotate_retires_the_old_key_and_audits(official):
    old_kid, signature = keys.sign("audit-test", b"before")
    new_kid = keys.rotate("audit-test", actor=official)
    assert new_kid != old_kid
    assert keys.signing_key("audit-test")[0] == new_kid
    old = KeyRecord.objects.get(kid=old_kid)
    assert old.status == "retired" and old.retired_at is not None
    assert keys.verify(old_kid, b"before", signature)  # old signatures still verify
    [rotation] = audited("kernel.key.rotate")
    assert rotation.actor_id == str(official.pk)
    assert rotation.target_id == str(KeyRecord.objects.get(kid=new_kid).pk)
    assert rotation.detail["previous"] == old_kid
    event = OutboxEvent.objects.get(event_type="kernel.key.rotated")
    assert event.payload["kid"] == new_kid


def test_rotated_data_keys_still_decrypt_old_data(official):
    old_kid, old_key = keys.data_key("pii")
    new_kid = keys.rotate("pii", actor=official)
    new_kid_again, new_key = keys.data_key("pii")
    assert new_kid_again == new_kid and new_key != old_key
    assert keys.data_key_by_id(old_kid) == old_key


def test_rotate_a_purpose_without_keys_needs_the_algorithm(official):
    with pytest.raises(keys.KeyPurposeError, match="algorithm"):
        keys.rotate("fresh", actor=official)
    kid = keys.rotate("fresh", actor=official, algorithm="sm4")
    assert keys.data_key("fresh")[0] == kid
    with pytest.raises(keys.KeyPurposeError):
        keys.rotate("fresh", actor=official, algorithm="sm2")
    with pytest.raises(keys.KeyPurposeError):
        keys.rotate("other", actor=official, algorithm="rsa")


def test_blind_index_key_rotation_needs_force(official):
    kid, _ = keys.data_key(keys.BLIND_INDEX_PURPOSE)
    with pytest.raises(keys.KeyPurposeError, match="blind index"):
        keys.rotate(keys.BLIND_INDEX_PURPOSE, actor=official)
    assert keys.data_key(keys.BLIND_INDEX_PURPOSE)[0] == kid
    assert keys.rotate(keys.BLIND_INDEX_PURPOSE, actor=official, force=True) != kid


def test_revoke_stops_verification_and_replaces_an_active_key(official):
    kid, signature = keys.sign("audit-test", b"m")
    replacement = keys.revoke(kid, actor=official)
    assert replacement and replacement != kid
    assert keys.signing_key("audit-test")[0] == replacement
    assert KeyRecord.objects.get(kid=kid).status == "revoked"
    assert not keys.verify(kid, b"m", signature)
    assert [r.detail["kid"] for r in audited("kernel.key.revoke")] == [kid]
    assert keys.revoke(kid, actor=official) is None  # idempotent
    with pytest.raises(keys.UnknownKeyError):
        keys.revoke("sm2-none-20260101-000000", actor=official)


def test_revoked_data_key_still_decrypts(official):
    kid, key = keys.data_key("pii")
    keys.revoke(kid, actor=official)
    assert keys.data_key_by_id(kid) == key
    assert keys.data_key("pii")[0] != kid


def test_list_keys():
    keys.data_key("pii")
    keys.signing_key("audit-test")
    listed = keys.list_keys()
    assert {r.purpose for r in listed} == {"pii", "audit-test"}
    assert [r.purpose for r in keys.list_keys("pii")] == ["pii"]


# --- the cache and transactions -----------------------------------------------------------------


def test_a_key_created_in_a_rolled_back_transaction_is_not_reused():
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        lost_kid, _ = keys.data_key("pii")
        assert keys.data_key("pii")[0] == lost_kid  # trusted inside its own transaction
        raise Abort
    assert not KeyRecord.objects.filter(kid=lost_kid).exists()
    kid, _ = keys.data_key("pii")
    assert kid != lost_kid
    assert KeyRecord.objects.filter(kid=kid).exists()
    with pytest.raises(keys.UnknownKeyError):
        keys.data_key_by_id(lost_kid)


def test_a_key_created_in_a_rolled_back_savepoint_is_not_reused():
    with transaction.atomic():
        keys.signing_key("audit-test")  # an entry that survives
        try:
            with transaction.atomic():
                lost_kid, _ = keys.data_key("pii")
                raise RuntimeError
        except RuntimeError:
            pass
        kid, _ = keys.data_key("pii")
        assert kid != lost_kid
        with CaptureQueriesContext(connection) as queries:
            keys.data_key("pii")
            keys.signing_key("audit-test")
        assert len(queries) == 0


def test_captured_on_commit_callbacks_do_not_make_uncommitted_keys_permanent(
    django_capture_on_commit_callbacks,
):
    """Tests run on-commit callbacks inside their never-committed transaction."""
    with django_capture_on_commit_callbacks(execute=True):
        kid, _ = keys.data_key("pii")
    assert keys._by_kid[kid].guard is not None


def test_cache_lifetime_lets_other_processes_rotations_in(settings):
    settings.KEY_CACHE_SECONDS = 0
    kid, _ = keys.data_key("pii")
    # Another process rotated: the row changed behind this process's back.
    KeyRecord.objects.filter(kid=kid).update(status="retired")
    with transaction.atomic():
        other = keys._new_record("pii", "sm4")
    assert keys.data_key("pii")[0] == other.kid


@pytest.mark.django_db(transaction=True)
def test_keys_committed_outside_tests_transactions_are_cached_for_good():
    kid, _ = keys.data_key("pii")
    assert keys._by_kid[kid].guard is None
    with transaction.atomic():
        assert keys.data_key("pii")[0] == kid
    with CaptureQueriesContext(connection) as queries:
        assert keys.data_key("pii")[0] == kid
        keys.data_key_by_id(kid)
    assert len(queries) == 0
    with transaction.atomic():
        created_kid, _ = keys.data_key("committed")
    assert keys._by_kid[created_kid].guard is None  # the on-commit callback confirmed it


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_use_creates_one_key():
    if connection.vendor == "sqlite":
        pytest.skip("the in-memory SQLite test database does not take concurrent writers")
    import threading

    from django.db import connections

    barrier = threading.Barrier(4)
    kids: list[str] = []

    def first_use() -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                kids.append(keys.data_key("race")[0])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 4 and len(set(kids)) == 1
    assert KeyRecord.objects.filter(purpose="race").count() == 1


# --- the command --------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("keys", *args, stdout=out)
    return out.getvalue()


def test_command_list_and_rotate():
    assert "首次使用" in run("list")
    kid, _ = keys.data_key("pii")
    assert kid in run("list")
    output = run("rotate", "pii")
    new_kid = keys.data_key("pii")[0]
    assert new_kid in output and new_kid != kid
    listing = run("list", "--purpose", "pii")
    assert kid in listing and new_kid in listing and "已轮换" in listing
    [rotation] = audited("kernel.key.rotate")
    assert rotation.actor_label.startswith("system:cli:") or rotation.actor_id.startswith("system:cli:")


def test_command_errors_and_revoke():
    with pytest.raises(CommandError):
        run("rotate", "nothing-yet")
    assert "sm2-" in run("rotate", "seal", "--algorithm", "sm2")
    kid, _ = keys.signing_key("seal")
    output = run("revoke", kid)
    assert kid in output and keys.signing_key("seal")[0] in output
    with pytest.raises(CommandError):
        run("revoke", "sm2-none-20260101-000000")
    with pytest.raises(CommandError):
        run("rotate", keys.BLIND_INDEX_PURPOSE)
