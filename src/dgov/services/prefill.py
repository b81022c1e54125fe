"""Pre-filling applications from the base libraries and e-licences, with the applicant's consent (数据授权).

The flow of the apply page (``/services/items/<code>/apply/``):

1. :func:`prefill_offer` — for a verified account (real-name level 2 and up, with its verified ID
   number or, for an enterprise account, its USCC) — says what *could* be pre-filled and which
   materials an e-licence could replace, from the item's ``x-source`` declarations
   (:mod:`dgov.services.sources`) and guide materials alone: no personal data is read. An
   unverified account is offered nothing.
2. :func:`grant_and_prefill` — the applicant consents: a :class:`PrefillConsent` is stored (valid
   ``SERVICES_PREFILL_CONSENT_HOURS``, default 24 h), the applicant's **own** records are read from
   the registries (found by the registry's subject field with the verified number), every read is
   logged in the registry access log (reader: the account, channel ``services``, purpose
   ``一网通办预填：<item>``, no reader department) so it shows on "who read my data", and the
   holder's valid licences of the types involved are found. Returns the values, their sources and
   the licences usable per guide material. Values stay editable: the form marks each with its
   source (来自人口基础库) and the consent keeps, per field, a keyed digest of the value, so the
   submission can tell the official which pre-filled values the applicant changed.
3. :func:`submit_with_materials` — in one transaction: the application
   (:func:`dgov.services.applications.submit`), the uploaded files, the licences used in place of
   paper (each with a licence consent for the competent department, service item = the item's basic
   code, until the legal due date + ``SERVICES_PREFILL_LICENCE_EXTRA_DAYS``, default 30 days), a
   shared-data row for every 免提交 material, and — with a consent — the consent linked and a
   ``prefilled`` event naming fields and registries (never values). A required material not provided
   is an error on that material's field (``material_<id>``) and nothing is stored. Without a consent
   nothing is read: licence materials are then uploaded like files.

:func:`shared_data_for` is the department's side: the data of the 免提交 materials of an application,
read through the registry's ``read_record`` with the official as actor (the department's rights,
logged, masked per the registry's rules).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.fields import blind_index
from dgov.kernel.masking import mask_id_number
from dgov.kernel.services import audit
from dgov.licenses import services as licence_services
from dgov.licenses import wallet
from dgov.licenses.models import HolderKind
from dgov.registry import services as registry_services
from dgov.registry.models import Record
from dgov.services import applications, materials, sources
from dgov.services.form_schema import fields_of, validate_form
from dgov.services.materials import material_field
from dgov.services.models import Application, ApplicationEvent, ApplicationMaterial, GuideMaterial, PrefillConsent

__all__ = [
    "CHANNEL",
    "MIN_LEVEL",
    "OfferedLicence",
    "OfferedRegistry",
    "PrefillOffer",
    "PrefillResult",
    "SharedData",
    "Subject",
    "Upload",
    "consent_for",
    "consent_hours",
    "grant_and_prefill",
    "licence_extra_days",
    "masked_licence_number",
    "material_field",
    "prefill_offer",
    "shared_data_for",
    "subject_of",
    "submit_with_materials",
    "usable_licences",
]

CHANNEL = "services"
MIN_LEVEL = 2
# Purposes stored in consents and access logs: records, so in the platform's language whatever the page's.
PREFILL_PURPOSE = "一网通办预填：{item}"
LICENCE_PURPOSE = "一网通办办件 {number}（{item}）申请材料"
SHARED_PURPOSE = "办件 {number} 材料核验：{name}"
_DIGEST_PURPOSE = "services.prefill"


# --- settings -------------------------------------------------------------------------------------


def consent_hours() -> int:
    """How long a pre-fill consent stays usable (``SERVICES_PREFILL_CONSENT_HOURS``, default 24)."""
    return max(1, int(getattr(settings, "SERVICES_PREFILL_CONSENT_HOURS", 24) or 24))


def licence_extra_days() -> int:
    """Days a licence consent for the department lasts beyond the legal due date (default 30)."""
    return max(0, int(getattr(settings, "SERVICES_PREFILL_LICENCE_EXTRA_DAYS", 30) or 0))


# --- who is asking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """The person or enterprise a verified account stands for: kind, verified number, holder index."""

    kind: str  # "person" / "enterprise"
    number: str = field(repr=False)  # the verified ID number or USCC (personal data: never logged)
    index: str


def subject_of(user) -> Subject | None:
    """The verified subject of an account (level 2+, ID number sealed on it / enterprise USCC), else None."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "real_name_level", 1) < MIN_LEVEL:
        return None
    kind = getattr(user, "kind", "")
    if kind == HolderKind.PERSON:
        digest = getattr(user, "id_number_digest", "") or ""
        number = (getattr(user, "id_number", "") or "").strip().upper()
        # Accounts verified before the number was sealed on them have only the digest: nothing to look up with.
        if not digest or not number:
            return None
        return Subject(HolderKind.PERSON, number, digest)
    if kind == HolderKind.ENTERPRISE:
        uscc = (getattr(user, "enterprise_uscc", "") or "").strip().upper()
        if not uscc:
            return None
        return Subject(HolderKind.ENTERPRISE, uscc, licence_services.holder_index(HolderKind.ENTERPRISE, uscc))
    return None


