"""Stored linkage runs over registries (数据比对): settings, execution, golden records, permissions, audit, CLI."""

import io
import json

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from linkage_run_fixtures import *  # noqa: F403
from linkage_run_fixtures import insured_rows, person_rows, pid

from dgov.kernel.models import AuditRecord
from dgov.linkage import services
from dgov.linkage.config import LinkageConfigError
from dgov.linkage.models import GoldenRecord, LinkageRun
from dgov.linkage.registry_config import parse_registry_settings
from dgov.registry.models import Record


def _run(settings_data, actor="system:test"):
    run = services.run_settings_now(settings_data, actor=actor)
    assert run.status == LinkageRun.Status.SUCCEEDED, run.error
    return run


def _uid(registry, field, value) -> str:
    """The uid of the record whose ``field`` has ``value`` (public fields only)."""
    return str(Record.objects.get(registry=registry, **{f"data__{field}": value}).uid)


@pytest.fixture
def clean(registries, orgs):
    """Both registries written, the enrolments agreeing with the population registry."""
    from dgov.registry import services as registry_services

    registry_services.bulk_create_records(registries["person"], person_rows(), actor="system:test", source=orgs["ga"])
    registry_services.bulk_create_records(
        registries["insured"], insured_rows({}), actor="system:test", source=orgs["rs"]
    )
    return registries


# --- settings ------------------------------------------------------------------------------------------------


def test_authority_follows_the_registries_and_may_be_overridden(registries, settings_data):
    plan = parse_registry_settings(settings_data)
    # Both registries' owners are the authority of their own name field; t.insured refers to t.person.
    assert plan.authority == {
        "full_name": "person",
        "birth_date": "person",
        "identifier": "person",
        "sex": "person",
        "phone": "person",
    }
    settings_data["golden"] = {"authority": {"phone": "insured"}}
    plan = parse_registry_settings(settings_data)
    assert plan.authority["phone"] == "insured" and plan.authority_overridden == ["phone"]


def test_equal_sources_need_an_explicit_authority(registries, settings_data):
    settings_data["tables"][1] = {
        "name": "person_b",
        "registry": "t.person",
        "division": "370103",
        "fields": {"name": "full_name", "id_number": "identifier"},
    }
    with pytest.raises(LinkageConfigError, match="golden.authority.*full_name"):
        parse_registry_settings(settings_data)
    settings_data["golden"] = {"authority": {"full_name": "person", "identifier": "person"}}
    assert parse_registry_settings(settings_data).authority["full_name"] == "person"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("name"), "name：缺少比对名称"),
        (lambda s: s.update(colour="red"), "未知的键 colour"),
        (lambda s: s["tables"][0].update(registry="t.nothing"), "tables 第 1 项：信息库“t.nothing”不存在"),
        (lambda s: s["tables"][1].pop("registry"), "tables 第 2 项：缺少 registry"),
        (lambda s: s["tables"][1]["fields"].update(nickname="full_name"), "字段“nickname”不是信息库 t.insured 的字段"),
        (lambda s: s["tables"][1]["fields"].update(phone="mobile"), "字段“phone”的角色“mobile”无效"),
        (lambda s: s["tables"][0].update(filter={"status": "alive"}), "filter.status：alive 不是可选值"),
        (lambda s: s["tables"][0].update(filter={"id_number": "1"}), "个人信息字段“id_number”不能用于筛选"),
        (lambda s: s["tables"][0].update(division="Jinan"), "division 应为行政区划代码"),
        (lambda s: s.update(threshold=1.5), "threshold"),
        (lambda s: s.update(mode="merge"), "mode"),
        (lambda s: s.update(golden={"authority": {"phone": "nowhere"}}), "golden.authority：角色“phone”的权威来源"),
        (lambda s: s.update(blocking=[["shoe_size"]]), "blocking：键“shoe_size”无效"),
    ],
)
def test_bad_settings_name_the_key(registries, settings_data, change, message):
    change(settings_data)
    with pytest.raises(LinkageConfigError, match=message):
        services.start_run(settings_data, actor="system:test")
    assert not LinkageRun.objects.exists()


