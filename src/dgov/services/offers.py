"""主动服务 (proactive offers): a base-library event offers a 一件事 bundle to the people it concerns.

When a record is created in ``population.event`` (delivered by the outbox, :mod:`dgov.services.handlers`),
``settings.SERVICES_OFFER_RULES`` says which bundle its ``kind`` offers and what the offer pre-fills::

    {"birth": {"bundle": "newborn", "prefill": {"child_name": "person.name", …}}, …}

The prefill maps a combined-form field (:mod:`dgov.services.bundles`) to ``<source>.<registry field>``,
the sources being ``event`` (the event record), ``person`` (the event's person: the newborn, the
first party), ``holder`` (the person the offer is for) and ``other`` (the other party of a
marriage, seen from the holder). Enum codes become their Chinese labels (sex ``1`` → ``男``), as the
item forms use them. A prefill key that is no combined-form field (e.g. the certificate number) is
kept as a fact shown to the holder.

Who is offered
    * a birth: the parents — the event's ``other_party`` when recorded, and, when the newborn's
      ``population.person`` record lists it as a child (``relation`` ``child``) of a household, that
      household's head and the head's spouse (``relation`` ``spouse``). The demo population links
      newborns this way; a birth certificate's WJ record cannot set ``other_party`` (an MZ field),
      so the household is the usual route.
    * any other kind with a rule (marriage by default): the event's person and its other party,
      each with the other as ``other``.
    Only persons of status ``normal`` with an ID number are offered. The offer's holder index is
    the blind index of the person's ID number (purpose ``resident_id``), the account's
    ``id_number_digest`` once verified — so only that verified account sees and answers it.

Each offer is created once per (bundle, holder, event) — the unique constraint makes a repeated
delivery a no-op — with the facts sealed, expiring after ``SERVICES_OFFER_DAYS`` (90) days; audited
(``services.offer.create``), the reads of the persons' records logged in the registry access log
(谁查了我的数据, purpose 主动服务), and the holder told in-app when they have a verified account.
The holder accepts (:func:`accept_offer`: the combined form pre-filled, the holder adds what is
missing → :func:`dgov.services.bundles.submit_bundle`) or declines; :func:`expiry_job` (a periodic
worker job) marks offers past ``expires_on`` expired.
"""

from __future__ import annotations

import datetime
import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dgov.identity import realname
from dgov.kernel.masking import mask_id_number
from dgov.kernel.notify import NotificationTemplate, register_template
from dgov.kernel.services import audit
from dgov.kernel.services.notify import notify
from dgov.registry import services as registry
from dgov.registry.models import Record
from dgov.services import bundles
from dgov.services.bundles import OfferClosed
from dgov.services.models import Bundle, BundleCase, ProactiveOffer

__all__ = [
    "OfferClosed",
    "EVENT_REGISTRY",
    "offer_rules",
    "offers_from_event",
    "offers_for",
    "visible_offer",
    "offer_prefill",
    "offer_form_values",
    "offer_facts",
    "is_open",
    "accept_offer",
    "decline_offer",
    "expire_offers",
    "expiry_job",
]

EVENT_REGISTRY = "population.event"
PERSON_REGISTRY = "population.person"
HOUSEHOLD_REGISTRY = "population.household"
ACTOR = "system:services.offers"
OFFER_TEMPLATE = "services.offer.created"
# Labels of facts that are not combined-form fields.
FACT_LABELS = {
    "certificate_no": gettext_lazy("证明文书编号"),
    "married_on": gettext_lazy("登记日期"),
}
EVENT_LABELS = {
    "birth": gettext_lazy("出生登记"),
    "death": gettext_lazy("死亡登记"),
    "marriage": gettext_lazy("结婚登记"),
    "divorce": gettext_lazy("离婚登记"),
}
register_template(
    OFFER_TEMPLATE,
    NotificationTemplate(
        title=gettext_lazy("为您推荐：{bundle}"),
        body=gettext_lazy(
            "根据{event}信息，您可以一次办理“{bundle}”：表单已预填，确认即可提交。请于 {expires} 前确认。"
        ),
    ),
)


