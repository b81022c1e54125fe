"""Bulk writes: rows prepared with keys looked up once (also in an import's worker process), clashes found while
inserting, and SQLite's page cache during a load."""

import csv

import pytest
from django.db import connection
from engine_fixtures import *  # noqa: F403
from engine_fixtures import pid

from dgov.kernel.fields import blind_index, blind_index_key
from dgov.registry import bulk, services
from dgov.registry import io as registry_io
from dgov.registry.models import Record, RecordKey
from dgov.registry.schema import RecordValidationError


def person_values(seq, **extra):
    """Minimal valid person values of 历下区 (cleaned form)."""
    return {"id_number": pid(seq), "name": "王五", "division": "370102", **extra}


def test_blind_index_with_a_key_looked_up_once_equals_the_default(db):
    key = blind_index_key()
    for value, purpose in (("37010219900101123x", "resident_id"), ("138 1234-5678", "phone"), ("甲", "x.name")):
        assert blind_index(value, purpose=purpose, key=key) == blind_index(value, purpose=purpose)
    assert blind_index("1", purpose="x.a", key=b"k" * 16) != blind_index("1", purpose="x.a", key=b"j" * 16)


def test_clash_with_an_earlier_batch_and_a_stored_record_writes_nothing(person, person_registry, officials):
    rows = [
        person_values(300),
        person_values(301),
        person_values(302),
        person_values(300),  # row 4: held by row 1, written with the first batch
        person_values(11),  # row 5: held by the stored person (batch 3, after writing stopped)
        person_values(303),
        person_values(302),  # row 7: a repeat of row 3, whose batch was not written
    ]
    with pytest.raises(RecordValidationError) as excinfo:
        services.bulk_create_records(person_registry, rows, actor=officials["ga"], source=None, batch_size=2)
    errors = excinfo.value.errors
    assert set(errors) == {"row 4: id_number", "row 5: id_number", "row 7: id_number"}
    assert "已存在" in errors["row 4: id_number"][0] and "已存在" in errors["row 5: id_number"][0]
    assert len(errors["row 7: id_number"]) == 1 and "第 3 行" in errors["row 7: id_number"][0]
    assert Record.objects.count() == 1 and RecordKey.objects.count() == 2


def test_rows_prepared_elsewhere_are_stored_as_prepared_unless_their_keys_are_stale(person_registry, officials):
    fields = services.registry_fields(person_registry)
    sealer = bulk.RowSealer(person_registry.code, fields)
    keys = sealer.keys()
    fresh = person_values(400, phone="13900000400", address="历下区甲路1号")
    stale_values = person_values(401, phone="13900000401")
    stale = sealer.prepare(stale_values, keys)._replace(
        keys=(("id_number", "0" * 64, True),), sealed="v1:old:AAAA", index_kid="old", pii_kid="old"
    )
    rows = [(2, fresh, sealer.prepare(fresh, keys)), (3, stale_values, stale)]
    assert services.bulk_create_records(person_registry, rows, actor=officials["ga"], source=None, validate=False) == 2
    for values in (fresh, stale_values):
        record = services.find_record(person_registry, "id_number", values["id_number"])
        assert services.record_values(record) == values
        assert services.find_record(person_registry, "phone", values["phone"]) == record
    assert not RecordKey.objects.filter(digest="0" * 64).exists()


def test_worker_process_prepares_what_the_writer_stores(person_registry, officials, tmp_path):
    path = tmp_path / "persons.csv"
    rows = [person_values(500 + i, phone=f"1390000{500 + i:04d}", address=f"泉城路{i}号") for i in range(30)]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id_number", "name", "division", "phone", "address"])
        for row in rows:
            writer.writerow([row["id_number"], row["name"], row["division"], row["phone"], row["address"]])
    report = registry_io.import_file(
        person_registry, path, mapping=None, actor=officials["ga"], parallel=True, batch_size=7
    )
    assert report.ok and report.imported == 30
    for row in rows[::7]:
        record = services.find_record(person_registry, "phone", row["phone"])
        assert services.record_values(record) == row
        with connection.cursor() as cursor:
            cursor.execute("SELECT sealed FROM registry_record WHERE id = %s", [record.pk])
            stored = cursor.fetchone()[0]
        assert stored.startswith("v1:") and row["phone"] not in stored
    again = registry_io.import_file(person_registry, path, mapping=None, actor=officials["ga"], parallel=True)
    assert {e.line for e in again.errors} == set(range(2, 32)) and Record.objects.count() == 30


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite page cache")
def test_sqlite_page_cache_is_enlarged_only_during_a_bulk_load(db):
    def cache_size():
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            return cursor.fetchone()[0]

    before = cache_size()
    with bulk.sqlite_bulk_cache(kib=abs(before) * 8 + 4096):
        assert cache_size() == -(abs(before) * 8 + 4096)
    assert cache_size() == before
    with bulk.sqlite_bulk_cache(kib=1):  # already larger: left alone
        assert cache_size() == before
