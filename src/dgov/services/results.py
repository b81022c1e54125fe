"""Result delivery (办理结果送达): the signed decision document, the e-licence, and their download.

When an application closes (:data:`dgov.services.applications.application_closed`, sent inside the
closing transaction) :func:`deliver` — connected in ``ServicesConfig.ready`` — issues the e-licence
in that transaction (1) and asks the worker, through the outbox, for the decision document (2),
which :func:`render_result` draws after the commit (``services.result.requested``; idempotent):

1. **E-licence** (approved items with ``produces_licence_type``): the licence is issued with
   :func:`dgov.licenses.services.issue` by the completing official in the name of the
   application's department, to the applicant (``holder_name`` / ``holder_number``, sealed on the
   application). Its data items are filled from, in order: what the official entered at the
   decision (``data["licence"]``), same-named fields of the form, the same type's licence the
   applicant attached as a material (换证: it carries over), and defaults (the decision date for
   registration/first-issue dates, the department's division for a place of issue). A required
   item that stays empty, a holder of the wrong kind or an unverified ID number **refuses the
   approval** with a ``ValidationError`` naming what is missing: an approved licensing decision
   without its licence would be wrong, so the official completes the items or decides otherwise.
   A person's 设立登记 (an item producing the 营业执照) first registers the new enterprise in the
   legal-entity library with a freshly minted USCC, and the licence goes to that enterprise; so do
   the enterprise licences of its 一件事 siblings (:mod:`dgov.services.establishment`).
2. **Decision document** (决定书): 准予行政许可决定书 / 不予行政许可决定书 for 行政许可 items,
   办理结果通知书 / 不予办理通知书 for the others, 不予受理决定书 (不予受理通知书) for a
   rejection; with the department, the document number ``<short name><word>〔<year>〕<n>号``
   (``n`` is the application's id: unique without a counter row that every completion of a
   department would have to lock), the applicant by name with the ID number masked, the item, its
   legal basis, the decision text (the official's reason for a refusal), the date and the seal. It
   is drawn by :func:`dgov.licenses.pdf.render_document`, signed PAdES by the department
   (:func:`dgov.licenses.pdfsign.sign_pdf`) and stored sealed (SM4-GCM, data key
   ``services.result``, the application number bound as associated data) in
   ``Application.result_pdf``.
3. Events ``licence_issued`` / ``result_delivered`` (delivery method, SHA-256, document number)
   and audit records ``services.result.licence`` / ``services.result.deliver``.

The applicant hears of it through the 办结 notification of :func:`~dgov.services.applications.complete_task`
(in-app, and SMS when the account has a mobile number), which links to the tracking page where the
document is downloaded (:func:`result_for`, audited ``services.result.read``).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from dgov.kernel.crypto import sm4_gcm_decrypt, sm4_gcm_encrypt
from dgov.kernel.masking import mask_id_number, mask_uscc
from dgov.kernel.services import audit, events
from dgov.kernel.services import keys as key_registry
from dgov.licenses import pdf, pdfsign
from dgov.licenses import services as licences
from dgov.licenses.models import HolderKind, Licence, LicenceType
from dgov.services import applications, establishment
from dgov.services.models import Application, ApplicationEvent, ApplicationMaterial, ItemType

__all__ = [
    "KEY_PURPOSE",
    "deliver",
    "render_result",
    "RESULT_EVENT",
    "document_number",
    "licence_fields",
    "licence_input",
    "licence_values",
    "result_bytes",
    "result_for",
]

KEY_PURPOSE = "services.result"
#: Outbox event asking the worker to draw and sign a closed application's decision document.
RESULT_EVENT = "services.result.requested"
WORKER_ACTOR = "system:worker"
#: Licence date items that take the decision date when nothing else fills them.
DECISION_DATE_ITEMS = frozenset({"registered_on", "established_on", "first_issued_on", "issued_on", "approved_on"})
#: Licence items that take the issuing department's place when nothing else fills them.
PLACE_ITEMS = frozenset({"issued_in", "issuing_place", "registered_in"})
#: Posted decision-form fields of licence items are named ``licence.<item>``.
FIELD_PREFIX = "licence."
MAX_VALUE = 2000


# --- sealing -----------------------------------------------------------------------------------------------


def _aad(kid: str, number: str) -> bytes:
    """Associated data: the key id and the application number (a sealed result cannot move to another)."""
    return f"{kid}|{number}".encode()


def _seal(data: bytes, number: str) -> bytes:
    """``<kid>\\x00<SM4-GCM blob>`` under the active ``services.result`` data key."""
    kid, key = key_registry.data_key(KEY_PURPOSE)
    return kid.encode() + b"\x00" + sm4_gcm_encrypt(key, data, _aad(kid, number))


def result_bytes(app: Application) -> bytes:
    """The decision PDF of an application, unsealed (b"" when there is none); CryptoError when tampered."""
    sealed = bytes(app.result_pdf or b"")
    if not sealed:
        return b""
    kid, _sep, blob = sealed.partition(b"\x00")
    return sm4_gcm_decrypt(key_registry.data_key_by_id(kid.decode()), blob, _aad(kid.decode(), app.number))


# --- the e-licence ------------------------------------------------------------------------------------------


def licence_input(post: Mapping[str, Any]) -> dict[str, str]:
    """The licence items an official entered in the decision form (fields ``licence.<item>``)."""
    return {
        key[len(FIELD_PREFIX) :]: str(value).strip()
        for key, value in post.items()
        if key.startswith(FIELD_PREFIX) and str(value).strip()
    }


def _material_licence_data(app: Application, licence_type: LicenceType) -> dict[str, Any]:
    """The data of a licence of the same type that the applicant attached as a material (newest first)."""
    material = (
        ApplicationMaterial.objects.filter(
            application=app, source=ApplicationMaterial.Source.LICENCE, licence__licence_type=licence_type
        )
        .select_related("licence")
        .order_by("-id")
        .first()
    )
    return licences.licence_data(material.licence) if material is not None else {}


def _enum_value(item: Mapping[str, Any], value: Any) -> Any:
    """A form value given as an enum choice's label (男) turned into the choice's value ("1")."""
    for choice in item.get("choices") or []:
        if isinstance(choice, Mapping) and str(choice.get("label")) == str(value):
            return choice.get("value")
    return value


def licence_values(app: Application, licence_type: LicenceType, given: Mapping[str, Any] | None = None) -> dict:
    """The licence data for an application: the official's input, the form, an attached licence, defaults.

    Only items of the licence type are returned; empty items are left out (the type's checks name
    the required ones).
    """
    given = {k: v for k, v in (given or {}).items() if v not in (None, "")}
    form = applications.form_data(app)
    attached = _material_licence_data(app, licence_type)
    today = timezone.localdate()
    values: dict[str, Any] = {}
    for item in licence_type.items or []:
        name = item.get("name")
        for source in (given, form, attached):
            if source.get(name) not in (None, ""):
                value = source[name]
                values[name] = _enum_value(item, value) if item.get("type") == "enum" else value
                break
        else:
            if name in DECISION_DATE_ITEMS and item.get("type") == "date":
                values[name] = today.isoformat()
            elif name in PLACE_ITEMS:
                values[name] = app.department.division.full_name or app.department.division.name
    return values


def licence_fields(app: Application, given: Mapping[str, Any] | None = None) -> list[dict]:
    """The licence items for the decision form (name, label, value, required, choices), pre-filled; [] if none."""
    licence_type = app.item.produces_licence_type
    if licence_type is None:
        return []
    values = licence_values(app, licence_type, given)
    fields = []
    for item in licence_type.items or []:
        choices = [
            (str(c.get("value")), str(c.get("label") or c.get("value"))) if isinstance(c, Mapping) else (str(c), str(c))
            for c in item.get("choices") or []
        ]
        fields.append(
            {
                "name": FIELD_PREFIX + item["name"],
                "label": item.get("label") or item["name"],
                "value": values.get(item["name"], ""),
                "required": bool(item.get("required")),
                "type": item.get("type", "string"),
                "choices": choices,
            }
        )
    return fields


def _refuse(message: str) -> ValidationError:
    """The approval refused because the licence cannot be issued (shown to the official as is)."""
    return ValidationError({"licence": [message]})


def _issue_licence(
    app: Application, *, actor, values: dict[str, Any], holder: establishment.Holder | None = None
) -> Licence:
    """Issue the item's e-licence with ``values`` (:func:`licence_values`), or refuse the approval naming what lacks.

    ``holder``: the enterprise a person's approval issues it to instead (a new 设立登记, or the one a
    一件事 sibling registered; :func:`dgov.services.establishment.licence_holder`).
    """
    licence_type = app.item.produces_licence_type
    type_name = licence_type.name
    if holder is None and app.holder_kind != licence_type.holder_kind:
        wanted = _("企业") if licence_type.holder_kind == HolderKind.ENTERPRISE else _("个人")
        raise _refuse(
            _("无法签发电子证照「%(type)s」：持证主体应为%(kind)s，与申请人不符，不能作出准予决定。")
            % {"type": type_name, "kind": wanted}
        )
    if holder is None and not app.holder_number:
        raise _refuse(
            _("无法签发电子证照「%(type)s」：申请人尚未完成实名认证（没有经核验的证件号码），不能作出准予决定。")
            % {"type": type_name}
        )
    labels = {item["name"]: item.get("label") or item["name"] for item in licence_type.items or []}
    missing = [labels[i["name"]] for i in licence_type.items or [] if i.get("required") and i["name"] not in values]
    if missing:
        raise _refuse(
            _("无法签发电子证照「%(type)s」：缺少%(items)s。请在作出准予决定时补充证照信息。")
            % {"type": type_name, "items": "、".join(missing)}
        )
    try:
        return licences.issue(
            licence_type,
            issuer=app.department,
            holder_name=holder.name if holder is not None else app.holder_name,
            holder_id=holder.uscc if holder is not None else app.holder_number,
            data=values,
            actor=actor,
            source=f"services:{app.number}"[:64],
        )
    except PermissionDenied:
        # licences.may_issue: the department must be the type's competent department or of its issuing kind.
        raise _refuse(
            _("无法签发电子证照「%(type)s」：%(dept)s不是该证照的签发机构，不能作出准予决定。")
            % {"type": type_name, "dept": app.department.name}
        ) from None
    except licences.LicenceError as exc:
        problems = [
            f"{labels.get(field, _('证件号码') if field == 'holder_id' else field)}：{'；'.join(messages)}"
            for field, messages in exc.message_dict.items()
        ]
        raise _refuse(
            _("无法签发电子证照「%(type)s」：%(problems)s") % {"type": type_name, "problems": "；".join(problems)}
        ) from None


# --- the decision document ----------------------------------------------------------------------------------

# (title, number word) per outcome and whether the item is a 行政许可.
_KINDS = {
    (Application.Status.APPROVED, True): ("准予行政许可决定书", "许准字"),
    (Application.Status.APPROVED, False): ("办理结果通知书", "办字"),
    (Application.Status.DENIED, True): ("不予行政许可决定书", "不许字"),
    (Application.Status.DENIED, False): ("不予办理通知书", "不办字"),
    (Application.Status.REJECTED, True): ("不予受理决定书", "不受字"),
    (Application.Status.REJECTED, False): ("不予受理通知书", "不受字"),
}


def document_number(app: Application, *, on: datetime.date | None = None) -> str:
    """The decision's number, e.g. ``历下区市场监管局许准字〔2026〕1234号`` (unique: ``n`` is the application id)."""
    on = on or timezone.localdate()
    licensing = app.item.type == ItemType.LICENSING
    word = _KINDS[(app.status, licensing)][1]
    short = app.department.short_name or app.department.name
    return f"{short}{word}〔{on.year}〕{app.pk}号"