def masked_licence_number(licence) -> str:
    """A licence's number masked for display (first 6 and last 4 kept, as ID numbers; some numbers are one)."""
    return mask_id_number(licence.number)


# --- the offer (no personal data read) ------------------------------------------------------------


@dataclass
class OfferedRegistry:
    """A registry the consent would let the platform read: its library's name and the form fields it fills."""

    code: str
    label: str
    name: str
    fields: list[str] = field(default_factory=list)


@dataclass
class OfferedLicence:
    """A licence type the consent would let the platform look up: the fields it fills, the materials it replaces."""

    code: str
    name: str
    fields: list[str] = field(default_factory=list)
    materials: list[str] = field(default_factory=list)


@dataclass
class PrefillOffer:
    """What a consent would cover for this item and account (for the consent prompt)."""

    registries: list[OfferedRegistry] = field(default_factory=list)
    licence_types: list[OfferedLicence] = field(default_factory=list)
    fields: dict[str, sources.Source] = field(default_factory=dict)
    data_materials: list[tuple[str, str]] = field(default_factory=list)  # (material, library) — 免提交

    @property
    def registry_codes(self) -> list[str]:
        """The registries' codes."""
        return [r.code for r in self.registries]

    @property
    def licence_type_codes(self) -> list[str]:
        """The licence types' codes."""
        return [t.code for t in self.licence_types]


def _reachable(info: sources.RegistryInfo | None, infos: dict, kind: str) -> bool:
    """Whether the subject's record in this registry can be found: installed, the right kind, its route installed."""
    if info is None or not info.installed or info.subject_kind != kind:
        return False
    if info.via is not None:
        return _reachable(infos.get(info.via[0]), infos, kind)
    return True


def prefill_offer(item, user) -> PrefillOffer | None:
    """What could be pre-filled and which materials replaced, for a verified account; None for anyone else.

    Reads only the catalogue and the registries' definitions — no record and no licence — so it
    can be shown before the applicant consents. None also when the item offers nothing to this
    kind of subject.
    """
    subject = subject_of(user)
    return _offer(item, subject, sources.registry_infos()) if subject is not None else None


