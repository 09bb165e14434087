"""When a pg_cron schedule fires, for the calendar: the standard five fields, read as pg_cron does.

`minute hour day-of-month month day-of-week`, each `*`, a number, a range `a-b`, a step `*/n` or
`a-b/n`, or a comma list of those; day-of-week 0-7 (0 and 7 are Sunday); `$` as day-of-month is
the month's last day (pg_cron's extension). As in cron, when both day fields are restricted a
day matches either. Interval schedules (`30 seconds`, pg_cron >= 1.5) have no calendar times:
`occurrences` returns none for them and `describe` says what they mean. Times are UTC, like
pg_cron on Supabase (`cron.timezone`).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

_INTERVAL = re.compile(r"^\s*(\d+)\s+seconds?\s*$", re.IGNORECASE)
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


class CronError(ValueError):
    """Not a schedule this reader understands."""


def _field(text: str, lo: int, hi: int) -> tuple[set[int], bool]:
    """The values a field allows, and whether it is restricted (not `*`)."""
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise CronError(f"bad step in {text!r}")
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = int(base)
            end = hi if step_text else start
        if not (lo <= start <= hi and lo <= end <= hi and start <= end):
            raise CronError(f"{text!r} is outside {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return values, text != "*"


class CronSpec(NamedTuple):
    minutes: set[int]
    hours: set[int]
    days: set[int] | None  # None: the month's last day (`$`)
    months: set[int]
    weekdays: set[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool


def parse(expr: str) -> CronSpec:
    fields = expr.split()
    if len(fields) != 5:
        raise CronError(f"{expr!r} is not a five-field cron schedule")
    try:
        minutes, _ = _field(fields[0], *_RANGES[0])
        hours, _ = _field(fields[1], *_RANGES[1])
        last_day = fields[2] == "$"
        dom, dom_restricted = (set(), True) if last_day else _field(fields[2], *_RANGES[2])
        months, _ = _field(fields[3], *_RANGES[3])
        dow, dow_restricted = _field(fields[4], *_RANGES[4])
    except ValueError as exc:
        raise CronError(str(exc)) from None
    return CronSpec(
        minutes,
        hours,
        None if last_day else dom,
        months,
        {d % 7 for d in dow},
        dom_restricted,
        dow_restricted,
    )


def _day_matches(day: date, spec: CronSpec) -> bool:
    if day.month not in spec.months:
        return False
    if spec.days is None:
        dom_ok = day.day == calendar.monthrange(day.year, day.month)[1]
    else:
        dom_ok = day.day in spec.days
    dow_ok = (day.isoweekday() % 7) in spec.weekdays
    if spec.days_restricted and spec.weekdays_restricted:
        return dom_ok or dow_ok
    return dom_ok and dow_ok


def occurrences(expr: str, start: datetime, end: datetime, limit: int = 500) -> list[datetime]:
    """Firing times in [start, end), at most `limit` (none for interval schedules)."""
    if _INTERVAL.match(expr):
        return []
    spec = parse(expr)
    minutes, hours = sorted(spec.minutes), sorted(spec.hours)
    out: list[datetime] = []
    day = start.astimezone(UTC).date()
    while datetime.combine(day, time(0, 0), tzinfo=UTC) < end and len(out) < limit:
        if _day_matches(day, spec):
            for h in hours:
                for m in minutes:
                    at = datetime.combine(day, time(h, m), tzinfo=UTC)
                    if start <= at < end:
                        out.append(at)
                        if len(out) >= limit:
                            return out
        day += timedelta(days=1)
    return out


def describe(expr: str) -> str:
    """A short reading of a schedule: `every 30 seconds`, `daily at 09:00, 13:00 UTC` ..."""
    if m := _INTERVAL.match(expr):
        return f"every {m.group(1)} seconds"
    try:
        spec = parse(expr)
    except CronError:
        return expr
    minutes, hours, dow = spec.minutes, spec.hours, spec.weekdays
    dom_r, dow_r = spec.days_restricted, spec.weekdays_restricted
    fields = expr.split()
    if fields[0] == "*" and fields[1] == "*":
        when = "every minute"
    elif fields[1] == "*":
        when = f"every hour at :{min(minutes):02d}" if len(minutes) == 1 else f"minutes {fields[0]}"
    elif len(hours) * len(minutes) <= 6:
        when = "at " + ", ".join(f"{h:02d}:{m:02d}" for h in sorted(hours) for m in sorted(minutes))
    else:
        when = f"{len(hours) * len(minutes)} times a day"
    days = ""
    if dow_r and not dom_r:
        names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        days = " on " + ", ".join(names[d] for d in sorted(dow))
    elif dom_r:
        days = " on the last day of the month" if spec.days is None else f" on day {fields[2]}"
    if fields[3] != "*":
        days += f" in month {fields[3]}"
    if not days and fields[1] != "*":
        days = " every day"
    return f"{when}{days} (UTC)"
