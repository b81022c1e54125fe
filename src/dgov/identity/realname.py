"""Real-name verification (实名认证): an account's real-name level from the base libraries.

Levels (``User.real_name_level``, docs/authentication.md):

1. self-registered (自行注册): nothing verified;
2. identity verified (身份信息核验): the name and resident ID number match a live record of
   ``population.person`` whose status is normal. For an enterprise account (法人) level 2 also
   needs :func:`verify_enterprise`: the USCC names an active enterprise of
   ``legal_entity.enterprise`` whose legal representative is the verified person;
3. verified in person (现场核验): an official at a service window checked the person's ID
   document (:func:`record_in_person_verification`). A level-2 account that logs in with two
   factors is reported as level 3 for that login (``dgov.oidc.services.authorization.acr_of``).

Every attempt is audited with masked values only; the ID number is never stored on the account,
only its blind index (``User.id_number_digest``, purpose ``resident_id`` as in the registries).
Failed attempts count against a per-account throttle of its own (the login throttle's rules and
settings, key ``realname:<pk>``), so guessing ID numbers is slowed without locking the login.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dgov.identity import authentication as authn
from dgov.identity.models import LoginThrottle, User
from dgov.kernel.fields import blind_index
from dgov.kernel.masking import mask_id_number, mask_name, mask_uscc
from dgov.kernel.services import audit

__all__ = [
    "LEVEL_IN_PERSON",
    "LEVEL_SELF",
    "LEVEL_VERIFIED",
    "RealNameError",
    "record_in_person_verification",
    "verify_enterprise",
    "verify_person",
]

LEVEL_SELF, LEVEL_VERIFIED, LEVEL_IN_PERSON = 1, 2, 3
ID_PURPOSE = "resident_id"
PERSON_REGISTRY = "population.person"
ENTERPRISE_REGISTRY = "legal_entity.enterprise"
_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")
_USCC = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")

MESSAGES = {
    "throttled": _("核验尝试次数过多，请稍后再试。"),
    "bad_format": _("身份证号码格式不正确。"),
    "bad_uscc": _("统一社会信用代码格式不正确。"),
    "unavailable": _("基础信息库暂不可用，请稍后再试。"),
    "mismatch": _("姓名与身份证号码不一致，或该号码不在人口基础信息库中。"),
    "deceased": _("该身份证号码对应人员已登记死亡，无法实名认证。"),
    "migrated": _("该身份证号码对应人员已迁出本省，请通过全国平台实名认证。"),
    "status": _("该身份证号码对应人员状态异常，请到政务服务窗口办理。"),
    "bound_elsewhere": _("该身份证号码已被其他个人账号实名认证，如有疑问请到政务服务窗口办理。"),
    "other_person": _("账号已实名认证为另一人，不能更改；如需更改请到政务服务窗口办理。"),
    "not_enterprise": _("只有法人账号可以进行企业认证。"),
    "person_first": _("请先完成经办人（法定代表人）本人的实名认证。"),
    "enterprise_not_found": _("法人基础信息库中没有该统一社会信用代码。"),
    "enterprise_inactive": _("该企业不是存续状态（已吊销、注销或迁出），无法认证。"),
    "representative_mismatch": _("您不是该企业登记的法定代表人。"),
    "not_official": _("只有工作人员可以登记现场核验。"),
    "not_verified": _("账号尚未通过身份信息核验。"),
}


class RealNameError(Exception):
    """A refused verification: ``code`` (stable, in the audit log) and a message for the user."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code
        self.message = MESSAGES.get(code, code)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What an attempt is about, masked, for the audit log."""

    action: str
    detail: dict


def _throttle_key(user) -> str:
    """The throttle key of an account's verification attempts (separate from its login failures)."""
    return f"realname:{user.pk}"


def _refuse(user, attempt: _Attempt, code: str, *, actor, count: bool = True) -> RealNameError:
    """Audit a refused attempt, count it against the account's throttle, return the error to raise."""
    with transaction.atomic():
        seconds = 0
        if count:
            seconds = authn._register_failure(LoginThrottle.Scope.ACCOUNT, _throttle_key(user), timezone.now())
        audit.record(
            attempt.action,
            actor=actor,
            target=user,
            outcome="denied" if code == "throttled" else "failed",
            detail={"reason": code, **attempt.detail},
        )
        if seconds:
            audit.record(
                "identity.realname.lock", actor=actor, target=user, outcome="denied", detail={"seconds": seconds}
            )
    return RealNameError(code)


def _locked(user) -> bool:
    """Whether the account's verification attempts are locked now."""
    return authn._is_locked(LoginThrottle.Scope.ACCOUNT, _throttle_key(user), timezone.now())


def _registry(code: str):
    """The installed registry ``code``, or None when the base library is not installed."""
    from dgov.registry import services as registry

    try:
        return registry.get_registry(code)
    except registry.RegistryNotFound:
        return None


def normalize_id_number(value) -> str:
    """A resident ID number as stored in the registry: no spaces, upper-case check digit."""
    return re.sub(r"\s+", "", str(value or "")).upper()


