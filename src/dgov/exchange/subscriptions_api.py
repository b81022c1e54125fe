"""Change subscriptions and webhook deliveries (变更订阅) at /api/v1/exchange/subscriptions/.

======  ==========================================  ==============================================
method  path                                        what
======  ==========================================  ==============================================
GET     ``/``                                       my department's subscriptions
POST    ``/``                                       subscribe ``{resource, callback_url, description}``
GET     ``/keys``                                   the SM2 public keys webhooks are signed with
GET     ``/{id}``                                   one subscription
POST    ``/{id}/pause`` ``/{id}/resume`` ``/{id}/end``  change its state (optional ``{"reason"}``)
GET     ``/{id}/deliveries?state=&since=&until=``   its deliveries (status search)
POST    ``/{id}/deliveries/{uid}/retry``            send a failed delivery again now
======  ==========================================  ==============================================

Officials of the consumer department (session or user token) and its clients holding
``exchange:call`` (client-credentials token) may use it; other departments' subscriptions answer
404. See docs/exchange.md, “Subscriptions and webhooks”.
"""

from __future__ import annotations

import datetime
import json
import uuid

from django.http import Http404, HttpRequest
from django.utils.translation import gettext
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from dgov.api.auth import bearer_auth, session_auth
from dgov.api.problems import problem_response
from dgov.catalog import services as catalog_services
from dgov.exchange import subscriptions as services
from dgov.exchange.models import Delivery, Subscription

router = Router(tags=["exchange"], auth=[session_auth, bearer_auth])


class SubscriptionIn(Schema):
    """A new subscription: the resource code (``/`` or ``-``), the callback URL, a note."""

    resource: str = Field(..., min_length=1, max_length=40)
    callback_url: str = Field(..., min_length=1, max_length=1000)
    description: str = Field("", max_length=200)


class SubscriptionOut(Schema):
    """A subscription as its consumer sees it."""

    id: int
    resource: str
    grant: int
    callback_url: str
    description: str
    status: str
    status_reason: str
    consecutive_failures: int
    created_by: str
    created_at: datetime.datetime


class DeliveryOut(Schema):
    """One webhook delivery and its outcome so far."""

    uid: str
    event: str
    event_id: int
    state: str
    attempts: int
    next_attempt_at: datetime.datetime | None
    last_attempt_at: datetime.datetime | None
    last_status_code: int | None
    last_error: str
    delivered_at: datetime.datetime | None
    created_at: datetime.datetime
    payload: dict


class DeliveryParams(Schema):
    """Delivery search: state, local creation days, how many."""

    state: str = Field("", max_length=10)
    since: datetime.date | None = None
    until: datetime.date | None = None
    limit: int = Field(100, ge=1, le=500)


class KeyOut(Schema):
    """A public key webhooks are (or were) signed with."""

    kid: str
    status: str
    alg: str
    uid: str
    public_key: str


def _out(subscription: Subscription) -> dict:
    """A subscription as the API returns it."""
    return {
        "id": subscription.pk,
        "resource": subscription.resource.code,
        "grant": subscription.grant_id,
        "callback_url": subscription.callback_url,
        "description": subscription.description,
        "status": subscription.status,
        "status_reason": subscription.status_reason,
        "consecutive_failures": subscription.consecutive_failures,
        "created_by": subscription.created_by,
        "created_at": subscription.created_at,
    }


def _delivery_out(delivery: Delivery) -> dict:
    """A delivery as the API returns it."""
    return {
        "uid": str(delivery.uid),
        "event": delivery.event_type,
        "event_id": delivery.event_id,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_attempt_at": delivery.last_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "delivered_at": delivery.delivered_at,
        "created_at": delivery.created_at,
        "payload": delivery.payload,
    }


def _reason(request: HttpRequest) -> str:
    """The optional ``{"reason": "..."}`` body of pause and end (an empty body is no reason)."""
    if not request.body or not request.content_type.endswith("json"):
        return ""
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, gettext("请求体须为 JSON")) from None
    reason = data.get("reason", "") if isinstance(data, dict) else ""
    return str(reason or "")[:300]


