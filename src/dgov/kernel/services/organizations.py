"""Government organizations (部门): creating and changing them, scoped queries, the demo set.

Rules an organization satisfies (checked by :func:`create_organization` and
:func:`update_organization`):

* its USCC passes :func:`dgov.kernel.validators.validate_uscc` and is unique, its code is unique;
* its division exists, is current, is not a placeholder and is at province, city or county level,
  and the organization's level equals the division's level (a 市级 bureau sits on a 地级 division);
* its parent, if any, is active, at the same or a higher level, sits on the same division or one
  above it, and is not the organization itself or one of its descendants.

Scope (:func:`organizations_in_scope`): a division sees the organizations of its own division and
every division below it, by code prefix — a provincial department sees the whole province, a city
department its city and that city's counties, a county department only its county. Siblings and
higher levels are never in scope. Officials' data-scoped queries use the scope of their department's
division.

The demo set (:func:`generate_demo_organizations`) is bulk-created and recorded in the audit log as
one summary record (province, seed, counts), not one per row: thousands of audit records for a
generated fixture would make the demo slow and bury real actions in the log.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from dgov.kernel.models import Division, Organization
from dgov.kernel.services import audit, events
from dgov.kernel.services.divisions import scope_prefix
from dgov.kernel.validators import make_uscc, validate_uscc

__all__ = [
    "BUREAU_KINDS",
    "DepartmentNode",
    "check_organization",
    "create_organization",
    "deactivate_organization",
    "department_tree",
    "find_department",
    "generate_demo_organizations",
    "organizations_in_scope",
    "reactivate_organization",
    "update_organization",
]

EDITABLE_FIELDS = (
    "name",
    "short_name",
    "code",
    "uscc",
    "level",
    "division",
    "parent",
    "kind",
    "is_vertical",
    "duties",
)


# --- Validation ---------------------------------------------------------------------------------


def _resolve_division(division: Division | str | None) -> Division | None:
    """A Division from an instance or a code."""
    if division is None or isinstance(division, Division):
        return division
    return Division.objects.filter(code=str(division).strip()).first()


def _descendant_ids(org: Organization) -> set[int]:
    """Primary keys of every organization below ``org`` (breadth-first, one query per level)."""
    found: set[int] = set()
    frontier = [org.pk]
    while frontier:
        frontier = list(Organization.objects.filter(parent_id__in=frontier).values_list("pk", flat=True))
        frontier = [pk for pk in frontier if pk not in found]
        found.update(frontier)
    return found


def check_organization(org: Organization) -> None:
    """Raise ValidationError (a dict field → messages) unless ``org`` satisfies the module's rules."""
    errors: dict[str, list[ValidationError]] = {}

    def fail(name: str, message: str, code: str) -> None:
        errors.setdefault(name, []).append(ValidationError(message, code=code))

    if not (org.name or "").strip():
        fail("name", _("部门名称：不能为空"), "organization_name")
    if not (org.code or "").strip():
        fail("code", _("部门编码：不能为空"), "organization_code")
    elif Organization.objects.filter(code=org.code).exclude(pk=org.pk).exists():
        fail("code", _("部门编码：%(code)s 已被使用") % {"code": org.code}, "organization_code_taken")
    try:
        org.uscc = validate_uscc(org.uscc)
    except ValidationError as exc:
        errors.setdefault("uscc", []).extend(exc.error_list)
    else:
        taken = Organization.objects.filter(uscc=org.uscc).exclude(pk=org.pk).first()
        if taken is not None:
            fail(
                "uscc",
                _("统一社会信用代码：%(uscc)s 已被“%(name)s”使用") % {"uscc": org.uscc, "name": taken.name},
                "uscc_taken",
            )
    division = org.division if org.division_id else None
    if division is None:
        fail("division", _("行政区划：不存在"), "organization_division")
    elif not division.is_current or division.placeholder or division.level > Division.Level.COUNTY:
        fail(
            "division",
            _("行政区划：%(name)s 不能设立部门（须为现行的省、市、县级区划）") % {"name": division},
            "organization_division",
        )
    elif org.level != division.level:
        fail(
            "level",
            _("层级：应与行政区划“%(division)s”的级别（%(level)s）一致")
            % {"division": division.full_name or division.name, "level": division.get_level_display()},
            "organization_level",
        )
    parent = org.parent if org.parent_id else None
    if parent is not None:
        if org.pk is not None and (parent.pk == org.pk or parent.pk in _descendant_ids(org)):
            fail("parent", _("上级部门：不能是本部门或其下级部门"), "organization_parent_cycle")
        elif not parent.is_active:
            fail(
                "parent",
                _("上级部门：“%(name)s”已停用") % {"name": parent.name},
                "organization_parent_inactive",
            )
        elif parent.level > org.level:
            fail("parent", _("上级部门：层级不能低于本部门"), "organization_parent_level")
        elif division is not None and not division.code.startswith(scope_prefix(parent.division.code)):
            fail(
                "parent",
                _("上级部门：“%(name)s”不在本部门所在区划或其上级区划") % {"name": parent.name},
                "organization_parent_division",
            )
    if errors:
        raise ValidationError(errors)


