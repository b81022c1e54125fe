"""Forms of the API client administration pages (接口客户端管理)."""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from dgov.identity.services import API_SCOPES
from dgov.kernel.models import Organization


def _scope_field(**kwargs) -> forms.MultipleChoiceField:
    """The scopes as checkboxes, each with what it allows."""
    return forms.MultipleChoiceField(
        label=_("权限范围"),
        required=False,
        choices=[(scope, f"{scope} — {description}") for scope, description in API_SCOPES.items()],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("范围只决定能调用哪类接口；能读写哪些数据仍由所属部门的权威来源规则决定。"),
        **kwargs,
    )


class ApiClientCreateForm(forms.Form):
    """A new client: name, the department it acts for (by code), scopes and an optional client id."""

    name = forms.CharField(
        label=_("客户端名称"),
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": _("如 省卫健委出生医学证明系统")}),
    )
    organization = forms.CharField(
        label=_("所属部门编码"),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "370000-WJ"}),
        help_text=_("客户端代表该部门调用接口，其写入权限与该部门相同"),
    )
    client_id = forms.CharField(
        label=_("客户端标识"),
        max_length=64,
        required=False,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9_-]{1,63}$", _("只能包含小写字母、数字、连字符和下划线"))],
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=_("留空则按部门编码生成"),
    )

    def __init__(self, *args, **kwargs):
        """Add the scope checkboxes (read access checked for a new client)."""
        super().__init__(*args, **kwargs)
        self.fields["scopes"] = _scope_field(initial=["registry:read"])

    def clean_organization(self) -> Organization:
        """The active department with this code."""
        code = self.cleaned_data["organization"].strip()
        organization = Organization.objects.filter(code=code, is_active=True).first()
        if organization is None:
            raise forms.ValidationError(_("部门 %(code)s 不存在或已撤销") % {"code": code})
        return organization


class ApiClientScopesForm(forms.Form):
    """Replace a client's scopes."""

    def __init__(self, *args, **kwargs):
        """The scope checkboxes."""
        super().__init__(*args, **kwargs)
        self.fields["scopes"] = _scope_field()


class ApiClientDeactivateForm(forms.Form):
    """Stop a client, saying why (kept in the audit log)."""

    reason = forms.CharField(
        label=_("停用原因"),
        max_length=500,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": _("如 系统下线、密钥疑似泄露")}),
    )
