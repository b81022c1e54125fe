"""Application surfaces: the API (problem+json, scopes, 409) and the portal / workbench pages."""

import pytest

from dgov.services.models import Application, ApplicationTask

from .process_helpers import GOOD, make_world

pytestmark = pytest.mark.django_db

API = "/api/v1/services/applications"


@pytest.fixture
def world(django_user_model):
    return make_world(django_user_model, prefix="surf")


def _client(client, user):
    client.force_login(user)
    return client


def test_api_submit_validation_read_and_complete(world, client, django_user_model):
    users = world["users"]
    c = _client(client, users["citizen"])
    bad = c.post(
        API, {"item": world["item"].basic_code, "data": {"name": "王", "age": "x"}}, content_type="application/json"
    )
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/problem+json")
    fields = {tuple(e["loc"]) for e in bad.json()["errors"]}
    assert fields == {("name",), ("age",)}
    missing = c.post(API, {"item": "nope", "data": GOOD}, content_type="application/json")
    assert missing.status_code == 404
    ok = c.post(API, {"item": world["item"].basic_code, "data": GOOD}, content_type="application/json")
    assert ok.status_code == 201, ok.content
    number = ok.json()["number"]
    assert ok.json()["tasks"][0]["node"] == "accept"
    assert [a["number"] for a in c.get(API).json()] == [number]
    assert c.get(f"{API}/{number}").status_code == 200

    other_citizen = _client(client, users["citizen2"])
    assert other_citizen.get(f"{API}/{number}").status_code == 404

    task_id = ApplicationTask.objects.get(application__number=number).pk
    other = _client(client, users["other"])
    assert other.get(f"{API}/tasks").json() == []
    assert (
        other.post(
            f"{API}/tasks/{task_id}/complete", {"decision": "accept"}, content_type="application/json"
        ).status_code
        == 404
    )
    assert other.get(f"{API}/{number}").status_code == 404

    a = _client(client, users["a"])
    assert [t["id"] for t in a.get(f"{API}/tasks").json()] == [task_id]
    wrong = a.post(f"{API}/tasks/{task_id}/complete", {"decision": "approve"}, content_type="application/json")
    assert wrong.status_code == 400
    done = a.post(f"{API}/tasks/{task_id}/complete", {"decision": "accept"}, content_type="application/json")
    assert done.status_code == 200 and done.json()["status"] == "in_progress"
    again = _client(client, users["b"]).post(
        f"{API}/tasks/{task_id}/complete", {"decision": "accept"}, content_type="application/json"
    )
    assert again.status_code == 409 and again["Content-Type"].startswith("application/problem+json")


def test_api_needs_login(client, world):
    assert client.get(API).status_code == 401
    assert client.post(API, {"item": "x", "data": {}}, content_type="application/json").status_code == 401


def test_apply_page_renders_form_and_field_errors(world, client):
    c = _client(client, world["users"]["citizen"])
    url = f"/services/items/{world['item'].basic_code}/apply/"
    page = c.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="name"' in html and 'name="purpose"' in html and "<select" in html
    bad = c.post(url, {"name": "王", "age": "abc"})
    assert bad.status_code == 400
    assert "至少 2 个字符" in bad.content.decode()
    good = c.post(url, {"name": "王小明", "age": "30", "purpose": "经营"})
    app = Application.objects.get()
    assert good.status_code == 302 and good["Location"].endswith(f"/services/my/{app.number}/")
    assert app.number in c.get("/services/my/").content.decode()
    assert c.get(f"/services/my/{app.number}/").status_code == 200


def test_inbox_and_correction_through_pages(world, client):
    from dgov.services import applications

    users = world["users"]
    app = applications.submit(world["item"], applicant=users["citizen"], data=GOOD, actor=users["citizen"])
    task = app.tasks.get()
    other = _client(client, users["other"])
    assert app.number not in other.get("/workbench/services/tasks/").content.decode()
    assert other.get(f"/workbench/services/tasks/{task.pk}/").status_code == 404
    assert _client(client, users["citizen"]).get("/workbench/services/tasks/").status_code == 403

    a = _client(client, users["a"])
    assert app.number in a.get("/workbench/services/tasks/").content.decode()
    assert "王小明" in a.get(f"/workbench/services/tasks/{task.pk}/").content.decode()
    a.post(f"/workbench/services/tasks/{task.pk}/action/", {"action": "claim"})
    assert ApplicationTask.objects.get(pk=task.pk).claimed_by == users["a"]
    a.post(f"/workbench/services/tasks/{task.pk}/action/", {"decision": "correct", "opinion": "请补充年龄证明"})
    app.refresh_from_db()
    assert app.status == Application.Status.CORRECTION

    c = _client(client, users["citizen"])
    page = c.get(f"/services/my/{app.number}/")
    assert "请补充年龄证明" in page.content.decode() and 'data-testid="correction-form"' in page.content.decode()
    c.post(f"/services/my/{app.number}/", {"name": "王小明", "age": "31", "purpose": "自用"})
    app.refresh_from_db()
    assert app.status == Application.Status.SUBMITTED and app.paused_since is None


def test_api_list_of_own_applications_does_not_query_per_application(world, client):
    """我的办件 over the API: the open tasks of every listed application come in one query, not one each."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from dgov.services import applications

    citizen = world["users"]["citizen"]
    c = _client(client, citizen)

    def list_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            body = c.get(API).json()
        assert all(len(a["tasks"]) == 1 and a["tasks"][0]["node"] == "accept" for a in body)
        return len(captured)

    applications.submit(world["item"], applicant=citizen, data=GOOD, actor=citizen)
    one = list_queries()
    for _ in range(3):
        applications.submit(world["item"], applicant=citizen, data=GOOD, actor=citizen)
    assert list_queries() == one