def _snapshot(org: Organization) -> dict:
    """The audited, JSON-friendly view of an organization's editable fields."""
    return {
        "name": org.name,
        "short_name": org.short_name,
        "code": org.code,
        "uscc": org.uscc,
        "level": org.level,
        "division": org.division.code if org.division_id else None,
        "parent": org.parent.code if org.parent_id else None,
        "kind": org.kind,
        "is_vertical": org.is_vertical,
        "is_active": org.is_active,
        "duties_length": len(org.duties or ""),
    }


def _announce(event_type: str, org: Organization) -> None:
    """Put an organization event into the outbox (same transaction as the change)."""
    events.publish(
        event_type,
        {
            "id": org.pk,
            "code": org.code,
            "name": org.name,
            "division": org.division.code,
            "is_active": org.is_active,
        },
        aggregate="kernel.organization",
        aggregate_id=str(org.pk),
    )


# --- Operations -------------------------------------------------------------------------------------


def create_organization(
    name: str,
    code: str,
    uscc: str,
    division: Division | str,
    *,
    actor,
    level: int | None = None,
    parent: Organization | None = None,
    short_name: str = "",
    kind: str = "",
    is_vertical: bool = False,
    duties: str = "",
) -> Organization:
    """Create a department after checking the rules of the module docstring; audited."""
    division_obj = _resolve_division(division)
    org = Organization(
        name=(name or "").strip(),
        short_name=(short_name or "").strip(),
        code=(code or "").strip(),
        uscc=uscc or "",
        level=level
        if level is not None
        else (division_obj.level if division_obj else Organization.Level.PROVINCE),
        division=division_obj,
        parent=parent,
        kind=(kind or "").strip(),
        is_vertical=is_vertical,
        duties=(duties or "").strip(),
    )
    with transaction.atomic():
        check_organization(org)
        org.save()
        audit.record("kernel.organization.create", actor=actor, target=org, detail=_snapshot(org))
        _announce("kernel.organization.created", org)
    return org


