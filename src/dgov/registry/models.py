"""Registries (基础库/主题库) defined by data: schemas, records, history, authority, reads.

See docs/adr/0010-registry-engine.md. A registry's fields, types, sensitivity and authoritative
source departments live in versioned ``RegistrySchema`` rows; every library shares the same record
store, history, correction and access-log tables.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from dgov.kernel.fields import EncryptedTextField


class Registry(models.Model):
    """One registry (e.g. population.person): what its records are and who owns it."""

    class Library(models.TextChoices):
        BASE = "base", _("基础库")
        THEME = "theme", _("主题库")

    code = models.SlugField(_("编码"), max_length=64, unique=True, help_text=_("如 population.person"))
    name = models.CharField(_("名称"), max_length=100)
    name_en = models.CharField(_("英文名称"), max_length=100, blank=True)
    library = models.CharField(_("库类别"), max_length=8, choices=Library.choices, default=Library.BASE)
    library_code = models.SlugField(_("所属库"), max_length=32, help_text=_("如 population、legal_entity"))
    description = models.TextField(_("说明"), blank=True)
    owner = models.ForeignKey(
        "kernel.Organization", verbose_name=_("牵头部门"), on_delete=models.PROTECT, related_name="registries"
    )
    identifier_field = models.CharField(
        _("标识字段"), max_length=64, help_text=_("唯一标识一条记录的业务字段，如 id_number、uscc")
    )
    scope_field = models.CharField(
        _("区划字段"), max_length=64, blank=True, help_text=_("按行政区划限定写入范围的字段，可为空")
    )
    current_schema = models.ForeignKey(
        "RegistrySchema",
        verbose_name=_("现行版本"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("信息库")
        verbose_name_plural = _("信息库")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class RegistrySchema(models.Model):
    """A version of a registry's field definitions; records keep the version they were written with.

    ``fields`` is a list of field definitions (dicts), each with: ``name``, ``label``,
    ``label_en``, ``type`` (string, text, integer, decimal, boolean, date, datetime, enum,
    resident_id, uscc, division_code, phone, email, geojson, reference, json), ``required``,
    ``unique``, ``lookup`` (exact lookup key), ``sensitivity`` (public, internal, personal —
    personal values are encrypted and masked), ``authority`` (department kind or code), and
    optionally ``choices`` (enum: codes, or ``{"value", "label", "label_en"}`` objects), ``ref``
    (registry code of a reference), ``max_length``, ``min``/``max``, ``pattern``, ``mask``
    (masking rule name), ``description``, ``authority_by_value`` (conditional authority by the
    value of one enum field; see docs/registry-engine.md).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("草稿")
        PUBLISHED = "published", _("已发布")
        RETIRED = "retired", _("已停用")

    registry = models.ForeignKey(Registry, verbose_name=_("信息库"), on_delete=models.CASCADE, related_name="schemas")
    version = models.PositiveIntegerField(_("版本"))
    fields = models.JSONField(_("字段定义"))
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.DRAFT)
    note = models.TextField(_("变更说明"), blank=True)
    created_by = models.CharField(_("创建人"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    published_at = models.DateTimeField(_("发布时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("信息库版本")
        verbose_name_plural = _("信息库版本")
        ordering = ["registry", "version"]
        constraints = [models.UniqueConstraint(fields=["registry", "version"], name="registry_schema_version_unique")]

    def __str__(self) -> str:
        return f"{self.registry.code} v{self.version}"


class Record(models.Model):
    """One record of a registry: public values as JSON, personal values sealed with SM4-GCM."""

    registry = models.ForeignKey(Registry, verbose_name=_("信息库"), on_delete=models.PROTECT, related_name="records")
    uid = models.UUIDField(_("记录标识"), default=uuid.uuid4, unique=True, editable=False)
    schema_version = models.PositiveIntegerField(_("版本"))
    data = models.JSONField(_("数据"), default=dict, help_text=_("非敏感字段的值"))
    sealed = EncryptedTextField(_("加密数据"), blank=True, help_text=_("敏感字段值的 JSON，SM4-GCM 加密"))
    division_code = models.CharField(_("所属区划"), max_length=12, blank=True, db_index=True)
    version = models.PositiveIntegerField(_("修订号"), default=1)
    created_by_org = models.ForeignKey(
        "kernel.Organization", verbose_name=_("来源部门"), on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.CharField(_("创建人"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("创建时间"), db_index=True)
    updated_at = models.DateTimeField(_("更新时间"))
    deleted_at = models.DateTimeField(_("删除时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("记录")
        verbose_name_plural = _("记录")
        indexes = [
            models.Index(fields=["registry", "created_at"], name="registry_record_reg_created"),
            # Division-scoped listings and counts (a county department's view of a province-wide registry).
            models.Index(fields=["registry", "division_code"], name="registry_record_reg_division"),
        ]

    def __str__(self) -> str:
        return str(self.uid)


class RecordKey(models.Model):
    """A keyed hash (HMAC-SM3) of a lookup field's value, for exact lookup and uniqueness."""

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="+")
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="keys")
    field = models.CharField(max_length=64)
    digest = models.CharField(max_length=64)
    is_unique = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("检索键")
        verbose_name_plural = _("检索键")
        indexes = [models.Index(fields=["registry", "field", "digest"], name="registry_key_lookup")]
        constraints = [
            models.UniqueConstraint(
                fields=["registry", "field", "digest"], condition=Q(is_unique=True), name="registry_key_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.field}:{self.digest[:12]}"


class RecordChange(models.Model):
    """One write to a record after its creation: who, which source, when, old and new values."""

    class Kind(models.TextChoices):
        UPDATE = "update", _("更新")
        CORRECTION = "correction", _("纠错")
        DELETE = "delete", _("删除")
        RESTORE = "restore", _("恢复")

    record = models.ForeignKey(Record, verbose_name=_("记录"), on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(_("类型"), max_length=12, choices=Kind.choices, default=Kind.UPDATE)
    changes = models.JSONField(_("变更"), default=dict, help_text=_("{字段: [旧值, 新值]}，非敏感字段"))
    sealed = EncryptedTextField(_("加密变更"), blank=True, help_text=_("敏感字段的 {字段: [旧值, 新值]}"))
    source = models.ForeignKey(
        "kernel.Organization", verbose_name=_("来源部门"), on_delete=models.PROTECT, related_name="+"
    )
    actor = models.CharField(_("操作人"), max_length=150, blank=True)
    reason = models.TextField(_("原因"), blank=True)
    at = models.DateTimeField(_("时间"), db_index=True)

    class Meta:
        verbose_name = _("变更记录")
        verbose_name_plural = _("变更记录")
        ordering = ["record", "at", "id"]

    def __str__(self) -> str:
        return f"{self.record_id} {self.kind} {self.at:%Y-%m-%d}"


class Observation(models.Model):
    """A value reported by a non-authoritative department, kept beside (not over) the record's value."""

    class Status(models.TextChoices):
        OPEN = "open", _("待核实")
        CONFIRMED = "confirmed", _("已采纳")
        DISMISSED = "dismissed", _("未采纳")

    record = models.ForeignKey(Record, verbose_name=_("记录"), on_delete=models.CASCADE, related_name="observations")
    field = models.CharField(_("字段"), max_length=64)
    value = EncryptedTextField(_("观测值"), help_text=_("JSON 编码的值"))
    source = models.ForeignKey(
        "kernel.Organization", verbose_name=_("来源部门"), on_delete=models.PROTECT, related_name="+"
    )
    actor = models.CharField(_("报告人"), max_length=150, blank=True)
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.OPEN)
    observed_at = models.DateTimeField(_("时间"))

    class Meta:
        verbose_name = _("观测值")
        verbose_name_plural = _("观测值")

    def __str__(self) -> str:
        return f"{self.record_id}.{self.field}"


class CorrectionRequest(models.Model):
    """A correction (纠错) of a field proposed by anyone and decided by the field's authority."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待处理")
        ACCEPTED = "accepted", _("已采纳")
        REJECTED = "rejected", _("已驳回")

    record = models.ForeignKey(Record, verbose_name=_("记录"), on_delete=models.CASCADE, related_name="corrections")
    field = models.CharField(_("字段"), max_length=64)
    proposed_value = EncryptedTextField(_("建议值"), help_text=_("JSON 编码的值"))
    reason = models.TextField(_("理由"))
    submitted_by_org = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("提出部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    submitted_by = models.CharField(_("提出人"), max_length=150)
    submitted_at = models.DateTimeField(_("提出时间"))
    due_on = models.DateField(_("办理期限"), null=True, blank=True)
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    decided_by_org = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("处理部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_by = models.CharField(_("处理人"), max_length=150, blank=True)
    decided_at = models.DateTimeField(_("处理时间"), null=True, blank=True)
    decision_note = models.TextField(_("处理意见"), blank=True)

    class Meta:
        verbose_name = _("纠错申请")
        verbose_name_plural = _("纠错申请")

    def __str__(self) -> str:
        return f"{self.record_id}.{self.field} ({self.status})"


class Delegation(models.Model):
    """An authority's delegation of writing a field (or all its fields: ``*``) to another department."""

    registry = models.ForeignKey(
        Registry, verbose_name=_("信息库"), on_delete=models.CASCADE, related_name="delegations"
    )
    field = models.CharField(_("字段"), max_length=64, default="*")
    authority = models.CharField(_("权威来源"), max_length=32, help_text=_("部门类别或部门编码"))
    delegate = models.ForeignKey(
        "kernel.Organization", verbose_name=_("受托部门"), on_delete=models.CASCADE, related_name="+"
    )
    valid_until = models.DateTimeField(_("有效期至"), null=True, blank=True)
    created_by = models.CharField(_("授权人"), max_length=150)
    created_at = models.DateTimeField(_("授权时间"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("写入委托")
        verbose_name_plural = _("写入委托")

    def __str__(self) -> str:
        return f"{self.registry.code}.{self.field} → {self.delegate}"


class AccessLog(models.Model):
    """One read of a record: who (department, person or API client), why, which fields — for 谁查了我的数据."""

    # Written for every read (through the journal on the API fast path): only the indexes that the
    # "who read my data" and record pages use are kept, each one an insert cost, and no foreign-key
    # constraints in the database — checking three references per row doubled the cost of ingesting
    # the journal. Rows are only ever written from reads of existing records (ADR 0013); Django still
    # deletes a record's rows with it.
    registry = models.ForeignKey(
        Registry,
        verbose_name=_("信息库"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    record = models.ForeignKey(
        Record, verbose_name=_("记录"), on_delete=models.CASCADE, related_name="reads", db_constraint=False
    )
    subject_digest = models.CharField(_("主体索引"), max_length=64, blank=True)
    reader_org = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("查询部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    reader = models.CharField(_("查询人/客户端"), max_length=150)
    channel = models.CharField(_("渠道"), max_length=16, default="web")
    purpose = models.CharField(_("用途"), max_length=255, blank=True)
    fields = models.JSONField(_("字段"), default=list)
    at = models.DateTimeField(_("时间"), db_index=True)

    class Meta:
        verbose_name = _("查询记录")
        verbose_name_plural = _("查询记录")
        indexes = [models.Index(fields=["subject_digest", "at"], name="registry_access_subject_at")]

    def __str__(self) -> str:
        return f"{self.reader} → {self.record_id}"


class AccessJournalFile(models.Model):
    """An access-log journal file already moved into AccessLog, so a crash can never ingest it twice."""

    name = models.CharField(_("文件名"), max_length=128, unique=True)
    rows = models.PositiveIntegerField(_("行数"), default=0)
    skipped = models.PositiveIntegerField(_("跳过的不完整行"), default=0)
    ingested_at = models.DateTimeField(_("导入时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("查询日志文件")
        verbose_name_plural = _("查询日志文件")

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
