"""Forms of the officials' registry pages: search, record edit, correction, decision, schema field.

Record forms are built from a registry's field definitions (``schema.FieldDef``). They only parse
what was typed; values are validated and coerced by ``schema.clean_values`` inside the services, so
a value is judged by the same rules whether it comes from a page, an import or the API.
"""

from __future__ import annotations

import json

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from dgov.registry import schema

# Prefixes keep dynamic record fields apart from the form's own fields (a registry may well have a
# field called "reason" or "q").
VALUE_PREFIX = "v_"
FILTER_PREFIX = "f_"

TYPE_LABELS = {
    "string": _("文本"),
    "text": _("长文本"),
    "integer": _("整数"),
    "decimal": _("小数"),
    "boolean": _("是/否"),
    "date": _("日期"),
    "datetime": _("日期时间"),
    "enum": _("枚举"),
    "resident_id": _("居民身份证号码"),
    "uscc": _("统一社会信用代码"),
    "division_code": _("行政区划代码"),
    "phone": _("电话号码"),
    "email": _("电子邮箱"),
    "geojson": _("地理数据（GeoJSON）"),
    "reference": _("引用记录"),
    "json": _("结构化数据（JSON）"),
}

SENSITIVITY_LABELS = {
    "public": _("公开"),
    "internal": _("内部"),
    "personal": _("个人敏感"),
}

BOOLEAN_CHOICES = [("", "—"), ("true", _("是")), ("false", _("否"))]

# Types whose values are lists/objects: typed as JSON text in a textarea.
STRUCTURED_TYPES = ("geojson", "json")

DIVISION_CODE_VALIDATOR = RegexValidator(r"^\d{6}(\d{3}){0,2}$", _("区划代码应为 6、9 或 12 位数字"))


def field_label(field) -> str:
    """The label of a field definition in the active language (English label when there is one)."""
    if field.label_en and (get_language() or "").startswith("en"):
        return field.label_en
    return field.label or field.name


def choice_pairs(field) -> list[tuple[str, str]]:
    """The (code, label) pairs of an enum field: labels in the active language, the code when a choice has none."""
    return [(str(choice), field.choice_label(choice)) for choice in field.choices or ()]


def display_text(field, value) -> str:
    """A stored value as the text an input shows (JSON for structured values, 是/否 → true/false)."""
    if value is None:
        return ""
    if field.type in STRUCTURED_TYPES or isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _value_field(field, *, required: bool = False, initial=None, placeholder: str = "") -> forms.Field:
    """A form field typing one record value of ``field`` as text (the services coerce and validate it)."""
    attrs = {"autocomplete": "off"}
    if placeholder:
        attrs["placeholder"] = placeholder
    label = field_label(field)
    kwargs = {"label": label, "required": required, "initial": initial, "help_text": field.description}
    if field.type == "enum":
        return forms.ChoiceField(choices=[("", "—"), *choice_pairs(field)], **kwargs)
    if field.type == "boolean":
        return forms.ChoiceField(choices=BOOLEAN_CHOICES, **kwargs)
    if field.type in ("text", *STRUCTURED_TYPES):
        return forms.CharField(strip=True, widget=forms.Textarea(attrs={**attrs, "rows": 3}), **kwargs)
    if field.type == "date":
        return forms.CharField(widget=forms.DateInput(attrs={**attrs, "type": "date"}), **kwargs)
    if field.type == "datetime":
        return forms.CharField(widget=forms.DateTimeInput(attrs={**attrs, "type": "datetime-local"}), **kwargs)
    if field.type in ("integer", "decimal"):
        attrs["inputmode"] = "numeric" if field.type == "integer" else "decimal"
    return forms.CharField(strip=True, widget=forms.TextInput(attrs=attrs), **kwargs)


def _parse_structured(field, text: str):
    """The JSON value typed for a structured field; ValidationError naming the field if it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        raise forms.ValidationError(
            _("%(label)s：不是有效的 JSON") % {"label": field_label(field)}, code="invalid_json"
        ) from None


class IdentifierInput(forms.TextInput):
    """A text input that never writes its value back into the page (it may be a personal identifier)."""

    def format_value(self, value):
        """Render empty: an ID number typed for a lookup must not come back in the HTML."""
        return None


class RecordLookupForm(forms.Form):
    """Exact lookup of a record by an identifier, unique or lookup field (sent by POST, never in a URL)."""

    lookup_field = forms.ChoiceField(label=_("查询字段"))
    lookup_value = forms.CharField(
        label=_("标识值"),
        max_length=100,
        widget=IdentifierInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": _("如居民身份证号码、统一社会信用代码")}
        ),
    )

    def __init__(self, *args, lookup_fields, **kwargs):
        """Offer the registry's key fields, the identifier first."""
        super().__init__(*args, **kwargs)
        self.fields["lookup_field"].choices = [(f.name, field_label(f)) for f in lookup_fields]


