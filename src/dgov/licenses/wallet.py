"""The holder's wallet (我的证照) and licence use (用证): consents, uses by departments, the use log.

Holders
    A person account verified at real-name level 2 or higher holds the licences whose holder index
    is its verified ID number's blind index (``User.id_number_digest``); an enterprise account
    verified at level 2 with its USCC holds the enterprise's. A person acting for an enterprise
    (经办人, :mod:`dgov.identity.agents`) under an authorization in force that includes the
    ``licences`` scope holds the enterprise's licences for that session — and only those.
    :func:`holder_of` decides and returns a :class:`Holder`; the other functions take it, so a
    licence outside it is never shown (404, the attempt audited). Every holder read is audited
    (``licenses.wallet.list``, ``licenses.wallet.view``, ``licenses.credential.download``,
    ``licenses.licence.pdf``).

Consent (用证授权)
    The holder lets one department read one licence, for a stated purpose, optionally only for one
    service item (服务事项编码), for ``days`` days (default ``LICENCE_CONSENT_DEFAULT_DAYS``, 30; at
    most ``LICENCE_CONSENT_MAX_DAYS``, 365). A consent is active from its grant until it ends or is
    revoked; expiry is checked live on every use, no job is needed. Grant and revocation are
    audited (``licenses.consent.grant`` / ``licenses.consent.revoke``) and announced to the
    department's officials as in-app notifications, in the same transaction.

Use (用证)
    :func:`use_licence` answers a department's request to read a licence — by identifier, or by
    the holder's ID number (or USCC) and the type code — only when an active consent covers the
    department (and the service item, when the consent names one) and the licence is valid now.
    Types of unconditional sharing (无条件共享) are readable by any department without consent,
    with the holder's personal data masked and without the credential; a consent unmasks. Every
    answer writes a :class:`~dgov.licenses.models.LicenceUse` and an audit record
    (``licenses.licence.use``); a call by a department's API client is also appended to the
    exchange log (operation ``licence-use``, :mod:`dgov.exchange.log`) and takes a token of the
    client's gateway rate limit, like a gateway call. Refusals are audited and, for clients, logged
    in the exchange log too; they write no use (the holder's log lists uses, not attempts).
    :func:`record_use` records the uses of officials who open a licence on the workbench or
    through the licence API.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dgov.kernel.crypto import sm3
from dgov.kernel.models import Organization
from dgov.kernel.notify import NotificationTemplate, register_template
from dgov.kernel.services import audit
from dgov.licenses import access, services
from dgov.licenses.models import Credential, HolderKind, Licence, LicenceConsent, LicenceType, LicenceUse
from dgov.registry.services import department_of

__all__ = [
    "AGENT_SCOPE",
    "EXCHANGE_OPERATION",
    "USE_SCOPE",
    "ConsentError",
    "Holder",
    "UseRefused",
    "UseResult",
    "WalletRefusal",
    "consent_default_days",
    "consent_max_days",
    "consent_state",
    "consents_for_department",
    "consents_of",
    "credential_for",
    "effective_status",
    "find_departments",
    "find_own",
    "grant_consent",
    "holder_of",
    "holds",
    "identifier_digest",
    "licences_of",
    "list_licences",
    "open_licence",
    "pdf_for",
    "record_use",
    "revoke_consent",
    "use_licence",
    "uses_of",
]

AGENT_SCOPE = "licences"
"""The enterprise-agent scope (:data:`dgov.identity.agents.AGENT_SCOPES`) that opens the enterprise's wallet."""
USE_SCOPE = "licences:use"
"""The API-client scope of ``POST /api/v1/licences/use``."""
EXCHANGE_OPERATION = "licence-use"
"""The exchange-log operation of a licence use by an API client."""
MIN_LEVEL = 2
SERVICE_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._\-]{0,63}$")
UNCONDITIONAL = "unconditional"
DEPARTMENT_SEARCH_LIMIT = 20

