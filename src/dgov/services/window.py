"""One-window acceptance (一窗受理): a window official takes a walk-in application, its 补正 and the result pickup.

Every department runs comprehensive windows (综合窗口): any active official of an active department
(:func:`may_accept_at_window`, the same people who record in-person identity checks) may accept an
application for any item, and the application still goes to the competent department's inbox
(前台综合受理、后台分类审批) — :func:`dgov.services.applications.submit` finds that department.

* :func:`accept_walk_in` checks everything first — the holder's resident ID number (GB 11643 check
  character) or USCC (GB 32100), the item's form, every scanned file (type, size, content) and that
  each required file material is there — and reports all problems at once as a ``ValidationError``
  keyed by field (``holder_kind``, ``holder_name``, ``id_number``, ``uscc``, the form's fields,
  ``material_<guide material id>``, ``delivery``, ``division``). Then, in one transaction, it
  submits the application (channel ``window``), seals the scans (``materials.add_file``, source
  ``scan``), records the materials the base libraries stand in for (免提交), logs one in-person
  visit (``visit``, 跑动一次) and audits ``services.window.accept``.
* The holder is indexed by the same blind index as everywhere else (``licenses.services.holder_index``:
  ``resident_id`` / ``uscc``), so a verified account of that person or enterprise finds the
  application online (``applications.applications_of``). When exactly one active verified account
  holds that index, the application is also linked to it (it becomes the applicant: notifications,
  the online 补正 task); otherwise it has no applicant until the person verifies an account.
* :func:`window_correction` — the official submits the 补正 for an applicant standing at the
  window: the ID number (or USCC) on the document the applicant presents must be the application's
  holder's, which is what proves the holder is there.
* :func:`hand_over_result` — 窗口出件: an application whose result is collected at a window is
  handed over once it is closed, once; one more visit is logged.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.identity import realname
from dgov.identity.models import User
from dgov.kernel.masking import mask_id_number, mask_uscc
from dgov.kernel.models import Division
from dgov.kernel.services import audit, divisions
from dgov.kernel.validators import validate_resident_id, validate_uscc
from dgov.licenses.models import HolderKind
from dgov.licenses.services import holder_index
from dgov.services import applications, materials
from dgov.services.form_schema import validate_form
from dgov.services.materials import material_field
from dgov.services.models import Application, ApplicationEvent, GuideMaterial

__all__ = [
    "Scan",
    "may_accept_at_window",
    "material_field",
    "accept_walk_in",
    "window_correction",
    "hand_over_result",
    "handed_over",
    "window_applications",
    "window_application",
    "masked_holder_number",
]

#: Guide-material kinds a window official may scan: files, and paper copies of what an e-licence could replace.
SCANNABLE = (GuideMaterial.Kind.FILE, GuideMaterial.Kind.LICENCE)


@dataclass(frozen=True)
class Scan:
    """One file scanned at the window for a guide material of the item (``material`` is its id)."""

    material: int
    file_name: str
    content_type: str
    data: bytes


def may_accept_at_window(actor) -> bool:
    """Who works a comprehensive window (综合窗口): active officials of an active department, of any kind."""
    return realname.may_record_in_person(actor)


def masked_holder_number(app: Application) -> str:
    """The application's holder ID number or USCC, masked for display."""
    number = app.holder_number or ""
    return mask_uscc(number) if app.holder_kind == HolderKind.ENTERPRISE else mask_id_number(number)


def _require_window(actor) -> None:
    """PermissionDenied unless ``actor`` works a window."""
    if not may_accept_at_window(actor):
        raise PermissionDenied(_("只有部门工作人员可以办理窗口受理。"))


def _visit(app: Application, actor, reason: str) -> ApplicationEvent:
    """Log one in-person visit of the applicant (跑动一次)."""
    return ApplicationEvent.objects.create(
        application=app,
        kind=ApplicationEvent.Kind.VISIT,
        actor_label=str(getattr(actor, "username", actor) or "")[:150],
        channel=Application.Channel.WINDOW,
        detail={"reason": reason},
    )


