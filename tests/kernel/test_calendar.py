"""The working-day calendar: chinesecalendar data, overrides, deadlines, caching, CSV and command."""

import datetime
import json
import logging
import time
from io import StringIO

import chinese_calendar
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from dgov.kernel.models import AuditRecord, CalendarDay
from dgov.kernel.services import calendar

pytestmark = pytest.mark.django_db

D = datetime.date
ACTOR = "system:test"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Overrides are rolled back after each test; cached years must not outlive them."""
    calendar.invalidate_calendar_cache()
    yield
    calendar.invalidate_calendar_cache()


def test_package_covers_2026_and_agrees():
    first, last = calendar.package_years()
    assert first <= 2004 and last >= 2026
    # Cross-check every day of 2025–2026 against the package itself.
    day = D(2025, 1, 1)
    while day <= D(2026, 12, 31):
        assert calendar.is_workday(day) == chinese_calendar.is_workday(day), day
        day += datetime.timedelta(days=1)


def test_known_2026_days():
    national_day = calendar.day_info(D(2026, 10, 1))
    assert (
        not national_day.is_workday
        and national_day.name == "国庆节"
        and national_day.source == "chinesecalendar"
    )
    make_up = calendar.day_info(D(2026, 10, 10))
    assert D(2026, 10, 10).weekday() == 5 and make_up.is_workday and make_up.name == "国庆节调休上班"
    # Spring Festival 2026: 15–23 February off, Saturday 14 and Saturday 28 February worked.
    assert all(not calendar.is_workday(D(2026, 2, d)) for d in range(15, 24))
    assert calendar.day_info(D(2026, 2, 17)).name == "春节"
    assert calendar.is_workday(D(2026, 2, 14)) and calendar.is_workday(D(2026, 2, 28))
    assert calendar.is_workday(D(2026, 2, 24))
    assert not calendar.is_workday(D(2026, 3, 1))  # an ordinary Sunday
    assert calendar.day_info(D(2026, 3, 2)) == calendar.DayInfo(D(2026, 3, 2), True, "", "chinesecalendar")


def test_deadlines_across_national_day_week():
    start = D(2026, 9, 30)  # Wednesday before the holiday
    assert calendar.add_working_days(start, 1) == D(2026, 10, 8)
    assert calendar.add_working_days(start, 3) == D(2026, 10, 10)  # the make-up Saturday counts
    assert calendar.add_working_days(start, 4) == D(2026, 10, 12)
    assert calendar.add_working_days(D(2026, 10, 1), 1) == D(2026, 10, 8)  # start on a holiday
    assert calendar.add_working_days(D(2026, 10, 3), 0) == D(2026, 10, 8)
    assert calendar.add_working_days(start, 0) == start
    assert calendar.add_working_days(D(2026, 10, 8), -1) == start
    assert calendar.previous_workday(D(2026, 10, 8)) == start
    assert calendar.next_workday(start) == D(2026, 10, 8)
    assert calendar.working_days_between(start, D(2026, 10, 12)) == 4
    assert calendar.working_days_between(D(2026, 10, 12), start) == -4
    assert calendar.working_days_between(start, start) == 0


def test_datetime_start_uses_local_date():
    utc = datetime.UTC
    # 17:00 UTC on 29 September is 01:00 on 30 September in Shanghai.
    assert calendar.add_working_days(datetime.datetime(2026, 9, 29, 17, 0, tzinfo=utc), 1) == D(2026, 10, 8)
    assert calendar.add_working_days(datetime.datetime(2026, 9, 29, 15, 0, tzinfo=utc), 1) == D(2026, 9, 30)
    with pytest.raises(TypeError):
        calendar.is_workday("2026-10-01")


def test_deadline_spanning_years():
    due = calendar.add_working_days(D(2025, 12, 30), 3)
    assert due == D(2026, 1, 5)  # 31 Dec; 1–3 Jan off; 4 Jan (Sunday) worked: 31, 4, 5
    assert calendar.working_days_between(D(2025, 12, 30), due) == 3
    assert calendar.add_working_days(due, -3) == D(2025, 12, 30)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=D(2004, 1, 1), max_value=D(2028, 12, 31)), st.integers(-400, 400))
def test_working_days_between_inverts_add(start, n):
    due = calendar.add_working_days(start, n)
    assert calendar.is_workday(due)
    if n > 0:
        assert due > start and calendar.working_days_between(start, due) == n
    elif n < 0:
        # |n| working days before: those strictly between due and start, plus start itself if worked.
        assert due < start
        assert calendar.working_days_between(due, start) == -n - 1 + calendar.is_workday(start)


def test_2027_falls_back_to_weekdays_with_one_warning(caplog):
    calendar._warned.discard(2027)
    with caplog.at_level(logging.WARNING, logger="dgov.kernel.services.calendar"):
        assert calendar.is_workday(D(2027, 10, 1))  # a Friday: no data, so a working day
        assert not calendar.is_workday(D(2027, 10, 2))
        calendar.invalidate_calendar_cache()
        calendar.is_workday(D(2027, 3, 3))
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1
    assert calendar.day_info(D(2027, 10, 1)).source == "weekday"


def test_overrides_win_and_are_audited(admin_user):
    assert calendar.is_workday(D(2027, 10, 1))  # cached as a weekday first
    calendar.set_calendar_day(
        D(2027, 10, 1), False, "国庆节", actor=admin_user, source="国办发明电〔2026〕1号"
    )
    info = calendar.day_info(D(2027, 10, 1))
    assert (info.is_workday, info.name, info.source) == (False, "国庆节", "override")
    assert calendar.add_working_days(D(2027, 9, 30), 1) == D(2027, 10, 4)
    calendar.set_calendar_day(D(2027, 10, 9), True, "国庆节调休上班", actor=admin_user)
    assert calendar.is_workday(D(2027, 10, 9))
    # An override also beats the package for covered years.
    calendar.set_calendar_day(D(2026, 10, 1), True, "应急值守", actor=ACTOR)
    assert calendar.is_workday(D(2026, 10, 1))
    assert calendar.clear_calendar_day(D(2026, 10, 1), actor=ACTOR)
    assert not calendar.is_workday(D(2026, 10, 1))
    assert not calendar.clear_calendar_day(D(2026, 10, 1), actor=ACTOR)
    row = CalendarDay.objects.get(date=D(2027, 10, 1))
    assert row.updated_by == admin_user and row.source.startswith("国办发明电")
    sets = AuditRecord.objects.filter(action="kernel.calendar.set").order_by("seq")
    assert sets.count() == 3
    assert json.loads(sets[0].detail_json)["after"] == {
        "is_workday": False,
        "name": "国庆节",
        "source": "国办发明电〔2026〕1号",
    }
    assert AuditRecord.objects.filter(action="kernel.calendar.clear").count() == 1
    # Changing an existing override records the previous state.
    calendar.set_calendar_day(D(2027, 10, 1), True, "", actor=ACTOR)
    assert json.loads(
        AuditRecord.objects.filter(action="kernel.calendar.set").order_by("seq").last().detail_json
    )["before"] == {
        "is_workday": False,
        "name": "国庆节",
        "source": "国办发明电〔2026〕1号",
    }


def test_cache_expires_for_other_processes(settings):
    assert calendar.is_workday(D(2027, 5, 3))
    # Another process writes the table directly; this one sees it only once the cache expires.
    CalendarDay.objects.create(date=D(2027, 5, 3), is_workday=False, name="劳动节")
    assert calendar.is_workday(D(2027, 5, 3))
    settings.CALENDAR_CACHE_SECONDS = 0
    assert not calendar.is_workday(D(2027, 5, 3))


CSV = """\
date,is_workday,name,source
2027-01-01,0,元旦,
2027-02-06,1,春节调休上班,
2027-02-08,否,春节,
2027-02-09,holiday,春节,国办发明电〔2026〕9号
"""


def test_csv_load(tmp_path):
    path = tmp_path / "2027.csv"
    path.write_text(CSV, encoding="utf-8")
    result = calendar.load_calendar_csv(path, actor=ACTOR)
    assert (result.created, result.updated, result.unchanged, result.years) == (4, 0, 0, (2027,))
    assert not calendar.is_workday(D(2027, 2, 8)) and calendar.is_workday(D(2027, 2, 6))
    assert CalendarDay.objects.get(date=D(2027, 1, 1)).source == "2027.csv"
    assert CalendarDay.objects.get(date=D(2027, 2, 9)).source == "国办发明电〔2026〕9号"
    again = calendar.load_calendar_csv(path, actor=ACTOR)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    changed = calendar.load_calendar_csv(
        CSV.replace("2027-02-08,否", "2027-02-08,是").splitlines(), actor=ACTOR
    )
    assert changed.updated >= 1 and calendar.is_workday(D(2027, 2, 8))
    assert AuditRecord.objects.filter(action="kernel.calendar.load").count() == 3


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("day,flag\n2027-01-01,1\n", "calendar_csv_header"),
        ("date,is_workday\n2027-13-01,1\n", "calendar_csv_date"),
        ("date,is_workday\n2027-01-01,maybe\n", "calendar_csv_flag"),
        ("date,is_workday\n2027-01-01,1\n2027-01-01,0\n", "calendar_csv_duplicate"),
    ],
)
def test_csv_errors_load_nothing(text, code):
    with pytest.raises(ValidationError) as info:
        calendar.load_calendar_csv(text.splitlines(), actor=ACTOR)
    assert info.value.code == code
    assert not CalendarDay.objects.exists()


def test_fast_enough_for_hot_paths():
    calendar.add_working_days(D(2026, 1, 1), 1)  # warm the cache
    started = time.perf_counter()
    for i in range(20000):
        calendar.add_working_days(D(2026, 1, 1) + datetime.timedelta(days=i % 700), 20)
    assert time.perf_counter() - started < 2.0


def test_commands(tmp_path):
    out = StringIO()
    call_command("calendar", "check", "2026-10-01", "2026-10-10", stdout=out)
    lines = out.getvalue().splitlines()
    assert "休息日" in lines[0] and "国庆节" in lines[0]
    assert "工作日" in lines[1] and "星期六" in lines[1]
    out = StringIO()
    call_command("calendar", "add", "2026-09-30", "1", stdout=out)
    assert "2026-10-08" in out.getvalue()
    path = tmp_path / "overrides.csv"
    path.write_text(CSV, encoding="utf-8")
    out = StringIO()
    call_command("calendar", "load", str(path), stdout=out)
    assert "新增 4" in out.getvalue()
    call_command("calendar", "set", "2027-10-01", "--holiday", "--name", "国庆节", stdout=StringIO())
    assert not calendar.is_workday(D(2027, 10, 1))
    call_command("calendar", "clear", "2027-10-01", stdout=StringIO())
    assert calendar.is_workday(D(2027, 10, 1))
    assert AuditRecord.objects.filter(
        action="kernel.calendar.set", actor_label__startswith="system:cli"
    ).exists()