def _offer(item, subject: Subject, infos: dict) -> PrefillOffer | None:
    """:func:`prefill_offer` for a known subject, with the registries already described."""
    titles = {name: prop.get("title", name) for name, prop, _required in fields_of(item.form_schema or {})}
    offer = PrefillOffer()
    registries: dict[str, OfferedRegistry] = {}
    licence_types: dict[str, OfferedLicence] = {}
    cache: dict = {}
    for name, _prop, source in sources.form_sources(item.form_schema or {}):
        if source.is_licence:
            licence_type = sources.resolve_licence_type(source.licence_type, cache=cache)
            if licence_type is None or licence_type.holder_kind != subject.kind:
                continue
            entry = licence_types.setdefault(
                licence_type.code, OfferedLicence(licence_type.code, str(licence_type.name))
            )
        else:
            info = infos.get(source.registry)
            if not _reachable(info, infos, subject.kind) or source.field not in info.fields:
                continue
            entry = registries.setdefault(info.code, OfferedRegistry(info.code, info.label, info.name))
        entry.fields.append(str(titles.get(name, name)))
        offer.fields[name] = source
    for material in item.materials.select_related("licence_type").order_by("position", "id"):
        if material.kind == GuideMaterial.Kind.LICENCE and material.licence_type is not None:
            licence_type = material.licence_type
            if licence_type.holder_kind != subject.kind:
                continue
            entry = licence_types.setdefault(
                licence_type.code, OfferedLicence(licence_type.code, str(licence_type.name))
            )
            entry.materials.append(material.name)
        elif material.kind == GuideMaterial.Kind.DATA and material.registry_code:
            offer.data_materials.append((material.name, sources.library_label(material.registry_code, infos)))
    offer.registries = list(registries.values())
    offer.licence_types = list(licence_types.values())
    if not offer.registries and not offer.licence_types:
        return None
    return offer


# --- consent and reading ---------------------------------------------------------------------------


@dataclass
class PrefillResult:
    """What a consent produced: the consent, ``{field: value}``, ``{field: source label}``, licences per material."""

    consent: PrefillConsent
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    licences: dict[int, Any] = field(default_factory=dict)
    not_found: list[str] = field(default_factory=list)  # labels of sources that had no record / licence


def _digest(value) -> str:
    """A keyed digest of a pre-filled value (to tell later whether the applicant changed it; not reversible)."""
    return blind_index(json.dumps(value, ensure_ascii=False, sort_keys=True), purpose=_DIGEST_PURPOSE)


def _form_value(definition, prop: dict, value):
    """A registry value as the form field wants it (enum codes → their Chinese labels), or None if unusable."""
    if value is None or value == "":
        return None
    if getattr(definition, "type", "") == "enum":
        labels = {code: label for label, code in definition.label_codes().items()}
        options = prop.get("enum")
        label = labels.get(str(value), str(value))
        if options:
            return value if value in options else (label if label in options else None)
        return label
    if isinstance(value, dict | list):
        return None
    return value


def _valid_value(name: str, prop: dict, value):
    """The value cleaned by the form's own rules for that field, or None when it would not pass them."""
    if value is None:
        return None
    raw = value if prop.get("type", "string") != "string" else str(value)
    cleaned, errors = validate_form({"type": "object", "properties": {name: prop}}, {name: raw})
    return None if errors else cleaned.get(name)


