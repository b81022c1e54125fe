"""Notification templates and the SMS / e-mail gateways they are sent through.

Templates
    ``NOTIFICATION_TEMPLATES`` maps a template code (``"kernel.test"``) to a
    :class:`NotificationTemplate`; every app adds its own with :func:`register_template` (or by
    assigning into the dict at import time). In-app and e-mail text are gettext strings formatted
    with ``str.format`` placeholders (``{name}``), so they follow the user's language; SMS text is
    the wording approved at the SMS provider under ``sms_code``, with the provider's ``${param}``
    placeholders — providers only send approved templates, so it is not translated here.

Gateways
    ``settings.NOTIFY_SMS_BACKEND`` / ``NOTIFY_EMAIL_BACKEND`` name the gateway classes.
    The simulated ones behave like a commercial SMS provider and a mail relay — same arguments,
    same validation, same error codes raised as :class:`GatewayError` — and record every message
    in :class:`~dgov.kernel.models.SentMessage` instead of a carrier network. A real provider's
    gateway implements the same ``send`` signature and raises the same exceptions.
"""

from __future__ import annotations

import math
import re
import string
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import make_msgid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

__all__ = [
    "NOTIFICATION_TEMPLATES",
    "NotificationTemplate",
    "RenderedNotification",
    "register_template",
    "get_template",
    "GatewayError",
    "InvalidRecipient",
    "TemplateError",
    "RateLimited",
    "GatewayUnavailable",
    "normalize_phone",
    "SimulatedSmsGateway",
    "SimulatedEmailGateway",
    "sms_gateway",
    "email_gateway",
]


# --- Templates ---------------------------------------------------------------------------------


# SMS providers write template parameters as ``${param}``, which is string.Template's syntax.
_ProviderTemplate = string.Template


@dataclass(frozen=True)
class RenderedNotification:
    """One template filled in with a context, in the shapes every channel needs."""

    title: str
    body: str
    email_subject: str
    email_body: str
    sms_code: str
    sms_params: dict[str, str]
    link: str = ""


@dataclass(frozen=True)
class NotificationTemplate:
    """A message in every channel's shape: in-app title/body, an approved SMS template, an e-mail."""

    title: str
    body: str
    sms_code: str = ""
    sms_text: str = ""
    email_subject: str = ""
    email_body: str = ""
    sms_params: tuple[str, ...] = field(default=(), init=False, compare=False)

    def __post_init__(self):
        names = tuple(
            m.group("braced") or m.group("named")
            for m in _ProviderTemplate.pattern.finditer(self.sms_text)
            if m.group("braced") or m.group("named")
        )
        object.__setattr__(self, "sms_params", names)
        if bool(self.sms_code) != bool(self.sms_text):
            raise ValueError("sms_code and sms_text go together")

    def render(self, context: dict) -> RenderedNotification:
        """Fill the template in the active language; a missing context key raises KeyError."""
        ctx = dict(context)
        title = str(self.title).format(**ctx)
        body = str(self.body).format(**ctx)
        missing = [p for p in self.sms_params if p not in ctx]
        if missing:
            raise KeyError(f"SMS template {self.sms_code} needs {', '.join(missing)}")
        return RenderedNotification(
            title=title,
            body=body,
            email_subject=str(self.email_subject or self.title).format(**ctx),
            email_body=str(self.email_body or self.body).format(**ctx),
            sms_code=self.sms_code,
            sms_params={p: str(ctx[p]) for p in self.sms_params},
            link=str(ctx.get("link", "")),
        )


NOTIFICATION_TEMPLATES: dict[str, NotificationTemplate] = {}


def register_template(code: str, template: NotificationTemplate) -> NotificationTemplate:
    """Add a template under ``code``; registering a different template under a taken code raises."""
    existing = NOTIFICATION_TEMPLATES.get(code)
    if existing is not None and existing != template:
        raise ValueError(f"notification template {code!r} is already registered")
    if template.sms_code:
        for other_code, other in NOTIFICATION_TEMPLATES.items():
            if (
                other_code != code
                and other.sms_code == template.sms_code
                and other.sms_text != template.sms_text
            ):
                raise ValueError(f"SMS template code {template.sms_code} is used by {other_code!r}")
    NOTIFICATION_TEMPLATES[code] = template
    return template