register_template(
    "licenses.consent.granted",
    NotificationTemplate(
        title=gettext_lazy("用证授权：{type}"),
        body=gettext_lazy(
            "{holder}授权贵部门使用其{type}（证照标识 {identifier}），用途：{purpose}；{service}授权有效期至 {until}。"
        ),
        email_subject=gettext_lazy("【数字政府】用证授权：{type}"),
    ),
)
register_template(
    "licenses.consent.revoked",
    NotificationTemplate(
        title=gettext_lazy("用证授权已撤回：{type}"),
        body=gettext_lazy("{holder}已撤回对贵部门使用其{type}（证照标识 {identifier}）的授权，用途：{purpose}。"),
        email_subject=gettext_lazy("【数字政府】用证授权已撤回：{type}"),
    ),
)


# --- who holds a wallet ---------------------------------------------------------------------------------


class WalletRefusal(PermissionDenied):
    """The account holds no wallet now; ``code``: ``anonymous``, ``not_a_holder``, ``unverified``, ``agent_scope``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Holder:
    """Whose wallet a request opens: the account acting, the holder kind and blind index, the agency if any."""

    user: Any
    kind: str
    index: str
    agency: Any = None

    @property
    def role(self) -> str:
        """``holder`` for the holder's own account, ``agent`` for a person acting for an enterprise."""
        return "agent" if self.agency is not None else "holder"


def holder_of(user, *, agency=None) -> Holder:
    """The holder ``user`` stands for (an enterprise when acting under ``agency``); :class:`WalletRefusal` if none.

    ``agency`` is the authorization the session acts under (:func:`dgov.identity.agents.acting_agency`,
    checked in force at every request); it must be the user's own and include the ``licences`` scope.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        raise WalletRefusal("anonymous", _("请先登录。"))
    if agency is not None:
        if agency.agent_id != user.pk:
            raise WalletRefusal("agent_scope", _("该经办人授权不属于当前账号。"))
        if AGENT_SCOPE not in (agency.scopes or []):
            raise WalletRefusal("agent_scope", _("您代表的企业未授权您查看和使用电子证照。"))
        uscc = getattr(agency.enterprise, "enterprise_uscc", "")
        if not uscc:
            raise WalletRefusal("unverified", _("该企业账号尚未完成企业实名认证。"))
        return Holder(user, HolderKind.ENTERPRISE, services.holder_index(HolderKind.ENTERPRISE, uscc), agency)
    kind = getattr(user, "kind", "")
    if kind not in (HolderKind.PERSON, HolderKind.ENTERPRISE):
        raise WalletRefusal("not_a_holder", _("工作人员和管理员账号没有个人证照；请使用个人或企业账号登录。"))
    if getattr(user, "real_name_level", 1) < MIN_LEVEL:
        raise WalletRefusal("unverified", _("完成实名认证（二级及以上）后才能查看和使用本人的电子证照。"))
    if kind == HolderKind.PERSON:
        digest = getattr(user, "id_number_digest", "")
        if not digest:
            raise WalletRefusal("unverified", _("完成实名认证（二级及以上）后才能查看和使用本人的电子证照。"))
        return Holder(user, HolderKind.PERSON, digest)
    uscc = getattr(user, "enterprise_uscc", "")
    if not uscc:
        raise WalletRefusal("unverified", _("企业账号完成企业实名认证后才能查看和使用企业的电子证照。"))
    return Holder(user, HolderKind.ENTERPRISE, services.holder_index(HolderKind.ENTERPRISE, uscc))


def _detail(holder: Holder, **extra) -> dict:
    """Audit detail naming how the holder acted (the agency when an agent)."""
    detail: dict[str, Any] = {"as": holder.role, **extra}
    if holder.agency is not None:
        detail["agency"] = holder.agency.pk
    return detail


def holds(holder: Holder, licence: Licence) -> bool:
    """Whether ``licence`` is in ``holder``'s wallet."""
    return licence.holder_kind == holder.kind and bool(holder.index) and licence.holder_index == holder.index


# --- the wallet -------------------------------------------------------------------------------------------


def licences_of(holder: Holder) -> QuerySet[Licence]:
    """The holder's licences (type and issuer loaded), newest first."""
    return (
        Licence.objects.filter(holder_index=holder.index, holder_kind=holder.kind)
        .select_related("licence_type", "issuer")
        .order_by("-issued_at", "-id")
    )


