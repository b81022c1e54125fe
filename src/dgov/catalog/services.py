"""The catalogue's services: classification, entries and their items, the review workflow, 一数一源, versions.

Who may do what
    * **Provider officials** — officials whose department is the entry's provider — create
      entries for their department and edit them while they are a draft, rejected or published
      (editing a published entry starts a revision: the status goes back to draft and the
      published version stays visible until the revision is approved). They submit, withdraw a
      submission, and retire their published entries (with a reason).
    * **Data administrators** (数据管理员) are officials of a 大数据局 (department kind ``DSJ``)
      whose division covers the provider's division (the provincial bureau covers the province, a
      city bureau its city and counties). They review submitted entries — approve (which publishes
      a new version) or reject with a reason — and may retire any published entry they cover. A
      reviewer never decides an entry they submitted themselves.
    * Reading: a published entry's published version is readable by every official, platform
      administrator and API client; drafts and the working copy only by the provider's officials
      and the covering data administrators (and platform administrators).

Workflow: draft → submitted → published (approve) | rejected (reject) → draft (edit) …;
submitted → draft (withdraw); published → draft (revision) → submitted → published (version n+1);
published → retired (terminal). A submission gets a review deadline of ``REVIEW_DAYS`` working days.

Codes (信息资源代码): ``<前段码>/<后段码>`` — the classification code right-padded with zeros to nine
digits (类 1 + 项 2 + 目 3 + 细目 3) and a six-digit sequence per classification, e.g.
``101001000/000003``. The code is allocated at creation; it follows a classification change until
the first publication and is fixed from then on (the classification of a published entry cannot
change: retire it and register a new one).

One data, one source (一数一源) — :func:`conflicts_for`
    An information item is a *claim* when ``is_own`` is set (the provider declares itself the
    source). Two claims conflict when they belong to entries of **different provider departments**
    and either link to the **same registry field** (``registry`` + ``registry_field``), or carry the
    **same data element identifier and the same normalized name** (NFKC, lower case, without
    spaces, punctuation and bracketed notes). The other entry counts when it is published (its
    published version is live) or submitted; drafts and retired entries of others do not. A claim
    linked to a registry field whose registry authority (the field's authority kinds/codes, the
    owner's kind when none) does not name the provider is flagged too (``authority``). Conflicts are
    computed live and shown on the entry and in the review inbox; each submission, approval and
    rejection also stores the conflicts seen at that moment. Approving an entry with conflicts
    needs a review note (the reviewer's decision on them).

Every state change runs in one transaction with its audit record (``catalog.resource.*``) and an
outbox event for the published/retired/submitted transitions; refused attempts are audited with
outcome ``denied``.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.catalog import search
from dgov.catalog.models import (
    InformationItem,
    InformationResource,
    OpenType,
    ResourceClass,
    ResourceVersion,
    ReviewRecord,
    SharingType,
)
from dgov.kernel.models import Organization
from dgov.kernel.services import audit, events
from dgov.kernel.services.calendar import add_working_days
from dgov.kernel.services.divisions import scope_prefix
from dgov.registry import services as registry_services
from dgov.registry.schema import SchemaError

__all__ = [
    "DATA_ADMIN_KIND",
    "REVIEW_DAYS",
    "Conflict",
    "InvalidTransition",
    "allocate_code",
    "can_edit",
    "can_view",
    "conflicts_for",
    "create_class",
    "create_resource",
    "data_type_for",
    "department_class",
    "department_of",
    "drafts_of",
    "ensure_standard_classes",
    "find_resource",
    "is_data_admin",
    "may_review_any",
    "publish",
    "retire",
    "review",
    "review_inbox",
    "set_quality_score",
    "snapshot",
    "submit",
    "update_resource",
    "visible_resources",
    "withdraw",
]

DATA_ADMIN_KIND = "DSJ"  # 大数据局: the data administrators who review the catalogue
REVIEW_DAYS = 5  # working days a data administrator has to review a submission
SNAPSHOT_FORMAT = 1
CODE_RE = re.compile(r"^\d{9}/\d{6}$")
ITEM_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_BRACKETED = re.compile(r"[（(【\[].*?[）)】\]]")
_NOT_WORD = re.compile(r"[\W_]+")

Status = InformationResource.Status
EDITABLE = (Status.DRAFT, Status.REJECTED, Status.PUBLISHED)
# How open a sharing type is: an item may not be more open than its resource.
_OPENNESS = {SharingType.UNCONDITIONAL: 2, SharingType.CONDITIONAL: 1, SharingType.NONE: 0}
# Registry field types → 编制指南 data types and default lengths.
_TYPE_MAP = {
    "string": ("C", None),
    "text": ("M", None),
    "integer": ("I", None),
    "decimal": ("N", None),
    "boolean": ("L", 1),
    "date": ("D", 10),
    "datetime": ("T", 32),
    "enum": ("C", None),
    "resident_id": ("C", 18),
    "uscc": ("C", 18),
    "division_code": ("C", 6),
    "phone": ("C", 11),
    "email": ("C", 254),
    "geojson": ("M", None),
    "reference": ("C", 36),
    "json": ("M", None),
}

# The editable metadata of an entry (besides classification, items and related entries).
RESOURCE_FIELDS = (
    "name",
    "summary",
    "keywords",
    "format",
    "format_detail",
    "sharing_type",
    "sharing_conditions",
    "sharing_mode",
    "open_type",
    "open_conditions",
    "update_cycle",
    "contact",
)
ITEM_FIELDS = (
    "code",
    "name",
    "data_type",
    "length",
    "description",
    "data_element",
    "registry",
    "registry_field",
    "sharing_type",
    "is_own",
)


class InvalidTransition(ValidationError):
    """The entry is not in a state that allows this step (the API and pages answer 409 / a message)."""


# --- Actors and permissions -------------------------------------------------------------------------------


def department_of(actor) -> Organization | None:
    """The department an actor works for (an official's department, an API client's organization)."""
    return registry_services.department_of(actor)


def _is_platform_admin(actor) -> bool:
    """Superusers and administrator accounts (they read everything but decide nothing here)."""
    return registry_services.is_admin(actor)


def _covers(department: Organization, division_code: str) -> bool:
    """Whether a department's division contains ``division_code`` (a provincial one covers its province)."""
    return division_code.startswith(scope_prefix(department.division.code))