def get_template(code: str) -> NotificationTemplate:
    """Return the registered template ``code`` (LookupError when unknown)."""
    try:
        return NOTIFICATION_TEMPLATES[code]
    except KeyError:
        raise LookupError(f"unknown notification template {code!r}") from None


register_template(
    "kernel.test",
    NotificationTemplate(
        title=_("测试通知"),
        body=_("{name}，您好：这是一条来自数字政府平台的测试通知。"),
        sms_code="DGOV_0001",
        sms_text="您好${name}，这是一条来自数字政府平台的测试短信。",
        email_subject=_("【数字政府】测试邮件"),
    ),
)
register_template(
    "kernel.verification_code",
    NotificationTemplate(
        title=_("验证码"),
        body=_("您的验证码为 {code}，{minutes} 分钟内有效。如非本人操作，请忽略。"),
        sms_code="DGOV_0002",
        sms_text="您的验证码为${code}，${minutes}分钟内有效，请勿泄露给他人。",
        email_subject=_("【数字政府】验证码"),
    ),
)


# --- Gateway errors ----------------------------------------------------------------------------


class GatewayError(Exception):
    """A provider refused or failed a send; ``code`` is the provider's error code."""

    retryable = False

    def __init__(self, code: str, message: str, *, request_id: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class InvalidRecipient(GatewayError):
    """The phone number or e-mail address is not one the provider accepts (do not retry)."""


class TemplateError(GatewayError):
    """Unknown template, missing parameter, bad sign name or over-long text (do not retry)."""


class RateLimited(GatewayError):
    """The provider's per-recipient flow control refused the message (retry later)."""

    retryable = True


class GatewayUnavailable(GatewayError):
    """The provider could not be reached or failed internally (retry later)."""

    retryable = True


# --- SMS ----------------------------------------------------------------------------------------

_PHONE = re.compile(r"^1[3-9]\d{9}$")


def normalize_phone(phone: str) -> str:
    """Return a mainland mobile number as ``+861XXXXXXXXXX`` or raise InvalidRecipient."""
    digits = re.sub(r"[\s-]", "", str(phone or ""))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _PHONE.match(digits):
        raise InvalidRecipient("MOBILE_NUMBER_ILLEGAL", "手机号码格式错误（仅支持中国大陆 11 位手机号）")
    return "+86" + digits


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _blind_index(value: str) -> str:
    from dgov.kernel.fields import blind_index

    return blind_index(value, purpose="kernel.notify.recipient")


class SimulatedSmsGateway:
    """An SMS provider stand-in: template code + params, sign name, 70-char segments, flow control."""

    sign_name_setting = "NOTIFY_SMS_SIGN_NAME"
    default_sign_name = "数字政府"
    # A provider's default flow control for one phone number.
    per_minute = 1
    per_hour = 10
    max_length = 500
    single_segment = 70
    multi_segment = 67  # long messages carry a concatenation header in each part

    def __init__(self, sign_name: str | None = None):
        self.sign_name = sign_name or getattr(settings, self.sign_name_setting, self.default_sign_name)

    def approved_templates(self) -> dict[str, str]:
        """Template code → approved text, as registered at the provider (here: from the registry)."""
        return {t.sms_code: t.sms_text for t in NOTIFICATION_TEMPLATES.values() if t.sms_code}

    def segments(self, text: str) -> int:
        """Billing segments of a message: one up to 70 characters, else 67 per part."""
        if len(text) <= self.single_segment:
            return 1
        return math.ceil(len(text) / self.multi_segment)

    def send(self, phone: str, template_code: str, params: dict) -> str:
        """Send an approved template to a mainland mobile number; return the provider's request id."""
        from dgov.kernel.models import SentMessage

        request_id = _request_id()
        to = normalize_phone(phone)  # raises before anything is recorded, like the provider's API check
        if not self.sign_name or not 2 <= len(self.sign_name) <= 12:
            raise TemplateError("SIGNATURE_ILLEGAL", "短信签名不合法", request_id=request_id)
        text = self.approved_templates().get(template_code)
        if text is None:
            raise TemplateError(
                "SMS_TEMPLATE_ILLEGAL", f"模板 {template_code} 不存在或未审核", request_id=request_id
            )
        try:
            body = f"【{self.sign_name}】" + _ProviderTemplate(text).substitute(
                {k: str(v) for k, v in (params or {}).items()}
            )
        except (KeyError, ValueError) as exc:
            raise TemplateError(
                "TEMPLATE_MISSING_PARAMETERS", f"模板变量缺失：{exc}", request_id=request_id
            ) from None
        if len(body) > self.max_length:
            raise TemplateError("CONTENT_LENGTH_LIMIT", "短信内容超过长度限制", request_id=request_id)

        index = _blind_index(to)
        now = timezone.now()
        recent = SentMessage.objects.filter(
            channel=SentMessage.Channel.SMS,
            to_index=index,
            status=SentMessage.Status.SENT,
            created_at__gte=now - timedelta(hours=1),
        ).values_list("created_at", flat=True)
        recent = list(recent)
        last_minute = sum(1 for t in recent if t >= now - timedelta(minutes=1))
        def log(status, error_code=""):
            SentMessage.objects.create(
                channel=SentMessage.Channel.SMS,
                gateway=f"{type(self).__module__}.{type(self).__qualname__}",
                to=to,
                to_index=index,
                body=body,
                template_code=template_code,
                segments=self.segments(body),
                provider_id=request_id,
                status=status,
                error_code=error_code,
            )

        if last_minute >= self.per_minute or len(recent) >= self.per_hour:
            log(SentMessage.Status.REJECTED, "BUSINESS_LIMIT_CONTROL")
            raise RateLimited("BUSINESS_LIMIT_CONTROL", "触发号码发送频率限制", request_id=request_id)
        log(SentMessage.Status.SENT)
        return request_id


# --- E-mail -------------------------------------------------------------------------------------


class SimulatedEmailGateway:
    """A mail relay stand-in: validates, hands the message to Django's mail backend and records it."""

    def send(self, to: str, subject: str, body: str, html: str | None = None) -> str:
        """Send one e-mail; return its Message-ID."""
        from django.core.mail import EmailMultiAlternatives

        from dgov.kernel.models import SentMessage

        address = str(to or "").strip()
        try:
            validate_email(address)
        except ValidationError:
            raise InvalidRecipient("INVALID_ADDRESS", "电子邮件地址格式错误") from None
        if not subject or len(subject) > 200 or "\n" in subject or "\r" in subject:
            raise TemplateError("INVALID_SUBJECT", "邮件主题为空、过长或含换行")
        message_id = make_msgid(domain=getattr(settings, "NOTIFY_EMAIL_DOMAIN", "dgov.local"))
        message = EmailMultiAlternatives(
            subject=subject,
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
            headers={"Message-ID": message_id},
        )
        if html:
            message.attach_alternative(html, "text/html")
        try:
            message.send(fail_silently=False)
        except OSError as exc:  # SMTP and socket errors: the relay is down, try again later
            raise GatewayUnavailable("RELAY_UNAVAILABLE", f"{exc.__class__.__name__}: {exc}") from exc
        SentMessage.objects.create(
            channel=SentMessage.Channel.EMAIL,
            gateway=f"{type(self).__module__}.{type(self).__qualname__}",
            to=address,
            to_index=_blind_index(address.lower()),
            subject=subject,
            body=body,
            provider_id=message_id,
            status=SentMessage.Status.SENT,
        )
        return message_id


def sms_gateway():
    """An instance of the configured SMS gateway (settings.NOTIFY_SMS_BACKEND)."""
    return import_string(settings.NOTIFY_SMS_BACKEND)()


def email_gateway():
    """An instance of the configured e-mail gateway (settings.NOTIFY_EMAIL_BACKEND)."""
    return import_string(settings.NOTIFY_EMAIL_BACKEND)()
