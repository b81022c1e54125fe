"""Forms of the portal and the workbench."""

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _


class LoginForm(forms.Form):
    """The password step of the login: a plain form (``username``, ``password``) that scripts can drive.

    ``username`` may be the account name, a mobile number or a resident ID number; checking,
    throttling and the second factor are the identity app's (dgov.identity.authentication).
    """

    username = forms.CharField(
        label=_("用户名"),
        max_length=150,
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autofocus": True, "placeholder": _("账号名、手机号码或身份证号码")}
        ),
    )
    password = forms.CharField(
        label=_("密码"),
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class DivisionSearchForm(forms.Form):
    """Search the administrative divisions by name or code, or browse the children of one division."""

    q = forms.CharField(
        label=_("名称或代码"),
        required=False,
        max_length=64,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": _("输入区划名称或代码，如 济南 或 3701"),
                "autocomplete": "off",
            }
        ),
    )
    parent = forms.CharField(
        required=False,
        max_length=12,
        validators=[RegexValidator(r"^\d{6}(\d{3}){0,2}$", _("区划代码应为 6、9 或 12 位数字"))],
        widget=forms.HiddenInput,
    )