def update_organization(org: Organization, *, actor, **changes) -> Organization:
    """Change editable fields of a department (see ``EDITABLE_FIELDS``); audited with before/after."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable through update_organization: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        org = (
            Organization.objects.select_for_update(of=("self",))
            .select_related("division", "parent")
            .get(pk=org.pk)
        )
        before = _snapshot(org)
        for name, value in changes.items():
            if name == "division":
                value = _resolve_division(value)
            elif isinstance(value, str):
                value = value.strip()
            setattr(org, name, value)
        check_organization(org)
        after = _snapshot(org)
        diff = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
        if not diff:
            return org
        org.save()
        audit.record("kernel.organization.update", actor=actor, target=org, detail={"changes": diff})
        _announce("kernel.organization.updated", org)
    return org


def deactivate_organization(org: Organization, *, actor, reason: str = "") -> Organization:
    """Mark a department inactive (it keeps its history); refused while it has active sub-departments."""
    with transaction.atomic():
        org = Organization.objects.select_for_update(of=("self",)).select_related("division").get(pk=org.pk)
        if not org.is_active:
            return org
        active_children = list(org.children.filter(is_active=True).values_list("name", flat=True)[:5])
        if active_children:
            raise ValidationError(
                _("部门“%(name)s”还有在用的下级部门（%(children)s），请先停用或调整下级部门")
                % {"name": org.name, "children": "、".join(active_children)},
                code="organization_has_children",
            )
        org.is_active = False
        org.save(update_fields=["is_active", "updated_at"])
        officials = org.officials.count() if hasattr(org, "officials") else 0
        audit.record(
            "kernel.organization.deactivate",
            actor=actor,
            target=org,
            detail={"reason": reason, "officials_still_assigned": officials},
        )
        _announce("kernel.organization.deactivated", org)
    return org


def reactivate_organization(org: Organization, *, actor) -> Organization:
    """Make an inactive department active again (its parent must be active)."""
    with transaction.atomic():
        org = (
            Organization.objects.select_for_update(of=("self",))
            .select_related("division", "parent")
            .get(pk=org.pk)
        )
        if org.is_active:
            return org
        org.is_active = True
        check_organization(org)
        org.save(update_fields=["is_active", "updated_at"])
        audit.record("kernel.organization.reactivate", actor=actor, target=org)
        _announce("kernel.organization.reactivated", org)
    return org


# --- Queries ------------------------------------------------------------------------------------------


def organizations_in_scope(division_code: str, *, include_inactive: bool = False) -> QuerySet[Organization]:
    """Organizations on ``division_code`` and every division below it (see the module docstring)."""
    qs = Organization.objects.select_related("division").filter(
        division__code__startswith=scope_prefix(division_code)
    )
    return qs if include_inactive else qs.filter(is_active=True)


def find_department(division_code: str, kind: str) -> Organization | None:
    """The active department of one kind (e.g. ``"SCJG"``) on exactly this division, if any."""
    return (
        Organization.objects.filter(division__code=division_code, kind=kind, is_active=True)
        .order_by("level", "code")
        .first()
    )


@dataclass
class DepartmentNode:
    """One organization with its sub-departments, for tree displays."""

    org: Organization
    children: list[DepartmentNode] = field(default_factory=list)

    def walk(self, depth: int = 0):
        """Yield ``(depth, org)`` depth-first, children in code order."""
        yield depth, self.org
        for child in self.children:
            yield from child.walk(depth + 1)

    def __len__(self) -> int:
        return 1 + sum(len(c) for c in self.children)


def department_tree(root: Organization, *, include_inactive: bool = False) -> DepartmentNode:
    """``root`` and everything below it, built from one query over root's division scope."""
    qs = organizations_in_scope(root.division.code, include_inactive=include_inactive).order_by(
        "level", "code"
    )
    by_parent: dict[int, list[Organization]] = {}
    for org in qs:
        if org.parent_id is not None:
            by_parent.setdefault(org.parent_id, []).append(org)

    def build(org: Organization) -> DepartmentNode:
        return DepartmentNode(org, [build(child) for child in by_parent.get(org.pk, [])])

    return build(root)


# --- The demo set -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BureauKind:
    """A kind of department: its names and code suffixes per level and its duties (三定) paragraph."""

    kind: str
    names: dict[int, str]  # level → name pattern with {place}/{city}/{short} placeholders
    suffixes: dict[int, str]  # level → code suffix, e.g. GAT (公安厅) / GAJ (公安局)
    duties: str  # with {area} (全省/全市/全区/全县) and {gov} (省政府/市政府/区政府/县政府)
    vertical: bool = False


P, C, X = Organization.Level.PROVINCE, Organization.Level.CITY, Organization.Level.COUNTY

