"""Downloading a licence's PDF: who may, what comes back, what is audited."""

import pytest
from django.urls import include, path

from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord
from dgov.licenses import pdf_views, pdfsign, services

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

# Until the app's urls.py routes it (the lead wires ``licences/<identifier>/pdf``).
urlpatterns = [
    path("licences/<str:identifier>/pdf", pdf_views.licence_pdf, name="licence-pdf"),
    path("", include("dgov.urls")),
]
handler403 = "dgov.web.views.permission_denied"
handler404 = "dgov.web.views.page_not_found"

HOLDER = "370102199001011231"


@pytest.fixture
def licence(marriage_type, civil):
    """A marriage certificate issued by the city 民政局."""
    return services.issue(
        marriage_type,
        issuer=civil["mz_city"],
        holder_name="张三",
        holder_id=HOLDER,
        data={"spouse_name": "李四", "registered_on": "2026-05-20"},
        actor="cli:test",
    )


@pytest.fixture
def make_user(django_user_model):
    """Users of any kind: ``make_user(username, kind, **fields)``."""

    def make(username, kind, **fields):
        return django_user_model.objects.create_user(username=username, password="x" * 16, kind=kind, **fields)

    return make


def _get(client, user, licence):
    if user is not None:
        client.force_login(user)
    return client.get(f"/licences/{licence.identifier}/pdf")


def test_the_issuer_downloads_a_valid_signed_pdf(client, licence, civil, make_user):
    official = make_user("mz_city_1", "official", department=civil["mz_city"])
    response = _get(client, official, licence)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Cache-Control"] == "no-store"
    assert "attachment" in response["Content-Disposition"] and "filename*=UTF-8''" in response["Content-Disposition"]
    assert pdfsign.verify_pdf(response.content).valid
    record = AuditRecord.objects.get(action="licenses.licence.pdf")
    assert record.outcome == "success" and licence.identifier in record.detail_json


def test_the_competent_department_and_the_holder_may_download(client, licence, civil, make_user):
    assert _get(client, make_user("mz_1", "official", department=civil["mz"]), licence).status_code == 200
    holder = make_user("zhangsan", "person", id_number_digest=blind_index(HOLDER, purpose="resident_id"))
    holder.real_name_level = 2
    holder.save(update_fields=["real_name_level"])
    assert _get(client, holder, licence).status_code == 200
    assert (
        '"as":"holder"' in AuditRecord.objects.filter(action="licenses.licence.pdf").order_by("seq").last().detail_json
    )


def test_others_are_refused_and_the_refusal_audited(client, licence, civil, make_user):
    assert _get(client, make_user("ga_1", "official", department=civil["ga"]), licence).status_code == 403
    client.logout()
    # Same ID number but not real-name verified: not yet the holder.
    unverified = make_user("lookalike", "person", id_number_digest=blind_index(HOLDER, purpose="resident_id"))
    assert _get(client, unverified, licence).status_code == 403
    denied = AuditRecord.objects.filter(action="licenses.licence.pdf", outcome="denied")
    assert denied.count() == 2


def test_anonymous_users_are_sent_to_log_in_and_unknown_licences_are_404(client, licence, civil, make_user):
    response = client.get(f"/licences/{licence.identifier}/pdf")
    assert response.status_code == 302 and "login" in response["Location"]
    official = make_user("mz_city_2", "official", department=civil["mz_city"])
    client.force_login(official)
    assert client.get("/licences/1.2.156.3005.2.NOPE/pdf").status_code == 404
    assert client.post(f"/licences/{licence.identifier}/pdf").status_code == 405


def test_render_pdf_for_enterprise_holders(marriage_type, civil, make_user):
    from dgov.licenses.models import LicenceType

    business = LicenceType.objects.create(
        code="11100000000013127D002",
        name="营业执照",
        department=civil["mz"],
        holder_kind="enterprise",
        items=[{"name": "scope", "label": "经营范围", "type": "text", "required": True}],
        sharing_type="unconditional",
    )
    uscc = civil["ga"].uscc  # any valid USCC
    licence = services.issue(
        business, issuer=civil["mz"], holder_name="某某有限公司", holder_id=uscc, data={"scope": "软件开发"}, actor=None
    )
    owner = make_user("company", "enterprise")
    owner.enterprise_uscc = uscc
    owner.save(update_fields=["enterprise_uscc"])
    assert services.may_read_pdf(owner, licence)
    assert not services.may_read_pdf(make_user("other", "enterprise"), licence)
    result = pdfsign.verify_pdf(services.render_pdf(licence, actor=owner))
    assert result.valid and result.summary.holder_kind == "enterprise"
