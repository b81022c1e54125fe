"""Service discovery of the exchange (服务发现), after X-Road's and GovStack Information Mediator's metaservices.

=================  ==========================================================================
X-Road            dgov (``/api/v1/exchange/…``)
=================  ==========================================================================
``listClients``    :func:`list_clients` — the members: departments that provide data services
                   (a published, shareable catalogue resource backed by a registry or by a
                   department data service) or consume them (hold a grant, or own an active
                   client with the ``exchange:call`` scope)
``listMethods``    :func:`list_methods` — the services of one provider (or all): for every
                   shareable resource its ``read``, ``query`` and ``verify`` methods and paths
``allowedMethods`` :func:`allowed_methods` — the subset the calling consumer holds live grants
                   for, with the granted items and their modes
``getOpenAPI``     :func:`openapi_document` — an OpenAPI 3.1 document of one resource's or one
                   provider's services, generated from the published items (names and types
                   only, never data)
=================  ==========================================================================

A *service* is one published catalogue resource (service code = resource code); its *methods*
are the gateway operations on it. A resource offers methods when its live published version is
not 不予共享 and at least one item is linked to a registry field (what the gateway serves), or
when no item is linked and the provider registered an active department data service for it
(dgov.exchange.dataservice; then every item that is not 不予共享 is listed).
Discovery answers carry catalogue metadata only; they are not written to the exchange log.
"""

from __future__ import annotations

from django.conf import settings

from dgov.catalog import services as catalog_services
from dgov.catalog.models import InformationResource, SharingType
from dgov.exchange.models import DataService, Grant, ItemMode
from dgov.kernel.models import Organization

__all__ = [
    "OPERATIONS",
    "allowed_methods",
    "list_clients",
    "list_methods",
    "openapi_document",
    "service_resources",
]

API_PREFIX = "/api/v1/exchange"

# operation → (HTTP method, path under the API prefix, summary); {key} is the resource code with "/" → "-".
OPERATIONS = {
    "read": ("GET", "/resources/{key}/records/{identifier}", "读取已授权信息项"),
    "query": ("POST", "/resources/{key}/records/query", "按标识查询已授权信息项（标识在请求体中）"),
    "verify": ("POST", "/resources/{key}/verify", "核验（数据可用不可见）"),
}

# 编制指南 item data types → JSON Schema.
_JSON_TYPES = {
    "C": {"type": "string"},
    "M": {"type": "string"},
    "G": {"type": "string", "contentEncoding": "base64"},
    "N": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
    "Y": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
    "I": {"type": "integer"},
    "B": {"type": "number"},
    "F": {"type": "number"},
    "D": {"type": "string", "format": "date"},
    "T": {"type": "string", "format": "date-time"},
    "L": {"type": "boolean"},
}


def url_key(code: str) -> str:
    """The URL form of a resource code (``101001000/000001`` → ``101001000-000001``)."""
    return code.replace("/", "-", 1)


def _served_items(resource: InformationResource, *, proxied: bool = False) -> list[dict]:
    """The published items the gateway can serve: linked to a field of the resource's (first) registry.

    ``proxied``: the resource has an active department data service (dgov.exchange.dataservice),
    which serves every shareable item when none is linked to a registry.
    """
    if resource.published_version_id is None or resource.status == InformationResource.Status.RETIRED:
        return []
    if resource.sharing_type == SharingType.NONE:
        return []
    published = resource.published_version.snapshot.get("items", [])
    items = [
        item
        for item in published
        if item.get("registry") and item.get("registry_field") and item.get("sharing_type") != SharingType.NONE
    ]
    linked = any(item.get("registry") and item.get("registry_field") for item in published)
    if proxied and not linked:
        return [item for item in published if item.get("sharing_type") != SharingType.NONE]
    if not items:
        return []
    registry = items[0]["registry"]
    return [item for item in items if item["registry"] == registry]


def service_resources(provider: Organization | None = None) -> list[tuple[InformationResource, list[dict]]]:
    """Published resources that offer gateway methods, with their servable items, ordered by code."""
    resources = catalog_services.visible_resources().exclude(sharing_type=SharingType.NONE).order_by("code")
    if provider is not None:
        resources = resources.filter(provider=provider)
    proxied = set(
        DataService.objects.filter(status=DataService.Status.ACTIVE, resource__in=resources).values_list(
            "resource_id", flat=True
        )
    )
    out = []
    for resource in resources:
        items = _served_items(resource, proxied=resource.pk in proxied)
        if items:
            out.append((resource, items))
    return out


