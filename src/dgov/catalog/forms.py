"""Forms of the catalogue pages: search, the entry with its item rows, review and retirement decisions."""

from __future__ import annotations

from django import forms
from django.db.models import Q
from django.forms import formset_factory
from django.utils.translation import gettext_lazy as _

from dgov.catalog.models import InformationItem, InformationResource, OpenType, ResourceClass, SharingType
from dgov.registry.models import Registry

R = InformationResource


ALL = _("全部")


def _blank(choices, label=ALL):
    """Choices with an empty first option."""
    return [("", label), *choices]


class SearchForm(forms.Form):
    """The catalogue search: text and facet filters."""

    q = forms.CharField(label=_("检索"), max_length=100, required=False)
    provider = forms.CharField(required=False, max_length=32)
    class_item = forms.RegexField(regex=r"^\d{3}$", required=False)
    sharing_type = forms.ChoiceField(choices=_blank(SharingType.choices), required=False)
    open_type = forms.ChoiceField(choices=_blank(OpenType.choices), required=False)
    format = forms.ChoiceField(choices=_blank(R.Format.choices), required=False)
    page = forms.IntegerField(min_value=1, max_value=10000, required=False)


def classification_choices(department) -> list[tuple[str, str]]:
    """Classification nodes an official of ``department`` may register under (项 and below; own department 项)."""
    nodes = ResourceClass.objects.filter(is_active=True, level__gte=ResourceClass.Level.ITEM)
    own = Q(category__in=(ResourceClass.Category.BASE, ResourceClass.Category.THEME))
    if department is not None:
        own |= (
            Q(organization=department) | Q(parent__organization=department) | Q(parent__parent__organization=department)
        )
    return [(str(n.pk), f"{n.code} {n.name}") for n in nodes.filter(own).order_by("code")]


class ResourceForm(forms.Form):
    """The metadata of an entry (GB/T 21063 core metadata)."""

    classification = forms.TypedChoiceField(label=_("资源分类"), coerce=int)
    name = forms.CharField(label=_("信息资源名称"), max_length=200)
    summary = forms.CharField(label=_("信息资源摘要"), widget=forms.Textarea(attrs={"rows": 3}))
    keywords = forms.CharField(label=_("关键字"), max_length=200, required=False)
    format = forms.ChoiceField(label=_("信息资源格式"), choices=R.Format.choices)
    format_detail = forms.CharField(label=_("格式说明"), max_length=100, required=False)
    sharing_type = forms.ChoiceField(label=_("共享类型"), choices=SharingType.choices)
    sharing_conditions = forms.CharField(
        label=_("共享条件/不予共享依据"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    sharing_mode = forms.ChoiceField(label=_("共享方式"), choices=_blank(R.SharingMode.choices, "—"), required=False)
    open_type = forms.ChoiceField(label=_("开放属性"), choices=OpenType.choices, initial=OpenType.NONE)
    open_conditions = forms.CharField(label=_("开放条件"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    update_cycle = forms.ChoiceField(label=_("更新周期"), choices=R.UpdateCycle.choices)
    contact = forms.CharField(label=_("联系方式"), max_length=200, required=False)
    related = forms.CharField(
        label=_("关联资源代码"), required=False, max_length=500, help_text=_("多个代码以逗号或空格分隔")
    )

    def __init__(self, *args, department=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["classification"].choices = classification_choices(department)

    def related_codes(self) -> list[str]:
        """The related resource codes typed in the form."""
        text = self.cleaned_data.get("related", "").replace("，", ",").replace(",", " ")
        return [code for code in text.split() if code]


def registry_choices() -> list[tuple[str, str]]:
    """Registries with a published schema, by code."""
    rows = Registry.objects.filter(is_active=True, current_schema__isnull=False).order_by("code")
    return [("", "—"), *((r.code, f"{r.code} {r.name}") for r in rows)]


class ItemForm(forms.Form):
    """One information item row."""

    code = forms.CharField(label=_("信息项代码"), max_length=64, required=False)
    name = forms.CharField(label=_("信息项名称"), max_length=100, required=False)
    data_type = forms.ChoiceField(
        label=_("数据类型"), choices=_blank(InformationItem.DataType.choices, "—"), required=False
    )
    length = forms.IntegerField(label=_("长度"), min_value=1, required=False)
    data_element = forms.CharField(label=_("数据元"), max_length=64, required=False)
    registry = forms.ChoiceField(label=_("信息库"), required=False)
    registry_field = forms.CharField(label=_("字段"), max_length=64, required=False)
    sharing_type = forms.ChoiceField(
        label=_("共享类型"), choices=_blank(SharingType.choices, _("同资源")), required=False
    )
    is_own = forms.BooleanField(label=_("本部门权威"), required=False, initial=True)
    description = forms.CharField(label=_("说明"), max_length=300, required=False)

    def __init__(self, *args, registries=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["registry"].choices = registries if registries is not None else registry_choices()

    def is_blank(self) -> bool:
        """A row left empty (ignored)."""
        data = self.cleaned_data
        return not any(data.get(name) for name in ("code", "name", "registry", "registry_field"))


ItemFormSet = formset_factory(ItemForm, extra=3, can_delete=True, max_num=300, validate_max=True)


class DecisionForm(forms.Form):
    """A reviewer's decision and note."""

    decision = forms.ChoiceField(choices=[("approve", _("通过并发布")), ("reject", _("退回"))])
    reason = forms.CharField(
        label=_("审核意见"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )


class ReasonForm(forms.Form):
    """A reason (retirement, withdrawal notes)."""

    reason = forms.CharField(label=_("原因"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
