"""The registry API (信息库接口) at /api/v1/registries/: the GovStack Digital Registries BB Data API.

Paths follow the GovStack Digital Registries building block's Data API (1.3/1.4), under
``/api/v1/registries/data/{registryname}/{versionnumber}``:

=========  ==========================================  ===================================================
method     path (after ``data/{registry}/{version}``)  what
=========  ==========================================  ===================================================
GET        (none)                                      list: ``search``, ``filter``, ``query.<field>``,
                                                       ``ordering``, ``page``, ``page_size`` → count, next,
                                                       previous, results
POST       ``/create``                                 ``{"write": {"content": {...}}}`` → the record
POST       ``/exists``                                 ``{"query": {"content": {...}}}`` →
                                                       ``{"answer": {"status": bool, "message": str}}``
POST       ``/read``                                   ``{"query": {"content": {...}}}`` → one record (404)
PUT        ``/update``                                 ``{"query": …, "write": …}`` → one record updated
PUT        ``/update-entries``                         every record matching ``query`` gets ``write``
POST       ``/update-or-create``                       update the match of ``query``, or create ``write``
DELETE     ``/{ID}/delete``                            soft delete → 204
GET        ``/{uuid}/read-value/{field}.{ext}``        one field: ``json`` → ``{"value": …}``, ``txt`` → text
GET        ``/{ID}``                                   dgov extension: one record by uid or identifier
=========  ==========================================  ===================================================

plus ``GET data/MyPersonalDataUsage/1.0`` (谁查了我的数据), ``GET /api/v1/registries/`` (the
registries the caller may read) and ``GET /api/v1/registries/{code}/schema`` (fields, versions).
The 1.4 camelCase spellings (``updateEntries``, ``updateOrCreate``, ``{uuid}/readValue/…``,
``mypersonalDataUsage``) are accepted as aliases.

Conventions (see docs/api.md for the long form):

* ``{registryname}`` is ``Registry.code`` (``population.person``); ``{versionnumber}`` is a schema
  version, written ``1``, ``1.0`` or ``v1``. Reads accept any published (or retired) version and
  return the fields that version defines; writes accept any such version but are validated
  against the *current* one (versions only add fields, so an older client's body stays valid).
* ``{ID}`` / ``{uuid}`` in paths is the record's ``uid`` or the value of the registry's identifier
  field. Prefer the uid or ``POST /read``: paths are written to access logs, bodies are not.
* A record in answers is ``{"uuid", "content", "version", "schemaVersion", "createdAt",
  "modifiedAt"}`` (the 1.4 write-item shape); ``content`` holds the field values.
* Every answer that carries record values is a read through ``services.read_record``, which
  checks the department may read the registry and writes an AccessLog entry (reader, department,
  purpose, fields). ``exists`` logs the fields it matched. Write answers echo only the fields the
  caller sent (they disclose nothing new) and are not logged as reads.
* The purpose of a read (用途) comes from the ``X-Purpose`` header (percent-encoded UTF-8 for
  Chinese) or the ``purpose`` query parameter, and is stored in the access log.
* Personal fields (sensitivity ``personal``) are masked (脱敏) in every answer unless the client
  holds the scope ``registry:unmask``; officials using their session never unmask through the API.
* Auth: API clients by HTTP Basic (``client_id:secret``), or an official's session. Scopes:
  ``registry:read`` for reads, ``registry:write`` for writes. Which registries and fields a
  caller may read or write is decided by its department (the registry's authority rules); a
  write by a non-authoritative department is 403 and audited by the engine. With a division scope
  field, a department below the province sees and writes only records of its own division.
* Errors are problem+json: 400/422 bad bodies or values, 401 no or bad credentials, 403 scope or
  authority, 404 unknown registry, version or record, 409 version conflict (``If-Match: "<n>"``
  on ``update``) or a uniqueness clash.
* Writes by non-authoritative departments: ``?non_authoritative=refuse`` (default, 403),
  ``observe`` (kept as observations) or ``correct`` (filed as correction requests, 纠错).
  ``reason`` (body, or ``X-Reason`` for DELETE) is recorded in the history.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal
from urllib.parse import unquote, urlencode

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from dgov.api.auth import bearer_auth, client_auth, principal_scopes, require_scope, session_auth
from dgov.identity.services import client_names
from dgov.kernel.fields import blind_index
from dgov.kernel.masking import mask_name
from dgov.kernel.models import Organization
from dgov.registry import schema as registry_schema
from dgov.registry import services
from dgov.registry.models import AccessLog, Record, Registry, RegistrySchema

router = Router(tags=["registries"], auth=[client_auth, bearer_auth, session_auth])

READ_SCOPE = "registry:read"
WRITE_SCOPE = "registry:write"
UNMASK_SCOPE = "registry:unmask"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# update-entries changes every match in one transaction; beyond this the caller must narrow the query.
MAX_BULK_UPDATE = 1000
MAX_USAGE_PAGE_SIZE = 500
_VERSION_RE = re.compile(r"^[vV]?(\d{1,6})(?:\.0+)?$")
_FILTER_OPERATORS = ("gte", "lte", "gt", "lt", "contains", "icontains", "in")


# --- Schemas ---------------------------------------------------------------------------------------


class Content(Schema):
    """``{"content": {field: value, …}}`` — the GovStack wrapper of record values."""

    content: dict[str, Any]


class QueryBody(Schema):
    """Body of ``exists`` and ``read``: the values a record must have."""

    query: Content


class WriteBody(Schema):
    """Body of ``create``: the values of the new record."""

    write: Content


class QueryWriteBody(Schema):
    """Body of ``update``, ``update-entries`` and ``update-or-create``."""

    query: Content | None = None
    write: Content
    reason: str = Field("", max_length=500, description="dgov 扩展：变更原因，记入历史")


class RecordOut(Schema):
    """A record in answers: its uid, values and bookkeeping."""

    uuid: str
    content: dict[str, Any]
    version: int
    schemaVersion: int  # noqa: N815 - GovStack's camelCase member names
    createdAt: str | None = None  # noqa: N815
    modifiedAt: str | None = None  # noqa: N815


class WrittenOut(RecordOut):
    """The answer of a write: the record's bookkeeping and the values that were sent."""

    created: bool = False