def _reason(app: Application) -> str:
    """The official's reason for a refusal (the deciding task's opinion)."""
    task = app.tasks.filter(decision__in=("deny", "reject")).order_by("-completed_at", "-id").first()
    opinion = str((task.data or {}).get("opinion", "")).strip() if task else ""
    return opinion.rstrip("。.；;，,")  # the sentence around it ends it


def _day(value: datetime.date) -> str:
    """A date as printed: 2026年5月20日."""
    return f"{value.year}年{value.month}月{value.day}日"


def _document(app: Application, *, reason: str, licence: Licence | None, today: datetime.date) -> pdf.Document:
    """What the decision says (always in Chinese: it is the document, not interface text)."""
    licensing = app.item.type == ItemType.LICENSING
    title, _word = _KINDS[(app.status, licensing)]
    name = app.holder_name or "申请人"
    submitted = _day(timezone.localtime(app.submitted_at).date())
    basis = (app.item.legal_basis or "").strip()
    applied = f"你（单位）于{submitted}提出的{app.item.name}申请（申请编号：{app.number}）"
    closing: tuple[str, ...] = ()
    remedy = "如不服本决定，可以自收到本决定书之日起六十日内依法申请行政复议，或者六个月内依法向人民法院提起行政诉讼。"
    if app.status == Application.Status.REJECTED:
        text = f"{applied}，经审查，不予受理，理由如下：{reason or '不符合受理条件'}。"
        if licensing:
            text += "根据《中华人民共和国行政许可法》第三十二条第一款的规定，决定不予受理。"
        closing = (remedy,)
    elif app.status == Application.Status.DENIED:
        if licensing:
            text = (
                f"{applied}，本机关已依法受理。经审查，该申请不符合法定条件、标准，理由如下：{reason}。"
                "根据《中华人民共和国行政许可法》第三十八条第二款的规定，决定不予行政许可。"
            )
        else:
            text = f"{applied}，本机关已依法受理。经审查，不符合办理条件，理由如下：{reason}。决定不予办理。"
        closing = (remedy,)
    elif licensing:
        text = (
            f"{applied}，本机关已依法受理。经审查，该申请符合法定条件、标准，根据"
            f"{basis + '和' if basis else ''}《中华人民共和国行政许可法》第三十八条第一款的规定，决定准予行政许可。"
        )
    else:
        text = f"{applied}，本机关已依法受理。经审查，符合办理条件，现予办结。"
    paragraphs = [text]
    if licence is not None and licence.holder_kind != app.holder_kind:
        # A person's 设立登记 (or a 一件事 member after it): the licence is the new enterprise's.
        paragraphs.append(
            f"本机关已签发电子证照“{licence.licence_type.name}”（证照编号：{licence.number}），持证主体为"
            f"{licence.holder_name}（统一社会信用代码：{licence.holder_id}），可在该主体的企业账号“我的证照”中查看、下载和使用。"
        )
    elif licence is not None:
        paragraphs.append(
            f"本机关已签发电子证照“{licence.licence_type.name}”（证照编号：{licence.number}），可在“我的证照”中查看、下载和使用。"
        )
    id_masked = (
        mask_uscc(app.holder_number) if app.holder_kind == HolderKind.ENTERPRISE else mask_id_number(app.holder_number)
    )
    rows = [("申请人", name)]
    if id_masked:
        rows.append(("统一社会信用代码" if app.holder_kind == HolderKind.ENTERPRISE else "证件号码", id_masked))
    rows += [("申请编号", app.number), ("办理事项", app.item.name)]
    if basis:
        rows.append(("设定依据", basis))
    with translation.override("zh-hans"):
        rows.append(("办理结果", str(app.get_status_display())))
        if licence is not None:
            rows.append(("电子证照", f"{licence.licence_type.name} {licence.number}"))
        rows.append(("送达方式", str(app.get_delivery_display())))
    return pdf.Document(
        title=title,
        number=document_number(app, on=today),
        issuer_name=app.department.name,
        issued_on=today,
        addressee=f"{name}：",
        paragraphs=tuple(paragraphs),
        rows=tuple(rows),
        closing=closing,
        note="本文书加盖电子印章（PAdES 数字签名），可用 PDF 阅读器验证签章。",
        keywords=(app.number, app.item.basic_code, app.status),
        subject=f"{title} {app.item.name}",
    )


