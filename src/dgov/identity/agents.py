"""Enterprise agents (经办人): persons an enterprise authorizes to act for it, with scopes and an expiry.

An enterprise account (法人, verified at real-name level 2 with its USCC, held by the legal
representative) names a person by name and resident ID number; that person must already hold a
person account verified at level 2 or higher. The enterprise chooses scopes from
:data:`AGENT_SCOPES` and an expiry of at most ``settings.AGENT_MAX_DAYS`` days (365 by default).
The agent then switches to "acting for the enterprise" in the account console; the choice lives
in the session and is checked again at every request (:func:`acting_agency`), so an authorization
that expires or is revoked stops taking effect at the next request. OIDC logins made while acting
represent the enterprise with the agent in an ``act`` claim (dgov.oidc).

Every change is audited with masked values only. A name/ID pair that matches no suitable account
is answered with one generic refusal whatever the reason (no such person, wrong name, not
verified, disabled), and failures count against a throttle of their own per enterprise account
(the login throttle's rules, key ``agent:<pk>``), so the form cannot be used to enumerate who has
an account. Revoking an authorization sends :data:`agency_ended`, on which dgov.oidc revokes the
grants (and tokens) issued under it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dgov.identity import authentication as authn
from dgov.identity.models import EnterpriseAgent, LoginThrottle, User
from dgov.kernel.fields import blind_index
from dgov.kernel.masking import mask_id_number, mask_name, mask_uscc
from dgov.kernel.services import audit

__all__ = [
    "AGENT_SCOPES",
    "SESSION_ACTING",
    "AgencyError",
    "active_agency",
    "acting_agency",
    "agencies_of",
    "agency_ended",
    "agency_in_force",
    "agent_max_days",
    "agents_of",
    "enterprise_ready",
    "grant_agency",
    "revoke_agency",
    "start_acting",
    "stop_acting",
]

# The catalogue of what an enterprise may authorize an agent to do. Deliberately small and
# explicit: there is no "all" value, so a scope added later is never granted without the
# enterprise choosing it.
AGENT_SCOPES: dict[str, str] = {
    "services": _("办理政务服务事项"),
    "licences": _("查看和使用电子证照"),
    "payments": _("缴纳非税收入"),
    "profile": _("维护企业信息"),
}

SESSION_ACTING = "dgov_acting_agency"
"""Session key: the pk of the authorization the logged-in person is acting under."""

ID_PURPOSE = "resident_id"  # the blind-index purpose of User.id_number_digest (dgov.identity.realname)
MIN_LEVEL = 2
_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")

agency_ended = Signal()
"""Sent (``agency=``, ``actor=``, ``reason=``) inside the transaction that revokes or closes an authorization."""

MESSAGES = {
    "throttled": _("尝试次数过多，请稍后再试。"),
    "bad_format": _("身份证号码格式不正确。"),
    "bad_scopes": _("请至少选择一项授权范围。"),
    "bad_period": _("授权期限须晚于当前时间，且自生效起不超过 %(days)d 天。"),
    "no_match": _(
        "未找到符合条件的经办人：请核对姓名和身份证号码；经办人须已用本人的个人账号完成实名认证（二级及以上）。"
    ),
    "enterprise_unverified": _("企业账号须先完成企业实名认证，才能授权经办人。"),
    "forbidden": _("您无权进行此操作。"),
    "already": _("该经办人已有有效的授权；如需变更，请先撤销原授权。"),
    "already_revoked": _("该授权已撤销。"),
    "not_in_force": _("该授权已失效或已撤销。"),
}


class AgencyError(Exception):
    """A refused agent operation: ``code`` (stable, in the audit log) and a message for the user."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params

    @property
    def message(self) -> str:
        """The user-facing message in the active language."""
        text = str(MESSAGES.get(self.code, self.code))
        return text % self.params if self.params else text


# --- rules ------------------------------------------------------------------------------------------


def agent_max_days() -> int:
    """The longest authorization in days (``settings.AGENT_MAX_DAYS``, 365 by default)."""
    return max(1, int(getattr(settings, "AGENT_MAX_DAYS", 365) or 365))