def is_data_admin(actor, provider: Organization | None = None) -> bool:
    """Whether the actor is a data administrator (DSJ official), covering ``provider`` when given."""
    department = department_of(actor)
    if department is None or department.kind != DATA_ADMIN_KIND or not department.is_active:
        return False
    if isinstance(actor, Organization) or not getattr(actor, "is_authenticated", False):
        return False  # decisions are made by people, not by departments or clients
    if provider is None:
        return True
    return _covers(department, provider.division.code)


def may_review_any(user) -> bool:
    """Menu permission of the review inbox: data administrators."""
    return is_data_admin(user)


def _is_provider_official(actor, resource: InformationResource) -> bool:
    """Whether the actor is an official (or the CLI acting for) the entry's provider department."""
    department = department_of(actor)
    return department is not None and department.pk == resource.provider_id


def can_view(actor, resource: InformationResource) -> bool:
    """Whether the actor may see the working copy (drafts, reviews in progress) of an entry."""
    if _is_platform_admin(actor) or _is_provider_official(actor, resource):
        return True
    return is_data_admin(actor, resource.provider)


def can_read_published(actor) -> bool:
    """Whether the actor may read published entries: officials, administrators and API clients."""
    if actor is None or isinstance(actor, str):
        return actor is not None
    if hasattr(actor, "client_id"):
        return True
    return getattr(actor, "is_authenticated", False) and getattr(actor, "kind", "") in ("official", "admin")


def can_edit(actor, resource: InformationResource) -> bool:
    """Whether the actor may edit the entry now (a provider official, the entry in an editable state)."""
    return resource.status in EDITABLE and _is_provider_official(actor, resource)


def _actor_label(actor) -> str:
    """A short text naming the actor (user name, client id or the system label)."""
    return registry_services._actor_label(actor)


def _audit_actor(actor):
    """The actor as the audit service takes it (a User, a ``kind:label`` string or None)."""
    if actor is None or isinstance(actor, str) or hasattr(actor, "get_username"):
        return actor
    return _actor_label(actor)


def _deny(action: str, *, actor, target, message: str) -> PermissionDenied:
    """Audit a refused step in its own transaction and return the PermissionDenied to raise."""
    with transaction.atomic():
        audit.record(
            f"catalog.resource.{action}",
            actor=_audit_actor(actor),
            target=target,
            outcome="denied",
            detail={"reason": message[:300]},
        )
    return PermissionDenied(message)


# --- Classification ---------------------------------------------------------------------------------------

STANDARD_CLASSES: tuple[tuple[str, str, str], ...] = (
    # (code, name, description) — 类 and 项 of the 编制指南; 目 follow where the shipped libraries need them.
    ("1", "基础信息资源", "人口、法人单位、自然资源和空间地理、社会信用、电子证照、宏观经济等基础信息"),
    ("101", "人口基础信息", ""),
    ("101001", "人口基本信息", ""),
    ("101002", "户籍信息", ""),
    ("101003", "人口出生死亡与婚姻信息", ""),
    ("102", "法人单位基础信息", ""),
    ("102001", "市场主体登记信息", ""),
    ("102002", "机关、事业单位和社会组织信息", ""),
    ("103", "自然资源和空间地理基础信息", ""),
    ("103001", "行政区划与地名地址", ""),
    ("103002", "自然资源信息", ""),
    ("104", "社会信用基础信息", ""),
    ("104001", "行政许可与行政处罚信息", ""),
    ("104002", "信用评价与红黑名单", ""),
    ("105", "电子证照基础信息", ""),
    ("106", "宏观经济基础信息", ""),
    ("2", "主题信息资源", "围绕经济社会发展的同一主题，由多部门共建的信息资源"),
    ("201", "社会保障", ""),
    ("202", "健康保障", ""),
    ("203", "应急管理", ""),
    ("204", "生态环保", ""),
    ("205", "城乡建设", ""),
    ("206", "公共服务", ""),
    ("207", "市场监管", ""),
    ("208", "交通运输", ""),
    ("3", "部门信息资源", "各部门履行职责过程中产生和掌握的信息资源，按部门分项"),
)
_CATEGORY_BY_CLASS = {
    "1": ResourceClass.Category.BASE,
    "2": ResourceClass.Category.THEME,
    "3": ResourceClass.Category.DEPARTMENT,
}
_LEVEL_BY_LENGTH = {1: 1, 3: 2, 6: 3, 9: 4}


def _parent_code(code: str) -> str:
    """The code of the parent node (类 of a 项, 项 of a 目 …)."""
    return {3: code[:1], 6: code[:3], 9: code[:6]}.get(len(code), "")


