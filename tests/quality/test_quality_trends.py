"""Quality trends: snapshots after runs (same-day upsert), backfill, series and comparisons, scope, API, pages, CLI."""

import datetime
import io
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from dgov.kernel.models import AuditRecord, Organization
from dgov.quality import charts, services, trends
from dgov.quality.models import QualityRule, QualityRun, RectificationOrder, ScoreSnapshot

pytestmark = pytest.mark.django_db

API = "/api/v1/quality/trends"


def _snap(scope, key, day=None):
    return ScoreSnapshot.objects.get(scope=scope, key=key, day=day or timezone.localdate())


def _order(orgs, registries, department, *, code, status="open", opened_on=None, closed_at=None):
    today = timezone.localdate()
    return RectificationOrder.objects.create(
        code=code,
        registry=registries["person"],
        finding_key=code,
        title=code,
        dimension="completeness",
        department=orgs[department],
        deadline_days=5,
        opened_on=opened_on or today,
        due_on=today + datetime.timedelta(days=7),
        status=status,
        closed_at=closed_at,
    )


def _age(run, days):
    """Move a run (and nothing else) ``days`` into the past."""
    QualityRun.objects.filter(pk=run.pk).update(finished_at=run.finished_at - datetime.timedelta(days=days))


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


# --- Snapshots written by runs ------------------------------------------------------------------------------


def test_a_run_snapshots_its_registry_and_the_departments_it_scores(finished_run, orgs):
    registry = _snap("registry", "t.person")
    assert registry.score == finished_run.score == Decimal("81.67") and registry.grade == "C"
    assert registry.dimension_scores == finished_run.dimension_scores and registry.rules == 9
    assert registry.checked == 65 and registry.failed == 16
    for code in ("370000-GA", "370000-MZ"):
        card = services.department_scorecard(Organization.objects.get(code=code), actor="system:test")
        snap = _snap("department", code)
        assert snap.score == card.summary.score and snap.grade == card.summary.grade
        assert snap.dimension_scores == {k: float(v) for k, v in card.summary.dimensions.items()}
        assert (snap.rules, snap.checked, snap.failed) == (
            card.summary.rules,
            card.summary.checked,
            card.summary.failed,
        )
    assert _snap("department", "370000-GA").score == Decimal("87.50")
    assert not ScoreSnapshot.objects.filter(key="370000-WJ").exists()  # owns no rule: its scorecard did not change
    assert ScoreSnapshot.objects.count() == 3


def test_a_second_run_the_same_day_replaces_the_snapshots(finished_run, registries, orgs):
    _order(orgs, registries, "mz", code="Z1")
    _order(orgs, registries, "mz", code="Z2", status="submitted")
    _order(orgs, registries, "ga", code="Z3", status="resolved", closed_at=timezone.now())
    services.set_rule_enabled(QualityRule.objects.get(code="p.id.unique"), False, actor="system:test")
    run = services.run_registry(registries["person"], actor="system:test")
    assert run.status == "succeeded" and run.score != finished_run.score
    assert ScoreSnapshot.objects.count() == 3  # upserted, not added
    registry = _snap("registry", "t.person")
    assert registry.score == run.score and registry.rules == 8
    # the run's own findings open orders too (rectification hook): count what is active now
    active = RectificationOrder.objects.filter(status__in=["open", "submitted"])
    assert registry.open_orders == active.filter(registry=registries["person"]).count() >= 2
    assert _snap("department", "370000-MZ").open_orders == active.filter(department=orgs["mz"]).count() >= 2
    assert _snap("department", "370000-GA").open_orders == active.filter(department=orgs["ga"]).count()
    assert not active.filter(code="Z3").exists()
    ga = services.department_scorecard(orgs["ga"], actor="system:test").summary
    assert _snap("department", "370000-GA").score == ga.score and ga.score != Decimal("87.50")


def test_a_department_that_loses_its_rules_is_snapshotted_without_a_score(finished_run, registries):
    services.set_rule_enabled(QualityRule.objects.get(code="p.marital"), False, actor="system:test")
    services.run_registry(registries["person"], actor="system:test")
    mz = _snap("department", "370000-MZ")
    assert mz.score is None and mz.grade == "" and mz.rules == 0  # it left the scorecard today


