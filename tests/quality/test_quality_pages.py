"""Workbench pages of data quality: overview, registry rules and runs, run results, scorecards, uploads."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from dgov.quality.models import QualityRule, QualityRun

pytestmark = pytest.mark.django_db


def test_overview_lists_registries_and_departments(client, users, finished_run):
    client.force_login(users["dsj"])
    page = client.get("/workbench/quality/").content.decode()
    assert 'data-testid="quality-registries"' in page and "81.67" in page and "t.person" in page
    assert "山东省民政厅" in page and 'data-testid="ruleset-form"' in page
    client.force_login(users["ga"])
    page = client.get("/workbench/quality/").content.decode()
    assert 'data-testid="ruleset-form"' not in page  # not a rule manager
    assert "山东省民政厅" not in page  # another department's scorecard


def test_english_translation(client, users, finished_run):
    client.force_login(users["dsj"])
    page = client.get("/workbench/quality/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Registry scores" in page and "Department scores" in page and "Load a rule set" in page
    assert "信息库评分" not in page


def test_registry_page_and_toggle(client, users, finished_run):
    client.force_login(users["dsj"])
    page = client.get("/workbench/quality/r/t.person/").content.decode()
    assert 'data-testid="quality-rules"' in page and "p.marital" in page and 'data-testid="run-now"' in page
    response = client.post("/workbench/quality/rules/p.marital/toggle/", {"enabled": "0"})
    assert response.status_code == 302 and not QualityRule.objects.get(code="p.marital").enabled
    client.force_login(users["ga"])
    assert client.post("/workbench/quality/rules/p.id/toggle/", {"enabled": "0"}).status_code == 403
    assert QualityRule.objects.get(code="p.id").enabled
    client.force_login(users["wj"])
    assert client.get("/workbench/quality/r/t.person/").status_code == 403


def test_run_page_shows_masked_samples_within_scope(client, users, finished_run, people):
    client.force_login(users["ga"])
    page = client.get(f"/workbench/quality/runs/{finished_run.pk}/").content.decode()
    assert 'data-testid="run-results"' in page and 'data-testid="samples"' in page
    assert people["P2"]["id_number"] not in page and "370103" in page
    client.force_login(users["ga_lixia"])
    page = client.get(f"/workbench/quality/runs/{finished_run.pk}/").content.decode()
    assert "370103" not in page
    client.force_login(users["wj"])
    assert client.get(f"/workbench/quality/runs/{finished_run.pk}/").status_code == 404


def test_scorecard_page(client, users, finished_run):
    client.force_login(users["mz"])
    page = client.get("/workbench/quality/d/370000-MZ/").content.decode()
    assert 'data-testid="scorecard-registries"' in page and ">E<" in page
    assert client.get("/workbench/quality/d/370000-GA/").status_code == 403
    client.force_login(users["citizen"])
    assert client.get("/workbench/quality/").status_code == 403


def test_run_now_queues_a_run_for_the_worker(client, users, rules, django_capture_on_commit_callbacks):
    client.force_login(users["dsj"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/workbench/quality/r/t.person/run/")
    run = QualityRun.objects.get()
    assert response.status_code == 302 and run.status == "queued"
    call_command("worker", "--once", verbosity=0)
    run.refresh_from_db()
    tasks = list(DBTaskResult.objects.values("status", "exception_class_path", "traceback"))
    assert run.status == "succeeded" and run.grade == "C", (run.status, run.error, tasks)
    page = client.get(f"/workbench/quality/runs/{run.pk}/").content.decode()
    assert 'data-testid="run-results"' in page


def test_upload_rule_set(client, users, people, person_rules):
    client.force_login(users["dsj"])
    bad = SimpleUploadedFile("rules.json", json.dumps([{"code": "x", "registry": "t.person"}]).encode())
    response = client.post("/workbench/quality/rules/upload/", {"file": bad})
    assert response.status_code == 422 and 'data-testid="ruleset-errors"' in response.content.decode()
    good = SimpleUploadedFile("rules.json", json.dumps(person_rules, ensure_ascii=False).encode())
    response = client.post("/workbench/quality/rules/upload/", {"file": good})
    assert response.status_code == 302 and QualityRule.objects.count() == len(person_rules)
    client.force_login(users["ga"])
    again = SimpleUploadedFile("rules.json", json.dumps(person_rules, ensure_ascii=False).encode())
    assert client.post("/workbench/quality/rules/upload/", {"file": again}).status_code == 403