@transaction.atomic
def create_class(code: str, name: str, *, actor, description: str = "", organization=None) -> ResourceClass:
    """Add a classification node; its level and category follow from the code (1/3/6/9 digits)."""
    code = (code or "").strip()
    if not code.isdigit() or len(code) not in _LEVEL_BY_LENGTH or code[0] not in _CATEGORY_BY_CLASS:
        raise ValidationError(
            {"code": _("分类代码须为 1、3、6 或 9 位数字，首位为 1（基础）、2（主题）或 3（部门）")}, code="class_code"
        )
    if ResourceClass.objects.filter(code=code).exists():
        raise ValidationError({"code": _("分类代码 %(code)s 已存在") % {"code": code}}, code="class_code_taken")
    parent = None
    if len(code) > 1:
        parent = ResourceClass.objects.filter(code=_parent_code(code)).first()
        if parent is None:
            raise ValidationError(
                {"code": _("上级分类 %(code)s 不存在") % {"code": _parent_code(code)}}, code="class_parent"
            )
    if not (name or "").strip():
        raise ValidationError({"name": _("分类名称不能为空")}, code="class_name")
    node = ResourceClass.objects.create(
        code=code,
        name=name.strip(),
        level=_LEVEL_BY_LENGTH[len(code)],
        category=_CATEGORY_BY_CLASS[code[0]],
        parent=parent,
        organization=organization,
        description=description,
    )
    audit.record("catalog.class.create", actor=_audit_actor(actor), target=node, detail={"code": code})
    return node


def ensure_standard_classes(*, actor) -> int:
    """Create the missing nodes of the standard classification (idempotent); returns how many were made."""
    existing = set(ResourceClass.objects.values_list("code", flat=True))
    made = 0
    for code, name, description in STANDARD_CLASSES:
        if code not in existing:
            create_class(code, name, actor=actor, description=description)
            made += 1
    return made


@transaction.atomic
def department_class(department: Organization, *, actor) -> ResourceClass:
    """The 项 of the department class (3xx) for a department, created (next free number) when missing."""
    node = ResourceClass.objects.filter(level=ResourceClass.Level.ITEM, organization=department).first()
    if node is not None:
        return node
    if not ResourceClass.objects.filter(code="3").exists():
        create_class("3", "部门信息资源", actor=actor)
    root = ResourceClass.objects.select_for_update().get(code="3")
    taken = set(ResourceClass.objects.filter(parent=root).values_list("code", flat=True))
    for number in range(1, 100):
        code = f"3{number:02d}"
        if code not in taken:
            return create_class(code, department.name, actor=actor, organization=department)
    raise ValidationError(_("部门信息资源类的“项”已用完（最多 99 个）"), code="class_full")


def _class_path(node: ResourceClass) -> list[ResourceClass]:
    """The nodes from the 类 down to ``node``."""
    path = [node]
    while path[0].parent_id is not None:
        path.insert(0, path[0].parent)
    return path


def _class_item(node: ResourceClass) -> ResourceClass:
    """The 项 at or above ``node`` (the node itself for a 类)."""
    path = _class_path(node)
    return path[1] if len(path) > 1 else path[0]


# --- Codes ------------------------------------------------------------------------------------------------


def allocate_code(classification: ResourceClass) -> str:
    """The next resource code under a classification: ``<code padded to 9 digits>/<6-digit sequence>``.

    Runs in the caller's transaction, with the classification row locked so two registrations
    never draw the same number.
    """
    node = ResourceClass.objects.select_for_update().get(pk=classification.pk)
    prefix = node.code.ljust(9, "0")
    sequence = node.next_sequence
    while True:
        code = f"{prefix}/{sequence:06d}"
        sequence += 1
        if not InformationResource.objects.filter(code=code).exists():
            break
    if sequence > 1_000_000:
        raise ValidationError(_("该分类下的顺序码已用完"), code="code_exhausted")
    ResourceClass.objects.filter(pk=node.pk).update(next_sequence=sequence)
    return code


# --- Validation -------------------------------------------------------------------------------------------


def data_type_for(registry_type: str) -> tuple[str, int | None]:
    """The 编制指南 data type and default length of a registry field type."""
    return _TYPE_MAP.get(registry_type, ("C", None))


def _norm_name(name: str) -> str:
    """An item name for comparison: NFKC, lower case, no bracketed notes, spaces or punctuation."""
    text = unicodedata.normalize("NFKC", name or "").lower()
    return _NOT_WORD.sub("", _BRACKETED.sub("", text))


def _choice(value, choices, label: str, errors: dict, key: str, *, required: bool = True) -> str:
    """A valid choice value (or ""), recording an error under ``key`` otherwise."""
    value = (value or "").strip() if isinstance(value, str) else value
    if not value:
        if required:
            errors.setdefault(key, []).append(_("%(label)s：必填") % {"label": label})
        return ""
    if value not in dict(choices):
        errors.setdefault(key, []).append(_("%(label)s：无效的取值 %(value)s") % {"label": label, "value": value})
        return ""
    return value


def _clean_resource(data: dict, errors: dict) -> dict:
    """Checked and trimmed metadata values (errors collected per field)."""
    R = InformationResource
    out = {name: (data.get(name) or "") for name in RESOURCE_FIELDS}
    for name in RESOURCE_FIELDS:
        if isinstance(out[name], str):
            out[name] = out[name].strip()
    if not out["name"]:
        errors.setdefault("name", []).append(_("信息资源名称：必填"))
    elif len(out["name"]) > 200:
        errors.setdefault("name", []).append(_("信息资源名称：不能超过 200 个字符"))
    if not out["summary"]:
        errors.setdefault("summary", []).append(_("信息资源摘要：必填"))
    if len(out["keywords"]) > 200:
        errors.setdefault("keywords", []).append(_("关键字：不能超过 200 个字符"))
    if len(out["format_detail"]) > 100:
        errors.setdefault("format_detail", []).append(_("格式说明：不能超过 100 个字符"))
    if len(out["contact"]) > 200:
        errors.setdefault("contact", []).append(_("联系方式：不能超过 200 个字符"))
    out["format"] = _choice(out["format"], R.Format.choices, _("信息资源格式"), errors, "format")
    out["sharing_type"] = _choice(out["sharing_type"], SharingType.choices, _("共享类型"), errors, "sharing_type")
    out["open_type"] = _choice(out["open_type"] or OpenType.NONE, OpenType.choices, _("开放属性"), errors, "open_type")
    out["update_cycle"] = _choice(out["update_cycle"], R.UpdateCycle.choices, _("更新周期"), errors, "update_cycle")
    sharing = out["sharing_type"]
    out["sharing_mode"] = _choice(
        out["sharing_mode"],
        R.SharingMode.choices,
        _("共享方式"),
        errors,
        "sharing_mode",
        required=sharing in (SharingType.UNCONDITIONAL, SharingType.CONDITIONAL),
    )
    if sharing == SharingType.NONE:
        out["sharing_mode"] = ""
    if sharing == SharingType.CONDITIONAL and not out["sharing_conditions"]:
        errors.setdefault("sharing_conditions", []).append(_("有条件共享须写明共享条件"))
    if sharing == SharingType.NONE and not out["sharing_conditions"]:
        errors.setdefault("sharing_conditions", []).append(_("不予共享须写明法律、行政法规或政策依据"))
    if sharing == SharingType.NONE and out["open_type"] not in ("", OpenType.NONE):
        errors.setdefault("open_type", []).append(_("不予共享的信息资源不能向社会开放"))
    if out["open_type"] == OpenType.CONDITIONAL and not out["open_conditions"]:
        errors.setdefault("open_conditions", []).append(_("有条件开放须写明开放条件"))
    return out


