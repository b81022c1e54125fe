"""Quality services: loading rules (all or nothing), permissions, runs, masked samples, scores, audit."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from dgov.kernel.models import AuditRecord
from dgov.quality import services
from dgov.quality.models import QualityRule, QualityRun, RuleResult

pytestmark = pytest.mark.django_db


def _outcomes(run):
    return {r.rule_code: (r.checked, r.failed) for r in run.results.all()}


def test_run_counts_every_rule_in_one_pass(finished_run, people, person_rules):
    assert finished_run.rows == 8 and finished_run.rule_count == len(person_rules)
    assert _outcomes(finished_run) == {
        "p.id": (8, 1),
        "p.id.unique": (8, 2),
        "p.name": (8, 1),
        "p.sex": (8, 1),
        "p.birth": (8, 1),
        "p.division": (8, 1),
        "p.household": (8, 1),
        "p.marital": (8, 8),
        "p.fresh": (1, 0),
    }
    assert finished_run.dimension_scores == {
        "conformity": 87.5,
        "completeness": 58.33,
        "accuracy": 75.0,
        "consistency": 87.5,
        "timeliness": 100.0,
    }
    assert finished_run.score == Decimal("81.67") and finished_run.grade == "C"


def test_samples_name_the_failing_records_with_personal_values_masked(finished_run, people):
    from dgov.registry.models import Record

    uids = {r.data["person_no"]: str(r.uid) for r in Record.objects.filter(registry=finished_run.registry)}
    result = finished_run.results.get(rule_code="p.id")
    [sample] = result.samples
    assert sample["uid"] == uids["P2"] and sample["division"] == "370103"
    assert sample["values"]["id_number"] != people["P2"]["id_number"]
    assert sample["values"]["id_number"].startswith("370102") and "*" in sample["values"]["id_number"]
    unique = finished_run.results.get(rule_code="p.id.unique")
    assert sorted(s["uid"] for s in unique.samples) == sorted([uids["P1"], uids["P6"]])
    sex = finished_run.results.get(rule_code="p.sex")
    assert sex.samples[0]["values"]["sex"] == "2"  # not personal: shown as stored
    # Nothing decrypted is stored anywhere in the results.
    for stored in RuleResult.objects.values_list("samples", flat=True):
        assert people["P1"]["id_number"] not in str(stored)


def test_rule_owner_is_the_fields_authoritative_source(rules, orgs):
    assert QualityRule.objects.get(code="p.id").owner == orgs["ga"]
    assert QualityRule.objects.get(code="p.marital").owner == orgs["mz"]  # authority MZ
    assert QualityRule.objects.get(code="p.fresh").owner == orgs["ga"]  # no field: the registry owner
    assert QualityRule.objects.get(code="p.id").weight == 3  # severity high
    assert QualityRule.objects.get(code="p.marital").weight == 1


def test_department_scorecards(finished_run, orgs, users):
    ga = services.department_scorecard(orgs["ga"], actor=users["ga"])
    assert ga.summary.score == Decimal("87.50") and ga.summary.grade == "B"
    assert [registry.code for registry, _run, _s in ga.registries] == ["t.person"]
    mz = services.department_scorecard(orgs["mz"], actor=users["dsj"])
    assert mz.summary.score == Decimal("0.00") and mz.summary.grade == "E"
    with pytest.raises(PermissionDenied):
        services.department_scorecard(orgs["mz"], actor=users["ga"])
    ranking = services.department_scores(users["dsj"])
    assert [(d.code, s.grade) for d, s in ranking] == [("370000-GA", "B"), ("370000-MZ", "E")]
    assert [d.code for d, _s in services.department_scores(users["mz"])] == ["370000-MZ"]


def test_load_is_all_or_nothing_with_every_bad_rule_reported(people):
    bad = [
        {"code": "ok.rule", "registry": "t.person", "name": "好规则", "type": "not_null", "fields": ["name"]},
        {"code": "bad.type", "registry": "t.person", "name": "x", "type": "magic", "fields": ["name"]},
        {"code": "bad.field", "registry": "t.person", "name": "x", "type": "not_null", "fields": ["nickname"]},
        {
            "code": "bad.params",
            "registry": "t.person",
            "name": "x",
            "type": "range",
            "fields": ["birth_date"],
            "params": {"minimum": 1},
        },
        {
            "code": "bad.regex",
            "registry": "t.person",
            "name": "x",
            "type": "pattern",
            "fields": ["name"],
            "params": {"pattern": "(?<=x)y"},
        },
        {"code": "bad.registry", "registry": "t.nothing", "name": "x", "type": "not_null", "fields": ["name"]},
        {"code": "ok.rule", "registry": "t.person", "name": "重复", "type": "not_null", "fields": ["name"]},
        "not a rule",
    ]
    report = services.load_rules(bad, actor="system:test")
    assert not report.ok
    by_index = {index: " ".join(messages) for index, _code, messages in report.errors}
    assert set(by_index) == {2, 3, 4, 5, 6, 7, 8}
    assert "未知的规则类型" in by_index[2]
    assert "nickname" in by_index[3]
    assert "未知的参数" in by_index[4]
    assert "规则无法执行" in by_index[5]
    assert "t.nothing" in by_index[6]
    assert "重复" in by_index[7]
    assert QualityRule.objects.count() == 0
    assert "未做任何修改" in report.to_text()


def test_reload_updates_changed_rules_and_audits_each_change(rules, person_rules):
    changed = person_rules
    changed[0]["severity"] = "low"
    changed[0]["weight"] = 1
    report = services.load_rules(changed, actor="system:test")
    assert report.updated == ["p.id"] and len(report.unchanged) == len(person_rules) - 1
    assert QualityRule.objects.get(code="p.id").weight == 1
    update = AuditRecord.objects.filter(action="quality.rule.update").get()
    assert update.target_label.startswith("p.id") and "weight" in update.detail_json
    assert AuditRecord.objects.filter(action="quality.rule.create").count() == len(person_rules)
    assert AuditRecord.objects.filter(action="quality.rules.load").count() == 2


def test_dry_run_writes_nothing(people, person_rules):
    report = services.load_rules(person_rules, actor="system:test", dry_run=True)
    assert report.ok and len(report.created) == len(person_rules)
    assert QualityRule.objects.count() == 0


def test_who_may_manage_rules_and_custom_sql(people, users, person_rules):
    sql_rule = {
        "code": "p.custom",
        "registry": "t.person",
        "name": "自定义",
        "type": "sql",
        "dimension": "准确性",
        "sql": "SELECT _uid FROM records WHERE name = '张三'",
    }
    with pytest.raises(PermissionDenied):
        services.load_rules(person_rules, actor=users["ga"])
    with pytest.raises(PermissionDenied):
        services.load_rules(person_rules, actor=users["dsj_city"])
    assert AuditRecord.objects.filter(action="quality.rules.load", outcome="denied").count() == 2
    report = services.load_rules([sql_rule], actor=users["dsj"])
    assert not report.ok and "平台管理员" in report.errors[0][2][0]
    assert services.load_rules(person_rules, actor=users["dsj"]).ok
    assert services.load_rules([sql_rule], actor=users["admin"]).ok
    rule = QualityRule.objects.get(code="p.custom")
    assert rule.dimension == "accuracy"
    with pytest.raises(PermissionDenied):
        services.set_rule_enabled(rule, False, actor=users["dsj"])
    run = services.run_registry(rule.registry, actor=users["dsj"])
    assert run.results.get(rule_code="p.custom").failed == 2


def test_custom_sql_must_be_one_read_only_select(people, users):
    for sql in ("DELETE FROM records", "SELECT 1; SELECT 2", "SELECT _uid FROM nowhere", "SELECT 1 AS x FROM records"):
        rule = {
            "code": "p.custom",
            "registry": "t.person",
            "name": "x",
            "type": "sql",
            "dimension": "accuracy",
            "sql": sql,
        }
        assert not services.load_rules([rule], actor=users["admin"]).ok, sql


def test_disabled_rules_are_not_run(rules, registries, users):
    services.set_rule_enabled(QualityRule.objects.get(code="p.marital"), False, actor=users["dsj"])
    run = services.run_registry(registries["person"], actor=users["dsj"])
    assert "p.marital" not in _outcomes(run)
    assert AuditRecord.objects.filter(action="quality.rule.disable").count() == 1
    with pytest.raises(PermissionDenied):
        services.set_rule_enabled(QualityRule.objects.get(code="p.id"), False, actor=users["ga"])


def test_failed_run_keeps_earlier_results(finished_run, registries):
    from django.db import connection

    from dgov.registry.models import Record

    record = Record.objects.filter(registry=registries["person"]).order_by("id").first()
    with connection.cursor() as cursor:  # a sealed value under a key that does not exist
        cursor.execute(f"UPDATE {Record._meta.db_table} SET sealed = %s WHERE id = %s", ["v1:lost-key:AAAA", record.pk])
    failed = services.run_registry(registries["person"], actor="system:test")
    assert failed.status == QualityRun.Status.FAILED
    assert "无法解密" in failed.error and str(record.uid) in failed.error
    assert failed.results.count() == 0
    assert services.latest_run(registries["person"]) == finished_run
    assert AuditRecord.objects.filter(action="quality.run.finish", outcome="failed").count() == 1


def test_malformed_stored_values_fail_the_run_clearly(rules, registries):
    from dgov.registry.models import Record

    record = Record.objects.filter(registry=registries["person"]).order_by("id").first()
    Record.objects.filter(pk=record.pk).update(sealed="this is not JSON")  # encrypted, but not an object
    failed = services.run_registry(registries["person"], actor="system:test")
    assert failed.status == QualityRun.Status.FAILED and "无法读取" in failed.error


def test_run_refused_without_rules_or_rights(registries, users, people):
    with pytest.raises(ValidationError):
        services.run_registry(registries["person"], actor="system:test")
    with pytest.raises(PermissionDenied):
        services.run_registry(registries["person"], actor=users["ga"])


def test_freshness_fails_for_a_stale_registry(rules, registries):
    import datetime

    from django.utils import timezone

    from dgov.registry.models import Record

    Record.objects.filter(registry=registries["person"]).update(updated_at=timezone.now() - datetime.timedelta(days=3))
    run = services.run_registry(registries["person"], actor="system:test")
    fresh = run.results.get(rule_code="p.fresh")
    assert (fresh.checked, fresh.failed) == (1, 1)
    assert fresh.samples[0]["values"]["allowed_days"] == 1


def test_samples_follow_the_readers_division(finished_run, users):
    result = finished_run.results.get(rule_code="p.id")
    assert len(services.run_samples(finished_run, result, users["dsj"])) == 1
    assert services.run_samples(finished_run, result, users["ga_lixia"]) == []  # P2 lives in 370103
    division = finished_run.results.get(rule_code="p.division")
    assert services.run_samples(finished_run, division, users["ga_lixia"]) == []  # 379999
    household = finished_run.results.get(rule_code="p.household")
    assert len(services.run_samples(finished_run, household, users["ga_lixia"])) == 1
    assert not services.can_view_registry(users["wj"], finished_run.registry)


def test_resource_rules_and_scores(people, orgs, users):
    from dgov.catalog import services as catalog_services

    catalog_services.ensure_standard_classes(actor="system:test")
    from dgov.catalog.models import ResourceClass

    resource = catalog_services.create_resource(
        actor=users["ga"],
        classification=ResourceClass.objects.get(code="101001"),
        data={
            "name": "人口基本信息",
            "summary": "人口基本信息，包括公民身份号码、姓名。",
            "format": "database",
            "sharing_type": "conditional",
            "sharing_conditions": "依法履职需要",
            "sharing_mode": "api",
            "open_type": "none",
            "update_cycle": "daily",
        },
        items=[
            {"registry": "t.person", "registry_field": "id_number", "code": "gmsfhm", "sharing_type": "conditional"},
            {"registry": "t.person", "registry_field": "name", "code": "xm", "sharing_type": "conditional"},
        ],
    )
    rules = [
        {"code": "r.id", "resource": resource.code, "name": "身份证号码", "type": "id_number", "fields": ["gmsfhm"]},
        {"code": "r.fresh", "resource": resource.code, "name": "按更新周期更新", "type": "freshness"},
        {"code": "r.access", "resource": resource.code, "name": "可访问", "type": "accessible"},
        {"code": "p.name", "registry": "t.person", "name": "姓名必填", "type": "not_null", "fields": ["name"]},
        {"code": "p.sex", "registry": "t.person", "name": "性别", "type": "in_set", "fields": ["sex"]},
    ]
    report = services.load_rules(rules, actor="system:test")
    assert report.ok, report.to_text()
    rule = QualityRule.objects.get(code="r.id")
    assert rule.fields == ["id_number"] and rule.registry.code == "t.person" and rule.owner == orgs["ga"]
    assert QualityRule.objects.get(code="r.fresh").owner == orgs["ga"]  # the provider
    run = services.run_registry(rule.registry, actor="system:test")
    assert run.status == "succeeded", run.error
    outcomes = _outcomes(run)
    assert outcomes["r.id"] == (8, 1) and outcomes["r.fresh"] == (1, 0)
    assert outcomes["r.access"] == (1, 1)  # a draft entry is not accessible
    _run, summary, results = services.resource_score(resource)
    assert sorted(r.rule_code for r in results) == ["p.name", "r.access", "r.fresh", "r.id"]  # not p.sex
    assert summary.dimensions["accessibility"] == Decimal("0.00")
    bad = {"code": "r.bad", "resource": resource.code, "name": "x", "type": "not_null", "fields": ["sex"]}
    report = services.load_rules([bad], actor="system:test")
    assert "信息项" in report.errors[0][2][0]
