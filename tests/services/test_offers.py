"""主动服务: a birth (or marriage) recorded in the population library offers a 一件事 bundle to the people concerned."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection, transaction

from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord, Notification, Organization, OutboxEvent
from dgov.kernel.validators import make_resident_id
from dgov.registry import libraries
from dgov.registry import services as registry
from dgov.registry.models import AccessLog
from dgov.services import bundles, handlers, offers
from dgov.services.models import Application, BundleCase, ProactiveOffer

from .catalogue_fixtures import *  # noqa: F403
from .catalogue_fixtures import PASSWORD

pytestmark = pytest.mark.django_db

API = "/api/v1/services"
FATHER_ID = make_resident_id("370102", datetime.date(1990, 2, 3), 11)
MOTHER_ID = make_resident_id("370102", datetime.date(1992, 4, 5), 22)
CHILD_ID = make_resident_id("370102", datetime.date(2025, 3, 1), 33)
STRANGER_ID = make_resident_id("370102", datetime.date(1980, 1, 1), 44)


def _dept(kind):
    return Organization.objects.get(division__code="370000", kind=kind)


def _person(id_number, name, sex, birth, **extra):
    values = {"id_number": id_number, "name": name, "sex": sex, "birth_date": birth, "division_code": "370102"}
    return registry.create_record(
        registry.get_registry("population.person"),
        {**values, "status": "normal", **extra},
        actor="system:test",
        source=_dept("GA"),
    )


def _verified(django_user_model, username, name, id_number):
    user = django_user_model.objects.create_user(username=username, password=PASSWORD, kind="person", display_name=name)
    user.id_number, user.id_number_digest, user.real_name_level = (
        id_number,
        blind_index(id_number, purpose="resident_id"),
        2,
    )
    user.save()
    return user


def _drain():
    call_command("worker", "--once", "--no-tasks", verbosity=0)


@pytest.fixture
def family(seeded, orgs, django_user_model):
    """The population library with a household: 王爸爸 (head), 李妈妈 (spouse), 王小宝 (child, newborn); accounts."""
    libraries.install_libraries(actor="system:test", province_code="370000")
    father = _person(FATHER_ID, "王爸爸", "1", "1990-02-03")
    household = registry.create_record(
        registry.get_registry("population.household"),
        {
            "household_no": "3701020000000001",
            "head": str(father.uid),
            "household_type": "family",
            "division_code": "370102",
        },
        actor="system:test",
        source=_dept("GA"),
    )
    mother = _person(MOTHER_ID, "李妈妈", "2", "1992-04-05", household=str(household.uid), relation="spouse")
    child = _person(CHILD_ID, "王小宝", "1", "2025-03-01", household=str(household.uid), relation="child")
    _drain()  # the creations above are delivered: no event record yet, so no offer
    return {
        "father": father,
        "mother": mother,
        "child": child,
        "mother_user": _verified(django_user_model, "mama", "李妈妈", MOTHER_ID),
        "stranger": _verified(django_user_model, "stranger", "赵路人", STRANGER_ID),
        "unverified": django_user_model.objects.create_user(username="plain", password=PASSWORD, kind="person"),
    }


def _birth(family, document_no="Q370102000001"):
    return registry.create_record(
        registry.get_registry("population.event"),
        {
            "document_no": document_no,
            "kind": "birth",
            "person": str(family["child"].uid),
            "date": "2025-03-01",
            "place_division": "370102",
            "registrar": "370000-WJ",
        },
        actor="system:test",
        source=_dept("WJ"),
    )


def test_a_birth_offers_the_newborn_bundle_to_both_parents(family):
    assert not ProactiveOffer.objects.exists()
    event = _birth(family)
    assert not ProactiveOffer.objects.exists()  # not before the worker delivers the event
    _drain()
    found = {o.holder_id: o for o in ProactiveOffer.objects.select_related("bundle")}
    mother_digest = blind_index(MOTHER_ID, purpose="resident_id")
    father_digest = blind_index(FATHER_ID, purpose="resident_id")
    assert set(found) == {mother_digest, father_digest}
    offer = found[mother_digest]
    assert (offer.bundle.code, offer.event_kind, offer.event_uid, offer.status) == (
        "newborn",
        "birth",
        str(event.uid),
        "offered",
    )
    assert offer.expires_on == datetime.date.today() + datetime.timedelta(days=90)
    assert offers.offer_prefill(offer) == {
        "child_name": "王小宝",
        "child_sex": "男",
        "born_on": "2025-03-01",
        "certificate_no": "Q370102000001",
        "guardian_id_number": MOTHER_ID,
    }
    assert offers.offer_prefill(found[father_digest])["guardian_id_number"] == FATHER_ID
    with connection.cursor() as cursor:
        cursor.execute("SELECT prefill FROM services_proactiveoffer WHERE id = %s", [offer.pk])
        assert "王小宝" not in cursor.fetchone()[0]  # sealed at rest
    # the verified mother is told in-app; the father has no account
    note = Notification.objects.get(template="services.offer.created")
    assert note.user == family["mother_user"] and note.link == f"/services/my/offers/{offer.pk}/"
    assert AuditRecord.objects.filter(action="services.offer.create").count() == 2
    # the reads of the family's records show on 谁查了我的数据
    reads = AccessLog.objects.filter(subject_digest=mother_digest, purpose__startswith="主动服务")
    assert reads.count() == 1 and reads.get().channel == "services"


def test_redelivery_and_a_second_run_create_nothing_more(family):
    event = _birth(family)
    _drain()
    outbox = OutboxEvent.objects.get(event_type="registry.record.created", payload__uid=str(event.uid))
    with transaction.atomic():
        handlers.offer_from_event(outbox)  # the worker died after the handler: it runs again
    assert offers.offers_from_event("population.event", str(event.uid)) == []
    assert ProactiveOffer.objects.count() == 2
    assert Notification.objects.filter(template="services.offer.created").count() == 1
    assert AuditRecord.objects.filter(action="services.offer.create").count() == 2


def test_other_events_and_registries_offer_nothing(family):
    registry.create_record(
        registry.get_registry("population.event"),
        {
            "document_no": "SW370102000001",
            "kind": "death",
            "person": str(family["father"].uid),
            "date": "2025-05-01",
            "place_division": "370102",
        },
        actor="system:test",
        source=_dept("WJ"),
    )
    _drain()
    assert not ProactiveOffer.objects.exists()
    assert offers.offers_from_event("population.person", str(family["child"].uid)) == []


def test_a_marriage_offers_the_marriage_bundle_to_both_parties(family, django_user_model):
    groom = _person(make_resident_id("370102", datetime.date(1995, 1, 1), 55), "孙新郎", "1", "1995-01-01")
    bride = _person(make_resident_id("370102", datetime.date(1996, 1, 1), 66), "周新娘", "2", "1996-01-01")
    registry.create_record(
        registry.get_registry("population.event"),
        {
            "document_no": "J370102-2025-000001",
            "kind": "marriage",
            "person": str(groom.uid),
            "other_party": str(bride.uid),
            "date": "2025-06-01",
            "place_division": "370102",
        },
        actor="system:test",
        source=_dept("MZ"),
    )
    _drain()
    made = {offers.offer_prefill(o)["spouse_name"]: o for o in ProactiveOffer.objects.filter(bundle__code="marriage")}
    assert set(made) == {"孙新郎", "周新娘"}
    assert offers.offer_prefill(made["孙新郎"])["spouse_id_number"] == make_resident_id(
        "370102", datetime.date(1995, 1, 1), 55
    )
    assert made["孙新郎"].holder_id == blind_index(
        make_resident_id("370102", datetime.date(1996, 1, 1), 66), purpose="resident_id"
    )


def test_the_parent_accepts_on_the_page_with_the_form_prefilled(family, client):
    _birth(family)
    _drain()
    mother = family["mother_user"]
    offer = offers.offers_for(mother).get()
    client.force_login(mother)
    mine = client.get("/services/my/").content.decode()
    assert "为您推荐" in mine and f"/services/my/offers/{offer.pk}/" in mine
    page = client.get(f"/services/my/offers/{offer.pk}/").content.decode()
    assert "王小宝" in page and "Q370102000001" in page
    assert MOTHER_ID not in page and MOTHER_ID[:3] in page  # masked
    assert 'name="child_name"' not in page and 'name="bank"' in page  # pre-filled fields are not asked again
    missing = client.post(f"/services/my/offers/{offer.pk}/", {})
    assert missing.status_code == 400 and not BundleCase.objects.exists()
    answer = {
        "bank": "建设银行",
        "000114001000.birthplace": "济南市历下区",
        "000114001000.institution": "济南市妇幼保健院",
        "000114001000.mother_name": "李妈妈",
        "child_name": "别的名字",  # ignored: the authoritative record wins
    }
    done = client.post(f"/services/my/offers/{offer.pk}/", answer)
    case = BundleCase.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/services/my/bundles/{case.number}/"
    offer.refresh_from_db()
    assert offer.status == "accepted" and offer.case == case and offer.responded_at
    data = bundles.case_data(case)
    assert data["child_name"] == "王小宝" and data["child_sex"] == "男" and data["guardian_id_number"] == MOTHER_ID
    assert case.applications.count() == 4 and case.applicant == mother
    registration = Application.objects.get(bundle_case=case, item__basic_code="000112001000")
    assert registration.holder_id == offer.holder_id
    assert AuditRecord.objects.filter(action="services.offer.accept", target_id=str(offer.pk)).exists()
    # answered: a second confirmation is refused, nothing more is stored
    again = client.post(f"/services/my/offers/{offer.pk}/", answer)
    assert again.status_code == 302 and BundleCase.objects.count() == 1


def test_only_the_holder_sees_or_answers_an_offer(family, client):
    _birth(family)
    _drain()
    offer = offers.offers_for(family["mother_user"]).get()
    for user in (family["stranger"], family["unverified"]):
        client.force_login(user)
        assert client.get(f"/services/my/offers/{offer.pk}/").status_code == 404
        assert client.post(f"/services/my/offers/{offer.pk}/decline/").status_code == 404
        assert client.get(f"{API}/offers/{offer.pk}").status_code == 404
        assert (
            client.post(f"{API}/offers/{offer.pk}/accept", {"data": {}}, content_type="application/json").status_code
            == 404
        )
        assert client.get(f"{API}/offers").json() == []
        assert "为您推荐" not in client.get("/services/my/").content.decode()
    with pytest.raises(PermissionDenied):
        offers.accept_offer(offer, actor=family["stranger"], data={"bank": "工商银行"})
    with pytest.raises(PermissionDenied):
        offers.decline_offer(offer, actor=family["stranger"])
    offer.refresh_from_db()
    assert offer.status == "offered" and not BundleCase.objects.exists()


def test_api_accept_decline_and_conflicts(family, client, django_user_model):
    _birth(family)
    _drain()
    father_user = _verified(django_user_model, "baba", "王爸爸", FATHER_ID)
    client.force_login(family["mother_user"])
    listed = client.get(f"{API}/offers").json()
    assert len(listed) == 1 and listed[0]["bundle"] == "newborn" and listed[0]["status"] == "offered"
    assert dict(listed[0]["facts"])["婴儿姓名"] == "王小宝"
    offer_id = listed[0]["id"]
    bad = client.post(f"{API}/offers/{offer_id}/accept", {"data": {}}, content_type="application/json")
    assert bad.status_code == 400 and ("bank",) in {tuple(e["loc"]) for e in bad.json()["errors"]}
    data = {
        "bank": "工商银行",
        "000114001000.birthplace": "济南市历下区",
        "000114001000.institution": "济南市妇幼保健院",
        "000114001000.mother_name": "李妈妈",
    }
    ok = client.post(f"{API}/offers/{offer_id}/accept", {"data": data}, content_type="application/json")
    assert ok.status_code == 201 and len(ok.json()["applications"]) == 4
    again = client.post(f"{API}/offers/{offer_id}/accept", {"data": data}, content_type="application/json")
    assert again.status_code == 409 and again["Content-Type"].startswith("application/problem+json")
    assert client.post(f"{API}/offers/{offer_id}/decline").status_code == 409
    assert client.get(f"{API}/offers").json()[0]["case"] == ok.json()["number"]

    client.force_login(father_user)
    (father_offer,) = client.get(f"{API}/offers").json()
    declined = client.post(f"{API}/offers/{father_offer['id']}/decline")
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert AuditRecord.objects.filter(action="services.offer.decline").count() == 1
    assert BundleCase.objects.count() == 1


def test_expiry_job_marks_old_offers_expired(family, settings):
    _birth(family)
    _drain()
    offer = offers.offers_for(family["mother_user"]).get()
    assert offers.expire_offers() == 0
    assert "dgov.services.offers.expiry_job" in settings.WORKER_PERIODIC_JOBS
    ProactiveOffer.objects.update(expires_on=datetime.date.today() - datetime.timedelta(days=1))
    offer.refresh_from_db()
    with pytest.raises(offers.OfferClosed):
        offers.accept_offer(offer, actor=family["mother_user"], data={"bank": "工商银行"})
    assert offers.expiry_job() == 2
    assert set(ProactiveOffer.objects.values_list("status", flat=True)) == {"expired"}
    assert offers.expire_offers() == 0
    record = AuditRecord.objects.get(action="services.offer.expire")
    assert record.detail["count"] == 2
    assert not BundleCase.objects.exists()


def test_a_prefilled_value_the_form_refuses_is_named_on_the_page(family, client):
    _birth(family)
    _drain()
    offer = offers.offers_for(family["mother_user"]).get()
    offer.prefill = '{"child_name": "' + "王" * 25 + '", "child_sex": "男", "born_on": "2025-03-01"}'
    offer.save(update_fields=["prefill"])
    client.force_login(family["mother_user"])
    answer = {
        "guardian_id_number": MOTHER_ID,
        "bank": "工商银行",
        "000114001000.birthplace": "济南市历下区",
        "000114001000.institution": "济南市妇幼保健院",
        "000114001000.mother_name": "李妈妈",
    }
    refused = client.post(f"/services/my/offers/{offer.pk}/", answer)
    assert refused.status_code == 400 and "婴儿姓名：最多 20 个字符。" in refused.content.decode()
    offer.refresh_from_db()
    assert offer.status == "offered" and not BundleCase.objects.exists()


def test_api_offer_list_builds_each_bundle_form_once(family, client, django_assert_max_num_queries):
    _birth(family)
    _birth(family, document_no="Q370102000002")  # twins: two births, two offers of the same bundle to the mother
    _drain()
    client.force_login(family["mother_user"])
    # session, user, offers, the bundle's items once (not once per offer)
    with django_assert_max_num_queries(4):
        listed = client.get(f"{API}/offers").json()
    assert len(listed) == 2 and {offer["bundle"] for offer in listed} == {"newborn"}
    assert all(dict(offer["facts"])["婴儿姓名"] == "王小宝" for offer in listed)