def list_licences(holder: Holder) -> list[Licence]:
    """The holder's licences for the wallet page; the read is audited (``licenses.wallet.list``)."""
    licences = list(licences_of(holder))
    with transaction.atomic():
        audit.record(
            "licenses.wallet.list",
            actor=holder.user,
            detail=_detail(holder, count=len(licences), identifiers=[licence.identifier for licence in licences][:50]),
        )
    return licences


def find_own(holder: Holder, identifier: str, *, action: str) -> Licence:
    """The holder's licence with this identifier; ``Licence.DoesNotExist`` otherwise (another's: audited)."""
    identifier = (identifier or "").strip()[:128]
    licence = licences_of(holder).filter(identifier=identifier).first()
    if licence is not None:
        return licence
    other = Licence.objects.filter(identifier=identifier).first()
    if other is not None:  # someone else's licence: refused as unknown, the attempt audited
        with transaction.atomic():
            audit.record(
                action,
                actor=holder.user,
                target=other,
                outcome="denied",
                detail=_detail(holder, identifier=identifier, reason="not the holder"),
            )
    raise Licence.DoesNotExist


def open_licence(holder: Holder, identifier: str) -> Licence:
    """The holder's licence for its wallet page; audited (``licenses.wallet.view``); another's: DoesNotExist."""
    licence = find_own(holder, identifier, action="licenses.wallet.view")
    with transaction.atomic():
        audit.record(
            "licenses.wallet.view", actor=holder.user, target=licence, detail=_detail(holder, identifier=identifier)
        )
    return licence


def effective_status(licence: Licence, today: datetime.date | None = None) -> str:
    """The licence's status today: ``valid``, ``suspended``, ``revoked``, ``expired`` or ``not_yet_valid``."""
    today = today or timezone.localdate()
    if licence.status != Licence.Status.VALID:
        return licence.status
    if licence.valid_until is not None and licence.valid_until < today:
        return "expired"
    if licence.valid_from > today:
        return "not_yet_valid"
    return "valid"


STATUS_LABELS = {
    "valid": gettext_lazy("有效"),
    "suspended": gettext_lazy("暂停"),
    "revoked": gettext_lazy("已撤销"),
    "expired": gettext_lazy("已过期"),
    "not_yet_valid": gettext_lazy("尚未生效"),
}


def credential_for(holder: Holder, licence: Licence) -> Credential:
    """The current credential of the holder's licence, for download; audited (``licenses.credential.download``)."""
    if not holds(holder, licence):
        raise Licence.DoesNotExist
    credential = services.current_credential(licence)
    with transaction.atomic():
        audit.record(
            "licenses.credential.download",
            actor=holder.user,
            target=licence,
            detail=_detail(holder, identifier=licence.identifier, credential=credential.credential_id),
        )
    return credential


def pdf_for(holder: Holder, licence: Licence) -> bytes:
    """The signed PDF of the holder's licence; audited (``licenses.licence.pdf``).

    The holder's own account goes through :func:`dgov.licenses.services.render_pdf` (which checks
    and audits it); an agent, whom that function does not know as the holder, is checked here.
    """
    if not holds(holder, licence):
        raise Licence.DoesNotExist
    if holder.agency is None:
        return services.render_pdf(licence, actor=holder.user)
    from dgov.licenses import pdfsign

    data = pdfsign.licence_pdf(licence)
    with transaction.atomic():
        audit.record(
            "licenses.licence.pdf",
            actor=holder.user,
            target=licence,
            detail=_detail(holder, identifier=licence.identifier, version=licence.version),
        )
    return data


def uses_of(holder: Holder, licence: Licence) -> QuerySet[LicenceUse]:
    """Who used the holder's licence, newest first (the use log, 用证记录)."""
    if not holds(holder, licence):
        return LicenceUse.objects.none()
    return LicenceUse.objects.filter(licence=licence).select_related("organization", "consent").order_by("-at", "-id")


# --- consent (用证授权) -------------------------------------------------------------------------------------


class ConsentError(ValidationError):
    """A consent was refused because of its input or state (a 4xx, never a 500)."""


