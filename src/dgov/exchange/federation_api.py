"""Federation (级联) endpoints: what peers call at /api/v1/federation/, and local clients' calls to peers.

Peers (signed requests, signed answers; see :mod:`dgov.exchange.federation`):

======  ==============================  =================================================================
method  path                            what
======  ==============================  =================================================================
GET     ``/keys``                       this instance's code and federation public keys (not signed)
GET     ``/catalog``                    the published resources offering a data service (metadata only)
POST    ``/requests``                   a peer's department files a share request (201 + its status)
GET     ``/requests?ids=1,2``           the status of the peer's own requests (others are left out)
POST    ``/gateway/read``               a peer client's read, answered by the local gateway
POST    ``/gateway/verify``             a peer client's verification (核验)
======  ==============================  =================================================================

Local clients (``/api/v1/exchange/peers/``, client-credentials token with ``exchange:call``, as the
local gateway): ``POST /{peer}/resources/{key}/records/query`` and ``POST /{peer}/resources/{key}/verify``.

Refusals are problem+json with a ``code``; messages never carry data nor the peer's own texts.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from ninja import Router, Schema
from pydantic import Field

from dgov.api.auth import bearer_auth
from dgov.api.problems import problem_response
from dgov.exchange import federation, services
from dgov.exchange import federation_exchange as exchange
from dgov.exchange.federation import Refused

router = Router(tags=["federation"])
gateway_router = Router(tags=["exchange"], auth=[bearer_auth])

_SLUGS = {429: "too-many-requests", 400: "bad-request", 403: "forbidden", 404: "not-found", 422: "invalid-data"}


# --- Peers' side ------------------------------------------------------------------------------------


def _signed_json(request: HttpRequest, status: int, data: dict) -> HttpResponse:
    """A signed JSON answer to a peer."""
    body = json.dumps(data, ensure_ascii=False, cls=DjangoJSONEncoder)
    response = HttpResponse(body, status=status, content_type="application/json; charset=utf-8")
    return federation.answer(response, request)


def _signed_problem(request: HttpRequest, status: int, code: str, message: str, **extra: Any) -> HttpResponse:
    """A signed problem+json refusal to a peer."""
    response = problem_response(request, status, detail=message, slug=_SLUGS.get(status), code=code, **extra)
    return federation.answer(response, request)


def _refused(request: HttpRequest, exc: Refused) -> HttpResponse:
    """A federation refusal (already logged) as a signed problem."""
    extra = {"errors": [{"loc": ["body"], "msg": m, "type": exc.code} for m in exc.errors]} if exc.errors else {}
    return _signed_problem(request, exc.status, exc.code, exc.message, **extra)


def _body(request: HttpRequest) -> Any:
    """The request's JSON body (None when it is not JSON)."""
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        return None


@router.get("/keys", summary="级联：本平台的编码与签名公钥")
def keys(request: HttpRequest):
    """This instance's federation code and SM2 public keys (peers pin them; fingerprints for out-of-band checks)."""
    return federation.keys_document()


@router.get("/catalog", summary="级联：可共享的目录（签名请求）")
def catalog(request: HttpRequest):
    """The resources offered to peers (published, shareable, with a data service): metadata and items, no data."""
    try:
        call = federation.authenticate(request, "fed-catalog")
    except Refused as exc:
        return _refused(request, exc)
    document = exchange.catalogue_document()
    federation.log_federation(
        "fed-catalog", result="ok", peer_code=call.peer.code, consumer_code=call.peer.code, request_id=call.nonce
    )
    return _signed_json(request, 200, document)


@router.post("/requests", summary="级联：对端部门提交共享申请（签名请求）")
def file_request(request: HttpRequest):
    """A peer's department files a share request (its mirror is the consumer); 201 with the request's status."""
    try:
        call = federation.authenticate(request, "fed-request")
        return _signed_json(request, 201, exchange.receive_request(call, _body(request)))
    except Refused as exc:
        return _refused(request, exc)


