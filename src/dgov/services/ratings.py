"""好差评: the applicant's rating of a closed application, and the rectification a bad rating opens (差评整改).

* :func:`rate` — by the applicant or the verified holder the application is for
  (:func:`dgov.services.applications.applications_of`), once, only after the application closed
  (准予 / 不予准予 / 不予受理); five levels (5 非常满意 … 1 非常不满意), an optional comment (sealed,
  shown masked) and the channel. Writes an ``rated`` event and an audit record.
* A **bad rating** (差评: score ≤ 2) opens a :class:`~dgov.services.models.RatingRectification`
  for the application's department, due ``SERVICES_RATING_RECTIFY_DAYS`` (default 15) working
  days later — the national 好差评 rule: a bad rating is verified and rectified within 15 working
  days — and notifies the department's officials.
* :func:`answer` — the department's officials report what they did (状态 已整改待回访).
* :func:`close` — the **supervising office** reviews and closes it (已办结). Who supervises: the
  province's 政务服务管理办公室 (ZWFW) and 大数据局 (DSJ), which run 好差评 for the whole province,
  and the department's parent organization (its people's government, 上级部门) — the same bodies
  that see the department's orders. Platform administrators and system actors may too.
* :func:`rectification_overdue_sweep` (worker job :func:`rectification_overdue_job`) marks open
  orders past their due date overdue, once, and notifies the department and its parent organization.

Who sees ratings and orders (:func:`visible_ratings`): a department its own; a parent organization
its child departments'; the provincial ZWFW/DSJ and administrators all.
"""

from __future__ import annotations

import datetime
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dgov.kernel.masking import mask_id_number, mask_phone
from dgov.kernel.models import Organization
from dgov.kernel.notify import NotificationTemplate, register_template
from dgov.kernel.services import audit, calendar
from dgov.kernel.services.notify import notify
from dgov.registry.services import department_of, is_admin
from dgov.services import applications
from dgov.services.models import Application, ApplicationEvent, RatingRectification, ServiceRating

__all__ = [
    "AlreadyRated",
    "CHANNELS",
    "SUPERVISOR_KINDS",
    "answer",
    "can_rate",
    "close",
    "mask_comment",
    "may_answer",
    "may_close",
    "rate",
    "rectification_overdue_job",
    "rectification_overdue_sweep",
    "rectify_days",
    "visible_ratings",
    "visible_rectifications",
]

#: Channels a rating may come from (评价渠道): online, window (评价器), app, SMS, the 12345 hotline.
CHANNELS = ("online", "window", "app", "sms", "hotline")
#: Provincial offices that supervise 好差评 for the whole province.
SUPERVISOR_KINDS = ("ZWFW", "DSJ")
MAX_COMMENT = 500
MAX_TEXT = 2000
SYSTEM_ACTOR = "system:services-ratings"

Status = RatingRectification.Status

BAD_TEMPLATE = "services.rating.bad"
OVERDUE_TEMPLATE = "services.rating.overdue"
register_template(
    BAD_TEMPLATE,
    NotificationTemplate(
        title=gettext_lazy("差评整改：{code}"),
        body=gettext_lazy("办件 {number}（{item}）收到差评（{score}），请于 {due} 前核实整改并反馈。"),
    ),
)
register_template(
    OVERDUE_TEMPLATE,
    NotificationTemplate(
        title=gettext_lazy("差评整改已超期：{code}"),
        body=gettext_lazy("{department}的差评整改工单 {code}（办件 {number}）已超过整改期限 {due}，请督促整改。"),
    ),
)


class AlreadyRated(Exception):
    """The application has been rated already (HTTP 409): a rating is given once."""


# --- settings, people, scope --------------------------------------------------------------------------------


def rectify_days() -> int:
    """Working days to verify and rectify a bad rating (``SERVICES_RATING_RECTIFY_DAYS``, default 15)."""
    return max(1, int(getattr(settings, "SERVICES_RATING_RECTIFY_DAYS", 15)))


def _officials(*organization_ids) -> list:
    """Active officials of these organizations (at most 20 each: a notice, not a broadcast)."""
    User = get_user_model()
    people = []
    for org_id in organization_ids:
        if org_id:
            people += list(
                User.objects.filter(kind="official", department_id=org_id, is_active=True).order_by("pk")[:20]
            )
    return people


def _is_system(actor) -> bool:
    """The CLI or another system actor (a ``kind:label`` string)."""
    return isinstance(actor, str)


def _sees_all(actor) -> bool:
    """System actors, administrators and officials of the provincial ZWFW / DSJ."""
    if _is_system(actor) or is_admin(actor):
        return True
    department = department_of(actor)
    return bool(
        department is not None
        and department.is_active
        and department.kind in SUPERVISOR_KINDS
        and department.level == Organization.Level.PROVINCE
    )


