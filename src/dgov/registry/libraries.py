"""The shipped library definitions (基础库/主题库) and their installation as registries.

Each JSON file in ``dgov/registry/libraries/`` describes one library: ``library`` (``base`` or
``theme``), ``library_code``, names, and a list of ``registries``. A registry definition carries
``code``, ``name``, ``name_en``, ``description``, ``owner``, ``identifier_field``, optional
``scope_field`` and ``fields`` (field definitions as :func:`dgov.registry.schema.parse_fields`
reads them); ``library``/``library_code`` may be overridden per registry.

Owners and authorities are written as department *kinds* (``GA`` public security, ``SCJG`` market
regulation …, see :data:`dgov.kernel.services.organizations.BUREAU_KINDS`) so that one definition
fits every province. At install time the owner is resolved to a concrete department: an
``Organization`` whose code equals the owner string if there is one (a province may name a
specific department), otherwise the active department of that kind on the province's own division
(``find_department(province_code, kind)``: the provincial 公安厅 for ``GA``). Field authorities stay
kinds: the engine matches them against the writing department's kind at every level, so a county
公安局 writes the persons of its county.

Installation is additive and idempotent: a missing registry is created (schema v1); a registry
whose definition gained fields gets a new schema version with the installed fields (as they are,
possibly evolved by an administrator) followed by the new ones; nothing is ever removed or retyped.
Installed fields whose definition differs from the shipped one are reported, not changed, unless
the caller asks for it (``update_fields=True``, ``dgov registry install --update-fields``): then
they take the shipped definition in the new version (e.g. enum labels, a conditional authority
rule), still within the evolution rules of :func:`dgov.registry.schema.check_evolution`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.translation import gettext as _

from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.kernel.services.organizations import find_department
from dgov.registry import schema, services
from dgov.registry.models import Registry

__all__ = [
    "LIBRARY_DIR",
    "InstallReport",
    "LibraryDefinitionError",
    "install_libraries",
    "load_definitions",
    "resolve_owner",
]

LIBRARY_DIR = Path(__file__).with_name("libraries")

_LIBRARY_KINDS = ("base", "theme")
_FILE_KEYS = {"library", "library_code", "name", "name_en", "description", "registries"}
_REGISTRY_KEYS = {
    "code",
    "name",
    "name_en",
    "description",
    "owner",
    "identifier_field",
    "scope_field",
    "fields",
    "library",
    "library_code",
}
_REQUIRED_REGISTRY_KEYS = ("code", "name", "owner", "identifier_field", "fields")
_NO_IDENTIFIER_TYPES = ("geojson", "json", "text", "boolean")


class LibraryDefinitionError(ImproperlyConfigured):
    """A library definition file that cannot be used; the message names the file, registry and field."""


@dataclass
class InstallReport:
    """What :func:`install_libraries` did, registry by registry."""

    created: list[str] = field(default_factory=list)
    upgraded: dict[str, int] = field(default_factory=dict)  # registry code → new schema version
    unchanged: list[str] = field(default_factory=list)
    # Installed fields whose definition now differs (labels, flags …): reported, not applied unless
    # asked for (update_fields), because an administrator may have evolved them on purpose.
    drifted: dict[str, list[str]] = field(default_factory=dict)
    updated: dict[str, list[str]] = field(default_factory=dict)  # drifted fields applied (update_fields)

    @property
    def changed(self) -> bool:
        """Whether anything was created or upgraded."""
        return bool(self.created or self.upgraded)

    def as_dict(self) -> dict:
        """A JSON-friendly summary (for the audit record and the command's output)."""
        return {
            "created": self.created,
            "upgraded": self.upgraded,
            "unchanged": self.unchanged,
            "drifted": self.drifted,
            "updated": self.updated,
        }


def _fail(path: Path, where: str, message: str) -> LibraryDefinitionError:
    """A definition error naming the file and the place inside it."""
    return LibraryDefinitionError(f"{path.name}: {where}: {message}" if where else f"{path.name}: {message}")


def _schema_message(exc: schema.SchemaError) -> str:
    """The Chinese message(s) of a SchemaError as one line."""
    return "；".join(str(m) for m in exc.messages)


def _check_registry(path: Path, entry: dict, index: int) -> dict:
    """Validate one registry entry of a file and return it normalized (fields parsed once)."""
    where = f"registries[{index}]"
    if not isinstance(entry, dict):
        raise _fail(path, where, _("信息库定义应为对象"))
    code = entry.get("code") or ""
    where = f"registry {code or where}"
    unknown = set(entry) - _REGISTRY_KEYS
    if unknown:
        raise _fail(path, where, _("定义中有未知的键：%(keys)s") % {"keys": ", ".join(sorted(unknown))})
    for key in _REQUIRED_REGISTRY_KEYS:
        if not entry.get(key):
            raise _fail(path, where, _("缺少 %(key)s") % {"key": key})
    if not isinstance(entry["fields"], list):
        raise _fail(path, where, _("fields 应为列表"))
    for position, item in enumerate(entry["fields"]):
        if not isinstance(item, dict) or not item.get("name"):
            raise _fail(path, f"{where}: fields[{position}]", _("字段定义应为带 name 的对象"))
    identifier = entry["identifier_field"]
    try:
        parsed = schema.parse_fields(entry["fields"], identifier=identifier)
    except schema.SchemaError as exc:
        raise _fail(path, where, _schema_message(exc)) from None
    by_name = {f.name: f for f in parsed}
    if by_name[identifier].type in _NO_IDENTIFIER_TYPES:
        raise _fail(path, f"{where}: field {identifier}", _("该类型的字段不能作为标识字段"))
    scope = entry.get("scope_field") or ""
    if scope and scope not in by_name:
        raise _fail(path, where, _("区划字段 %(field)s 不在字段定义中") % {"field": scope})
    if scope and by_name[scope].type != "division_code":
        raise _fail(path, f"{where}: field {scope}", _("区划字段的类型应为 division_code"))
    return {
        "code": code,
        "name": entry["name"],
        "name_en": entry.get("name_en", ""),
        "description": entry.get("description", ""),
        "owner": entry["owner"],
        "identifier_field": identifier,
        "scope_field": scope,
        "fields": entry["fields"],
        "library": entry.get("library"),
        "library_code": entry.get("library_code"),
        "file": path.name,
        "_parsed": parsed,
    }


def _load_file(path: Path) -> list[dict]:
    """The registry definitions of one library file, validated."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        message = _("JSON 格式错误：%(error)s") % {"error": exc.msg}
        raise _fail(path, f"line {exc.lineno} column {exc.colno}", message) from None
    if not isinstance(data, dict):
        raise _fail(path, "", _("信息库定义文件应为一个 JSON 对象"))
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise _fail(path, "", _("定义中有未知的键：%(keys)s") % {"keys": ", ".join(sorted(unknown))})
    if not isinstance(data.get("registries"), list) or not data["registries"]:
        raise _fail(path, "", _("缺少 registries 列表"))
    definitions = []
    for index, entry in enumerate(data["registries"]):
        definition = _check_registry(path, entry, index)
        definition["library"] = definition["library"] or data.get("library") or "base"
        definition["library_code"] = definition["library_code"] or data.get("library_code") or ""
        where = f"registry {definition['code']}"
        if definition["library"] not in _LIBRARY_KINDS:
            message = _("library 应为 base 或 theme（实际为“%(value)s”）") % {"value": definition["library"]}
            raise _fail(path, where, message)
        if not definition["library_code"]:
            raise _fail(path, where, _("缺少 %(key)s") % {"key": "library_code"})
        definitions.append(definition)
    return definitions


def load_definitions(directory: Path | str | None = None) -> list[dict]:
    """Every registry definition of the library files in ``directory`` (default: the shipped ones), validated.

    Returns dicts with ``code``, ``name``, ``name_en``, ``description``, ``library``,
    ``library_code``, ``owner``, ``identifier_field``, ``scope_field``, ``fields`` (the raw field
    dicts) and ``file``, in file-name order. Raises :class:`LibraryDefinitionError` naming the file,
    the registry and the field for a malformed file, an invalid field, a duplicate registry code or
    a reference to a registry that is neither defined nor installed.
    """
    folder = Path(directory) if directory is not None else LIBRARY_DIR
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise LibraryDefinitionError(f"{folder}: " + _("没有信息库定义文件（*.json）"))
    definitions: list[dict] = []
    seen: dict[str, str] = {}
    for path in paths:
        for definition in _load_file(path):
            code = definition["code"]
            if code in seen:
                raise _fail(path, f"registry {code}", _("编码与 %(file)s 中的定义重复") % {"file": seen[code]})
            seen[code] = path.name
            definitions.append(definition)
    _check_references(definitions)
    for definition in definitions:
        del definition["_parsed"]
    return definitions


def _check_references(definitions: list[dict]) -> None:
    """Every reference field must point to a defined (or already installed) registry."""
    known = {d["code"] for d in definitions}
    missing = []
    for definition in definitions:
        for f in definition["_parsed"]:
            if f.type == "reference" and f.ref not in known:
                missing.append((definition, f))
    if not missing:
        return
    try:
        installed = set(Registry.objects.filter(code__in={f.ref for _d, f in missing}).values_list("code", flat=True))
    except Exception:  # noqa: BLE001 - no database (e.g. checking files offline): only the files count
        installed = set()
    for definition, f in missing:
        if f.ref not in installed:
            raise LibraryDefinitionError(
                f"{definition['file']}: registry {definition['code']}: field {f.name}: "
                + _("引用的信息库 %(ref)s 未定义") % {"ref": f.ref}
            )


def resolve_owner(owner: str, province_code: str) -> Organization:
    """The department owning a registry: an organization with this code, else the province's department of this kind."""
    org = Organization.objects.filter(code=owner, is_active=True).first()
    if org is None:
        org = find_department(province_code, owner)
    if org is None:
        raise LibraryDefinitionError(
            _("牵头部门 %(owner)s 在区划 %(division)s 不存在：请先建立该类别的省级部门，或在定义中写明部门编码")
            % {"owner": owner, "division": province_code}
        )
    return org


def _field_names(fields: list[dict]) -> list[str]:
    """The names of a list of field dicts, in order."""
    return [f["name"] for f in fields]


def _drift(installed: list[dict], wanted: list[dict], identifier: str) -> list[str]:
    """Names of installed fields whose definition differs from the wanted one (compared as parsed)."""
    have = {f.name: f for f in schema.parse_fields(installed, identifier=identifier)}
    return [f.name for f in schema.parse_fields(wanted, identifier=identifier) if f.name in have and have[f.name] != f]


def install_libraries(
    *, actor, province_code: str | None = None, definitions: list[dict] | None = None, update_fields: bool = False
) -> InstallReport:
    """Create missing registries and publish new schema versions for definitions that gained fields.

    Idempotent and additive (see the module docstring); one transaction, one summary audit record
    when anything changed. ``definitions`` defaults to :func:`load_definitions`. With
    ``update_fields`` installed fields whose definition differs take the shipped one as well.
    """
    province_code = province_code or settings.DEMO_PROVINCE_CODE
    definitions = load_definitions() if definitions is None else definitions
    report = InstallReport()
    with transaction.atomic():
        existing = {r.code: r for r in Registry.objects.select_related("current_schema")}
        for definition in definitions:
            code = definition["code"]
            registry = existing.get(code)
            if registry is None:
                services.create_registry(
                    code=code,
                    name=definition["name"],
                    name_en=definition.get("name_en", ""),
                    owner=resolve_owner(definition["owner"], province_code),
                    library=definition["library"],
                    library_code=definition["library_code"],
                    description=definition.get("description", ""),
                    identifier_field=definition["identifier_field"],
                    scope_field=definition.get("scope_field", ""),
                    fields=definition["fields"],
                    actor=actor,
                )
                report.created.append(code)
                continue
            installed = list(registry.current_schema.fields) if registry.current_schema else []
            have = set(_field_names(installed))
            gained = [f for f in definition["fields"] if f["name"] not in have]
            drifted = _drift(installed, definition["fields"], registry.identifier_field)
            if drifted and not update_fields:
                report.drifted[code] = drifted
            updating = drifted if update_fields else []
            if not gained and not updating:
                report.unchanged.append(code)
                continue
            shipped = {f["name"]: f for f in definition["fields"]}
            fields = [shipped[f["name"]] if f["name"] in updating else f for f in installed] + gained
            changes = [f"added: {', '.join(_field_names(gained))}"] if gained else []
            if updating:
                changes.append(f"updated: {', '.join(updating)}")
                report.updated[code] = updating
            version = services.publish_schema_version(
                registry,
                fields,
                actor=actor,
                note=f"library definition {definition.get('file', '')} {'; '.join(changes)}",
            )
            report.upgraded[code] = version.version
        if report.changed:
            audit.record(
                "registry.library.install",
                actor=actor,
                detail={"province": province_code, **report.as_dict()},
            )
    return report
