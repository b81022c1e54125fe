"""Workbench pages of stored linkage runs (数据比对): list, start, run, golden records; masking, scope, audit."""

import re

import pytest
import yaml
from django.core.management import call_command
from linkage_run_fixtures import *  # noqa: F403
from linkage_run_fixtures import pid

from dgov.kernel.models import AuditRecord
from dgov.linkage import services
from dgov.linkage.models import GoldenRecord, LinkageRun
from dgov.registry.models import Record


@pytest.fixture
def finished(records, settings_data):
    """A succeeded run over the two registries (two enrolments disagree: two orders)."""
    run = services.run_settings_now(settings_data, actor="system:test")
    assert run.status == "succeeded", run.error
    return run


def test_start_a_run_from_the_page_and_the_worker_runs_it(
    client, users, records, settings_data, django_capture_on_commit_callbacks
):
    client.force_login(users["dsj"])
    page = client.get("/workbench/linkage/new/").content.decode()
    assert 'data-testid="linkage-form"' in page and "registry:" in page
    response = client.post("/workbench/linkage/new/", {"settings": "name: x\ntables:\n  - registry: t.nothing\n"})
    body = response.content.decode()
    assert response.status_code == 422 and 'data-testid="settings-errors"' in body and "t.nothing" in body
    text = yaml.safe_dump(settings_data, allow_unicode=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/workbench/linkage/new/", {"settings": text})
    run = LinkageRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/workbench/linkage/runs/{run.pk}/"
    assert run.status == "queued" and run.requested_by == "l-dsj"
    call_command("worker", "--once", verbosity=0)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    listing = client.get("/workbench/linkage/").content.decode()
    assert 'data-testid="linkage-runs"' in listing and "人口-参保比对" in listing


def test_run_page_shows_figures_conflicts_and_orders(client, users, finished):
    client.force_login(users["dsj"])
    page = client.get(f"/workbench/linkage/runs/{finished.pk}/").content.decode()
    assert 'data-testid="run-figures"' in page and 'data-testid="run-conflicts"' in page
    assert 'data-testid="run-authority"' in page and "与权威值不一致" in page
    assert 'data-testid="run-findings"' in page
    for finding in finished.metrics["findings"]:
        assert finding["order"] in page


def test_golden_records_are_masked_and_searched_by_post(client, users, finished):
    client.force_login(users["dsj"])
    url = f"/workbench/linkage/runs/{finished.pk}/golden/"
    page = client.get(url).content.decode()
    assert 'data-testid="golden-records"' in page
    assert "李四" not in page and pid(13) not in page and "13800000002" not in page
    assert "李*" in page and pid(13)[:6] + "********" + pid(13)[-4:] in page
    # An ID number in the query string is not a search (numbers travel by POST only).
    assert page.count("<tr>") == client.get(f"{url}?identifier={pid(13)}").content.decode().count("<tr>")
    assert len(re.findall(r"/golden/\d+/", page)) == 7
    found = client.post(url, {"identifier": pid(13)}).content.decode()
    assert len(re.findall(r"/golden/\d+/", found)) == 1 and pid(13) not in found
    none = client.post(url, {"identifier": pid(99)}).content.decode()
    assert 'data-testid="golden-empty"' in none
    record = GoldenRecord.objects.get(run=finished, conflict_roles=["full_name"])
    by_cluster = client.get(f"{url}?cluster={record.cluster}").content.decode()
    assert re.findall(r"/golden/\d+/", by_cluster) == [f"/golden/{record.cluster}/"]


def test_golden_record_page_masks_links_sources_and_is_audited(client, users, finished, records):
    record = GoldenRecord.objects.get(run=finished, conflict_roles=["full_name"])
    person = Record.objects.get(registry=records["person"], data__person_no="P2")
    client.force_login(users["dsj"])
    page = client.get(f"/workbench/linkage/runs/{finished.pk}/golden/{record.cluster}/").content.decode()
    assert 'data-testid="golden-values"' in page and 'data-testid="golden-conflicts"' in page
    assert "李四" not in page and "李泗" not in page and pid(13) not in page
    assert f'href="/workbench/registries/t.person/records/{person.uid}/"' in page
    audit = AuditRecord.objects.filter(action="linkage.golden.view", target_id=str(record.pk))
    assert audit.count() == 1 and audit.get().actor_label.startswith("l-dsj")
    assert client.get(f"/workbench/linkage/runs/{finished.pk}/golden/999/").status_code == 404


@pytest.mark.parametrize("who", ["ga", "rs", "ga_lixia"])
def test_departments_that_do_not_read_every_registry_are_refused(client, users, finished, who):
    client.force_login(users[who])
    base = f"/workbench/linkage/runs/{finished.pk}/"
    assert client.get(base).status_code == 403
    assert client.get(f"{base}golden/").status_code == 403
    assert client.post(f"{base}golden/", {"identifier": pid(13)}).status_code == 403
    assert client.get(f"{base}golden/0/").status_code == 403
    assert not AuditRecord.objects.filter(action__in=["linkage.golden.view", "linkage.golden.search"]).exists()
    listing = client.get("/workbench/linkage/").content.decode()
    assert 'data-testid="linkage-empty"' in listing and "linkage-new" not in listing
    assert client.get("/workbench/linkage/new/").status_code == 403
    assert client.post("/workbench/linkage/new/", {"settings": "name: x"}).status_code == 403


def test_city_data_administrators_see_but_do_not_start(client, users, finished, settings_data):
    client.force_login(users["dsj_city"])
    assert client.get(f"/workbench/linkage/runs/{finished.pk}/").status_code == 200
    text = yaml.safe_dump(settings_data, allow_unicode=True)
    assert client.post("/workbench/linkage/new/", {"settings": text}).status_code == 403
    assert AuditRecord.objects.filter(action="linkage.run.request", outcome="denied").count() == 1
    assert LinkageRun.objects.count() == 1


def test_citizens_and_anonymous_users_are_kept_out(client, users, finished):
    assert client.get("/workbench/linkage/").status_code == 302  # to the login page
    client.force_login(users["citizen"])
    assert client.get("/workbench/linkage/").status_code == 403
    assert client.get(f"/workbench/linkage/runs/{finished.pk}/golden/").status_code == 403


def test_unknown_run_is_404(client, users, db):
    client.force_login(users["dsj"])
    assert client.get("/workbench/linkage/runs/4242/").status_code == 404


def test_pages_in_english(client, users, finished):
    client.force_login(users["dsj"])
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    run = client.get(f"/workbench/linkage/runs/{finished.pk}/").content.decode()
    assert "Conflicts by role and kind" in run and "Differs from the authority" in run
    record = GoldenRecord.objects.get(run=finished, conflict_roles=["full_name"])
    page = client.get(f"/workbench/linkage/runs/{finished.pk}/golden/{record.cluster}/").content.decode()
    assert "Values and sources" in page and "李四" not in page
    assert (
        "golden records (personal data masked)"
        in client.get(f"/workbench/linkage/runs/{finished.pk}/golden/").content.decode()
    )
