"""Forms of the portal and the workbench."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _


class LoginForm(AuthenticationForm):
    """Username and password login (MFA and lockout are added by the identity app)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("用户名")
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["password"].label = _("密码")
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})


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