BUREAU_KINDS: tuple[BureauKind, ...] = (
    BureauKind(
        "GOV",
        {P: "{place}人民政府", C: "{place}人民政府", X: "{place}人民政府"},
        {P: "GOV", C: "GOV", X: "GOV"},
        "作为本级人民代表大会的执行机关和本级国家行政机关，执行本级人民代表大会及其常务委员会的决议和上级"
        "行政机关的决定，领导所属工作部门和下级人民政府，管理{area}经济、社会、城乡建设、民政、公安、司法行政"
        "等行政工作，保障法律法规在本行政区域的实施。",
    ),
    BureauKind(
        "BG",
        {P: "{place}人民政府办公厅", C: "{place}人民政府办公室"},
        {P: "BGT", C: "BGS"},
        "协助{gov}领导处理日常工作，负责文电、会务、机要、值班和政务信息工作，起草和审核以{gov}及其办公厅"
        "（室）名义印发的文件，督促检查各部门和下级政府对{gov}决定事项的落实，推进{area}政务公开。",
    ),
    BureauKind(
        "FGW",
        {P: "{place}发展和改革委员会", C: "{place}发展和改革委员会"},
        {P: "FGW", C: "FGW"},
        "拟订并组织实施{area}国民经济和社会发展规划与年度计划，监测宏观经济运行，统筹重大项目布局和政府投资，"
        "推进经济体制改革和营商环境建设，组织拟订区域协调发展、价格和能源发展政策。",
    ),
    BureauKind(
        "JY",
        {P: "{place}教育厅", C: "{place}教育局"},
        {P: "JYT", C: "JYJ"},
        "贯彻国家教育方针，拟订{area}教育发展规划和政策，统筹管理各级各类教育，负责学校布局、招生考试、学籍学历"
        "和教师队伍建设管理，督导评估教育质量，推进教育公平和教育信息化。",
    ),
    BureauKind(
        "GA",
        {P: "{place}公安厅", C: "{place}公安局", X: "{police}"},
        {P: "GAT", C: "GAJ", X: "GAJ"},
        "负责{area}公安工作，预防、制止和侦查违法犯罪活动，维护社会治安秩序和道路交通安全，依法管理户籍、"
        "居民身份证、出入境和治安行政许可事项，组织实施人口基础信息的登记、更新和共享。",
    ),
    BureauKind(
        "MZ",
        {P: "{place}民政厅", C: "{place}民政局", X: "{place}民政局"},
        {P: "MZT", C: "MZJ", X: "MZJ"},
        "负责{area}社会救助、养老服务、儿童福利、婚姻登记、殡葬管理和社会组织登记管理，指导城乡社区治理，"
        "拟订行政区划和地名管理办法，承办最低生活保障和特困人员救助供养等民生事项。",
    ),
    BureauKind(
        "SF",
        {P: "{place}司法厅", C: "{place}司法局"},
        {P: "SFT", C: "SFJ"},
        "统筹{area}法治政府建设，承担规范性文件合法性审查和行政复议工作，管理律师、公证、司法鉴定和法律援助，"
        "指导人民调解和社区矫正，组织开展普法宣传。",
    ),
    BureauKind(
        "CZ",
        {P: "{place}财政厅", C: "{place}财政局"},
        {P: "CZT", C: "CZJ"},
        "拟订{area}财政发展规划和财税政策，编制和执行预算、决算，管理非税收入和政府债务，实施国库集中收付和"
        "政府采购监督管理，负责财政资金绩效评价和国有资产管理。",
    ),
    BureauKind(
        "RS",
        {
            P: "{place}人力资源和社会保障厅",
            C: "{place}人力资源和社会保障局",
            X: "{place}人力资源和社会保障局",
        },
        {P: "RST", C: "RSJ", X: "RSJ"},
        "拟订{area}就业创业、社会保险、工资收入和劳动关系政策，经办养老、失业、工伤保险，管理职业技能培训和"
        "人才引进，负责劳动保障监察和劳动人事争议调解仲裁，发放社会保障卡。",
    ),
    BureauKind(
        "ZRZY",
        {P: "{place}自然资源厅", C: "{place}自然资源和规划局"},
        {P: "ZRZYT", C: "ZRZYJ"},
        "履行{area}自然资源资产所有者职责和国土空间用途管制职责，编制国土空间规划，负责不动产统一登记、"
        "土地征收和耕地保护，组织测绘地理信息和空间地理基础数据的建设与共享。",
    ),
    BureauKind(
        "STHJ",
        {P: "{place}生态环境厅", C: "{place}生态环境局"},
        {P: "STHJT", C: "STHJJ"},
        "拟订并监督实施{area}生态环境规划和标准，负责大气、水、土壤污染防治，审批建设项目环境影响评价，"
        "管理排污许可和环境监测，组织生态环境保护督察和执法。",
    ),
    BureauKind(
        "ZJ",
        {P: "{place}住房和城乡建设厅", C: "{place}住房和城乡建设局"},
        {P: "ZJT", C: "ZJJ"},
        "拟订{area}住房保障和城乡建设政策，规范房地产市场秩序，监督管理建筑市场、工程质量安全和施工许可，"
        "指导城市基础设施建设、物业管理和农村住房建设。",
    ),
    BureauKind(
        "JT",
        {P: "{place}交通运输厅", C: "{place}交通运输局"},
        {P: "JTT", C: "JTJ"},
        "拟订{area}综合交通运输规划，负责公路、水路行业管理和运输市场监管，办理道路运输经营、从业资格等"
        "行政许可，组织交通基础设施建设养护和交通运输安全生产监督。",
    ),
    BureauKind(
        "NYNC",
        {P: "{place}农业农村厅", C: "{place}农业农村局"},
        {P: "NYNCT", C: "NYNCJ"},
        "统筹{area}乡村振兴和农业农村发展，负责粮食等重要农产品生产、农产品质量安全和动植物疫病防控，"
        "指导农村集体经济组织和农民专业合作社发展，管理农业生产资料市场。",
    ),
    BureauKind(
        "WJ",
        {P: "{place}卫生健康委员会", C: "{place}卫生健康委员会"},
        {P: "WJW", C: "WJW"},
        "拟订{area}卫生健康政策和医疗卫生资源配置规划，管理医疗机构和医疗服务行业，组织疾病预防控制和"
        "突发公共卫生事件应急处置，负责出生医学证明、母婴保健和人口监测工作。",
    ),
    BureauKind(
        "YJ",
        {P: "{place}应急管理厅", C: "{place}应急管理局"},
        {P: "YJT", C: "YJJ"},
        "组织编制{area}应急体系建设和安全生产规划，指导各类突发事件应对和自然灾害防治，负责危险化学品、"
        "非煤矿山等安全生产行政许可和执法，统筹应急救援力量和物资。",
    ),
    BureauKind(
        "SCJG",
        {P: "{place}市场监督管理局", C: "{place}市场监督管理局", X: "{place}市场监督管理局"},
        {P: "SCJG", C: "SCJG", X: "SCJG"},
        "负责{area}市场主体统一登记注册和信用监管，核发营业执照，组织市场监管综合执法，承担食品、药品、"
        "特种设备和产品质量安全监督管理，规范市场竞争秩序和计量、标准、认证认可工作。",
    ),
    BureauKind(
        "YB",
        {P: "{place}医疗保障局", C: "{place}医疗保障局"},
        {P: "YBJ", C: "YBJ"},
        "拟订{area}医疗保险、生育保险和医疗救助政策，管理医疗保障基金，组织药品和医用耗材集中采购，"
        "制定医疗服务价格和医保支付标准，推进医保经办服务和异地就医结算。",
    ),
    BureauKind(
        "TJ",
        {P: "{place}统计局", C: "{place}统计局"},
        {P: "TJJ", C: "TJJ"},
        "组织实施{area}统计调查和普查，收集、汇总和发布国民经济与社会发展统计数据，监测经济运行并开展"
        "统计分析，管理统计标准和统计执法，建设宏观经济数据库。",
    ),
    BureauKind(
        "SW",
        {P: "国家税务总局{place}税务局"},
        {P: "SWJ"},
        "负责{area}税收、社会保险费和有关非税收入的征收管理，办理纳税人登记、申报、发票和税收优惠事项，"
        "开展税务稽查和纳税服务；实行以国家税务总局为主与{gov}双重领导的垂直管理体制。",
        vertical=True,
    ),
    BureauKind(
        "DSJ",
        {P: "{place}大数据局", C: "{place}大数据局"},
        {P: "DSJ", C: "DSJ"},
        "统筹{area}数字政府建设和政务信息化项目，管理政务信息资源目录和共享交换平台，建设人口、法人、电子证照"
        "等基础库，组织公共数据开放和数据质量治理，保障政务云和网络安全。",
    ),
    BureauKind(
        "ZWFW",
        {P: "{place}政务服务管理办公室"},
        {P: "ZWFW"},
        "统筹推进{area}政务服务标准化、规范化、便利化，管理政务服务事项清单和办事指南，指导政务服务中心和"
        "一网通办平台运行，组织好差评和12345政务服务便民热线工作。",
    ),
    BureauKind(
        "XZSP",
        {C: "{place}行政审批服务局", X: "{place}行政审批服务局"},
        {C: "XZSP", X: "XZSP"},
        "集中行使{area}划转的行政许可事项，实行一窗受理、集成服务，负责企业开办、工程建设项目审批和证照"
        "发放，推进审批服务事项网上办理和审管衔接。",
    ),
)