class ListOut(Schema):
    """A page of records (GovStack list answer)."""

    count: int
    next: str | None
    previous: str | None
    results: list[RecordOut]


class Answer(Schema):
    """The ``exists`` verdict."""

    status: bool
    message: str


class ExistsOut(Schema):
    """``{"answer": {"status": …, "message": …}}``."""

    answer: Answer


class UpdatedEntriesOut(Schema):
    """How many records ``update-entries`` changed, and which."""

    count: int
    uuids: list[str]


class ListQuery(Schema):
    """Declared parameters of ``list``; ``query.<field>`` parameters are read from the query string."""

    search: str = Field("", max_length=100, description="在公开字符串字段中查找的文字")
    filter: str = Field("", max_length=64, description="只在该字段中查找 search（字段名）")
    ordering: str = Field("", max_length=65, description="字段名（降序加 -），或 ascending / descending")
    page: int = Field(1, ge=1, le=100000)
    page_size: int | None = Field(None, ge=1, le=MAX_PAGE_SIZE)
    pageSize: int | None = Field(None, ge=1, le=MAX_PAGE_SIZE)  # noqa: N815 - GovStack 1.4 spelling
    purpose: str = Field("", max_length=255)


class WriteOptions(Schema):
    """Query parameters of writes."""

    non_authoritative: Literal["refuse", "observe", "correct"] = "refuse"


class VersionOut(Schema):
    """One schema version of a registry."""

    version: int
    status: str
    published_at: str | None
    note: str


class RegistryOut(Schema):
    """A registry the caller may read."""

    code: str
    name: str
    name_en: str
    library: str
    library_code: str
    owner: str
    owner_name: str
    identifier_field: str
    scope_field: str
    version: int | None
    data_url: str


class SchemaOut(Schema):
    """A registry's fields in one version, and all its versions."""

    code: str
    name: str
    identifier_field: str
    version: int
    current_version: int | None
    fields: list[dict[str, Any]]
    versions: list[VersionOut]


class ReferenceOut(Schema):
    """A record whose read is reported."""

    ReferenceID: str


class PersonalDataUsageOut(Schema):
    """One read of the caller's data (GovStack PersonalDataUsage, with dgov's extra members)."""

    ID: str
    ReaderID: str
    ReaderInitials: str
    ReaderInstitutionID: str
    ReaderInstitutionName: str
    ReaderApplicationName: str
    SearchDateTime: str
    Refrences: list[ReferenceOut]  # sic: the GovStack schema's spelling
    References: list[ReferenceOut]
    Registry: str
    RegistryName: str
    Purpose: str
    Fields: list[str]
    Channel: str


