"""Sharing and exchange (共享交换): requests, per-item grants and the hash-chained exchange log.

A consumer department asks for items of a published catalogue resource with a
:class:`ShareRequest` (purpose, legal basis 法律依据, period). The decision — at once for
无条件共享, by the provider for 有条件共享 within a working-day deadline, refused for 不予共享 —
yields a :class:`Grant` that lists the granted items, each with its mode: ``full`` (the value is
returned) or ``verify`` (核验 only: yes/no answers, the value never leaves). The gateway checks the
live grants on every call and appends an :class:`ExchangeLogEntry` to an SM3 hash chain (head
:class:`ExchangeLogHead`) with SM2-signed :class:`ExchangeCheckpoint` rows. The format of the chain
and of the signed receipts is documented in ``dgov.exchange.log`` and docs/exchange.md.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dgov.kernel.fields import EncryptedTextField
from dgov.kernel.models.audit import AppendOnlyModel, ChainCheckpoint, ChainHead


class ItemMode(models.TextChoices):
    """How a granted item may be used."""

    FULL = "full", _("获取数据")
    VERIFY = "verify", _("仅核验")


class ShareRequest(models.Model):
    """A consumer department's request for items of a catalogue resource (共享申请)."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("待审批")
        GRANTED = "granted", _("已授权")
        REFUSED = "refused", _("已拒绝")
        WITHDRAWN = "withdrawn", _("已撤回")

    consumer = models.ForeignKey(
        "kernel.Organization", verbose_name=_("申请部门"), on_delete=models.PROTECT, related_name="+"
    )
    resource = models.ForeignKey(
        "catalog.InformationResource", verbose_name=_("信息资源"), on_delete=models.PROTECT, related_name="+"
    )
    # {item code: "full" | "verify"}
    items = models.JSONField(_("申请信息项"), default=dict)
    purpose = models.TextField(_("用途"))
    legal_basis = models.TextField(_("法律依据"))
    period_start = models.DateField(_("使用期限起"))
    period_end = models.DateField(_("使用期限止"))
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.SUBMITTED, db_index=True)
    sharing_type = models.CharField(_("适用共享类型"), max_length=16, help_text=_("所申请信息项中最严格的共享类型"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("申请人"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(_("申请时间"))
    due_on = models.DateField(_("审批期限"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("审批人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    reason = models.TextField(_("意见/原因"), blank=True)

    class Meta:
        verbose_name = _("共享申请")
        verbose_name_plural = _("共享申请")
        ordering = ["-submitted_at", "-id"]
        indexes = [models.Index(fields=["resource", "status"], name="exchange_request_res_status")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.resource_id} → {self.consumer_id} ({self.status})"


class Grant(models.Model):
    """The consumer's right to items of a resource for a period (共享授权), per item with its mode."""

    consumer = models.ForeignKey(
        "kernel.Organization", verbose_name=_("使用部门"), on_delete=models.PROTECT, related_name="+"
    )
    resource = models.ForeignKey(
        "catalog.InformationResource", verbose_name=_("信息资源"), on_delete=models.PROTECT, related_name="+"
    )
    request = models.OneToOneField(
        ShareRequest, verbose_name=_("共享申请"), on_delete=models.PROTECT, related_name="grant"
    )
    # {item code: "full" | "verify"}
    items = models.JSONField(_("授权信息项"), default=dict)
    valid_from = models.DateTimeField(_("生效时间"))
    valid_until = models.DateTimeField(_("失效时间"), db_index=True)
    granted_at = models.DateTimeField(_("授权时间"))
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("撤销人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoke_reason = models.TextField(_("撤销原因"), blank=True)
    expired_at = models.DateTimeField(_("到期处理时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("共享授权")
        verbose_name_plural = _("共享授权")
        ordering = ["-granted_at", "-id"]
        indexes = [models.Index(fields=["consumer", "resource"], name="exchange_grant_consumer_res")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.resource_id} → {self.consumer_id}"


class ExchangeLogEntry(AppendOnlyModel):
    """One gateway call (交换日志): who asked which items of which resource, for what, and the result.

    Plain values rather than foreign keys, so the log outlives departments, clients and grants.
    ``fields_json`` and ``records_json`` are canonical JSON text, hashed exactly as stored.
    """

    class Result(models.TextChoices):
        OK = "ok", _("成功")
        DENIED = "denied", _("拒绝")
        ERROR = "error", _("错误")

    seq = models.BigIntegerField(_("序号"), primary_key=True)
    at = models.DateTimeField(_("时间"), db_index=True)
    request_id = models.CharField(_("请求标识"), max_length=64, blank=True)
    operation = models.CharField(_("操作"), max_length=16)
    consumer_code = models.CharField(_("使用部门编码"), max_length=32, blank=True)
    client_id = models.CharField(_("调用客户端"), max_length=64, blank=True)
    provider_code = models.CharField(_("提供部门编码"), max_length=32, blank=True)
    resource_code = models.CharField(_("信息资源代码"), max_length=40, blank=True)
    fields_json = models.TextField(_("信息项"), default="[]")
    purpose = models.CharField(_("用途"), max_length=255, blank=True)
    records_json = models.TextField(_("记录标识"), default="[]")
    result = models.CharField(_("结果"), max_length=8, choices=Result.choices)
    code = models.CharField(_("结果代码"), max_length=32, blank=True)
    status = models.PositiveSmallIntegerField(_("HTTP 状态"), default=200)
    grant_id = models.BigIntegerField(_("授权编号"), null=True, blank=True)
    prev_hash = models.CharField(_("前一条哈希"), max_length=64)
    hash = models.CharField(_("SM3 哈希"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("交换日志")
        verbose_name_plural = _("交换日志")
        ordering = ["-seq"]
        # A department's log page and monitoring filter by its code on one side and a period of days.
        indexes = [
            models.Index(fields=["consumer_code", "at"], name="exchange_log_consumer_at"),
            models.Index(fields=["provider_code", "at"], name="exchange_log_provider_at"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.operation} {self.resource_code} {self.result}"

    @property
    def fields(self) -> list:
        """The items the call asked for (parsed)."""
        return json.loads(self.fields_json or "[]")

    @property
    def records(self) -> list:
        """The uids of the records the call touched (parsed)."""
        return json.loads(self.records_json or "[]")


class ExchangeLogHead(ChainHead):
    """The exchange log's head row; writers lock it to append."""

    class Meta:
        verbose_name = _("交换日志链头")
        verbose_name_plural = _("交换日志链头")


class ExchangeCheckpoint(ChainCheckpoint):
    """An SM2-signed statement that exchange-log entry ``seq`` has ``hash``."""

    class Meta(ChainCheckpoint.Meta):
        verbose_name = _("交换日志检查点")
        verbose_name_plural = _("交换日志检查点")


class RateBucket(models.Model):
    """A client's token bucket for the gateway's rate limit (shared by every web node through the database)."""

    client_id = models.CharField(_("客户端"), max_length=64, primary_key=True)
    tokens = models.FloatField(_("剩余令牌"))
    updated_at = models.DateTimeField(_("更新时间"))

    class Meta:
        verbose_name = _("限流桶")
        verbose_name_plural = _("限流桶")

    def __str__(self) -> str:
        return f"{self.client_id}: {self.tokens:.1f}"


class Subscription(models.Model):
    """A consumer department's subscription to changes of a resource (订阅), delivered as SM2-signed webhooks.

    Deliveries carry identifiers and the kind of change only (record uid, changed item codes among
    the granted ones), never values: the consumer reads values through the gateway, where the
    grant is checked and the read logged. ``grant`` is the grant that authorized the subscription;
    every event and every send re-checks the consumer's *live* grants on the resource.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("生效")
        PAUSED = "paused", _("已暂停")
        ENDED = "ended", _("已终止")

    consumer = models.ForeignKey(
        "kernel.Organization", verbose_name=_("订阅部门"), on_delete=models.PROTECT, related_name="+"
    )
    resource = models.ForeignKey(
        "catalog.InformationResource", verbose_name=_("信息资源"), on_delete=models.PROTECT, related_name="+"
    )
    grant = models.ForeignKey(
        Grant, verbose_name=_("依据的共享授权"), on_delete=models.PROTECT, related_name="subscriptions"
    )
    # The registry the resource's items are linked to (the worker's match on record events).
    registry_code = models.CharField(_("信息库编码"), max_length=64)
    callback_url = models.URLField(_("回调地址"), max_length=1000)
    description = models.CharField(_("说明"), max_length=200, blank=True)
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(_("状态原因"), max_length=300, blank=True)
    consecutive_failures = models.PositiveIntegerField(_("连续失败次数"), default=0)
    created_by = models.CharField(_("创建人"), max_length=150)
    created_at = models.DateTimeField(_("创建时间"))
    updated_at = models.DateTimeField(_("更新时间"))

    class Meta:
        verbose_name = _("变更订阅")
        verbose_name_plural = _("变更订阅")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["registry_code", "status"], name="exchange_sub_registry_status"),
            models.Index(fields=["consumer", "status"], name="exchange_sub_consumer_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.resource_id} → {self.consumer_id} ({self.status})"


class Delivery(models.Model):
    """One webhook of a subscription (推送记录): the signed payload, its attempts and their outcome."""

    class State(models.TextChoices):
        PENDING = "pending", _("待推送")
        DELIVERED = "delivered", _("已送达")
        FAILED = "failed", _("失败待重试")
        DEAD = "dead", _("已放弃")

    uid = models.UUIDField(_("推送标识"), unique=True, editable=False)
    subscription = models.ForeignKey(
        Subscription, verbose_name=_("订阅"), on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.BigIntegerField(_("事件编号"))
    event_type = models.CharField(_("变更类型"), max_length=32)
    # The webhook body without the per-attempt parts; never personal values.
    payload = models.JSONField(_("推送内容"), default=dict)
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    next_attempt_at = models.DateTimeField(_("下次推送时间"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("最近推送时间"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("最近 HTTP 状态"), null=True, blank=True)
    last_error = models.CharField(_("最近错误"), max_length=300, blank=True)
    delivered_at = models.DateTimeField(_("送达时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"))

    class Meta:
        verbose_name = _("推送记录")
        verbose_name_plural = _("推送记录")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event_id"], name="exchange_delivery_sub_event_uniq")
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="exchange_delivery_due"),
            models.Index(fields=["subscription", "state", "created_at"], name="exchange_delivery_search"),
        ]

    def __str__(self) -> str:
        return f"{self.uid} {self.event_type} ({self.state})"


class DataService(models.Model):
    """A provider department's own HTTP service behind a catalogue resource (部门数据服务), proxied by the gateway.

    The gateway forwards granted reads and verifications of a resource whose items are not linked
    to a registry to ``endpoint_url`` (SM2-signed by the platform, optionally with a bearer
    ``credential``), keeps only the granted items of the answer and logs the call. One service per
    resource; ``suspended`` stops the proxying without forgetting the registration. The contract
    the service implements is in docs/exchange.md ("Department data services").
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("生效")
        SUSPENDED = "suspended", _("已暂停")

    resource = models.ForeignKey(
        "catalog.InformationResource", verbose_name=_("信息资源"), on_delete=models.PROTECT, related_name="+"
    )
    provider = models.ForeignKey(
        "kernel.Organization", verbose_name=_("提供部门"), on_delete=models.PROTECT, related_name="+"
    )
    endpoint_url = models.URLField(_("服务地址"), max_length=1000)
    description = models.CharField(_("说明"), max_length=200, blank=True)
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(_("状态原因"), max_length=300, blank=True)
    timeout = models.PositiveSmallIntegerField(_("超时（秒）"), default=10)
    # The bearer secret dgov presents to the service: it must be sent, so it is encrypted (not
    # hashed), under its own key purpose; it is never shown again after it is set.
    credential = EncryptedTextField(_("访问凭证"), blank=True, purpose="exchange.dataservice", editable=False)
    last_check_at = models.DateTimeField(_("最近检测时间"), null=True, blank=True)
    last_check_ok = models.BooleanField(_("最近检测是否正常"), null=True, blank=True)
    last_check_code = models.CharField(_("最近检测结果"), max_length=32, blank=True)
    created_by = models.CharField(_("登记人"), max_length=150)
    created_at = models.DateTimeField(_("登记时间"))
    updated_by = models.CharField(_("更新人"), max_length=150)
    updated_at = models.DateTimeField(_("更新时间"))

    class Meta:
        verbose_name = _("部门数据服务")
        verbose_name_plural = _("部门数据服务")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["resource"], name="exchange_dataservice_resource_uniq")]
        indexes = [models.Index(fields=["provider", "status"], name="exchange_dataservice_provider")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.resource_id} ({self.status})"

    @property
    def has_credential(self) -> bool:
        """Whether a bearer secret is configured (the secret itself is never shown)."""
        return bool(self.credential)


# --- Federation (级联): other dgov instances, their catalogues, requests filed with them -------------


class Peer(models.Model):
    """Another dgov instance this one exchanges with (级联对端): its code, address and pinned SM2 keys.

    ``keys`` pins the peer's public keys (``[{"kid", "public_key"}]``): a signed request or answer
    verifies only under a pinned key. Departments of the peer that file requests here are
    represented by local *mirror* organizations (code ``<peer code>:<department code>``, kind
    ``PEER``) placed on ``division``.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("启用")
        SUSPENDED = "suspended", _("已暂停")

    code = models.CharField(_("对端编码"), max_length=16, unique=True, help_text=_("对端平台的级联编码"))
    name = models.CharField(_("对端名称"), max_length=128)
    base_url = models.URLField(_("对端地址"), max_length=500)
    keys = models.JSONField(_("固定的公钥"), default=list)
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(_("状态原因"), max_length=300, blank=True)
    division = models.ForeignKey(
        "kernel.Division",
        verbose_name=_("镜像部门所在区划"),
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("对端部门在本平台的镜像组织登记在该区划"),
    )
    created_by = models.CharField(_("创建人"), max_length=150)
    created_at = models.DateTimeField(_("创建时间"))
    updated_at = models.DateTimeField(_("更新时间"))
    last_sync_at = models.DateTimeField(_("最近同步时间"), null=True, blank=True)
    last_sync_ok = models.BooleanField(_("最近同步是否成功"), null=True, blank=True)
    last_sync_code = models.CharField(_("最近同步结果"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("级联对端")
        verbose_name_plural = _("级联对端")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class PeerNonce(models.Model):
    """A nonce a peer has used in a signed request (replay protection); purged after twice the clock window."""

    peer = models.ForeignKey(Peer, verbose_name=_("对端"), on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(_("随机数"), max_length=64)
    seen_at = models.DateTimeField(_("收到时间"), db_index=True)

    class Meta:
        verbose_name = _("级联请求随机数")
        verbose_name_plural = _("级联请求随机数")
        constraints = [models.UniqueConstraint(fields=["peer", "nonce"], name="exchange_peernonce_uniq")]

    def __str__(self) -> str:
        return f"{self.peer_id}:{self.nonce}"


class RemoteResource(models.Model):
    """A resource of a peer's published catalogue (跨级目录), as last pulled from it; metadata only, no data."""

    peer = models.ForeignKey(Peer, verbose_name=_("对端"), on_delete=models.CASCADE, related_name="resources")
    code = models.CharField(_("信息资源代码"), max_length=40)
    name = models.CharField(_("信息资源名称"), max_length=200)
    provider_code = models.CharField(_("提供部门编码"), max_length=32)
    provider_name = models.CharField(_("提供部门"), max_length=128)
    sharing_type = models.CharField(_("共享类型"), max_length=16)
    sharing_conditions = models.TextField(_("共享条件"), blank=True)
    summary = models.TextField(_("摘要"), blank=True)
    # [{"code", "name", "data_type", "sharing_type"}]: the items the peer's gateway serves.
    items = models.JSONField(_("信息项"), default=list)
    version = models.PositiveIntegerField(_("版本"), default=1)
    fetched_at = models.DateTimeField(_("同步时间"))
    withdrawn_at = models.DateTimeField(_("对端撤下时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("跨级目录资源")
        verbose_name_plural = _("跨级目录资源")
        ordering = ["peer", "code"]
        constraints = [models.UniqueConstraint(fields=["peer", "code"], name="exchange_remoteresource_uniq")]

    def __str__(self) -> str:
        return f"{self.peer_id}:{self.code} {self.name}"

    @property
    def url_key(self) -> str:
        """The code as URLs write it (``/`` → ``-``)."""
        return self.code.replace("/", "-", 1)


class RemoteShareRequest(models.Model):
    """A local department's share request filed with a peer (跨级共享申请); its status is polled from the peer."""

    consumer = models.ForeignKey(
        "kernel.Organization", verbose_name=_("申请部门"), on_delete=models.PROTECT, related_name="+"
    )
    peer = models.ForeignKey(Peer, verbose_name=_("对端"), on_delete=models.PROTECT, related_name="requests")
    resource_code = models.CharField(_("信息资源代码"), max_length=40)
    resource_name = models.CharField(_("信息资源名称"), max_length=200)
    provider_code = models.CharField(_("提供部门编码"), max_length=32)
    provider_name = models.CharField(_("提供部门"), max_length=128)
    # {item code: "full" | "verify"}
    items = models.JSONField(_("申请信息项"), default=dict)
    purpose = models.TextField(_("用途"))
    legal_basis = models.TextField(_("法律依据"))
    period_start = models.DateField(_("使用期限起"))
    period_end = models.DateField(_("使用期限止"))
    # The ShareRequest's id and status at the provider's instance.
    remote_id = models.BigIntegerField(_("对端申请编号"))
    status = models.CharField(_("状态"), max_length=12, choices=ShareRequest.Status.choices)
    reason = models.TextField(_("意见/原因"), blank=True)
    due_on = models.DateField(_("审批期限"), null=True, blank=True)
    # The provider's grant as last seen: {"items", "valid_from", "valid_until", "state"} or {}.
    grant = models.JSONField(_("授权"), default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("申请人"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(_("申请时间"))
    decided_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    synced_at = models.DateTimeField(_("状态同步时间"))

    class Meta:
        verbose_name = _("跨级共享申请")
        verbose_name_plural = _("跨级共享申请")
        ordering = ["-submitted_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["peer", "remote_id"], name="exchange_remoterequest_uniq")]
        indexes = [models.Index(fields=["consumer", "peer", "resource_code"], name="exchange_remotereq_consumer")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.peer_id}:{self.resource_code} → {self.consumer_id} ({self.status})"
