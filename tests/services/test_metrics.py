"""Service metrics (服务指标): exact figures per group and period, scope, the dashboard, CSV and the API.

The known set (November 2026, Asia/Shanghai; no holiday in November, 7–8 Nov is a weekend) is
built through the services (submit, complete_task), then its timestamps are moved to the dates
below, as the history of real applications would have them:

=====  ======  =========================  ==================  =========  ==========  =======================
app    dept    submitted                  closed              channel    visits      notes
=====  ======  =========================  ==================  =========  ==========  =======================
a1     county  Mon 2 Nov 09:00            approved 2 Nov      online     0           即办, on time, 0 days
a2     county  Tue 3 Nov 10:00            approved 10 Nov     window     2           5 days, due 10 Nov
a3     county  Sat 7 Nov 20:00            denied Mon 9 Nov    online     0           即办 (weekend), 1 day
a4     county  Mon 2 Nov                  approved 18 Nov     online     0           补正 2 days, late
a5     county  Wed 4 Nov                  rejected 4 Nov      online     0           不予受理
a6     county  Tue 20 Oct (accepted)      open                online     0           overdue (due 27 Oct)
a7     county  Wed 25 Nov                 open                online     0           due 2 Dec
b1     GA      Thu 5 Nov 09:00            approved 5 Nov      online     0           promised 0: 即办
b2     GA      Thu 12 Nov                 approved Mon 16 Nov window     1           late (due 12 Nov)
=====  ======  =========================  ==================  =========  ==========  =======================

Ratings in November: a1 5, a2 2 (差评), b1 4, b2 1 (差评).
"""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from dgov.services import metrics

from .metrics_helpers import *  # noqa: F403
from .metrics_helpers import APPROVE, DENY, at, make_app

pytestmark = pytest.mark.usefixtures("no_result_documents")
TODAY = datetime.date(2026, 11, 30)
NOV = {"since": "2026-11-01", "until": "2026-11-30"}
API = "/api/v1/services/metrics"
PAGE = "/workbench/services/metrics/"


@pytest.fixture
def known(world):
    """The known set of the module docstring."""
    apps = {
        "a1": make_app(world, "a", submitted=at(2), closed=at(2, 15), decisions=APPROVE, score=5),
        "a2": make_app(
            world,
            "a",
            submitted=at(3, 10),
            closed=at(10, 11),
            decisions=APPROVE,
            channel="window",
            delivery="window",
            visits=2,
            score=2,
        ),
        "a3": make_app(world, "a", submitted=at(7, 20), closed=at(9, 9), decisions=DENY),
        "a4": make_app(world, "a", submitted=at(2), closed=at(18), accepted=at(5), decisions=APPROVE, paused_days=2),
        "a5": make_app(world, "a", submitted=at(4), closed=at(4, 11), decisions=["reject"]),
        "a6": make_app(world, "a", submitted=at(20, 9, 10), decisions=["accept"]),
        "a7": make_app(world, "a", submitted=at(25), decisions=[]),
        "b1": make_app(world, "b", submitted=at(5), closed=at(5, 10), decisions=APPROVE, score=4),
        "b2": make_app(
            world, "b", submitted=at(12), closed=at(16), decisions=APPROVE, channel="window", visits=1, score=1
        ),
    }
    return apps


def _report(actor, group="department", **filters):
    """The metrics of November (or the given period) as the actor sees them."""
    values = {**NOV, **filters}
    parsed = metrics.parse_filters(actor=actor, today=TODAY, **values)
    return metrics.compute(actor, group=group, filters=parsed, today=TODAY)


def test_known_set_is_what_the_docstring_says(known):
    assert known["a6"].status == "in_progress" and known["a7"].status == "submitted"
    assert known["a3"].status == "denied" and known["a5"].status == "rejected"
    assert known["a2"].promised_due == datetime.date(2026, 11, 10)
    assert known["a3"].promised_due == datetime.date(2026, 11, 13)
    assert known["a4"].promised_due == datetime.date(2026, 11, 11)
    assert known["b1"].promised_due == datetime.date(2026, 11, 5)


def test_totals_of_the_province(known, world):
    total = _report(world["users"]["dsj"]).total
    assert (total.submitted, total.accepted, total.closed, total.rejected) == (8, 6, 6, 1)
    assert (total.approved, total.denied, total.overdue_open) == (5, 1, 1)
    assert total.full_online == 4 and total.full_online_rate == pytest.approx(4 / 6)
    assert total.instant == 3 and total.instant_rate == pytest.approx(0.5)
    assert total.on_time == 4 and total.on_time_rate == pytest.approx(4 / 6)
    assert (total.promised_days, total.legal_days) == (30, 140)
    assert total.compression == pytest.approx(1 - 30 / 140)
    assert total.used_days == 18 and total.avg_days_used == pytest.approx(3.0)
    assert total.avg_legal_days == pytest.approx(100 / 6)
    assert total.used_vs_legal == pytest.approx(0.18)
    assert total.visits == 3 and total.avg_visits == pytest.approx(0.5)
    assert (total.ratings, total.satisfied, total.bad) == (4, 2, 2)
    assert total.satisfaction_rate == pytest.approx(0.5) and total.avg_score == pytest.approx(3.0)
    # The same total whatever the grouping (summed from the rows, or counted on its own for periods).
    for group in ("item", "division", "week", "month"):
        assert _report(world["users"]["dsj"], group=group).total.as_dict() == total.as_dict(), group