class UsageQuery(Schema):
    """Parameters of the personal data usage report (the subject always comes from the login)."""

    userID: str = Field("", max_length=64, description="可省略；若给出，须与登录人本人一致")  # noqa: N815
    userId: str = Field("", max_length=64)  # noqa: N815
    DatabaseID: str = Field("", max_length=64, description="只看该信息库（编码）")  # noqa: N815
    databaseId: str = Field("", max_length=64)  # noqa: N815
    page: int = Field(1, ge=1, le=100000)
    page_size: int = Field(100, ge=1, le=MAX_USAGE_PAGE_SIZE)


# --- Helpers ---------------------------------------------------------------------------------------


@contextmanager
def _service_errors() -> Iterator[None]:
    """Turn the engine's exceptions that are not already problems into 404/409 answers."""
    try:
        yield
    except services.VersionConflict as exc:
        raise HttpError(409, str(exc)) from None
    except (services.RegistryNotFound, services.RecordNotFound):
        raise HttpError(404, gettext("未找到记录。")) from None
    except IntegrityError:
        raise HttpError(409, gettext("与已有记录冲突（唯一性约束）。")) from None


def _department(request: HttpRequest) -> Organization | None:
    """The department the caller acts for."""
    return services.department_of(request.auth)


def _unmask(request: HttpRequest) -> bool:
    """Whether the caller may see personal fields unmasked."""
    return UNMASK_SCOPE in principal_scopes(request.auth)


def _header_text(request: HttpRequest, name: str, param: str = "") -> str:
    """A header's value, percent-decoded (HTTP headers are Latin-1), else the query parameter."""
    value = request.headers.get(name, "")
    if value:
        return unquote(value).strip()
    return request.GET.get(param, "").strip() if param else ""


def _purpose(request: HttpRequest) -> str:
    """The declared purpose of a read (``X-Purpose`` header or ``purpose`` parameter)."""
    return _header_text(request, "X-Purpose", "purpose")[:255]


def _registry(code: str) -> Registry:
    """The active registry with this code (cached briefly), or 404."""
    try:
        registry = services.cached_registry(code)
    except services.RegistryNotFound:
        raise HttpError(404, gettext("信息库“%(code)s”不存在。") % {"code": code[:64]}) from None
    if not registry.is_active or registry.current_schema_id is None:
        raise HttpError(404, gettext("信息库“%(code)s”不存在。") % {"code": code[:64]})
    return registry


def _version(registry: Registry, versionnumber: str) -> int:
    """The schema version named in the path (``1``, ``1.0``, ``v1``); 404 unless it exists and was published."""
    match = _VERSION_RE.match(versionnumber.strip())
    if match is None:
        raise HttpError(404, gettext("版本号“%(v)s”无效，应为 1、1.0 或 v1。") % {"v": versionnumber[:20]})
    number = int(match.group(1))
    if registry.current_schema is not None and registry.current_schema.version == number:
        return number
    published = RegistrySchema.objects.filter(
        registry=registry,
        version=number,
        status__in=(RegistrySchema.Status.PUBLISHED, RegistrySchema.Status.RETIRED),
    ).exists()
    if not published:
        raise HttpError(404, gettext("信息库 %(code)s 没有版本 %(v)s。") % {"code": registry.code, "v": number})
    return number


def _resolve(request: HttpRequest, registryname: str, versionnumber: str, scope: str):
    """Check the scope, then find the registry and version: (registry, fields of that version)."""
    require_scope(request, scope)
    registry = _registry(registryname)
    return registry, services.registry_fields(registry, _version(registry, versionnumber))


def _read_scope(request: HttpRequest, registry: Registry) -> str:
    """The division prefix the caller's reads of this registry are limited to ("" = all); 403 if none."""
    prefix = services.reader_scope(registry, request.auth)
    if prefix is None:
        raise HttpError(403, gettext("本部门无权读取信息库“%(name)s”。") % {"name": registry.name})
    return prefix


def _iso(value) -> str | None:
    """A datetime (or its ISO text) as ISO 8601 text."""
    if value is None:
        return None
    return value if isinstance(value, str) else value.isoformat()


def _shape(record: Record, values: dict) -> dict:
    """A record in answers."""
    return {
        "uuid": str(record.uid),
        "content": values,
        "version": record.version,
        "schemaVersion": record.schema_version,
        "createdAt": _iso(record.created_at),
        "modifiedAt": _iso(record.updated_at),
    }


def _mask(request: HttpRequest, fields: list, values: dict) -> dict:
    """The values of the given fields, personal ones masked unless the caller may unmask."""
    unmask = _unmask(request)
    out = {}
    for field in fields:
        if field.name not in values:
            continue
        value = values[field.name]
        hide = field.is_personal and not unmask and value is not None
        out[field.name] = registry_schema.mask_value(field, value) if hide else value
    return out


