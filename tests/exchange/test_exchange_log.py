"""The exchange log: chain verification, tamper detection, checkpoints, signed receipts (offline), CLI."""

import copy
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from dgov.exchange import log, services
from dgov.exchange.models import ExchangeCheckpoint, ExchangeLogEntry
from dgov.kernel.crypto import SM2PublicKey

pytestmark = pytest.mark.django_db


def fill(n):
    for i in range(n):
        services.log_exchange(
            operation="read",
            result="ok" if i % 3 else "denied",
            code="" if i % 3 else "no_grant",
            status=200,
            consumer_code="370000-MZT",
            client_id="mz-system",
            provider_code="370000-GAT",
            resource_code="101001000/000001",
            fields=["name"],
            purpose="核验",
            records=[f"uid-{i}"],
        )


def raw(sql, params=()):
    table = connection.ops.quote_name(ExchangeLogEntry._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)


def test_chain_verifies_and_checkpoints_are_signed(settings):
    fill(12)
    report = services.verify_log()
    assert report.ok, report.problems
    assert report.entries_checked == 12 and report.last_seq == 12
    assert list(ExchangeCheckpoint.objects.order_by("seq").values_list("seq", flat=True)) == [5, 10]
    assert report.checkpoints_checked == 2
    assert log.checkpoint().seq == 12


def test_altered_entry_is_detected():
    fill(6)
    raw("UPDATE {table} SET consumer_code = %s WHERE seq = 3", ["370000-RST"])
    report = services.verify_log()
    assert not report.ok and report.problems[0]["seq"] == 3 and report.problems[0]["kind"] == "altered"


def test_rehashed_rewrite_is_caught_by_the_signed_checkpoint():
    fill(6)  # checkpoint at 5
    entries = list(ExchangeLogEntry.objects.order_by("seq"))
    prev = entries[1].hash
    for entry in entries[2:]:  # rewrite 3… and re-hash the rest of the chain
        if entry.seq == 3:
            entry.purpose = "伪造"
        content = log.entry_content(entry)
        content["purpose"] = entry.purpose
        new_hash = log.entry_hash(content, prev)
        raw(
            "UPDATE {table} SET purpose = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            [entry.purpose, prev, new_hash, entry.seq],
        )
        prev = new_hash
    from dgov.exchange.models import ExchangeLogHead

    ExchangeLogHead.objects.filter(pk=1).update(hash=prev)
    report = services.verify_log()
    assert not report.ok and any(p["kind"] == "altered" and p["seq"] == 5 for p in report.problems)


def test_deleted_and_truncated_entries_are_detected():
    fill(7)
    raw("DELETE FROM {table} WHERE seq = 2")
    assert any(p["kind"] == "deleted" for p in services.verify_log().problems)
    raw("DELETE FROM {table} WHERE seq >= 6")
    kinds = {p["kind"] for p in services.verify_log().problems}
    assert "truncated" in kinds


def test_forged_checkpoint_is_detected():
    fill(5)
    cp_table = connection.ops.quote_name(ExchangeCheckpoint._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {cp_table} SET hash = %s WHERE seq = 5", ["0" * 64])  # noqa: S608
    assert any(p["kind"] == "checkpoint-forged" for p in services.verify_log().problems)


def test_receipt_verifies_offline_and_detects_tampering():
    fill(6)
    entry = ExchangeLogEntry.objects.get(seq=3)
    document = json.loads(json.dumps(services.receipt(entry)))  # as downloaded
    assert document["format"] == "dgov-exchange-receipt-v1"
    assert document["chain"]["seq"] == 3 and document["chain"]["hash"] == entry.hash
    assert document["chain"]["checkpoint"]["seq"] == 5
    assert log.verify_receipt(document)
    # by hand, with nothing but the public key: SM2 over the canonical JSON without "signature"
    import base64

    body = {k: v for k, v in document.items() if k != "signature"}
    signed = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    key = SM2PublicKey.from_pem(document["signature"]["public_key"])
    assert key.verify(base64.b64decode(document["signature"]["value"]), signed)

    forged = copy.deepcopy(document)
    forged["entry"]["consumer"] = "370000-RST"
    assert not log.verify_receipt(forged)
    rehashed = copy.deepcopy(forged)
    rehashed["chain"]["hash"] = log.entry_hash(rehashed["entry"], rehashed["chain"]["prev_hash"])
    assert not log.verify_receipt(rehashed)  # the signature covers the hash
    other_key = SM2PublicKey.from_pem(_another_key())
    assert not log.verify_receipt(document, public_key_pem=other_key.to_pem())


def _another_key():
    from dgov.kernel.crypto import SM2PrivateKey

    return SM2PrivateKey.generate().public_key().to_pem()


def test_cli_verify_checkpoint_receipt():
    fill(3)
    out = StringIO()
    call_command("exchange", "verify", stdout=out)
    assert "OK" in out.getvalue()
    out = StringIO()
    call_command("exchange", "checkpoint", stdout=out)
    assert "checkpoint #3" in out.getvalue()
    out = StringIO()
    call_command("exchange", "receipt", "2", stdout=out)
    assert log.verify_receipt(json.loads(out.getvalue()))
    raw("UPDATE {table} SET purpose = %s WHERE seq = 1", ["x"])
    with pytest.raises(SystemExit):
        call_command("exchange", "verify", stdout=StringIO())
