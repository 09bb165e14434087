"""Clock edge cases: the month boundary for quota counters, UTC days, and pg_cron's UTC schedules.

Quota counters (`quota_usage`, `api_usage`) are keyed by the UTC month of `now()` through
`public.current_month()`. PostgreSQL cannot be made to believe it is 23:59:59 on the last day of a
month, so the boundary is checked on `current_month()`'s own body, evaluated at chosen instants
(the function's SQL with `now()` replaced by the instant) under session time zones as far apart as
UTC+14 and UTC-12; what really runs (`consume_quota`) is checked to write the UTC month whatever
the session's zone, and usage recorded for adjacent months is checked not to count.

pg_cron runs schedules in UTC (`cron.timezone`), so a schedule string is a UTC time: it is stored
exactly as given, and daylight saving time never moves it (the local time of a run does move).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.types.json import Jsonb

from worker.jobs._x import next_month_start

ZONES = ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "America/New_York", "Europe/Berlin"]

BOUNDARIES = [
    # (instant, UTC month it belongs to)
    ("2026-11-30 23:59:59+00", date(2026, 11, 1)),
    ("2026-12-01 00:00:00+00", date(2026, 12, 1)),
    ("2026-12-31 23:59:59.999999+00", date(2026, 12, 1)),
    ("2027-01-01 00:00:00+00", date(2027, 1, 1)),
    ("2028-02-29 23:59:59+00", date(2028, 2, 1)),  # leap day
    ("2028-03-01 00:00:00+00", date(2028, 3, 1)),
    # A local "new month" that is still the old one in UTC, and the reverse.
    ("2026-12-01 00:30:00+14", date(2026, 11, 1)),
    ("2026-11-30 13:00:00-12", date(2026, 12, 1)),
]


def _month_body(conn: psycopg.Connection) -> str:
    body = conn.execute(
        "select prosrc from pg_proc where oid = 'public.current_month()'::regprocedure"
    ).fetchone()[0]
    assert body.count("now()") == 1, body  # the only clock it reads
    return body.strip().rstrip(";")


@pytest.mark.parametrize("zone", ZONES)
def test_current_month_at_the_boundary_is_the_utc_month(
    conn: psycopg.Connection, zone: str
) -> None:
    body = _month_body(conn)
    at = body.replace("now()", "%(at)s::timestamptz")
    with conn.transaction():
        conn.execute(f"set local timezone = '{zone}'")
        for instant, month in BOUNDARIES:
            got = conn.execute(at, {"at": instant}).fetchone()[0]  # type: ignore[arg-type]
            assert got == month, f"{instant} in session zone {zone}: {got}, want {month}"


def test_every_counter_keys_on_current_month(conn: psycopg.Connection) -> None:
    """The functions and views that read or write monthly counters all use current_month()."""
    for fn in ("consume_quota", "refund_quota", "record_api_usage"):
        body = conn.execute(
            "select string_agg(prosrc, ' ') from pg_proc where proname = %s"
            " and pronamespace = 'public'::regnamespace",
            (fn,),
        ).fetchone()[0]
        assert "public.current_month()" in body, fn
        assert not re.search(r"date_trunc\s*\(\s*'month'", body), fn  # no second definition
    view = conn.execute("select pg_get_viewdef('public.quota_use'::regclass)").fetchone()[0]
    assert "current_month()" in view


@pytest.mark.parametrize("zone", ZONES)
def test_consume_quota_writes_the_utc_month_in_any_session_zone(
    conn: psycopg.Connection, zone: str
) -> None:
    with conn.transaction():
        conn.execute(f"set local timezone = '{zone}'")
        assert conn.execute("select public.consume_quota('posts', 1)").fetchone()[0] is True
        utc_month = conn.execute(
            "select (date_trunc('month', now() at time zone 'UTC'))::date"
        ).fetchone()[0]
        rows = conn.execute("select month, used from public.quota_usage where resource = 'posts'")
        assert rows.fetchall() == [(utc_month, 1)]
        conn.execute("select public.record_api_usage('tweets', 1, 1)")
        months = conn.execute("select month from public.api_usage").fetchall()
        assert months == [(utc_month,)]


def test_usage_of_adjacent_months_does_not_count(conn: psycopg.Connection) -> None:
    conn.execute(
        "update public.configs set value = value || %s where key = 'quotas'",
        (Jsonb({"monthly_post_cap": 3}),),
    )
    # Last month's counter is full and next month's (a clock that ran ahead) too.
    conn.execute(
        "insert into public.quota_usage (month, resource, used) values"
        " ((public.current_month() - interval '1 month')::date, 'posts', 3),"
        " ((public.current_month() + interval '1 month')::date, 'posts', 3)"
    )
    used = conn.execute("select used from public.quota_use where resource = 'posts'").fetchone()
    assert used == (0,)
    taken = [
        conn.execute("select public.consume_quota('posts', 1)").fetchone()[0] for _ in range(4)
    ]
    assert taken == [True, True, True, False]  # this month's cap, from zero
    rows = conn.execute(
        "select month - public.current_month(), used from public.quota_usage"
        " where resource = 'posts' order by month"
    ).fetchall()
    # Adjacent months untouched: -30/31 days, 0, +30/31 days (date difference in days).
    assert [used for _, used in rows] == [3, 3, 3]
    assert rows[1][0] == 0
    # A refund only ever gives back to the current month.
    conn.execute("select public.refund_quota('posts', 1)")
    assert conn.execute(
        "select used from public.quota_usage where resource = 'posts' order by month"
    ).fetchall() == [(3,), (2,), (3,)]


def test_the_daily_like_cap_counts_the_utc_day(conn: psycopg.Connection) -> None:
    """The daily like cap resets at 00:00 UTC, whatever the session's time zone: likes are
    taken from the counter of the UTC day (a like at 23:59:59 UTC yesterday does not count)."""
    utc_today = conn.execute("select (now() at time zone 'UTC')::date").fetchone()[0]
    conn.execute(
        "insert into public.daily_likes (day, used) values (%s, 7)",
        (utc_today - timedelta(days=1),),
    )
    conn.execute("insert into public.replies (reply_id, author_id) values ('1', '42'), ('2', '42')")
    with conn.transaction():
        conn.execute("set local timezone = 'Pacific/Kiritimati'")  # already tomorrow there
        assert conn.execute("select public.reserve_daily_like('1', 1)").fetchone()[0] is True
        assert conn.execute("select public.reserve_daily_like('2', 1)").fetchone()[0] is False
    assert dict(conn.execute("select day, used from public.daily_likes").fetchall()) == {
        utc_today - timedelta(days=1): 7,
        utc_today: 1,
    }


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        (datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2028, 2, 29, 12, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC)),
        # Aware times in other zones: the UTC month decides, as in SQL.
        (
            datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=14))),
            datetime(2026, 12, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 30, 13, 0, tzinfo=timezone(timedelta(hours=-12))),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
    ],
)
def test_worker_waits_for_the_next_utc_month(now: datetime, start: datetime) -> None:
    """A capped job snoozes until the counters reset: the start of the next UTC month."""
    got = next_month_start(now)
    assert got == start and got.utcoffset() == timedelta(0)


# -- pg_cron ------------------------------------------------------------------------------------


@pytest.fixture
def cron(cron_db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    yield cron_db


def _cron_schedule(conn: psycopg.Connection, name: str) -> str:
    row = conn.execute("select schedule from cron.job where jobname = %s", (name,)).fetchone()
    assert row is not None, name
    return str(row[0])


def test_pg_cron_runs_in_utc(cron: psycopg.Connection) -> None:
    assert cron.execute("show cron.timezone").fetchone()[0] in ("UTC", "GMT")
    # The job's own dedupe keys are UTC too, whatever the session's zone.
    command = cron.execute(
        "select command from cron.job where jobname = 'chirpbase-poll-mentions'"
    ).fetchone()[0]
    assert "at time zone 'UTC'" in command


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Sydney"])
def test_schedules_are_kept_as_given_whatever_the_session_zone(
    cron: psycopg.Connection, zone: str
) -> None:
    # 02:30 does not exist in New York or Berlin on their spring-forward days, and happens
    # twice on the fall-back days. In UTC it happens once every day: the string stays as given.
    given = {
        "generate_cron": "30 2 * * *",
        "poll_mentions_cron": "*/5 * * * *",
        "collect_stats_cron": "15 1 * * 0",
    }
    with cron.transaction():
        cron.execute(f"set local timezone = '{zone}'")
        cron.execute(
            "update public.configs set value = value || %s where key = 'schedule'", (Jsonb(given),)
        )
    assert _cron_schedule(cron, "chirpbase-generate") == "30 2 * * *"
    assert _cron_schedule(cron, "chirpbase-poll-mentions") == "*/5 * * * *"
    assert _cron_schedule(cron, "chirpbase-collect-stats") == "15 1 * * 0"


def test_dst_moves_the_local_time_not_the_utc_run() -> None:
    """What an operator in New York sees for "30 2 * * *" (UTC) across the March 2027 change."""
    new_york = ZoneInfo("America/New_York")
    runs = [datetime(2027, 3, day, 2, 30, tzinfo=UTC) for day in (13, 14, 15)]
    gaps = {b - a for a, b in pairwise(runs)}
    assert gaps == {timedelta(hours=24)}  # UTC runs: every 24 h, DST or not
    local = [r.astimezone(new_york).strftime("%d %H:%M") for r in runs]
    assert local == ["12 21:30", "13 21:30", "14 22:30"]  # local time shifts by the DST hour