class _Reader:
    """The applicant's own records read for one consent; every record read is logged once, with its fields."""

    def __init__(self, subject: Subject, infos: dict, *, actor, purpose: str):
        self.subject, self.infos, self.actor, self.purpose = subject, infos, actor, purpose
        self._records: dict[str, tuple[Record, dict] | None] = {}
        self._read: dict[int, tuple[Record, dict, set[str]]] = {}

    def _note(self, record: Record, values: dict, names) -> None:
        """Remember that these fields of the record were read."""
        entry = self._read.setdefault(record.pk, (record, values, set()))
        entry[2].update(names)

    def record(self, code: str) -> tuple[Record, dict] | None:
        """The subject's live record in a registry (and its values), through the route when there is one."""
        if code in self._records:
            return self._records[code]
        info = self.infos.get(code)
        found = None
        if info is not None and info.via is not None:
            parent = self.record(info.via[0])
            if parent is not None:
                record, values = parent
                self._note(record, values, [info.via[1]])
                uid = values.get(info.via[1])
                target = (
                    Record.objects.select_related("registry")
                    .filter(registry__code=code, uid=uid, deleted_at__isnull=True)
                    .first()
                    if uid
                    else None
                )
                if target is not None:
                    found = (target, registry_services.record_values_now(target))
        elif info is not None and info.subject_field:
            try:
                registry = registry_services.get_registry(code)
            except registry_services.RegistryNotFound:
                registry = None
            record = (
                registry_services.find_record(registry, info.subject_field, self.subject.number) if registry else None
            )
            if record is not None:
                found = (record, registry_services.record_values_now(record))
        self._records[code] = found
        return found

    def value(self, code: str, name: str):
        """One field of the subject's record (the read noted), or None."""
        found = self.record(code)
        if found is None:
            return None
        record, values = found
        self._note(record, values, [name])
        return values.get(name)

    def log(self) -> int:
        """Write one access-log row per record read (who read my data); returns how many."""
        for record, values, names in self._read.values():
            entry = registry_services.access_log_entry(
                record.registry,
                record_id=record.pk,
                values=values,
                actor=self.actor,
                purpose=self.purpose,
                channel=CHANNEL,
                fields=sorted(names),
                department=None,
            )
            if not entry.subject_digest:  # a record keyed otherwise (户号, 参保号) was read for this subject
                entry = entry._replace(subject_digest=self.subject.index)
            entry.save()
        return len(self._read)


def _valid_licences(subject: Subject) -> dict[str, Any]:
    """The subject's newest valid licence per type code (the holder's own licences, by its blind index)."""
    found: dict[str, Any] = {}
    for licence in licence_services.find_by_holder(subject.kind, subject.number):
        if licence.holder_kind != subject.kind or wallet.effective_status(licence) != "valid":
            continue
        current = found.get(licence.licence_type.code)
        if current is None or licence.issued_at > current.issued_at:
            found[licence.licence_type.code] = licence
    return found


def usable_licences(item, user) -> dict[int, Any]:
    """``{guide material id: licence}``: the applicant's valid licence for each licence material of the item."""
    subject = subject_of(user)
    if subject is None:
        return {}
    return _per_material(item, _valid_licences(subject))


def _per_material(item, held: dict[str, Any]) -> dict[int, Any]:
    """``{guide material id: licence}`` for the item's licence materials whose type is among ``held`` (by code)."""
    return {
        material.pk: held[material.licence_type.code]
        for material in item.materials.filter(kind=GuideMaterial.Kind.LICENCE).select_related("licence_type")
        if material.licence_type is not None and material.licence_type.code in held
    }


def _licence_value(licence, item: str):
    """A licence's data item or attribute."""
    if item in sources.LICENCE_ATTRIBUTES:
        value = getattr(licence, item)
        return value.isoformat() if isinstance(value, datetime.date) else value
    return licence_services.licence_data(licence).get(item)