def enterprise_ready(user) -> bool:
    """Whether an account is a verified enterprise account that may have agents."""
    return bool(
        user is not None
        and getattr(user, "is_active", False)
        and getattr(user, "kind", "") == User.Kind.ENTERPRISE
        and getattr(user, "real_name_level", 1) >= MIN_LEVEL
        and getattr(user, "enterprise_uscc", "")
    )


def _agent_ready(user) -> bool:
    """Whether an account may act as an agent: an active person account verified at level 2 or higher."""
    return bool(
        user is not None
        and user.is_active
        and user.kind == User.Kind.PERSON
        and user.real_name_level >= MIN_LEVEL
        and user.id_number_digest
    )


def _in_force(agency: EnterpriseAgent, now: datetime) -> bool:
    """The authorization is in force and both accounts still qualify (checked at every use)."""
    return agency.in_force(now) and _agent_ready(agency.agent) and enterprise_ready(agency.enterprise)


def _is_user(actor) -> bool:
    """Whether ``actor`` is a user (not a system label such as ``"system:demo"``)."""
    return isinstance(actor, User)


def _enterprise_name(uscc: str) -> str:
    """The enterprise's registered name from the legal-entity library (public data); "" when unknown."""
    from dgov.registry import services as registry

    try:
        enterprises = registry.get_registry("legal_entity.enterprise")
    except registry.RegistryNotFound:
        return ""
    record = registry.find_record(enterprises, "uscc", uscc)
    if record is None:
        return ""
    return str(registry.record_values_now(record).get("name") or "")[:200]


def _throttle_key(enterprise) -> str:
    """Throttle key of an enterprise account's agent look-ups (separate from its login and real-name ones)."""
    return f"agent:{enterprise.pk}"


def _account_target(user) -> tuple[str, object, str]:
    """An account as an audit target named by its username only (no personal name in the label)."""
    return ("identity.user", user.pk, user.get_username())


# --- granting and revoking -----------------------------------------------------------------------------


def _refuse(enterprise, detail: dict, code: str, *, actor, count: bool = False, **params) -> AgencyError:
    """Audit a refused grant (and count it against the throttle when asked); return the error to raise."""
    with transaction.atomic():
        seconds = 0
        if count:
            seconds = authn._register_failure(LoginThrottle.Scope.ACCOUNT, _throttle_key(enterprise), timezone.now())
        audit.record(
            "identity.agent.grant",
            actor=actor,
            target=_account_target(enterprise),
            outcome="denied" if code in ("throttled", "forbidden") else "failed",
            detail={"reason": code, **detail},
        )
        if seconds:
            audit.record(
                "identity.agent.lock",
                actor=actor,
                target=_account_target(enterprise),
                outcome="denied",
                detail={"seconds": seconds},
            )
    return AgencyError(code, **params)