def _holder(kind: str, name: str, id_number: str, uscc: str, errors: dict) -> tuple[str, str, str, str] | None:
    """``(kind, holder index, name, number)`` of the walk-in holder; problems go into ``errors``."""
    name = str(name or "").strip()
    if kind not in HolderKind.values:
        errors["holder_kind"] = [_("请选择申请人类型（自然人或法人）。")]
        return None
    if not name:
        errors["holder_name"] = [_("请填写申请人姓名或名称。")]
    elif len(name) > 200:
        errors["holder_name"] = [_("申请人姓名或名称过长。")]
    field, value = ("uscc", uscc) if kind == HolderKind.ENTERPRISE else ("id_number", id_number)
    if not str(value or "").strip():
        errors[field] = [_("请填写统一社会信用代码。") if field == "uscc" else _("请填写居民身份证号码。")]
        return None
    try:
        number = validate_uscc(value) if field == "uscc" else validate_resident_id(value)
    except ValidationError as exc:
        errors[field] = exc.messages
        return None
    if "holder_name" in errors:
        return None
    return kind, holder_index(kind, number), name, number


def _account_of(kind: str, index: str, number: str) -> User | None:
    """The one active verified account of the holder, or None (none, or more than one)."""
    accounts = User.objects.filter(is_active=True, real_name_level__gte=realname.LEVEL_VERIFIED)
    if kind == HolderKind.ENTERPRISE:
        accounts = accounts.filter(kind=User.Kind.ENTERPRISE, enterprise_uscc=number)
    else:
        accounts = accounts.filter(kind=User.Kind.PERSON, id_number_digest=index)
    found = list(accounts[:2])
    return found[0] if len(found) == 1 else None


def _checked_scans(item, files: Iterable[Scan], errors: dict, *, require: bool) -> list[tuple[GuideMaterial, Scan]]:
    """The scans with their guide materials, each checked; with ``require``, every required file material."""
    guide = {m.pk: m for m in item.materials.all()}
    checked = []
    for scan in files:
        material = guide.get(scan.material)
        if material is None or material.kind not in SCANNABLE:
            errors.setdefault("files", []).append(_("所扫描的材料不属于本事项。"))
            continue
        try:
            materials.check_file(scan.file_name or material.name, scan.content_type, scan.data)
        except ValidationError as exc:
            errors.setdefault(material_field(material), []).extend(exc.messages)
            continue
        checked.append((material, scan))
    if require:
        given = {material.pk for material, _scan in checked}
        for material in guide.values():
            key = material_field(material)
            if material.kind == GuideMaterial.Kind.FILE and material.required and material.pk not in given:
                errors.setdefault(key, [_("请扫描上传“%(name)s”。") % {"name": material.name}])
    return checked


def _division(actor, division) -> Division | None:
    """Where the application is handled: the given division (object or code), else the window's own."""
    if isinstance(division, Division):
        return division
    if division:
        return divisions.get_division(str(division))
    return actor.department.division


def _attach_scans(app: Application, scans, *, actor) -> None:
    """Seal each checked scan onto the application as the guide material it was scanned for."""
    for material, scan in scans:
        materials.add_file(
            app,
            name=material.name,
            file_name=scan.file_name,
            content_type=scan.content_type,
            data=scan.data,
            actor=actor,
            source="scan",
            material=material,
        )


def accept_walk_in(
    item,
    *,
    actor,
    holder_kind: str,
    holder_name: str,
    id_number: str = "",
    uscc: str = "",
    data: dict,
    files: Iterable[Scan] = (),
    delivery: str = Application.Delivery.WINDOW,
    division: Division | str | None = None,
) -> Application:
    """Accept a walk-in application at a window (一窗受理): all checks first, then one transaction; see the module."""
    _require_window(actor)
    errors: dict[str, list] = {}
    holder = _holder(holder_kind, holder_name, id_number, uscc, errors)
    if getattr(item, "status", "active") != "active":
        errors["item"] = [_("该事项已停用。")]
    if delivery not in Application.Delivery.values:
        errors["delivery"] = [_("请选择结果送达方式。")]
    place = _division(actor, division)
    if place is None:
        errors["division"] = [_("未知的行政区划代码。")]
    _cleaned, form_errors = validate_form(item.form_schema or {}, data)
    errors.update(form_errors)
    scans = _checked_scans(item, list(files), errors, require=True)
    if errors:
        raise ValidationError(errors)
    kind, index, name, number = holder
    applicant = _account_of(kind, index, number)
    with transaction.atomic():
        app = applications.submit(
            item,
            applicant=applicant,
            data=data,
            channel=Application.Channel.WINDOW,
            actor=actor,
            division=place,
            holder=holder,
            window_official=actor,
            delivery=delivery,
        )
        _attach_scans(app, scans, actor=actor)
        for material in item.materials.filter(kind=GuideMaterial.Kind.DATA):
            materials.add_data(app, material, actor=actor)
        _visit(app, actor, "submit")
        audit.record(
            "services.window.accept",
            actor=actor,
            target=app,
            detail={
                "item": item.basic_code,
                "window": actor.department.code,
                "department": app.department.code,
                "holder_kind": kind,
                "holder": masked_holder_number(app),
                "linked_account": applicant.pk if applicant is not None else None,
                "scans": len(scans),
                "delivery": delivery,
            },
        )
    return app


