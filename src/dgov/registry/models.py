"""Population and legal-entity base libraries (人口库, 法人库): first typed slice.

These tables hold the core entities of two of the six base libraries. The schema-driven
registry engine (per-field authority, history, GovStack API) builds on them; see
docs/adr/0005-typed-core-tables-for-base-libraries.md.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from dgov.kernel.fields import EncryptedTextField


class Household(models.Model):
    """A registered household (户), the unit of the household register (户籍)."""

    household_no = models.CharField(_("户号"), max_length=20, unique=True)
    division = models.ForeignKey(
        "kernel.Division", verbose_name=_("所在区划"), on_delete=models.PROTECT, related_name="households"
    )
    address = EncryptedTextField(_("住址"), blank=True)
    registered_on = models.DateField(_("立户日期"))
    source = models.ForeignKey(
        "kernel.Organization", verbose_name=_("数据来源部门"), on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("户")
        verbose_name_plural = _("户")

    def __str__(self) -> str:
        return self.household_no


class Person(models.Model):
    """A natural person in the population base library; ID number, phone and address are encrypted."""

    class Sex(models.TextChoices):
        MALE = "1", _("男")
        FEMALE = "2", _("女")

    class Relation(models.TextChoices):
        HEAD = "02", _("户主")
        SPOUSE = "10", _("配偶")
        CHILD = "20", _("子女")
        PARENT = "50", _("父母")
        OTHER = "99", _("其他")

    name = models.CharField(_("姓名"), max_length=64, db_index=True)
    id_number = EncryptedTextField(_("居民身份证号码"))
    id_number_index = models.CharField(_("身份证号索引"), max_length=64, unique=True, editable=False)
    sex = models.CharField(_("性别"), max_length=1, choices=Sex.choices)
    birth_date = models.DateField(_("出生日期"))
    ethnicity = models.CharField(_("民族"), max_length=16, default="汉族")
    phone = EncryptedTextField(_("手机号码"), blank=True)
    phone_index = models.CharField(_("手机号索引"), max_length=64, blank=True, db_index=True, editable=False)
    address = EncryptedTextField(_("住址"), blank=True)
    division = models.ForeignKey(
        "kernel.Division", verbose_name=_("户籍地"), on_delete=models.PROTECT, related_name="residents"
    )
    household = models.ForeignKey(
        Household, verbose_name=_("户"), null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    relation = models.CharField(_("与户主关系"), max_length=2, choices=Relation.choices, default=Relation.HEAD)
    source = models.ForeignKey(
        "kernel.Organization", verbose_name=_("数据来源部门"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("自然人")
        verbose_name_plural = _("自然人")

    def __str__(self) -> str:
        return self.name


class Enterprise(models.Model):
    """A legal entity in the legal-entity base library, identified by its USCC."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("存续")
        REVOKED = "revoked", _("吊销")
        CANCELLED = "cancelled", _("注销")

    class Type(models.TextChoices):
        LLC = "llc", _("有限责任公司")
        JSC = "jsc", _("股份有限公司")
        SOLE = "sole", _("个人独资企业")
        PARTNERSHIP = "partnership", _("合伙企业")
        INDIVIDUAL = "individual", _("个体工商户")
        COOPERATIVE = "cooperative", _("农民专业合作社")

    uscc = models.CharField(_("统一社会信用代码"), max_length=18, unique=True)
    name = models.CharField(_("名称"), max_length=200, db_index=True)
    type = models.CharField(_("类型"), max_length=16, choices=Type.choices)
    legal_representative = models.ForeignKey(
        Person, verbose_name=_("法定代表人"), on_delete=models.PROTECT, related_name="represented_enterprises"
    )
    registered_capital_fen = models.BigIntegerField(_("注册资本（分）"), default=0)
    established_on = models.DateField(_("成立日期"))
    division = models.ForeignKey(
        "kernel.Division", verbose_name=_("住所所在区划"), on_delete=models.PROTECT, related_name="enterprises"
    )
    address = models.CharField(_("住所"), max_length=255)
    status = models.CharField(_("登记状态"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    business_scope = models.TextField(_("经营范围"), blank=True)
    registration_authority = models.ForeignKey(
        "kernel.Organization", verbose_name=_("登记机关"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("法人")
        verbose_name_plural = _("法人")

    def __str__(self) -> str:
        return self.name


class DemoDataset(models.Model):
    """A record that `dgov demo` seeded the demo province, with its parameters and timings."""

    province_code = models.CharField(_("省级区划代码"), max_length=6)
    seed = models.IntegerField(_("随机种子"))
    persons = models.PositiveIntegerField(_("人口数"))
    enterprises = models.PositiveIntegerField(_("法人数"))
    officials = models.PositiveIntegerField(_("工作人员数"), default=0)
    seconds = models.FloatField(_("耗时（秒）"), default=0)
    created_at = models.DateTimeField(_("生成时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("演示数据集")
        verbose_name_plural = _("演示数据集")

    def __str__(self) -> str:
        return f"{self.province_code} seed={self.seed}"