def _area(division: Division) -> tuple[str, str]:
    """(area, government) words for duties texts: 全省/省政府, 全市/市政府, 全区/区政府, 全县/县政府."""
    if division.level == Division.Level.PROVINCE:
        word = "市" if division.name.endswith("市") else ("区" if division.name.endswith("区") else "省")
    elif division.level == Division.Level.CITY:
        word = division.name[-1] if division.name[-1] in "市州盟" else "市"
    else:
        word = division.name[-1] if division.name[-1] in "区县市旗" else "县"
    return f"全{word}", f"{word}政府"


def _police_name(county: Division, city: Division | None) -> str:
    """County-level police: 济南市公安局历下分局 for a district, 平阴县公安局 otherwise."""
    if county.name.endswith("区") and city is not None and not city.placeholder:
        return f"{city.name}公安局{county.name.removesuffix('区')}分局"
    return f"{county.name}公安局"


def _short_name(name: str, place: str, level: int) -> str:
    """省公安厅 from 山东省公安厅 (the short form officials use inside their own region)."""
    prefix = {P: "省", C: "市", X: place[-1] if place else "县"}[level]
    if name.startswith(place):
        return prefix + name[len(place) :]
    return name


@dataclass
class _Planned:
    """A demo organization before insertion."""

    org: Organization
    parent_code: str | None


