"""`dgov demo` seeds the exchange: a request in each state, a gateway client and logged calls, once."""

import io

import pytest
from django.core.management import call_command

from dgov.exchange import demo, services
from dgov.exchange.models import DataService, ExchangeLogEntry, Grant, ShareRequest
from dgov.oidc.models import Client

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_demo_exchange_is_seeded_once(settings):
    settings.EXCHANGE_RATE_PER_SECOND = 0
    out = io.StringIO()
    call_command("demo", "--persons", "40", "--enterprises", "4", stdout=out)
    assert "exchange: 3 requests filed" in out.getvalue()
    assert "secret" not in out.getvalue().lower()
    by_name = {r.resource.name: r for r in ShareRequest.objects.select_related("resource", "consumer")}
    granted, pending, refused = by_name["企业营业执照信息"], by_name["人口基本信息"], by_name["户籍户信息"]
    assert granted.status == "granted" and granted.sharing_type == "unconditional"
    assert services.grant_state(granted.grant) == "active"
    assert pending.status == "submitted" and pending.due_on is not None and pending.due_on > pending.submitted_at.date()
    assert refused.status == "refused" and refused.reason and refused.decided_by is not None
    client = Client.objects.get(client_id=demo.CLIENT_ID)
    assert client.scopes == ["exchange:call"] and client.grant_types == ["client_credentials"]
    assert client.organization.kind == "MZ"
    entries = ExchangeLogEntry.objects.filter(client_id=demo.CLIENT_ID)
    results = set(entries.values_list("result", flat=True))
    assert {"ok", "denied"} <= results and entries.filter(result="ok").count() >= 4
    assert {"item_not_granted", "no_grant"} <= set(entries.values_list("code", flat=True))
    assert services.verify_log().ok
    # A registered department data service (nothing runs behind it in the demo).
    (service,) = DataService.objects.select_related("resource__provider")
    assert service.resource.name == "食品经营许可信息" and service.resource.provider.kind == "SCJG"
    assert service.status == "active" and f"data service registered for {service.resource.code}" in out.getvalue()

    counts = (ShareRequest.objects.count(), Grant.objects.count(), ExchangeLogEntry.objects.count())
    again = io.StringIO()
    call_command("demo", "--if-missing", stdout=again)
    assert "exchange: 0 requests filed, client kept, 0 calls logged" in again.getvalue()
    assert (ShareRequest.objects.count(), Grant.objects.count(), ExchangeLogEntry.objects.count()) == counts
    assert DataService.objects.count() == 1 and "data service registered" not in again.getvalue()
