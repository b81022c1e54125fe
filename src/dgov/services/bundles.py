"""一件事 (bundled life-event services): one combined form, one application per item, completed together.

The combined form
    :func:`combined_form` merges the form schemas of a bundle's items into one form. A field named
    in the bundle's ``form_mapping`` (``{field: ["<basic code>.<field>", …]}``) appears once under
    the mapping's name and its value goes to every item field it names; every other field keeps a
    per-item name, ``"<basic code>.<field>"`` (the same notation as the mapping), shown grouped by
    item. A shared field takes its label and constraints from the first item field it names and is
    required when any of them is; the value must also satisfy every other item field it feeds, since
    each item's slice is validated against the item's own schema and its errors are reported under
    the combined names. Mapping targets that name no field of a member item are ignored.

One set of materials
    :func:`bundle_materials` lists the guide materials of all items once: materials replaced by
    an e-licence are merged by licence type, shared-data materials (免提交) by registry code and
    file materials by name. A file uploaded on the combined form is attached (sealed) to every
    member application whose guide asks for it.

Submitting
    :func:`submit_bundle` validates the combined form, then in one transaction creates the
    :class:`~dgov.services.models.BundleCase` (form data sealed) and one application per item
    through :func:`dgov.services.applications.submit` — each goes to its own competent department.
    All or nothing: when any member fails, nothing is stored. An accepted proactive offer
    (:mod:`dgov.services.offers`) is claimed in the same transaction.

Completing together
    A receiver of :data:`dgov.services.applications.application_closed` settles the case in the
    transaction that closes a member: when every member is closed the case is completed (all
    approved) or partly completed (some denied or rejected), and the applicant gets one message for
    the whole bundle listing each item's result (members of a bundle get no message of their own).
    The case row is locked first, so two members closing at once cannot both miss the last one.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dgov.kernel.notify import NotificationTemplate, register_template
from dgov.kernel.services import audit
from dgov.kernel.services.notify import notify
from dgov.services import applications, materials
from dgov.services.form_schema import fields_of, validate_form
from dgov.services.models import (
    Application,
    ApplicationTask,
    Bundle,
    BundleCase,
    GuideMaterial,
    ProactiveOffer,
    ServiceItem,
)

__all__ = [
    "OfferClosed",
    "CombinedForm",
    "combined_form",
    "bundle_materials",
    "validate_bundle",
    "submit_bundle",
    "case_data",
    "cases_of",
    "case_members",
    "with_members",
    "settle_case",
    "COMPLETED_TEMPLATE",
]

COMPLETED_TEMPLATE = "services.bundle.completed"
register_template(
    COMPLETED_TEMPLATE,
    NotificationTemplate(
        title=gettext_lazy("一件事办理结果：{bundle}"),
        body=gettext_lazy("您申请的“{bundle}”（编号 {number}）{status}。各事项结果：{results}。"),
    ),
)


class OfferClosed(Exception):
    """The proactive offer was already accepted, declined or has expired (HTTP 409)."""


# --- the combined form ------------------------------------------------------------------------------


@dataclass
class CombinedForm:
    """A bundle's combined form: the schema, where each field's value goes, and the fields grouped for display."""

    bundle: Bundle
    items: list[ServiceItem]
    schema: dict
    #: combined field name → [(item basic code, item field name), …]
    routes: dict[str, list[tuple[str, str]]]
    #: (item basic code, item field name) → combined field name
    back: dict[tuple[str, str], str]
    #: the shared fields (mapped once for several items), in mapping order
    shared: list[str] = field(default_factory=list)
    #: per item: (item, its own combined field names)
    groups: list[tuple[ServiceItem, list[str]]] = field(default_factory=list)


def combined_form(bundle: Bundle) -> CombinedForm:
    """Merge the member items' form schemas into the bundle's combined form (see the module docstring)."""
    items = list(bundle.items.order_by("basic_code"))
    props = {
        item.basic_code: {name: (prop, required) for name, prop, required in fields_of(item.form_schema or {})}
        for item in items
    }
    routes: dict[str, list[tuple[str, str]]] = {}
    back: dict[tuple[str, str], str] = {}
    for key, targets in (bundle.form_mapping or {}).items():
        for target in targets if isinstance(targets, list) else ():
            code, _sep, name = str(target).partition(".")
            code = code.strip() if code.strip() in props else code.strip().upper()
            if name in props.get(code, {}) and (code, name) not in back:
                routes.setdefault(str(key), []).append((code, name))
                back[(code, name)] = str(key)
    properties: dict[str, dict] = {}
    required: list[str] = []
    shared = list(routes)
    for key in shared:
        code, name = routes[key][0]
        properties[key] = dict(props[code][name][0])
        if any(props[c][n][1] for c, n in routes[key]):
            required.append(key)
    groups = []
    for item in items:
        own = []
        for name, (prop, is_required) in props[item.basic_code].items():
            if (item.basic_code, name) in back:
                continue
            key = f"{item.basic_code}.{name}"
            routes[key] = [(item.basic_code, name)]
            back[(item.basic_code, name)] = key
            properties[key] = dict(prop)
            if is_required:
                required.append(key)
            own.append(key)
        groups.append((item, own))
    schema = {"type": "object", "properties": properties, "required": required}
    return CombinedForm(bundle, items, schema, routes, back, shared, groups)


def _material_key(material: GuideMaterial) -> str:
    """What makes two guide materials the same material: licence type, registry code or name."""
    if material.kind == GuideMaterial.Kind.LICENCE and material.licence_type_id:
        return f"licence:{material.licence_type.code}"
    if material.kind == GuideMaterial.Kind.DATA and material.registry_code:
        return f"data:{material.registry_code}"
    return f"file:{material.name.strip()}"


def bundle_materials(bundle: Bundle, items: list[ServiceItem] | None = None) -> list[dict]:
    """The bundle's one set of materials: the items' guide materials without repeats, in item order.

    Each entry: ``key`` (``licence:<type code>`` / ``data:<registry>`` / ``file:<name>``), ``slot``
    (the upload field name on the combined form), ``name``, ``kind``, ``exempt`` (免提交),
    ``required`` (by any item), ``licence_type``, ``registry_code``, ``notes``, ``items`` (names of
    the items that ask for it) and ``guides`` (the GuideMaterial rows).
    """
    items = items if items is not None else list(bundle.items.order_by("basic_code"))
    merged: dict[str, dict] = {}
    rows = GuideMaterial.objects.filter(item__in=items).select_related("licence_type", "item")
    order = {item.pk: n for n, item in enumerate(items)}
    for material in sorted(rows, key=lambda m: (order[m.item_id], m.position, m.pk)):
        key = _material_key(material)
        entry = merged.get(key)
        if entry is None:
            entry = merged[key] = {
                "key": key,
                "slot": f"material-{len(merged) + 1}",
                "name": material.name,
                "kind": material.kind,
                "exempt": material.exempt,
                "required": False,
                "licence_type": material.licence_type,
                "registry_code": material.registry_code,
                "notes": material.notes,
                "items": [],
                "guides": [],
            }
        entry["required"] = entry["required"] or material.required
        if material.item.name not in entry["items"]:
            entry["items"].append(material.item.name)
        entry["guides"].append(material)
    return list(merged.values())


def validate_bundle(form: CombinedForm, data) -> tuple[dict, dict[str, dict], dict[str, list[str]]]:
    """Check data against the combined form: ``(cleaned, {item code: item data}, {combined field: [messages]})``."""
    cleaned, errors = validate_form(form.schema, data)
    slices: dict[str, dict] = {item.basic_code: {} for item in form.items}
    for key, value in cleaned.items():
        for code, name in form.routes.get(key, ()):
            slices[code][name] = value
    for item in form.items:
        _cleaned, item_errors = validate_form(item.form_schema or {}, slices[item.basic_code])
        for name, messages in item_errors.items():
            key = form.back.get((item.basic_code, name), "__all__" if name == "__all__" else name)
            if key not in errors:
                errors[key] = list(messages)
    return cleaned, slices, errors


def _new_number() -> str:
    """A unique case number: ``B`` + date + random digits (application numbers have no letter)."""
    return "B" + timezone.localdate().strftime("%Y%m%d") + "".join(secrets.choice("0123456789") for _ in range(10))


def _member_errors(form: CombinedForm, item: ServiceItem, exc: ValidationError) -> dict[str, list[str]]:
    """A member's submit errors under the combined names (errors not about a form field name the item)."""
    errors: dict[str, list[str]] = {}
    for name, messages in exc.message_dict.items():
        key = form.back.get((item.basic_code, name))
        if key is None:
            key = "__all__" if name == "__all__" else name
            messages = [f"{item.name}：{m}" for m in messages]
        errors.setdefault(key, []).extend(messages)
    return errors