@router.get("/requests", summary="级联：对端查询其共享申请状态（签名请求）")
def request_status(request: HttpRequest, ids: str = ""):
    """The status of the peer's own requests (at most 100 ids, comma-separated)."""
    try:
        call = federation.authenticate(request, "fed-status")
    except Refused as exc:
        return _refused(request, exc)
    wanted = [part.strip() for part in ids.split(",") if part.strip()][: exchange.MAX_IDS]
    return _signed_json(request, 200, exchange.request_statuses(call, wanted))


def _serve(request: HttpRequest, operation: str) -> HttpResponse:
    """Authenticate a peer's data call and answer it through the local gateway."""
    try:
        call = federation.authenticate(request, operation)
        return _signed_json(request, 200, exchange.serve(call, operation, _body(request)))
    except Refused as exc:
        return _refused(request, exc)
    except services.GatewayRefusal as exc:
        return _signed_problem(request, exc.status, exc.code, exc.message, exchange_seq=exc.seq)


@router.post("/gateway/read", summary="级联：对端客户端读取已授权信息项（签名请求）")
def gateway_read(request: HttpRequest):
    """A peer client's read for its department (mirror): the local gateway checks the grant and logs it."""
    return _serve(request, "read")


@router.post("/gateway/verify", summary="级联：对端客户端核验（签名请求）")
def gateway_verify(request: HttpRequest):
    """A peer client's verification for its department (mirror): yes or no, never the value."""
    return _serve(request, "verify")


# --- Local clients calling a peer's resource -----------------------------------------------------------


class RemoteQueryIn(Schema):
    """A read of a peer's resource by the registry identifier (in the body, out of URLs and logs)."""

    identifier: str = Field(..., min_length=1, max_length=64)
    items: list[str] = Field(default_factory=list, max_length=200)


class RemoteVerifyIn(Schema):
    """A verification question about an item of a record of a peer's resource."""

    identifier: str = Field(..., min_length=1, max_length=64)
    item: str = Field(..., min_length=1, max_length=64)
    op: Literal["eq", "lt", "gt", "exists"]
    value: str | int | float | bool | None = None


def _gateway_refused(request: HttpRequest, exc: services.GatewayRefusal) -> HttpResponse:
    """A refused remote call as problem+json (already logged here)."""
    headers = {"Retry-After": "1"} if exc.status == 429 else None
    slug, title = _SLUGS.get(exc.status), None
    if exc.status >= 500:  # the peer gave no usable answer: a gateway problem, not an internal error
        slug, title = "bad-gateway", gettext("级联对端未能应答")
    return problem_response(
        request,
        exc.status,
        detail=exc.message,
        slug=slug,
        title=title,
        headers=headers,
        code=exc.code,
        exchange_seq=exc.seq,
    )


@gateway_router.post("/{peer}/resources/{key}/records/query", summary="跨级读取已授权信息项")
def remote_query(request: HttpRequest, peer: str, key: str, payload: RemoteQueryIn):
    """Read granted items of a record of a peer's resource (logged here and at the peer)."""
    try:
        return exchange.remote_read(
            request.auth, peer, services.resource_code(key), payload.identifier, fields=payload.items
        )
    except services.GatewayRefusal as exc:
        return _gateway_refused(request, exc)


@gateway_router.post("/{peer}/resources/{key}/verify", summary="跨级核验（数据可用不可见）")
def remote_verify(request: HttpRequest, peer: str, key: str, payload: RemoteVerifyIn):
    """A yes/no verification of an item of a peer's resource (logged here and at the peer)."""
    try:
        return exchange.remote_verify(
            request.auth,
            peer,
            services.resource_code(key),
            identifier=payload.identifier,
            item=payload.item,
            op=payload.op,
            value=payload.value,
        )
    except services.GatewayRefusal as exc:
        return _gateway_refused(request, exc)