def _registry_fields(code: str, cache: dict):
    """(registry, {field name: FieldDef}) of a registry code, cached for one validation; None if unknown."""
    if code not in cache:
        try:
            registry = registry_services.get_registry(code)
            fields = {f.name: f for f in registry_services.registry_fields(registry)}
        except (registry_services.RegistryNotFound, SchemaError):
            cache[code] = None
        else:
            cache[code] = (registry, fields)
    return cache[code]


def _clean_items(items: list[dict], resource_sharing: str, errors: dict) -> list[dict]:
    """Checked item rows (``registry`` resolved to a Registry); errors keyed ``items.<n>.<field>``."""
    cleaned = []
    seen_codes: dict[str, int] = {}
    registries: dict = {}
    if not items:
        errors.setdefault("items", []).append(_("至少需要一个信息项"))
    for n, raw in enumerate(items, start=1):

        def fail(name: str, message: str, n=n) -> None:
            errors.setdefault(f"items.{n}.{name}", []).append(_("第 %(n)s 个信息项：") % {"n": n} + message)

        row = {name: raw.get(name) for name in ITEM_FIELDS}
        for name in ("code", "name", "description", "data_element", "registry_field", "data_type", "sharing_type"):
            row[name] = str(row[name] or "").strip()
        registry_code = raw.get("registry")
        registry_code = getattr(registry_code, "code", registry_code)
        registry_code = str(registry_code or "").strip()
        row["is_own"] = bool(raw.get("is_own", True))
        field_def = None
        row["registry"] = None
        if registry_code or row["registry_field"]:
            found = _registry_fields(registry_code, registries) if registry_code else None
            if found is None:
                fail("registry", _("信息库 %(code)s 不存在或尚未发布") % {"code": registry_code or "—"})
            else:
                row["registry"], fields = found
                field_def = fields.get(row["registry_field"])
                if field_def is None:
                    fail(
                        "registry_field",
                        _("信息库 %(registry)s 没有字段 %(field)s")
                        % {"registry": registry_code, "field": row["registry_field"] or "—"},
                    )
        if not row["code"] and field_def is not None:
            row["code"] = field_def.name
        if not row["name"] and field_def is not None:
            row["name"] = field_def.label
        if not row["code"]:
            fail("code", _("信息项代码必填"))
        elif not ITEM_CODE_RE.match(row["code"]):
            fail("code", _("信息项代码须以小写字母开头，只含小写字母、数字和下划线，最长 64 位"))
        elif row["code"] in seen_codes:
            fail(
                "code",
                _("信息项代码 %(code)s 与第 %(first)s 个重复")
                % {"code": row["code"], "first": seen_codes[row["code"]]},
            )
        else:
            seen_codes[row["code"]] = n
        if not row["name"]:
            fail("name", _("信息项名称必填"))
        elif len(row["name"]) > 100:
            fail("name", _("信息项名称不能超过 100 个字符"))
        if not row["data_type"] and field_def is not None:
            row["data_type"] = data_type_for(field_def.type)[0]
        if row["data_type"] not in dict(InformationItem.DataType.choices):
            fail("data_type", _("数据类型无效：%(value)s") % {"value": row["data_type"] or "—"})
        length = raw.get("length")
        if length in (None, ""):
            default = None
            if field_def is not None:
                default = field_def.max_length or data_type_for(field_def.type)[1]
            row["length"] = default
        else:
            try:
                row["length"] = int(length)
                if row["length"] <= 0 or row["length"] > 1_000_000:
                    raise ValueError
            except (TypeError, ValueError):
                fail("length", _("数据长度须为正整数"))
                row["length"] = None
        if len(row["description"]) > 300:
            fail("description", _("说明不能超过 300 个字符"))
        if len(row["data_element"]) > 64:
            fail("data_element", _("数据元标识符不能超过 64 个字符"))
        row["data_element"] = row["data_element"].upper()
        row["sharing_type"] = row["sharing_type"] or resource_sharing
        if row["sharing_type"] not in _OPENNESS:
            fail("sharing_type", _("共享类型无效：%(value)s") % {"value": row["sharing_type"] or "—"})
        elif resource_sharing in _OPENNESS and _OPENNESS[row["sharing_type"]] > _OPENNESS[resource_sharing]:
            fail("sharing_type", _("信息项的共享类型不能比信息资源更宽松"))
        elif field_def is not None and field_def.is_personal and row["sharing_type"] == SharingType.UNCONDITIONAL:
            fail("sharing_type", _("个人敏感字段“%(label)s”不能无条件共享") % {"label": field_def.label})
        cleaned.append(row)
    return cleaned


