"""The demo catalogue: about forty entries of the demo province's departments, seeded by `dgov demo`.

Entries of the base and theme libraries link their items to the shipped registries' fields; the
other entries describe departments' own business data. Most are published (by the provincial data
administrator), a few stay as drafts, one was rejected, and one — 省民政厅's 婚姻登记信息, which
declares 公民身份号码 as its own — is left in the review inbox with a deliberate 一数一源 conflict
against 省公安厅's 人口基本信息. Seeding is idempotent: an entry whose provider already has an entry
of that name is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from dgov.catalog import services
from dgov.catalog.models import InformationResource, ResourceClass
from dgov.kernel.models import Organization

DEMO_ACTOR = "system:demo"
DATA_ADMIN_USERNAME = "dsj_admin"

# (kind, class, name, summary, format, sharing, cycle, items, options)
# items: "registry.code:field,field" (fields of a shipped registry) or a list of (code, name, type, length).
# A free item may name a registry as fifth element: it then links to that registry's field of the same code.
# options: metadata values, state ("draft" | "rejected" | "submitted"; default published), related (entry names).
SPECS: tuple[tuple, ...] = (
    (
        "GA",
        "101001",
        "人口基本信息",
        "全省户籍人口的公民身份号码、姓名、性别、出生日期、民族和户籍地址等基本信息。",
        "database",
        "conditional",
        "realtime",
        "population.person:id_number,name,sex,birth_date,ethnicity,address,division_code,status",
        {
            "sharing_conditions": "用于政务服务身份核验和法定职责履行，按最小必要原则申请字段",
            "keywords": "户籍, 身份证",
        },
    ),
    (
        "GA",
        "101002",
        "户籍户信息",
        "户号、户主、户别、住址和立户日期等户籍户信息。",
        "database",
        "conditional",
        "daily",
        "population.household:household_no,head,household_type,address,division_code,registered_on",
        {"sharing_conditions": "用于户籍类政务服务事项办理"},
    ),
    (
        "WJ",
        "101003",
        "出生医学证明信息",
        "出生医学证明签发信息，用于出生登记、户口申报和社保参保。",
        "database",
        "conditional",
        "realtime",
        "population.event:document_no,kind,person,date,place_division,registrar",
        {"sharing_conditions": "用于“出生一件事”联办"},
    ),
    (
        "MZ",
        "101003",
        "婚姻登记信息",
        "结婚、离婚登记信息，含当事人公民身份号码与登记机关。",
        "database",
        "conditional",
        "realtime",
        [
            ("certificate_no", "结婚证字号", "C", 32),
            ("id_number", "当事人公民身份号码", "C", 18, "population.person"),
            ("registered_on", "登记日期", "D", 10),
            ("registrar", "登记机关", "C", 100),
        ],
        {"sharing_conditions": "用于婚姻状况核验", "state": "submitted"},
    ),
    (
        "SCJG",
        "102001",
        "企业营业执照信息",
        "市场主体登记后核发的营业执照信息：统一社会信用代码、名称、类型、法定代表人、注册资本、成立日期与住所。",
        "database",
        "unconditional",
        "realtime",
        "legal_entity.enterprise:uscc,name,type,legal_representative,registered_capital_fen,established_on,address",
        {"keywords": "营业执照, 市场主体, 企业登记", "open_type": "unconditional"},
    ),
    (
        "SCJG",
        "102001",
        "市场主体经营状态信息",
        "市场主体的登记状态（存续、注销、吊销）和经营范围。",
        "database",
        "unconditional",
        "daily",
        "legal_entity.enterprise:status,business_scope,registration_authority,division_code",
        {"open_type": "unconditional", "related": ["企业营业执照信息"]},
    ),
    (
        "SCJG",
        "207",
        "食品经营许可信息",
        "食品经营许可证的许可编号、经营者名称、经营项目和有效期。",
        "database",
        "unconditional",
        "daily",
        [
            ("licence_no", "许可证编号", "C", 32),
            ("operator", "经营者名称", "C", 200),
            ("items", "经营项目", "M", None),
            ("valid_until", "有效期至", "D", 10),
        ],
        {"open_type": "unconditional"},
    ),
    (
        "SCJG",
        "207",
        "特种设备使用登记信息",
        "电梯、锅炉、压力容器等特种设备的使用登记与定期检验信息。",
        "database",
        "conditional",
        "monthly",
        [
            ("equipment_code", "设备代码", "C", 32),
            ("user_name", "使用单位", "C", 200),
            ("inspected_on", "下次检验日期", "D", 10),
        ],
        {"sharing_conditions": "用于安全生产监管"},
    ),
    (
        "FGW",
        "104001",
        "行政许可信息（双公示）",
        "各级行政机关作出的行政许可决定，按双公示规范归集。",
        "database",
        "unconditional",
        "daily",
        "credit.licence:decision_no,decision_title,subject_name,subject_uscc,licence_category,decision_date,authority_name",
        {"open_type": "unconditional", "keywords": "双公示, 信用"},
    ),
    (
        "FGW",
        "104001",
        "行政处罚信息（双公示）",
        "各级行政机关作出的行政处罚决定，按双公示规范归集。",
        "database",
        "unconditional",
        "daily",
        "credit.penalty:decision_no,subject_name,subject_uscc,violation_type,penalty_category,decision_date,authority_name",
        {"open_type": "conditional", "open_conditions": "公示期内向社会公开", "related": ["行政许可信息（双公示）"]},
    ),
    (
        "FGW",
        "104002",
        "信用红黑名单信息",
        "守信激励红名单与失信惩戒黑名单。",
        "database",
        "unconditional",
        "daily",
        "credit.list:entry_no,list_type,list_name,subject_name,subject_uscc,reason,valid_from,valid_until",
        {"open_type": "unconditional"},
    ),
    (
        "FGW",
        "206",
        "政府投资项目审批信息",
        "政府投资项目的立项、可研和初步设计审批信息。",
        "database",
        "unconditional",
        "monthly",
        [
            ("project_code", "项目代码", "C", 24),
            ("project_name", "项目名称", "C", 200),
            ("approved_on", "批复日期", "D", 10),
            ("investment_fen", "总投资（分）", "I", None),
        ],
        {},
    ),
    (
        "TJ",
        "106",
        "主要经济指标数据",
        "全省及各市地区生产总值、固定资产投资、社会消费品零售总额等季度指标。",
        "spreadsheet",
        "unconditional",
        "quarterly",
        "macro.indicator:indicator_code,indicator_name,division_code,period,value,unit,released_on",
        {"open_type": "unconditional", "keywords": "GDP, 统计"},
    ),
    (
        "MZ",
        "103001",
        "行政区划信息",
        "省、市、县三级行政区划代码、名称、级别和隶属关系。",
        "database",
        "unconditional",
        "irregular",
        "spatial.division:code,name,level,parent_code",
        {"open_type": "unconditional"},
    ),
    (
        "ZRZY",
        "103001",
        "行政区划空间信息",
        "行政区划的中心点、简化边界和面积。",
        "self_describing",
        "unconditional",
        "yearly",
        "spatial.division:centroid,boundary,area_km2",
        {"format_detail": "GeoJSON", "open_type": "unconditional", "related": ["行政区划信息"]},
    ),
    (
        "ZRZY",
        "103001",
        "标准地址信息",
        "标准地址的编码、道路、门牌、楼栋和坐标。",
        "database",
        "conditional",
        "monthly",
        "spatial.address:address_code,full_address,division_code,road,house_number,point",
        {"sharing_conditions": "用于政务服务和城市管理"},
    ),
    (
        "ZRZY",
        "103002",
        "不动产登记信息",
        "不动产权利人、坐落、面积和权利类型等登记信息。",
        "database",
        "conditional",
        "realtime",
        [
            ("certificate_no", "不动产权证书号", "C", 40),
            ("holder_name", "权利人", "C", 200),
            ("location", "坐落", "C", 300),
            ("area_m2", "面积（平方米）", "N", None),
        ],
        {"sharing_conditions": "用于不动产交易、税收征管和司法查控，须提供法定依据"},
    ),
    (
        "DSJ",
        "105",
        "电子证照目录索引",
        "全省电子证照的证照标识、类型、编号、持证主体和有效期索引。",
        "database",
        "conditional",
        "realtime",
        "licence.index:licence_id,type_code,type_name,licence_no,holder_name,holder_uscc,issuer,issued_on,valid_until,status",
        {"sharing_conditions": "用于亮证、用证和证照核验"},
    ),
    (
        "RS",
        "201",
        "社会保险参保信息",
        "养老、失业、工伤保险的参保登记、参保状态和缴费基数。",
        "database",
        "conditional",
        "daily",
        "social_security.insured:enrolment_no,person,insurance_type,status,start_date,contribution_base_fen,employer_uscc",
        {"sharing_conditions": "用于社保待遇资格核验和就业服务"},
    ),
    (
        "RS",
        "201",
        "就业登记信息",
        "劳动者就业与失业登记信息。",
        "database",
        "conditional",
        "daily",
        [
            ("registration_no", "登记编号", "C", 32),
            ("employer", "用人单位", "C", 200),
            ("started_on", "就业日期", "D", 10),
        ],
        {"sharing_conditions": "用于就业补贴和失业保险核验"},
    ),
    (
        "RS",
        "201",
        "社会保障卡信息",
        "社会保障卡的卡号、发卡日期和卡状态。",
        "database",
        "conditional",
        "realtime",
        [("card_no", "社会保障卡号", "C", 20), ("issued_on", "发卡日期", "D", 10), ("card_status", "卡状态", "C", 2)],
        {"sharing_conditions": "用于“一卡通”应用", "state": "draft"},
    ),
    (
        "YJ",
        "203",
        "应急资源信息",
        "避难场所、物资储备库和救援队伍等应急资源的位置、容量与值守信息。",
        "database",
        "conditional",
        "monthly",
        "emergency.resource:resource_code,name,kind,category,division_code,address,location,capacity,status",
        {"sharing_conditions": "用于应急指挥调度"},
    ),
    (
        "YJ",
        "203",
        "安全生产许可信息",
        "危险化学品、矿山等安全生产许可证信息。",
        "database",
        "unconditional",
        "monthly",
        [("licence_no", "许可证编号", "C", 32), ("enterprise", "企业名称", "C", 200), ("scope", "许可范围", "M", None)],
        {"open_type": "unconditional"},
    ),
    (
        "WJ",
        "202",
        "医疗机构执业登记信息",
        "医疗机构名称、类别、诊疗科目和执业许可证信息。",
        "database",
        "unconditional",
        "monthly",
        [
            ("licence_no", "执业许可证登记号", "C", 40),
            ("institution", "机构名称", "C", 200),
            ("category", "机构类别", "C", 20),
        ],
        {"open_type": "unconditional"},
    ),
    (
        "WJ",
        "202",
        "预防接种信息",
        "儿童预防接种记录。",
        "database",
        "conditional",
        "realtime",
        [("vaccine", "疫苗名称", "C", 100), ("dose", "剂次", "I", None), ("vaccinated_on", "接种日期", "D", 10)],
        {"sharing_conditions": "用于入托入学查验"},
    ),
    (
        "JY",
        "206",
        "学籍信息",
        "中小学生学籍信息。",
        "database",
        "conditional",
        "yearly",
        [("student_no", "学籍号", "C", 32), ("school", "学校", "C", 200), ("grade", "年级", "C", 20)],
        {"sharing_conditions": "用于教育资助和入学服务"},
    ),
    (
        "JY",
        "206",
        "学校基本信息",
        "各级各类学校的名称、办学类型、地址和办学许可。",
        "database",
        "unconditional",
        "yearly",
        [("school_code", "学校标识码", "C", 10), ("name", "学校名称", "C", 200), ("address", "地址", "C", 300)],
        {"open_type": "unconditional"},
    ),
    (
        "JT",
        "208",
        "道路运输经营许可信息",
        "道路运输经营许可证和车辆营运证信息。",
        "database",
        "unconditional",
        "daily",
        [("licence_no", "经营许可证号", "C", 32), ("operator", "经营业户", "C", 200), ("scope", "经营范围", "M", None)],
        {"open_type": "unconditional"},
    ),
    (
        "JT",
        "208",
        "公交线路与站点信息",
        "城市公交线路、站点和首末班时间。",
        "self_describing",
        "unconditional",
        "monthly",
        [("line_no", "线路编号", "C", 20), ("stop_name", "站点名称", "C", 100), ("first_bus", "首班时间", "C", 5)],
        {"open_type": "unconditional", "format_detail": "JSON"},
    ),
    (
        "ZJ",
        "205",
        "建筑工程施工许可信息",
        "建筑工程施工许可证的项目、建设单位和施工单位。",
        "database",
        "unconditional",
        "daily",
        [
            ("permit_no", "施工许可证编号", "C", 32),
            ("project", "工程名称", "C", 200),
            ("builder", "建设单位", "C", 200),
        ],
        {"open_type": "unconditional"},
    ),
    (
        "ZJ",
        "205",
        "住房公积金缴存信息",
        "住房公积金的缴存单位、缴存基数和缴存状态。",
        "database",
        "conditional",
        "monthly",
        [
            ("account_no", "个人账号", "C", 32),
            ("employer", "缴存单位", "C", 200),
            ("base_fen", "缴存基数（分）", "I", None),
        ],
        {"sharing_conditions": "用于住房保障资格审核", "state": "rejected"},
    ),
    (
        "STHJ",
        "204",
        "排污许可信息",
        "排污单位的排污许可证、主要污染物和许可排放量。",
        "database",
        "unconditional",
        "monthly",
        [
            ("permit_no", "排污许可证编号", "C", 32),
            ("unit", "排污单位", "C", 200),
            ("pollutants", "主要污染物", "M", None),
        ],
        {"open_type": "unconditional"},
    ),
    (
        "STHJ",
        "204",
        "环境质量监测信息",
        "空气质量和地表水水质的自动监测数据。",
        "api",
        "unconditional",
        "realtime",
        [("station", "监测站点", "C", 100), ("aqi", "空气质量指数", "I", None), ("measured_at", "监测时间", "T", 32)],
        {"open_type": "unconditional", "format_detail": "HTTP JSON"},
    ),
    (
        "CZ",
        "206",
        "非税收入缴款信息",
        "非税收入缴款书、执收单位和缴款状态。",
        "database",
        "conditional",
        "realtime",
        [("payment_no", "缴款码", "C", 32), ("agency", "执收单位", "C", 200), ("amount_fen", "金额（分）", "I", None)],
        {"sharing_conditions": "用于缴费核验和财政对账"},
    ),
    (
        "SW",
        "206",
        "纳税信用等级信息",
        "纳税人的纳税信用等级评价结果。",
        "database",
        "conditional",
        "yearly",
        [("taxpayer_id", "纳税人识别号", "C", 20), ("grade", "信用等级", "C", 2), ("year", "评价年度", "C", 4)],
        {"sharing_conditions": "用于信用联合奖惩"},
    ),
    (
        "SW",
        "206",
        "涉税违法案件信息",
        "重大税收违法失信案件信息。",
        "database",
        "none",
        "irregular",
        [("case_no", "案件编号", "C", 32), ("taxpayer", "纳税人名称", "C", 200)],
        {"sharing_conditions": "依据《中华人民共和国税收征收管理法》第八条，涉及纳税人秘密，不予共享"},
    ),
    (
        "NYNC",
        "206",
        "农业经营主体信息",
        "家庭农场、农民专业合作社等新型农业经营主体名录。",
        "database",
        "unconditional",
        "yearly",
        [("subject_name", "主体名称", "C", 200), ("subject_type", "主体类型", "C", 20), ("county", "所在县", "C", 6)],
        {"open_type": "unconditional"},
    ),
    (
        "YB",
        "202",
        "医保参保与结算信息",
        "基本医疗保险参保状态和费用结算信息。",
        "database",
        "conditional",
        "realtime",
        [
            ("insured_no", "医保编号", "C", 32),
            ("settled_fen", "结算金额（分）", "I", None),
            ("settled_on", "结算日期", "D", 10),
        ],
        {"sharing_conditions": "用于医疗救助与待遇核验", "state": "draft"},
    ),
    (
        "SF",
        "206",
        "律师执业信息",
        "律师执业证号、执业机构和执业状态。",
        "database",
        "unconditional",
        "monthly",
        [("licence_no", "执业证号", "C", 17), ("firm", "执业机构", "C", 200), ("status", "执业状态", "C", 10)],
        {"open_type": "unconditional"},
    ),
)


@dataclass
class SeedReport:
    """What :func:`seed` did."""

    created: list[str] = field(default_factory=list)
    published: int = 0
    skipped: int = 0

    def summary(self) -> str:
        """One line for the demo command's output."""
        return f"catalogue: {len(self.created)} entries created ({self.published} published), {self.skipped} existing"