def _read(request: HttpRequest, record: Record, fields: list, *, only: list[str] | None = None) -> dict:
    """Read one record through the engine (authorized, logged, masked) and shape it for the answer."""
    names = only if only is not None else [field.name for field in fields]
    with _service_errors():
        data = services.read_record(
            record,
            actor=request.auth,
            purpose=_purpose(request),
            fields=names,
            channel="api",
            unmask=_unmask(request),
        )
    allowed = {field.name for field in fields}
    return _shape(record, {name: value for name, value in data["values"].items() if name in allowed})


def _written(request: HttpRequest, record: Record, sent: dict, *, created: bool = False) -> dict:
    """The answer of a write: bookkeeping plus the cleaned values that were sent, masked as for reads."""
    current = services.registry_fields(record.registry)
    return {**_shape(record, _mask(request, current, sent)), "created": created}


def _in_prefix(record: Record, prefix: str | None) -> bool:
    """Whether a record lies under a division prefix (None or "": no limit)."""
    return not prefix or record.division_code.startswith(prefix)


def _record_by_path(registry: Registry, ident: str, prefix: str | None) -> Record:
    """The live record named in a path by uid or identifier value (under ``prefix``), else 404."""
    ident = ident.strip()
    record = None
    try:
        uid = uuid.UUID(ident)
    except ValueError:
        uid = None
    if uid is not None:
        record = Record.objects.filter(registry=registry, uid=uid)[:1]
        record = record[0] if record else None
        if record is not None:
            record.registry = registry  # the cached instance: no second query for it
    if record is None:
        record = services.find_record(registry, registry.identifier_field, ident)
    if record is None or record.deleted_at is not None or not _in_prefix(record, prefix):
        raise HttpError(404, gettext("未找到记录。"))
    return record


def _key_fields(registry: Registry) -> list[str]:
    """Names of the fields with blind-index keys, the identifier first."""
    names = [registry.identifier_field]
    names += [
        field.name
        for field in services.registry_fields(registry)
        if registry_schema.is_key_field(field) and field.name != registry.identifier_field
    ]
    return names


def _matches(registry: Registry, content: dict, *, prefix: str | None, limit: int) -> list[Record]:
    """Live records whose values equal every value of ``content`` (up to ``limit`` + 1), under ``prefix``.

    A key field (identifier, unique or lookup) in the query is looked up through the blind index;
    otherwise the public and internal fields are searched. Personal fields that are not keys
    cannot be searched (they are stored only encrypted) and are refused with 400.
    """
    if not content:
        raise HttpError(400, gettext("查询条件不能为空。"))
    fields = services.registry_fields(registry)
    cleaned = registry_schema.clean_values(fields, content, partial=True)
    if any(value is None for value in cleaned.values()):
        raise HttpError(400, gettext("查询条件的值不能为空。"))
    by_name = registry_schema.field_map(fields)
    key = next((name for name in _key_fields(registry) if name in cleaned), None)
    if key is not None:
        found = services.find_record(registry, key, cleaned[key])
        candidates = [found] if found is not None else []
    else:
        unsearchable = [name for name in cleaned if by_name[name].is_personal]
        if unsearchable:
            raise HttpError(
                400, gettext("个人敏感字段只能按检索键精确查询：%(fields)s") % {"fields": "、".join(unsearchable)}
            )
        candidates, _total = services.search_records(
            registry, filters=dict(cleaned), limit=limit + 1, division_code=prefix or ""
        )
    result = []
    for record in candidates:
        if record.deleted_at is not None or not _in_prefix(record, prefix):
            continue
        if key is not None and len(cleaned) == 1:
            result.append(record)  # the blind index already matched the only condition
            continue
        values = services.record_values(record) or {}
        if all(values.get(name) == value for name, value in cleaned.items()):
            result.append(record)
    return result[: limit + 1]


def _single(registry: Registry, content: dict, *, prefix: str | None) -> Record:
    """The one record matching ``content``: 404 if none, 400 if several."""
    found = _matches(registry, content, prefix=prefix, limit=1)
    if not found:
        raise HttpError(404, gettext("未找到符合条件的记录。"))
    if len(found) > 1:
        raise HttpError(400, gettext("查询条件匹配到多条记录，请使用标识字段或更多条件。"))
    return found[0]


def _target_query(registry: Registry, body: QueryWriteBody) -> dict:
    """The query of a write: the body's ``query``, else the identifier taken from ``write``."""
    if body.query is not None and body.query.content:
        return body.query.content
    ident = registry.identifier_field
    if body.write.content.get(ident) not in (None, ""):
        return {ident: body.write.content[ident]}
    raise HttpError(
        400,
        gettext("请在 query.content 中给出查询条件，或在 write.content 中给出标识字段 %(field)s。")
        % {"field": ident},
    )


