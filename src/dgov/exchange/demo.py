"""The demo exchange: share requests in each state, a gateway client and logged calls, seeded by `dgov demo`.

On top of the demo catalogue (``dgov.catalog.demo``), the provincial 民政厅 (MZ):

* is granted 省市场监管局's 企业营业执照信息 (无条件共享) at once;
* waits for 省公安厅's decision on 人口基本信息 (有条件共享, due in ``EXCHANGE_APPROVAL_DAYS`` working days);

and the provincial 人社厅 (RS) was refused 户籍户信息 by 省公安厅, with a reason. 省市场监管局's
食品经营许可信息 has a registered department data service whose host does not exist (no department
service runs in the demo: its page shows the registration, and 检测连通性 fails). The client
``mzt-exchange-demo`` (client credentials, scope ``exchange:call``) belongs to MZ; its secret is
generated and dropped, never printed — an administrator rotates it to try the gateway
(`dgov oidc client rotate mzt-exchange-demo`). A handful of gateway calls by that client — reads
and a verification that are served, one for items not granted and one for a resource without a
grant that are refused — are made through the gateway services, so the exchange log, its page and
the registry's 谁查了我的数据 show data. Seeding is idempotent: existing requests and the client
are kept, and the calls are made only while the client has none in the log.
"""

from __future__ import annotations

import contextlib
import datetime
import random
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from dgov.catalog.models import InformationResource
from dgov.exchange import services
from dgov.exchange.models import ExchangeLogEntry, ShareRequest
from dgov.kernel.models import Organization

DEMO_ACTOR = "system:demo"
# Not "demo-…": that prefix is the registry demo's own set of clients (dgov.registry.demo.DEMO_OIDC_CLIENTS).
CLIENT_ID = "mzt-exchange-demo"
PURPOSE_GRANTED = "社会救助对象经营状况核查"

# (consumer kind, provider kind, resource name, items {code: mode}, purpose, legal basis, refusal reason or "")
REQUESTS: tuple[tuple, ...] = (
    (
        "MZ",
        "SCJG",
        "企业营业执照信息",
        {"uscc": "full", "name": "full", "type": "full", "established_on": "verify"},
        PURPOSE_GRANTED,
        "《社会救助暂行办法》第六十条",
        "",
    ),
    (
        "MZ",
        "GA",
        "人口基本信息",
        {"name": "full", "birth_date": "full", "status": "verify"},
        "最低生活保障申请家庭成员身份核验",
        "《社会救助暂行办法》第十一条",
        "",
    ),
    (
        "RS",
        "GA",
        "户籍户信息",
        {"household_no": "full", "head": "full", "address": "full"},
        "社会保险参保登记信息比对",
        "《社会保险法》第五十八条",
        "申请的住址信息项超出参保登记所需的最小必要范围，请仅申请户号和户主后重新提交",
    ),
)


@dataclass
class SeedReport:
    """What :func:`seed` did."""

    requests: list[str] = field(default_factory=list)
    client: str = ""
    calls: int = 0
    data_service: str = ""

    def summary(self) -> str:
        """One line for the demo command's output."""
        client = f"client {self.client} registered" if self.client else "client kept"
        filed = f"{len(self.requests)} requests filed"
        if self.requests:
            filed += f" ({', '.join(self.requests)})"
        service = f", data service registered for {self.data_service}" if self.data_service else ""
        return f"exchange: {filed}, {client}, {self.calls} calls logged{service}"


