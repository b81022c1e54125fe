"""The government information resource catalogue (政务信息资源目录) after GB/T 21063 and the 编制指南.

A **resource** (:class:`InformationResource`, 信息资源) is registered by its provider department,
classified in the 类/项/目/细目 tree (:class:`ResourceClass`), described by the core metadata of
GB/T 21063.3 and made of **information items** (:class:`InformationItem`, 信息项), each of which
may point at the registry field that holds its data. The resource row is the department's working
copy; what readers see is the last **published version** (:class:`ResourceVersion`, a JSON
snapshot), so a published entry stays visible while its revision is in review. Every decision is a
:class:`ReviewRecord`. Published entries are indexed for Chinese search in :class:`SearchEntry` /
:class:`SearchToken` / :class:`SearchTerm`, built from the published snapshot. See docs/catalog.md.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class SharingType(models.TextChoices):
    """共享类型 (GB/T 21063.3 共享属性)."""

    UNCONDITIONAL = "unconditional", _("无条件共享")
    CONDITIONAL = "conditional", _("有条件共享")
    NONE = "none", _("不予共享")


class OpenType(models.TextChoices):
    """开放属性: whether and how the resource is opened to the public (数据开放)."""

    UNCONDITIONAL = "unconditional", _("无条件开放")
    CONDITIONAL = "conditional", _("有条件开放")
    NONE = "none", _("不予开放")


class ResourceClass(models.Model):
    """A node of the classification tree: 类 (1 digit), 项 (+2), 目 (+3) or 细目 (+3); ``code`` is the full prefix.

    The three 类 of the 编制指南 are 1 基础信息资源, 2 主题信息资源 and 3 部门信息资源; a 项 of the
    department class names a department (``organization``).
    """

    class Level(models.IntegerChoices):
        CLASS = 1, _("类")
        ITEM = 2, _("项")
        SECTION = 3, _("目")
        SUBSECTION = 4, _("细目")

    class Category(models.TextChoices):
        BASE = "base", _("基础信息资源")
        THEME = "theme", _("主题信息资源")
        DEPARTMENT = "department", _("部门信息资源")

    code = models.CharField(_("分类代码"), max_length=9, unique=True, help_text=_("如 1、101、101001、101001001"))
    name = models.CharField(_("名称"), max_length=100)
    level = models.PositiveSmallIntegerField(_("层级"), choices=Level.choices)
    category = models.CharField(_("资源属性分类"), max_length=12, choices=Category.choices)
    parent = models.ForeignKey(
        "self", verbose_name=_("上级分类"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    organization = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("对应部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("部门信息资源类的“项”对应的部门"),
    )
    description = models.TextField(_("说明"), blank=True)
    next_sequence = models.PositiveIntegerField(_("下一顺序码"), default=1)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("资源分类")
        verbose_name_plural = _("资源分类")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class InformationResource(models.Model):
    """One catalogue entry (信息资源): the provider department's working copy of its GB/T 21063 metadata."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("草稿")
        SUBMITTED = "submitted", _("待审核")
        PUBLISHED = "published", _("已发布")
        REJECTED = "rejected", _("已退回")
        RETIRED = "retired", _("已停用")

    class Format(models.TextChoices):
        """信息资源格式 (编制指南 格式分类)."""

        DOCUMENT = "document", _("电子文件")
        SPREADSHEET = "spreadsheet", _("电子表格")
        DATABASE = "database", _("数据库")
        IMAGE = "image", _("图形图像")
        MEDIA = "media", _("流媒体")
        SELF_DESCRIBING = "self_describing", _("自描述格式")
        API = "api", _("服务接口")
        OTHER = "other", _("其他")

    class SharingMode(models.TextChoices):
        """共享方式."""

        API = "api", _("接口服务")
        FILE = "file", _("文件下载")
        DATABASE = "database", _("库表交换")
        QUERY = "query", _("在线查询")
        VERIFICATION = "verification", _("核验服务")

    class UpdateCycle(models.TextChoices):
        """更新周期."""

        REALTIME = "realtime", _("实时")
        DAILY = "daily", _("每日")
        WEEKLY = "weekly", _("每周")
        MONTHLY = "monthly", _("每月")
        QUARTERLY = "quarterly", _("每季度")
        HALF_YEARLY = "half_yearly", _("每半年")
        YEARLY = "yearly", _("每年")
        IRREGULAR = "irregular", _("不定期")

    code = models.CharField(
        _("信息资源代码"), max_length=20, unique=True, help_text=_("前段码（类项目细目，9 位）/后段码（顺序码，6 位）")
    )
    classification = models.ForeignKey(
        ResourceClass, verbose_name=_("资源分类"), on_delete=models.PROTECT, related_name="resources"
    )
    name = models.CharField(_("信息资源名称"), max_length=200)
    provider = models.ForeignKey(
        "kernel.Organization", verbose_name=_("信息资源提供方"), on_delete=models.PROTECT, related_name="+"
    )
    provider_code = models.CharField(
        _("提供方代码"), max_length=18, help_text=_("提供方的统一社会信用代码，登记时取自部门信息")
    )
    summary = models.TextField(_("信息资源摘要"))
    keywords = models.CharField(_("关键字"), max_length=200, blank=True, help_text=_("以逗号或空格分隔"))
    format = models.CharField(_("信息资源格式"), max_length=16, choices=Format.choices)
    format_detail = models.CharField(_("格式说明"), max_length=100, blank=True, help_text=_("如 OFD、XLSX、JSON"))
    sharing_type = models.CharField(_("共享类型"), max_length=16, choices=SharingType.choices)
    sharing_conditions = models.TextField(
        _("共享条件"), blank=True, help_text=_("有条件共享时写明条件；不予共享时写明法律、行政法规或政策依据")
    )
    sharing_mode = models.CharField(_("共享方式"), max_length=16, choices=SharingMode.choices, blank=True)
    open_type = models.CharField(_("开放属性"), max_length=16, choices=OpenType.choices, default=OpenType.NONE)
    open_conditions = models.TextField(_("开放条件"), blank=True)
    update_cycle = models.CharField(_("更新周期"), max_length=16, choices=UpdateCycle.choices)
    published_on = models.DateField(_("发布日期"), null=True, blank=True, help_text=_("首次发布的日期"))
    related = models.ManyToManyField(
        "self", verbose_name=_("关联资源"), symmetrical=False, blank=True, related_name="related_from"
    )
    maintainer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("维护人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    contact = models.CharField(
        _("联系方式"), max_length=200, blank=True, help_text=_("负责处室及办公电话（单位联系方式，非个人信息）")
    )
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True)
    version = models.PositiveIntegerField(_("现行版本号"), default=0, help_text=_("已发布的最新版本号，0 表示未发布"))
    published_version = models.ForeignKey(
        "ResourceVersion",
        verbose_name=_("现行版本"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    quality_score = models.DecimalField(
        _("数据质量评分"), max_digits=5, decimal_places=2, null=True, blank=True, help_text=_("由数据质量评估写入")
    )
    quality_checked_at = models.DateTimeField(_("质量评估时间"), null=True, blank=True)
    created_by = models.CharField(_("创建人"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    submitted_at = models.DateTimeField(_("提交时间"), null=True, blank=True)
    retired_at = models.DateTimeField(_("停用时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("信息资源")
        verbose_name_plural = _("信息资源")
        ordering = ["code"]
        indexes = [models.Index(fields=["provider", "status"], name="catalog_res_provider_status")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class InformationItem(models.Model):
    """One information item (信息项) of a resource: name, code, type, length, per-item sharing, data source.

    ``code`` identifies the item within its resource (the exchange refers to items as
    ``<resource code>#<item code>``). When the data lives in a registry, ``registry`` +
    ``registry_field`` name the field. ``is_own`` says the provider declares itself the source
    (权威来源) of the item; the 一数一源 check compares those claims (docs/catalog.md).
    """

    class DataType(models.TextChoices):
        """数据类型 (编制指南 信息项数据类型)."""

        CHAR = "C", _("字符型 C")
        NUMBER = "N", _("数值型 N")
        MONEY = "Y", _("货币型 Y")
        DATE = "D", _("日期型 D")
        DATETIME = "T", _("日期时间型 T")
        BOOLEAN = "L", _("逻辑型 L")
        MEMO = "M", _("备注型 M")
        BINARY = "G", _("通用型 G")
        DOUBLE = "B", _("双精度型 B")
        INTEGER = "I", _("整型 I")
        FLOAT = "F", _("浮点型 F")

    resource = models.ForeignKey(
        InformationResource, verbose_name=_("信息资源"), on_delete=models.CASCADE, related_name="items"
    )
    position = models.PositiveSmallIntegerField(_("序号"), default=0)
    code = models.SlugField(_("信息项代码"), max_length=64, help_text=_("资源内唯一，如 id_number"))
    name = models.CharField(_("信息项名称"), max_length=100)
    data_type = models.CharField(_("数据类型"), max_length=1, choices=DataType.choices, default=DataType.CHAR)
    length = models.PositiveIntegerField(_("数据长度"), null=True, blank=True)
    description = models.CharField(_("说明"), max_length=300, blank=True)
    data_element = models.CharField(
        _("数据元标识符"), max_length=64, blank=True, help_text=_("引用的标准数据元，如 DE00001")
    )
    registry = models.ForeignKey(
        "registry.Registry",
        verbose_name=_("所在信息库"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    registry_field = models.CharField(_("信息库字段"), max_length=64, blank=True)
    sharing_type = models.CharField(_("共享类型"), max_length=16, choices=SharingType.choices)
    is_own = models.BooleanField(_("本部门为权威来源"), default=True)
    # Keys of the 一数一源 check, derived on save by the services: "<registry>#<field>" and
    # "<normalized name>|<data element>" ("" when the item has no registry link / no data element).
    source_key = models.CharField(max_length=140, blank=True, db_index=True)
    element_key = models.CharField(max_length=170, blank=True, db_index=True)

    class Meta:
        verbose_name = _("信息项")
        verbose_name_plural = _("信息项")
        ordering = ["resource", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["resource", "code"], name="catalog_item_code_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ResourceVersion(models.Model):
    """A published version of a resource: the whole entry (metadata and items) as a JSON snapshot."""

    resource = models.ForeignKey(
        InformationResource, verbose_name=_("信息资源"), on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField(_("版本号"))
    snapshot = models.JSONField(_("快照"))
    note = models.TextField(_("变更说明"), blank=True)
    published_by = models.CharField(_("发布人"), max_length=150, blank=True)
    published_at = models.DateTimeField(_("发布时间"))

    class Meta:
        verbose_name = _("资源版本")
        verbose_name_plural = _("资源版本")
        ordering = ["resource", "-number"]
        constraints = [models.UniqueConstraint(fields=["resource", "number"], name="catalog_version_unique")]

    def __str__(self) -> str:
        return f"{self.resource_id} v{self.number}"


class ReviewRecord(models.Model):
    """One step of an entry's workflow: submitted, withdrawn, approved (published), rejected or retired."""

    class Action(models.TextChoices):
        SUBMIT = "submit", _("提交审核")
        WITHDRAW = "withdraw", _("撤回")
        APPROVE = "approve", _("审核通过并发布")
        REJECT = "reject", _("退回")
        RETIRE = "retire", _("停用")

    resource = models.ForeignKey(
        InformationResource, verbose_name=_("信息资源"), on_delete=models.CASCADE, related_name="reviews"
    )
    action = models.CharField(_("操作"), max_length=12, choices=Action.choices)
    actor = models.CharField(_("操作人"), max_length=150)
    actor_org = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("操作部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    note = models.TextField(_("意见/原因"), blank=True)
    conflicts = models.JSONField(_("一数一源冲突"), default=list, blank=True, help_text=_("操作时检测到的冲突"))
    version = models.PositiveIntegerField(_("版本号"), null=True, blank=True)
    due_on = models.DateField(_("审核期限"), null=True, blank=True)
    at = models.DateTimeField(_("时间"), db_index=True)

    class Meta:
        verbose_name = _("审核记录")
        verbose_name_plural = _("审核记录")
        ordering = ["resource", "at", "id"]

    def __str__(self) -> str:
        return f"{self.resource_id} {self.action}"


class SearchEntry(models.Model):
    """The search document of a visible (published, not retired) resource, built from its published version."""

    resource = models.OneToOneField(
        InformationResource, verbose_name=_("信息资源"), on_delete=models.CASCADE, related_name="search_entry"
    )
    code = models.CharField(_("信息资源代码"), max_length=20)
    name = models.CharField(_("名称"), max_length=200)
    provider = models.ForeignKey("kernel.Organization", on_delete=models.CASCADE, related_name="+")
    class_category = models.CharField(_("类"), max_length=12)
    class_item = models.CharField(_("项"), max_length=3, help_text=_("项的分类代码，如 101"))
    sharing_type = models.CharField(_("共享类型"), max_length=16)
    open_type = models.CharField(_("开放属性"), max_length=16)
    format = models.CharField(_("格式"), max_length=16)
    published_at = models.DateTimeField(_("发布时间"))

    class Meta:
        verbose_name = _("检索条目")
        verbose_name_plural = _("检索条目")
        indexes = [
            models.Index(fields=["provider"], name="catalog_search_provider"),
            models.Index(fields=["class_item"], name="catalog_search_class"),
            models.Index(fields=["sharing_type"], name="catalog_search_sharing"),
            # Browsing without a query lists the newest first: the first page is the index's head.
            models.Index(fields=["-published_at", "code"], name="catalog_search_recent"),
        ]

    def __str__(self) -> str:
        return self.code


class SearchToken(models.Model):
    """A posting: a segmented token of a search entry with its field-weighted frequency."""

    token = models.CharField(max_length=32)
    entry = models.ForeignKey(SearchEntry, on_delete=models.CASCADE, related_name="tokens", db_index=False)
    weight = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = _("检索词项")
        verbose_name_plural = _("检索词项")
        indexes = [
            # token first: the postings of a query token are one index range, carrying weight and
            # entry (read index-only); by weight descending, so a one-word page reads the top
            # postings only.
            models.Index(fields=["token", "-weight", "entry"], name="catalog_token_by_weight"),
            models.Index(fields=["entry"], name="catalog_token_entry"),
        ]

    def __str__(self) -> str:
        return self.token


class SearchTerm(models.Model):
    """A token's document frequency over the search entries (for IDF ranking without counting postings)."""

    token = models.CharField(max_length=32, primary_key=True)
    df = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("检索词频")
        verbose_name_plural = _("检索词频")

    def __str__(self) -> str:
        return f"{self.token}:{self.df}"
