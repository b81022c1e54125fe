"""Materials of an application (申请材料): sealed files, e-licences in place of paper, shared data (免提交).

A file — uploaded online or scanned at a window — is checked (type, size), sealed with SM4-GCM
under the platform's "services.material" data key (the key id is the AAD, as for encrypted fields)
and stored in :class:`~dgov.services.models.ApplicationMaterial` with its SHA-256, so the bytes
are never at rest in clear and a tampered blob fails to open. A material replaced by an e-licence
records which licence; one replaced by base-library data records the registry it comes from.
Every addition writes an application event (``material_added``) and an audit record.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from dgov.kernel.crypto import sm4_gcm_decrypt, sm4_gcm_encrypt
from dgov.kernel.services import audit
from dgov.kernel.services import keys as key_registry
from dgov.services import applications
from dgov.services.models import Application, ApplicationEvent, ApplicationMaterial, GuideMaterial

__all__ = [
    "ALLOWED_TYPES",
    "max_bytes",
    "add_file",
    "add_licence",
    "add_data",
    "file_bytes",
    "check_file",
    "material_field",
    "may_read",
    "read_file",
]

KEY_PURPOSE = "services.material"
#: Content types accepted for materials: scans and photos, PDF, OFD (the national layout format).
ALLOWED_TYPES = {
    "application/pdf": ".pdf",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "application/ofd": ".ofd",
}
_MAGIC = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/ofd": (b"PK\x03\x04",),
}


def max_bytes() -> int:
    """The largest material accepted (``SERVICES_MATERIAL_MAX_BYTES``, default 10 MiB)."""
    return int(getattr(settings, "SERVICES_MATERIAL_MAX_BYTES", 10 * 1024 * 1024))


def check_file(name: str, content_type: str, data: bytes) -> str:
    """Check a file before anything is stored (type, size, content): the content type, or ValidationError.

    Callers that take several files with other input in one go (一窗受理, the apply page) check them
    all first, so every problem is reported at once and nothing is half-written.
    """
    content_type = (content_type or "").split(";")[0].strip().lower()
    if content_type not in ALLOWED_TYPES:
        raise ValidationError({"file": [_("“%(name)s”：只接受 PDF、JPEG、PNG 或 OFD 文件。") % {"name": name}]})
    if not data:
        raise ValidationError({"file": [_("“%(name)s”：文件为空。") % {"name": name}]})
    if len(data) > max_bytes():
        raise ValidationError(
            {"file": [_("“%(name)s”：文件超过 %(mb)s MB。") % {"name": name, "mb": max_bytes() // (1024 * 1024)}]}
        )
    if not data.startswith(_MAGIC[content_type]):
        raise ValidationError({"file": [_("“%(name)s”：文件内容与类型不符。") % {"name": name}]})
    return content_type


def _seal(data: bytes) -> bytes:
    """``<kid>\\x00<SM4-GCM blob>`` under the active material key (kid as AAD)."""
    kid, key = key_registry.data_key(KEY_PURPOSE)
    return kid.encode() + b"\x00" + sm4_gcm_encrypt(key, data, kid.encode())


def file_bytes(material: ApplicationMaterial) -> bytes:
    """The file's bytes, opened and checked against the stored SHA-256 (CryptoError / ValueError if tampered)."""
    sealed = bytes(material.sealed_content or b"")
    kid, _sep, blob = sealed.partition(b"\x00")
    data = sm4_gcm_decrypt(key_registry.data_key_by_id(kid.decode()), blob, kid)
    if hashlib.sha256(data).hexdigest() != material.sha256:
        raise ValueError("material digest mismatch")
    return data


def material_field(material: GuideMaterial | int) -> str:
    """The form input and error key of a guide material's file (apply page and window): ``material_<id>``."""
    return f"material_{getattr(material, 'pk', material)}"


def _record(app: Application, row: ApplicationMaterial, *, actor) -> ApplicationMaterial:
    """Store the row, its event and audit record in one transaction."""
    with transaction.atomic():
        row.save()
        ApplicationEvent.objects.create(
            application=app,
            kind=ApplicationEvent.Kind.MATERIAL_ADDED,
            actor_label=applications._label(actor),
            channel=app.channel,
            detail={"material": row.name, "source": row.source},
        )
        audit.record(
            "services.material.add",
            actor=actor,
            target=app,
            detail={"material": row.name, "source": row.source, "sha256": row.sha256, "size": row.size},
        )
    return row


def add_file(
    app: Application,
    *,
    name: str,
    file_name: str,
    content_type: str,
    data: bytes,
    actor,
    source: str = ApplicationMaterial.Source.UPLOAD,
    material: GuideMaterial | None = None,
) -> ApplicationMaterial:
    """Seal and attach an uploaded or scanned file; ValidationError for a wrong type, size or content."""
    if source not in (
        ApplicationMaterial.Source.UPLOAD,
        ApplicationMaterial.Source.SCAN,
        ApplicationMaterial.Source.RESULT,
    ):
        raise ValidationError({"source": [_("未知的材料来源。")]})
    content_type = check_file(file_name or name, content_type, data)
    row = ApplicationMaterial(
        application=app,
        material=material,
        name=(name or (material.name if material else file_name))[:200],
        source=source,
        file_name=(file_name or "")[:200],
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        sealed_content=_seal(data),
        added_by=applications._label(actor),
    )
    return _record(app, row, actor=actor)


def add_licence(app: Application, licence, *, actor, material: GuideMaterial | None = None) -> ApplicationMaterial:
    """Attach an e-licence of the applicant in place of a paper material (可用电子证照)."""
    row = ApplicationMaterial(
        application=app,
        material=material,
        name=(material.name if material else str(licence.licence_type.name))[:200],
        source=ApplicationMaterial.Source.LICENCE,
        licence=licence,
        added_by=applications._label(actor),
    )
    return _record(app, row, actor=actor)


def add_data(app: Application, material: GuideMaterial, *, actor) -> ApplicationMaterial:
    """Record that base-library data stands in for a material (免提交); the department reads it when reviewing."""
    row = ApplicationMaterial(
        application=app,
        material=material,
        name=material.name[:200],
        source=ApplicationMaterial.Source.DATA,
        registry_code=material.registry_code,
        added_by=applications._label(actor),
    )
    return _record(app, row, actor=actor)


def may_read(app: Application, actor) -> bool:
    """Who may open an application's files: officials of its competent department, and its applicant or holder."""
    if not getattr(actor, "is_authenticated", False):
        return False
    if getattr(actor, "kind", "") == "official":
        return getattr(actor, "department_id", None) == app.department_id
    return applications.applications_of(actor).filter(pk=app.pk).exists()


def read_file(row: ApplicationMaterial, *, actor) -> bytes:
    """The bytes of a material file for someone who may read it (:func:`may_read`); every read is audited.

    PermissionDenied for anyone else, ValueError when the row holds no file; a tampered blob raises
    as :func:`file_bytes` does.
    """
    app = row.application
    if not may_read(app, actor):
        raise PermissionDenied(_("无权查看该材料。"))
    if not row.sealed_content:
        raise ValueError("material has no file")
    data = file_bytes(row)
    with transaction.atomic():
        audit.record(
            "services.material.read",
            actor=actor,
            target=app,
            detail={
                "material": row.pk,
                "name": row.name,
                "sha256": row.sha256,
                "as": "department" if getattr(actor, "kind", "") == "official" else "applicant",
            },
        )
    return data
