"""E-licences (电子证照): the licence-type catalogue, issued licences, their credentials and status.

Concepts follow GB/T 36901–36906: a :class:`LicenceType` is an entry of the licence catalogue
(证照目录) — its data items, validity rule, printable layout and sharing level; a :class:`Licence`
is one issued licence with a GB/T 36904-style identifier (证照标识), its holder, data and validity.
Every issuance or variation of a licence produces a :class:`Credential`: the W3C Verifiable
Credential 2.0 secured as JOSE (ES256, or SM2 as a profile) signed with the issuing department's
:class:`IssuerKey`, with its own entry in a :class:`StatusList` (Bitstring Status List) so an older
version can be invalidated without touching the licence. :class:`LicenceEvent` keeps the history
(issued, varied, renewed, suspended, resumed, revoked).

Holder identity and licence data are personal data: sealed with SM4-GCM
(:class:`dgov.kernel.fields.EncryptedTextField`), holders found by blind index.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from dgov.kernel.fields import EncryptedTextField


class HolderKind(models.TextChoices):
    """Who holds a licence type: a natural person or an enterprise / other organization."""

    PERSON = "person", _("自然人")
    ENTERPRISE = "enterprise", _("法人和其他组织")


class LicenceType(models.Model):
    """An entry of the licence catalogue (证照目录): what a licence of this type carries and who issues it."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("启用")
        RETIRED = "retired", _("停用")

    code = models.CharField(
        _("证照类型代码"),
        max_length=32,
        unique=True,
        help_text=_("主管部门统一社会信用代码加三位序号，如 11100000000013127D001"),
    )
    name = models.CharField(_("证照名称"), max_length=100)
    name_en = models.CharField(_("英文名称"), max_length=200, blank=True)
    description = models.TextField(_("说明"), blank=True)
    department = models.ForeignKey(
        "kernel.Organization", verbose_name=_("主管部门"), on_delete=models.PROTECT, related_name="+"
    )
    issuer_kind = models.CharField(
        _("签发机构类型"),
        max_length=32,
        help_text=_("该类型部门（任一层级）可签发；为空时仅主管部门可签发"),
        blank=True,
    )
    holder_kind = models.CharField(_("持证主体类型"), max_length=12, choices=HolderKind.choices)
    items = models.JSONField(
        _("数据项"),
        default=list,
        help_text=_("[{name, label, label_en, type, required, sensitivity, choices, max_length}]"),
    )
    validity = models.JSONField(
        _("有效期规则"), default=dict, blank=True, help_text=_('{"years": 10} / {"months": 6} / {} 长期有效')
    )
    layout = models.JSONField(
        _("版式"), default=dict, blank=True, help_text=_("可打印版式：尺寸、标题、数据项位置、印章与二维码位置")
    )
    sharing_type = models.CharField(_("共享类型"), max_length=16, help_text=_("无条件/有条件/不予共享（同数据目录）"))
    version = models.PositiveIntegerField(_("版本"), default=1)
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.CharField(_("创建人"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("证照类型")
        verbose_name_plural = _("证照类型")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class IssuerKey(models.Model):
    """A credential signing key pair of an issuing department (ES256 or SM2); retired keys still verify."""

    class Alg(models.TextChoices):
        ES256 = "ES256", "ES256"
        SM2 = "SM2", "SM2"

    class Status(models.TextChoices):
        ACTIVE = "active", _("使用中")
        RETIRED = "retired", _("已轮换")
        REVOKED = "revoked", _("已吊销")

    organization = models.ForeignKey(
        "kernel.Organization", verbose_name=_("签发机构"), on_delete=models.PROTECT, related_name="+"
    )
    kid = models.CharField(_("密钥标识"), max_length=80, unique=True)
    alg = models.CharField(_("算法"), max_length=8, choices=Alg.choices)
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    public_jwk = models.JSONField(_("公钥（JWK）"))
    # SM4-GCM(master key, PKCS#8 DER, aad = "dgov-licence-key|kid|alg") as nonce || ciphertext || tag.
    wrapped = models.BinaryField(_("封装的私钥"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    retired_at = models.DateTimeField(_("停用时间"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("签发密钥")
        verbose_name_plural = _("签发密钥")
        ordering = ["organization", "-created_at"]
        indexes = [models.Index(fields=["organization", "alg", "status"], name="licenses_key_active")]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "alg"], condition=models.Q(status="active"), name="licenses_one_active_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.alg}, {self.status})"


class StatusList(models.Model):
    """A Bitstring Status List (W3C) of one purpose: one bit per credential, random index assignment.

    ``bits`` is the working list (changed at once when a licence is suspended or revoked);
    ``published`` is the signed status-list credential verifiers fetch, re-issued in batches by
    the worker (``published_at``/``published_version``), so a change reaches verifiers within the
    publication interval.
    """

    class Purpose(models.TextChoices):
        REVOCATION = "revocation", _("撤销")
        SUSPENSION = "suspension", _("暂停")

    organization = models.ForeignKey(
        "kernel.Organization", verbose_name=_("签发机构"), on_delete=models.PROTECT, related_name="+"
    )
    purpose = models.CharField(_("用途"), max_length=12, choices=Purpose.choices)
    size = models.PositiveIntegerField(_("容量（位）"), default=131072)
    used = models.PositiveIntegerField(_("已分配"), default=0)
    bits = models.BinaryField(_("位串"))
    dirty = models.BooleanField(_("待发布"), default=False)
    published = models.TextField(_("已发布的状态列表凭证"), blank=True)
    published_version = models.PositiveIntegerField(_("发布版本"), default=0)
    published_at = models.DateTimeField(_("发布时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("状态列表")
        verbose_name_plural = _("状态列表")
        ordering = ["organization", "purpose", "id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.organization_id} {self.purpose} {self.used}/{self.size}"


class Licence(models.Model):
    """One issued licence (电子证照): identifier, type, issuer, holder, data, validity and status."""

    class Status(models.TextChoices):
        VALID = "valid", _("有效")
        SUSPENDED = "suspended", _("暂停")
        REVOKED = "revoked", _("已撤销")

    identifier = models.CharField(_("证照标识"), max_length=128, unique=True)
    licence_type = models.ForeignKey(
        LicenceType, verbose_name=_("证照类型"), on_delete=models.PROTECT, related_name="licences"
    )
    type_version = models.PositiveIntegerField(_("类型版本"), default=1)
    issuer = models.ForeignKey(
        "kernel.Organization", verbose_name=_("签发机构"), on_delete=models.PROTECT, related_name="+"
    )
    number = models.CharField(_("证照编号"), max_length=64, help_text=_("证面编号，签发机构内唯一"))
    holder_kind = models.CharField(_("持证主体类型"), max_length=12, choices=HolderKind.choices)
    holder_name = EncryptedTextField(_("持证主体名称"))
    holder_id = EncryptedTextField(_("持证主体证件号码"), help_text=_("公民身份号码或统一社会信用代码"))
    holder_index = models.CharField(_("持证主体盲索引"), max_length=64, db_index=True)
    data = EncryptedTextField(_("证照数据"), help_text=_("JSON：{数据项: 值}，SM4-GCM 加密存储"))
    division_code = models.CharField(_("行政区划代码"), max_length=12, blank=True)
    issued_at = models.DateTimeField(_("签发时间"))
    valid_from = models.DateField(_("有效期起始"))
    valid_until = models.DateField(_("有效期截止"), null=True, blank=True, help_text=_("长期有效为空"))
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.VALID, db_index=True)
    status_reason = models.CharField(_("状态原因"), max_length=300, blank=True)
    version = models.PositiveIntegerField(_("版本"), default=1, help_text=_("每次变更、延续加一"))
    source = models.CharField(
        _("来源"), max_length=64, blank=True, help_text=_("签发渠道：page/api/import/service:<办件号>")
    )
    issued_by = models.CharField(_("签发人"), max_length=150, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("电子证照")
        verbose_name_plural = _("电子证照")
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["issuer", "licence_type", "number"], name="licenses_number_unique")
        ]
        indexes = [models.Index(fields=["licence_type", "status"], name="licenses_type_status")]

    def __str__(self) -> str:
        return self.identifier


class Credential(models.Model):
    """One signed form of a licence version: a VC 2.0 secured as JOSE, with its status-list entries."""

    licence = models.ForeignKey(Licence, verbose_name=_("证照"), on_delete=models.CASCADE, related_name="credentials")
    version = models.PositiveIntegerField(_("证照版本"))
    credential_id = models.CharField(_("凭证标识"), max_length=200, unique=True)
    key = models.ForeignKey(IssuerKey, verbose_name=_("签名密钥"), on_delete=models.PROTECT, related_name="+")
    jws = models.TextField(_("凭证（VC-JOSE）"))
    revocation_list = models.ForeignKey(
        StatusList, verbose_name=_("撤销状态列表"), on_delete=models.PROTECT, related_name="+"
    )
    revocation_index = models.PositiveIntegerField(_("撤销位序"))
    suspension_list = models.ForeignKey(
        StatusList, verbose_name=_("暂停状态列表"), on_delete=models.PROTECT, related_name="+"
    )
    suspension_index = models.PositiveIntegerField(_("暂停位序"))
    issued_at = models.DateTimeField(_("签发时间"))
    superseded_at = models.DateTimeField(_("被取代时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("证照凭证")
        verbose_name_plural = _("证照凭证")
        ordering = ["licence", "version"]
        constraints = [
            models.UniqueConstraint(fields=["licence", "version"], name="licenses_credential_version"),
            models.UniqueConstraint(fields=["revocation_list", "revocation_index"], name="licenses_revocation_slot"),
            models.UniqueConstraint(fields=["suspension_list", "suspension_index"], name="licenses_suspension_slot"),
        ]

    def __str__(self) -> str:
        return self.credential_id


class LicenceEvent(models.Model):
    """One step of a licence's history: issued, varied, renewed, suspended, resumed, revoked."""

    class Action(models.TextChoices):
        ISSUE = "issue", _("签发")
        VARY = "vary", _("变更")
        RENEW = "renew", _("延续")
        SUSPEND = "suspend", _("暂停")
        RESUME = "resume", _("恢复")
        REVOKE = "revoke", _("撤销")

    licence = models.ForeignKey(Licence, verbose_name=_("证照"), on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(_("时间"))
    actor = models.CharField(_("操作人"), max_length=150, blank=True)
    action = models.CharField(_("操作"), max_length=10, choices=Action.choices)
    version = models.PositiveIntegerField(_("证照版本"))
    reason = models.CharField(_("原因"), max_length=300, blank=True)
    changed = models.JSONField(_("变更的数据项"), default=list, blank=True)
    previous = EncryptedTextField(_("变更前的值"), blank=True, help_text=_("JSON，SM4-GCM 加密存储"))

    class Meta:
        verbose_name = _("证照记录")
        verbose_name_plural = _("证照记录")
        ordering = ["licence", "at", "id"]

    def __str__(self) -> str:
        return f"{self.licence_id} {self.action} v{self.version}"


class PdfCertificate(models.Model):
    """An X.509 certificate of the PDF signing chain (PAdES): the instance's licence CA or a department's seal.

    The licence CA (``ca``, "dgov licence CA") is created on first use, one active per instance, its
    P-256 private key wrapped with SM4-GCM under the master key (associated data
    ``dgov-licence-ca|<fingerprint>``). It certifies each issuing department's ES256
    :class:`IssuerKey` (``signer``), whose private key stays in that row. Retired certificates
    still verify the PDFs they signed; a revoked key fails them (see :mod:`dgov.licenses.pdfsign`).
    """

    class Kind(models.TextChoices):
        CA = "ca", _("根证书")
        SIGNER = "signer", _("签章证书")

    class Status(models.TextChoices):
        ACTIVE = "active", _("使用中")
        RETIRED = "retired", _("已停用")

    kind = models.CharField(_("类别"), max_length=8, choices=Kind.choices)
    key = models.ForeignKey(
        IssuerKey, verbose_name=_("签发密钥"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ca = models.ForeignKey(
        "self", verbose_name=_("签发该证书的根证书"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    subject = models.CharField(_("主题"), max_length=300)
    serial = models.CharField(_("序列号"), max_length=40)
    fingerprint = models.CharField(_("SHA-256 指纹"), max_length=64, unique=True)
    certificate = models.TextField(_("证书（PEM）"))
    # CA only: SM4-GCM(master key, PKCS#8 DER, aad) as nonce || ciphertext || tag.
    wrapped = models.BinaryField(_("封装的私钥"), blank=True, default=b"")
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    not_before = models.DateTimeField(_("生效时间"))
    not_after = models.DateTimeField(_("失效时间"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("签章证书")
        verbose_name_plural = _("签章证书")
        ordering = ["kind", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(kind="ca", status="active"), name="licenses_one_active_pdf_ca"
            ),
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(kind="signer", status="active"), name="licenses_one_signer_cert"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} ({self.status})"


class TrustedIssuer(models.Model):
    """An issuer of another dgov instance whose licences verify here (互认), from that instance's trust list.

    Each instance publishes a trust list of its own issuers (issuer id, name, USCC, JWK Set, the
    licence types it issues), signed with its federation key. A peer (``exchange.Peer``, pinned
    SM2 keys) is refreshed by the worker; its entries are replaced as a whole by each newer list.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("互认中")
        REMOVED = "removed", _("已移除")

    peer = models.ForeignKey("exchange.Peer", verbose_name=_("来源平台"), on_delete=models.PROTECT, related_name="+")
    issuer_id = models.CharField(_("签发者标识"), max_length=300, unique=True)
    name = models.CharField(_("签发机构名称"), max_length=200)
    uscc = models.CharField(_("统一社会信用代码"), max_length=18)
    jwks = models.JSONField(_("公钥集（JWKS）"), default=dict)
    licence_types = models.JSONField(_("互认的证照类型"), default=list, blank=True)
    list_version = models.PositiveIntegerField(_("信任列表版本"), default=0)
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    fetched_at = models.DateTimeField(_("获取时间"))
    valid_until = models.DateTimeField(_("有效期至"), null=True, blank=True)

    class Meta:
        verbose_name = _("互认签发者")
        verbose_name_plural = _("互认签发者")
        ordering = ["peer", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.issuer_id})"


class RemoteStatusList(models.Model):
    """A cached status-list credential of another instance's issuer, fetched for verification."""

    url = models.CharField(_("地址"), max_length=500, unique=True)
    issuer = models.ForeignKey(
        TrustedIssuer, verbose_name=_("签发者"), on_delete=models.CASCADE, related_name="status_lists"
    )
    published = models.TextField(_("状态列表凭证"))
    fetched_at = models.DateTimeField(_("获取时间"))
    ttl_seconds = models.PositiveIntegerField(_("缓存秒数"), default=300)

    class Meta:
        verbose_name = _("外部状态列表")
        verbose_name_plural = _("外部状态列表")

    def __str__(self) -> str:
        return self.url


class LicenceConsent(models.Model):
    """用证授权: the holder lets a department read one licence, for a purpose, for a period; revocable."""

    licence = models.ForeignKey(Licence, verbose_name=_("证照"), on_delete=models.CASCADE, related_name="consents")
    holder_index = models.CharField(_("持证主体盲索引"), max_length=64, db_index=True)
    granted_by = models.ForeignKey(
        "identity.User", verbose_name=_("授权人"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    grantee = models.ForeignKey(
        "kernel.Organization", verbose_name=_("被授权部门"), on_delete=models.PROTECT, related_name="+"
    )
    service_code = models.CharField(_("服务事项编码"), max_length=64, blank=True)
    purpose = models.CharField(_("用途"), max_length=300)
    valid_from = models.DateTimeField(_("授权起始"))
    valid_until = models.DateTimeField(_("授权截止"))
    revoked_at = models.DateTimeField(_("撤回时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("用证授权")
        verbose_name_plural = _("用证授权")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["grantee", "licence"], name="licenses_consent_grantee")]

    def __str__(self) -> str:
        return f"{self.licence_id} → {self.grantee_id} ({self.purpose})"


class LicenceUse(models.Model):
    """One use of a licence (用证记录): which department read or checked it, how, for what; shown to the holder."""

    class Channel(models.TextChoices):
        EXCHANGE = "exchange", _("共享交换")
        API = "api", _("接口")
        PAGE = "page", _("页面")
        VERIFY = "verify", _("核验")

    licence = models.ForeignKey(Licence, verbose_name=_("证照"), on_delete=models.CASCADE, related_name="uses")
    consent = models.ForeignKey(
        LicenceConsent, verbose_name=_("授权"), null=True, blank=True, on_delete=models.SET_NULL, related_name="uses"
    )
    organization = models.ForeignKey(
        "kernel.Organization",
        verbose_name=_("用证部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor = models.CharField(_("用证人"), max_length=150, blank=True)
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    purpose = models.CharField(_("用途"), max_length=300, blank=True)
    at = models.DateTimeField(_("时间"), db_index=True)

    class Meta:
        verbose_name = _("用证记录")
        verbose_name_plural = _("用证记录")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["licence", "at"], name="licenses_use_licence")]

    def __str__(self) -> str:
        return f"{self.licence_id} {self.channel} {self.at:%Y-%m-%d}"