def _resolve_related(codes: Iterable[str], resource: InformationResource | None, errors: dict):
    """The entries named by code (related resources), or errors for unknown codes and self-references."""
    codes = [c.strip() for c in codes if c and c.strip()]
    found = {r.code: r for r in InformationResource.objects.filter(code__in=codes)}
    out = []
    for code in dict.fromkeys(codes):
        other = found.get(code)
        if other is None:
            errors.setdefault("related", []).append(_("关联资源 %(code)s 不存在") % {"code": code})
        elif resource is not None and other.pk == resource.pk:
            errors.setdefault("related", []).append(_("不能关联信息资源自身"))
        else:
            out.append(other)
    return out


def _check_classification(classification: ResourceClass | None, provider: Organization, errors: dict) -> None:
    """A classification usable for this provider: active, at 项 level or below; a department 项 of its own."""
    if classification is None:
        errors.setdefault("classification", []).append(_("资源分类：必填"))
        return
    if not classification.is_active or classification.level < ResourceClass.Level.ITEM:
        errors.setdefault("classification", []).append(_("资源分类须为启用的“项”“目”或“细目”"))
        return
    if classification.category == ResourceClass.Category.DEPARTMENT:
        item = _class_item(classification)
        if item.organization_id is not None and item.organization_id != provider.pk:
            errors.setdefault("classification", []).append(_("部门信息资源须登记在本部门的分类下"))


def _keys(item: InformationItem) -> None:
    """Derive the 一数一源 comparison keys of an item."""
    item.source_key = f"{item.registry.code}#{item.registry_field}" if item.registry_id and item.registry_field else ""
    norm = _norm_name(item.name)
    item.element_key = f"{norm}|{item.data_element}"[:170] if item.data_element and norm else ""


def _write_items(resource: InformationResource, rows: list[dict]) -> None:
    """Replace the entry's items by the cleaned rows."""
    resource.items.all().delete()
    made = []
    for position, row in enumerate(rows, start=1):
        item = InformationItem(resource=resource, position=position, **row)
        _keys(item)
        made.append(item)
    InformationItem.objects.bulk_create(made)


# --- Creating and editing ---------------------------------------------------------------------------------


def _provider_for(actor, provider: Organization | None) -> Organization:
    """The department registering: the actor's own (officials); the CLI system actor names one."""
    department = department_of(actor)
    if department is not None:
        if provider is not None and provider.pk != department.pk:
            raise PermissionDenied(_("只能为本部门登记信息资源"))
        return department
    if isinstance(actor, str) and actor.startswith("system:") and provider is not None:
        return provider
    raise PermissionDenied(_("登记信息资源须以部门工作人员身份进行"))


def create_resource(
    *,
    actor,
    classification: ResourceClass | None,
    data: dict,
    items: list[dict],
    related: Iterable[str] = (),
    provider: Organization | None = None,
    maintainer=None,
) -> InformationResource:
    """Register a new entry as a draft of the actor's department (or of ``provider`` for the CLI system actor)."""
    try:
        department = _provider_for(actor, provider)
    except PermissionDenied as exc:
        raise _deny("create", actor=actor, target=provider, message=str(exc)) from None
    if not department.is_active:
        raise ValidationError(_("部门已撤销，不能登记信息资源"), code="inactive_department")
    errors: dict[str, list[str]] = {}
    values = _clean_resource(data, errors)
    _check_classification(classification, department, errors)
    rows = _clean_items(items, values["sharing_type"], errors)
    related_entries = _resolve_related(related, None, errors)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        resource = InformationResource.objects.create(
            code=allocate_code(classification),
            classification=classification,
            provider=department,
            provider_code=department.uscc,
            maintainer=maintainer if maintainer is not None else (actor if hasattr(actor, "get_username") else None),
            created_by=_actor_label(actor),
            **values,
        )
        _write_items(resource, rows)
        resource.related.set(related_entries)
        audit.record(
            "catalog.resource.create",
            actor=_audit_actor(actor),
            target=resource,
            detail={"code": resource.code, "provider": department.code, "items": len(rows)},
        )
    return resource


def update_resource(
    resource: InformationResource,
    *,
    actor,
    classification: ResourceClass | None,
    data: dict,
    items: list[dict],
    related: Iterable[str] = (),
    maintainer=None,
) -> InformationResource:
    """Save the provider's edit of an entry; a published entry becomes a draft revision (its version stays live)."""
    if not _is_provider_official(actor, resource):
        raise _deny("update", actor=actor, target=resource, message=_("只有信息资源提供部门的工作人员可以修改"))
    errors: dict[str, list[str]] = {}
    values = _clean_resource(data, errors)
    _check_classification(classification, resource.provider, errors)
    if (
        classification is not None
        and resource.published_version_id is not None
        and classification.pk != resource.classification_id
    ):
        errors.setdefault("classification", []).append(
            _("已发布的信息资源不能改变分类（代码已固定），请停用后重新登记")
        )
    rows = _clean_items(items, values["sharing_type"], errors)
    related_entries = _resolve_related(related, resource, errors)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = InformationResource.objects.select_for_update().get(pk=resource.pk)
        if locked.status not in EDITABLE:
            raise InvalidTransition(
                _("当前状态（%(status)s）不能修改") % {"status": locked.get_status_display()}, code="not_editable"
            )
        before = locked.status
        for name, value in values.items():
            setattr(locked, name, value)
        if classification.pk != locked.classification_id:
            locked.classification = classification
            locked.code = allocate_code(classification)
        if maintainer is not None:
            locked.maintainer = maintainer
        locked.status = Status.DRAFT
        locked.save()
        _write_items(locked, rows)
        locked.related.set(related_entries)
        audit.record(
            "catalog.resource.update",
            actor=_audit_actor(actor),
            target=locked,
            detail={"code": locked.code, "from": before, "items": len(rows)},
        )
    resource.refresh_from_db()
    return resource