# --- the receiver ---------------------------------------------------------------------------------------------


def deliver(sender=None, *, application: Application, actor, data: Mapping[str, Any] | None = None, **kwargs) -> None:
    """Receiver of ``application_closed``: the e-licence (when due) now, the signed decision through the outbox.

    Runs inside the closing transaction: a ``ValidationError`` (a licence that cannot be issued)
    rolls the completion back and reaches the official. The decision document takes a few hundred
    milliseconds to draw and sign (CJK font subsetting), too long to hold the application and
    audit-chain locks, so a ``services.result.requested`` event is written in the same transaction
    and the worker renders it (:func:`render_result`) right after the commit.
    """
    app = application
    data = dict(data or {})
    given = data.get("licence") or {}
    if not isinstance(given, Mapping):
        raise _refuse(_("证照信息格式不正确。"))
    licence = None
    if app.status == Application.Status.APPROVED and app.item.produces_licence_type_id:
        given = {str(k): v for k, v in given.items()}
        licence_type = app.item.produces_licence_type
        values = licence_values(app, licence_type, given)
        # A person's 设立登记 registers the enterprise first; its 一件事 siblings' licences go to it too.
        holder = establishment.licence_holder(app, actor=actor, values=values)
        if holder is not None and holder.defaults:  # the entity's items fill what nothing else gave
            values = licence_values(app, licence_type, {**holder.defaults, **given})
        licence = _issue_licence(app, actor=actor, values=values, holder=holder)
        app.licence = licence
        Application.objects.filter(pk=app.pk).update(licence=licence)
        entity = holder.detail if holder is not None else {}  # the USCC and registry uid: no personal data
        applications._event(
            app,
            ApplicationEvent.Kind.LICENCE_ISSUED,
            actor,
            identifier=licence.identifier,
            type=licence.licence_type.code,
            **entity,
        )
        audit.record(
            "services.result.licence",
            actor=actor,
            target=app,
            detail={"identifier": licence.identifier, "type": licence.licence_type.code, **entity},
        )
    events.publish(
        RESULT_EVENT,
        {"application": app.pk, "number": app.number, "decided_by": applications._label(actor)},
        aggregate="services.application",
        aggregate_id=str(app.pk),
    )


