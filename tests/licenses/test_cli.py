"""`dgov licences`: types load|list, bulk issue from CSV (all or nothing), list, publish, reindex."""

import json

import pytest
from django.core.management import CommandError, call_command

from dgov.licenses import catalogue
from dgov.licenses.models import Licence, LicenceType, StatusList

from .conftest import person_id

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    """Run ``dgov licences …`` and return its output."""
    from io import StringIO

    out = StringIO()
    call_command("licences", *args, stdout=out)
    return out.getvalue()


def test_types_load_and_list(orgs, tmp_path):
    output = run("types", "load", str(catalogue.DEMO_TYPES), "--dry-run")
    assert "新增 6 个" in output and not LicenceType.objects.exists()
    output = run("types", "load", str(catalogue.DEMO_TYPES), "--json")
    assert json.loads(output)["created"] and LicenceType.objects.count() == 6
    listing = run("types", "list")
    assert "营业执照" in listing and orgs["scjg"].uscc + "001" in listing
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {serial: '001', department: NOPE, name: X, holder_kind: person, items: []}\n", encoding="utf-8")
    with pytest.raises(CommandError) as caught:
        call_command("licences", "types", "load", str(bad))
    assert caught.value.returncode == 1
    with pytest.raises(CommandError):
        call_command("licences", "types", "load", str(tmp_path / "missing.yaml"))


def test_issue_from_csv_all_or_nothing(demo_types, orgs, tmp_path):
    path = tmp_path / "driving.csv"
    good = "holder_name,holder_id,vehicle_class,first_issued_on\n" + "".join(
        f"驾驶员{n},{person_id(n)},C1,2020-01-0{n}\n" for n in range(1, 6)
    )
    path.write_text(good.replace(f"{person_id(3)}", "123") + "只有,两列\n", encoding="utf-8")
    code = demo_types["机动车驾驶证"].code
    with pytest.raises(CommandError) as caught:
        call_command("licences", "issue", "--type", code, "--issuer", "370000-GA", str(path))
    assert caught.value.returncode == 1 and not Licence.objects.exists()
    path.write_text(good, encoding="utf-8")
    output = run("issue", "--type", code, "--issuer", "370000-GA", str(path), "--alg", "ES256")
    assert "已签发 5 本证照" in output and Licence.objects.count() == 5
    assert Licence.objects.first().issued_by.startswith("system:cli:")
    # Another department's type is refused.
    with pytest.raises(CommandError):
        call_command("licences", "issue", "--type", code, "--issuer", "370000-MZ", str(path))
    with pytest.raises(CommandError):
        call_command("licences", "issue", "--type", "NOPE", "--issuer", "370000-GA", str(path))
    listing = run("list", "--type", code)
    assert listing.count("\n") == 5 and "驾***" in listing and person_id(1) not in listing
    assert run("list", "--status", "revoked") == ""


def test_publish_signs_due_status_lists(demo_types, orgs):
    from dgov.licenses import services

    services.issue(
        demo_types["机动车驾驶证"],
        issuer=orgs["ga"],
        holder_name="张三",
        holder_id=person_id(1),
        data={"vehicle_class": "C1", "first_issued_on": "2020-01-01"},
        actor="system:test",
    )
    assert StatusList.objects.filter(dirty=True).count() == 2
    assert "已发布 2 个状态列表" in run("publish")
    assert not StatusList.objects.filter(dirty=True).exists()
    from django.conf import settings

    assert "dgov.licenses.credentials.publish_due" in settings.WORKER_PERIODIC_JOBS


def test_reindex_needs_the_library(orgs):
    with pytest.raises(CommandError):
        call_command("licences", "reindex")