def test_rows_by_department(known, world):
    report = _report(world["users"]["admin"], group="department")
    rows = {row.key: row for row in report.rows}
    assert set(rows) == {"370102-SCJG", "370000-GA"}
    county, ga = rows["370102-SCJG"].figures, rows["370000-GA"].figures
    assert rows["370102-SCJG"].label == "历下区市场监督管理局"
    assert (county.submitted, county.closed, county.rejected, county.overdue_open) == (6, 4, 1, 1)
    assert (county.full_online, county.instant, county.on_time, county.used_days, county.visits) == (3, 2, 3, 16, 2)
    assert (county.ratings, county.satisfied, county.bad) == (2, 1, 1)
    assert county.compression == pytest.approx(0.75)
    assert (ga.submitted, ga.closed, ga.full_online, ga.instant, ga.on_time, ga.used_days) == (2, 2, 1, 1, 1, 2)
    assert (ga.visits, ga.ratings, ga.bad, ga.overdue_open) == (1, 2, 1, 0)
    assert ga.compression == pytest.approx(1.0)
    assert ga.avg_score == pytest.approx(2.5)


def test_rows_by_item_and_division(known, world):
    by_item = {row.key: row for row in _report("system:test", group="item").rows}
    assert by_item["m-0001"].label == "食品经营许可" and by_item["m-0001"].figures.closed == 4
    assert by_item["m-0002"].figures.instant == 1
    by_division = {row.key: row for row in _report("system:test", group="division").rows}
    assert set(by_division) == {"3701", "3700"}
    assert by_division["3701"].label == "济南市" and by_division["3701"].figures.submitted == 6
    assert by_division["3700"].label == "省本级" and by_division["3700"].figures.submitted == 2
    # Below a city: its counties.
    counties = _report("system:test", group="division", division="370100").rows
    assert [(row.key, row.label, row.figures.submitted) for row in counties] == [("370102", "历下区", 6)]


def test_filters_narrow_the_figures(known, world):
    assert _report("system:test", department="370000-GA").total.submitted == 2
    assert _report("system:test", item="m-0001").total.closed == 4
    assert _report("system:test", division="370100").total.submitted == 6
    # Only the first week: a1, a2, a4 (2/3 Nov), a5 (4 Nov), b1 (5 Nov), a3 (7 Nov).
    week = _report("system:test", until="2026-11-07").total
    assert week.submitted == 6
    assert week.closed == 2  # a1 (2 Nov) and b1 (5 Nov) closed by then


def test_periods_use_each_figures_own_date(known, world):
    months = _report("system:test", group="month", since="2026-10-01").rows
    assert [row.label for row in months] == ["2026-10", "2026-11"]
    october, november = months[0].figures, months[1].figures
    assert (october.submitted, october.accepted, october.closed, october.overdue_open) == (1, 1, 0, 1)
    assert (november.submitted, november.accepted, november.closed, november.overdue_open) == (8, 6, 6, 0)
    weeks = _report("system:test", group="week").rows
    assert weeks[0].label == "2026-W44" and weeks[0].key == "2026-10-26"  # the week of 1 Nov starts on Monday
    by_week = {row.label: row.figures for row in weeks}
    assert by_week["2026-W45"].submitted == 6 and by_week["2026-W45"].closed == 2
    assert by_week["2026-W46"].closed == 2  # a3 (9 Nov), a2 (10 Nov)
    days = {row.key: row.figures for row in _report("system:test", group="day").rows}
    assert len(days) == 30 and days["2026-11-02"].submitted == 2 and days["2026-11-02"].closed == 1
    assert days["2026-11-09"].instant == 1  # a3, submitted on Saturday, closed on Monday


