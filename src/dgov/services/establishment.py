"""Market-entity establishment (市场主体设立登记): an approval that registers a new enterprise or 个体工商户.

Which approvals register an entity
    There is no catalogue flag for it (and no model change): the rule is derived from what the
    catalogue already says. An approved application **registers a new market entity** when

    * its item produces the **registration licence** — the 营业执照, named by
      ``settings.SERVICES_ENTITY_LICENCE`` (default ``"SCJG:001"``: a full licence-type code, or
      ``KIND:serial`` meaning the type of that serial of any province's competent department of
      that kind), whose holder kind is ``enterprise`` — because by law (《市场主体登记管理条例》
      第二十一条) an approved 设立登记 is exactly what a business licence is issued for; and
    * the application's holder is a **person** (the future legal representative, investor or
      operator). An enterprise account applying for such an item keeps the old behaviour: the
      licence goes to that enterprise.

    In the demo catalogue that is 企业设立登记 (``000117001000``) and 个体工商户登记
    (``000117002000``). Other enterprise licences (食品经营许可) do not register anything; a person
    applying for one is refused as before — except inside a 一件事 case whose 设立登记 member was
    approved: then the licence goes to the entity that member registered (:func:`licence_holder`).

What the registration does (inside the transaction that closes the application, see
:func:`dgov.services.results.deliver`)
    1. The entity type comes from the licence item ``entity_type`` (the official's input, else the
       form): a label or value of ``legal_entity.enterprise.type``; 个体工商户 is entity category ``2``,
       农民专业合作社 ``3``, every other type ``1`` (GB 32100, registration authority ``9`` 工商/市场监管).
    2. The applicant must be the legal representative: a ``legal_representative`` given on the form
       or by the official must equal the applicant's verified name, and the applicant's
       ``population.person`` record (found by the sealed ID number) becomes the enterprise's
       ``legal_representative`` reference — which is what lets the person's enterprise account
       pass 企业实名认证 later (:func:`dgov.identity.realname.verify_enterprise`) and then find the
       licence in the enterprise's wallet. The look-up is logged in the registry access log
       (谁查了我的数据, channel ``services``).
    3. The USCC: ``9`` + category + the approving department's 6-digit division code + the
       organization-code body ``MA`` + a 6-digit serial + check characters (:func:`allocate_uscc`,
       :func:`dgov.kernel.validators.make_uscc`). The serial is one more than the highest ``MA``
       serial already in the legal-entity library for that authority, category and division
       (deleted records included: a USCC is never reused). Uniqueness is guaranteed by the
       registry's unique key on ``uscc``; when a concurrent approval took the same serial first,
       its record is visible once it committed, and the allocation is retried (up to
       :data:`ATTEMPTS` times). (On one database the audit chain's head lock already serializes
       closing transactions, so the retry is a safety net rather than the common path.)
    4. The ``legal_entity.enterprise`` record is created through
       :func:`dgov.registry.services.create_record` by the completing official for the approving
       department (the registry's authority and division scope apply): name, type, legal
       representative, registered capital (万元 → fen; 0 for a 个体工商户), established on (the
       decision date unless given), status ``active``, business scope, registration authority
       (the department's code), address and division (the form's ``division_code``, else the
       application's division).
    5. The 营业执照 is then issued to the new USCC (holder kind ``enterprise``). The application's
       ``licence_issued`` event carries ``uscc`` and the registry record's uid (the USCC and the
       record uid are not personal data); the audit record ``services.establishment.register``
       names them too. Anything refused (no person record, wrong type, a name that is not the
       applicant's, a department without authority) is a ``ValidationError`` on ``licence`` that
       rolls the approval back, like every other licence refusal.

The applicant (a person) does not hold an enterprise licence in their own wallet: the tracking page
shows the new entity's name and USCC (:func:`entity_of`) and how to reach it (an enterprise account
verified with that USCC as its legal representative).
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models.fields.json import KT
from django.utils.translation import gettext as _

from dgov.kernel.services import audit
from dgov.kernel.validators import make_uscc
from dgov.licenses.models import HolderKind, LicenceType
from dgov.licenses.services import licence_data
from dgov.registry import services as registry
from dgov.registry.models import Record
from dgov.registry.schema import RecordValidationError
from dgov.services import applications
from dgov.services.models import Application, ApplicationEvent

__all__ = [
    "ATTEMPTS",
    "ENTERPRISE_REGISTRY",
    "Holder",
    "allocate_uscc",
    "entity_of",
    "entity_type",
    "is_registration_licence",
    "licence_holder",
    "register_entity",
    "registers_entity",
    "registration_licence",
]

ENTERPRISE_REGISTRY = "legal_entity.enterprise"
PERSON_REGISTRY = "population.person"
#: GB 32100 registration authority of market entities (工商, today 市场监督管理).
AUTHORITY = "9"
#: Organization-code body prefix of the codes minted here (as newly registered entities get them), then 6 digits.
BODY_PREFIX = "MA"
#: Entity category (GB 32100 second character) by ``legal_entity.enterprise.type``; every other type is 1 (企业).
CATEGORIES = {"individual": "2", "cooperative": "3"}
#: Allocations tried before a refusal when concurrent approvals keep taking the same serial.
ATTEMPTS = 5
#: Form field with the entity's name (企业名称 / 个体工商户名称).
NAME_FIELD = "enterprise_name"
_KIND_SERIAL = re.compile(r"^([A-Z]+):(\d{3})$")
_FEN_PER_WAN = decimal.Decimal(1_000_000)  # 1 万元 = 10 000 元 = 1 000 000 分


@dataclass
class Holder:
    """The enterprise a person's approval issues its licence to: a new registration or a case sibling's."""

    name: str
    uscc: str
    #: Licence items filled from the entity when neither the official nor the form gave them.
    defaults: dict[str, Any] = field(default_factory=dict)
    #: What the ``licence_issued`` event records (the USCC and registry uid: no personal data).
    detail: dict[str, Any] = field(default_factory=dict)


def _refuse(message: str) -> ValidationError:
    """The approval refused (shown to the official beside the licence items, as results' refusals are)."""
    return ValidationError({"licence": [message]})


# --- the rule ------------------------------------------------------------------------------------------------


def registration_licence() -> str:
    """The registration licence as configured: a type code or ``KIND:serial`` (``SERVICES_ENTITY_LICENCE``)."""
    return str(getattr(settings, "SERVICES_ENTITY_LICENCE", "SCJG:001") or "").strip().upper()


def is_registration_licence(licence_type: LicenceType | None) -> bool:
    """Whether the type is the 营业执照 that an approved 设立登记 issues (enterprise-held, configured type)."""
    if licence_type is None or licence_type.holder_kind != HolderKind.ENTERPRISE:
        return False
    ref = registration_licence()
    match = _KIND_SERIAL.match(ref)
    if match is None:
        return licence_type.code.upper() == ref
    kind, serial = match.groups()
    return licence_type.department.kind == kind and licence_type.code[18:] == serial


def registers_entity(app: Application) -> bool:
    """Whether approving ``app`` registers a new market entity: the registration licence, a person holder."""
    return app.holder_kind == HolderKind.PERSON and is_registration_licence(app.item.produces_licence_type)


def entity_type(value: Any) -> tuple[str, str]:
    """``(registry type value, USCC category)`` of an entity type given by label (有限责任公司) or value (llc)."""
    fields = {f.name: f for f in registry.registry_fields(registry.get_registry(ENTERPRISE_REGISTRY))}
    definition = fields["type"]
    text = str(value or "").strip()
    for index, choice in enumerate(definition.choices):
        labels = definition.choice_labels[index] if definition.choice_labels else ()
        if text and text in (choice, *labels):  # the Chinese label, the English one or the code
            return choice, CATEGORIES.get(choice, "1")
    labels = "、".join(definition.choice_label(choice) for choice in definition.choices)
    raise _refuse(
        _("无法办理设立登记：“%(value)s”不是市场主体类型（可选：%(labels)s）。") % {"value": text, "labels": labels}
    )


# --- the USCC --------------------------------------------------------------------------------------------------


def allocate_uscc(category: str, region: str) -> str:
    """The next free USCC ``9<category><region>MA<serial>…`` after the highest serial in the legal-entity library.

    Deleted records count (a USCC is never given twice). ValidationError when the division's
    999 999 serials are used up. Uniqueness itself is the registry's unique key (see the module).
    """
    prefix = f"{AUTHORITY}{category}{region}{BODY_PREFIX}"
    codes = (
        Record.objects.filter(registry__code=ENTERPRISE_REGISTRY)
        .annotate(code=KT("data__uscc"))
        .filter(code__startswith=prefix)
        .order_by("-code")
        .values_list("code", flat=True)
    )
    last = 0
    for code in codes.iterator(chunk_size=100):
        digits = str(code)[len(prefix) : len(prefix) + 6]
        if digits.isdigit():  # codes with letters there were not minted here (imports): skipped
            last = int(digits)
            break
    if last >= 999_999:
        raise _refuse(_("无法办理设立登记：该登记机关的统一社会信用代码序号已用尽。"))
    return make_uscc(AUTHORITY, category, region, BODY_PREFIX + "000000", serial=last + 1)


# --- registering ---------------------------------------------------------------------------------------------


def _capital_fen(value: Any) -> int | None:
    """Registered capital in 万元 (form or licence) as integer fen; None when not given."""
    if value in (None, ""):
        return None
    try:
        amount = decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        raise _refuse(_("无法办理设立登记：注册资本应为数字（万元）。")) from None
    if amount < 0:
        raise _refuse(_("无法办理设立登记：注册资本不能为负数。"))
    return int((amount * _FEN_PER_WAN).to_integral_value(rounding=decimal.ROUND_HALF_UP))


def _representative(app: Application, values: dict, *, actor) -> Record:
    """The applicant's ``population.person`` record, who must be the legal representative named; access logged."""
    given = str(values.get("legal_representative") or "").strip()
    if given and app.holder_name and given != app.holder_name.strip():
        raise _refuse(
            _("无法办理设立登记：法定代表人（负责人、经营者）“%(given)s”应为申请人本人。") % {"given": given[:20]}
        )
    try:
        persons = registry.get_registry(PERSON_REGISTRY)
    except registry.RegistryNotFound:
        persons = None
    person = registry.find_record(persons, "id_number", app.holder_number) if persons and app.holder_number else None
    if person is None:
        raise _refuse(_("无法办理设立登记：人口基础库中没有申请人（法定代表人）的记录，无法登记法定代表人。"))
    registry.log_reads(
        [person],
        actor=actor,
        purpose=_("办件 %(number)s 设立登记：关联法定代表人") % {"number": app.number},
        channel="services",
        fields=["id_number"],
    )
    return person


def register_entity(app: Application, *, actor, values: dict) -> Holder:
    """Register the entity an approved 设立登记 creates (see the module); returns the licence's new holder.

    ``values`` are the licence items as :func:`dgov.services.results.licence_values` found them
    (the official's input, the form, defaults). Runs in the caller's (closing) transaction.
    """
    if not app.holder_number:
        raise _refuse(_("无法办理设立登记：申请人尚未完成实名认证（没有经核验的证件号码）。"))
    try:
        enterprises = registry.get_registry(ENTERPRISE_REGISTRY)
    except registry.RegistryNotFound:
        raise _refuse(_("无法办理设立登记：法人基础库（市场主体登记信息）尚未建立。")) from None
    if not values.get("entity_type"):
        raise _refuse(_("无法办理设立登记：缺少企业类型，请在证照信息中填写“类型”。"))
    type_value, category = entity_type(values["entity_type"])
    form = applications.form_data(app)
    name = str(form.get(NAME_FIELD) or "").strip()
    if not name and type_value == "individual":
        name = app.holder_name  # a 个体工商户 without a trade name (字号) is registered under the operator's name
    if not name:
        raise _refuse(_("无法办理设立登记：缺少企业名称。"))
    person = _representative(app, values, actor=actor)
    capital = 0 if type_value == "individual" else _capital_fen(values.get("registered_capital"))
    division_code = str(form.get("division_code") or app.division.code)
    record_values = {
        "name": name[:200],
        "type": type_value,
        "legal_representative": str(person.uid),
        "registered_capital_fen": capital,
        "established_on": str(values.get("established_on") or ""),
        "status": "active",
        "business_scope": values.get("business_scope"),
        "registration_authority": app.department.code[:32],
        "address": values.get("address"),
        "division_code": division_code,
    }
    record_values = {key: value for key, value in record_values.items() if value not in (None, "")}
    region = app.department.division.code[:6]
    for attempt in range(1, ATTEMPTS + 1):
        uscc = allocate_uscc(category, region)
        try:
            record = registry.create_record(
                enterprises, {**record_values, "uscc": uscc}, actor=actor, source=app.department
            )
        except registry.NotAuthoritative:
            raise _refuse(
                _("无法办理设立登记：%(dept)s不是该区划市场主体登记信息的权威来源。") % {"dept": app.department.name}
            ) from None
        except RecordValidationError as exc:
            if set(exc.errors) == {"uscc"} and attempt < ATTEMPTS:
                continue  # a concurrent approval took this serial first: take the next one
            problems = "；".join(f"{key}：{'；'.join(messages)}" for key, messages in exc.errors.items())
            raise _refuse(_("无法办理设立登记：%(problems)s") % {"problems": problems}) from None
        break
    audit.record(
        "services.establishment.register",
        actor=actor,
        target=app,
        detail={
            "uscc": uscc,
            "record": str(record.uid),
            "type": type_value,
            "category": category,
            "division": division_code,
            "attempts": attempt,
        },
    )
    return Holder(
        name=record_values["name"],
        uscc=uscc,
        defaults={"legal_representative": app.holder_name},
        detail={"uscc": uscc, "entity": str(record.uid), "registered": True},
    )


def _case_entity(app: Application) -> Holder | None:
    """The entity registered by the 设立登记 member of ``app``'s 一件事 case; None when the case has no such member."""
    siblings = (
        Application.objects.filter(bundle_case_id=app.bundle_case_id)
        .exclude(pk=app.pk)
        .select_related("item__produces_licence_type__department", "licence")
        .order_by("pk")
    )
    registering = [s for s in siblings if is_registration_licence(s.item.produces_licence_type)]
    if not registering:
        return None
    done = next((s for s in registering if s.status == Application.Status.APPROVED and s.licence_id), None)
    if done is None:
        names = "、".join(sorted({s.item.name for s in registering}))
        if all(s.is_closed for s in registering):
            raise _refuse(
                _("无法签发电子证照：同一“一件事”中的「%(items)s」未获准予，没有可持证的市场主体，请作出不予准予决定。")
                % {"items": names}
            )
        raise _refuse(
            _("无法签发电子证照：持证主体是同一“一件事”中「%(items)s」将设立的市场主体，请待其准予后再作出决定。")
            % {"items": names}
        )
    licence = done.licence
    return Holder(
        name=licence.holder_name,
        uscc=licence.holder_id,
        defaults={"legal_representative": licence_data(licence).get("legal_representative")},
        detail={"uscc": licence.holder_id, "entity_of": done.number},
    )


def licence_holder(app: Application, *, actor, values: dict) -> Holder | None:
    """The enterprise an approval's licence goes to when the holder is a person; None: the applicant as usual.

    A 设立登记 registers the entity now (:func:`register_entity`); another enterprise licence of a
    一件事 case goes to the entity its 设立登记 member registered. Defaults of the holder fill only
    licence items that ``values`` lacks.
    """
    licence_type = app.item.produces_licence_type
    if licence_type is None or licence_type.holder_kind != HolderKind.ENTERPRISE:
        return None
    if app.holder_kind != HolderKind.PERSON:
        return None
    if registers_entity(app):
        holder = register_entity(app, actor=actor, values=values)
    elif app.bundle_case_id:
        holder = _case_entity(app)
    else:
        return None
    if holder is not None:
        holder.defaults = {k: v for k, v in holder.defaults.items() if v not in (None, "") and k not in values}
    return holder


# --- showing it ----------------------------------------------------------------------------------------------


def entity_of(app: Application) -> dict | None:
    """The enterprise that holds ``app``'s licence when it is not the applicant: ``{name, uscc, registered}``."""
    licence = app.licence if app.licence_id else None
    if licence is None or licence.holder_kind != HolderKind.ENTERPRISE or app.holder_kind == HolderKind.ENTERPRISE:
        return None
    event = app.events.filter(kind=ApplicationEvent.Kind.LICENCE_ISSUED).order_by("-at", "-pk").first()
    return {
        "name": licence.holder_name,
        "uscc": licence.holder_id,
        "registered": bool(event and (event.detail or {}).get("registered")),
    }