def grant_and_prefill(item, *, user) -> PrefillResult:
    """The applicant consents (数据授权): store the consent, read their own records and licences, log every read.

    PermissionDenied for an account that is not verified or an item that offers it nothing. The
    consent, the access-log rows and the audit record (``services.prefill.grant``: registries,
    licence types, fields — no values) are written in one transaction.
    """
    subject = subject_of(user)
    infos = sources.registry_infos() if subject is not None else {}
    offer = _offer(item, subject, infos) if subject is not None else None
    if subject is None or offer is None:
        with transaction.atomic():
            audit.record(
                "services.prefill.grant",
                actor=user,
                target=item,
                outcome="denied",
                detail={"item": item.basic_code, "reason": "unverified" if subject is None else "nothing offered"},
            )
        if subject is None:
            raise PermissionDenied(_("完成实名认证（二级及以上）后才能授权使用基础库数据和电子证照。"))
        raise PermissionDenied(_("本事项没有可为您自动填写的内容。"))
    purpose = PREFILL_PURPOSE.format(item=item.name)
    props = {name: prop for name, prop, _required in fields_of(item.form_schema or {})}
    cache: dict = {}
    with transaction.atomic():
        consent = PrefillConsent.objects.create(
            holder_kind=subject.kind,
            holder_id=subject.index,
            user=user,
            item=item,
            registries=offer.registry_codes,
            licence_types=offer.licence_type_codes,
            purpose=purpose[:300],
            valid_until=timezone.now() + datetime.timedelta(hours=consent_hours()),
        )
        reader = _Reader(subject, infos, actor=user, purpose=purpose)
        held = _valid_licences(subject) if offer.licence_types else {}
        result = PrefillResult(consent)
        filled = []
        used_licences = set()
        for name, source in offer.fields.items():
            prop = props.get(name, {})
            if source.is_licence:
                licence_type = sources.resolve_licence_type(source.licence_type, cache=cache)
                licence = held.get(licence_type.code) if licence_type is not None else None
                raw = _licence_value(licence, source.item) if licence is not None else None
                label = str(licence_type.name) if licence_type is not None else source.licence_type
                definition = None
                if licence is not None:
                    used_licences.add(licence.identifier)
            else:
                info = infos[source.registry]
                raw = reader.value(source.registry, source.field)
                label = info.label
                definition = info.fields.get(source.field)
            value = _valid_value(name, prop, _form_value(definition, prop, raw) if definition else raw)
            if value is None:
                if label not in result.not_found:
                    result.not_found.append(label)
                continue
            result.values[name] = value
            result.sources[name] = label
            filled.append({"field": name, "source": source.text, "digest": _digest(value)})
        reads = reader.log()
        result.licences = _per_material(item, held)
        consent.fields_filled = filled
        consent.save(update_fields=["fields_filled"])
        audit.record(
            "services.prefill.grant",
            actor=user,
            target=consent,
            detail={
                "item": item.basic_code,
                "registries": consent.registries,
                "licence_types": consent.licence_types,
                "fields": [f["field"] for f in filled],
                "records_read": reads,
                "licences": sorted(used_licences | {lic.identifier for lic in result.licences.values()}),
                "valid_until": consent.valid_until.isoformat(),
            },
        )
    result.not_found = [label for label in result.not_found if label not in result.sources.values()]
    return result


def consent_for(user, item, consent_id) -> PrefillConsent:
    """The user's own, unused, unexpired, unrevoked consent for this item; ValidationError otherwise.

    Another user's consent is refused exactly like one that does not exist (no IDOR).
    """
    refused = ValidationError({"consent": [_("数据授权无效或已过期，请重新授权，或不使用授权直接填写。")]})
    try:
        pk = int(consent_id)
    except (TypeError, ValueError):
        raise refused from None
    consent = PrefillConsent.objects.filter(
        pk=pk,
        user_id=getattr(user, "pk", None),
        item=item,
        revoked_at__isnull=True,
        application__isnull=True,
        valid_until__gt=timezone.now(),
    ).first()
    if consent is None:
        raise refused
    return consent


# --- submitting with materials ----------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """One uploaded file for a guide material."""

    file_name: str
    content_type: str
    data: bytes = field(repr=False)


def _licence_consent(holder, licence, app: Application, *, actor):
    """A licence consent in force for the competent department and this item, made when there is none."""
    for consent in wallet.consents_of(holder, licence):
        if (
            consent.grantee_id == app.department_id
            and consent.service_code in ("", app.item.basic_code)
            and wallet.consent_state(consent) == "active"
        ):
            return consent
    today = timezone.localdate()
    until = app.legal_due or today
    days = min(max(1, (until - today).days + licence_extra_days()), wallet.consent_max_days())
    return wallet.grant_consent(
        holder,
        licence,
        grantee=app.department,
        purpose=LICENCE_PURPOSE.format(number=app.number, item=app.item.name),
        days=days,
        service_code=app.item.basic_code,
    )