def test_settings_text_must_be_yaml_mapping():
    with pytest.raises(LinkageConfigError, match="YAML"):
        services.parse_settings_text("name: [unclosed")
    with pytest.raises(LinkageConfigError, match="键值映射"):
        services.parse_settings_text("- a\n- b\n")


# --- runs ----------------------------------------------------------------------------------------------------


def test_run_stores_golden_records_from_the_authority_with_lineage(clean, settings_data):
    run = _run(settings_data)
    metrics = run.metrics
    assert metrics["records"] == {"person": 7, "insured": 6}  # the deceased person is filtered out
    assert metrics["records_read"] == {"person": 8, "insured": 6}
    assert (metrics["matches"], metrics["clusters"], metrics["linked_clusters"]) == (6, 7, 6)
    assert metrics["golden_records"] == GoldenRecord.objects.filter(run=run).count() == 7
    assert metrics["conflicts"] == 0 and metrics["findings"] == []
    assert {"extract", "blocking", "em", "golden", "store", "total"} <= set(metrics["seconds"])
    assert metrics["authority"]["full_name"] == {
        "table": "person",
        "registry": "t.person",
        "field": "name",
        "overridden": False,
    }

    person = _uid(clean["person"], "person_no", "P2")
    enrolment = _uid(clean["insured"], "enrolment_no", "E2")
    record = GoldenRecord.objects.get(run=run, member_count=2, lineage__identifier=f"person:{person}")
    assert json.loads(record.values) == {
        "full_name": "李四",
        "identifier": pid(13),
        "sex": "1",
        "birth_date": "1990-01-01",
        "phone": "13800000002",
    }
    assert set(record.lineage.values()) == {f"person:{person}"}
    assert sorted(record.members) == sorted([f"person:{person}", f"insured:{enrolment}"])
    assert record.conflict_roles == [] and record.conflicts == ""
    audit = AuditRecord.objects.filter(action="linkage.run.succeed", target_id=str(run.pk)).get()
    assert json.loads(audit.detail_json)["golden_records"] == 7
    assert AuditRecord.objects.filter(action="linkage.run.request", target_id=str(run.pk)).exists()


def test_conflicts_are_recorded_on_the_golden_record(clean, settings_data, orgs):
    from dgov.registry import services as registry_services

    enrolment = Record.objects.get(registry=clean["insured"], data__enrolment_no="E3")
    registry_services.update_record(enrolment, {"phone": "13900000003"}, actor="system:test", source=orgs["rs"])
    settings_data["name"] = "no-findings"  # the same data, the orders are the other test file's subject
    plan_run = services.start_run(settings_data, actor="system:test")
    from unittest import mock

    with mock.patch.object(services, "_raise_findings", return_value=[]):
        run = services.execute_run(plan_run, actor="system:test")
    assert run.status == "succeeded", run.error
    assert run.metrics["conflicts"] == 1
    assert run.metrics["conflicts_by_role"] == {"phone": {"differs": 1}}
    record = GoldenRecord.objects.get(run=run, conflict_roles=["phone"])
    assert json.loads(record.values)["phone"] == "13800000003"  # the authority's value, not the newer copy
    (conflict,) = json.loads(record.conflicts)
    assert conflict["kind"] == "differs" and conflict["table"] == "insured"
    assert conflict["value"] == "13900000003" and conflict["reference_value"] == "13800000003"
    assert conflict["uid"] == str(enrolment.uid)


