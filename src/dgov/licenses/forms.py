"""Forms of the officials' e-licence pages: issue (items rendered from the type), search, actions, bulk upload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from dgov.licenses.models import Licence, LicenceType

ITEM_PREFIX = "item_"


def _choices(item: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (value, label) choices of an enum item."""
    out = []
    for choice in item.get("choices", []):
        if isinstance(choice, Mapping):
            out.append((str(choice["value"]), str(choice.get("label") or choice["value"])))
        else:
            out.append((str(choice), str(choice)))
    return out


def item_field(item: Mapping[str, Any], *, required: bool | None = None) -> forms.Field:
    """A form field for one data item of a licence type."""
    kind = item.get("type", "string")
    label = item.get("label") or item["name"]
    needed = bool(item.get("required")) if required is None else required
    common = {"label": label, "required": needed, "help_text": item.get("description", "")}
    if kind == "text":
        return forms.CharField(
            max_length=int(item.get("max_length") or 2000), widget=forms.Textarea(attrs={"rows": 3}), **common
        )
    if kind == "date":
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if kind == "integer":
        return forms.IntegerField(**common)
    if kind == "decimal":
        return forms.DecimalField(**common)
    if kind == "enum":
        return forms.ChoiceField(choices=[("", "—"), *_choices(item)], **common)
    if kind == "boolean":
        return forms.ChoiceField(choices=[("", "—"), ("true", _("是")), ("false", _("否"))], **common)
    return forms.CharField(max_length=int(item.get("max_length") or 200), **common)


class ItemsMixin:
    """Adds one field per data item of ``licence_type`` (named ``item_<name>``)."""

    def add_items(self, licence_type: LicenceType, *, initial: Mapping[str, Any] | None = None) -> None:
        """Create the item fields, pre-filled from ``initial`` (a licence's data)."""
        for item in licence_type.items or []:
            name = ITEM_PREFIX + item["name"]
            # The service checks required items, so every problem is reported at once; browsers still ask.
            self.fields[name] = item_field(item, required=False)
            if item.get("required"):
                self.fields[name].widget.attrs["required"] = True
            if initial and item["name"] in initial:
                value = initial[item["name"]]
                if item.get("type") == "boolean":
                    value = "true" if value else "false"
                self.initial[name] = value

    def item_names(self) -> list[str]:
        """The form names of the item fields, in order."""
        return [name for name in self.fields if name.startswith(ITEM_PREFIX)]

    def item_data(self) -> dict[str, Any]:
        """The cleaned item values as licence data (empty values left out)."""
        data = {}
        for name in self.item_names():
            value = self.cleaned_data.get(name)
            if value in (None, ""):
                continue
            data[name[len(ITEM_PREFIX) :]] = value.isoformat() if hasattr(value, "isoformat") else str(value)
        return data

    def add_service_errors(self, errors: Mapping[str, list[str]]) -> None:
        """Put a service's {field: messages} on the form (items on their item fields)."""
        for key, messages in errors.items():
            target = key if key in self.fields else ITEM_PREFIX + key if ITEM_PREFIX + key in self.fields else None
            for message in messages:
                self.add_error(target, message)


class IssueForm(ItemsMixin, forms.Form):
    """Issue one licence of a type: holder, number, validity and the type's items."""

    holder_name = forms.CharField(label=_("持证主体名称"), max_length=200)
    holder_id = forms.CharField(
        label=_("持证主体证件号码"), max_length=32, help_text=_("公民身份号码或统一社会信用代码")
    )
    number = forms.CharField(label=_("证照编号"), max_length=64, required=False, help_text=_("留空则自动生成"))
    valid_from = forms.DateField(
        label=_("有效期起始"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("留空为签发当日"),
    )
    valid_until = forms.DateField(
        label=_("有效期截止"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("留空按证照类型的有效期规则"),
    )

    def __init__(self, *args, licence_type: LicenceType, **kwargs):
        super().__init__(*args, **kwargs)
        self.licence_type = licence_type
        self.add_items(licence_type)


class VaryForm(ItemsMixin, forms.Form):
    """Change data items of a licence (变更): the items pre-filled, a reason."""

    reason = forms.CharField(label=_("变更原因"), max_length=300)

    def __init__(self, *args, licence: Licence, data: Mapping[str, Any], **kwargs):
        super().__init__(*args, **kwargs)
        self.add_items(licence.licence_type, initial=data)


class RenewForm(forms.Form):
    """Extend a licence's validity (延续)."""

    valid_until = forms.DateField(
        label=_("延续至"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("留空按证照类型的有效期规则"),
    )
    reason = forms.CharField(label=_("原因"), max_length=300, required=False)


class ReasonForm(forms.Form):
    """Suspend, resume or revoke: a reason (required except to resume)."""

    reason = forms.CharField(label=_("原因"), max_length=300, required=False)


class SearchForm(forms.Form):
    """Licence search by identifier, number, type and status (GET; the holder lookup is a separate POST)."""

    identifier = forms.CharField(label=_("证照标识"), max_length=128, required=False)
    number = forms.CharField(label=_("证照编号"), max_length=64, required=False)
    type = forms.ChoiceField(label=_("证照类型"), required=False)
    status = forms.ChoiceField(label=_("状态"), required=False, choices=[("", _("全部")), *Licence.Status.choices])

    def __init__(self, *args, types, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [("", _("全部"))] + [(t.code, t.name) for t in types]


class HolderLookupForm(forms.Form):
    """Find licences by the holder's ID number or USCC (sent by POST, never in a URL)."""

    holder_id = forms.CharField(label=_("持证主体证件号码"), max_length=32)


class BulkForm(forms.Form):
    """A CSV file of licences of one type to issue, all or nothing."""

    type = forms.ChoiceField(label=_("证照类型"))
    file = forms.FileField(label=_("CSV 文件"))

    def __init__(self, *args, types, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [(t.code, f"{t.name}（{t.code}）") for t in types]


class CatalogueForm(forms.Form):
    """A YAML or JSON catalogue file to load, all or nothing."""

    file = forms.FileField(label=_("证照目录文件（YAML 或 JSON）"))
    dry_run = forms.BooleanField(label=_("只检查，不保存"), required=False)
