"""Loading a registry for a quality run: the database renders the lines, workers decrypt, results are unchanged."""

import datetime

import pytest

from dgov.quality import extract, services
from dgov.quality.models import QualityRun

pytestmark = pytest.mark.django_db


def _results(run):
    """Per rule: (checked, failed, sample uids, sample values) — everything a run stores about the rows."""
    return {
        r.rule_code: (r.checked, r.failed, [s["uid"] for s in r.samples], [s["values"] for s in r.samples])
        for r in run.results.all()
    }


@pytest.fixture
def workers(settings, monkeypatch):
    """Decryption in two worker processes from the first record on; counts the worker pools started."""
    settings.QUALITY_EXTRACT_WORKERS = 2
    settings.QUALITY_EXTRACT_PARALLEL_MIN = 0
    started = []
    original = extract._Workers.__init__

    def spy(self, registry, paths):
        started.append(len(paths))
        original(self, registry, paths)

    monkeypatch.setattr(extract._Workers, "__init__", spy)
    return started


def test_workers_give_the_same_results_as_decrypting_in_process(rules, registries, settings, workers):
    settings.QUALITY_EXTRACT_WORKERS = 0
    serial = services.run_registry(registries["person"], actor="system:test")
    assert workers == []
    settings.QUALITY_EXTRACT_WORKERS = 2
    parallel = services.run_registry(registries["person"], actor="system:test")
    assert workers == [2]
    assert serial.status == parallel.status == QualityRun.Status.SUCCEEDED
    assert _results(parallel) == _results(serial)
    assert (parallel.score, parallel.rows) == (serial.score, serial.rows) and parallel.rows == 8


def test_loaded_rows_keep_the_stored_values_uids_and_times(people, registries, workers, tmp_path):
    from dgov.registry import services as registry_services
    from dgov.registry.models import Record

    fields = registry_services.registry_fields(registries["person"])
    con = extract.open_connection(tmp_path)
    try:
        assert extract.load_registry(con, registries["person"], fields, tmp_path) == 8
        rows = con.execute(
            "SELECT _uid, _division, _created_at, _updated_at, person_no, id_number, name FROM records ORDER BY _id"
        ).fetchall()
    finally:
        con.close()
    assert workers == [2]
    assert list(tmp_path.glob("*.ndjson")) == []  # decrypted files are gone once loaded
    stored = Record.objects.filter(registry=registries["person"]).order_by("id")
    for row, record in zip(rows, stored, strict=True):
        uid, division, created, updated, person_no, id_number, name = row
        assert uid == str(record.uid) and division == record.division_code
        assert created == record.created_at and updated == record.updated_at
        assert created.tzinfo is not None and created.utcoffset() == datetime.timedelta(hours=8)  # shown locally
        assert (person_no, id_number, name) == (
            people[person_no]["person_no"],
            people[person_no]["id_number"],
            people[person_no].get("name"),
        )


def test_a_worker_reports_the_record_it_cannot_decrypt(rules, registries, workers):
    from django.db import connection

    from dgov.registry.models import Record

    record = Record.objects.filter(registry=registries["person"]).order_by("-id").first()
    with connection.cursor() as cursor:  # a sealed value under a key that does not exist
        cursor.execute(f"UPDATE {Record._meta.db_table} SET sealed = %s WHERE id = %s", ["v1:lost-key:AAAA", record.pk])
    failed = services.run_registry(registries["person"], actor="system:test")
    assert workers == [2]
    assert failed.status == QualityRun.Status.FAILED
    assert "无法解密" in failed.error and str(record.uid) in failed.error and "lost-key" in failed.error


def test_a_forged_value_fails_the_run_in_a_worker(rules, registries, workers):
    from django.db import connection

    from dgov.registry.models import Record

    record = Record.objects.filter(registry=registries["person"]).order_by("id").first()
    with connection.cursor() as cursor:  # the stored ciphertext, not the field's decrypted value
        cursor.execute(f"SELECT sealed FROM {Record._meta.db_table} WHERE id = %s", [record.pk])
        stored = cursor.fetchone()[0]
        forged = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")  # the tag no longer matches
        cursor.execute(f"UPDATE {Record._meta.db_table} SET sealed = %s WHERE id = %s", [forged, record.pk])
    failed = services.run_registry(registries["person"], actor="system:test")
    assert failed.status == QualityRun.Status.FAILED
    assert "无法解密" in failed.error and str(record.uid) in failed.error


