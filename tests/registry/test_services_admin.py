"""Admin pages of the registry engine: read-only, personal values masked, never decrypted in lists."""

import pytest
from engine_fixtures import *  # noqa: F403

from dgov.registry import services


@pytest.fixture
def staff(client, django_user_model):
    """A logged-in superuser."""
    user = django_user_model.objects.create_superuser(username="root", password="x-Pass-123", kind="admin")
    client.force_login(user)
    return client


def test_record_pages_show_masked_values_only(staff, person):
    listing = staff.get("/admin/registry/record/")
    assert listing.status_code == 200
    assert str(person.uid) in listing.text and "张三" not in listing.text
    page = staff.get(f"/admin/registry/record/{person.pk}/change/")
    assert page.status_code == 200
    assert "张*" in page.text and "138****5678" in page.text
    assert "张三" not in page.text and "13812345678" not in page.text


def test_other_pages_render_and_are_read_only(staff, person, person_registry, officials):
    services.submit_correction(person, "sex", "女", actor=officials["wj"], reason="核对")
    services.read_record(person, actor=officials["ga"], purpose="查询")
    for model in ("registry", "registryschema", "correctionrequest", "accesslog", "delegation"):
        assert staff.get(f"/admin/registry/{model}/").status_code == 200, model
    schema_page = staff.get(f"/admin/registry/registryschema/{person_registry.current_schema_id}/change/")
    assert schema_page.status_code == 200 and "居民身份证号码" in schema_page.text
    assert staff.get("/admin/registry/record/add/").status_code == 403
    response = staff.post(f"/admin/registry/record/{person.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
