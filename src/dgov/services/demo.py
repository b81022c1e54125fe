"""Demo service catalogue (`dgov demo`): items, bundles, implementations and one 三级四同 drift (idempotent).

Loads ``data/items.yaml`` (after the demo licence types it refers to), gives every item its
implementations in the demo province (:func:`dgov.services.catalogue.implement_items`), and, once,
lets one county implementation publish an outdated item name so that the drift report has a
finding to show; then runs the 三级四同 check. Bulk inserts only, so it stays quick. While there
are no applications yet, it also generates about six months of application history
(:mod:`dgov.services.demo_history`) for the metrics dashboard, the inboxes and supervision.

主动服务 (proactive offer): once, a baby is born into the demo citizen's household
(:func:`seed_birth_offer`) — the newborn's ``population.person`` record by the household's 公安
(the person library's only authority), the birth in ``population.event`` by 卫健 (births are WJ's
under the event library's conditional authority) — and the offer is delivered at once with
:func:`dgov.services.offers.offers_from_event`, as the worker would, so the citizen's 我的办件 shows
为您推荐 (新生儿出生“一件事”) on the first start.
"""

from __future__ import annotations

import datetime
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from dgov.kernel.services import audit
from dgov.kernel.services.organizations import find_department
from dgov.kernel.validators import make_resident_id
from dgov.licenses import catalogue as licence_catalogue
from dgov.registry import services as registry
from dgov.services import catalogue, demo_history, offers
from dgov.services.models import Application, Bundle, ItemDrift, ItemImplementation, ProactiveOffer

ACTOR = "system:demo"
#: The county implementation that publishes an outdated name in the demo (个体工商户登记 under its old name).
DRIFT_CODE = "000117002000"
DRIFT_NAME = "个体工商户开业登记"


def seed(*, province_code: str, seed: int = 0) -> str:
    """Load the demo catalogue and its implementations for the province; returns a one-line summary."""
    licence_catalogue.load_types(
        licence_catalogue.read_type_file(licence_catalogue.DEMO_TYPES),
        actor=ACTOR,
        source="demo",
        province_code=province_code,
    )
    report = catalogue.load_catalogue(
        catalogue.read_catalogue_file(catalogue.DEMO_ITEMS),
        actor=ACTOR,
        source="demo",
        province_code=province_code,
    )
    if not report.ok:
        return report.to_text()
    made = catalogue.implement_items(province_code, actor=ACTOR)
    if not ItemDrift.objects.exists():
        stale = (
            ItemImplementation.objects.filter(item__basic_code=DRIFT_CODE, level=3).order_by("division_code").first()
        )
        if stale is not None:
            with transaction.atomic():
                stale.name = DRIFT_NAME
                stale.save(update_fields=["name", "updated_at"])
                audit.record("services.implementation.demo_drift", actor=ACTOR, target=stale)
    check = catalogue.check_consistency(actor=ACTOR)
    summary = f"{report.to_text()} 实施清单新增 {made} 条。{check.to_text()}"
    offered = seed_birth_offer()
    if offered:
        summary += "\n" + offered
    # About six months of applications (办件历史) for the metrics, the inbox and supervision — once.
    if not Application.objects.exists():
        count = int(getattr(settings, "SERVICES_DEMO_HISTORY_COUNT", demo_history.DEFAULT_COUNT))
        summary += "\n" + demo_history.generate(province_code=province_code, seed=seed, count=count).to_text()
    return summary


# --- 主动服务: a birth in the demo citizen's household ---------------------------------------------------------

#: The demo citizen's account (dgov.registry.demo), verified against the population library.
CITIZEN = "citizen"
#: The birth certificate number of the demo birth (出生医学证明编号), Q + county + serial: the demo's own births
#: are numbered from 000001, so 900001 stays clear of them; it also makes the seeding idempotent.
BIRTH_DOCUMENT = "Q{county}900001"
NEWBORN_GIVEN_NAME = "安然"
NEWBORN_AGE_DAYS = 6


def _department_above(division_code: str, kind: str):
    """The department of ``kind`` at the county, else its city, else the province (as applications find them)."""
    for code in (division_code, division_code[:4] + "00", division_code[:2] + "0000"):
        department = find_department(code, kind)
        if department is not None:
            return department
    return None