def offer_rules() -> dict:
    """Event kind → ``{"bundle": code, "prefill": {field: "<source>.<field>"}}`` (``SERVICES_OFFER_RULES``)."""
    return getattr(settings, "SERVICES_OFFER_RULES", {}) or {}


def offer_days() -> int:
    """How many days an offer stays open (``SERVICES_OFFER_DAYS``, default 90)."""
    return int(getattr(settings, "SERVICES_OFFER_DAYS", 90))


# --- creating offers from events ------------------------------------------------------------------------


def _live(code: str, uid) -> Record | None:
    """The live record of the registry with this uid, if any."""
    if not uid:
        return None
    return (
        Record.objects.select_related("registry")
        .filter(registry__code=code, uid=str(uid), deleted_at__isnull=True)
        .first()
    )


def _parties(kind: str, event: dict) -> tuple[Record | None, list[tuple[Record, Record | None]], list[Record]]:
    """(the event's person, [(holder, other party or None)], every record read) for an event."""
    person = _live(PERSON_REGISTRY, event.get("person"))
    other = _live(PERSON_REGISTRY, event.get("other_party"))
    read = [r for r in (person, other) if r is not None]
    if kind != "birth":
        pairs = [(p, o) for p, o in ((person, other), (other, person)) if p is not None]
        return person, pairs, read
    parents = [other] if other is not None else []
    values = registry.record_values_now(person) if person is not None else {}
    household = _live(HOUSEHOLD_REGISTRY, values.get("household")) if values.get("relation") == "child" else None
    if household is not None:
        read.append(household)
        head = _live(PERSON_REGISTRY, registry.record_values_now(household).get("head"))
        # The household's members through the blind index of the lookup field, not a scan of the library.
        members = registry.find_records(registry.get_registry(PERSON_REGISTRY), "household", str(household.uid))
        spouses = [m for m in members[:50] if registry.record_values_now(m).get("relation") == "spouse"][:5]
        for parent in [head, *spouses]:
            if parent is not None and all(parent.pk != p.pk for p in parents):
                parents.append(parent)
                read.append(parent)
    return person, [(parent, None) for parent in parents], read


def _value(source: str, context: dict[str, tuple[dict, dict]]):
    """The value of ``<source>.<field>`` in the context; an enum code as its (Chinese) label."""
    prefix, _sep, name = source.partition(".")
    values, fields = context.get(prefix, ({}, {}))
    value = values.get(name)
    if value in (None, ""):
        return None
    definition = fields.get(name)
    if definition is not None and definition.type == "enum":
        return definition.choice_label(value)
    return value


def _fields(code: str) -> dict:
    """The registry's field definitions by name."""
    return {f.name: f for f in registry.registry_fields(registry.get_registry(code))}


def offers_from_event(registry_code: str, uid: str, *, actor=ACTOR) -> list[ProactiveOffer]:
    """Create the offers a new event record calls for; returns the offers made now (none when already made).

    Runs in one transaction (the outbox handler's, when called from it); idempotent through the
    unique constraint on (bundle, holder, event).
    """
    if registry_code != EVENT_REGISTRY:
        return []
    record = _live(EVENT_REGISTRY, uid)
    if record is None:
        return []
    event = registry.record_values_now(record)
    kind = str(event.get("kind") or "")
    rule = offer_rules().get(kind)
    bundle = Bundle.objects.filter(code=(rule or {}).get("bundle", ""), is_active=True).first()
    if rule is None or bundle is None:
        return []
    person, pairs, read = _parties(kind, event)
    with transaction.atomic():
        return _make_offers(bundle, record, event, kind, rule, person, pairs, read, actor=actor)


