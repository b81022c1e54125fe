"""Who sees which licences (证照查询范围), the search, and the audited, masked view of one licence.

Officials and API clients see the licences their own department issued; officials and clients of
the provincial data administration (大数据局, kind ``DSJ``, provincial level), platform
administrators and system actors see every licence. Everyone else sees none. A licence outside
the caller's scope is refused (403) and the refusal is audited.

Holder data is masked for display (names of persons, ID numbers, items declared ``personal``);
opening a licence whose holder is a person or whose type has personal items is audited
(``licenses.licence.view``), as is downloading its credential, which carries the data in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from dgov.kernel.masking import mask_id_number, mask_name
from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.kernel.validators import is_valid_resident_id
from dgov.licenses import credentials, services
from dgov.licenses.models import Credential, HolderKind, Licence, LicenceEvent, LicenceType
from dgov.registry.services import DATA_ADMIN_KIND, department_of, is_admin

__all__ = [
    "LicenceView",
    "find_licence",
    "is_provincial_data_admin",
    "issuable_types",
    "labelled_items",
    "may_view",
    "refuse_view",
    "search",
    "sees_all",
    "view_licence",
    "visible_licences",
]

SEARCH_LIMIT = 500


def _is_system(actor) -> bool:
    """The CLI or another system actor (a ``kind:label`` string)."""
    return isinstance(actor, str)


def sees_all(actor) -> bool:
    """System actors, platform administrators and the provincial data administration see every licence."""
    if _is_system(actor) or is_admin(actor):
        return True
    return is_provincial_data_admin(department_of(actor))


def is_provincial_data_admin(department) -> bool:
    """Whether ``department`` is the active provincial data administration (省大数据局)."""
    return bool(
        department is not None
        and department.is_active
        and department.kind == DATA_ADMIN_KIND
        and department.level == Organization.Level.PROVINCE
    )


def _department(actor) -> Organization | None:
    """The active department of an official or API client."""
    department = department_of(actor)
    return department if department is not None and department.is_active else None


def visible_licences(actor) -> QuerySet[Licence]:
    """The licences ``actor`` may see (type and issuer loaded), newest first."""
    queryset = Licence.objects.select_related("licence_type", "issuer")
    if sees_all(actor):
        return queryset
    department = _department(actor)
    if department is None:
        return queryset.none()
    return queryset.filter(issuer=department)


def may_view(actor, licence: Licence) -> bool:
    """Whether ``actor`` may see ``licence``."""
    if sees_all(actor):
        return True
    department = _department(actor)
    return department is not None and licence.issuer_id == department.pk


def refuse_view(actor, licence: Licence, *, action: str = "licenses.licence.view") -> PermissionDenied:
    """Audit a refused look at another department's licence and return the exception to raise."""
    with transaction.atomic():
        audit.record(
            action,
            actor=actor,
            target=licence,
            outcome="denied",
            detail={"identifier": licence.identifier, "reason": "another department's licence"},
        )
    return PermissionDenied(_("无权查看其他部门签发的证照"))


def find_licence(identifier: str) -> Licence | None:
    """The licence with this identifier (type and issuer loaded), or None."""
    return (
        Licence.objects.select_related("licence_type", "licence_type__department", "issuer", "issuer__division")
        .filter(identifier=(identifier or "").strip())
        .first()
    )


def search(
    actor,
    *,
    identifier: str = "",
    number: str = "",
    holder_id: str = "",
    type_code: str = "",
    status: str = "",
    issuer_code: str = "",
) -> QuerySet[Licence]:
    """Licences in the actor's scope matching every given criterion (holder by blind index, exact otherwise)."""
    queryset = visible_licences(actor)
    if identifier.strip():
        queryset = queryset.filter(identifier=identifier.strip())
    if number.strip():
        queryset = queryset.filter(number=number.strip())
    if type_code.strip():
        queryset = queryset.filter(licence_type__code=type_code.strip().upper())
    if status.strip():
        queryset = queryset.filter(status=status.strip())
    if issuer_code.strip():
        queryset = queryset.filter(issuer__code=issuer_code.strip())
    if holder_id.strip():
        value = holder_id.strip().upper()
        digests = {services.holder_index(kind, value) for kind in HolderKind.values}
        queryset = queryset.filter(holder_index__in=digests)
    return queryset


def issuable_types(actor) -> list[LicenceType]:
    """The active types the actor's department may issue (none for actors without a department)."""
    department = _department(actor)
    if department is None:
        return []
    types = LicenceType.objects.filter(status=LicenceType.Status.ACTIVE).select_related("department")
    return [licence_type for licence_type in types if services.may_issue(actor, licence_type, department)]