def generate_demo_organizations(province_code: str, seed: int = 2260, *, actor) -> list[Organization]:
    """Create the demo province's departments (province, each city, each county); deterministic, idempotent.

    Returns every organization of the province after the run (existing ones included). Rows that
    already exist (by code) are left alone, so re-running only fills gaps. One summary audit record.
    """
    province = Division.objects.get(code=province_code, level=Division.Level.PROVINCE)
    prefix = scope_prefix(province.code)
    divisions = list(
        Division.objects.filter(
            code__startswith=prefix, level__lte=Division.Level.COUNTY, is_current=True
        ).order_by("level", "code")
    )
    if not any(d.level == Division.Level.COUNTY for d in divisions):
        raise ValidationError(
            _("行政区划：%(code)s 下没有县级区划，请先运行 dgov divisions load") % {"code": province_code},
            code="divisions_missing",
        )
    by_pk = {d.pk: d for d in divisions}
    used_uscc = set(Organization.objects.values_list("uscc", flat=True))
    existing_codes = set(Organization.objects.filter(code__startswith=prefix).values_list("code", flat=True))

    def gov_holder(division: Division) -> Division:
        """The nearest division at or above ``division`` that is a real place (skips 市辖区 etc.)."""
        while division.placeholder and division.parent_id in by_pk:
            division = by_pk[division.parent_id]
        return division

    planned: list[_Planned] = []
    for division in divisions:
        if division.placeholder:
            continue
        level = division.level
        parent_division = by_pk.get(division.parent_id) if division.parent_id else None
        upper_gov = f"{gov_holder(parent_division).code}-GOV" if parent_division else None
        area, gov = _area(division)
        city = gov_holder(parent_division) if level == X and parent_division else None
        rng = random.Random(f"{seed}:{division.code}")
        for kind in BUREAU_KINDS:
            if level not in kind.names:
                continue
            name = kind.names[level].format(place=division.name, police=_police_name(division, city))
            code = f"{division.code}-{kind.suffixes[level]}"
            if kind.kind == "GOV":
                parent_code = upper_gov
            else:
                parent_code = None if kind.vertical else f"{division.code}-GOV"
            while True:
                uscc = make_uscc("1", "1", division.code, f"{rng.randrange(10**8):08d}")
                if uscc not in used_uscc:
                    break
            used_uscc.add(uscc)
            org = Organization(
                name=name,
                short_name=_short_name(name, division.name, level),
                code=code,
                uscc=uscc,
                level=level,
                division=division,
                kind=kind.kind,
                is_vertical=kind.vertical,
                duties=kind.duties.format(area=area, gov=gov),
            )
            planned.append(_Planned(org, parent_code))
    with transaction.atomic():
        code_to_pk = dict(Organization.objects.filter(code__startswith=prefix).values_list("code", "pk"))
        created = 0
        # Parents first: governments level by level, then bureaus, so every parent has its key.
        order = sorted(planned, key=lambda p: (p.org.kind != "GOV", p.org.level))
        batch: list[Organization] = []
        batch_key: tuple[bool, int] | None = None

        def flush() -> None:
            nonlocal created, batch
            if batch:
                Organization.objects.bulk_create(batch, batch_size=1000)
                created += len(batch)
                code_to_pk.update(
                    Organization.objects.filter(code__in=[o.code for o in batch]).values_list("code", "pk")
                )
                batch = []

        for item in order:
            key = (item.org.kind != "GOV", item.org.level)
            if key != batch_key:
                flush()
                batch_key = key
            if item.org.code in existing_codes:
                continue
            item.org.parent_id = code_to_pk.get(item.parent_code) if item.parent_code else None
            batch.append(item.org)
        flush()
        audit.record(
            "kernel.organization.generate_demo",
            actor=actor,
            target=province,
            detail={"province": province.code, "seed": seed, "planned": len(planned), "created": created},
        )
    return list(
        Organization.objects.select_related("division", "parent")
        .filter(division__code__startswith=prefix)
        .order_by("level", "division__code", "code")
    )