def _make_offers(bundle, record, event, kind, rule, person, pairs, read, *, actor) -> list[ProactiveOffer]:
    """Create one offer per holder (see :func:`offers_from_event`), inside its transaction."""
    person_fields, event_fields = _fields(PERSON_REGISTRY), _fields(EVENT_REGISTRY)
    expires = timezone.localdate() + datetime.timedelta(days=offer_days())
    made, holders = [], set()
    person_values = registry.record_values_now(person) if person is not None else {}
    for holder, other in pairs:
        values = registry.record_values_now(holder)
        digest = realname.id_number_digest(values.get("id_number"))
        if not digest or digest in holders or values.get("status") != "normal":
            continue
        holders.add(digest)
        context = {
            "event": (event, event_fields),
            "person": (person_values, person_fields),
            "holder": (values, person_fields),
            "other": (registry.record_values_now(other) if other is not None else {}, person_fields),
        }
        with translation.override("zh-hans"):
            prefill = {
                key: value
                for key, source in (rule.get("prefill") or {}).items()
                if (value := _value(str(source), context)) is not None
            }
        offer, created = ProactiveOffer.objects.get_or_create(
            bundle=bundle,
            holder_id=digest,
            event_uid=str(record.uid),
            defaults={
                "holder_kind": "person",
                "event_registry": EVENT_REGISTRY,
                "event_kind": kind,
                "prefill": json.dumps(prefill, ensure_ascii=False),
                "expires_on": expires,
            },
        )
        if not created:
            continue
        audit.record(
            "services.offer.create",
            actor=actor,
            target=offer,
            detail={
                "bundle": bundle.code,
                "event_registry": EVENT_REGISTRY,
                "event_uid": str(record.uid),
                "kind": kind,
            },
        )
        _tell_holder(offer, digest, kind=kind, actor=actor)
        made.append(offer)
    if made:
        registry.log_reads(
            read,
            actor=actor,
            purpose=_("主动服务：%(bundle)s") % {"bundle": bundle.name},
            channel="services",
        )
    return made


def _tell_holder(offer: ProactiveOffer, digest: str, *, kind: str, actor) -> None:
    """An in-app message to the holder's verified person account, when there is one."""
    user = (
        get_user_model()
        .objects.filter(kind="person", id_number_digest=digest, real_name_level__gte=2, is_active=True)
        .first()
    )
    if user is None:
        return
    notify(
        user,
        OFFER_TEMPLATE,
        {
            "bundle": offer.bundle.name,
            "event": str(EVENT_LABELS.get(kind, kind)),
            "expires": offer.expires_on.isoformat(),
            "link": f"/services/my/offers/{offer.pk}/",
        },
        channels=("in_app",),
        actor=actor,
    )


# --- the holder's side ----------------------------------------------------------------------------------


def _digest_of(user) -> str:
    """The holder index of a verified person account ("" for anyone else)."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "kind", "") != "person":
        return ""
    if getattr(user, "real_name_level", 1) < 2:
        return ""
    return getattr(user, "id_number_digest", "") or ""


def offers_for(user) -> QuerySet[ProactiveOffer]:
    """The offers of a verified person account (为您推荐), newest first; none for anyone else."""
    digest = _digest_of(user)
    if not digest:
        return ProactiveOffer.objects.none()
    return ProactiveOffer.objects.filter(holder_kind="person", holder_id=digest).select_related("bundle", "case")


def visible_offer(user, offer_id) -> ProactiveOffer | None:
    """The offer if ``user`` is its holder, else None (the pages answer 404)."""
    try:
        return offers_for(user).filter(pk=int(offer_id)).first()
    except (TypeError, ValueError):
        return None


def offer_prefill(offer: ProactiveOffer) -> dict:
    """The offer's sealed facts (decrypted)."""
    return json.loads(offer.prefill or "{}")


def offer_form_values(offer: ProactiveOffer, form: bundles.CombinedForm | None = None) -> dict:
    """The pre-filled values of the bundle's combined form (facts that are no form field left out)."""
    form = form or bundles.combined_form(offer.bundle)
    return {key: value for key, value in offer_prefill(offer).items() if key in form.schema["properties"]}


