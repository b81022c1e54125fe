"""Forms of the client administration pages (接入应用管理)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from dgov.kernel.models import Organization
from dgov.oidc.models import Client
from dgov.oidc.services import clients


def _lines(value: str) -> list[str]:
    """Non-empty lines of a textarea."""
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


class ClientForm(forms.Form):
    """Register or change a client; id and type are fixed once created."""

    name = forms.CharField(label=_("应用名称"), max_length=100)
    client_id = forms.SlugField(
        label=_("客户端标识"),
        max_length=64,
        required=False,
        help_text=_("小写字母、数字、连字符；留空则按部门编码生成"),
    )
    client_type = forms.ChoiceField(label=_("客户端类型"), choices=Client.Type.choices)
    organization = forms.ModelChoiceField(
        label=_("所属部门"), queryset=Organization.objects.none(), to_field_name="code"
    )
    redirect_uris = forms.CharField(
        label=_("回调地址"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("每行一个，必须与应用发送的 redirect_uri 完全一致"),
    )
    post_logout_redirect_uris = forms.CharField(
        label=_("退出后跳转地址"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("每行一个"),
    )
    grant_types = forms.MultipleChoiceField(label=_("授权类型"), choices=(), widget=forms.CheckboxSelectMultiple)
    scopes = forms.MultipleChoiceField(label=_("允许的权限范围"), choices=(), widget=forms.CheckboxSelectMultiple)
    id_token_alg = forms.ChoiceField(label=_("身份令牌签名算法"), choices=Client.Alg.choices)
    first_party = forms.BooleanField(label=_("平台自有应用（登录时不询问授权）"), required=False)
    min_acr = forms.ChoiceField(
        label=_("最低实名等级"),
        required=False,
        choices=[("", _("不限")), *Client._meta.get_field("min_acr").choices],
        help_text=_("登录未达到该等级时，应用收到 unmet_authentication_requirements"),
    )

    def __init__(self, *args, client: Client | None = None, creating: bool = False, **kwargs):
        initial = kwargs.pop("initial", {}) or {}
        if client is not None:
            initial = {
                "name": client.name,
                "client_id": client.client_id,
                "client_type": client.client_type,
                "organization": client.organization.code,
                "redirect_uris": "\n".join(client.redirect_uris),
                "post_logout_redirect_uris": "\n".join(client.post_logout_redirect_uris),
                "grant_types": client.grant_types,
                "scopes": client.scopes,
                "id_token_alg": client.id_token_alg,
                "first_party": client.first_party,
                "min_acr": client.min_acr,
            }
        elif creating:
            initial.setdefault("grant_types", ["authorization_code", "refresh_token"])
            initial.setdefault("scopes", ["openid", "profile"])
        super().__init__(*args, initial=initial, **kwargs)
        self.creating = creating
        self.fields["organization"].queryset = Organization.objects.filter(is_active=True).order_by("code")
        self.fields["grant_types"].choices = [(k, str(v)) for k, v in clients.GRANT_TYPES.items()]
        self.fields["scopes"].choices = [(k, f"{k} — {v}") for k, v in clients.known_scopes().items()]
        if not creating:
            for name in ("client_id", "client_type"):
                self.fields[name].disabled = True
                self.fields[name].required = False

    def service_values(self) -> dict:
        """Keyword arguments for ``clients.create_client`` / ``update_client``."""
        data = self.cleaned_data
        values = {
            "name": data["name"],
            "organization": data["organization"],
            "redirect_uris": _lines(data.get("redirect_uris", "")),
            "post_logout_redirect_uris": _lines(data.get("post_logout_redirect_uris", "")),
            "grant_types": data["grant_types"],
            "scopes": data["scopes"],
            "id_token_alg": data["id_token_alg"],
            "first_party": data.get("first_party", False),
            "min_acr": data.get("min_acr", ""),
        }
        if self.creating:
            values["client_id"] = data.get("client_id", "")
            values["client_type"] = data["client_type"]
        return values


def add_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (or on the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error)
    else:
        form.add_error(None, exc)