def _instance() -> str:
    """This platform's identifier in discovery answers (X-Road's instance): its site URL."""
    return str(getattr(settings, "SITE_URL", "") or "")


def list_clients() -> list[dict]:
    """The members of the exchange: departments providing services or consuming them, with codes and roles."""
    from dgov.oidc.models import Client

    providers = {resource.provider_id for resource, _items in service_resources()}
    consumers = set(Grant.objects.values_list("consumer_id", flat=True).distinct())
    for org_id, scopes, grant_types in Client.objects.filter(is_active=True, organization__isnull=False).values_list(
        "organization_id", "scopes", "grant_types"
    ):
        if "exchange:call" in (scopes or []) and "client_credentials" in (grant_types or []):
            consumers.add(org_id)
    members = Organization.objects.filter(pk__in=providers | consumers, is_active=True).order_by("code")
    return [
        {
            "object_type": "MEMBER",
            "instance": _instance(),
            "member_class": org.kind or "",
            "member_code": org.code,
            "name": org.name,
            "uscc": org.uscc,
            "roles": [r for r, ids in (("provider", providers), ("consumer", consumers)) if org.pk in ids],
        }
        for org in members
    ]


def _method(resource: InformationResource, operation: str) -> dict:
    """One method (gateway operation on a resource) as discovery lists it."""
    http_method, path, summary = OPERATIONS[operation]
    return {
        "object_type": "SERVICE",
        "service_code": f"{resource.code}:{operation}",
        "resource": resource.code,
        "resource_name": resource.name,
        "provider": resource.provider.code,
        "operation": operation,
        "method": http_method,
        "path": API_PREFIX + path.replace("{key}", url_key(resource.code)),
        "sharing_type": resource.sharing_type,
        "openapi": f"{API_PREFIX}/getOpenAPI?resource={url_key(resource.code)}",
    }


def find_provider(code: str) -> Organization | None:
    """The active department with this code, or None."""
    return Organization.objects.filter(code=code, is_active=True).first() if code else None


def list_methods(provider: Organization | None = None) -> list[dict]:
    """Every method of the provider's (or every provider's) shareable resources."""
    return [_method(resource, op) for resource, _items in service_resources(provider) for op in OPERATIONS]


def allowed_methods(consumer: Organization, provider: Organization | None = None) -> list[dict]:
    """The methods the consumer holds live grants for: read/query need a ``full`` item, verify any item."""
    from dgov.exchange.services import live_grant_items

    resource_ids = set(
        Grant.objects.filter(consumer=consumer, revoked_at__isnull=True).values_list("resource_id", flat=True)
    )
    out = []
    for resource, items in service_resources(provider):
        if resource.pk not in resource_ids:
            continue
        granted, grant_id, _code = live_grant_items(consumer, resource)
        served = {item["code"] for item in items}
        granted = {code: mode for code, mode in sorted(granted.items()) if code in served}
        if grant_id is None or not granted:
            continue
        full = any(mode == ItemMode.FULL for mode in granted.values())
        for operation in OPERATIONS:
            if operation in ("read", "query") and not full:
                continue
            method = _method(resource, operation)
            method["items"] = granted if operation == "verify" else {c: m for c, m in granted.items() if m == "full"}
            out.append(method)
    return out


# --- OpenAPI -------------------------------------------------------------------------------------------


def _item_schema(item: dict) -> dict:
    """The JSON Schema of one item's value (nullable: a record may lack it)."""
    schema = dict(_JSON_TYPES.get(item.get("data_type") or "C", {"type": "string"}))
    schema["type"] = [schema["type"], "null"]
    if item.get("length") and schema["type"][0] == "string" and "format" not in schema and "pattern" not in schema:
        schema["maxLength"] = int(item["length"])
    schema["title"] = item.get("name") or item["code"]
    if item.get("description"):
        schema["description"] = item["description"]
    return schema


def _problem_ref() -> dict:
    """A reference to the shared problem+json response."""
    return {"$ref": "#/components/responses/Problem"}