def consent_default_days() -> int:
    """The default period of a consent in days (``LICENCE_CONSENT_DEFAULT_DAYS``, 30)."""
    return max(1, min(int(getattr(settings, "LICENCE_CONSENT_DEFAULT_DAYS", 30) or 30), consent_max_days()))


def consent_max_days() -> int:
    """The longest consent in days (``LICENCE_CONSENT_MAX_DAYS``, 365)."""
    return max(1, int(getattr(settings, "LICENCE_CONSENT_MAX_DAYS", 365) or 365))


def consent_state(consent: LicenceConsent, now: datetime.datetime | None = None) -> str:
    """``active``, ``revoked``, ``expired`` or ``pending`` (starts later)."""
    now = now or timezone.now()
    if consent.revoked_at is not None:
        return "revoked"
    if consent.valid_until <= now:
        return "expired"
    if consent.valid_from > now:
        return "pending"
    return "active"


CONSENT_STATE_LABELS = {
    "active": gettext_lazy("有效"),
    "revoked": gettext_lazy("已撤回"),
    "expired": gettext_lazy("已到期"),
    "pending": gettext_lazy("未生效"),
}


def _active_consents(now: datetime.datetime) -> Q:
    """The condition of consents in force at ``now``."""
    return Q(revoked_at__isnull=True, valid_from__lte=now, valid_until__gt=now)


def consents_of(holder: Holder, licence: Licence | None = None) -> QuerySet[LicenceConsent]:
    """The consents the holder gave (for one licence, or all), newest first."""
    found = LicenceConsent.objects.filter(holder_index=holder.index, licence__holder_kind=holder.kind)
    if licence is not None:
        found = found.filter(licence=licence)
    return found.select_related("grantee", "licence", "licence__licence_type").order_by("-created_at", "-id")


def consents_for_department(department: Organization) -> QuerySet[LicenceConsent]:
    """The consents in force that let ``department`` read a licence (for its systems to know what they may use)."""
    return (
        LicenceConsent.objects.filter(_active_consents(timezone.now()), grantee=department)
        .select_related("licence", "licence__licence_type", "licence__issuer")
        .order_by("valid_until", "id")
    )


def find_departments(query: str, *, limit: int = DEPARTMENT_SEARCH_LIMIT) -> list[Organization]:
    """Active departments whose name, short name or code contains ``query`` (for the consent form)."""
    text = (query or "").strip()[:64]
    if not text:
        return []
    return list(
        Organization.objects.filter(is_active=True)
        .filter(Q(name__icontains=text) | Q(short_name__icontains=text) | Q(code__iexact=text))
        .select_related("division")
        .order_by("level", "code")[:limit]
    )


def _notify(consent: LicenceConsent, template: str, *, actor) -> int:
    """Tell the grantee department's active officials about a consent (in-app); how many were told."""
    from dgov.kernel.services.notify import notify

    licence = consent.licence
    until = timezone.localtime(consent.valid_until).strftime("%Y-%m-%d %H:%M")
    context = {
        "type": licence.licence_type.name,
        "identifier": licence.identifier,
        "holder": access.masked_holder_name(licence),  # a person masked, an enterprise by name
        "purpose": consent.purpose,
        "service": (_("限服务事项 %(code)s；") % {"code": consent.service_code}) if consent.service_code else "",
        "until": until,
    }
    officials = (
        get_user_model()
        .objects.filter(kind="official", department_id=consent.grantee_id, is_active=True)
        .order_by("pk")
    )
    sent = 0
    for official in officials:
        notify(official, template, context, channels=("in_app",), actor=actor)
        sent += 1
    return sent


def _clean_service_code(value: str) -> str:
    """A service item code (letters, digits, ``.``, ``_``, ``-``; up to 64) or ""; ConsentError otherwise."""
    code = (value or "").strip()
    if code and not SERVICE_CODE.match(code):
        raise ConsentError({"service_code": [_("服务事项编码只能包含字母、数字、点、下划线和连字符，最长 64 位")]})
    return code


def _refuse_consent(action: str, holder: Holder, target, reason: str, message: str) -> PermissionDenied:
    """Audit a refused consent operation and return the exception to raise."""
    with transaction.atomic():
        audit.record(action, actor=holder.user, target=target, outcome="denied", detail=_detail(holder, reason=reason))
    return PermissionDenied(message)