def _check_unique(registry: Registry, cleaned: dict) -> None:
    """409 when a unique value of a record to be created is already held by a live record."""
    for field in services.registry_fields(registry):
        value = cleaned.get(field.name)
        if field.unique and value not in (None, "") and services.find_record(registry, field.name, value):
            raise HttpError(409, gettext("%(field)s：该值已存在于其他记录。") % {"field": field.label})


def _if_match(request: HttpRequest) -> int | None:
    """The expected record version from ``If-Match: "<n>"`` (400 if malformed)."""
    value = request.headers.get("If-Match", "").strip()
    if not value or value == "*":
        return None
    text = value.removeprefix("W/").strip('"')
    if not text.isdigit():
        raise HttpError(400, gettext("If-Match 应为记录修订号，如 \"3\"。"))
    return int(text)


def _list_filters(request: HttpRequest, registry: Registry, params: ListQuery) -> dict:
    """Filters from ``query.<field>[__op]`` parameters, and ``filter`` + ``search`` as a substring filter."""
    by_name = registry_schema.field_map(services.registry_fields(registry))
    filters: dict[str, Any] = {}
    for name, value in request.GET.items():
        if not name.startswith("query."):
            continue
        spec = name.removeprefix("query.")
        field_name, _sep, op = spec.partition("__")
        if field_name not in by_name:
            raise HttpError(400, gettext("未知字段“%(field)s”。") % {"field": field_name[:64]})
        if op and op not in _FILTER_OPERATORS:
            raise HttpError(400, gettext("不支持的筛选方式“%(op)s”。") % {"op": op[:20]})
        filters[spec] = value.split(",") if op == "in" else value
    if params.filter:
        field = by_name.get(params.filter)
        if field is None:
            raise HttpError(400, gettext("未知字段“%(field)s”。") % {"field": params.filter[:64]})
        if field.is_personal:
            raise HttpError(400, gettext("个人敏感字段不能模糊查找：%(field)s") % {"field": field.label})
        if params.search:
            filters[f"{params.filter}__icontains"] = params.search
    return filters


def _ordering(ordering: str) -> str:
    """``ordering`` as the engine's ``order_by``: a field (``-`` for descending), or ascending/descending."""
    text = ordering.strip()
    if text.lower() in ("", "asc", "ascending"):
        return ""
    if text.lower() in ("desc", "descending"):
        return "-created_at"
    return text


def _page_url(request: HttpRequest, page: int) -> str:
    """The absolute URL of another page of the same list."""
    params = request.GET.copy()
    params["page"] = str(page)
    return request.build_absolute_uri(request.path + "?" + urlencode(list(params.lists()), doseq=True))


def _forbidden_registry(registry: Registry) -> HttpError:
    """403 for a registry the caller's department may not read."""
    return HttpError(403, gettext("本部门无权读取信息库“%(name)s”。") % {"name": registry.name})


# --- Registry catalogue -----------------------------------------------------------------------------


@router.get("/", response=list[RegistryOut], summary="可读取的信息库")
def list_registries(request: HttpRequest):
    """The active registries the caller may read, with their current version."""
    require_scope(request, READ_SCOPE)
    registries = Registry.objects.filter(is_active=True, current_schema__isnull=False).select_related(
        "owner", "owner__division", "current_schema"
    )
    base = request.build_absolute_uri(request.path.rstrip("/"))
    out = []
    for registry in registries:
        if services.reader_scope(registry, request.auth) is None:
            continue
        version = registry.current_schema.version
        out.append(
            {
                "code": registry.code,
                "name": registry.name,
                "name_en": registry.name_en,
                "library": registry.library,
                "library_code": registry.library_code,
                "owner": registry.owner.code,
                "owner_name": registry.owner.name,
                "identifier_field": registry.identifier_field,
                "scope_field": registry.scope_field,
                "version": version,
                "data_url": f"{base}/data/{registry.code}/{version}",
            }
        )
    return out


@router.get("/{code}/schema", response=SchemaOut, summary="信息库字段定义与版本")
def registry_schema_view(request: HttpRequest, code: str, version: int | None = None):
    """The fields of the current (or ``?version=``) schema version and the list of published versions."""
    require_scope(request, READ_SCOPE)
    registry = _registry(code)
    _read_scope(request, registry)
    number = _version(registry, str(version)) if version is not None else registry.current_schema.version
    versions = RegistrySchema.objects.filter(registry=registry).exclude(status=RegistrySchema.Status.DRAFT)
    return {
        "code": registry.code,
        "name": registry.name,
        "identifier_field": registry.identifier_field,
        "version": number,
        "current_version": registry.current_schema.version,
        "fields": registry_schema.fields_to_dicts(services.registry_fields(registry, number)),
        "versions": [
            {"version": s.version, "status": s.status, "published_at": _iso(s.published_at), "note": s.note}
            for s in versions.order_by("version")
        ],
    }