def test_values_and_conflicts_are_sealed_at_rest(clean, settings_data, orgs):
    from unittest import mock

    from dgov.registry import services as registry_services

    enrolment = Record.objects.get(registry=clean["insured"], data__enrolment_no="E2")
    registry_services.update_record(enrolment, {"name": "李泗"}, actor="system:test", source=orgs["rs"])
    with mock.patch.object(services, "_raise_findings", return_value=[]):
        run = _run(settings_data)
    assert run.metrics["conflicts"] == 1
    table = connection.ops.quote_name(GoldenRecord._meta.db_table)
    values_column = connection.ops.quote_name("values")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {values_column}, conflicts, identifier_index FROM {table} WHERE run_id = %s", [run.pk])
        rows = cursor.fetchall()
    assert len(rows) == 7
    for values, conflicts, index in rows:
        assert values.startswith("v1:") and "李四" not in values and "1990-01-01" not in values
        assert conflicts == "" or (conflicts.startswith("v1:") and "李泗" not in conflicts)
        assert len(index) == 64 and index not in {pid(seq) for seq in (11, 13, 15)}
    assert sum(1 for row in rows if row[1]) == 1
    assert not any(pid(13) in str(row) or "李泗" in str(row) for row in rows)


def test_find_by_identifier_uses_the_blind_index_and_is_audited(clean, settings_data, users):
    run = _run(settings_data)
    found = list(services.find_golden_records(run, actor=users["dsj"], identifier=pid(13)))
    assert len(found) == 1 and json.loads(found[0].values)["full_name"] == "李四"
    assert not services.find_golden_records(run, actor=users["dsj"], identifier=pid(99)).exists()
    assert list(services.find_golden_records(run, actor=users["dsj"], cluster=found[0].cluster)) == found
    searches = AuditRecord.objects.filter(action="linkage.golden.search")
    assert searches.count() == 2 and pid(13) not in "".join(searches.values_list("detail_json", flat=True))


def test_golden_record_view_is_masked_and_audited(clean, settings_data, users):
    run = _run(settings_data)
    record = GoldenRecord.objects.get(run=run, lineage__identifier__startswith="person:", member_count=2, cluster=1)
    view = services.golden_record_view(run, record.cluster, actor=users["dsj"])
    shown = {row["role"]: row["value"] for row in view.values}
    assert shown["identifier"] == pid(13)[:6] + "********" + pid(13)[-4:]
    assert shown["full_name"] == "李*" and shown["phone"] != "13800000002"
    assert shown["sex"] == "1"  # a public field is shown as stored
    assert all(row["source"]["table"] == "person" and row["source"]["may_open"] for row in view.values)
    assert {m["table"] for m in view.members} == {"person", "insured"}
    audit = AuditRecord.objects.filter(action="linkage.golden.view").get()
    assert audit.target_id == str(record.pk) and json.loads(audit.detail_json) == {"run": run.pk, "cluster": 1}


def test_failed_run_keeps_the_earlier_runs(clean, settings_data):
    first = _run(settings_data)
    second = services.start_run(settings_data, actor="system:test")
    LinkageRun.objects.filter(pk=second.pk).update(
        settings={**settings_data, "tables": [{**settings_data["tables"][0], "registry": "t.gone"}]}
    )
    second.refresh_from_db()
    failed = services.execute_run(second, actor="system:test")
    assert failed.status == "failed" and "t.gone" in failed.error and failed.finished_at is not None
    assert not GoldenRecord.objects.filter(run=failed).exists()
    assert GoldenRecord.objects.filter(run=first).count() == 7
    assert AuditRecord.objects.filter(action="linkage.run.fail", target_id=str(failed.pk), outcome="failed").exists()
    assert services.execute_run(failed).status == "failed"  # not queued any more: left as it is


def test_dedupe_of_one_registry(clean, orgs):
    from dgov.registry import services as registry_services

    registry_services.bulk_create_records(
        clean["insured"],
        [{"enrolment_no": "E9", "id_number": pid(11), "name": "張三", "division_code": "370102"}],
        actor="system:test",
        source=orgs["rs"],
    )
    run = _run(
        {
            "name": "参保查重",
            "tables": [{"registry": "t.insured", "fields": {"name": "full_name", "id_number": "identifier"}}],
        }
    )
    assert run.mode == "dedupe" and run.metrics["matches"] == 1 and run.metrics["golden_records"] == 6
    assert run.metrics["tables"] == {"t.insured": "t.insured"}


