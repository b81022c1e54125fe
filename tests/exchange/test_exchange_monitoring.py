"""Exchange monitoring page (调用监控): figures per department, the data administrators' platform view, day ranges."""

import datetime
import re
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from exchange_helpers import OTHER_ID, PERSON_ID

from dgov.exchange import log, monitoring, services
from dgov.kernel.validators import make_resident_id, make_uscc

pytestmark = pytest.mark.django_db

END = datetime.date.today() + datetime.timedelta(days=30)
MONITOR = "/workbench/exchange/monitor/"


def _key(resource):
    return resource.code.replace("/", "-")


def _failure_codes(html: str) -> set[str]:
    """The result codes listed in the failures table."""
    return set(re.findall(r'<tr data-code="([^"]*)">', html))


def _total(html: str) -> int:
    """The total number of calls the page states."""
    return int(re.search(r'data-testid="total-calls">(\d+)<', html).group(1))


@pytest.fixture
def traffic(client, settings, users, resources, make_client):
    """Calls through the gateway: MZ (granted ``name``) 3 served, 1 ``item_not_granted``, 1 ``record_not_found``,
    1 ``too_large``, 1 ``rate_limited``; RS (no grant) 2 ``no_grant``. 9 entries, all today."""
    person = resources["person"]
    services.request_share(
        person, actor=users["mz"], items=["name"], purpose="低保审核", legal_basis="社会救助暂行办法", period_end=END
    )
    mz = make_client()(client)
    rs = make_client("rs", client_id="rs-system")(client)

    def read(token, identifier=PERSON_ID, query=""):
        return client.get(
            f"/api/v1/exchange/resources/{_key(person)}/records/{identifier}{query}",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    for _ in range(3):
        assert read(mz).status_code == 200
    assert read(mz, query="?items=birth_date").json()["code"] == "item_not_granted"
    assert read(mz, identifier=make_resident_id("370102", datetime.date(2000, 1, 1), 7)).status_code == 404
    settings.EXCHANGE_MAX_RECORDS = 1
    batch = client.post(
        f"/api/v1/exchange/resources/{_key(person)}/records/batch",
        {"identifiers": [PERSON_ID, OTHER_ID], "items": ["name"]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {mz}",
    )
    assert batch.json()["code"] == "too_large"
    for _ in range(2):
        assert read(rs).json()["code"] == "no_grant"
    settings.EXCHANGE_RATE_PER_SECOND, settings.EXCHANGE_RATE_BURST = 0.001, 1
    read(mz)  # takes the bucket's one token: served
    assert read(mz).json()["code"] == "rate_limited"
    return {"person": person}


def test_consumer_sees_its_calls_top_resources_and_failures_by_code(client, users, traffic):
    client.force_login(users["mz"])
    page = client.get(MONITOR)
    assert page.status_code == 200
    html = page.content.decode()
    assert _total(html) == 8  # 4 served, item_not_granted, record_not_found, too_large, rate_limited
    assert 'data-testid="total-denied">3<' in html and 'data-testid="total-error">1<' in html
    assert "mz-system" in html and "101001000/000001" in html and "人口基本信息" in html
    assert _failure_codes(html) == {"item_not_granted", "record_not_found", "too_large", "rate_limited"}
    assert "信息项未获授权" in html and "调用过于频繁（限流）" in html
    # RS's refused calls are no business of MZ
    assert "rs-system" not in html and "370000-RST" not in html and "no_grant" not in html
    assert "<svg" in html and "exchange/exchange.css" in html  # server-rendered bars, the app's own stylesheet
    english = client.get(MONITOR, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Top consumers" in english and "Information item not granted" in english


def test_provider_sees_every_consumer_of_its_resources(client, users, traffic):
    client.force_login(users["ga"])
    html = client.get(MONITOR).content.decode()
    assert _total(html) == 9  # the rate-limited call was refused before its resource (and provider) was known
    consumers = html.split('data-testid="monitor-consumers"')[1].split("</table>")[0]
    assert consumers.index("mz-system") < consumers.index("rs-system")  # by calls: 7 against 2
    assert "山东省人社厅" in consumers and "山东省民政厅" in consumers
    assert _failure_codes(html) == {"item_not_granted", "record_not_found", "too_large", "no_grant"}
    assert _total(client.get(MONITOR, {"role": "consumer"}).content.decode()) == 0
    assert _total(client.get(MONITOR, {"role": "provider"}).content.decode()) == 9


def test_other_departments_see_nothing_of_it(client, users, orgs, province, django_user_model, traffic):
    client.force_login(users["rs"])
    html = client.get(MONITOR).content.decode()
    assert _total(html) == 2 and _failure_codes(html) == {"no_grant"}
    assert "mz-system" not in html and "item_not_granted" not in html
    from dgov.kernel.models import Organization

    wj = Organization.objects.create(
        name="山东省卫健委",
        code="370000-WJW",
        uscc=make_uscc("1", "1", "370000", serial=9),
        level=1,
        division=province,
        kind="WJ",
    )
    outsider = django_user_model.objects.create_user(username="x-wj", password="x", kind="official", department=wj)
    client.force_login(outsider)
    html = client.get(MONITOR).content.decode()
    assert _total(html) == 0
    for code in ("mz-system", "rs-system", "101001000/000001", "370000-GAT", "370000-MZT"):
        assert code not in html
    # a department filter or the platform scope does not widen an ordinary department's view
    assert client.get(MONITOR, {"scope": "platform"}).status_code == 403
    assert _total(client.get(MONITOR, {"department": "370000-MZT"}).content.decode()) == 0


def test_data_administrators_see_the_platform_they_cover(client, users, orgs, django_user_model, traffic):
    client.force_login(users["dsj"])
    own = client.get(MONITOR).content.decode()
    assert _total(own) == 0 and 'value="platform"' in own  # the scope choice is offered
    html = client.get(MONITOR, {"scope": "platform"}).content.decode()
    assert _total(html) == 10
    assert "mz-system" in html and "rs-system" in html and 'data-testid="monitor-providers"' in html
    resources = html.split('data-testid="monitor-resources"')[1].split("</table>")[0]
    assert resources.count("101001000/000001") == 1 and "山东省公安厅" in resources  # the rate-limited call too
    assert _failure_codes(html) == {"item_not_granted", "record_not_found", "too_large", "rate_limited", "no_grant"}
    narrowed = client.get(MONITOR, {"scope": "platform", "department": "370000-RST"}).content.decode()
    assert _total(narrowed) == 2 and "mz-system" not in narrowed
    as_consumer = client.get(MONITOR, {"scope": "platform", "department": "370000-GAT", "role": "consumer"})
    assert _total(as_consumer.content.decode()) == 0
    assert _total(client.get(MONITOR, {"scope": "platform", "department": "NOPE"}).content.decode()) == 0

    # a city bureau covers its city: the provincial departments' calls are not its business
    from dgov.kernel.models import Division, Organization

    city = Division.objects.get(code="370100")
    jn = Organization.objects.create(
        name="济南市大数据局",
        code="370100-DSJ",
        uscc=make_uscc("1", "1", "370100", serial=7),
        level=2,
        division=city,
        kind="DSJ",
    )
    city_admin = django_user_model.objects.create_user(username="x-jn", password="x", kind="official", department=jn)
    client.force_login(city_admin)
    html = client.get(MONITOR, {"scope": "platform"}).content.decode()
    assert _total(html) == 0 and "mz-system" not in html

    # platform administrators see everything; officials who are no data administrators are refused
    admin = django_user_model.objects.create_user(username="x-admin", password="x", kind="admin")
    client.force_login(admin)
    assert _total(client.get(MONITOR, {"scope": "platform"}).content.decode()) == 10
    client.force_login(users["mz"])
    assert client.get(MONITOR, {"scope": "platform"}).status_code == 403


def test_day_range(client, users, traffic):
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=20)
    with mock.patch.object(log.timezone, "now", return_value=past):
        log.append(
            operation="read",
            result="denied",
            code="grant_expired",
            status=403,
            consumer_code="370000-MZT",
            client_id="mz-old",
            provider_code="370000-GAT",
            resource_code=traffic["person"].code,
        )
    client.force_login(users["mz"])
    today = timezone.localdate()
    html = client.get(MONITOR).content.decode()
    assert _total(html) == 8 and "mz-old" not in html  # the default is the last 14 days
    since = (today - datetime.timedelta(days=25)).isoformat()
    wide = client.get(MONITOR, {"since": since, "until": today.isoformat()}).content.decode()
    assert _total(wide) == 9 and "mz-old" in wide and "grant_expired" in _failure_codes(wide)
    old_day = (today - datetime.timedelta(days=20)).isoformat()
    only = client.get(MONITOR, {"since": old_day, "until": old_day}).content.decode()
    assert _total(only) == 1 and f"<td>{old_day}</td>" in only
    # reversed dates are swapped; a range longer than a year is cut back from its end; bad dates fall back
    swapped = client.get(MONITOR, {"since": today.isoformat(), "until": since}).content.decode()
    assert _total(swapped) == 9 and "已对调" in swapped
    long = client.get(MONITOR, {"since": "2000-01-01", "until": today.isoformat()}).content.decode()
    cut = (today - datetime.timedelta(days=monitoring.MAX_DAYS - 1)).isoformat()
    assert f'name="since" value="{cut}"' in long and "统计范围最长" in long
    assert _total(client.get(MONITOR, {"since": "garbage"}).content.decode()) == 8


def test_figures_are_aggregates(users, orgs, resources):
    """The number of queries does not grow with the number of entries (GROUP BY, no loop over rows)."""
    scope = monitoring.scope_for(users["ga"])
    period = monitoring.parse_period("", "")

    def add(n, consumer, client_id, result, code=""):
        for _ in range(n):
            log.append(
                operation="read",
                result=result,
                code=code,
                status=200 if result == "ok" else 403,
                consumer_code=consumer,
                client_id=client_id,
                provider_code="370000-GAT",
                resource_code=resources["person"].code,
            )

    add(2, "370000-MZT", "mz-system", "ok")
    with CaptureQueriesContext(connection) as few:
        monitoring.summarize(scope, period)
    add(30, "370000-RST", "rs-system", "denied", "no_grant")
    add(5, "370000-MZT", "mz-system", "error", "record_not_found")
    with CaptureQueriesContext(connection) as many:
        big = monitoring.summarize(scope, period)
    assert len(many) == len(few) <= 10
    assert big.totals["total"] == 37 and big.totals["denied"] == 30 and big.totals["error"] == 5
    assert [(r["consumer_code"], r["total"], r["failure_rate"]) for r in big.consumers] == [
        ("370000-RST", 30, "100.0"),
        ("370000-MZT", 7, "71.4"),
    ]
    assert [(r["code"], r["total"], r["share"]) for r in big.failures] == [
        ("no_grant", 30, "85.7"),
        ("record_not_found", 5, "14.3"),
    ]
    assert big.consumers[0]["bar_denied"] == "100.0" and big.consumers[1]["bar_ok"] == "6.7"
    today = [d for d in big.daily if d["day"] == timezone.localdate()][0]
    assert today["total"] == 37 and today["h_ok"] == "5.41" and len(big.daily) == monitoring.DEFAULT_DAYS


def test_monitor_is_for_officials(client, citizen):
    client.force_login(citizen)
    assert client.get(MONITOR).status_code == 403
    client.logout()
    assert client.get(MONITOR).status_code == 302
