"""`dgov quality`: rules load (YAML/JSON, all or nothing), list, enable/disable, types, run, scores."""

import io
import json

import pytest
import yaml
from django.core.management import CommandError, call_command

from dgov.kernel.models import AuditRecord
from dgov.quality.models import QualityRule, QualityRun

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("quality", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_load_yaml_then_run_and_read_scores(tmp_path, people, person_rules):
    path = tmp_path / "rules.yaml"
    path.write_text(
        yaml.safe_dump(
            {"registry": "t.person", "rules": [{k: v for k, v in r.items() if k != "registry"} for r in person_rules]},
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    out, _err = run("rules", "load", str(path))
    assert f"新增 {len(person_rules)} 条" in out
    assert QualityRule.objects.count() == len(person_rules)
    out, _err = run("run", "--registry", "t.person", "--samples", "2")
    assert "t.person" in out and "81.67 C" in out and "p.id.unique\t2/8\t75.00%" in out
    run_row = QualityRun.objects.get()
    assert run_row.status == "succeeded" and len(run_row.results.get(rule_code="p.marital").samples) == 2
    assert AuditRecord.objects.filter(action="quality.run.finish", actor_label__startswith="system:cli").exists()
    out, _err = run("scores")
    assert "t.person\t81.67 C" in out and "370000-MZ" in out
    out, _err = run("scores", "--department", "370000-GA")
    assert "87.50 B" in out
    out, _err = run("rules", "list", "--registry", "t.person")
    assert "p.marital" in out and "370000-MZ" in out


def test_bad_rule_set_is_rejected_whole(tmp_path, people):
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            [
                {"code": "a", "registry": "t.person", "name": "好", "type": "not_null", "fields": ["name"]},
                {
                    "code": "b",
                    "registry": "t.person",
                    "name": "坏",
                    "type": "length",
                    "fields": ["name"],
                    "params": {"min": -1},
                },
                {"code": "c", "registry": "t.person", "name": "坏", "type": "in_set", "fields": ["nickname"]},
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as caught:
        run("rules", "load", str(path))
    assert caught.value.returncode == 1
    assert QualityRule.objects.count() == 0
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("quality", "rules", "load", str(path), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert [e["index"] for e in report["errors"]] == [2, 3]
    assert "nickname" in " ".join(report["errors"][1]["messages"])


def test_unreadable_files(tmp_path, people):
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [ {code: x", encoding="utf-8")
    with pytest.raises(CommandError, match="规则集无法读取"):
        run("rules", "load", str(broken))
    with pytest.raises(CommandError, match="无法读取文件"):
        run("rules", "load", str(tmp_path / "missing.yaml"))
    wrong_shape = tmp_path / "shape.yaml"
    wrong_shape.write_text("just: text\n", encoding="utf-8")
    with pytest.raises(CommandError, match="规则集"):
        run("rules", "load", str(wrong_shape))


def test_acting_user_rights_are_checked(tmp_path, users, rules):
    with pytest.raises(CommandError, match="无权"):
        run("rules", "disable", "p.id", "--as", users["ga"].username)
    out, _err = run("rules", "disable", "p.id", "--as", users["dsj"].username)
    assert "已停用规则 p.id" in out and not QualityRule.objects.get(code="p.id").enabled
    with pytest.raises(CommandError, match="无权"):
        run("run", "--registry", "t.person", "--as", users["ga"].username)
    with pytest.raises(CommandError, match="不存在"):
        run("run", "--registry", "t.none")


def test_types_lists_the_library(db):
    out, _err = run("types")
    for name in (
        "not_null",
        "unique",
        "pattern",
        "in_set",
        "range",
        "length",
        "id_number",
        "uscc",
        "division_code",
        "id_birth_date",
        "id_sex",
        "id_region",
        "freshness",
        "reference",
        "accessible",
        "sql",
    ):
        assert f"{name}\t" in out


def test_run_without_rules_fails(db):
    with pytest.raises(CommandError, match="没有启用的质量规则"):
        run("run")
