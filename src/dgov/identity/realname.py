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

Every attempt is audited with masked values only. The account keeps the verified number SM4-encrypted
(``User.id_number``, released only through the OIDC scope ``dgov:identity``) and its blind index
(``User.id_number_digest``, purpose ``resident_id`` as in the registries) for look-ups.
Failed attempts count against a per-account throttle of its own (the login throttle's rules and
settings, key ``realname:<pk>``), so guessing ID numbers is slowed without locking the login.

Window staff find an account by the person's resident ID number or mobile number
(:func:`find_accounts_for_window`, masked results) and record the in-person check. When the
population record an account was verified against later reports the person deceased, is deleted
or gets another ID number, :func:`recheck_person_record` (run by the subscriber in
``dgov.identity.handlers`` on the registry's record events) drops the account to level 1 and
announces ``identity.realname.lowered``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dgov.identity import authentication as authn
from dgov.identity.models import PHONE_INDEX_PURPOSE, LoginThrottle, User
from dgov.kernel.fields import blind_index
from dgov.kernel.masking import mask_id_number, mask_name, mask_phone, mask_uscc
from dgov.kernel.notify import InvalidRecipient, normalize_phone
from dgov.kernel.services import audit, events

__all__ = [
    "LEVEL_IN_PERSON",
    "LEVEL_LOWERED_EVENT",
    "LEVEL_SELF",
    "LEVEL_VERIFIED",
    "RealNameError",
    "WindowAccount",
    "WindowLookup",
    "find_accounts_for_window",
    "id_number_digest",
    "lower_accounts_of",
    "may_record_in_person",
    "recheck_person_record",
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
LEVEL_LOWERED_EVENT = "identity.realname.lowered"
"""Outbox event of an account dropped to a lower level (payload: user, from, to, reason)."""
RECHECK_ACTOR = "system:realname-recheck"
"""The audit actor of level drops caused by changes of the population library."""
WINDOW_LOOKUP_LIMIT = 20
"""At most this many accounts answer one window lookup (one ID number: a person and a few enterprises)."""

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
    "own_account": _("不能为本人账号登记现场核验。"),
    "document_mismatch": _("证件上的身份证号码与该账号实名认证的号码不一致，不能登记现场核验。"),
    "bad_query": _("请输入有效的居民身份证号码或手机号码。"),
    "representative_status": _("该企业登记的法定代表人状态异常，请到政务服务窗口办理。"),
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
        user.id_number = id_number  # SM4-encrypted; released only through the OIDC scope dgov:identity
        user.display_name = name
        fields = ["id_number_digest", "id_number", "display_name"]
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
    rep_values = registry.record_values_now(representative) if representative else {}
    rep_number = normalize_id_number(rep_values.get("id_number"))
    if not rep_number or blind_index(rep_number, purpose=ID_PURPOSE) != user.id_number_digest:
        raise _refuse(user, attempt, "representative_mismatch", actor=actor)
    if rep_values.get("status") != "normal":
        # The person was verified earlier; a representative since deceased does not verify the enterprise.
        raise _refuse(user, attempt, "representative_status", actor=actor, count=False)
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


def may_record_in_person(actor) -> bool:
    """Who records in-person checks (现场核验): active officials of an active department (window staff).

    Every department runs service windows (一窗受理), so the department's kind does not matter;
    administrators without a department and API clients do not stand at a window.
    """
    if actor is None or isinstance(actor, str) or getattr(actor, "client_id", None):
        return False
    if not getattr(actor, "is_authenticated", False) or not getattr(actor, "is_active", False):
        return False
    department = getattr(actor, "department", None)
    return bool(getattr(actor, "is_official", False) and department is not None and department.is_active)


def id_number_digest(id_number) -> str:
    """The blind index (purpose ``resident_id``) of a well-formed resident ID number; "" for anything else."""
    number = normalize_id_number(id_number)
    return blind_index(number, purpose=ID_PURPOSE) if _RESIDENT_ID.match(number) else ""


def record_in_person_verification(
    user: User, *, actor, document_digest: str | None = None, channel: str = "cli"
) -> User:
    """An official's record that they checked the account holder's ID document at a window: level 3.

    The account must already be at level 2 (the person behind it is known); ``actor`` must be
    window staff (:func:`may_record_in_person`) and not the account itself. ``document_digest``,
    when given, is the blind index of the ID number on the document the official holds
    (:func:`id_number_digest`) and must be the account's. ``channel`` (``window`` or ``cli``) goes
    into the audit record with the official's department. Raises :class:`RealNameError`.
    """
    department = getattr(actor, "department", None)
    attempt = _Attempt(
        "identity.realname.in_person",
        {"channel": channel, "department": getattr(department, "code", "") if department is not None else ""},
    )
    if not may_record_in_person(actor):
        raise _refuse(user, attempt, "not_official", actor=actor, count=False)
    if getattr(actor, "pk", None) == user.pk:
        raise _refuse(user, attempt, "own_account", actor=actor, count=False)
    if user.real_name_level < LEVEL_VERIFIED:
        raise _refuse(user, attempt, "not_verified", actor=actor, count=False)
    if document_digest is not None and (not document_digest or document_digest != user.id_number_digest):
        raise _refuse(user, attempt, "document_mismatch", actor=actor, count=False)
    with transaction.atomic():
        user.real_name_level = LEVEL_IN_PERSON
        user.real_name_verified_at = timezone.now()
        user.save(update_fields=["real_name_level", "real_name_verified_at"])
        audit.record(attempt.action, actor=actor, target=user, detail={**attempt.detail, "level": LEVEL_IN_PERSON})
    return user


# --- The window page's lookup ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowAccount:
    """An account as the window page shows it: masked values only."""

    pk: int
    kind: str
    kind_label: str
    name: str
    id_number: str
    phone: str
    uscc: str
    level: int
    level_label: str

    @property
    def can_record(self) -> bool:
        """Whether an in-person check can be recorded for it now (level 2 exactly)."""
        return self.level == LEVEL_VERIFIED


@dataclass(frozen=True, slots=True)
class WindowLookup:
    """The answer to one window lookup: how it searched (``id_number`` or ``phone``), masked, and what it found.

    ``digest`` is the ID number's blind index for lookups by ID number (the official holds that
    document), "" for lookups by phone.
    """

    by: str
    query: str
    digest: str
    accounts: list[WindowAccount]


def _window_account(user: User, *, id_number: str) -> WindowAccount:
    """One found account, masked."""
    return WindowAccount(
        pk=user.pk,
        kind=user.kind,
        kind_label=str(user.get_kind_display()),
        name=mask_name(user.display_name) if user.id_number_digest else "",
        id_number=mask_id_number(id_number) if id_number else "",
        phone=mask_phone(user.phone) if user.phone else "",
        uscc=mask_uscc(user.enterprise_uscc) if user.enterprise_uscc else "",
        level=user.real_name_level,
        level_label=str(user.get_real_name_level_display()),
    )


def find_accounts_for_window(query: str, *, actor) -> WindowLookup:
    """Find the person and enterprise accounts of a resident ID number or a mobile number, masked; audited.

    A resident ID number finds the accounts verified as that person (a personal account and the
    enterprise accounts the person acts for); a mobile number finds the account registered with
    it. Only active person and enterprise accounts are found. Every lookup — also one that finds
    nothing or is refused — is audited with the masked query and the ids of the accounts found.
    Raises :class:`RealNameError` (``not_official``, ``bad_query``).
    """
    text = str(query or "").strip()
    number = normalize_id_number(text)
    digest = id_number_digest(number)
    by, phone_digest, masked = "", "", ""
    if digest:
        by, masked = "id_number", mask_id_number(number)
    else:
        try:
            phone = normalize_phone(text) if text else ""
        except InvalidRecipient:
            phone = ""
        if phone:
            by, masked = "phone", mask_phone(phone)
            phone_digest = blind_index(phone, purpose=PHONE_INDEX_PURPOSE)
    detail = {"by": by, "query": masked or (mask_id_number(text) if len(text) <= 24 else "")}
    if not may_record_in_person(actor) or not by:
        code = "not_official" if not may_record_in_person(actor) else "bad_query"
        with transaction.atomic():
            audit.record(
                "identity.realname.window_lookup",
                actor=actor,
                outcome="denied" if code == "not_official" else "failed",
                detail={"reason": code, **detail},
            )
        raise RealNameError(code)
    accounts = User.objects.filter(is_active=True, kind__in=(User.Kind.PERSON, User.Kind.ENTERPRISE))
    accounts = (
        accounts.filter(id_number_digest=digest) if by == "id_number" else accounts.filter(phone_digest=phone_digest)
    )
    found = list(accounts.order_by("-kind", "pk")[:WINDOW_LOOKUP_LIMIT])  # the personal account first
    with transaction.atomic():
        audit.record(
            "identity.realname.window_lookup",
            actor=actor,
            detail={**detail, "department": actor.department.code, "found": [user.pk for user in found]},
        )
    return WindowLookup(
        by=by,
        query=masked,
        digest=digest,
        accounts=[_window_account(user, id_number=number if by == "id_number" else "") for user in found],
    )


# --- Re-checking levels when the population library changes ------------------------------------------------


def lower_accounts_of(digest: str, *, reason: str, record: str = "", actor=RECHECK_ACTOR) -> list[User]:
    """Drop every account verified as the person with this ID-number blind index to level 1.

    The accounts keep the blind index and the verified name (they stay bound to that person: a
    later re-verification must be as the same person) and lose ``real_name_verified_at``. Each
    drop is audited (``identity.realname.lower``) and announced as :data:`LEVEL_LOWERED_EVENT`
    in the same transaction; accounts already at level 1 are left alone (idempotent).
    """
    if not digest:
        return []
    with transaction.atomic():
        accounts = list(
            User.objects.select_for_update()
            .filter(id_number_digest=digest, real_name_level__gt=LEVEL_SELF)
            .order_by("pk")
        )
        for user in accounts:
            previous = user.real_name_level
            user.real_name_level = LEVEL_SELF
            user.real_name_verified_at = None
            user.save(update_fields=["real_name_level", "real_name_verified_at"])
            audit.record(
                "identity.realname.lower",
                actor=actor,
                target=user,
                detail={"reason": reason, "record": record, "from": previous, "to": LEVEL_SELF},
            )
            events.publish(
                LEVEL_LOWERED_EVENT,
                {"user": user.pk, "from": previous, "to": LEVEL_SELF, "reason": reason},
                aggregate="identity.user",
                aggregate_id=str(user.pk),
            )
    return accounts


def recheck_person_record(uid, *, changed=()) -> list[User]:
    """Re-check the accounts verified against one ``population.person`` record after it changed.

    Judges the record as it is now, so a late or repeated run does no harm: when the record is
    deleted or its status is ``deceased``, the accounts verified with its ID number drop to level
    1 (reason ``deleted`` / ``deceased``). When ``changed`` names ``id_number``, accounts verified
    with a former number of the record that no live record holds any more drop too (reason
    ``id_number_changed``). Other statuses (``migrated``) keep the level: the person was verified
    and still exists. Returns the accounts lowered.
    """
    from dgov.registry import services as registry
    from dgov.registry.models import Record

    persons = _registry(PERSON_REGISTRY)
    try:
        record_uid = uuid.UUID(str(uid))
    except ValueError:
        return []
    record = (
        Record.objects.select_related("registry").filter(registry=persons, uid=record_uid).first() if persons else None
    )
    if record is None:
        return []
    values = registry.record_values_now(record)
    number = normalize_id_number(values.get("id_number"))
    lowered = []
    reason = "deleted" if record.deleted_at is not None else "deceased" if values.get("status") == "deceased" else ""
    if reason:
        lowered += lower_accounts_of(id_number_digest(number), reason=reason, record=str(record.uid))
    if "id_number" in set(changed):
        former = {
            normalize_id_number(value)
            for entry in registry.history(record, mask=False)
            for value in entry["changes"].get("id_number", ())
            if value
        } - {number}
        for old in sorted(former):
            if registry.find_record(persons, "id_number", old) is None:
                lowered += lower_accounts_of(id_number_digest(old), reason="id_number_changed", record=str(record.uid))
    return lowered


def check_population(name: str, id_number: str) -> str:
    """What the population library says about a name and ID number, without touching any account.

    ``"verified"`` (a live record, the same name, status normal), ``"absent"`` (no such record),
    ``"unavailable"`` (the library is not installed), ``"bad_format"``, or the refusal codes of
    :func:`verify_person`: ``"mismatch"`` (another name), ``"deceased"``, ``"migrated"``, ``"status"``.
    Identity brokering (``dgov.oidc.services.broker``) cross-checks a number vouched for by an
    upstream provider with it; an empty ``name`` checks only that the record exists and is normal.
    """
    from dgov.registry import services as registry

    id_number = normalize_id_number(id_number)
    if not _RESIDENT_ID.match(id_number):
        return "bad_format"
    persons = _registry(PERSON_REGISTRY)
    if persons is None:
        return "unavailable"
    record = registry.find_record(persons, "id_number", id_number)
    if record is None:
        return "absent"
    values = registry.record_values_now(record)
    name = str(name or "").strip()
    if name and str(values.get("name", "")).strip() != name:
        return "mismatch"
    status = values.get("status")
    if status != "normal":
        return status if status in ("deceased", "migrated") else "status"
    return "verified"


__all__ += ["check_population"]