def _items(spec) -> list[dict]:
    """Item rows of a spec: fields of a shipped registry, or free items."""
    if isinstance(spec, str):
        registry, names = spec.split(":", 1)
        return [{"registry": registry, "registry_field": name} for name in names.split(",")]
    rows = []
    for code, name, dtype, length, *registry in spec:
        row = {"code": code, "name": name, "data_type": dtype, "length": length}
        if registry:
            row.update(registry=registry[0], registry_field=code)
        rows.append(row)
    return rows


def _reviewer(province_code: str):
    """The demo's data administrator (``dsj_admin``), else an official of the provincial DSJ."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(is_active=True, department__kind=services.DATA_ADMIN_KIND)
    users = users.filter(department__division__code=province_code)
    return users.filter(username=DATA_ADMIN_USERNAME).first() or users.order_by("username").first()


def _official_of(department: Organization):
    """A (demo) official of the department, so drafts and submissions carry a person."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(department=department, is_active=True, kind="official")
        .order_by("username")
        .first()
    )


def seed(*, province_code: str) -> SeedReport:
    """Create the demo catalogue entries that are missing (idempotent), publishing most of them."""
    report = SeedReport()
    reviewer = _reviewer(province_code)
    with transaction.atomic():
        services.ensure_standard_classes(actor=DEMO_ACTOR)
    departments = {
        org.kind: org
        for org in Organization.objects.filter(
            division__code=province_code, level=Organization.Level.PROVINCE, is_active=True
        )
    }
    classes = {c.code: c for c in ResourceClass.objects.all()}
    codes = dict(InformationResource.objects.filter(provider__division__code=province_code).values_list("name", "code"))
    for kind, cls, name, summary, fmt, sharing, cycle, item_spec, options in SPECS:
        department = departments.get(kind)
        if department is None or cls not in classes:
            continue
        if InformationResource.objects.filter(provider=department, name=name).exists():
            report.skipped += 1
            continue
        options = dict(options)
        state = options.pop("state", "published")
        related = [codes[n] for n in options.pop("related", []) if n in codes]
        data = {
            "name": name,
            "summary": summary,
            "format": fmt,
            "sharing_type": sharing,
            "sharing_mode": "" if sharing == "none" else ("api" if fmt in ("database", "api") else "file"),
            "update_cycle": cycle,
            "open_type": "none",
            "contact": f"{department.short_name or department.name}信息中心",
            **options,
        }
        author = _official_of(department)
        actor = author if author is not None else DEMO_ACTOR
        resource = services.create_resource(
            actor=actor,
            provider=None if author is not None else department,
            classification=classes[cls],
            data=data,
            items=_items(item_spec),
            related=related,
        )
        report.created.append(resource.code)
        codes[name] = resource.code
        if state == "draft" or reviewer is None:
            continue
        if state in ("submitted", "rejected"):
            services.submit(resource, actor=actor)
            if state == "rejected":
                services.review(
                    resource, actor=reviewer, approve=False, reason="请补充缴存信息项的数据来源和共享条件依据"
                )
            continue
        services.publish(resource, actor=reviewer, note="演示数据：目录初始发布")
        report.published += 1
    return report