def grant_agency(
    enterprise: User,
    *,
    name: str,
    id_number: str,
    scopes,
    valid_until: datetime,
    actor,
    valid_from: datetime | None = None,
) -> EnterpriseAgent:
    """Authorize the person named by ``name`` + ``id_number`` to act for ``enterprise``.

    ``actor`` is the enterprise account itself (its holder, the legal representative, after
    re-authentication) or a system label (the demo, commands). The person must hold an active
    person account verified at level 2 or higher whose verified name and ID number match;
    anything else is the one generic ``no_match`` refusal, counted against the enterprise's
    throttle. ``scopes`` are keys of :data:`AGENT_SCOPES`; the period runs from ``valid_from``
    (now by default) to ``valid_until``, at most :func:`agent_max_days` days. An expired
    authorization of the same person is closed first; a live one is refused (``already``).
    Raises :class:`AgencyError`.
    """
    name = str(name or "").strip()
    id_number = re.sub(r"\s+", "", str(id_number or "")).upper()
    chosen = [key for key in AGENT_SCOPES if key in set(scopes or ())]
    detail = {
        "name": mask_name(name),
        "id_number": mask_id_number(id_number),
        "uscc": mask_uscc(getattr(enterprise, "enterprise_uscc", "")),
        "scopes": chosen,
    }
    if _is_user(actor) and actor.pk != enterprise.pk:
        raise _refuse(enterprise, detail, "forbidden", actor=actor)
    if not enterprise_ready(enterprise):
        raise _refuse(enterprise, detail, "enterprise_unverified", actor=actor)
    if authn._is_locked(LoginThrottle.Scope.ACCOUNT, _throttle_key(enterprise), timezone.now()):
        raise _refuse(enterprise, detail, "throttled", actor=actor)
    if not chosen or set(scopes or ()) - set(AGENT_SCOPES):
        raise _refuse(enterprise, detail, "bad_scopes", actor=actor)
    now = timezone.now()
    start = valid_from or now
    days = agent_max_days()
    if valid_until is None or valid_until <= max(now, start) or valid_until > start + timedelta(days=days):
        raise _refuse(enterprise, detail, "bad_period", actor=actor, days=days)
    if not name or not _RESIDENT_ID.match(id_number):
        raise _refuse(enterprise, detail, "bad_format", actor=actor, count=True)
    digest = blind_index(id_number, purpose=ID_PURPOSE)
    candidates = User.objects.filter(
        kind=User.Kind.PERSON, id_number_digest=digest, is_active=True, real_name_level__gte=MIN_LEVEL
    )
    agent = next((user for user in candidates if (user.display_name or "").strip() == name), None)
    if agent is None:
        raise _refuse(enterprise, detail, "no_match", actor=actor, count=True)
    enterprise_name = _enterprise_name(enterprise.enterprise_uscc)
    try:
        with transaction.atomic():
            current = (
                EnterpriseAgent.objects.select_for_update()
                .filter(enterprise=enterprise, agent=agent, revoked_at__isnull=True)
                .first()
            )
            if current is not None:
                if current.valid_until > now:
                    raise AgencyError("already")
                _close(current, actor=actor, reason="expired", now=now)
            agency = EnterpriseAgent.objects.create(
                enterprise=enterprise,
                agent=agent,
                enterprise_name=enterprise_name,
                scopes=chosen,
                valid_from=start,
                valid_until=valid_until,
                granted_by=actor if _is_user(actor) else None,
                granted_at=now,
            )
            audit.record(
                "identity.agent.grant",
                actor=actor,
                target=agency,
                detail={
                    **detail,
                    "agent": agent.get_username(),
                    "valid_from": start.isoformat(),
                    "valid_until": valid_until.isoformat(),
                },
            )
    except AgencyError as exc:
        raise _refuse(enterprise, detail, exc.code, actor=actor) from None
    except IntegrityError:  # a concurrent grant of the same person won the race
        raise _refuse(enterprise, detail, "already", actor=actor) from None
    return agency


def _close(agency: EnterpriseAgent, *, actor, reason: str, now: datetime) -> None:
    """Mark an authorization revoked (in the caller's transaction), audit it and announce it."""
    agency.revoked_at = now
    agency.revoked_by = actor if _is_user(actor) else None
    agency.revoke_reason = reason[:200]
    agency.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    by = "system"
    if _is_user(actor):
        by = "enterprise" if actor.pk == agency.enterprise_id else "agent"
    audit.record(
        "identity.agent.revoke",
        actor=actor,
        target=agency,
        detail={
            "by": by,
            "reason": reason[:200],
            "uscc": mask_uscc(agency.enterprise.enterprise_uscc),
            "agent": agency.agent.get_username(),
        },
    )
    agency_ended.send(sender=EnterpriseAgent, agency=agency, actor=actor, reason=reason)


def revoke_agency(agency: EnterpriseAgent, *, actor, reason: str = "") -> EnterpriseAgent:
    """Revoke an authorization: by the enterprise, or renounced by the agent (or a system actor).

    Grants and tokens issued under it are revoked in the same transaction (:data:`agency_ended`);
    sessions acting under it return to the person's own identity at their next request.
    Raises :class:`AgencyError` (``forbidden``, ``already_revoked``).
    """
    if _is_user(actor) and actor.pk not in (agency.enterprise_id, agency.agent_id):
        with transaction.atomic():
            audit.record(
                "identity.agent.revoke", actor=actor, target=agency, outcome="denied", detail={"reason": "forbidden"}
            )
        raise AgencyError("forbidden")
    with transaction.atomic():
        agency = EnterpriseAgent.objects.select_for_update().select_related("enterprise", "agent").get(pk=agency.pk)
        if agency.revoked_at is not None:
            raise AgencyError("already_revoked")
        default = "revoked_by_enterprise"
        if _is_user(actor) and actor.pk == agency.agent_id:
            default = "renounced_by_agent"
        _close(agency, actor=actor, reason=str(reason or "").strip() or default, now=timezone.now())
    return agency