def _claim_offer(offer: ProactiveOffer, *, bundle: Bundle, applicant) -> ProactiveOffer:
    """Lock the offer for acceptance: same bundle, the applicant is its holder, still open (else OfferClosed)."""
    locked = ProactiveOffer.objects.select_for_update().get(pk=offer.pk)
    if locked.bundle_id != bundle.pk:
        raise ValidationError({"offer": [_("该推荐服务不属于此一件事。")]})
    if (
        getattr(applicant, "real_name_level", 1) < 2
        or not getattr(applicant, "id_number_digest", "")
        or applicant.id_number_digest != locked.holder_id
    ):
        raise PermissionDenied(_("只有被推荐人本人可以确认办理。"))
    if locked.status != ProactiveOffer.Status.OFFERED or locked.expires_on < timezone.localdate():
        raise OfferClosed(_("该推荐服务已处理或已过期。"))
    return locked


def submit_bundle(
    bundle: Bundle,
    *,
    applicant,
    data: dict,
    actor,
    division=None,
    offer: ProactiveOffer | None = None,
    files: dict | None = None,
) -> BundleCase:
    """Validate the combined form, then create the case and one application per item in one transaction.

    ``files`` maps a material's upload ``slot`` (:func:`bundle_materials`) to an uploaded file
    (``name``, ``content_type``, ``read()``); it is attached to every member that asks for the
    material. ``offer`` is the proactive offer being accepted: it must be open and the applicant
    its holder, and it is marked accepted with the case. Raises ``ValidationError`` (per combined
    field), ``PermissionDenied`` or :class:`OfferClosed`; then nothing is stored.
    """
    if applicant is None or not getattr(applicant, "is_authenticated", False):
        raise ValidationError({"applicant": [_("请指明申请人。")]})
    if not bundle.is_active:
        raise ValidationError({"bundle": [_("该一件事已停用。")]})
    form = combined_form(bundle)
    retired = [item.name for item in form.items if item.status != ServiceItem.Status.ACTIVE]
    if retired:
        raise ValidationError(
            {"bundle": [_("一件事中的事项“%(items)s”已停用，暂不能办理。") % {"items": "、".join(retired)}]}
        )
    if len(form.items) < 2:
        raise ValidationError({"bundle": [_("该一件事没有可办理的事项。")]})
    cleaned, slices, errors = validate_bundle(form, data)
    uploads = _uploads(bundle, form, files or {}, errors)
    if errors:
        raise ValidationError(errors)
    division = division or applications._default_division()
    with transaction.atomic():
        claimed = _claim_offer(offer, bundle=bundle, applicant=applicant) if offer is not None else None
        case = BundleCase.objects.create(
            number=_new_number(),
            bundle=bundle,
            applicant=applicant,
            division=division,
            form_data=json.dumps(cleaned, ensure_ascii=False, sort_keys=True),
            channel=Application.Channel.ONLINE,
        )
        members = []
        for item in form.items:
            try:
                app = applications.submit(
                    item,
                    applicant=applicant,
                    data=slices[item.basic_code],
                    actor=actor,
                    division=division,
                    bundle_case=case,
                )
            except ValidationError as exc:
                raise ValidationError(_member_errors(form, item, exc)) from None
            members.append(app)
        first = members[0]
        case.holder_kind, case.holder_id, case.holder_name = first.holder_kind, first.holder_id, first.holder_name
        case.save(update_fields=["holder_kind", "holder_id", "holder_name"])
        _attach(members, uploads, errors, actor=actor)
        if errors:
            raise ValidationError(errors)
        audit.record(
            "services.bundle.submit",
            actor=actor,
            target=case,
            detail={
                "bundle": bundle.code,
                "applications": {app.item.basic_code: app.number for app in members},
                "departments": sorted({app.department.code for app in members}),
                "offer": claimed.pk if claimed else None,
                "materials": sorted(uploads),
            },
        )
        if claimed is not None:
            claimed.status = ProactiveOffer.Status.ACCEPTED
            claimed.responded_at = timezone.now()
            claimed.case = case
            claimed.save(update_fields=["status", "responded_at", "case"])
            audit.record(
                "services.offer.accept",
                actor=actor,
                target=claimed,
                detail={"bundle": bundle.code, "case": case.number},
            )
            offer.status, offer.responded_at, offer.case = claimed.status, claimed.responded_at, case
    return case