# --- Personal data usage (谁查了我的数据) — registered before data/{registry}/{version} --------------


def personal_data_usage(request: HttpRequest, params: Query[UsageQuery]):
    """Reads of the caller's own records (found by their ID number's blind index), newest first."""
    digest = getattr(request.auth, "id_number_digest", "") if not hasattr(request.auth, "client_id") else ""
    if not digest:
        raise HttpError(403, gettext("只有已完成实名认证的本人可以查询自己的数据被查询记录。"))
    claimed = params.userID or params.userId
    if claimed and blind_index(claimed, purpose="resident_id") != digest:
        raise HttpError(403, gettext("只能查询本人的数据被查询记录。"))
    logs = (
        AccessLog.objects.filter(subject_digest=digest)
        .select_related("registry", "record", "reader_org")
        .order_by("-at", "-id")
    )
    database = params.DatabaseID or params.databaseId
    if database:
        logs = logs.filter(registry__code=database)
    start = (params.page - 1) * params.page_size
    page = list(logs[start : start + params.page_size])
    clients = client_names([log.reader.removeprefix("client:") for log in page if log.reader.startswith("client:")])
    users = _user_names([log.reader for log in page if not log.reader.startswith("client:")])
    out = []
    for log in page:
        org = log.reader_org
        is_client = log.reader.startswith("client:")
        reference = [{"ReferenceID": str(log.record.uid)}]
        out.append(
            {
                "ID": str(log.pk),
                "ReaderID": log.reader,
                "ReaderInitials": "" if is_client else mask_name(users.get(log.reader, "")),
                "ReaderInstitutionID": org.uscc if org else "",
                "ReaderInstitutionName": org.name if org else "",
                "ReaderApplicationName": (
                    clients.get(log.reader.removeprefix("client:"), log.reader)
                    if is_client
                    else gettext("数字政府平台")
                ),
                "SearchDateTime": _iso(log.at),
                "Refrences": reference,
                "References": reference,
                "Registry": log.registry.code,
                "RegistryName": log.registry.name,
                "Purpose": log.purpose,
                "Fields": [name for name in (log.fields or []) if not name.startswith("<")],
                "Channel": log.channel,
            }
        )
    return out


def _user_names(usernames: list[str]) -> dict[str, str]:
    """Display names of the readers that are user accounts."""
    if not usernames:
        return {}
    users = get_user_model().objects.filter(username__in=set(usernames))
    return {user.get_username(): (getattr(user, "display_name", "") or "") for user in users}


_USAGE_KW: dict[str, Any] = {"response": list[PersonalDataUsageOut], "auth": [session_auth, client_auth]}
router.get("/data/MyPersonalDataUsage/1.0", summary="谁查了我的数据（MyPersonalDataUsage）", **_USAGE_KW)(
    personal_data_usage
)
for _number, _alias in enumerate(
    ("/data/mypersonalDataUsage", "/data/myPersonalDataUsage/1.0", "/data/mypersonalDataUsage/1.0"), start=1
):
    router.get(_alias, include_in_schema=False, operation_id=f"personal_data_usage_alias{_number}", **_USAGE_KW)(
        personal_data_usage
    )


# --- Data API --------------------------------------------------------------------------------------


@router.get("/data/{registryname}/{versionnumber}", response=ListOut, summary="list")
def list_records(request: HttpRequest, registryname: str, versionnumber: str, params: Query[ListQuery]):
    """Search and page through records; the returned records are logged as reads (one bulk insert)."""
    registry, fields = _resolve(request, registryname, versionnumber, READ_SCOPE)
    prefix = _read_scope(request, registry)
    size = params.page_size or params.pageSize or DEFAULT_PAGE_SIZE
    offset = (params.page - 1) * size
    records, total = services.search_records(
        registry,
        filters=_list_filters(request, registry, params),
        query="" if params.filter else params.search,
        order_by=_ordering(params.ordering),
        offset=offset,
        limit=size,
        division_code=prefix,
    )
    names = [field.name for field in fields]
    services.log_reads(records, actor=request.auth, purpose=_purpose(request), channel="api", fields=names)
    results = [_shape(record, _mask(request, fields, services.record_values_now(record))) for record in records]
    return {
        "count": total,
        "next": _page_url(request, params.page + 1) if offset + size < total else None,
        "previous": _page_url(request, params.page - 1) if params.page > 1 else None,
        "results": results,
    }