# --- queries -----------------------------------------------------------------------------------------------


def agents_of(enterprise) -> list[EnterpriseAgent]:
    """Every authorization an enterprise account has granted, newest first (revoked and expired included)."""
    return list(
        EnterpriseAgent.objects.filter(enterprise_id=enterprise.pk)
        .select_related("agent", "revoked_by")
        .order_by("-granted_at", "-id")
    )


def agencies_of(agent) -> list[EnterpriseAgent]:
    """The authorizations a person holds that are neither revoked nor expired (some may start later)."""
    return list(
        EnterpriseAgent.objects.filter(agent_id=agent.pk, revoked_at__isnull=True, valid_until__gt=timezone.now())
        .select_related("enterprise")
        .order_by("valid_until", "id")
    )


def active_agency(agent, enterprise) -> EnterpriseAgent | None:
    """The authorization in force now by which ``agent`` may act for ``enterprise``, or None.

    In force: not revoked, started, not expired, and both accounts still qualify (the agent an
    active person account at level 2+, the enterprise a verified enterprise account).
    """
    if agent is None or enterprise is None:
        return None
    now = timezone.now()
    agency = (
        EnterpriseAgent.objects.filter(agent_id=agent.pk, enterprise_id=enterprise.pk, revoked_at__isnull=True)
        .select_related("agent", "enterprise")
        .first()
    )
    return agency if agency is not None and _in_force(agency, now) else None


def agency_in_force(pk) -> EnterpriseAgent | None:
    """The authorization ``pk`` if it is in force now (see :func:`active_agency`), else None."""
    agency = EnterpriseAgent.objects.select_related("agent", "enterprise").filter(pk=pk).first()
    return agency if agency is not None and _in_force(agency, timezone.now()) else None


# --- acting for an enterprise in a browser session ---------------------------------------------------------


def start_acting(request, agency: EnterpriseAgent) -> EnterpriseAgent:
    """Make the logged-in agent act for the agency's enterprise in this session (以企业身份办事); audited."""
    user = request.user
    current = agency_in_force(agency.pk)
    if current is None or current.agent_id != getattr(user, "pk", None):
        with transaction.atomic():
            audit.record(
                "identity.agent.act", actor=user, target=agency, outcome="denied", detail={"reason": "not_in_force"}
            )
        raise AgencyError("not_in_force")
    with transaction.atomic():
        request.session[SESSION_ACTING] = current.pk
        audit.record(
            "identity.agent.act",
            actor=user,
            target=current,
            detail={"uscc": mask_uscc(current.enterprise.enterprise_uscc), "scopes": list(current.scopes)},
        )
    request._dgov_acting = current
    return current


def stop_acting(request, *, reason: str = "stopped") -> bool:
    """Return the session to the person's own identity (返回个人身份); audited. False when not acting."""
    pk = request.session.pop(SESSION_ACTING, None)
    request._dgov_acting = None
    if pk is None:
        return False
    user = request.user if getattr(request.user, "is_authenticated", False) else None
    with transaction.atomic():
        audit.record(
            "identity.agent.act_end",
            actor=user,
            target=("identity.enterpriseagent", pk, f"agency {pk}"),
            detail={"reason": reason},
        )
    return True


def acting_agency(request) -> EnterpriseAgent | None:
    """The authorization this session acts under, checked now; None when acting for no enterprise.

    An authorization that has expired or been revoked (or whose accounts no longer qualify)
    ends the acting at once: the session key is removed and the end audited, and
    ``request.acting_ended`` is set so the page can say so.
    """
    if hasattr(request, "_dgov_acting"):
        return request._dgov_acting
    session = getattr(request, "session", None)
    pk = session.get(SESSION_ACTING) if session is not None else None
    agency = None
    if pk is not None:
        agency = agency_in_force(pk)
        if agency is None or agency.agent_id != getattr(request.user, "pk", None):
            stop_acting(request, reason="not_in_force")
            request.acting_ended = True
            agency = None
    request._dgov_acting = agency
    return agency
