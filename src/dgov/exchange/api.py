"""The data-service gateway (共享交换网关) at /api/v1/exchange/.

=======  ===============================================  =========================================
method   path                                             what
=======  ===============================================  =========================================
GET      ``/resources/{key}/records/{identifier}``        the granted items of one record
POST     ``/resources/{key}/records/query``               the same, identifier in the body (preferred)
POST     ``/resources/{key}/verify``                      a yes/no verification (核验) of one item
POST     ``/resources/{key}/records/batch``               several records at once (``EXCHANGE_MAX_RECORDS``)
GET      ``/log/{seq}/receipt``                           the signed receipt of one exchange
GET      ``/listClients``                                 discovery: the member departments
GET      ``/listMethods?provider=``                       discovery: the services providers offer
GET      ``/allowedMethods?provider=``                    discovery: the services the caller may call
GET      ``/getOpenAPI?resource=|provider=``              discovery: an OpenAPI 3.1 document
=======  ===============================================  =========================================

``{key}`` is the resource code with ``/`` written as ``-``; ``{identifier}`` is the value of the
identifier field of the registry behind the resource's items (an ID number, a USCC …). Callers
authenticate with a client-credentials access token of dgov's OIDC provider carrying the
``exchange:call`` scope; the client's department is the consumer. Refusals are problem+json with a
``code`` member (``no_grant``, ``grant_expired``, ``grant_revoked``, ``item_not_granted``,
``rate_limited`` …; for a resource served by a department's own service also ``service_suspended``,
``upstream_error``, ``upstream_timeout``, ``upstream_bad_answer``) and the ``exchange_seq`` of the log
entry that recorded them; messages never contain data. See docs/exchange.md.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from ninja import Query, Router, Schema
from pydantic import Field

from dgov.api.auth import bearer_auth
from dgov.api.problems import problem_response
from dgov.catalog import services as catalog_services
from dgov.exchange import discovery, services
from dgov.exchange.models import ExchangeLogEntry
from dgov.kernel.observability import current_request_id

router = Router(tags=["exchange"], auth=[bearer_auth])

_SLUGS = {
    429: "too-many-requests",
    400: "bad-request",
    403: "forbidden",
    404: "not-found",
    422: "invalid-data",
    # A department data service behind the gateway failed (dgov.exchange.dataservice).
    502: "bad-gateway",
    503: "service-unavailable",
    504: "gateway-timeout",
}


def _refused(request: HttpRequest, exc: services.GatewayRefusal, identifier: str = "") -> HttpResponse:
    """A gateway refusal as problem+json (429 with Retry-After); the identifier is cut out of ``instance``."""
    headers = {"Retry-After": "1"} if exc.status == 429 else None
    instance = request.path
    if identifier:
        instance = instance.replace(quote(identifier, safe=""), "-").replace(identifier, "-")
    return problem_response(
        request,
        exc.status,
        instance=instance,
        detail=exc.message,
        slug=_SLUGS.get(exc.status),
        headers=headers,
        code=exc.code,
        exchange_seq=exc.seq,
    )


class ReadParams(Schema):
    """Query of a read: optionally the items wanted (default: every granted item)."""

    items: str = Field("", max_length=1000, description="逗号分隔的信息项代码；缺省为全部已授权信息项")


class QueryIn(Schema):
    """A read by the registry identifier in the body (keeps ID numbers out of URLs and server logs)."""

    identifier: str = Field(..., min_length=1, max_length=64)
    items: list[str] = Field(default_factory=list, max_length=200)


class ExchangeRef(Schema):
    """The exchange-log entry that recorded the call (for the receipt)."""

    seq: int
    hash: str


class ReadOut(Schema):
    """The granted items of one record."""

    resource: str
    record: str
    items: dict[str, Any]
    exchange: ExchangeRef | None


class VerifyIn(Schema):
    """A verification question: is ``item`` of the record with ``identifier`` ``op`` ``value``?"""

    identifier: str = Field(..., min_length=1, max_length=64)
    item: str = Field(..., min_length=1, max_length=64)
    op: Literal["eq", "lt", "gt", "exists"]
    value: str | int | float | bool | None = None


class VerifyOut(Schema):
    """The answer, without the value."""

    result: bool
    exchange: ExchangeRef | None


def _request_id(request: HttpRequest) -> str:
    """The id of this request (also in the logs and the X-Request-ID header)."""
    return getattr(request, "request_id", None) or current_request_id()


@router.post("/resources/{key}/records/query", response=ReadOut, summary="按标识查询已授权信息项")
def query_record(request: HttpRequest, key: str, payload: QueryIn):
    """As the GET read, with the identifier in the body (the recommended form for personal identifiers)."""
    try:
        return services.gateway_read(
            request.auth,
            services.resource_code(key),
            payload.identifier,
            fields=payload.items or None,
            request_id=_request_id(request),
        )
    except services.GatewayRefusal as exc:
        return _refused(request, exc)


# Batch reads (registered before the GET by identifier, whose path pattern would also match).


class BatchIn(Schema):
    """A read of several records by their registry identifiers (at most ``EXCHANGE_MAX_RECORDS``)."""

    identifiers: list[str] = Field(..., min_length=1, max_length=10_000)
    items: list[str] = Field(default_factory=list, max_length=200)


class BatchRecord(Schema):
    """One record of a batch answer."""

    record: str
    items: dict[str, Any]


class BatchOut(Schema):
    """The granted items of each asked record, in the order asked (``null`` where there is none)."""

    resource: str
    records: list[BatchRecord | None]
    exchange: ExchangeRef | None


@router.post("/resources/{key}/records/batch", response=BatchOut, summary="批量查询已授权信息项")
def batch_records(request: HttpRequest, key: str, payload: BatchIn):
    """Read several records at once; over the record or size limit the call is refused (422 too_large)."""
    try:
        return services.gateway_read_many(
            request.auth,
            services.resource_code(key),
            [value[:64] for value in payload.identifiers],
            fields=payload.items or None,
            request_id=_request_id(request),
        )
    except services.GatewayRefusal as exc:
        return _refused(request, exc)


@router.get("/resources/{key}/records/{identifier}", response=ReadOut, summary="读取已授权信息项")
def read_record(request: HttpRequest, key: str, identifier: str, params: Query[ReadParams]):
    """Return the granted items of the record with this identifier (logged in the exchange log)."""
    fields = [part.strip() for part in params.items.split(",") if part.strip()] or None
    try:
        return services.gateway_read(
            request.auth, services.resource_code(key), identifier, fields=fields, request_id=_request_id(request)
        )
    except services.GatewayRefusal as exc:
        return _refused(request, exc, identifier)


@router.post("/resources/{key}/verify", response=VerifyOut, summary="核验（数据可用不可见）")
def verify(request: HttpRequest, key: str, payload: VerifyIn):
    """Answer a yes/no question about one granted item without returning its value (logged)."""
    try:
        return services.gateway_verify(
            request.auth,
            services.resource_code(key),
            identifier=payload.identifier,
            item=payload.item,
            op=payload.op,
            value=payload.value,
            request_id=_request_id(request),
        )
    except services.GatewayRefusal as exc:
        return _refused(request, exc)


@router.get("/log/{seq}/receipt", summary="交换回执（SM2 签名）")
def log_receipt(request: HttpRequest, seq: int):
    """The signed receipt of an exchange, for its consumer or provider (others: 404)."""
    entry = ExchangeLogEntry.objects.filter(seq=seq).first()
    if entry is None or not services.can_see_entry(request.auth, entry):
        return problem_response(request, 404, detail=gettext("交换记录不存在"))
    return services.receipt(entry)


# --- Service discovery (X-Road / GovStack Information Mediator metaservices) -------------------------


def _discovery_caller(request: HttpRequest):
    """The calling client's department, or a problem+json refusal (403; discovery is not logged)."""
    try:
        return services.client_department(request.auth), None
    except services.GatewayRefusal as exc:
        return None, _refused(request, exc)