@router.post("/data/{registryname}/{versionnumber}/create", response=WrittenOut, summary="create")
def create(request: HttpRequest, registryname: str, versionnumber: str, body: WriteBody):
    """Create a record from ``write.content`` (validated against the current schema version)."""
    registry, _fields = _resolve(request, registryname, versionnumber, WRITE_SCOPE)
    cleaned = registry_schema.clean_values(services.registry_fields(registry), body.write.content)
    _check_unique(registry, cleaned)
    with _service_errors():
        record = services.create_record(registry, body.write.content, actor=request.auth)
    return _written(request, record, cleaned, created=True)


@router.post("/data/{registryname}/{versionnumber}/exists", response=ExistsOut, summary="exists")
def exists(request: HttpRequest, registryname: str, versionnumber: str, body: QueryBody):
    """Whether a record with all the given values exists (a match is logged as a read of those fields)."""
    registry, fields = _resolve(request, registryname, versionnumber, READ_SCOPE)
    prefix = _read_scope(request, registry)
    found = _matches(registry, body.query.content, prefix=prefix, limit=1)
    if not found:
        return {"answer": {"status": False, "message": gettext("未找到符合条件的记录。")}}
    _read(request, found[0], fields, only=list(body.query.content))
    return {"answer": {"status": True, "message": gettext("存在符合条件的记录。")}}


@router.post("/data/{registryname}/{versionnumber}/read", response=RecordOut, summary="read")
def read(request: HttpRequest, registryname: str, versionnumber: str, body: QueryBody):
    """The one record matching ``query.content`` (404 if none, 400 if the query matches several)."""
    registry, fields = _resolve(request, registryname, versionnumber, READ_SCOPE)
    prefix = _read_scope(request, registry)
    return _read(request, _single(registry, body.query.content, prefix=prefix), fields)


@router.put("/data/{registryname}/{versionnumber}/update", response=WrittenOut, summary="update")
def update(
    request: HttpRequest, registryname: str, versionnumber: str, body: QueryWriteBody, options: Query[WriteOptions]
):
    """Update the one record matching ``query`` (or the identifier in ``write``) with ``write.content``."""
    registry, _fields = _resolve(request, registryname, versionnumber, WRITE_SCOPE)
    expected = _if_match(request)
    changes = registry_schema.clean_values(services.registry_fields(registry), body.write.content, partial=True)
    record = _single(registry, _target_query(registry, body), prefix=None)
    with _service_errors():
        record = services.update_record(
            record,
            body.write.content,
            actor=request.auth,
            reason=body.reason,
            expected_version=expected,
            non_authoritative=options.non_authoritative,
        )
    return _written(request, record, changes)


def update_entries(
    request: HttpRequest, registryname: str, versionnumber: str, body: QueryWriteBody, options: Query[WriteOptions]
):
    """Apply ``write.content`` to every record matching ``query``, all or nothing."""
    registry, _fields = _resolve(request, registryname, versionnumber, WRITE_SCOPE)
    if body.query is None or not body.query.content:
        raise HttpError(400, gettext("update-entries 必须给出 query.content 查询条件。"))
    changes = registry_schema.clean_values(services.registry_fields(registry), body.write.content, partial=True)
    records = _matches(registry, body.query.content, prefix=None, limit=MAX_BULK_UPDATE)
    if len(records) > MAX_BULK_UPDATE:
        raise HttpError(400, gettext("匹配的记录超过 %(max)d 条，请缩小查询条件。") % {"max": MAX_BULK_UPDATE})
    department = _department(request)
    if options.non_authoritative == "refuse":
        # Authority is checked for every record before anything is written: the engine audits a
        # refusal in its own savepoint, which our all-or-nothing transaction below would roll back.
        for record in records:
            if services.refused_changes(record, changes, department=department):
                # Raises NotAuthoritative (403) and leaves the "denied" audit record.
                services.update_record(record, body.write.content, actor=request.auth, reason=body.reason)
    uuids = []
    with _service_errors(), transaction.atomic():
        for record in records:
            updated = services.update_record(
                record,
                body.write.content,
                actor=request.auth,
                reason=body.reason,
                non_authoritative=options.non_authoritative,
            )
            uuids.append(str(updated.uid))
    return {"count": len(uuids), "uuids": uuids}


