"""The audit chain: recording, append-only rules, tamper detection and signed checkpoints."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from dgov.kernel.audit_context import audit_context
from dgov.kernel.models import AppendOnlyError, AuditCheckpoint, AuditHead, AuditRecord, Organization
from dgov.kernel.services import audit, keys

TOTAL = 12  # records in the ``chain`` fixture; checkpoints every 5 → at seq 5 and 10


@pytest.fixture(autouse=True)
def checkpoint_settings(settings, tmp_path):
    """Checkpoints every 5 records, copied to a file private to the test."""
    settings.AUDIT_CHECKPOINT_EVERY = 5
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "audit-checkpoints.jsonl"
    return settings


def write(n: int, action: str = "test.widget.update", **kwargs) -> list[AuditRecord]:
    """Write ``n`` records, each in its own transaction like a service would."""
    written = []
    for i in range(n):
        with transaction.atomic():
            detail = {"i": i, "名称": "测试", "raw": "😀\x1f\u2028"}  # JSON escapes the separator
            written.append(audit.record(action, detail=detail, **kwargs))
    return written


@pytest.fixture
def chain(db, django_capture_on_commit_callbacks):
    """A chain of TOTAL records with checkpoints at 5 and 10 in the database and in the file."""
    with django_capture_on_commit_callbacks(execute=True):
        keys.signing_key(audit.CHECKPOINT_PURPOSE)  # its creation is audited: record 1
        write(TOTAL - AuditRecord.objects.count())
    assert AuditRecord.objects.count() == TOTAL
    assert list(AuditCheckpoint.objects.order_by("seq").values_list("seq", flat=True)) == [5, 10]
    return {row.seq: row for row in AuditRecord.objects.all()}


def sql(statement: str, params=()):
    """Run raw SQL the way an intruder with database access would."""
    with connection.cursor() as cursor:
        cursor.execute(statement, list(params))


def first(report: audit.VerifyReport) -> tuple[int | None, str]:
    """The (seq, kind) of the first problem found."""
    assert not report.ok
    return report.first_problem.seq, report.first_problem.kind


def hashed_values(seq: int) -> dict[str, str]:
    """The hashed field values of stored record ``seq`` (occurred_at canonical)."""
    row = AuditRecord.objects.filter(seq=seq).values(*audit.HASHED_FIELDS).get()
    row["occurred_at"] = audit.format_timestamp(row["occurred_at"])
    return row


# --- writing ----------------------------------------------------------------------------------


def test_record_links_hashes_and_describes_actor_and_target(db, department, official):
    with transaction.atomic(), audit_context(ip="192.0.2.7", request_id="req-1", user_agent="pytest/1"):
        detail = {"b": 1, "a": [1]}
        one = audit.record("kernel.organization.update", actor=official, target=department, detail=detail)
        two = audit.record("kernel.organization.read", actor="system:demo", outcome="denied")
    assert one.seq + 1 == two.seq
    assert one.prev_hash == audit.GENESIS_HASH or one.seq > 1
    assert two.prev_hash == one.hash
    assert one.hash == audit.record_hash(hashed_values(one.seq))
    assert (one.actor_kind, one.actor_id) == ("user", str(official.pk))
    assert "official1" in one.actor_label and "张警官" in one.actor_label
    assert (one.target_type, one.target_id) == ("kernel.organization", str(department.pk))
    assert one.target_label == "山东省公安厅"
    assert one.detail_json == '{"a":[1],"b":1}'
    assert (one.ip, one.request_id, one.user_agent) == ("192.0.2.7", "req-1", "pytest/1")
    assert (two.actor_kind, two.actor_label, two.outcome) == ("system", "system:demo", "denied")
    assert AuditHead.objects.get(pk=1).seq == two.seq


def test_record_cleans_control_characters_and_refuses_bad_input(db):
    with transaction.atomic():
        entry = audit.record("test.x\x1fy", actor="ops:\x00bob", target=("kernel.thing", "7", "a\nb"))
        assert (entry.action, entry.actor_label, entry.target_label) == ("test.x y", "ops: bob", "a b")
        with pytest.raises(ValueError):
            audit.record("test.x", outcome="maybe")
        with pytest.raises(ValueError):
            audit.record("test.x", detail={"ratio": float("nan")})
        with pytest.raises(TypeError):
            audit.record("test.x", target=42)
    assert audit.verify().ok


@pytest.mark.django_db(transaction=True)
def test_record_outside_a_transaction_raises():
    with pytest.raises(audit.AuditError):
        audit.record("test.widget.create")
    assert not AuditRecord.objects.exists()
    with transaction.atomic():
        audit.record("test.widget.create")
    assert AuditRecord.objects.count() == 1


def test_rolled_back_change_leaves_no_record(db):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record("test.widget.create")
        raise RuntimeError("the change failed")
    assert not AuditRecord.objects.exists()
    with transaction.atomic():
        entry = audit.record("test.widget.create")
    assert entry.seq == 1 and entry.prev_hash == audit.GENESIS_HASH


def test_orm_refuses_updates_and_deletes(chain):
    entry = AuditRecord.objects.get(seq=3)
    entry.action = "test.rewritten"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(seq=3).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(seq__gt=1).delete()
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.bulk_update([entry], ["action"])
    with pytest.raises(AppendOnlyError):
        AuditCheckpoint.objects.all().delete()
    assert AuditRecord.objects.get(seq=3).action == chain[3].action
    assert audit.verify().ok


def test_timestamps_without_microseconds_verify(db, monkeypatch):
    # SQLite stores str(datetime), which drops the fraction when it is zero.
    monkeypatch.setattr(audit.timezone, "now", lambda: datetime(2025, 3, 1, 8, 30, tzinfo=UTC))
    write(3)
    assert audit.verify().ok


# --- verifying --------------------------------------------------------------------------------


def test_intact_chain_verifies(chain):
    report = audit.verify()
    assert report.ok, report.problems
    assert (report.records_checked, report.first_seq, report.last_seq) == (TOTAL, 1, TOTAL)
    assert report.last_hash == chain[TOTAL].hash
    assert report.last_checkpoint["seq"] == 10
    assert report.last_checkpoint["source"] == "db,file"
    assert report.checkpoints_checked == 2  # the file copies are the same statements, verified once
    lines = [json.loads(line) for line in audit._checkpoint_file().read_text().splitlines()]
    assert [line["seq"] for line in lines] == [5, 10]


def test_missing_checkpoint_file_is_a_warning_not_a_failure(chain):
    assert audit.verify().warnings == []
    audit._checkpoint_file().unlink()
    report = audit.verify()
    assert report.ok and len(report.warnings) == 1 and "第 10 条" in report.warnings[0]


def test_verify_from_a_later_seq(chain):
    report = audit.verify(from_seq=8)
    assert report.ok and report.records_checked == TOTAL - 7 and report.first_seq == 8
    sql("UPDATE kernel_auditrecord SET target_label = %s WHERE seq = %s", ["改过", 4])
    assert audit.verify(from_seq=8).ok  # the altered record lies before the range
    assert first(audit.verify()) == (4, "altered")


def test_progress_is_reported(chain):
    calls = []
    audit.verify(progress=lambda done, total: calls.append((done, total)), chunk_size=5)
    assert calls[-1] == (TOTAL, TOTAL)
    assert [done for done, _total in calls] == [5, 10, 12]


def test_altered_field_is_named(chain):
    sql("UPDATE kernel_auditrecord SET actor_label = %s WHERE seq = %s", ["someone else", 7])
    report = audit.verify()
    assert first(report) == (7, "altered")
    assert report.first_problem.action == chain[7].action
    assert report.first_problem.occurred_at == audit.format_timestamp(chain[7].occurred_at)


def test_altered_detail_is_named(chain):
    sql("UPDATE kernel_auditrecord SET detail_json = %s WHERE seq = %s", ['{"i":99}', 3])
    assert first(audit.verify()) == (3, "altered")


def test_altered_hash_column_is_named(chain):
    sql("UPDATE kernel_auditrecord SET hash = %s WHERE seq = %s", ["f" * 64, 6])
    assert first(audit.verify()) == (6, "altered")


def test_separator_smuggled_into_a_field_is_altered(chain):
    values = hashed_values(4)
    values["actor_label"] = "a\x1fb"
    sql(
        "UPDATE kernel_auditrecord SET actor_label = %s, hash = %s WHERE seq = %s",
        [values["actor_label"], audit.record_hash(values), 4],
    )
    assert first(audit.verify()) == (4, "altered")


def test_deleted_middle_record_is_named(chain):
    sql("DELETE FROM kernel_auditrecord WHERE seq = %s", [6])
    report = audit.verify()
    assert first(report) == (6, "deleted")
    assert report.records_checked == 5


def test_deleted_and_renumbered_record_is_named(chain):
    sql("DELETE FROM kernel_auditrecord WHERE seq = %s", [6])
    sql("UPDATE kernel_auditrecord SET seq = seq + 1000 WHERE seq > %s", [6])
    sql("UPDATE kernel_auditrecord SET seq = seq - 1001 WHERE seq > %s", [1000])
    assert first(audit.verify()) == (6, "deleted")


def test_inserted_forged_record_is_named(chain):
    # Make room at seq 6 and insert a record that links correctly to record 5 and hashes correctly.
    sql("UPDATE kernel_auditrecord SET seq = seq + 1000 WHERE seq >= %s", [6])
    sql("UPDATE kernel_auditrecord SET seq = seq - 999 WHERE seq >= %s", [1006])
    values = hashed_values(5)
    values.update(action="kernel.organization.delete", actor_label="nobody", prev_hash=chain[5].hash)
    forged = {**values, "occurred_at": datetime.fromisoformat(values["occurred_at"].replace("Z", "+00:00"))}
    AuditRecord(seq=6, hash=audit.record_hash(values), **forged).save()
    report = audit.verify()
    assert first(report) == (6, "inserted")
    assert report.first_problem.action == "kernel.organization.delete"


def test_garbage_row_appended_is_inserted(chain):
    values = hashed_values(TOTAL)
    forged = {**values, "occurred_at": chain[TOTAL].occurred_at, "prev_hash": "1" * 64}
    AuditRecord(seq=TOTAL + 1, hash="2" * 64, **forged).save()
    assert first(audit.verify()) == (TOTAL + 1, "inserted")


def test_well_formed_row_appended_behind_the_head_is_inserted(chain):
    values = hashed_values(TOTAL)
    values["prev_hash"] = chain[TOTAL].hash
    AuditRecord(
        seq=TOTAL + 1, hash=audit.record_hash(values), **{**values, "occurred_at": chain[TOTAL].occurred_at}
    ).save()
    assert first(audit.verify()) == (TOTAL + 1, "inserted")


def test_swapped_records_are_reordered(chain):
    sql("UPDATE kernel_auditrecord SET seq = %s WHERE seq = %s", [-1, 7])
    sql("UPDATE kernel_auditrecord SET seq = %s WHERE seq = %s", [7, 8])
    sql("UPDATE kernel_auditrecord SET seq = %s WHERE seq = %s", [8, -1])
    assert first(audit.verify()) == (7, "reordered")


def test_swapped_contents_are_reordered(chain):
    # Swap every column but seq between records 3 and 4 (hash is unique, so park one first).
    columns = [*audit.HASHED_FIELDS, "hash"]
    three, four = (AuditRecord.objects.filter(seq=s).values(*columns).get() for s in (3, 4))
    assignments = ", ".join(f"{name} = %s" for name in columns)
    sql("UPDATE kernel_auditrecord SET hash = %s WHERE seq = 3", ["x" * 64])
    sql("UPDATE kernel_auditrecord SET hash = %s WHERE seq = 4", ["y" * 64])
    sql(f"UPDATE kernel_auditrecord SET {assignments} WHERE seq = 3", [four[c] for c in columns])
    sql(f"UPDATE kernel_auditrecord SET {assignments} WHERE seq = 4", [three[c] for c in columns])
    assert first(audit.verify()) == (3, "reordered")


def test_rewritten_and_rehashed_chain_contradicts_the_signed_checkpoint(chain):
    # An intruder alters record 3 and recomputes every hash after it, head included.
    prev = chain[2].hash
    for seq in range(3, TOTAL + 1):
        values = hashed_values(seq)
        if seq == 3:
            values["target_label"] = "改写"
        values["prev_hash"] = prev
        prev = audit.record_hash(values)
        sql(
            "UPDATE kernel_auditrecord SET target_label = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            [values["target_label"], values["prev_hash"], prev, seq],
        )
    sql("UPDATE kernel_audithead SET hash = %s", [prev])
    report = audit.verify()
    assert first(report) == (5, "altered")
    assert "1" in report.first_problem.message and "5" in report.first_problem.message


def test_truncated_tail_with_its_checkpoint_is_detected_from_the_file(chain):
    # Delete records 9..12, the checkpoint at 10, and move the head back: the database is consistent.
    sql("DELETE FROM kernel_auditrecord WHERE seq > %s", [8])
    sql("DELETE FROM kernel_auditcheckpoint WHERE seq > %s", [8])
    sql("UPDATE kernel_audithead SET seq = %s, hash = %s", [8, chain[8].hash])
    report = audit.verify()
    assert first(report) == (9, "truncated")
    assert "file" in report.first_problem.message
    assert [p.kind for p in report.problems] == ["truncated"]


def test_truncated_tail_is_detected_from_the_head_and_database_checkpoint(chain):
    sql("DELETE FROM kernel_auditrecord WHERE seq > %s", [10])
    report = audit.verify(checkpoint_file=None)
    assert first(report) == (11, "truncated")


def test_forged_checkpoint_signature_is_named(chain):
    signature = AuditCheckpoint.objects.get(seq=10).signature
    forged = signature[:-4] + ("0000" if signature[-4:] != "0000" else "1111")
    sql("UPDATE kernel_auditcheckpoint SET signature = %s WHERE seq = %s", [forged, 10])
    report = audit.verify()
    assert first(report) == (10, "checkpoint-forged")
    assert "db" in report.first_problem.message


def test_forged_checkpoint_in_the_file_is_named(chain):
    real = AuditCheckpoint.objects.get(seq=10)
    line = {"seq": 12, "hash": chain[12].hash, "created_at": "2030-01-01T00:00:00.000000Z", "kid": real.kid}
    with audit._checkpoint_file().open("a") as handle:
        handle.write(json.dumps({**line, "signature": real.signature}) + "\n")
    assert first(audit.verify()) == (12, "checkpoint-forged")


def test_checkpoint_moved_to_another_record_is_forged(chain):
    sql("UPDATE kernel_auditcheckpoint SET hash = %s WHERE seq = %s", [chain[4].hash, 5])
    assert first(audit.verify()) == (5, "checkpoint-forged")


def test_checkpoint_row_deleted_from_the_database_is_reported(chain):
    sql("DELETE FROM kernel_auditcheckpoint WHERE seq = %s", [5])
    assert first(audit.verify()) == (5, "checkpoint-missing")


def test_unreadable_checkpoint_file_line_is_reported(chain):
    with audit._checkpoint_file().open("a") as handle:
        handle.write("{not json\n")
    report = audit.verify()
    assert not report.ok and report.first_problem.kind == "checkpoint-forged"


def test_on_demand_checkpoint_covers_its_own_record(chain, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        entry = audit.checkpoint(actor="system:test")
        again = audit.checkpoint(actor="system:test")
    assert entry.seq == TOTAL + 1 and again.pk == entry.pk
    assert AuditRecord.objects.get(seq=entry.seq).action == "kernel.audit.checkpoint"
    payload = audit.checkpoint_payload(entry.seq, entry.hash, audit.format_timestamp(entry.created_at))
    assert keys.verify(entry.kid, payload, bytes.fromhex(entry.signature))
    report = audit.verify()
    assert report.ok and report.last_checkpoint["seq"] == entry.seq


def test_failed_checkpoint_signing_does_not_fail_the_change(db, monkeypatch, caplog):
    def broken(purpose, data):
        raise RuntimeError("HSM unavailable")

    monkeypatch.setattr(keys, "sign", broken)
    write(6)
    assert AuditRecord.objects.count() == 6 and not AuditCheckpoint.objects.exists()
    assert "checkpoint at seq 5" in caplog.text
    assert audit.verify().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_chain():
    if connection.vendor != "postgresql":
        pytest.skip("the in-memory SQLite test database does not take concurrent writers")
    errors = []

    def worker(n):
        try:
            for _ in range(15):
                with transaction.atomic():
                    audit.record(f"test.worker{n}.step")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    report = audit.verify(checkpoint_file=None)
    assert AuditRecord.objects.filter(action__startswith="test.worker").count() == 60
    assert report.ok and report.records_checked == AuditRecord.objects.count()


def test_target_organization_label_survives_deletion(db, department, official):
    with transaction.atomic():
        audit.record("kernel.organization.delete", actor=official, target=department)
        official.delete()
        Organization.objects.filter(pk=department.pk).delete()
    entry = AuditRecord.objects.get()
    assert entry.target_label == "山东省公安厅" and entry.actor_id
    assert audit.verify().ok


def test_admin_shows_records_read_only(chain, client, django_user_model):
    admin = django_user_model.objects.create_superuser("auditor", "a@example.org", "Dgov-test-passw0rd")
    client.force_login(admin)
    listing = client.get("/admin/kernel/auditrecord/")
    assert listing.status_code == 200 and chain[TOTAL].action in listing.content.decode()
    assert client.get(f"/admin/kernel/auditrecord/{TOTAL}/change/").status_code == 200
    assert client.get("/admin/kernel/auditrecord/add/").status_code == 403
    assert client.post(f"/admin/kernel/auditrecord/{TOTAL}/delete/").status_code == 403
    assert client.get("/admin/kernel/auditcheckpoint/").status_code == 200
    assert audit.verify().ok