def _transition(request: HttpRequest, step):
    """Run a state change; a step the current state does not allow is 409 problem+json."""
    try:
        return step()
    except services.exchange_services.InvalidTransition as exc:
        return problem_response(request, 409, detail="；".join(exc.messages), code=exc.code)


def _mine(request: HttpRequest, pk: int) -> Subscription:
    """One of the caller's department's subscriptions; 404 for any other (no IDOR)."""
    subscription = services.subscriptions_of(request.auth).filter(pk=pk).first()
    if subscription is None:
        raise Http404(gettext("订阅不存在"))
    return subscription


@router.get("/", response=list[SubscriptionOut], summary="本部门的变更订阅")
def list_subscriptions(request: HttpRequest):
    """The subscriptions of the caller's department, newest first."""
    return [_out(s) for s in services.subscriptions_of(request.auth)[:500]]


@router.post("/", response={201: SubscriptionOut}, summary="订阅信息资源的变更")
def create_subscription(request: HttpRequest, payload: SubscriptionIn):
    """Subscribe the caller's department to a resource it holds a live grant on."""
    code = payload.resource if "/" in payload.resource else payload.resource.replace("-", "/", 1)
    resource = catalog_services.find_resource(code)
    if resource is None:
        return problem_response(request, 404, detail=gettext("信息资源不存在或未发布"))
    subscription = services.subscribe(
        resource, actor=request.auth, callback_url=payload.callback_url, description=payload.description
    )
    return Status(201, _out(subscription))


@router.get("/keys", response=list[KeyOut], summary="推送签名公钥")
def webhook_keys(request: HttpRequest):
    """The SM2 public keys (active and retired) that verify webhook signatures, by kid."""
    return services.public_keys()


@router.get("/{int:pk}", response=SubscriptionOut, summary="订阅详情")
def get_subscription(request: HttpRequest, pk: int):
    """One subscription of the caller's department."""
    return _out(_mine(request, pk))


@router.post("/{int:pk}/pause", response=SubscriptionOut, summary="暂停订阅")
def pause_subscription(request: HttpRequest, pk: int):
    """Stop sending until resumed (deliveries keep accumulating)."""
    reason = _reason(request)
    subscription = _mine(request, pk)
    return _transition(request, lambda: _out(services.pause(subscription, actor=request.auth, reason=reason)))


@router.post("/{int:pk}/resume", response=SubscriptionOut, summary="恢复订阅")
def resume_subscription(request: HttpRequest, pk: int):
    """Resume a paused subscription."""
    subscription = _mine(request, pk)
    return _transition(request, lambda: _out(services.resume(subscription, actor=request.auth)))


@router.post("/{int:pk}/end", response=SubscriptionOut, summary="终止订阅")
def end_subscription(request: HttpRequest, pk: int):
    """End the subscription for good (unsent deliveries are dropped)."""
    reason = _reason(request)
    subscription = _mine(request, pk)
    return _transition(request, lambda: _out(services.end(subscription, actor=request.auth, reason=reason)))


@router.get("/{int:pk}/deliveries", response=list[DeliveryOut], summary="推送记录查询")
def list_deliveries(request: HttpRequest, pk: int, params: Query[DeliveryParams]):
    """The subscription's deliveries by state and creation day (Asia/Shanghai), newest first."""
    subscription = _mine(request, pk)
    rows = services.deliveries_of(
        subscription, actor=request.auth, state=params.state, since=params.since, until=params.until
    )
    return [_delivery_out(d) for d in rows[: params.limit]]


@router.post("/{int:pk}/deliveries/{uid}/retry", response=DeliveryOut, summary="立即重试推送")
def retry_delivery(request: HttpRequest, pk: int, uid: str):
    """Schedule a failed or dead delivery for the worker's next pass."""
    subscription = _mine(request, pk)
    try:
        key = uuid.UUID(uid)
    except ValueError:
        raise Http404(gettext("推送记录不存在")) from None
    delivery = Delivery.objects.filter(subscription=subscription, uid=key).select_related("subscription").first()
    if delivery is None:
        raise Http404(gettext("推送记录不存在"))
    return _transition(request, lambda: _delivery_out(services.retry_now(delivery, actor=request.auth)))