def test_a_failed_run_writes_no_snapshot(rules, registries):
    QualityRule.objects.filter(code="p.name").update(fields=["gone"])  # no longer compiles
    run = services.run_registry(registries["person"], actor="system:test")
    assert run.status == "failed" and not ScoreSnapshot.objects.exists()


def test_a_snapshot_failure_does_not_fail_the_run(rules, registries, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(trends, "_day_snapshots", broken)
    run = services.run_registry(registries["person"], actor="system:test")
    assert run.status == "succeeded" and QualityRun.objects.get(pk=run.pk).status == "succeeded"
    assert not ScoreSnapshot.objects.exists() and "could not be written" in caplog.text


# --- Series and comparisons ---------------------------------------------------------------------------------


@pytest.fixture
def history(finished_run, registries, orgs):
    """Two runs: the first 40 days ago (p.id.unique enabled), the second today (disabled); snapshots backfilled."""
    _age(finished_run, 40)
    services.set_rule_enabled(QualityRule.objects.get(code="p.id.unique"), False, actor="system:test")
    second = services.run_registry(registries["person"], actor="system:test")
    ScoreSnapshot.objects.all().delete()
    report = trends.backfill(actor="system:test")
    assert report.days == 2 and report.written == 6
    return finished_run, second


def test_trend_of_a_period_with_its_baseline_and_change(history, users):
    first, second = history
    today = timezone.localdate()
    found = trends.trend("registry", "t.person", actor=users["ga"], days=30)
    assert found.since == today - datetime.timedelta(days=30) and found.until == today
    assert found.baseline.day == today - datetime.timedelta(days=40) and found.baseline.score == first.score
    assert [p.day for p in found.points] == [today] and found.points[0].score == second.score
    assert found.comparison.change == second.score - first.score and found.comparison.direction == "up"
    accuracy = {d.dimension: d for d in found.comparison.dimensions}["accuracy"]
    assert accuracy.start == Decimal("75") and accuracy.end is None and accuracy.change is None
    wide = trends.trend("registry", "t.person", actor=users["ga"], days=90)
    assert wide.baseline is None and len(wide.points) == 2 and wide.comparison.change == found.comparison.change
    old = trends.trend(
        "registry",
        "t.person",
        actor=users["ga"],
        since=today - datetime.timedelta(days=50),
        until=today - datetime.timedelta(days=35),
    )
    assert len(old.points) == 1 and old.comparison.change is None  # one snapshot: nothing to compare
    later = trends.trend(
        "registry",
        "t.person",
        actor=users["ga"],
        since=today - datetime.timedelta(days=20),
        until=today - datetime.timedelta(days=1),
    )
    assert later.points == [] and later.baseline.score == first.score and later.comparison.change == 0
    assert later.comparison.direction == "flat"


def test_trend_parameters_are_checked():
    with pytest.raises(ValidationError) as bad:
        trends.period(days=0)
    assert "days" in bad.value.message_dict
    for kwargs in ({"days": trends.MAX_DAYS + 1}, {"days": True}, {"days": "30"}):
        with pytest.raises(ValidationError):
            trends.period(**kwargs)
    today = datetime.date(2026, 3, 1)
    with pytest.raises(ValidationError):
        trends.period(days=30, since=today)
    with pytest.raises(ValidationError):
        trends.period(since=today, until=today - datetime.timedelta(days=1))
    with pytest.raises(ValidationError):
        trends.period(since=today - datetime.timedelta(days=trends.MAX_DAYS + 1), until=today)
    with pytest.raises(ValidationError):
        trends.period(until=datetime.date.min)
    assert trends.period(today=today) == (today - datetime.timedelta(days=90), today)
    assert trends.period(days=365, until=today)[0] == today - datetime.timedelta(days=365)
    with pytest.raises(ValidationError):
        trends.subject("city", "x")


def test_trend_scope_follows_the_scorecards(history, users):
    trends.trend("department", "370000-MZ", actor=users["mz"])  # its own
    with pytest.raises(PermissionDenied):
        trends.trend("department", "370000-GA", actor=users["mz"])
    assert trends.trend("department", "370000-GA", actor=users["dsj"]).points  # provincial data administrators
    with pytest.raises(PermissionDenied):
        trends.trend("registry", "t.person", actor=users["wj"])  # may not read the registry
    with pytest.raises(Organization.DoesNotExist):
        trends.trend("department", "NOPE", actor=users["dsj"])


def test_ranking_orders_by_score_with_the_change(history, users):
    since, until, rows = trends.ranking("department", actor=users["dsj"], days=30)
    assert [row.code for row in rows] == ["370000-GA", "370000-MZ"]
    ga, mz = rows
    assert ga.comparison.change == ga.summary.score - Decimal("87.50") and ga.comparison.direction == "up"
    assert mz.summary.score == 0 and mz.comparison.change == 0 and mz.comparison.direction == "flat"
    _since, _until, rows = trends.ranking("department", actor=users["mz"], days=30)
    assert [row.code for row in rows] == ["370000-MZ"]  # only its own
    _since, _until, rows = trends.ranking("registry", actor=users["ga"], days=30)
    assert [row.code for row in rows] == ["t.person"] and rows[0].comparison.direction == "up"


# --- Backfill -----------------------------------------------------------------------------------------------


def test_backfill_replays_history_keeps_and_replaces(history, registries, orgs):
    first, second = history
    today = timezone.localdate()
    earlier = today - datetime.timedelta(days=40)
    assert _snap("registry", "t.person", earlier).score == first.score
    assert _snap("department", "370000-MZ", earlier).score == Decimal("0.00")
    assert _snap("department", "370000-MZ").score == Decimal("0.00")
    live = {(s.scope, s.key): s.score for s in ScoreSnapshot.objects.filter(day=today)}
    assert (
        live[("department", "370000-GA")]
        == services.department_scorecard(orgs["ga"], actor="system:test").summary.score
    )
    ScoreSnapshot.objects.filter(day=today, key="t.person").update(score=Decimal("1"))
    kept = trends.backfill(actor="system:test")
    assert (kept.written, kept.kept) == (0, 6) and _snap("registry", "t.person").score == Decimal("1")
    replaced = trends.backfill(actor="system:test", replace=True)
    assert replaced.written == 6 and _snap("registry", "t.person").score == second.score
    assert AuditRecord.objects.filter(action="quality.trends.backfill").count() == 3


def test_backfill_reconstructs_active_orders_per_day(finished_run, registries, orgs):
    _age(finished_run, 10)
    today = timezone.localdate()
    _order(
        orgs,
        registries,
        "mz",
        code="OLD",
        status="resolved",
        opened_on=today - datetime.timedelta(days=20),
        closed_at=timezone.now() - datetime.timedelta(days=5),
    )
    _order(orgs, registries, "mz", code="NOW", opened_on=today - datetime.timedelta(days=2))
    _order(
        orgs,
        registries,
        "mz",
        code="GONE",
        status="cancelled",
        opened_on=today - datetime.timedelta(days=30),
        closed_at=timezone.now() - datetime.timedelta(days=15),
    )
    RectificationOrder.objects.filter(opened_on=today).exclude(code__in=["NOW"]).update(
        opened_on=today - datetime.timedelta(days=10)
    )  # the orders the first run opened, dated as the run
    services.run_registry(registries["person"], actor="system:test")
    active = RectificationOrder.objects.filter(department=orgs["mz"], status__in=["open", "submitted"])
    assert active.filter(code="NOW").exists()
    live = _snap("department", "370000-MZ").open_orders
    assert live == active.count()
    trends.backfill(actor="system:test", replace=True)
    then = _snap("department", "370000-MZ", today - datetime.timedelta(days=10)).open_orders
    assert then == live  # OLD then, not NOW; the run's own order (p.marital) both days
    assert _snap("department", "370000-MZ").open_orders == live
    assert _snap("department", "370000-GA", today - datetime.timedelta(days=10)).open_orders == (
        RectificationOrder.objects.filter(
            department=orgs["ga"], opened_on__lte=today - datetime.timedelta(days=10)
        ).count()
    )


def test_backfill_is_for_rule_managers(finished_run, users):
    with pytest.raises(PermissionDenied):
        trends.backfill(actor=users["ga"])
    assert AuditRecord.objects.filter(action="quality.trends.backfill", outcome="denied").exists()
    assert trends.backfill(actor=users["dsj"]).kept == 3


# --- API ----------------------------------------------------------------------------------------------------


def test_api_trend_of_a_department_and_a_registry(client, users, history):
    first, second = history
    client.force_login(users["ga"])
    body = client.get(API, {"scope": "department", "key": "370000-GA", "days": 30}).json()
    assert body["key"] == "370000-GA" and body["days"] == 30 and body["baseline"]["score"] == 87.5
    assert len(body["points"]) == 1 and body["comparison"]["direction"] == "up"
    assert body["comparison"]["dimensions"]["accuracy"] == {"start": 75.0, "end": None, "change": None, "direction": ""}
    body = client.get(API, {"scope": "registry", "key": "t.person"}).json()
    assert [p["score"] for p in body["points"]] == [float(first.score), float(second.score)]
    today = timezone.localdate()
    body = client.get(API, {"scope": "registry", "key": "t.person", "since": str(today), "until": str(today)}).json()
    assert body["days"] == 0 and body["baseline"]["score"] == float(first.score)


def test_api_trend_scope_is_refused(client, users, basic_auth, history):
    client.force_login(users["mz"])
    _problem(client.get(API, {"scope": "department", "key": "370000-GA"}), 403)
    assert client.get(API, {"scope": "department", "key": "370000-MZ"}).status_code == 200
    client.force_login(users["wj"])
    _problem(client.get(API, {"scope": "registry", "key": "t.person"}), 403)
    client.force_login(users["citizen"])
    _problem(client.get(API, {"scope": "registry", "key": "t.person"}), 403)
    client.logout()
    _problem(client.get(API, {"scope": "registry", "key": "t.person"}), 401)
    reader = basic_auth("ga", ["quality:read"])
    assert client.get(API, {"scope": "registry", "key": "t.person"}, HTTP_AUTHORIZATION=reader).status_code == 200
    other = basic_auth("ga", ["registry:read"])
    _problem(client.get(API, {"scope": "registry", "key": "t.person"}, HTTP_AUTHORIZATION=other), 403)


def test_api_trend_bad_parameters(client, users, history):
    client.force_login(users["dsj"])
    _problem(client.get(API, {"scope": "city", "key": "x"}), 422)
    _problem(client.get(API, {"scope": "registry"}), 422)
    _problem(client.get(API, {"scope": "registry", "key": "t.person", "days": "many"}), 422)
    _problem(client.get(API, {"scope": "registry", "key": "t.person", "since": "2026-13-01"}), 422)
    body = _problem(client.get(API, {"scope": "registry", "key": "t.person", "days": 0}), 400)
    assert body["errors"][0]["loc"] == ["days"]
    _problem(client.get(API, {"scope": "registry", "key": "t.person", "days": 99999}), 400)
    _problem(client.get(API, {"scope": "registry", "key": "t.person", "days": 30, "since": "2026-01-01"}), 400)
    _problem(
        client.get(API, {"scope": "registry", "key": "t.person", "since": "2026-02-01", "until": "2026-01-01"}), 400
    )
    _problem(client.get(API, {"scope": "registry", "key": "t.person", "until": "0001-01-01"}), 400)
    _problem(client.get(API, {"scope": "registry", "key": "t.person", "since": "0001-01-01"}), 400)
    _problem(client.get(API, {"scope": "registry", "key": "t.none"}), 404)
    _problem(client.get(API, {"scope": "registry", "key": "x" * 5000}), 404)
    _problem(client.get(API, {"scope": "department", "key": "NOPE"}), 404)


def test_api_ranking(client, users, history):
    client.force_login(users["dsj"])
    body = client.get(f"{API}/ranking", {"days": 30}).json()
    assert [row["code"] for row in body["rows"]] == ["370000-GA", "370000-MZ"]
    assert body["rows"][0]["direction"] == "up" and body["rows"][1]["change"] == 0
    body = client.get(f"{API}/ranking", {"scope": "registry"}).json()
    assert [row["code"] for row in body["rows"]] == ["t.person"]
    _problem(client.get(f"{API}/ranking", {"days": -1}), 400)
    client.force_login(users["wj"])
    assert client.get(f"{API}/ranking").json()["rows"] == []


# --- Pages --------------------------------------------------------------------------------------------------


def test_scorecard_page_has_an_accessible_trend_chart(client, users, history):
    client.force_login(users["ga"])
    page = client.get("/workbench/quality/d/370000-GA/?days=30").content.decode()
    assert 'data-testid="trend-chart"' in page and 'role="img"' in page and '<title id="trend-title">' in page
    assert 'data-testid="trend-table"' in page and "（期初）" in page and 'data-testid="trend-comparison"' in page
    assert 'aria-current="page" class="is-current">近 30 天' in page and "↑" in page
    assert "<script" not in page.split('data-testid="trend"')[1]  # no script in the chart
    page = client.get("/workbench/quality/d/370000-GA/?days=7").content.decode()
    assert 'aria-current="page" class="is-current">近 90 天' in page  # unknown periods fall back to 90 days
    assert client.get("/workbench/quality/d/370000-MZ/").status_code == 403


def test_registry_page_trend_and_empty_state(client, users, finished_run, history):
    client.force_login(users["dsj"])
    page = client.get("/workbench/quality/r/t.person/?days=365").content.decode()
    assert 'data-testid="trend-chart"' in page and 'data-series="accuracy"' in page
    ScoreSnapshot.objects.all().delete()
    page = client.get("/workbench/quality/r/t.person/").content.decode()
    assert 'data-testid="trend-empty"' in page and "--backfill" in page


def test_overview_ranks_departments_with_their_change(client, users, history):
    client.force_login(users["dsj"])
    index = client.get("/workbench/quality/").content.decode()
    assert 'data-testid="trends-link"' in index
    page = client.get("/workbench/quality/trends/?days=30").content.decode()
    ranking = page.split('data-testid="ranking-departments"')[1].split("</table>")[0]
    assert ranking.index("370000-GA") < ranking.index("370000-MZ") and "↑" in ranking and "（上升）" in ranking
    assert 'data-testid="ranking-registries"' in page
    english = client.get("/workbench/quality/trends/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Quality trends overview" in english and "部门排名" not in english
    client.force_login(users["citizen"])
    assert client.get("/workbench/quality/trends/").status_code == 403


# --- Chart geometry -----------------------------------------------------------------------------------------


def test_chart_draws_step_lines_from_the_baseline_to_the_end():
    today = datetime.date(2026, 3, 31)
    baseline = trends.Point(datetime.date(2026, 1, 1), Decimal("80"), "C", {"accuracy": Decimal("70")})
    point = trends.Point(datetime.date(2026, 3, 16), Decimal("90"), "B", {"accuracy": Decimal("95")})
    found = trends.Trend(
        "registry", "t", "T", datetime.date(2026, 3, 1), today, [point], baseline, trends.compare(baseline, point)
    )
    chart = charts.trend_chart(found, width=344, height=140, today=today)
    assert not chart.empty and chart.y_ticks[0][1] == "60" and chart.y_ticks[-1][1] == "100"
    total = chart.series[0]
    # (left 44, right 332: 30 days → 9.6 px a day; y: bottom 112 … top 12 over 60 … 100)
    assert total.path == "M44.0 62.0H188.0V37.0H332.0" and total.markers == [
        (188.0, 37.0, "2026-03-16 综合得分 90.00 B")
    ]
    assert [s.key for s in chart.series] == ["total", "accuracy"] and chart.series[1].dash
    assert "+10.00" in chart.description
    rows = charts.table_rows(found)
    assert [r["baseline"] for r in rows] == [True, False] and rows[1]["dimensions"][2] == Decimal("95")
    empty = charts.trend_chart(trends.Trend("registry", "t", "T", today, today), today=today)
    assert empty.empty and empty.series == []


# --- CLI ----------------------------------------------------------------------------------------------------


def _cli(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("quality", "trends", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_cli_backfill_trend_and_ranking(finished_run, users):
    ScoreSnapshot.objects.all().delete()
    out = _cli("--backfill")
    assert "已回填 1 天" in out and "写入 3 条" in out and ScoreSnapshot.objects.count() == 3
    assert "保留 3 条" in _cli("--backfill")
    out = _cli("--registry", "t.person", "--days", "30")
    assert "registry:t.person" in out and "81.67 C" in out
    out = _cli("--department", "370000-GA", "--since", str(timezone.localdate()))
    assert "87.50 B" in out
    out = _cli("--days", "365")
    assert "370000-GA" in out and "370000-MZ" in out
    with pytest.raises(CommandError):
        _cli("--backfill", "--as", users["ga"].username)
    with pytest.raises(CommandError):
        _cli("--department", "370000-GA", "--as", users["mz"].username)
    with pytest.raises(CommandError):
        _cli("--registry", "t.none")
    with pytest.raises(CommandError):
        _cli("--registry", "t.person", "--days", "0")