class RegistrySearchForm(forms.Form):
    """Search a registry's public fields: free text, division and filters on enum/boolean/division fields."""

    q = forms.CharField(
        label=_("关键词"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off", "placeholder": _("在公开字段中查找")}),
    )
    division = forms.CharField(
        label=_("所属区划"),
        required=False,
        max_length=12,
        validators=[DIVISION_CODE_VALIDATOR],
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric", "placeholder": "370102"}),
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, fields, scope_field=None, **kwargs):
        """Add one filter per public enum, boolean and division-code field (the scope field is ``division``)."""
        super().__init__(*args, **kwargs)
        if scope_field is None:
            del self.fields["division"]
        else:
            self.fields["division"].label = field_label(scope_field)
            self.fields["division"].help_text = _("含下级区划")
        self.filter_defs = {}
        for field in fields:
            if field.sensitivity == "personal" or field is scope_field:
                continue  # personal values are sealed: only exact lookups reach them
            if field.type == "enum":
                choices = [("", _("全部")), *choice_pairs(field)]
                form_field = forms.ChoiceField(label=field_label(field), required=False, choices=choices)
            elif field.type == "boolean":
                choices = [("", _("全部")), *BOOLEAN_CHOICES[1:]]
                form_field = forms.ChoiceField(label=field_label(field), required=False, choices=choices)
            elif field.type == "division_code":
                form_field = forms.CharField(
                    label=field_label(field), required=False, max_length=12, validators=[DIVISION_CODE_VALIDATOR]
                )
            else:
                continue
            self.fields[FILTER_PREFIX + field.name] = form_field
            self.filter_defs[field.name] = field

    def filter_fields(self):
        """Bound filter fields, for the template."""
        return [self[FILTER_PREFIX + name] for name in self.filter_defs]

    def filters(self) -> dict:
        """The chosen filters as ``{field: value}`` for ``services.search_records``."""
        chosen = {}
        for name, field in self.filter_defs.items():
            value = self.cleaned_data.get(FILTER_PREFIX + name)
            if value in (None, ""):
                continue
            chosen[name] = (value == "true") if field.type == "boolean" else value
        return chosen


class RecordEditForm(forms.Form):
    """Edit the fields of a record the official's department is authoritative for.

    Personal values are never put into the page: their inputs start empty (the masked value is the
    placeholder) and an empty input means "keep the current value".
    """

    reason = forms.CharField(
        label=_("修改原因"), required=False, max_length=500, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, fields, current: dict, masked: dict, **kwargs):
        """``fields``: writable field definitions; ``current``: unmasked non-personal values; ``masked``: all masked."""
        super().__init__(*args, **kwargs)
        self.defs = {f.name: f for f in fields}
        self.current = current
        for field in fields:
            if field.sensitivity == "personal":
                self.fields[VALUE_PREFIX + field.name] = _value_field(
                    field, placeholder=str(masked.get(field.name) or "")
                )
            else:
                self.fields[VALUE_PREFIX + field.name] = _value_field(
                    field, initial=display_text(field, current.get(field.name))
                )

    def value_fields(self):
        """Bound value fields with their definitions, for the template."""
        return [(self[VALUE_PREFIX + name], field) for name, field in self.defs.items()]

    def clean(self):
        """Parse structured (JSON) inputs; the services validate everything else."""
        data = super().clean()
        for name, field in self.defs.items():
            text = data.get(VALUE_PREFIX + name)
            if field.type in STRUCTURED_TYPES and text:
                try:
                    data[VALUE_PREFIX + name] = _parse_structured(field, text)
                except forms.ValidationError as exc:
                    self.add_error(VALUE_PREFIX + name, exc)
        return data

    def changes(self) -> dict:
        """The fields whose typed value differs from the current one (empty personal inputs are no change)."""
        changed = {}
        for name, field in self.defs.items():
            value = self.cleaned_data.get(VALUE_PREFIX + name)
            if field.sensitivity == "personal":
                if value not in (None, ""):
                    changed[name] = value
                continue
            if field.type in STRUCTURED_TYPES:
                if value != self.current.get(name) and not (value in (None, "") and self.current.get(name) is None):
                    changed[name] = value if value != "" else None
                continue
            if (value or "") != display_text(field, self.current.get(name)):
                changed[name] = value if value != "" else None
        return changed


class CorrectionForm(forms.Form):
    """Propose a correction (纠错) of one field to its authoritative department."""

    reason = forms.CharField(
        label=_("纠错理由"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("说明依据，如现场核验、证件、其他部门登记信息等"),
    )

    def __init__(self, *args, field, **kwargs):
        """Add the value input typed for ``field``."""
        super().__init__(*args, **kwargs)
        self.field_def = field
        self.fields = {"value": _value_field(field, required=True), **self.fields}
        self.fields["value"].label = _("建议值")

    def clean_value(self):
        """Parse JSON for structured fields; the services validate the rest."""
        value = self.cleaned_data["value"]
        if self.field_def.type in STRUCTURED_TYPES:
            return _parse_structured(self.field_def, value)
        return value


class CorrectionDecisionForm(forms.Form):
    """Accept or reject a correction request, with a note."""

    decision = forms.ChoiceField(choices=[("accept", _("采纳")), ("reject", _("驳回"))], widget=forms.HiddenInput)
    note = forms.CharField(
        label=_("处理意见"), required=False, max_length=1000, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )

    def clean(self):
        """A rejection must say why, so the proposer can act on it."""
        data = super().clean()
        if data.get("decision") == "reject" and not (data.get("note") or "").strip():
            self.add_error("note", _("驳回时请填写处理意见"))
        return data


class AsOfForm(forms.Form):
    """Read a record as it was at the end of a past date."""

    as_of = forms.DateField(
        label=_("查看历史时点"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )


class SchemaFieldForm(forms.Form):
    """Add a field to a registry's schema (published as a new version)."""

    name = forms.CharField(
        label=_("字段名"),
        max_length=64,
        validators=[RegexValidator(r"^[a-z][a-z0-9_]*$", _("字段名须以小写字母开头，只含小写字母、数字和下划线"))],
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. blood_type"}),
    )
    label = forms.CharField(label=_("中文名称"), max_length=100)
    label_en = forms.CharField(label=_("英文名称"), max_length=100, required=False)
    type = forms.ChoiceField(label=_("类型"), choices=[])
    sensitivity = forms.ChoiceField(label=_("敏感级别"), choices=[])
    authority = forms.CharField(
        label=_("权威来源部门"),
        max_length=32,
        required=False,
        help_text=_("部门类别（如 GA 公安、MZ 民政、SCJG 市场监管）或部门编码"),
    )
    required = forms.BooleanField(label=_("必填"), required=False)
    unique = forms.BooleanField(label=_("唯一"), required=False)
    lookup = forms.BooleanField(label=_("可精确查询"), required=False)
    choices = forms.CharField(
        label=_("可选值"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("枚举类型必填，每行一个：代码，或“代码|中文名称|英文名称”，如 1|男|Male"),
    )
    ref = forms.CharField(
        label=_("引用的信息库"), max_length=64, required=False, help_text=_("引用类型必填，如 population.person")
    )
    max_length = forms.IntegerField(label=_("最大长度"), required=False, min_value=1)
    min = forms.DecimalField(label=_("最小值"), required=False)
    max = forms.DecimalField(label=_("最大值"), required=False)
    pattern = forms.CharField(label=_("格式（正则表达式）"), max_length=200, required=False)
    description = forms.CharField(label=_("说明"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    note = forms.CharField(label=_("版本变更说明"), required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        """Offer the engine's field types and sensitivity levels."""
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [(t, f"{TYPE_LABELS.get(t, t)} ({t})") for t in schema.FIELD_TYPES]
        self.fields["sensitivity"].choices = [(s, SENSITIVITY_LABELS.get(s, s)) for s in schema.SENSITIVITY]

    def clean_choices(self):
        """Each line is a code, or ``code|中文名称|English label`` (the schema checks the rest)."""
        text = self.cleaned_data.get("choices") or ""
        for line in text.splitlines():
            parts = [part.strip() for part in line.split("|")]
            if line.strip() and (len(parts) > 3 or not parts[0]):
                raise forms.ValidationError(
                    _("“%(line)s”格式不对：每行应为代码，或“代码|中文名称|英文名称”") % {"line": line.strip()[:40]}
                )
        return text

    def definition(self) -> dict:
        """The new field as a definition dict (only the keys that were given)."""
        data = self.cleaned_data
        definition = {
            "name": data["name"],
            "label": data["label"],
            "type": data["type"],
            "sensitivity": data["sensitivity"],
        }
        for key in ("label_en", "authority", "ref", "pattern", "description"):
            if data.get(key):
                definition[key] = data[key]
        for key in ("required", "unique", "lookup"):
            if data.get(key):
                definition[key] = True
        if data.get("max_length"):
            definition["max_length"] = data["max_length"]
        for key in ("min", "max"):
            if data.get(key) is not None:
                number = data[key]
                definition[key] = int(number) if number == number.to_integral_value() else float(number)
        choices = [_choice(line) for line in (data.get("choices") or "").splitlines() if line.strip()]
        if choices:
            definition["choices"] = choices
        return definition


def _choice(line: str):
    """One typed choice: ``code`` stays a string, ``code|label|label_en`` becomes a labelled choice."""
    parts = [part.strip() for part in line.split("|")]
    if len(parts) == 1:
        return parts[0]
    choice = {"value": parts[0], "label": parts[1]}
    if len(parts) > 2 and parts[2]:
        choice["label_en"] = parts[2]
    return choice