def offer_facts(offer: ProactiveOffer, form: bundles.CombinedForm | None = None) -> list[tuple[str, str]]:
    """(label, value) of the offer's facts for display; ID numbers masked."""
    form = form or bundles.combined_form(offer.bundle)
    props = form.schema["properties"]
    rule = (offer_rules().get(offer.event_kind) or {}).get("prefill") or {}
    facts = []
    for key, value in offer_prefill(offer).items():
        label = props.get(key, {}).get("title") or str(FACT_LABELS.get(key, key))
        shown = mask_id_number(value) if str(rule.get(key, "")).endswith(".id_number") else str(value)
        facts.append((label, shown))
    return facts


def is_open(offer: ProactiveOffer) -> bool:
    """Whether the offer may still be answered: offered and not past its last day (the expiry job may lag)."""
    return offer.status == ProactiveOffer.Status.OFFERED and offer.expires_on >= timezone.localdate()


def _check_holder(offer: ProactiveOffer, actor) -> None:
    """Only the offer's holder (verified person account) may answer it."""
    if not _digest_of(actor) or _digest_of(actor) != offer.holder_id:
        raise PermissionDenied(_("只有被推荐人本人可以处理该推荐服务。"))


def accept_offer(offer: ProactiveOffer, *, actor, data: dict, division=None, files: dict | None = None) -> BundleCase:
    """The holder confirms: the combined form pre-filled from the offer plus ``data`` is submitted as a bundle.

    Pre-filled values come from the authoritative record and win over ``data``; the holder only
    adds the missing fields. The offer becomes accepted and linked to the case in the same
    transaction (:func:`dgov.services.bundles.submit_bundle`); raises :class:`OfferClosed` when it
    was answered or expired.
    """
    _check_holder(offer, actor)
    if not is_open(offer):
        raise OfferClosed(_("该推荐服务已处理或已过期。"))
    form = bundles.combined_form(offer.bundle)
    merged = {**dict(data or {}), **offer_form_values(offer, form)}
    return bundles.submit_bundle(
        offer.bundle, applicant=actor, data=merged, actor=actor, division=division, offer=offer, files=files
    )


def decline_offer(offer: ProactiveOffer, *, actor) -> ProactiveOffer:
    """The holder declines the offer (谢绝); audited."""
    _check_holder(offer, actor)
    with transaction.atomic():
        locked = ProactiveOffer.objects.select_for_update().get(pk=offer.pk)
        if locked.status != ProactiveOffer.Status.OFFERED:
            raise OfferClosed(_("该推荐服务已处理或已过期。"))
        locked.status = ProactiveOffer.Status.DECLINED
        locked.responded_at = timezone.now()
        locked.save(update_fields=["status", "responded_at"])
        audit.record("services.offer.decline", actor=actor, target=locked, detail={"bundle": offer.bundle.code})
    return locked


# --- expiry ---------------------------------------------------------------------------------------------


def expire_offers(*, today: datetime.date | None = None, actor="system:worker") -> int:
    """Mark open offers past their ``expires_on`` expired (one audit record per run that changed any)."""
    today = today or timezone.localdate()
    due = ProactiveOffer.objects.filter(status=ProactiveOffer.Status.OFFERED, expires_on__lt=today)
    ids = list(due.order_by("pk").values_list("pk", flat=True)[:1000])
    if not ids:
        return 0
    with transaction.atomic():
        count = ProactiveOffer.objects.filter(pk__in=ids, status=ProactiveOffer.Status.OFFERED).update(
            status=ProactiveOffer.Status.EXPIRED
        )
        audit.record(
            "services.offer.expire", actor=actor, detail={"count": count, "offers": ids, "today": today.isoformat()}
        )
    return count


def expiry_job() -> int:
    """Worker entry point (``WORKER_PERIODIC_JOBS``): :func:`expire_offers` for today."""
    return expire_offers()
