"""Forms of the second login step and of the account console (账号与安全)."""

from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from dgov.identity.passwords import policy_summary
from dgov.kernel.notify import InvalidRecipient, normalize_phone

_CODE = RegexValidator(r"^\s*\d{6}\s*$", _("请输入 6 位数字验证码"))


def _code_field(label=None) -> forms.CharField:
    """A 6-digit one-time code input (numeric keypad on phones, filled by password managers)."""
    return forms.CharField(
        label=label or _("验证码"),
        max_length=12,
        validators=[_CODE],
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": r"\s*[0-9]{6}\s*",
                "autofocus": True,
                "class": "code-input",
            }
        ),
    )


class CodeForm(forms.Form):
    """A second-factor code (TOTP from an authenticator app, or an SMS code)."""

    METHODS = (("totp", _("动态口令")), ("sms", _("短信验证码")))

    method = forms.ChoiceField(choices=METHODS, widget=forms.HiddenInput)
    code = _code_field()


class ReauthForm(forms.Form):
    """Confirm it is still you: the password or a second-factor code."""

    METHODS = (("password", _("密码")), ("totp", _("动态口令")), ("sms", _("短信验证码")))

    method = forms.ChoiceField(choices=METHODS, widget=forms.HiddenInput)
    secret = forms.CharField(
        label=_("密码或验证码"),
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )


class PasswordChangeForm(forms.Form):
    """Current password and the new one twice (the policy is shown as help text)."""

    current = forms.CharField(
        label=_("当前密码"),
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    new = forms.CharField(
        label=_("新密码"),
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    confirm = forms.CharField(
        label=_("再次输入新密码"),
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new"].help_text = policy_summary()
        self.validators_help = password_validators_help_text_html()

    def clean(self):
        """The two new passwords must match."""
        data = super().clean()
        if data.get("new") and data.get("confirm") and data["new"] != data["confirm"]:
            self.add_error("confirm", _("两次输入的新密码不一致。"))
        return data


class PasswordSetForm(forms.Form):
    """The first password of an account that has none (made by identity brokering), twice."""

    new = forms.CharField(
        label=_("新密码"),
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}),
    )
    confirm = forms.CharField(
        label=_("再次输入新密码"),
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new"].help_text = policy_summary()
        self.validators_help = password_validators_help_text_html()

    def clean(self):
        """The two passwords must match."""
        data = super().clean()
        if data.get("new") and data.get("confirm") and data["new"] != data["confirm"]:
            self.add_error("confirm", _("两次输入的新密码不一致。"))
        return data


class PhoneForm(forms.Form):
    """A new mobile number, then the code sent to it."""

    phone = forms.CharField(
        label=_("新手机号码"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "autofocus": True}),
    )
    code = forms.CharField(
        label=_("短信验证码"),
        required=False,
        max_length=12,
        validators=[_CODE],
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_phone(self):
        """A mainland mobile number in the canonical +86 form (spaces and hyphens allowed when typed)."""
        try:
            return normalize_phone(self.cleaned_data["phone"])
        except InvalidRecipient:
            raise forms.ValidationError(_("请输入中国大陆 11 位手机号码")) from None


class TotpConfirmForm(forms.Form):
    """The first code of a newly added authenticator app."""

    code = _code_field(_("身份验证器显示的 6 位动态口令"))


class SmsConfirmForm(forms.Form):
    """The code sent to turn SMS verification on."""

    code = _code_field(_("短信验证码"))