# --- One data, one source ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    """A 一数一源 finding on one item: another department's claim on the same data, or a registry authority mismatch."""

    kind: str  # "registry_field" | "data_element" | "authority"
    item_code: str
    item_name: str
    other_code: str = ""
    other_name: str = ""
    other_provider: str = ""
    detail: str = ""

    def as_dict(self) -> dict:
        """As JSON-able data (stored on review records, returned by the API)."""
        return asdict(self)

    @property
    def message(self) -> str:
        """A Chinese sentence describing the conflict."""
        if self.kind == "authority":
            return _("信息项“%(item)s”关联的信息库字段的权威来源为 %(detail)s，不是本部门") % {
                "item": self.item_name,
                "detail": self.detail,
            }
        basis = _("同一信息库字段 %(key)s") if self.kind == "registry_field" else _("同一数据元 %(key)s")
        return _("信息项“%(item)s”与%(provider)s的“%(other)s”（%(code)s）声明为各自权威来源：%(basis)s") % {
            "item": self.item_name,
            "provider": self.other_provider,
            "other": self.other_name,
            "code": self.other_code,
            "basis": basis % {"key": self.detail},
        }


def _authority_matches(provider: Organization, tokens: str) -> bool:
    """Whether a registry authority (``"GA|WJ"``) names the provider by kind or code."""
    names = {t.strip() for t in tokens.split("|") if t.strip()}
    return bool(names & {provider.kind, provider.code})


def conflicts_for(resource: InformationResource) -> list[Conflict]:
    """The live 一数一源 conflicts of an entry's claimed items (rule in the module docstring)."""
    claims = [i for i in resource.items.select_related("registry") if i.is_own]
    if not claims:
        return []
    source_keys = {i.source_key for i in claims if i.source_key}
    element_keys = {i.element_key for i in claims if i.element_key}
    found: list[Conflict] = []
    if source_keys or element_keys:
        live = Q(resource__published_version__isnull=False) | Q(resource__status=Status.SUBMITTED)
        others = (
            InformationItem.objects.filter(is_own=True)
            .filter(Q(source_key__in=source_keys) | Q(element_key__in=element_keys))
            .filter(live)
            .exclude(resource__status=Status.RETIRED)
            .exclude(resource__provider_id=resource.provider_id)
            .select_related("resource__provider")
            .order_by("resource__code", "position")
        )
        by_source: dict[str, list[InformationItem]] = {}
        by_element: dict[str, list[InformationItem]] = {}
        for other in others:
            if other.source_key in source_keys:
                by_source.setdefault(other.source_key, []).append(other)
            if other.element_key in element_keys:
                by_element.setdefault(other.element_key, []).append(other)
        for item in claims:
            seen = set()
            for kind, key, table in (
                ("registry_field", item.source_key, by_source),
                ("data_element", item.element_key, by_element),
            ):
                for other in table.get(key, []) if key else []:
                    if other.pk in seen:
                        continue
                    seen.add(other.pk)
                    found.append(
                        Conflict(
                            kind=kind,
                            item_code=item.code,
                            item_name=item.name,
                            other_code=other.resource.code,
                            other_name=other.resource.name,
                            other_provider=other.resource.provider.name,
                            detail=key if kind == "registry_field" else item.data_element,
                        )
                    )
    provider = resource.provider
    for item in claims:
        if not item.registry_id or not item.registry_field:
            continue
        try:
            fields = {f.name: f for f in registry_services.registry_fields(item.registry)}
        except SchemaError:
            continue
        field_def = fields.get(item.registry_field)
        if field_def is None:
            continue
        tokens, _condition = registry_services.field_authority(item.registry, field_def)
        if not _authority_matches(provider, tokens):
            found.append(Conflict(kind="authority", item_code=item.code, item_name=item.name, detail=tokens))
    return found


# --- Snapshots --------------------------------------------------------------------------------------------


def snapshot(resource: InformationResource, *, version: int, published_at: datetime.datetime) -> dict:
    """The whole entry as JSON-able data: what a version stores, the API returns and DCAT maps."""
    path = _class_path(resource.classification)
    maintainer = resource.maintainer
    return {
        "snapshot_format": SNAPSHOT_FORMAT,
        "code": resource.code,
        "name": resource.name,
        "classification": {
            "code": resource.classification.code,
            "name": resource.classification.name,
            "category": resource.classification.category,
            "path": [{"code": n.code, "name": n.name, "level": n.level} for n in path],
        },
        "provider": {
            "id": resource.provider_id,
            "code": resource.provider.code,
            "name": resource.provider.name,
            "uscc": resource.provider.uscc,
        },
        "provider_code": resource.provider_code,
        "summary": resource.summary,
        "keywords": resource.keywords,
        "format": resource.format,
        "format_detail": resource.format_detail,
        "sharing_type": resource.sharing_type,
        "sharing_conditions": resource.sharing_conditions,
        "sharing_mode": resource.sharing_mode,
        "open_type": resource.open_type,
        "open_conditions": resource.open_conditions,
        "update_cycle": resource.update_cycle,
        "published_on": (resource.published_on or published_at.date()).isoformat(),
        "published_at": published_at.isoformat(),
        "version": version,
        "related": sorted(resource.related.values_list("code", flat=True)),
        "maintainer": (getattr(maintainer, "display_name", "") or str(maintainer)) if maintainer else "",
        "contact": resource.contact,
        "items": [
            {
                "code": item.code,
                "name": item.name,
                "data_type": item.data_type,
                "length": item.length,
                "description": item.description,
                "data_element": item.data_element,
                "registry": item.registry.code if item.registry_id else "",
                "registry_field": item.registry_field,
                "sharing_type": item.sharing_type,
                "is_own": item.is_own,
            }
            for item in resource.items.select_related("registry")
        ],
    }