def _official(department: Organization):
    """A demo official of the department (None when it has none)."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(department=department, is_active=True, kind="official")
        .order_by("username")
        .first()
    )


def _ensure_client(department: Organization) -> str:
    """Register the MZ gateway client unless it exists; return its id when made now (the secret is dropped)."""
    from dgov.oidc.services import clients

    if clients.client_exists(CLIENT_ID):
        return ""
    clients.create_client(
        name="省民政厅社会救助系统",
        organization=department,
        actor=DEMO_ACTOR,
        grant_types=["client_credentials"],
        scopes=["exchange:call"],
        client_id=CLIENT_ID,
    )
    return CLIENT_ID


def _file(departments: dict, spec: tuple, report: SeedReport) -> None:
    """File one demo request (and refuse it when the spec says so) unless the consumer already asked."""
    consumer_kind, provider_kind, name, items, purpose, basis, refusal = spec
    consumer, provider = departments.get(consumer_kind), departments.get(provider_kind)
    if consumer is None or provider is None:
        return
    resource = InformationResource.objects.filter(provider=provider, name=name).first()
    if resource is None or not services.requestable_items(resource):
        return
    if ShareRequest.objects.filter(consumer=consumer, resource=resource).exists():
        return
    requester, decider = _official(consumer), _official(provider)
    if requester is None or (refusal and decider is None):
        return
    available = services.requestable_items(resource)
    wanted = {code: mode for code, mode in items.items() if code in available}
    share = services.request_share(
        resource,
        actor=requester,
        items=wanted,
        purpose=purpose,
        legal_basis=basis,
        period_end=timezone.localdate() + datetime.timedelta(days=365),
    )
    if refusal and share.status == ShareRequest.Status.SUBMITTED:
        services.refuse(share, actor=decider, reason=refusal)
    report.requests.append(f"{consumer_kind}→{name}")


def _calls(departments: dict, seed: int) -> int:
    """A few gateway calls by the demo client (served and refused); none when it already has calls logged."""
    from dgov.oidc.models import Client
    from dgov.oidc.services.tokens import ClientPrincipal
    from dgov.registry import services as registry_services
    from dgov.registry.models import Record

    client = Client.objects.filter(client_id=CLIENT_ID, is_active=True).first()
    if client is None or ExchangeLogEntry.objects.filter(client_id=CLIENT_ID).exists():
        return 0
    licence = InformationResource.objects.filter(provider=departments.get("SCJG"), name=REQUESTS[0][2]).first()
    person = InformationResource.objects.filter(provider=departments.get("GA"), name=REQUESTS[1][2]).first()
    if licence is None:
        return 0
    principal = ClientPrincipal(client, frozenset(["exchange:call"]), {})
    pks = list(
        Record.objects.filter(registry__code="legal_entity.enterprise")
        .order_by("pk")
        .values_list("pk", flat=True)[:200]
    )
    if not pks:
        return 0
    rng = random.Random(seed)
    done = 0
    for record in Record.objects.filter(pk__in=rng.sample(pks, min(5, len(pks)))).order_by("pk"):
        uscc = registry_services.record_values_now(record).get("uscc")
        if uscc:
            done += _attempt(services.gateway_read, principal, licence.code, uscc, fields=["name", "type"])
            done += _attempt(
                services.gateway_verify,
                principal,
                licence.code,
                identifier=uscc,
                item="established_on",
                op="lt",
                value="2015-01-01",
            )
    # Refusals the monitoring page shows as failures: an item not granted, a resource not (yet) granted.
    done += _attempt(services.gateway_read, principal, licence.code, "-", fields=["legal_representative"])
    if person is not None:
        done += _attempt(services.gateway_read, principal, person.code, "-")
    return done


# 省市场监管局's food-licence resource is served by the department's own service in the demo. No such
# service runs here (``.example`` never resolves): its page shows a registration whose probe fails.
DEMO_SERVICE = ("SCJG", "食品经营许可信息", "https://scjg-data.example/dgov/food-licences")


def _ensure_data_service(departments: dict) -> str:
    """Register the demo department data service unless it exists; return the resource code when made now."""
    from dgov.exchange import dataservice
    from dgov.exchange.models import DataService

    kind, name, url = DEMO_SERVICE
    resource = InformationResource.objects.filter(provider=departments.get(kind), name=name).first()
    if resource is None or DataService.objects.filter(resource=resource).exists():
        return ""
    try:
        dataservice.register(
            resource,
            actor=DEMO_ACTOR,
            endpoint_url=url,
            timeout=5,
            description="演示：部门自建的许可查询服务（未部署）",
        )
    except ValidationError:
        return ""  # not published, or linked to a registry in this catalogue
    return resource.code


def _attempt(operation, *args, **kwargs) -> int:
    """Make one gateway call (served or refused: both are logged); count it."""
    with contextlib.suppress(services.GatewayRefusal):
        operation(*args, **kwargs)
    return 1


def seed(*, province_code: str, seed: int = 20261128) -> SeedReport:
    """Create the demo requests, the client and the logged calls that are missing (idempotent)."""
    report = SeedReport()
    departments = {
        org.kind: org
        for org in Organization.objects.filter(
            division__code=province_code, level=Organization.Level.PROVINCE, is_active=True
        ).order_by("pk")
    }
    for spec in REQUESTS:
        _file(departments, spec, report)
    if "MZ" in departments:
        with transaction.atomic():
            report.client = _ensure_client(departments["MZ"])
    report.calls = _calls(departments, seed)
    report.data_service = _ensure_data_service(departments)
    return report