class ProviderParams(Schema):
    """Narrow discovery to one provider department (its code)."""

    provider: str = Field("", max_length=32, description="提供部门编码；缺省为全部提供部门")


def _provider_or_404(request: HttpRequest, code: str):
    """``(provider or None, refusal)``: an unknown provider code answers 404."""
    if not code:
        return None, None
    provider = discovery.find_provider(code)
    if provider is None:
        return None, problem_response(request, 404, detail=gettext("提供部门不存在"), code="provider_not_found")
    return provider, None


@router.get("/listClients", summary="服务发现：成员部门列表")
def list_clients(request: HttpRequest):
    """The member departments of the exchange (providers and consumers) with their codes and roles."""
    _department, refusal = _discovery_caller(request)
    if refusal is not None:
        return refusal
    return {"members": discovery.list_clients()}


@router.get("/listMethods", summary="服务发现：提供部门的服务方法")
def list_methods(request: HttpRequest, params: Query[ProviderParams]):
    """The gateway methods (read, query, verify) of every shareable resource of the provider (or of all)."""
    _department, refusal = _discovery_caller(request)
    if refusal is not None:
        return refusal
    provider, refusal = _provider_or_404(request, params.provider)
    if refusal is not None:
        return refusal
    return {"services": discovery.list_methods(provider)}


@router.get("/allowedMethods", summary="服务发现：本部门可调用的服务方法")
def allowed_methods(request: HttpRequest, params: Query[ProviderParams]):
    """The methods the calling client's department holds live grants for, with the granted items."""
    department, refusal = _discovery_caller(request)
    if refusal is not None:
        return refusal
    provider, refusal = _provider_or_404(request, params.provider)
    if refusal is not None:
        return refusal
    return {"services": discovery.allowed_methods(department, provider)}


class OpenAPIParams(Schema):
    """The resource (code, ``/`` or ``-``) or the provider (department code) to describe."""

    resource: str = Field("", max_length=40)
    provider: str = Field("", max_length=32)


@router.get("/getOpenAPI", summary="服务发现：OpenAPI 3.1 服务描述")
def get_openapi(request: HttpRequest, params: Query[OpenAPIParams]):
    """An OpenAPI 3.1 document of one resource's or one provider's gateway services (item names and types only)."""
    _department, refusal = _discovery_caller(request)
    if refusal is not None:
        return refusal
    if bool(params.resource) == bool(params.provider):
        return problem_response(request, 400, detail=gettext("须且只能指定 resource 或 provider 之一"))
    document = None
    if params.resource:
        resource = catalog_services.find_resource(services.resource_code(params.resource))
        if resource is not None:
            document = discovery.openapi_document(resource=resource)
    else:
        provider = discovery.find_provider(params.provider)
        if provider is not None:
            document = discovery.openapi_document(provider=provider)
    if document is None:
        return problem_response(request, 404, detail=gettext("没有可描述的数据服务"), code="no_data_service")
    return document