def _scope(actor, field: str) -> Q | None:
    """The filter of what ``actor`` sees through ``field`` (a department FK); None = everything."""
    if _sees_all(actor):
        return None
    department = department_of(actor)
    if department is None or getattr(actor, "kind", "") not in ("official", "admin"):
        return Q(pk__in=[])
    return Q(**{f"{field}_id": department.pk}) | Q(**{f"{field}__parent_id": department.pk})


def visible_ratings(actor) -> QuerySet[ServiceRating]:
    """Ratings ``actor`` may read: its department's, its child departments', or all (supervisors)."""
    qs = ServiceRating.objects.select_related("application", "application__item", "department")
    scope = _scope(actor, "department")
    return qs if scope is None else qs.filter(scope)


def visible_rectifications(actor) -> QuerySet[RatingRectification]:
    """Rectification orders ``actor`` may read (same scope as :func:`visible_ratings`)."""
    qs = RatingRectification.objects.select_related(
        "rating", "rating__application", "rating__application__item", "department"
    )
    scope = _scope(actor, "department")
    return qs if scope is None else qs.filter(scope)


def may_answer(actor, rectification: RatingRectification) -> bool:
    """The order's own department answers it while it is open."""
    department = department_of(actor)
    return (
        rectification.status == Status.OPEN
        and getattr(actor, "kind", "") == "official"
        and department is not None
        and department.pk == rectification.department_id
    )


def may_close(actor, rectification: RatingRectification) -> bool:
    """Supervisors close an answered order: provincial ZWFW/DSJ, the department's parent, administrators."""
    if rectification.status != Status.ANSWERED:
        return False
    if _sees_all(actor):
        return True
    department = department_of(actor)
    return department is not None and department.pk == rectification.department.parent_id


# --- comments ------------------------------------------------------------------------------------------------

_ID_NUMBER = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def mask_comment(text: str) -> str:
    """A comment for officials' pages: ID numbers and mobile numbers masked (the page escapes the rest)."""
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), str(text or ""))
    return _MOBILE.sub(lambda m: mask_phone(m.group(0)), text)


# --- rating --------------------------------------------------------------------------------------------------


def can_rate(app: Application, user) -> bool:
    """Whether ``user`` may rate the application now: closed, not yet rated, and theirs (applicant / holder)."""
    return (
        app.is_closed
        and getattr(user, "is_authenticated", False)
        and not ServiceRating.objects.filter(application=app).exists()
        and applications.applications_of(user).filter(pk=app.pk).exists()
    )


def _clean(score, comment, channel) -> tuple[int, str, str]:
    """Checked input, or a ValidationError naming each bad field."""
    errors: dict[str, list[str]] = {}
    value = 0
    if isinstance(score, bool):
        score = None
    try:
        value = int(str(score).strip())
    except (TypeError, ValueError):
        errors["score"] = [_("请选择评价等级（1–5）。")]
    else:
        if value not in ServiceRating.Score.values:
            errors["score"] = [_("评价等级应为 1 至 5。")]
    comment = str(comment or "").strip()
    if len(comment) > MAX_COMMENT:
        errors["comment"] = [_("评价内容不能超过 %(n)s 个字。") % {"n": MAX_COMMENT}]
    channel = str(channel or "online").strip()
    if channel not in CHANNELS:
        errors["channel"] = [_("未知的评价渠道。")]
    if errors:
        raise ValidationError(errors)
    return value, comment, channel


def _new_code(rating: ServiceRating, today: datetime.date) -> str:
    """The order's code: ``CP<yyyymmdd><rating id>`` (unique through the rating)."""
    return f"CP{today:%Y%m%d}{rating.pk:06d}"


def rate(app: Application, *, actor, score, comment: str = "", channel: str = "online") -> ServiceRating:
    """Rate a closed application (好差评), once, as its applicant or verified holder; a bad rating opens an order."""
    score, comment, channel = _clean(score, comment, channel)
    if not applications.applications_of(actor).filter(pk=app.pk).exists():
        raise PermissionDenied(_("只有申请人本人可以评价该办件。"))
    with transaction.atomic():
        locked = Application.objects.select_for_update(of=("self",)).select_related("department", "item").get(pk=app.pk)
        if not locked.is_closed:
            raise ValidationError({"application": [_("办件办结后才能评价。")]})
        if ServiceRating.objects.filter(application=locked).exists():
            raise AlreadyRated(_("该办件已评价过，每个办件只能评价一次。"))
        try:
            with transaction.atomic():
                rating = ServiceRating.objects.create(
                    application=locked,
                    score=score,
                    comment=comment,
                    channel=channel,
                    rated_by=actor if getattr(actor, "pk", None) else None,
                    department=locked.department,
                )
        except IntegrityError:  # a rating written between the check and the insert (SQLite)
            raise AlreadyRated(_("该办件已评价过，每个办件只能评价一次。")) from None
        applications._event(locked, ApplicationEvent.Kind.RATED, actor, score=score, channel=channel)
        audit.record(
            "services.rating.create",
            actor=actor,
            target=rating,
            detail={"application": locked.number, "score": score, "channel": channel, "bad": rating.is_bad},
        )
        if rating.is_bad:
            _open_rectification(rating, locked, actor=actor)
    return rating