# --- Workflow ---------------------------------------------------------------------------------------------


def _review_record(resource, action: str, *, actor, note: str = "", conflicts=(), version=None, due_on=None):
    """Append a review record (inside the caller's transaction)."""
    return ReviewRecord.objects.create(
        resource=resource,
        action=action,
        actor=_actor_label(actor),
        actor_org=department_of(actor),
        note=note,
        conflicts=[c.as_dict() for c in conflicts],
        version=version,
        due_on=due_on,
        at=timezone.now(),
    )


def _announce(event_type: str, resource: InformationResource) -> None:
    """Put a catalogue event into the outbox (codes and status only)."""
    events.publish(
        event_type,
        {"code": resource.code, "status": resource.status, "version": resource.version},
        aggregate="catalog",
        aggregate_id=resource.code,
    )


def _locked(resource: InformationResource) -> InformationResource:
    """The entry re-read with a row lock (inside a transaction)."""
    return InformationResource.objects.select_for_update().select_related("provider__division").get(pk=resource.pk)


def submit(resource: InformationResource, *, actor, note: str = "") -> ReviewRecord:
    """Send a draft (or rejected) entry to the data administrators; the review is due in REVIEW_DAYS working days."""
    if not _is_provider_official(actor, resource):
        raise _deny("submit", actor=actor, target=resource, message=_("只有信息资源提供部门的工作人员可以提交审核"))
    with transaction.atomic():
        locked = _locked(resource)
        if locked.status not in (Status.DRAFT, Status.REJECTED):
            raise InvalidTransition(
                _("当前状态（%(status)s）不能提交审核") % {"status": locked.get_status_display()},
                code="not_submittable",
            )
        if not locked.items.exists():
            raise ValidationError({"items": [_("至少需要一个信息项")]})
        conflicts = conflicts_for(locked)
        locked.status = Status.SUBMITTED
        locked.submitted_at = timezone.now()
        locked.save(update_fields=["status", "submitted_at", "updated_at"])
        due = add_working_days(timezone.localdate(), REVIEW_DAYS)
        record = _review_record(
            locked, ReviewRecord.Action.SUBMIT, actor=actor, note=note, conflicts=conflicts, due_on=due
        )
        audit.record(
            "catalog.resource.submit",
            actor=_audit_actor(actor),
            target=locked,
            detail={"code": locked.code, "conflicts": len(conflicts), "due_on": due.isoformat()},
        )
        _announce("catalog.resource.submitted", locked)
    resource.refresh_from_db()
    return record


def withdraw(resource: InformationResource, *, actor) -> ReviewRecord:
    """Take a submitted entry back to draft before it is reviewed."""
    if not _is_provider_official(actor, resource):
        raise _deny("withdraw", actor=actor, target=resource, message=_("只有信息资源提供部门的工作人员可以撤回"))
    with transaction.atomic():
        locked = _locked(resource)
        if locked.status != Status.SUBMITTED:
            raise InvalidTransition(_("只有待审核的信息资源可以撤回"), code="not_submitted")
        locked.status = Status.DRAFT
        locked.save(update_fields=["status", "updated_at"])
        record = _review_record(locked, ReviewRecord.Action.WITHDRAW, actor=actor)
        audit.record(
            "catalog.resource.withdraw", actor=_audit_actor(actor), target=locked, detail={"code": locked.code}
        )
    resource.refresh_from_db()
    return record


def _last_submitter(resource: InformationResource) -> str:
    """Who submitted the pending review (the user label on the last submit record)."""
    last = resource.reviews.filter(action=ReviewRecord.Action.SUBMIT).order_by("-at", "-id").first()
    return last.actor if last else ""


def _check_reviewer(action: str, resource: InformationResource, actor) -> None:
    """Raise (audited) unless the actor is a covering data administrator other than the submitter."""
    if not is_data_admin(actor, resource.provider):
        raise _deny(action, actor=actor, target=resource, message=_("只有负责该部门的数据管理员（大数据局）可以审核"))
    if _last_submitter(resource) == _actor_label(actor):
        raise _deny(action, actor=actor, target=resource, message=_("不能审核本人提交的信息资源"))


def _publish(locked: InformationResource, *, actor, note: str) -> ResourceVersion:
    """Make the working copy the next published version and re-index it (inside the caller's transaction)."""
    now = timezone.now()
    number = locked.version + 1
    if locked.published_on is None:
        locked.published_on = timezone.localdate(now)
    version = ResourceVersion.objects.create(
        resource=locked,
        number=number,
        snapshot=snapshot(locked, version=number, published_at=now),
        note=note,
        published_by=_actor_label(actor),
        published_at=now,
    )
    locked.version = number
    locked.published_version = version
    locked.status = Status.PUBLISHED
    locked.save(update_fields=["version", "published_version", "status", "published_on", "updated_at"])
    search.index_resource(locked)
    _announce("catalog.resource.published", locked)
    return version


def review(resource: InformationResource, *, actor, approve: bool, reason: str = "") -> ReviewRecord:
    """A data administrator's decision on a submitted entry: approve (publish a new version) or reject (reason)."""
    action = "approve" if approve else "reject"
    _check_reviewer(action, resource, actor)
    reason = (reason or "").strip()
    if not approve and not reason:
        raise ValidationError({"reason": [_("退回须写明原因")]}, code="reason_required")
    with transaction.atomic():
        locked = _locked(resource)
        if locked.status != Status.SUBMITTED:
            raise InvalidTransition(_("只有待审核的信息资源可以审核"), code="not_submitted")
        conflicts = conflicts_for(locked)
        if approve and conflicts and not reason:
            raise ValidationError(
                {"reason": [_("该信息资源存在一数一源冲突，审核通过须填写审核意见说明处理结果")]}, code="conflict_note"
            )
        if approve:
            version = _publish(locked, actor=actor, note=reason)
            record = _review_record(
                locked,
                ReviewRecord.Action.APPROVE,
                actor=actor,
                note=reason,
                conflicts=conflicts,
                version=version.number,
            )
        else:
            locked.status = Status.REJECTED
            locked.save(update_fields=["status", "updated_at"])
            record = _review_record(locked, ReviewRecord.Action.REJECT, actor=actor, note=reason, conflicts=conflicts)
        audit.record(
            f"catalog.resource.{action}",
            actor=_audit_actor(actor),
            target=locked,
            detail={
                "code": locked.code,
                "version": locked.version,
                "conflicts": len(conflicts),
                "reason": reason[:300],
            },
        )
    resource.refresh_from_db()
    return record