def test_one_core_decrypts_in_process(rules, registries, settings, workers):
    settings.QUALITY_EXTRACT_WORKERS = 1
    run = services.run_registry(registries["person"], actor="system:test")
    assert run.status == QualityRun.Status.SUCCEEDED and workers == []


def test_a_failed_load_leaves_no_decrypted_files(people, registries, workers, tmp_path):
    from django.db import connection

    from dgov.registry import services as registry_services
    from dgov.registry.models import Record

    record = Record.objects.filter(registry=registries["person"]).order_by("-id").first()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Record._meta.db_table} SET sealed = %s WHERE id = %s", ["v1:lost-key:AAAA", record.pk])
    fields = registry_services.registry_fields(registries["person"])
    con = extract.open_connection(tmp_path)
    try:
        with pytest.raises(extract.SourceError, match=str(record.uid)):
            extract.load_registry(con, registries["person"], fields, tmp_path)
    finally:
        con.close()
    assert workers == [2] and list(tmp_path.glob("*.ndjson")) == []


def test_values_of_every_type_load_as_their_stored_json_text(orgs, tmp_path):
    import json

    import duckdb

    from dgov.registry import services as registry_services
    from dgov.registry.models import Record

    fields = [
        {"name": "code", "label": "编号", "type": "string", "authority": "GA"},
        {"name": "count", "label": "数量", "type": "integer", "authority": "GA"},
        {"name": "amount", "label": "金额", "type": "decimal", "authority": "GA"},
        {"name": "active", "label": "有效", "type": "boolean", "authority": "GA"},
        {"name": "day", "label": "日期", "type": "date", "authority": "GA"},
        {"name": "moment", "label": "时间", "type": "datetime", "authority": "GA"},
        {"name": "extra", "label": "附加", "type": "json", "authority": "GA"},
        {"name": "secret", "label": "号码", "type": "string", "sensitivity": "personal", "authority": "GA"},
        {"name": "score", "label": "分值", "type": "integer", "sensitivity": "personal", "authority": "GA"},
    ]
    registry = registry_services.create_registry(
        code="t.typed",
        name="类型",
        owner=orgs["ga"],
        identifier_field="code",
        fields=fields,
        actor="system:test",
        library_code="test",
    )
    rows = [
        {"code": "A", "count": 12, "amount": "1.50", "active": True, "day": "2024-02-29",
         "moment": "2024-02-29T08:30:00+08:00", "extra": {"k": [1, "二"]}, "secret": "甲\"乙", "score": -3},
        {"code": "B", "active": False, "extra": [], "secret": ""},
        {"code": "C"},
    ]  # fmt: skip
    registry_services.bulk_create_records(registry, rows, actor="system:test", source=orgs["ga"])
    definitions = registry_services.registry_fields(registry)
    con = extract.open_connection(tmp_path)
    try:
        extract.load_registry(con, registry, definitions, tmp_path)
        names = [f["name"] for f in fields]
        loaded = {row[0]: row for row in con.execute(f"SELECT {', '.join(names)} FROM records").fetchall()}
    finally:
        con.close()
    for record in Record.objects.filter(registry=registry):
        public = json.dumps(record.data)
        private = record.sealed or "{}"  # the field decrypts on access
        expected = tuple(
            duckdb.execute("SELECT json_extract_string(?, ?)", [private if f["name"] in ("secret", "score") else public,
                                                               f"$.{f['name']}"]).fetchone()[0]
            for f in fields
        )  # fmt: skip
        assert loaded[record.data["code"]] == expected
    assert loaded["A"][1:4] == ("12", "1.5", "true") and loaded["A"][7:] == ('甲"乙', "-3")
