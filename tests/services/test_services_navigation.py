"""Menu entries of one-stop services: officials find the task inbox on the workbench, applicants their applications."""

import pytest

pytestmark = pytest.mark.django_db


def _keys(response) -> list[str]:
    return [link.key for link in response.context["nav_workbench"]]


def test_the_task_inbox_is_in_the_workbench_menu_of_department_officials(client, official, django_user_model):
    client.force_login(official)
    response = client.get("/workbench/services/tasks/")
    assert response.status_code == 200
    links = {link.key: link for link in response.context["nav_workbench"]}
    assert links["service_tasks"].url == "/workbench/services/tasks/" and links["service_tasks"].active
    assert "待办任务" in response.content.decode()

    # An administrator has the workbench but no department inbox: no entry leading to a 403.
    admin = django_user_model.objects.create_user(username="nav-admin", password="x", kind="admin")
    client.force_login(admin)
    assert "service_tasks" not in _keys(client.get("/workbench/"))
    assert client.get("/workbench/services/tasks/").status_code == 403


def test_my_applications_link_on_the_services_page_only_when_signed_in(client, citizen):
    assert 'data-testid="my-applications-link"' not in client.get("/services/").content.decode()
    client.force_login(citizen)
    page = client.get("/services/").content.decode()
    assert 'data-testid="my-applications-link"' in page and 'href="/services/my/"' in page
