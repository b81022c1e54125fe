"""Rectification work orders through their public surfaces: workbench pages, the API, the CLI and the demo."""

import datetime
import io

import pytest
from django.core.management import CommandError, call_command

from dgov.kernel.models import AuditRecord
from dgov.kernel.services.calendar import add_working_days
from dgov.quality import rectification
from dgov.quality.models import QualityRun, RectificationOrder

pytestmark = pytest.mark.django_db

API = "/api/v1/quality"
PAGES = "/workbench/quality"


def _order(key):
    return RectificationOrder.objects.get(finding_key=key)


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


# --- Pages ---------------------------------------------------------------------------------------------------


def test_the_list_shows_the_departments_own_orders_with_filters(client, users, finished_run):
    client.force_login(users["mz"])
    page = client.get(f"{PAGES}/orders/").content.decode()
    marital = _order("p.marital")
    assert 'data-testid="orders"' in page and marital.code in page and "剩余" in page
    assert _order("p.id").code not in page  # another department's order
    client.force_login(users["dsj"])
    page = client.get(f"{PAGES}/orders/").content.decode()
    assert marital.code in page and _order("p.id").code in page
    page = client.get(f"{PAGES}/orders/", {"department": "370000-MZ"}).content.decode()
    assert marital.code in page and _order("p.id").code not in page
    page = client.get(f"{PAGES}/orders/", {"registry": "t.household"}).content.decode()
    assert 'data-testid="orders-empty"' in page
    page = client.get(f"{PAGES}/orders/", {"overdue": "1"}).content.decode()
    assert 'data-testid="orders-empty"' in page  # nothing is overdue yet
    RectificationOrder.objects.filter(pk=marital.pk).update(due_on=datetime.date(2026, 1, 5))
    page = client.get(f"{PAGES}/orders/", {"overdue": "1"}).content.decode()
    assert marital.code in page and 'data-testid="overdue"' in page and _order("p.id").code not in page
    page = client.get(f"{PAGES}/orders/", {"status": "bogus"}).content.decode()
    assert marital.code in page  # an unknown status falls back to the active orders
    client.force_login(users["citizen"])
    assert client.get(f"{PAGES}/orders/").status_code == 403


def test_the_detail_page_and_its_scope(client, users, finished_run, people):
    order = _order("p.id")
    client.force_login(users["ga"])
    page = client.get(f"{PAGES}/orders/{order.code}/").content.decode()
    assert 'data-testid="order-samples"' in page and "370103" in page
    assert people["P2"]["id_number"] not in page
    assert 'data-testid="order-timeline"' in page and 'data-testid="answer-form"' in page
    assert 'data-testid="cancel-form"' not in page and 'data-testid="remaining"' in page
    client.force_login(users["ga_lixia"])  # not the order's department: it does not exist for them
    assert client.get(f"{PAGES}/orders/{order.code}/").status_code == 404
    client.force_login(users["mz"])
    assert client.get(f"{PAGES}/orders/{order.code}/").status_code == 404
    assert client.post(f"{PAGES}/orders/{order.code}/answer/", {"note": "x"}).status_code == 404
    client.force_login(users["dsj"])
    page = client.get(f"{PAGES}/orders/{order.code}/").content.decode()
    assert 'data-testid="cancel-form"' in page and 'data-testid="answer-form"' not in page
    assert client.get(f"{PAGES}/orders/ZG19990101-0001/").status_code == 404


def test_answer_recheck_and_cancel_from_the_pages(client, users, finished_run, django_capture_on_commit_callbacks):
    order = _order("p.name")
    client.force_login(users["ga"])
    response = client.post(f"{PAGES}/orders/{order.code}/answer/", {"note": ""})
    assert response.status_code == 302 and _order("p.name").status == "open"  # a note is required
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{PAGES}/orders/{order.code}/answer/", {"note": "已补录姓名"})
    assert response.status_code == 302 and _order("p.name").status == "submitted"
    assert QualityRun.objects.filter(status="queued").count() == 1
    page = client.get(f"{PAGES}/orders/{order.code}/").content.decode()
    assert "已补录姓名" in page and 'data-testid="answer-form"' not in page
    response = client.post(f"{PAGES}/orders/{order.code}/recheck/", {"note": ""})
    assert response.status_code == 302 and QualityRun.objects.filter(status="queued").count() == 1
    assert client.post(f"{PAGES}/orders/{order.code}/cancel/", {"reason": "x"}).status_code == 403
    client.force_login(users["dsj"])
    assert client.post(f"{PAGES}/orders/{order.code}/answer/", {"note": "代为反馈"}).status_code == 403
    response = client.post(f"{PAGES}/orders/{order.code}/cancel/", {"reason": "重复下发"})
    assert response.status_code == 302 and _order("p.name").status == "cancelled"
    assert AuditRecord.objects.filter(action="quality.order.cancel", actor_label__startswith="q-dsj").exists()