for _path, _shown in (("update-entries", True), ("updateEntries", False)):
    router.put(
        f"/data/{{registryname}}/{{versionnumber}}/{_path}",
        response=UpdatedEntriesOut,
        summary="update-entries",
        include_in_schema=_shown,
        operation_id="update_entries" if _shown else "update_entries_alias",
    )(update_entries)


def update_or_create(
    request: HttpRequest, registryname: str, versionnumber: str, body: QueryWriteBody, options: Query[WriteOptions]
):
    """Update the record found by one key field in ``query`` (or the identifier in ``write``), or create it."""
    registry, _fields = _resolve(request, registryname, versionnumber, WRITE_SCOPE)
    key = _target_query(registry, body)
    if len(key) != 1 or next(iter(key)) not in _key_fields(registry):
        raise HttpError(
            400,
            gettext("update-or-create 的 query.content 应恰好包含一个检索字段（%(fields)s）。")
            % {"fields": "、".join(_key_fields(registry))},
        )
    ((name, value),) = key.items()
    current = services.registry_fields(registry)
    found = services.find_record(registry, name, value)
    if found is not None:
        changes = registry_schema.clean_values(current, body.write.content, partial=True)
        with _service_errors():
            record = services.update_record(
                found,
                body.write.content,
                actor=request.auth,
                reason=body.reason,
                non_authoritative=options.non_authoritative,
            )
        return _written(request, record, changes)
    values = {**body.write.content, name: value}
    cleaned = registry_schema.clean_values(current, values)
    _check_unique(registry, cleaned)
    with _service_errors():
        record = services.create_record(registry, values, actor=request.auth)
    return _written(request, record, cleaned, created=True)


for _path, _shown in (("update-or-create", True), ("updateOrCreate", False)):
    router.post(
        f"/data/{{registryname}}/{{versionnumber}}/{_path}",
        response=WrittenOut,
        summary="update-or-create",
        include_in_schema=_shown,
        operation_id="update_or_create" if _shown else "update_or_create_alias",
    )(update_or_create)


@router.delete("/data/{registryname}/{versionnumber}/{ID}/delete", response={204: None}, summary="delete")
def delete(request: HttpRequest, registryname: str, versionnumber: str, ID: str):  # noqa: N803 - the spec's name
    """Soft-delete a record (by uid or identifier); the reason from ``X-Reason`` or ``reason``."""
    registry, _fields = _resolve(request, registryname, versionnumber, WRITE_SCOPE)
    record = _record_by_path(registry, ID, None)
    reason = _header_text(request, "X-Reason", "reason")[:500] or gettext("经接口删除")
    with _service_errors():
        services.delete_record(record, actor=request.auth, reason=reason)
    return HttpResponse(status=204)


def read_value(request: HttpRequest, registryname: str, versionnumber: str, uuid: str, filename: str):
    """One field of one record: ``{field}.json`` → ``{"value": …}``, ``{field}.txt`` → plain text."""
    registry, fields = _resolve(request, registryname, versionnumber, READ_SCOPE)
    prefix = _read_scope(request, registry)
    field_name, dot, ext = filename.rpartition(".")
    if not dot or ext.lower() not in ("json", "txt"):
        raise HttpError(400, gettext("不支持的格式“%(ext)s”，可用 json、txt。") % {"ext": ext[:10]})
    if field_name not in {field.name for field in fields}:
        raise HttpError(404, gettext("该版本没有字段“%(field)s”。") % {"field": field_name[:64]})
    record = _record_by_path(registry, uuid, prefix)
    value = _read(request, record, fields, only=[field_name])["content"].get(field_name)
    if ext.lower() == "txt":
        text = "" if value is None else (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        return HttpResponse(text, content_type="text/plain; charset=utf-8")
    return JsonResponse({"value": value}, json_dumps_params={"ensure_ascii": False})


for _path, _shown in (("read-value", True), ("readValue", False)):
    router.get(
        f"/data/{{registryname}}/{{versionnumber}}/{{uuid}}/{_path}/{{filename}}",
        summary="read-value",
        include_in_schema=_shown,
        operation_id="read_value" if _shown else "read_value_alias",
    )(read_value)


@router.get("/data/{registryname}/{versionnumber}/{ID}", response=RecordOut, summary="read by uid (dgov)")
def read_by_id(request: HttpRequest, registryname: str, versionnumber: str, ID: str):  # noqa: N803
    """dgov extension: one record by uid (or identifier value) with GET, logged like ``read``."""
    registry, fields = _resolve(request, registryname, versionnumber, READ_SCOPE)
    prefix = _read_scope(request, registry)
    return _read(request, _record_by_path(registry, ID, prefix), fields)