def grant_consent(
    holder: Holder,
    licence: Licence,
    *,
    grantee: Organization,
    purpose: str,
    days: int | None = None,
    service_code: str = "",
) -> LicenceConsent:
    """Authorize ``grantee`` to read the holder's ``licence`` for ``purpose`` for ``days`` days (用证授权).

    Refused (audited) for a licence the holder does not hold; :class:`ConsentError` for a purpose
    missing or too long, a period outside 1…max days, an inactive department, a licence that is
    not valid now, or a consent in force for the same department and service item. Audited and
    notified to the department's officials in the same transaction.
    """
    if not holds(holder, licence):
        raise _refuse_consent("licenses.consent.grant", holder, licence, "not the holder", _("您不是该证照的持证主体"))
    errors: dict[str, list[str]] = {}
    purpose = " ".join((purpose or "").split())
    if not purpose:
        errors["purpose"] = [_("请填写用途")]
    elif len(purpose) > 300:
        errors["purpose"] = [_("超过 %(n)s 个字符") % {"n": 300}]
    maximum = consent_max_days()
    days = consent_default_days() if days in (None, "") else days
    try:
        days = int(days)
    except (TypeError, ValueError):
        days = 0
    if not 1 <= days <= maximum:
        errors["days"] = [_("授权期限应为 1 至 %(n)d 天") % {"n": maximum}]
    try:
        service_code = _clean_service_code(service_code)
    except ConsentError as exc:
        errors.update(exc.message_dict)
    if grantee is None or not grantee.is_active:
        errors["grantee"] = [_("请选择有效的部门")]
    if errors:
        raise ConsentError(errors)
    now = timezone.now()
    with transaction.atomic():
        licence = Licence.objects.select_for_update().select_related("licence_type", "issuer").get(pk=licence.pk)
        status = effective_status(licence)
        if status != "valid":
            message = _("证照当前状态为%(status)s，不能授权使用") % {"status": STATUS_LABELS[status]}
            raise ConsentError({"licence": [message]})
        live = LicenceConsent.objects.filter(_active_consents(now), licence=licence, grantee=grantee)
        if live.filter(service_code=service_code).exists():
            raise ConsentError({"grantee": [_("已向该部门授权使用此证照；如需变更，请先撤回原授权")]})
        consent = LicenceConsent.objects.create(
            licence=licence,
            holder_index=licence.holder_index,
            granted_by=holder.user if getattr(holder.user, "pk", None) else None,
            grantee=grantee,
            service_code=service_code,
            purpose=purpose,
            valid_from=now,
            valid_until=now + datetime.timedelta(days=days),
        )
        audit.record(
            "licenses.consent.grant",
            actor=holder.user,
            target=consent,
            detail=_detail(
                holder,
                identifier=licence.identifier,
                grantee=grantee.code,
                service_code=service_code,
                purpose=purpose,
                valid_until=consent.valid_until.isoformat(),
            ),
        )
        _notify(consent, "licenses.consent.granted", actor=holder.user)
    return consent


def revoke_consent(holder: Holder, consent: LicenceConsent) -> LicenceConsent:
    """Withdraw a consent (撤回授权): it stops the very next use. Refused for others' consents; audited and notified."""
    licence = Licence.objects.get(pk=consent.licence_id)
    if not holds(holder, licence):  # audited outside the transaction the refusal would roll back
        raise _refuse_consent("licenses.consent.revoke", holder, consent, "not the holder", _("无权撤回该授权"))
    with transaction.atomic():
        consent = (
            LicenceConsent.objects.select_for_update()
            .select_related("licence", "licence__licence_type", "grantee")
            .get(pk=consent.pk)
        )
        if consent.revoked_at is not None:
            raise ConsentError({"consent": [_("该授权已撤回")]})
        consent.revoked_at = timezone.now()
        consent.save(update_fields=["revoked_at"])
        audit.record(
            "licenses.consent.revoke",
            actor=holder.user,
            target=consent,
            detail=_detail(holder, identifier=consent.licence.identifier, grantee=consent.grantee.code),
        )
        if consent.valid_until > consent.revoked_at:  # an expired consent concerns nobody any more
            _notify(consent, "licenses.consent.revoked", actor=holder.user)
    return consent