def _holder_present(app: Application, holder_number: str) -> bool:
    """Whether the document number the official typed is the application's holder's."""
    value = str(holder_number or "").strip().upper()
    return bool(value) and bool(app.holder_id) and holder_index(app.holder_kind or "person", value) == app.holder_id


def window_correction(
    app: Application, *, actor, holder_number: str, data: dict, files: Iterable[Scan] = ()
) -> Application:
    """The window official submits the 补正 for the applicant at the window, with scans; one more visit logged.

    ``holder_number`` is the ID number (or USCC) on the document the applicant presents; it must be
    the application's holder's. Form and scans are checked first (all problems at once), then the
    resubmission (``applications.submit_correction(on_behalf=True)``), the files and the visit are
    written in one transaction.
    """
    _require_window(actor)
    errors: dict[str, list] = {}
    if not _holder_present(app, holder_number):
        errors["holder_number"] = [_("证件号码与该办件的申请人不一致，请核对申请人出示的证件。")]
    if app.status != Application.Status.CORRECTION:
        errors["__all__"] = [_("该办件当前不需要补正。")]
    _cleaned, form_errors = validate_form(app.item.form_schema or {}, data)
    errors.update(form_errors)
    scans = _checked_scans(app.item, list(files), errors, require=False)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        updated = applications.submit_correction(app, actor=actor, data=data, on_behalf=True)
        _attach_scans(updated, scans, actor=actor)
        _visit(updated, actor, "correction")
        audit.record(
            "services.window.correct",
            actor=actor,
            target=updated,
            detail={"window": actor.department.code, "scans": len(scans)},
        )
    return updated


def _pickup_events():
    """The pickup visits (窗口出件) of applications."""
    return ApplicationEvent.objects.filter(kind=ApplicationEvent.Kind.VISIT, detail__reason="pickup")


def handed_over(app: Application) -> bool:
    """Whether the application's result was handed over at a window."""
    return _pickup_events().filter(application=app).exists()


def hand_over_result(app: Application, *, actor) -> Application:
    """Hand the result over at the window (窗口出件): delivery ``window``, the application closed, once.

    The official must work a window of the department that took the application or of the competent
    department; ValidationError when the application is not ready (or already handed over).
    """
    _require_window(actor)
    if actor.department_id not in (app.department_id, getattr(app.window_official, "department_id", None)):
        raise PermissionDenied(_("该办件不属于您所在部门的窗口。"))
    with transaction.atomic():
        locked = Application.objects.select_for_update(of=("self",)).get(pk=app.pk)
        if locked.delivery != Application.Delivery.WINDOW:
            raise ValidationError({"delivery": [_("该办件的结果不在窗口领取。")]})
        if not locked.is_closed:
            raise ValidationError({"status": [_("该办件尚未办结，不能出件。")]})
        if handed_over(locked):
            raise ValidationError({"status": [_("该办件的结果已领取。")]})
        _visit(locked, actor, "pickup")
        audit.record(
            "services.window.hand_over",
            actor=actor,
            target=locked,
            detail={"window": actor.department.code, "status": locked.status},
        )
    return locked


def window_applications(actor, *, since: datetime.date | None = None) -> QuerySet[Application]:
    """Applications taken at the windows of the official's department (newest first), with ``picked_up``."""
    if not may_accept_at_window(actor):
        return Application.objects.none()
    qs = Application.objects.filter(
        channel=Application.Channel.WINDOW, window_official__department_id=actor.department_id
    )
    if since is not None:
        start = datetime.datetime.combine(since, datetime.time.min, tzinfo=timezone.get_current_timezone())
        qs = qs.filter(submitted_at__gte=start)
    return qs.select_related("item", "department", "window_official").annotate(
        picked_up=Exists(_pickup_events().filter(application=OuterRef("pk")))
    )


def window_application(actor, number: str) -> Application | None:
    """An application a window official may work on: taken at the department's windows, or the department's own."""
    if not may_accept_at_window(actor):
        return None
    department = actor.department_id
    return (
        Application.objects.filter(number=number)
        .filter(
            Q(channel=Application.Channel.WINDOW, window_official__department_id=department)
            | Q(department_id=department)
        )
        .select_related("item", "department", "window_official")
        .first()
    )