def publish(resource: InformationResource, *, actor, note: str = "") -> ReviewRecord:
    """Publish directly (data administrators, e.g. after a bulk import): a draft is submitted and approved at once.

    The same checks as :func:`review` apply, except that the submitter rule is not involved (the
    administrator both submits and approves, and both steps are recorded under their name).
    """
    if not is_data_admin(actor, resource.provider):
        raise _deny(
            "approve", actor=actor, target=resource, message=_("只有负责该部门的数据管理员（大数据局）可以发布")
        )
    with transaction.atomic():
        locked = _locked(resource)
        if locked.status not in (Status.DRAFT, Status.SUBMITTED, Status.REJECTED):
            raise InvalidTransition(
                _("当前状态（%(status)s）不能发布") % {"status": locked.get_status_display()}, code="not_publishable"
            )
        conflicts = conflicts_for(locked)
        if conflicts and not note.strip():
            raise ValidationError({"reason": [_("该信息资源存在一数一源冲突，发布须填写说明")]}, code="conflict_note")
        if locked.status != Status.SUBMITTED:
            _review_record(locked, ReviewRecord.Action.SUBMIT, actor=actor, note=note, conflicts=conflicts)
        version = _publish(locked, actor=actor, note=note)
        record = _review_record(
            locked, ReviewRecord.Action.APPROVE, actor=actor, note=note, conflicts=conflicts, version=version.number
        )
        audit.record(
            "catalog.resource.approve",
            actor=_audit_actor(actor),
            target=locked,
            detail={"code": locked.code, "version": version.number, "conflicts": len(conflicts), "direct": True},
        )
    resource.refresh_from_db()
    return record


def retire(resource: InformationResource, *, actor, reason: str) -> ReviewRecord:
    """Retire a published entry (provider officials or covering data administrators): it leaves search and DCAT."""
    if not (_is_provider_official(actor, resource) or is_data_admin(actor, resource.provider)):
        raise _deny("retire", actor=actor, target=resource, message=_("只有提供部门或数据管理员可以停用信息资源"))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("停用须写明原因")]}, code="reason_required")
    with transaction.atomic():
        locked = _locked(resource)
        if locked.published_version_id is None or locked.status == Status.RETIRED:
            raise InvalidTransition(_("只有已发布的信息资源可以停用"), code="not_published")
        locked.status = Status.RETIRED
        locked.retired_at = timezone.now()
        locked.save(update_fields=["status", "retired_at", "updated_at"])
        search.unindex_resource(locked)
        record = _review_record(locked, ReviewRecord.Action.RETIRE, actor=actor, note=reason)
        audit.record(
            "catalog.resource.retire",
            actor=_audit_actor(actor),
            target=locked,
            detail={"code": locked.code, "reason": reason[:300]},
        )
        _announce("catalog.resource.retired", locked)
    resource.refresh_from_db()
    return record


@transaction.atomic
def set_quality_score(resource: InformationResource, score, *, actor) -> InformationResource:
    """Record the data-quality score (0–100) of an entry; the slot the data-quality work fills."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(str(score)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise ValidationError({"quality_score": [_("质量评分须为 0–100 的数")]}) from None
    if not Decimal(0) <= value <= Decimal(100):
        raise ValidationError({"quality_score": [_("质量评分须为 0–100 的数")]})
    InformationResource.objects.filter(pk=resource.pk).update(quality_score=value, quality_checked_at=timezone.now())
    audit.record("catalog.resource.quality", actor=_audit_actor(actor), target=resource, detail={"score": str(value)})
    resource.refresh_from_db()
    return resource


# --- Queries ----------------------------------------------------------------------------------------------


def find_resource(code: str) -> InformationResource | None:
    """The entry with this code (provider, classification and published version loaded), or None."""
    return (
        InformationResource.objects.select_related(
            "provider__division", "classification", "published_version", "maintainer"
        )
        .filter(code=code)
        .first()
    )


def visible_resources() -> QuerySet[InformationResource]:
    """Entries with a live published version (published, or under revision), not retired."""
    return (
        InformationResource.objects.filter(published_version__isnull=False)
        .exclude(status=Status.RETIRED)
        .select_related("provider", "published_version")
    )


def drafts_of(department: Organization | None) -> QuerySet[InformationResource]:
    """A department's entries that are not (only) published: drafts, submissions, rejections."""
    if department is None:
        return InformationResource.objects.none()
    return (
        InformationResource.objects.filter(provider=department)
        .filter(status__in=(Status.DRAFT, Status.SUBMITTED, Status.REJECTED))
        .select_related("classification", "published_version")
        .order_by("-updated_at")
    )


def review_inbox(actor) -> list[InformationResource]:
    """Submitted entries the actor may review (covering data administrator), oldest submission first."""
    department = department_of(actor)
    if not is_data_admin(actor) or department is None:
        return []
    prefix = scope_prefix(department.division.code)
    return list(
        InformationResource.objects.filter(status=Status.SUBMITTED, provider__division__code__startswith=prefix)
        .select_related("provider", "classification")
        .order_by("submitted_at", "code")
    )