def verify_person(user: User, name: str, id_number: str, *, actor) -> User:
    """Verify the account's person (name + resident ID number) against the population library.

    The ID number must name a live ``population.person`` record, the name must equal the
    record's exactly (surrounding spaces aside) and the status must be normal (deceased and
    migrated persons are refused with their own reason). On success the account keeps the
    number's blind index and the verified name, and reaches level 2 (person accounts; an
    enterprise account reaches it with :func:`verify_enterprise`). Raises :class:`RealNameError`.
    """
    from dgov.registry import services as registry

    name = str(name or "").strip()
    id_number = normalize_id_number(id_number)
    attempt = _Attempt(
        "identity.realname.verify_person", {"name": mask_name(name), "id_number": mask_id_number(id_number)}
    )
    if _locked(user):
        raise _refuse(user, attempt, "throttled", actor=actor, count=False)
    if not _RESIDENT_ID.match(id_number) or not name:
        raise _refuse(user, attempt, "bad_format", actor=actor)
    digest = blind_index(id_number, purpose=ID_PURPOSE)
    if user.id_number_digest and user.id_number_digest != digest:
        raise _refuse(user, attempt, "other_person", actor=actor, count=False)
    persons = _registry(PERSON_REGISTRY)
    if persons is None:
        raise _refuse(user, attempt, "unavailable", actor=actor, count=False)
    record = registry.find_record(persons, "id_number", id_number)
    values = registry.record_values_now(record) if record is not None else {}
    if record is None or str(values.get("name", "")).strip() != name:
        raise _refuse(user, attempt, "mismatch", actor=actor)
    status = values.get("status")
    if status != "normal":
        raise _refuse(user, attempt, status if status in ("deceased", "migrated") else "status", actor=actor)
    if (
        user.kind == User.Kind.PERSON
        and User.objects.filter(kind=User.Kind.PERSON, id_number_digest=digest).exclude(pk=user.pk).exists()
    ):
        raise _refuse(user, attempt, "bound_elsewhere", actor=actor, count=False)
    with transaction.atomic():
        user.id_number_digest = digest
        user.display_name = name
        fields = ["id_number_digest", "display_name"]
        if user.kind != User.Kind.ENTERPRISE and user.real_name_level < LEVEL_VERIFIED:
            user.real_name_level = LEVEL_VERIFIED
            user.real_name_verified_at = timezone.now()
            fields += ["real_name_level", "real_name_verified_at"]
        user.save(update_fields=fields)
        LoginThrottle.objects.filter(scope=LoginThrottle.Scope.ACCOUNT, key=_throttle_key(user)).delete()
        audit.record(
            attempt.action,
            actor=actor,
            target=user,
            detail={**attempt.detail, "record": str(record.uid), "level": user.real_name_level},
        )
    return user


def verify_enterprise(user: User, uscc: str, *, actor) -> User:
    """Verify an enterprise account's USCC against the legal-entity library.

    The account must be an enterprise account whose person was verified (:func:`verify_person`);
    the USCC must name a live, active ``legal_entity.enterprise`` record whose legal
    representative's resident ID number is that person's. On success the account records the
    USCC and reaches level 2. Raises :class:`RealNameError`.
    """
    from dgov.registry import services as registry
    from dgov.registry.models import Record

    uscc = re.sub(r"\s+", "", str(uscc or "")).upper()
    attempt = _Attempt("identity.realname.verify_enterprise", {"uscc": mask_uscc(uscc)})
    if user.kind != User.Kind.ENTERPRISE:
        raise _refuse(user, attempt, "not_enterprise", actor=actor, count=False)
    if _locked(user):
        raise _refuse(user, attempt, "throttled", actor=actor, count=False)
    if not user.id_number_digest:
        raise _refuse(user, attempt, "person_first", actor=actor, count=False)
    if not _USCC.match(uscc):
        raise _refuse(user, attempt, "bad_uscc", actor=actor)
    enterprises = _registry(ENTERPRISE_REGISTRY)
    if enterprises is None:
        raise _refuse(user, attempt, "unavailable", actor=actor, count=False)
    record = registry.find_record(enterprises, "uscc", uscc)
    if record is None:
        raise _refuse(user, attempt, "enterprise_not_found", actor=actor)
    values = registry.record_values_now(record)
    if values.get("status") != "active":
        raise _refuse(user, attempt, "enterprise_inactive", actor=actor)
    try:
        rep_uid = uuid.UUID(str(values.get("legal_representative") or ""))
    except ValueError:
        rep_uid = None
    representative = Record.objects.filter(uid=rep_uid, deleted_at__isnull=True).first() if rep_uid else None
    rep_number = (
        normalize_id_number(registry.record_values_now(representative).get("id_number")) if representative else ""
    )
    if not rep_number or blind_index(rep_number, purpose=ID_PURPOSE) != user.id_number_digest:
        raise _refuse(user, attempt, "representative_mismatch", actor=actor)
    with transaction.atomic():
        user.enterprise_uscc = uscc
        user.real_name_level = max(user.real_name_level, LEVEL_VERIFIED)
        user.real_name_verified_at = timezone.now()
        user.save(update_fields=["enterprise_uscc", "real_name_level", "real_name_verified_at"])
        LoginThrottle.objects.filter(scope=LoginThrottle.Scope.ACCOUNT, key=_throttle_key(user)).delete()
        audit.record(
            attempt.action,
            actor=actor,
            target=user,
            detail={**attempt.detail, "record": str(record.uid), "level": user.real_name_level},
        )
    return user


def record_in_person_verification(user: User, *, actor) -> User:
    """An official's record that they checked the account holder's ID document at a window: level 3.

    The account must already be at level 2 (the person behind it is known); ``actor`` must be an
    official. Raises :class:`RealNameError`.
    """
    attempt = _Attempt("identity.realname.in_person", {})
    if not getattr(actor, "is_official", False):
        raise _refuse(user, attempt, "not_official", actor=actor, count=False)
    if user.real_name_level < LEVEL_VERIFIED:
        raise _refuse(user, attempt, "not_verified", actor=actor, count=False)
    with transaction.atomic():
        user.real_name_level = LEVEL_IN_PERSON
        user.real_name_verified_at = timezone.now()
        user.save(update_fields=["real_name_level", "real_name_verified_at"])
        audit.record(attempt.action, actor=actor, target=user, detail={"level": LEVEL_IN_PERSON})
    return user