def render_result(app_id: int, *, actor=WORKER_ACTOR, decided_by: str = "") -> Application | None:
    """Draw, sign and store the decision document of a closed application (idempotent; the worker's job).

    The document is dated the day the application closed. An application that already has its
    document, or is not closed, is left alone (None). Writes the ``result_delivered`` event and
    the ``services.result.deliver`` audit record.
    """
    with transaction.atomic():
        app = (
            Application.objects.select_for_update(of=("self",))
            .select_related("item", "department", "licence", "licence__licence_type")
            .filter(pk=app_id)
            .first()
        )
        if app is None or app.result_pdf or not app.is_closed:
            return None
        day = timezone.localdate(app.completed_at) if app.completed_at else timezone.localdate()
        reason = _reason(app) if app.status != Application.Status.APPROVED else ""
        document = _document(app, reason=reason, licence=app.licence, today=day)
        signed = pdfsign.sign_pdf(pdf.render_document(document), app.department, reason=document.title)
        digest = hashlib.sha256(signed).hexdigest()
        app.result_pdf = _seal(signed, app.number)
        Application.objects.filter(pk=app.pk).update(result_pdf=app.result_pdf)
        detail = {"delivery": app.delivery, "sha256": digest, "document": document.number, "title": document.title}
        applications._event(app, ApplicationEvent.Kind.RESULT_DELIVERED, actor, **detail)
        audit.record(
            "services.result.deliver",
            actor=actor,
            target=app,
            detail={**detail, "size": len(signed), "decided_by": decided_by},
        )
    return app


# --- reading the result -----------------------------------------------------------------------------------------


def result_for(user, number: str) -> tuple[Application, bytes] | None:
    """The application and its decision PDF when ``user`` may read it (audited), else None (a 404).

    Readers: the applicant or verified holder (:func:`dgov.services.applications.applications_of`)
    and the officials of the application's department; one query tells which.
    """
    if not getattr(user, "is_authenticated", False):
        return None
    scope = Q(as_applicant=True)
    if getattr(user, "kind", "") == "official" and getattr(user, "department_id", None):
        scope |= Q(department_id=user.department_id)
    app = (
        Application.objects.annotate(as_applicant=Exists(applications.applications_of(user).filter(pk=OuterRef("pk"))))
        .filter(scope, number=number)
        .first()
    )
    if app is None or not app.result_pdf:
        return None
    role = "applicant" if app.as_applicant else "department"
    data = result_bytes(app)
    with transaction.atomic():
        audit.record(
            "services.result.read",
            actor=user,
            target=app,
            detail={"as": role, "sha256": hashlib.sha256(data).hexdigest()},
        )
    return app, data
