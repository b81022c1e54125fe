"""The working-day calendar (工作日历): statutory holidays and 调休 make-up days, for every deadline.

Where a day's status comes from, first match wins:

1. an override row (:class:`dgov.kernel.models.CalendarDay`), entered by administrators or loaded
   with ``dgov calendar load FILE.csv`` — for years the ``chinesecalendar`` package does not know
   yet (e.g. 2027 once the State Council publishes its 放假安排) or for local corrections;
2. the ``chinesecalendar`` package (years 2004–2026 in the installed version);
3. otherwise Monday–Friday are working days. When a year is neither covered by the package nor has
   any override row, a warning is logged once per year and process, because deadlines computed
   then ignore holidays nobody has entered yet.

Deadlines (:func:`add_working_days`): "n working days after ``start``" is the n-th working day
strictly after the start date — the start day itself never counts, whether or not it is a working
day, and the result is always a working day. A datetime start is first converted to its local date
(Asia/Shanghai). ``n == 0`` gives the start date if it is a working day, else the next working day;
negative ``n`` counts backwards (the |n|-th working day strictly before). :func:`working_days_between`
is the inverse: the working days in the half-open interval (a, b], so that
``working_days_between(a, add_working_days(a, n)) == n``.

Speed: each year is computed once into a bit per day plus running totals, so a lookup is a dict
access and a deadline a binary search. The per-year entries expire after
``settings.CALENDAR_CACHE_SECONDS`` (default 300 s) so that other processes pick up override edits;
the process that edits overrides drops its cache at once.
"""

from __future__ import annotations

import bisect
import csv
import datetime
import io
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import chinese_calendar
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.models import CalendarDay
from dgov.kernel.services import audit

__all__ = [
    "DayInfo",
    "add_working_days",
    "clear_calendar_day",
    "day_info",
    "invalidate_calendar_cache",
    "is_workday",
    "load_calendar_csv",
    "next_workday",
    "package_years",
    "previous_workday",
    "set_calendar_day",
    "working_days_between",
]

logger = logging.getLogger(__name__)

# The package names holidays in English; officials read Chinese.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}

SOURCE_OVERRIDE = "override"
SOURCE_PACKAGE = "chinesecalendar"
SOURCE_WEEKDAY = "weekday"


@dataclass(frozen=True)
class DayInfo:
    """One day's status and where it came from (``override``, ``chinesecalendar`` or ``weekday``)."""

    date: datetime.date
    is_workday: bool
    name: str
    source: str


