"""``dgov audit verify|checkpoint|tail`` through call_command."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from dgov.kernel.models import AuditCheckpoint, AuditRecord
from dgov.kernel.services import audit


@pytest.fixture(autouse=True)
def checkpoint_settings(settings, tmp_path):
    """Checkpoints every 4 records into a file private to the test."""
    settings.AUDIT_CHECKPOINT_EVERY = 4
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "audit-checkpoints.jsonl"


@pytest.fixture
def records(db, django_capture_on_commit_callbacks):
    """Ten audited changes (plus the audited creation of the checkpoint key)."""
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(10):
            with transaction.atomic():
                audit.record("test.widget.update", actor="system:test", detail={"i": i})
    return AuditRecord.objects.count()


def run(*args) -> str:
    """Run ``dgov audit …`` and return what it printed."""
    out = io.StringIO()
    call_command("audit", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_verify_intact(records):
    output = run("verify")
    assert "审计链完整" in output and f"已校验 {records} 条" in output
    assert "最新签名检查点：第 8 条" in output


def test_verify_json(records):
    report = json.loads(run("verify", "--json"))
    assert report["ok"] is True and report["records_checked"] == records
    assert report["first_problem"] is None and report["last_checkpoint"]["seq"] == 8


def test_verify_tampered_exits_1_and_names_the_record(records):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE kernel_auditrecord SET outcome = 'failed' WHERE seq = 6")
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("audit", "verify", stdout=out)
    assert caught.value.returncode == 1
    printed = out.getvalue()
    assert "第 6 条" in printed and "altered" in printed and "test.widget.update" in printed


def test_verify_json_tampered(records):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM kernel_auditrecord WHERE seq = 3")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("audit", "verify", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"] is False
    assert (report["first_problem"]["seq"], report["first_problem"]["kind"]) == (3, "deleted")


def test_verify_from(records):
    assert "第 6 至" in run("verify", "--from", "6")


def test_checkpoint_command(records, django_capture_on_commit_callbacks, settings):
    with django_capture_on_commit_callbacks(execute=True):
        output = run("checkpoint")
    newest = AuditCheckpoint.objects.order_by("-seq").first()
    assert newest.seq == records + 1 and f"第 {newest.seq} 条" in output
    assert AuditRecord.objects.get(seq=newest.seq).actor_label.startswith("system:cli:")
    lines = settings.AUDIT_CHECKPOINT_FILE.read_text().splitlines()
    assert json.loads(lines[-1])["seq"] == newest.seq
    assert audit.verify().ok


def test_tail(records):
    lines = run("tail", "-n", "3").splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"#{records - 2} ") and lines[-1].startswith(f"#{records} ")
    assert "test.widget.update" in lines[-1]