def test_scorecard_registry_and_overview_link_to_the_orders(client, users, finished_run):
    client.force_login(users["mz"])
    page = client.get(f"{PAGES}/d/370000-MZ/").content.decode()
    assert 'data-testid="orders-summary"' in page and "1 件未办结" in page and "department=370000-MZ" in page
    client.force_login(users["ga"])
    page = client.get(f"{PAGES}/r/t.person/").content.decode()
    assert "7 件未办结" in page and "registry=t.person" in page  # GA sees its own seven
    client.force_login(users["dsj"])
    page = client.get(f"{PAGES}/r/t.person/").content.decode()
    assert "8 件未办结" in page
    assert 'data-testid="orders-link"' in client.get(f"{PAGES}/").content.decode()


def test_order_pages_in_english(client, users, finished_run):
    client.force_login(users["mz"])
    page = client.get(f"{PAGES}/orders/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Rectification orders" in page and "整改工单" not in page.split("<main")[-1]


# --- API -----------------------------------------------------------------------------------------------------


def test_api_lists_and_shows_orders_in_scope(client, users, finished_run, people):
    client.force_login(users["ga"])
    body = client.get(f"{API}/orders", {"page_size": 3}).json()
    assert body["count"] == 7 and body["pages"] == 3 and len(body["results"]) == 3
    assert {row["department"] for row in body["results"]} == {"370000-GA"}
    assert body["results"][0]["due_on"] <= body["results"][-1]["due_on"]  # most urgent first
    body = client.get(f"{API}/orders", {"registry": "t.person", "status": "all", "page": 3, "page_size": 3}).json()
    assert len(body["results"]) == 1
    order = _order("p.id")
    detail = client.get(f"{API}/orders/{order.code}").json()
    assert detail["code"] == order.code and detail["deadline_days"] == 5 and detail["remaining_days"] == 5
    assert detail["events"][0]["action"] == "opened" and detail["opened_run"] == finished_run.pk
    assert "*" in detail["samples"][0]["values"]["id_number"] and people["P2"]["id_number"] not in str(detail)
    _problem(client.get(f"{API}/orders/{_order('p.marital').code}"), 404)  # another department's
    _problem(client.get(f"{API}/orders", {"status": "bogus"}), 400)
    _problem(client.get(f"{API}/orders", {"page_size": 1000}), 422)
    client.force_login(users["dsj"])
    assert client.get(f"{API}/orders").json()["count"] == 8
    assert client.get(f"{API}/orders", {"department": "370000-MZ"}).json()["count"] == 1


def test_api_answer(client, users, finished_run, basic_auth, django_capture_on_commit_callbacks):
    order = _order("p.sex")
    client.force_login(users["ga"])
    _problem(client.post(f"{API}/orders/{order.code}/answer", {"note": ""}, content_type="application/json"), 422)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{API}/orders/{order.code}/answer", {"note": "已更正"}, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "submitted" and body["response"] == "已更正" and body["events"][-1]["action"] == "answered"
    _problem(client.post(f"{API}/orders/{order.code}/answer", {"note": "再次"}, content_type="application/json"), 409)
    client.force_login(users["dsj"])  # sees the order but is not its department
    _problem(client.post(f"{API}/orders/{order.code}/answer", {"note": "代答"}, content_type="application/json"), 403)
    client.force_login(users["mz"])
    _problem(client.post(f"{API}/orders/{order.code}/answer", {"note": "x"}, content_type="application/json"), 404)
    # Department systems: reading needs quality:read, answering quality:rectify.
    other = _order("p.birth")
    reader = basic_auth("ga", ["quality:read"])
    assert client.get(f"{API}/orders/{other.code}", HTTP_AUTHORIZATION=reader).status_code == 200
    _problem(
        client.post(
            f"{API}/orders/{other.code}/answer",
            {"note": "x"},
            content_type="application/json",
            HTTP_AUTHORIZATION=reader,
        ),
        403,
    )
    writer = basic_auth("ga", ["quality:read", "quality:rectify"])
    response = client.post(
        f"{API}/orders/{other.code}/answer",
        {"note": "系统对接反馈"},
        content_type="application/json",
        HTTP_AUTHORIZATION=writer,
    )
    assert response.status_code == 200 and response.json()["status"] == "submitted"
    assert AuditRecord.objects.filter(action="quality.order.respond", actor_label__startswith="client:").exists()
    _problem(client.get(f"{API}/orders", HTTP_AUTHORIZATION=basic_auth("ga", ["registry:read"])), 403)


def test_api_recheck_and_anonymous(client, users, finished_run):
    order = _order("p.division")
    _problem(client.get(f"{API}/orders"), 401)
    client.force_login(users["citizen"])
    _problem(client.get(f"{API}/orders"), 403)
    client.force_login(users["ga"])
    response = client.post(f"{API}/orders/{order.code}/recheck")
    assert response.status_code == 200 and response.json()["recheck_requested_at"] is not None
    rectification.cancel_order(order, actor="system:test", reason="测试")
    _problem(client.post(f"{API}/orders/{order.code}/recheck"), 409)  # no longer active: nothing to re-check
    client.force_login(users["mz"])
    _problem(client.post(f"{API}/orders/{order.code}/recheck"), 404)


# --- CLI -----------------------------------------------------------------------------------------------------


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("quality", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_cli_orders(users, finished_run, django_capture_on_commit_callbacks):
    out, _err = run("orders", "list")
    assert out.count("\n") == 8 and "p.marital" in out and "370000-MZ" in out
    out, _err = run("orders", "list", "--department", "370000-MZ")
    assert out.count("\n") == 1
    out, _err = run("orders", "list", "--as", "q-mz")
    assert out.count("\n") == 1 and "p.marital" in out
    order = _order("p.id")
    out, _err = run("orders", "show", order.code)
    assert order.code in out and "opened" in out and "*" in out
    with pytest.raises(CommandError):
        run("orders", "show", order.code, "--as", "q-mz")  # not visible to MZ
    with django_capture_on_commit_callbacks(execute=True):
        out, _err = run("orders", "recheck", order.code, "--note", "批量更正后复核")
    assert "已申请复核" in out and QualityRun.objects.filter(status="queued").exists()
    out, _err = run("orders", "recheck")
    assert "已请求 0 次" in out
    with pytest.raises(CommandError) as refused:
        run("orders", "cancel", order.code, "--reason", "x", "--as", "q-ga")
    assert refused.value.returncode == 1
    out, _err = run("orders", "cancel", order.code, "--reason", "测试撤销")
    assert "已撤销" in out and _order("p.id").status == "cancelled"
    late = add_working_days(_order("p.name").due_on, 1)
    out, _err = run("orders", "escalate", "--date", late.isoformat())
    assert f"{_order('p.name').code}\t督办 level 1" in out
    assert AuditRecord.objects.filter(action="quality.order.escalate", actor_label__startswith="system:cli").exists()
    out, _err = run("orders", "escalate", "--date", late.isoformat())
    assert "已督办 0 次" in out


# --- Demo ----------------------------------------------------------------------------------------------------


def test_the_demo_run_leaves_orders(province):
    from dgov.kernel.models import Organization
    from dgov.kernel.validators import make_resident_id, make_uscc
    from dgov.quality import demo
    from dgov.registry import libraries
    from dgov.registry import services as registry_services

    kinds = sorted({definition["owner"] for definition in libraries.load_definitions()} | {"WJ", "MZ", "DSJ"})
    for n, kind in enumerate(kinds, start=1):
        Organization.objects.create(
            name=f"山东省{kind}部门",
            code=f"370000-{kind}",
            uscc=make_uscc("1", "1", "370000", serial=n),
            level=Organization.Level.PROVINCE,
            division=province,
            kind=kind,
        )
    libraries.install_libraries(actor="system:test", province_code="370000")
    person = registry_services.get_registry("population.person")
    good = make_resident_id("370102", datetime.date(1980, 5, 6), 21)
    registry_services.bulk_create_records(
        person,
        [
            {
                "id_number": good,
                "name": "张三",
                "sex": "1",
                "birth_date": "1980-05-06",
                "division_code": "370102",
                "status": "normal",
            },
            {
                "id_number": good[:-1] + ("0" if good[-1] != "0" else "1"),
                "name": "李四",
                "sex": "1",
                "birth_date": "1980-05-06",
                "division_code": "370102",
                "status": "normal",
            },
        ],
        actor="system:test",
        source=Organization.objects.get(code="370000-GA"),
        validate=False,
    )
    demo.seed()
    orders = RectificationOrder.objects.filter(registry=person, status="open")
    assert orders.filter(finding_key="population.person.id_number.checksum", department__code="370000-GA").exists()
    # The demo-only rules fail on the clean synthetic data too (no phone registered here).
    phone = orders.get(finding_key="demo.population.person.phone.required")
    assert phone.department.code == "370000-GA" and phone.failed_now == 2