def _uploads(bundle: Bundle, form: CombinedForm, files: dict, errors: dict) -> dict[str, tuple[dict, object]]:
    """The uploaded files by material slot, with their material entry; an unknown slot is an error."""
    if not files:
        return {}
    entries = {entry["slot"]: entry for entry in bundle_materials(bundle, form.items)}
    uploads = {}
    for slot, upload in files.items():
        entry = entries.get(slot)
        if entry is None or entry["exempt"]:
            errors.setdefault(slot, []).append(_("该材料无需上传。"))
            continue
        uploads[slot] = (entry, upload)
    return uploads


def _attach(members: list[Application], uploads: dict, errors: dict, *, actor) -> None:
    """Seal each uploaded file onto every member whose guide asks for that material (errors by slot)."""
    by_item = {app.item_id: app for app in members}
    for slot, (entry, upload) in uploads.items():
        content = upload.read()
        for guide in entry["guides"]:
            app = by_item.get(guide.item_id)
            if app is None:
                continue
            try:
                materials.add_file(
                    app,
                    name=guide.name,
                    file_name=getattr(upload, "name", "") or guide.name,
                    content_type=getattr(upload, "content_type", "") or "",
                    data=content,
                    actor=actor,
                    material=guide,
                )
            except ValidationError as exc:
                errors.setdefault(slot, []).extend(exc.messages)
                break


