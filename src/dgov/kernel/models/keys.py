"""Kernel models: the key registry (密钥登记) — SM2 signing keys and SM4 data keys with key ids.

Secret material is never stored in the clear: ``wrapped`` holds the SM4-GCM encryption of the
private key (PKCS#8 DER) or data key under the master key-encryption key, with the key id and
purpose as associated data, so a wrapped blob copied onto another row does not unwrap. The
operations (creation on first use, rotation, revocation, the in-process cache) live in
``dgov.kernel.services.keys``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

__all__ = ["KeyRecord"]


class KeyRecord(models.Model):
    """One key of the registry: an SM2 key pair or an SM4 data key, identified by its key id (kid)."""

    class Algorithm(models.TextChoices):
        SM2 = "sm2", _("SM2 签名密钥")
        SM4 = "sm4", _("SM4 数据密钥")

    class Status(models.TextChoices):
        ACTIVE = "active", _("使用中")
        RETIRED = "retired", _("已轮换")
        REVOKED = "revoked", _("已吊销")

    kid = models.CharField(_("密钥标识"), max_length=80, unique=True)
    purpose = models.CharField(_("用途"), max_length=48, db_index=True)
    algorithm = models.CharField(_("算法"), max_length=8, choices=Algorithm.choices)
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    public_pem = models.TextField(_("公钥（PEM）"), blank=True)
    # SM4-GCM(KEK, secret, aad = kid|purpose) as nonce || ciphertext || tag.
    wrapped = models.BinaryField(_("封装的密钥"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    retired_at = models.DateTimeField(_("停用时间"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("密钥")
        verbose_name_plural = _("密钥")
        ordering = ["purpose", "-created_at", "-id"]
        constraints = [
            # At most one active key per purpose: concurrent first use cannot create two.
            models.UniqueConstraint(
                fields=["purpose"],
                condition=Q(status="active"),
                name="kernel_keyrecord_one_active_per_purpose",
            ),
        ]

    def __str__(self) -> str:
        return self.kid