def _package_covers(year: int) -> bool:
    """True when the installed chinesecalendar has the State Council arrangement for ``year``."""
    try:
        chinese_calendar.is_workday(datetime.date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def package_years() -> tuple[int, int]:
    """First and last year the installed chinesecalendar covers."""
    years = sorted({d.year for d in chinese_calendar.holidays} | {d.year for d in chinese_calendar.workdays})
    return years[0], years[-1]


class _Year:
    """One year as a bit per day (1 = working day), running totals and the names of special days."""

    __slots__ = ("year", "first", "flags", "totals", "overrides", "names", "covered", "built_at")

    def __init__(self, year: int):
        self.year = year
        self.first = datetime.date(year, 1, 1)
        days = (datetime.date(year + 1, 1, 1) - self.first).days if year < 9999 else 365
        self.covered = _package_covers(year)
        self.overrides = {
            row.date: row
            for row in CalendarDay.objects.filter(date__year=year).only("date", "is_workday", "name")
        }
        self.names: dict[datetime.date, str] = {}
        flags = bytearray(days)
        for i in range(days):
            day = self.first + datetime.timedelta(days=i)
            override = self.overrides.get(day)
            if override is not None:
                flags[i] = override.is_workday
                if override.name:
                    self.names[day] = override.name
            elif self.covered:
                on_holiday, holiday = chinese_calendar.get_holiday_detail(day)
                flags[i] = chinese_calendar.is_workday(day)
                if holiday is not None:
                    label = HOLIDAY_NAMES.get(holiday, holiday)
                    # Names are data shared by every request, so they are not translated per language.
                    self.names[day] = label if on_holiday else f"{label}调休上班"
            else:
                flags[i] = day.weekday() < 5
        self.flags = bytes(flags)
        totals = [0] * (days + 1)  # totals[k] = working days among the year's first k days
        for i, flag in enumerate(self.flags):
            totals[i + 1] = totals[i] + flag
        self.totals = totals
        self.built_at = time.monotonic()
        if not self.covered and not self.overrides:
            _warn_uncovered(year)

    def source(self, day: datetime.date) -> str:
        """Where this day's status comes from."""
        if day in self.overrides:
            return SOURCE_OVERRIDE
        return SOURCE_PACKAGE if self.covered else SOURCE_WEEKDAY


_lock = threading.Lock()
_years: dict[int, _Year] = {}
_warned: set[int] = set()


def _warn_uncovered(year: int) -> None:
    """Log once per year and process that ``year`` falls back to Monday–Friday."""
    if year in _warned:
        return
    _warned.add(year)
    logger.warning(
        "working-day calendar: no statutory holiday data for %s (neither chinesecalendar nor overrides); "
        "treating Monday-Friday as working days until an administrator enters the year",
        year,
    )


def _max_age() -> float:
    """Seconds a cached year stays valid."""
    return float(getattr(settings, "CALENDAR_CACHE_SECONDS", 300))


def _year(year: int) -> _Year:
    """The cached calendar of ``year``, rebuilt when missing or expired."""
    entry = _years.get(year)
    if entry is not None and time.monotonic() - entry.built_at < _max_age():
        return entry
    with _lock:
        entry = _years.get(year)
        if entry is None or time.monotonic() - entry.built_at >= _max_age():
            entry = _Year(year)
            _years[year] = entry
        return entry


def invalidate_calendar_cache(year: int | None = None) -> None:
    """Drop cached years (all, or one) so the next lookup reads the overrides again."""
    with _lock:
        if year is None:
            _years.clear()
        else:
            _years.pop(year, None)


def _as_date(value: datetime.date | datetime.datetime) -> datetime.date:
    """A date from a date or datetime (aware datetimes are read in the platform's local time)."""
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    if isinstance(value, datetime.date):
        return value
    raise TypeError(f"expected a date or datetime, got {type(value).__name__}")


# --- Lookups -----------------------------------------------------------------------------------------


def is_workday(day: datetime.date | datetime.datetime) -> bool:
    """True when ``day`` is a working day (overrides, then chinesecalendar, then Monday–Friday)."""
    day = _as_date(day)
    year = _year(day.year)
    return bool(year.flags[(day - year.first).days])


def day_info(day: datetime.date | datetime.datetime) -> DayInfo:
    """A day's status with its holiday/make-up name and the source of the ruling."""
    day = _as_date(day)
    year = _year(day.year)
    return DayInfo(day, bool(year.flags[(day - year.first).days]), year.names.get(day, ""), year.source(day))


def add_working_days(start: datetime.date | datetime.datetime, n: int) -> datetime.date:
    """The n-th working day strictly after ``start`` (see the module docstring for n <= 0)."""
    day = _as_date(start)
    if n == 0:
        return day if is_workday(day) else add_working_days(day, 1)
    year = _year(day.year)
    index = (day - year.first).days
    remaining = abs(n)
    for _step in range(200):  # more than 200 years without enough working days is a broken override table
        totals = year.totals
        if n > 0:
            available = totals[-1] - totals[index + 1]
            if remaining <= available:
                position = bisect.bisect_left(totals, totals[index + 1] + remaining) - 1
                return year.first + datetime.timedelta(days=position)
            remaining -= available
            year, index = _year(year.year + 1), -1
        else:
            available = totals[index]
            if remaining <= available:
                position = bisect.bisect_left(totals, totals[index] - remaining + 1) - 1
                return year.first + datetime.timedelta(days=position)
            remaining -= available
            year = _year(year.year - 1)
            index = len(year.flags)
    raise ValueError("no working days found within 200 years; check the calendar overrides")


def working_days_between(a: datetime.date | datetime.datetime, b: datetime.date | datetime.datetime) -> int:
    """Working days in (a, b]; negative when b is before a, so it inverts :func:`add_working_days`."""
    a, b = _as_date(a), _as_date(b)
    if b < a:
        return -working_days_between(b, a)
    count = 0
    year = _year(a.year)
    index = (a - year.first).days
    while True:
        if b.year == year.year:
            return count + year.totals[(b - year.first).days + 1] - year.totals[index + 1]
        count += year.totals[-1] - year.totals[index + 1]
        year, index = _year(year.year + 1), -1


def next_workday(day: datetime.date | datetime.datetime) -> datetime.date:
    """The first working day strictly after ``day``."""
    return add_working_days(day, 1)


def previous_workday(day: datetime.date | datetime.datetime) -> datetime.date:
    """The last working day strictly before ``day``."""
    return add_working_days(day, -1)


# --- Overrides ---------------------------------------------------------------------------------------


def _refresh_after_change(year: int) -> None:
    """Drop the year now (this transaction sees its writes) and again after commit (everyone does)."""
    invalidate_calendar_cache(year)
    transaction.on_commit(lambda: invalidate_calendar_cache(year))


def _actor_user(actor):
    """The actor as a user for ``updated_by`` (None for system labels)."""
    return actor if getattr(actor, "pk", None) is not None and hasattr(actor, "get_username") else None


def set_calendar_day(
    day: datetime.date, is_workday: bool, name: str = "", *, actor, source: str = ""
) -> CalendarDay:
    """Create or change the override for one date; audited, cache refreshed."""
    day = _as_date(day)
    with transaction.atomic():
        row = CalendarDay.objects.select_for_update().filter(date=day).first()
        before = (
            None if row is None else {"is_workday": row.is_workday, "name": row.name, "source": row.source}
        )
        if row is None:
            row = CalendarDay(date=day)
        row.is_workday = bool(is_workday)
        row.name = (name or "").strip()
        row.source = (source or "").strip()
        row.updated_by = _actor_user(actor)
        row.full_clean(exclude=["updated_by"], validate_unique=False)
        row.save()
        audit.record(
            "kernel.calendar.set",
            actor=actor,
            target=row,
            detail={
                "date": day.isoformat(),
                "before": before,
                "after": {"is_workday": row.is_workday, "name": row.name, "source": row.source},
            },
        )
        _refresh_after_change(day.year)
    return row


def clear_calendar_day(day: datetime.date, *, actor) -> bool:
    """Remove the override for one date (the package or weekday rule applies again); audited."""
    day = _as_date(day)
    with transaction.atomic():
        row = CalendarDay.objects.select_for_update().filter(date=day).first()
        if row is None:
            return False
        detail = {"date": day.isoformat(), "before": {"is_workday": row.is_workday, "name": row.name}}
        audit.record("kernel.calendar.clear", actor=actor, target=row, detail=detail)
        row.delete()
        _refresh_after_change(day.year)
    return True


_TRUE = {"1", "true", "yes", "y", "workday", "work", "是", "上班", "工作日", "补班", "调休上班"}
_FALSE = {"0", "false", "no", "n", "holiday", "off", "否", "放假", "休息", "节假日", "休息日"}


@dataclass(frozen=True)
class CalendarLoadResult:
    """What :func:`load_calendar_csv` did."""

    created: int
    updated: int
    unchanged: int
    years: tuple[int, ...]


def _parse_csv(text: str) -> list[tuple[datetime.date, bool, str, str]]:
    """Rows ``date,is_workday,name[,source]`` with a header line; errors name the line number."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is None or not {"date", "is_workday"} <= {f.strip() for f in reader.fieldnames}:
        raise ValidationError(
            _("工作日历文件：首行须为列名 date,is_workday,name,source"), code="calendar_csv_header"
        )
    rows = []
    seen: set[datetime.date] = set()
    for line, raw in enumerate(reader, start=2):
        record = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        try:
            day = datetime.date.fromisoformat(record["date"])
        except ValueError:
            raise ValidationError(
                _("工作日历文件第 %(line)d 行：日期 %(value)s 无效（应为 YYYY-MM-DD）")
                % {"line": line, "value": record["date"]},
                code="calendar_csv_date",
            ) from None
        flag = record["is_workday"].lower()
        if flag not in _TRUE | _FALSE:
            raise ValidationError(
                _(
                    "工作日历文件第 %(line)d 行：is_workday 值 %(value)s 无效"
                    "（应为 1/0、true/false、上班/放假）"
                )
                % {"line": line, "value": record["is_workday"]},
                code="calendar_csv_flag",
            )
        if day in seen:
            raise ValidationError(
                _("工作日历文件第 %(line)d 行：日期 %(value)s 重复")
                % {"line": line, "value": day.isoformat()},
                code="calendar_csv_duplicate",
            )
        seen.add(day)
        rows.append((day, flag in _TRUE, record.get("name", ""), record.get("source", "")))
    return rows


def load_calendar_csv(
    source: str | Path | Iterable[str], *, actor, default_source: str = ""
) -> CalendarLoadResult:
    """Load overrides from CSV (``date,is_workday,name,source``); all or nothing, one audit record.

    ``source`` is a path or the file's lines. Rows without a source get ``default_source`` (the
    command passes the file name).
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        text = path.read_text(encoding="utf-8")
        default_source = default_source or path.name
    else:
        text = "".join(line if line.endswith("\n") else line + "\n" for line in source)
    rows = _parse_csv(text)
    user = _actor_user(actor)
    with transaction.atomic():
        existing = {row.date: row for row in CalendarDay.objects.filter(date__in=[r[0] for r in rows])}
        new, changed, unchanged = [], [], 0
        for day, flag, name, origin in rows:
            origin = origin or default_source
            row = existing.get(day)
            if row is None:
                new.append(CalendarDay(date=day, is_workday=flag, name=name, source=origin, updated_by=user))
            elif (row.is_workday, row.name, row.source) != (flag, name, origin):
                row.is_workday, row.name, row.source, row.updated_by = flag, name, origin, user
                changed.append(row)
            else:
                unchanged += 1
        CalendarDay.objects.bulk_create(new, batch_size=500)
        if changed:
            for row in changed:
                row.updated_at = timezone.now()  # bulk_update skips auto_now
            CalendarDay.objects.bulk_update(
                changed, ["is_workday", "name", "source", "updated_by", "updated_at"]
            )
        years = tuple(sorted({r[0].year for r in rows}))
        audit.record(
            "kernel.calendar.load",
            actor=actor,
            detail={
                "source": default_source,
                "created": len(new),
                "updated": len(changed),
                "unchanged": unchanged,
                "years": list(years),
            },
        )
        for year in years:
            _refresh_after_change(year)
    return CalendarLoadResult(len(new), len(changed), unchanged, years)