# --- permissions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["ga", "rs", "dsj_city", "ga_lixia", "citizen"])
def test_only_provincial_data_administrators_start_runs(clean, settings_data, users, who):
    with pytest.raises(PermissionDenied):
        services.start_run(settings_data, actor=users[who])
    assert not LinkageRun.objects.exists()
    assert AuditRecord.objects.filter(action="linkage.run.request", outcome="denied").count() == 1


def test_provincial_data_administrators_and_admins_start_runs(clean, settings_data, users):
    assert services.start_run(settings_data, actor=users["dsj"]).requested_by == "l-dsj"
    assert services.start_run(settings_data, actor=users["admin"]).status == "queued"


def test_who_sees_a_run(clean, settings_data, users):
    run = _run(settings_data)
    allowed = {key for key in users if services.can_view_run(users[key], run)}
    # GA reads t.person but not t.insured, RS the reverse; a county bureau reads only its division.
    assert allowed == {"dsj", "dsj_city", "admin"}
    assert services.visible_runs(users["ga"]) == [] and services.visible_runs(users["dsj"]) == [run]
    with pytest.raises(PermissionDenied):
        services.find_golden_records(run, actor=users["ga"])
    with pytest.raises(PermissionDenied):
        services.golden_record_view(run, 0, actor=users["rs"])


# --- CLI -----------------------------------------------------------------------------------------------------


def _cli(*args) -> str:
    out = io.StringIO()
    call_command("link", *args, stdout=out)
    return out.getvalue()


def test_cli_runs_a_settings_file_and_lists_runs(clean, settings_data, tmp_path, users):
    import yaml

    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings_data, allow_unicode=True), encoding="utf-8")
    output = _cli("run", str(path))
    assert "数据比对 #" in output and "黄金记录 7 条" in output and "person (t.person): 7" in output
    run = LinkageRun.objects.get()
    assert run.status == "succeeded" and run.requested_by.startswith("system:cli")
    assert "黄金记录 7 条" in _cli("--registry-config", str(path))
    listing = _cli("runs")
    assert listing.count("人口-参保比对") == 2 and "succeeded" in listing
    with pytest.raises(CommandError, match="只有省级数据管理员"):
        _cli("run", str(path), "--as", users["ga"].username)
    path.write_text("name: x\ntables: []\n", encoding="utf-8")
    with pytest.raises(CommandError, match="tables"):
        _cli("run", str(path))
    with pytest.raises(CommandError, match="不存在"):
        _cli("run", str(tmp_path / "missing.yaml"))
    with pytest.raises(CommandError, match="请给出其中之一"):
        _cli()
    with pytest.raises(CommandError, match="请给出其中之一"):
        _cli("runs", "--config", str(path))


def test_cli_demo_settings_need_the_demo_registries(db):
    with pytest.raises(CommandError, match="population.person"):
        _cli("run", "--demo")


def test_a_table_without_records_fails_the_run_clearly(clean, settings_data):
    settings_data["tables"][1]["division"] = "370103"
    run = services.run_settings_now(settings_data, actor="system:test")
    assert run.status == "failed" and "表 insured：信息库“t.insured”没有符合条件的记录（读取 6 条）" in run.error


def test_the_shipped_demo_settings_fit_the_demo_libraries():
    from pathlib import Path

    import dgov.registry

    data = services.parse_settings_text(services.DEMO_SETTINGS.read_text(encoding="utf-8"))
    libraries = Path(dgov.registry.__file__).parent / "libraries"
    fields = {}
    for name in ("population.json", "social_security.json"):
        for registry in json.loads((libraries / name).read_text(encoding="utf-8"))["registries"]:
            fields[registry["code"]] = {field["name"]: field for field in registry["fields"]}
    assert [t["registry"] for t in data["tables"]] == ["population.person", "social_security.insured"]
    for table in data["tables"]:
        assert set(table["fields"]) <= set(fields[table["registry"]])
        for name, value in (table.get("filter") or {}).items():
            choices = [c["value"] if isinstance(c, dict) else c for c in fields[table["registry"]][name]["choices"]]
            assert value in choices