def masked_holder_name(licence: Licence) -> str:
    """A person's name masked (张*); an enterprise's name as it is."""
    return mask_name(licence.holder_name) if licence.holder_kind == HolderKind.PERSON else licence.holder_name


def masked_holder_id(licence: Licence) -> str:
    """A person's ID number masked; an enterprise's USCC (public) as it is."""
    return mask_id_number(licence.holder_id) if licence.holder_kind == HolderKind.PERSON else licence.holder_id


def _mask_value(item: Mapping[str, Any], value: Any) -> Any:
    """An item's value as shown: personal items masked, others as they are."""
    if item.get("sensitivity") != "personal" or value in (None, ""):
        return value
    if item.get("type") == "date":
        return "****-**-**"
    text = str(value)
    if is_valid_resident_id(text):
        return mask_id_number(text)
    return mask_name(text)


def _choice_label(item: Mapping[str, Any], value: Any) -> Any:
    """The label of an enum value (the value itself when unknown)."""
    for choice in item.get("choices", []):
        if isinstance(choice, Mapping) and str(choice.get("value")) == str(value):
            return choice.get("label", value)
    return value


@dataclass
class LicenceView:
    """A licence as shown to an official: masked holder data, items with labels, history, credentials."""

    licence: Licence
    holder_name: str
    holder_id: str
    items: list[dict[str, Any]]
    events: list[LicenceEvent]
    credentials: list[Credential]
    has_personal: bool


def has_personal_data(licence: Licence) -> bool:
    """Whether the licence carries personal data (a person holder or items declared personal)."""
    return licence.holder_kind == HolderKind.PERSON or any(
        item.get("sensitivity") == "personal" for item in licence.licence_type.items or []
    )


def labelled_items(licence: Licence, *, masked: bool) -> list[dict[str, Any]]:
    """The licence's data items as ``{name, label, value}`` in the type's order (personal ones masked if asked)."""
    data = services.licence_data(licence)
    declared = {item["name"]: item for item in licence.licence_type.items or []}
    rows = []
    for name, item in declared.items():
        if name not in data:
            continue
        value = data[name]
        if item.get("type") == "enum":
            value = _choice_label(item, value)
        elif item.get("type") == "boolean":
            value = _("是") if value else _("否")
        if masked:
            value = _mask_value(item, value)
        rows.append({"name": name, "label": item.get("label") or name, "value": value})
    for name in sorted(set(data) - set(declared)):  # items of an earlier type version
        rows.append({"name": name, "label": name, "value": data[name]})
    return rows


def view_licence(licence: Licence, *, actor, audited: bool = True) -> LicenceView:
    """The licence for display, masked; refused outside the scope; audited (refusals too) when it has personal data."""
    if not may_view(actor, licence):
        raise refuse_view(actor, licence)
    items = labelled_items(licence, masked=True)
    personal = has_personal_data(licence)
    if personal and audited:  # not for the answer to a change, which is audited itself
        with transaction.atomic():
            audit.record(
                "licenses.licence.view",
                actor=actor,
                target=licence,
                detail={"identifier": licence.identifier, "type": licence.licence_type.code},
            )
    return LicenceView(
        licence=licence,
        holder_name=masked_holder_name(licence),
        holder_id=masked_holder_id(licence),
        items=items,
        events=list(licence.events.order_by("at", "id")),
        credentials=list(licence.credentials.select_related("key").order_by("version")),
        has_personal=personal,
    )


def download_credential(licence: Licence, *, actor, version: int | None = None) -> Credential:
    """The credential of the current (or a given) version, for download; refused outside the scope; audited."""
    if not may_view(actor, licence):
        raise refuse_view(actor, licence, action="licenses.credential.download")
    credential = licence.credentials.filter(version=version or licence.version).first()
    if credential is None:
        raise Credential.DoesNotExist
    with transaction.atomic():
        audit.record(
            "licenses.credential.download",
            actor=actor,
            target=licence,
            detail={"identifier": licence.identifier, "credential": credential.credential_id},
        )
    return credential


def credential_filename(licence: Licence, version: int) -> str:
    """The download name of a credential: the identifier's serial and check part, and the version."""
    try:
        parts = credentials.parse_identifier(licence.identifier)
        stem = f"{parts['type_code']}-{parts['serial']}"
    except credentials.IdentifierError:
        stem = f"licence-{licence.pk}"
    return f"{stem}-v{version}.jwt"