def _open_rectification(rating: ServiceRating, app: Application, *, actor) -> RatingRectification:
    """Open the 差评整改 order for the department and tell its officials (in the caller's transaction)."""
    today = timezone.localdate()
    days = rectify_days()
    order = RatingRectification.objects.create(
        code=_new_code(rating, today),
        rating=rating,
        department=app.department,
        opened_on=today,
        due_on=calendar.add_working_days(today, days),
    )
    audit.record(
        "services.rectification.open",
        actor=actor,
        target=order,
        detail={"code": order.code, "application": app.number, "due_on": order.due_on.isoformat(), "days": days},
    )
    context = {
        "code": order.code,
        "number": app.number,
        "item": app.item.name,
        "score": rating.get_score_display(),
        "due": order.due_on.isoformat(),
        "link": "/workbench/services/ratings/",
    }
    for person in _officials(app.department_id):
        notify(person, BAD_TEMPLATE, context, channels=("in_app",), actor=actor)
    return order


# --- rectification -------------------------------------------------------------------------------------------


def _text(value, field: str) -> str:
    """A required text of at most MAX_TEXT characters, or a ValidationError on ``field``."""
    text = str(value or "").strip()
    if not text:
        raise ValidationError({field: [_("请填写内容。")]})
    if len(text) > MAX_TEXT:
        raise ValidationError({field: [_("不能超过 %(n)s 个字。") % {"n": MAX_TEXT}]})
    return text


def answer(rectification: RatingRectification, *, actor, response: str) -> RatingRectification:
    """The department reports its verification and rectification (整改反馈): open → answered."""
    response = _text(response, "response")
    with transaction.atomic():
        order = (
            RatingRectification.objects.select_for_update(of=("self",))
            .select_related("department")
            .get(pk=rectification.pk)
        )
        if not may_answer(actor, order):
            if order.status != Status.OPEN:
                raise ValidationError({"response": [_("该整改工单已反馈，不能重复反馈。")]})
            raise PermissionDenied(_("只有被评价部门可以反馈整改情况。"))
        order.status = Status.ANSWERED
        order.response = response
        order.answered_by = applications._label(actor)
        order.answered_at = timezone.now()
        order.save(update_fields=["status", "response", "answered_by", "answered_at"])
        audit.record(
            "services.rectification.answer",
            actor=actor,
            target=order,
            detail={"code": order.code, "late": order.overdue},
        )
    return order


def close(rectification: RatingRectification, *, actor, note: str = "") -> RatingRectification:
    """The supervising office reviews the answer (回访) and closes the order: answered → closed."""
    note = str(note or "").strip()
    if len(note) > MAX_TEXT:
        raise ValidationError({"note": [_("不能超过 %(n)s 个字。") % {"n": MAX_TEXT}]})
    with transaction.atomic():
        order = (
            RatingRectification.objects.select_for_update(of=("self",))
            .select_related("department")
            .get(pk=rectification.pk)
        )
        if not may_close(actor, order):
            if order.status != Status.ANSWERED:
                raise ValidationError({"note": [_("整改工单需先由被评价部门反馈，才能办结。")]})
            raise PermissionDenied(_("只有政务服务管理机构或被评价部门的上级部门可以办结整改工单。"))
        order.status = Status.CLOSED
        order.closed_at = timezone.now()
        order.save(update_fields=["status", "closed_at"])
        # The model keeps no closing note: it is kept with the audit record of the closing.
        audit.record(
            "services.rectification.close", actor=actor, target=order, detail={"code": order.code, "note": note}
        )
    return order


def rectification_overdue_sweep(*, today: datetime.date | None = None, actor=SYSTEM_ACTOR) -> int:
    """Mark open orders past their due date overdue (once) and tell the department and its parent organization."""
    today = today or timezone.localdate()
    count = 0
    due = RatingRectification.objects.filter(status=Status.OPEN, overdue=False, due_on__lt=today)
    for order_id in due.values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            order = (
                RatingRectification.objects.select_for_update(of=("self",))
                .select_related("department", "rating__application")
                .get(pk=order_id)
            )
            if order.status != Status.OPEN or order.overdue or order.due_on >= today:
                continue
            order.overdue = True
            order.save(update_fields=["overdue"])
            audit.record(
                "services.rectification.overdue",
                actor=actor,
                target=order,
                detail={"code": order.code, "due_on": order.due_on.isoformat()},
            )
            context = {
                "code": order.code,
                "department": order.department.name,
                "number": order.rating.application.number,
                "due": order.due_on.isoformat(),
                "link": "/workbench/services/ratings/",
            }
            for person in _officials(order.department_id, order.department.parent_id):
                notify(person, OVERDUE_TEMPLATE, context, channels=("in_app",), actor=actor)
            count += 1
    return count


def rectification_overdue_job() -> int:
    """Worker entry point: :func:`rectification_overdue_sweep` for today; returns how many orders it marked."""
    return rectification_overdue_sweep()
