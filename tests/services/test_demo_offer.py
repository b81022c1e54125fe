"""The demo's 主动服务: a birth in the demo citizen's household offers the newborn bundle (为您推荐), once."""

import pytest
from django.contrib.auth import get_user_model

from dgov.kernel.models import Notification
from dgov.registry import services as registry
from dgov.registry.models import Record
from dgov.services import demo, offers
from dgov.services.models import ProactiveOffer

from .catalogue_fixtures import *  # noqa: F403
from .metrics_helpers import no_result_documents  # noqa: F401 - the history's closures need no PDFs here

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_result_documents")]


@pytest.fixture
def demo_province(db, settings):
    """A small demo province (libraries, departments, the verified demo citizen); a short application history."""
    from dgov.registry import demo as registry_demo

    settings.DEMO_PROVINCE_CODE = "370000"
    settings.SERVICES_DEMO_HISTORY_COUNT = 5
    registry_demo.generate(province_code="370000", persons=300, enterprises=40, seed=7)
    return get_user_model().objects.get(username="citizen")


def offer_document(offer):
    """The certificate number of the offer's birth (a fact the offer keeps)."""
    return offers.offer_prefill(offer)["certificate_no"]


def test_the_demo_citizen_is_offered_the_newborn_bundle_once(demo_province, client):
    citizen = demo_province
    summary = demo.seed(province_code="370000", seed=7)
    assert "主动服务" in summary and "推荐新增" in summary
    offer = offers.offers_for(citizen).get()
    assert (offer.bundle.code, offer.event_kind, offer.status) == ("newborn", "birth", "offered")
    # The birth: recorded by 卫健 for a newborn the household's 公安 registered as the citizen's child.
    event = registry.find_record(registry.get_registry("population.event"), "document_no", offer_document(offer))
    assert event.created_by_org.kind == "WJ" and str(event.uid) == offer.event_uid
    values = registry.record_values_now(event)
    baby = registry.record_values_now(Record.objects.get(uid=values["person"]))
    mine = registry.record_values_now(
        registry.find_record(registry.get_registry("population.person"), "id_number", citizen.id_number)
    )
    assert baby["relation"] == "child" and baby["household"] == mine["household"] and baby["status"] == "normal"
    assert offers.offer_prefill(offer)["child_name"] == baby["name"]
    assert offers.offer_prefill(offer)["guardian_id_number"] == citizen.id_number
    assert Notification.objects.filter(user=citizen, template="services.offer.created").count() == 1
    # 我的办件 shows 为您推荐 with the offer.
    client.force_login(citizen)
    page = client.get("/services/my/").content.decode()
    assert "为您推荐" in page and f"/services/my/offers/{offer.pk}/" in page
    # Again (dgov demo --if-missing, a restart): the same birth, no second offer, no second person.
    persons = registry.get_registry("population.person").records.count()
    again = demo.seed(province_code="370000", seed=7)
    assert "推荐新增 0 条" in again
    assert ProactiveOffer.objects.count() == ProactiveOffer.objects.filter(event_uid=offer.event_uid).count()
    assert offers.offers_for(citizen).count() == 1
    assert registry.get_registry("population.person").records.count() == persons


def test_no_offer_without_a_verified_demo_citizen(seeded):
    assert demo.seed_birth_offer() == ""
    assert not ProactiveOffer.objects.exists()