# --- reading --------------------------------------------------------------------------------------------


def case_data(case: BundleCase) -> dict:
    """The case's combined form data (decrypted)."""
    return json.loads(case.form_data or "{}")


def cases_of(user) -> QuerySet[BundleCase]:
    """The bundle cases of a citizen or enterprise: submitted from the account or holding one of its applications."""
    if not getattr(user, "is_authenticated", False):
        return BundleCase.objects.none()
    mine = applications.applications_of(user).filter(bundle_case__isnull=False).values("bundle_case_id")
    return BundleCase.objects.filter(Q(applicant=user) | Q(pk__in=mine)).select_related("bundle")


def _members() -> QuerySet[Application]:
    """Member applications in item order, with their item, department and open tasks (``open_tasks``)."""
    live = ApplicationTask.objects.filter(status__in=applications.LIVE).order_by("created_at")
    return (
        Application.objects.select_related("item", "department")
        .prefetch_related(Prefetch("tasks", queryset=live, to_attr="open_tasks"))
        .order_by("item__basic_code")
    )


def with_members(cases: QuerySet[BundleCase]) -> QuerySet[BundleCase]:
    """The cases with their members fetched once for the whole list (read by :func:`case_members`)."""
    return cases.prefetch_related(Prefetch("applications", queryset=_members(), to_attr="members"))


def case_members(case: BundleCase) -> list[Application]:
    """The case's member applications (item order) with their open tasks as ``open_tasks``."""
    members = getattr(case, "members", None)
    return members if members is not None else list(_members().filter(bundle_case=case))


# --- completing together ------------------------------------------------------------------------------


def settle_case(case_id: int, *, actor) -> BundleCase:
    """Complete the case when every member is closed (inside the caller's transaction; the case row is locked).

    All approved → 已办结, else 部分办结; ``completed_at`` set, one message to the applicant listing
    each item's result, audit ``services.bundle.complete``. A settled case is left as it is.
    """
    case = BundleCase.objects.select_for_update(of=("self",)).select_related("bundle").get(pk=case_id)
    if case.status != BundleCase.Status.IN_PROGRESS:
        return case
    members = list(case.applications.select_related("item").order_by("item__basic_code"))
    if not members or any(not app.is_closed for app in members):
        return case
    all_approved = all(app.status == Application.Status.APPROVED for app in members)
    case.status = BundleCase.Status.COMPLETED if all_approved else BundleCase.Status.PARTLY
    case.completed_at = timezone.now()
    case.save(update_fields=["status", "completed_at"])
    audit.record(
        "services.bundle.complete",
        actor=actor,
        target=case,
        detail={"bundle": case.bundle.code, "status": case.status, "results": {a.number: a.status for a in members}},
    )
    if case.applicant_id is not None:
        notify(
            case.applicant,
            COMPLETED_TEMPLATE,
            {
                "bundle": case.bundle.name,
                "number": case.number,
                "status": str(case.get_status_display()),
                "results": "；".join(f"{app.item.name}：{app.get_status_display()}" for app in members),
                "link": f"/services/my/bundles/{case.number}/",
            },
            channels=("in_app",),
            actor=actor,
        )
    return case


def _member_closed(sender, application: Application, actor=None, **kwargs) -> None:
    """Receiver of ``application_closed``: settle the member's bundle case in the closing transaction."""
    if application.bundle_case_id is not None:
        settle_case(application.bundle_case_id, actor=actor)


applications.application_closed.connect(_member_closed, dispatch_uid="services.bundles.settle_case")