def _resource_paths(resource: InformationResource, items: list[dict], components: dict) -> dict:
    """The three gateway paths of one resource, adding its item schemas to ``components``."""
    key = url_key(resource.code)
    name = f"Items_{key.replace('-', '_')}"
    components[name] = {
        "type": "object",
        "title": resource.name,
        "description": "已授权的信息项（未授权的信息项不返回）",
        "properties": {item["code"]: _item_schema(item) for item in items},
        "additionalProperties": False,
    }
    codes = [item["code"] for item in items]
    read_out = {
        "type": "object",
        "required": ["resource", "record", "items", "exchange"],
        "properties": {
            "resource": {"type": "string", "const": resource.code},
            "record": {"type": "string", "description": "记录标识（uid）"},
            "items": {"$ref": f"#/components/schemas/{name}"},
            "exchange": {"$ref": "#/components/schemas/ExchangeRef"},
        },
    }
    errors = {str(s): _problem_ref() for s in (400, 401, 403, 404, 422, 429)}
    tag = [resource.code]
    base = f"{API_PREFIX}/resources/{key}"
    return {
        f"{base}/records/{{identifier}}": {
            "get": {
                "operationId": f"read_{key}",
                "summary": OPERATIONS["read"][2],
                "tags": tag,
                "parameters": [
                    {"name": "identifier", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "items",
                        "in": "query",
                        "required": False,
                        "description": "逗号分隔的信息项代码；缺省为全部已授权信息项",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {"200": _json_response(read_out), **errors},
            }
        },
        f"{base}/records/query": {
            "post": {
                "operationId": f"query_{key}",
                "summary": OPERATIONS["query"][2],
                "tags": tag,
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["identifier"],
                        "properties": {
                            "identifier": {"type": "string", "minLength": 1, "maxLength": 64},
                            "items": {"type": "array", "items": {"type": "string", "enum": codes}},
                        },
                    }
                ),
                "responses": {"200": _json_response(read_out), **errors},
            }
        },
        f"{base}/verify": {
            "post": {
                "operationId": f"verify_{key}",
                "summary": OPERATIONS["verify"][2],
                "tags": tag,
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["identifier", "item", "op"],
                        "properties": {
                            "identifier": {"type": "string", "minLength": 1, "maxLength": 64},
                            "item": {"type": "string", "enum": codes},
                            "op": {"type": "string", "enum": ["eq", "lt", "gt", "exists"]},
                            "value": {"type": ["string", "number", "boolean", "null"]},
                        },
                    }
                ),
                "responses": {
                    "200": _json_response(
                        {
                            "type": "object",
                            "required": ["result", "exchange"],
                            "properties": {
                                "result": {"type": "boolean"},
                                "exchange": {"$ref": "#/components/schemas/ExchangeRef"},
                            },
                        }
                    ),
                    **errors,
                },
            }
        },
    }


def _json_response(schema: dict) -> dict:
    """A 200 response with a JSON body."""
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _json_body(schema: dict) -> dict:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _version(pairs) -> str:
    """The document's version: the resource's version, or a provider's newest publication time."""
    if len(pairs) == 1:
        return str(pairs[0][0].published_version.snapshot.get("version", 1))
    return max(str(r.published_version.snapshot.get("published_at", "")) for r, _items in pairs) or "1"


def openapi_document(
    *, resource: InformationResource | None = None, provider: Organization | None = None
) -> dict | None:
    """An OpenAPI 3.1 document of one resource's or one provider's gateway services (None when it offers none)."""
    if resource is not None:
        pairs = [(r, items) for r, items in service_resources(resource.provider) if r.pk == resource.pk]
        title = f"{resource.name}（{resource.code}）"
    elif provider is not None:
        pairs = service_resources(provider)
        title = f"{provider.name} 数据服务"
    else:
        return None
    if not pairs:
        return None
    schemas: dict = {
        "ExchangeRef": {
            "type": ["object", "null"],
            "description": "记录本次调用的交换日志条目（用于下载回执）",
            "properties": {"seq": {"type": "integer"}, "hash": {"type": "string"}},
        }
    }
    paths: dict = {}
    for res, items in pairs:
        paths.update(_resource_paths(res, items, schemas))
    owner = (resource.provider if resource is not None else provider).code
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": _version(pairs),
            "description": "由政务信息资源目录生成的共享交换网关服务说明；只含信息项名称和类型，不含数据。",
            "x-provider": owner,
        },
        "servers": [{"url": str(getattr(settings, "SITE_URL", "") or "/")}],
        "security": [{"clientCredentials": ["exchange:call"]}],
        "tags": [{"name": r.code, "description": r.name} for r, _items in pairs],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                "Problem": {
                    "description": "拒绝或错误（problem+json，含 code 与 exchange_seq）",
                    "content": {"application/problem+json": {"schema": {"type": "object"}}},
                }
            },
            "securitySchemes": {
                "clientCredentials": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "/oidc/token",
                            "scopes": {"exchange:call": "调用共享交换网关"},
                        }
                    },
                }
            },
        },
    }