def submit_with_materials(
    item,
    *,
    applicant,
    data: dict,
    actor,
    uploads: dict | None = None,
    use_licence=None,
    consent: PrefillConsent | None = None,
    division=None,
) -> Application:
    """Submit an application with its materials in one transaction (see the module docstring).

    ``uploads`` maps guide-material ids to :class:`Upload`; ``use_licence`` is the set of licence
    materials for which the applicant's licence is used (None: every one they hold); licences are
    looked up only under a ``consent`` (from :func:`consent_for`). Per-field errors as a
    ValidationError: form fields by name, materials by :func:`material_field`, ``consent``.
    """
    uploads = dict(uploads or {})
    errors: dict[str, list[str]] = {}
    _cleaned, form_errors = validate_form(item.form_schema or {}, data)
    errors.update(form_errors)
    if consent is not None and (
        consent.user_id != getattr(applicant, "pk", None)
        or consent.item_id != item.pk
        or consent.application_id is not None
        or consent.revoked_at is not None
        or consent.valid_until <= timezone.now()
    ):
        errors["consent"] = [_("数据授权无效或已过期，请重新授权，或不使用授权直接填写。")]
        consent = None
    held = usable_licences(item, applicant) if consent is not None else {}
    guide = list(item.materials.select_related("licence_type").order_by("position", "id"))
    known = {m.pk for m in guide}
    for material_id in uploads:
        if material_id not in known:
            errors.setdefault("material", []).append(_("该材料不属于本事项。"))
    plan: list[tuple[str, GuideMaterial, Any]] = []
    for material in guide:
        key = material_field(material)
        if material.kind == GuideMaterial.Kind.DATA:
            plan.append(("data", material, None))
            continue
        if (
            material.kind == GuideMaterial.Kind.LICENCE
            and material.pk in held
            and (use_licence is None or material.pk in use_licence)
        ):
            plan.append(("licence", material, held[material.pk]))
            continue
        upload = uploads.get(material.pk)
        if upload is None:
            if material.required:
                errors[key] = [_("请上传“%(name)s”。") % {"name": material.name}]
            continue
        try:
            materials.check_file(upload.file_name or material.name, upload.content_type, upload.data)
        except ValidationError as exc:
            errors[key] = exc.messages
            continue
        plan.append(("file", material, upload))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        app = applications.submit(item, applicant=applicant, data=data, actor=actor, division=division)
        holder = None
        for step, material, thing in plan:
            if step == "file":
                materials.add_file(
                    app,
                    name=material.name,
                    file_name=thing.file_name,
                    content_type=thing.content_type,
                    data=thing.data,
                    actor=actor,
                    material=material,
                )
            elif step == "licence":
                holder = holder or wallet.holder_of(applicant)
                _licence_consent(holder, thing, app, actor=actor)
                materials.add_licence(app, thing, actor=actor, material=material)
            else:
                materials.add_data(app, material, actor=actor)
        if consent is not None:
            _link(consent, app, data=data, actor=actor)
    return app


def _link(consent: PrefillConsent, app: Application, *, data: dict, actor) -> None:
    """Tie the consent to the application; a ``prefilled`` event says which fields came from where (no values)."""
    # Compare-and-set, so two submissions racing with one consent cannot both take it (SQLite included).
    if not PrefillConsent.objects.filter(pk=consent.pk, application__isnull=True).update(application=app):
        raise ValidationError({"consent": [_("该数据授权已用于另一份申请。")]})
    locked = PrefillConsent.objects.get(pk=consent.pk)
    cleaned, _errors = validate_form(app.item.form_schema or {}, data)
    fields = {entry["field"]: entry["source"] for entry in locked.fields_filled or []}
    edited = sorted(
        entry["field"]
        for entry in locked.fields_filled or []
        if entry["field"] not in cleaned or _digest(cleaned[entry["field"]]) != entry.get("digest")
    )
    detail = {
        "consent": locked.pk,
        "fields": fields,
        "edited": edited,
        "registries": list(locked.registries or []),
        "licence_types": list(locked.licence_types or []),
    }
    ApplicationEvent.objects.create(
        application=app,
        kind=ApplicationEvent.Kind.PREFILLED,
        actor_label=str(getattr(actor, "username", actor) or "")[:150],
        channel=app.channel,
        detail=detail,
    )
    audit.record("services.prefill.use", actor=actor, target=app, detail=detail)