def _free_id_number(persons, county: str, born: datetime.date) -> str:
    """A resident ID number (a girl's: even sequence) that no person of the library has yet."""
    for sequence in range(998, 0, -2):
        id_number = make_resident_id(county, born, sequence)
        if registry.find_record(persons, "id_number", id_number) is None:
            return id_number
    raise RuntimeError("no free resident ID number for the demo newborn")  # 499 births on one day in one county


def seed_birth_offer() -> str:
    """Once: a newborn in the demo citizen's household, her birth (卫健), and the 主动服务 offer it makes.

    Only when the demo citizen is verified and is the head (or the head's spouse) of a household
    of the population library — the parents a birth offers the newborn bundle to
    (:mod:`dgov.services.offers`). Idempotent: the birth is found again by its certificate number,
    and offers are made once per (bundle, holder, event). Returns a one-line summary ("" when there
    is nothing to do, e.g. no demo population).
    """
    started = time.perf_counter()
    citizen = (
        get_user_model()
        .objects.filter(username=CITIZEN, kind="person", real_name_level__gte=2)
        .exclude(id_number_digest="")
        .first()
    )
    rule = offers.offer_rules().get("birth") or {}
    if citizen is None or not citizen.id_number or not Bundle.objects.filter(code=rule.get("bundle", "")).exists():
        return ""
    try:
        persons = registry.get_registry(offers.PERSON_REGISTRY)
        births = registry.get_registry(offers.EVENT_REGISTRY)
    except registry.RegistryNotFound:
        return ""
    me = registry.find_record(persons, "id_number", citizen.id_number)
    mine = registry.record_values_now(me) if me is not None else {}
    household = offers._live(offers.HOUSEHOLD_REGISTRY, mine.get("household"))
    if household is None or mine.get("relation") not in ("head", "spouse"):
        return "主动服务：演示账号 citizen 不是户主或户主的配偶，未生成出生推荐。"
    home = registry.record_values_now(household)
    county = str(home.get("division_code") or mine.get("division_code") or "")[:6]
    document_no = BIRTH_DOCUMENT.format(county=county)
    with transaction.atomic():
        event = registry.find_record(births, "document_no", document_no)
        if event is None:
            police, health = _department_above(county, "GA"), _department_above(county, "WJ")
            if police is None or health is None:
                return ""
            head = offers._live(offers.PERSON_REGISTRY, home.get("head"))
            head_name = registry.record_values_now(head).get("name") if head is not None else None
            surname = str(head_name or mine.get("name") or "王")[:1]
            born = timezone.localdate() - datetime.timedelta(days=NEWBORN_AGE_DAYS)
            newborn = {
                "id_number": _free_id_number(persons, county, born),
                "name": surname + NEWBORN_GIVEN_NAME,
                "sex": "2",
                "birth_date": born.isoformat(),
                "ethnicity": mine.get("ethnicity"),
                "address": home.get("address") or mine.get("address"),
                "division_code": home.get("division_code") or mine.get("division_code"),
                "household": str(household.uid),
                "relation": "child",
                "status": "normal",
            }
            baby = registry.create_record(
                persons, {k: v for k, v in newborn.items() if v not in (None, "")}, actor=ACTOR, source=police
            )
            event = registry.create_record(
                births,
                {
                    "document_no": document_no,
                    "kind": "birth",
                    "person": str(baby.uid),
                    "date": born.isoformat(),
                    "place_division": county,
                    "registrar": health.code,
                },
                actor=ACTOR,
                source=health,
            )
        # Delivered now, as the outbox worker would (it will find the offers made and make none). Offers are
        # made in one transaction, so any offer of the event means a repeated seeding has nothing to do.
        made = []
        if not ProactiveOffer.objects.filter(event_uid=str(event.uid)).exists():
            made = offers.offers_from_event(offers.EVENT_REGISTRY, str(event.uid))
    seconds = time.perf_counter() - started
    return f"主动服务：出生登记 {document_no}，新生儿“一件事”推荐新增 {len(made)} 条（{seconds:.2f} 秒）。"