# --- use (用证) ---------------------------------------------------------------------------------------------


class UseRefused(Exception):
    """A refused licence use (already audited and, for clients, logged): HTTP status, stable code, safe message."""

    def __init__(self, status: int, code: str, message: str, *, seq: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.seq = status, code, message, seq


@dataclass
class UseResult:
    """A served licence use: the licence, the use row, the basis, the data as answered and the exchange reference."""

    licence: Licence
    use: LicenceUse
    basis: str  # "consent" or "unconditional"
    consent: LicenceConsent | None
    holder_name: str
    holder_id: str
    data: dict[str, Any]
    credential: str | None
    exchange: dict | None


def _is_client(actor) -> bool:
    """An API client (HTTP Basic or a client-credentials token), not a person."""
    return bool(getattr(actor, "client_id", ""))


def identifier_digest(identifier: str) -> str:
    """A licence as named in the exchange log: the SM3 (hex) of its identifier, checkable by whoever has it."""
    return sm3(identifier.encode("utf-8")).hex()


@dataclass
class _UseCall:
    """What the audit and exchange log need to know about one use call, filled in as the checks go."""

    actor: Any
    purpose: str
    service_code: str
    channel: str
    department: Organization | None = None
    licence: Licence | None = None
    type_code: str = ""

    def log(self, result: str, *, code: str = "", status: int = 200, fields=(), served: bool = False):
        """Append the call to the exchange log (clients only; in the caller's transaction); the entry or None."""
        if not _is_client(self.actor):
            return None
        from dgov.exchange import services as exchange

        if not exchange.log_enabled():
            return None
        licence = self.licence
        return exchange.log_exchange(
            operation=EXCHANGE_OPERATION,
            result=result,
            code=code,
            status=status,
            consumer_code=self.department.code if self.department is not None else "",
            client_id=self.actor.client_id,
            provider_code=licence.issuer.code if licence is not None and served else "",
            resource_code=licence.licence_type.code if licence is not None else self.type_code,
            fields=list(fields),
            purpose=self.purpose,
            records=[identifier_digest(licence.identifier)] if licence is not None and served else [],
        )

    def refuse(self, status: int, code: str, message: str, *, reason: str = "") -> UseRefused:
        """Audit (and, for clients, log) the refusal; return the exception to raise.

        ``reason`` is the true cause when the caller is told less (a holder lookup without consent
        answers "not found", so a department cannot learn which licences a person holds).
        """
        from dgov.exchange.log import LogUnavailable

        result = "error" if status in (400, 404) else "denied"
        entry = None
        try:
            with transaction.atomic():
                audit.record(
                    "licenses.licence.use",
                    actor=self.actor,
                    target=self.licence,
                    outcome="denied" if result == "denied" else "failed",
                    detail={
                        "code": code,
                        "reason": reason or code,
                        "identifier": self.licence.identifier if self.licence is not None else "",
                        "department": self.department.code if self.department is not None else "",
                        "channel": self.channel,
                        "purpose": self.purpose,
                        "service_code": self.service_code,
                    },
                )
                entry = self.log(result, code=code, status=status)
        except LogUnavailable:
            return UseRefused(503, "log_unavailable", _("共享交换日志暂不可用，请稍后再试"))
        return UseRefused(status, code, message, seq=entry.seq if entry is not None else None)


def _covering(licence: Licence, department: Organization, service_code: str, now) -> LicenceConsent | None:
    """The consent in force that lets ``department`` read ``licence`` (for ``service_code``), or None."""
    found = LicenceConsent.objects.filter(_active_consents(now), licence=licence, grantee=department)
    found = found.filter(service_code="") if not service_code else found.filter(service_code__in=("", service_code))
    return found.order_by("-valid_until", "-id").first()


def _why_not(licence: Licence, department: Organization, service_code: str, now) -> tuple[str, str]:
    """Why no consent covers the department: (code, message) from its latest consent for the licence."""
    latest = LicenceConsent.objects.filter(licence=licence, grantee=department).order_by("-created_at", "-id").first()
    if latest is None:
        return "no_consent", _("持证主体未授权本部门使用该证照")
    state = consent_state(latest, now)
    if state == "revoked":
        return "consent_revoked", _("持证主体已撤回对本部门的用证授权")
    if state == "expired":
        return "consent_expired", _("持证主体对本部门的用证授权已到期")
    if latest.service_code and latest.service_code != service_code:
        return "consent_other_service", _("用证授权仅限其他服务事项")
    return "no_consent", _("持证主体未授权本部门使用该证照")


STATUS_REFUSALS = {
    "revoked": ("licence_revoked", gettext_lazy("证照已撤销")),
    "suspended": ("licence_suspended", gettext_lazy("证照已暂停")),
    "expired": ("licence_expired", gettext_lazy("证照已过期")),
    "not_yet_valid": ("licence_not_yet_valid", gettext_lazy("证照尚未生效")),
}


def _candidates(call: _UseCall, identifier: str, holder_id: str, type_code: str) -> tuple[list[Licence], bool]:
    """The licences a call names — (licences, by holder) — refusals raised."""
    if identifier:
        licence = access.find_licence(identifier[:128])
        if licence is None:
            raise call.refuse(404, "licence_not_found", _("证照不存在"))
        return [licence], False
    if not (holder_id and type_code):
        raise call.refuse(400, "licence_required", _("请提供证照标识，或持证主体证件号码和证照类型代码"))
    licence_type = LicenceType.objects.filter(code=type_code).first()
    if licence_type is None:
        raise call.refuse(404, "type_not_found", _("证照类型不存在"))
    try:
        cleaned = services.clean_holder(licence_type.holder_kind, holder_id)
    except services.LicenceError:
        raise call.refuse(400, "bad_holder_id", _("持证主体证件号码格式不正确")) from None
    found = list(
        Licence.objects.filter(
            licence_type=licence_type, holder_index=services.holder_index(licence_type.holder_kind, cleaned)
        )
        .select_related("licence_type", "licence_type__department", "issuer")
        .order_by("-issued_at", "-id")
    )
    if not found:
        raise call.refuse(404, "licence_not_found", _("未找到可使用的证照"))
    # Usable licences first (a renewed or re-issued licence before an expired one), newest first within.
    found.sort(key=lambda licence: effective_status(licence) != "valid")
    return found, True


def _served_data(licence: Licence, *, masked: bool) -> tuple[str, str, dict[str, Any]]:
    """(holder name, holder id, data) as answered: in full under a consent, personal data masked without one."""
    data = services.licence_data(licence)
    if not masked:
        return licence.holder_name, licence.holder_id, data
    declared = {item["name"]: item for item in licence.licence_type.items or []}
    shown = {name: access._mask_value(declared.get(name, {}), value) for name, value in data.items()}
    return access.masked_holder_name(licence), access.masked_holder_id(licence), shown


def use_licence(
    actor,
    *,
    purpose: str,
    identifier: str = "",
    holder_id: str = "",
    type_code: str = "",
    service_code: str = "",
) -> UseResult:
    """Read a licence for a department (用证) under the holder's consent or unconditional sharing; log and audit it.

    ``actor`` is an official or an API client (with ``licences:use``) of the using department.
    Raises :class:`UseRefused` — 400 ``purpose_required`` / ``bad_service_code`` /
    ``licence_required`` / ``bad_holder_id``, 403 ``no_department`` / ``scope_missing`` / ``no_consent`` /
    ``consent_revoked`` / ``consent_expired`` / ``consent_other_service`` / ``licence_revoked`` /
    ``licence_suspended`` / ``licence_expired`` / ``licence_not_yet_valid``, 404 ``licence_not_found``
    / ``type_not_found``, 429 ``rate_limited``, 503 ``log_unavailable``. A lookup by holder that no
    consent covers answers 404 ``licence_not_found`` whatever the holder holds.
    """
    from dgov.exchange import services as exchange
    from dgov.exchange.log import LogUnavailable

    client = _is_client(actor)
    call = _UseCall(
        actor=actor,
        purpose=" ".join((purpose or "").split())[:300],
        service_code=(service_code or "").strip()[:64],
        channel=LicenceUse.Channel.EXCHANGE if client else LicenceUse.Channel.API,
        type_code=(type_code or "").strip().upper()[:32],
    )
    department = department_of(actor)
    call.department = department if department is not None and department.is_active else None
    if call.department is None:
        raise call.refuse(403, "no_department", _("只有部门的工作人员或应用可以使用证照"))
    if client and USE_SCOPE not in (getattr(actor, "scopes", None) or ()):
        raise call.refuse(403, "scope_missing", _("当前凭证没有 %(scope)s 权限范围") % {"scope": USE_SCOPE})
    if client and not exchange.take_token(actor.client_id):
        raise call.refuse(429, "rate_limited", _("调用过于频繁，请稍后再试"))
    if not call.purpose:
        raise call.refuse(400, "purpose_required", _("请说明用证用途"))
    if call.service_code and not SERVICE_CODE.match(call.service_code):
        raise call.refuse(400, "bad_service_code", _("服务事项编码格式不正确"))
    candidates, by_holder = _candidates(call, (identifier or "").strip(), (holder_id or "").strip(), call.type_code)
    now = timezone.now()
    chosen, consent = None, None
    for licence in candidates:
        consent = _covering(licence, call.department, call.service_code, now)
        if consent is not None:
            chosen = licence
            break
    if chosen is None:
        chosen = next((lic for lic in candidates if lic.licence_type.sharing_type == UNCONDITIONAL), None)
    if chosen is None:
        call.licence = candidates[0]
        code, message = _why_not(candidates[0], call.department, call.service_code, now)
        if by_holder:  # do not tell a department which licences a person holds (the audit keeps the truth)
            raise call.refuse(404, "licence_not_found", _("未找到可使用的证照"), reason=code)
        raise call.refuse(403, code, message)
    call.licence = chosen
    status = effective_status(chosen)
    if status != "valid":
        code, message = STATUS_REFUSALS[status]
        raise call.refuse(403, code, str(message))
    basis = "consent" if consent is not None else "unconditional"
    holder_name, holder_value, data = _served_data(chosen, masked=consent is None)
    credential = services.current_credential(chosen).jws if consent is not None else None
    try:
        with transaction.atomic():
            use = LicenceUse.objects.create(
                licence=chosen,
                consent=consent,
                organization=call.department,
                actor=services._actor_label(actor),
                channel=call.channel,
                purpose=call.purpose,
                at=timezone.now(),
            )
            entry = call.log("ok", fields=sorted(data), served=True)
            audit.record(
                "licenses.licence.use",
                actor=actor,
                target=chosen,
                detail={
                    "identifier": chosen.identifier,
                    "department": call.department.code,
                    "channel": call.channel,
                    "basis": basis,
                    "consent": consent.pk if consent is not None else None,
                    "purpose": call.purpose,
                    "service_code": call.service_code,
                    "use": use.pk,
                    "exchange_seq": entry.seq if entry is not None else None,
                },
            )
    except LogUnavailable:
        raise UseRefused(503, "log_unavailable", _("共享交换日志暂不可用，请稍后再试")) from None
    return UseResult(
        licence=chosen,
        use=use,
        basis=basis,
        consent=consent,
        holder_name=holder_name,
        holder_id=holder_value,
        data=data,
        credential=credential,
        exchange=None if entry is None else {"seq": entry.seq, "hash": entry.hash},
    )


def record_use(licence: Licence, *, actor, channel: str, purpose: str = "") -> LicenceUse:
    """Record that an official or client opened a licence (workbench page, licence API), for the holder; audited."""
    department = department_of(actor)
    with transaction.atomic():
        use = LicenceUse.objects.create(
            licence=licence,
            organization=department if department is not None else None,
            actor=services._actor_label(actor),
            channel=channel,
            purpose=(purpose or "")[:300],
            at=timezone.now(),
        )
        audit.record(
            "licenses.licence.use",
            actor=actor,
            target=licence,
            detail={
                "identifier": licence.identifier,
                "department": department.code if department is not None else "",
                "channel": channel,
                "basis": "scope",
                "use": use.pk,
            },
        )
    return use