# --- the department's side: shared data of 免提交 materials ---------------------------------------------


@dataclass
class SharedData:
    """One 免提交 material as the department sees it: the library, the values (masked per its rules) or why not."""

    name: str
    library: str
    rows: list[tuple[str, Any]] = field(default_factory=list)
    error: str = ""


def _department_record(info, infos: dict, kind: str, number: str, *, actor, purpose: str):
    """The applicant's record in a registry, found (through the route) with reads as the department; or None."""
    if info.via is not None:
        parent_info = infos.get(info.via[0])
        parent = (
            _department_record(parent_info, infos, kind, number, actor=actor, purpose=purpose) if parent_info else None
        )
        if parent is None:
            return None
        shown = registry_services.read_record(
            parent, actor=actor, purpose=purpose, fields=[info.via[1]], channel=CHANNEL
        )
        uid = shown["values"].get(info.via[1])
        if not uid:
            return None
        return (
            Record.objects.select_related("registry")
            .filter(registry__code=info.code, uid=uid, deleted_at__isnull=True)
            .first()
        )
    if not info.subject_field or info.subject_kind != kind:
        return None
    return registry_services.find_record(registry_services.get_registry(info.code), info.subject_field, number)


def shared_data_for(app: Application, actor) -> list[SharedData]:
    """The shared data of the application's 免提交 materials, read as the acting official's department.

    Officials of the competent department only (PermissionDenied otherwise). Each read goes through
    ``read_record`` — the department's read rights, an access-log row with the application number
    as purpose, personal values masked — and a material the department may not read, or whose
    record is missing, says so instead of failing the page.
    """
    if getattr(actor, "kind", "") != "official" or getattr(actor, "department_id", None) != app.department_id:
        raise PermissionDenied(_("只有承办部门的工作人员可以查看共享材料。"))
    rows = (
        ApplicationMaterial.objects.filter(application=app, source=ApplicationMaterial.Source.DATA)
        .select_related("material")
        .order_by("id")
    )
    infos = sources.registry_infos()
    number = app.holder_number or ""
    found = []
    for row in rows:
        code = row.registry_code or (row.material.registry_code if row.material else "")
        info = infos.get(code)
        entry = SharedData(row.name, info.label if info is not None else code)
        found.append(entry)
        if info is None or not info.installed:
            entry.error = _("该信息库尚未建立。")
            continue
        if not number:
            entry.error = _("申请人未完成实名认证，无法按身份共享该材料，请另行核验。")
            continue
        wanted = [name for name in (row.material.registry_fields if row.material else []) if name in info.fields]
        purpose = SHARED_PURPOSE.format(number=app.number, name=row.name)
        try:
            record = _department_record(info, infos, app.holder_kind, number, actor=actor, purpose=purpose)
            if record is None:
                entry.error = _("未在%(library)s中找到申请人的记录。") % {"library": entry.library}
                continue
            shown = registry_services.read_record(
                record, actor=actor, purpose=purpose, fields=wanted or None, channel=CHANNEL
            )
        except PermissionDenied:
            entry.error = _("本部门无权查询%(library)s的该记录，请通过数据共享申请取得权限。") % {
                "library": entry.library
            }
            continue
        except (ObjectDoesNotExist, ValidationError):
            entry.error = _("未在%(library)s中找到申请人的记录。") % {"library": entry.library}
            continue
        for name, value in shown["values"].items():
            definition = info.fields.get(name)
            label = definition.label if definition is not None else name
            if definition is not None and definition.type == "enum" and value not in (None, ""):
                value = definition.choice_label(value)
            entry.rows.append((label, value))
    return found