def test_scope_of_a_plain_department_and_of_a_city_office(known, world):
    users = world["users"]
    county = _report(users["scjg"])
    assert county.total.submitted == 6 and county.total.ratings == 2
    assert [row.key for row in county.rows] == ["370102-SCJG"]
    ga = _report(users["ga"])
    assert ga.total.submitted == 2 and [row.key for row in ga.rows] == ["370000-GA"]
    city = _report(users["zwfw_city"])
    assert city.total.submitted == 6  # the county department is in 济南; the provincial 公安厅 is not
    assert _report(users["zwfw_qd"]).total.submitted == 0
    # Another department's code is refused like an unknown one.
    with pytest.raises(ValidationError) as exc:
        metrics.parse_filters(actor=users["scjg"], department="370000-GA")
    assert "department" in exc.value.message_dict
    with pytest.raises(PermissionDenied):
        _report(users["citizen"])


def test_bad_parameters_are_named(world):
    actor = world["users"]["dsj"]
    with pytest.raises(ValidationError) as exc:
        metrics.parse_filters(actor=actor, since="2026-13-01", until="2026-11-01", division="999999", item="nope")
    assert set(exc.value.message_dict) == {"from", "division", "item"}
    with pytest.raises(ValidationError) as exc:
        metrics.parse_filters(actor=actor, since="2026-11-02", until="2026-11-01")
    assert "from" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        metrics.compute(actor, group="weekday", filters=metrics.parse_filters(actor=actor))
    assert "group" in exc.value.message_dict
    default = metrics.parse_filters(actor=actor, today=datetime.date(2026, 11, 29))
    assert (default.since, default.until) == (datetime.date(2026, 6, 1), datetime.date(2026, 11, 29))


def test_empty_scope_has_no_rates(world):
    total = _report(world["users"]["dsj"]).total
    assert total.submitted == 0 and total.on_time_rate is None and total.compression is None
    assert total.as_dict()["satisfaction_rate"] is None


def test_query_count_does_not_grow_with_applications(known, world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as before:
        _report("system:test", group="department")
    make_app(world, "b", submitted=at(19), closed=at(19, 11), decisions=APPROVE, visits=2, score=3)
    make_app(world, "a", submitted=at(20), closed=at(27), decisions=DENY, channel="window", score=5)
    with CaptureQueriesContext(connection) as after:
        report = _report("system:test", group="department")
    assert report.total.closed == 8
    assert len(after.captured_queries) == len(before.captured_queries) <= 24


# --- Pages and API -------------------------------------------------------------------------------------------


def test_dashboard_page_and_csv(known, world, client):
    client.force_login(world["users"]["dsj"])
    page = client.get(PAGE, {"from": "2026-11-01", "to": "2026-11-30", "group": "department"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="kpi-submitted">8<' in html
    assert "历下区市场监督管理局" in html and "山东省公安厅" in html
    assert 'data-testid="metrics-trend"' in html and "<svg" in html
    assert 'data-testid="kpi-on-time">66.7%<' in html
    exported = client.get(PAGE, {"from": "2026-11-01", "to": "2026-11-30", "group": "item", "format": "csv"})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["代码", "事项", "申请量"]
    body = {row[0]: row for row in rows[1:]}
    assert body["m-0001"][1] == "食品经营许可" and body["m-0001"][2] == "6"
    assert body[""][1] == "合计" and body[""][2] == "8"
    bad = client.get(PAGE, {"from": "not-a-date"})
    assert bad.status_code == 400 and "日期格式应为 YYYY-MM-DD" in bad.content.decode()
    english = client.get(PAGE, {"from": "2026-11-01", "to": "2026-11-30"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Government service metrics" in english and "On-time rate" in english and "Monthly trend" in english


def test_dashboard_is_for_officials_and_scoped(known, world, client):
    client.force_login(world["users"]["citizen"])
    assert client.get(PAGE).status_code == 403
    client.force_login(world["users"]["ga"])
    html = client.get(PAGE, {"from": "2026-11-01", "to": "2026-11-30"}).content.decode()
    assert 'data-testid="kpi-submitted">2<' in html and "历下区市场监督管理局" not in html


def test_api_answers_and_refuses_bad_parameters(known, world, client):
    client.force_login(world["users"]["scjg"])
    answer = client.get(API, {"group": "department", "from": "2026-11-01", "to": "2026-11-30"})
    assert answer.status_code == 200
    data = answer.json()
    assert data["group"] == "department" and data["from"] == "2026-11-01" and data["to"] == "2026-11-30"
    assert data["total"]["submitted"] == 6 and data["total"]["on_time_rate"] == 0.75
    assert [row["key"] for row in data["rows"]] == ["370102-SCJG"]
    bad = client.get(API, {"group": "weekday"})
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["loc"] == ["group"]
    other = client.get(API, {"department": "370000-GA"})
    assert other.status_code == 400 and other.json()["errors"][0]["loc"] == ["department"]
    reversed_period = client.get(API, {"from": "2026-11-30", "to": "2026-11-01"})
    assert reversed_period.status_code == 400
    client.force_login(world["users"]["citizen"])
    assert client.get(API).status_code == 403
    client.logout()
    assert client.get(API).status_code == 401
