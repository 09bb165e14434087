"""Monthly quotas: consume under/at/over the cap, alerts, refunds, concurrency, month boundary."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg
import pytest

from tests.sql.helpers import open_alerts, scalar, set_config


def _consume(conn: psycopg.Connection, resource: str = "posts", amount: float = 1) -> bool:
    return bool(scalar(conn, "select public.consume_quota(%s, %s::numeric)", (resource, amount)))


def _used(conn: psycopg.Connection, resource: str = "posts") -> Decimal:
    return scalar(
        conn,
        "select coalesce(sum(used), 0) from public.quota_usage"
        " where resource = %s and month = public.current_month()",
        (resource,),
    )


def _caps(conn: psycopg.Connection) -> dict[str, Decimal | None]:
    return {r: c for r, c, _ in conn.execute("select * from public.quota_caps()")}


def test_plan_presets_and_overrides(conn: psycopg.Connection) -> None:
    # Default: pay-per-use, no cap on X calls; an OpenAI budget and an overall one.
    assert _caps(conn) == {"posts": None, "reads": None, "openai_usd": 20, "spend_usd": 50}
    assert all(_consume(conn) for _ in range(50))
    # The free plan's preset applies although the default config carries null overrides.
    set_config(conn, "quotas", {"plan": "free"})
    assert (
        scalar(conn, "select value -> 'monthly_post_cap' from public.configs where key = 'quotas'")
        is None
    )
    assert _caps(conn) == {"posts": 500, "reads": 100, "openai_usd": 20, "spend_usd": 50}
    set_config(conn, "quotas", {"plan": "basic"})
    assert _caps(conn)["posts"] == 3000
    # A numeric override wins over the preset.
    set_config(conn, "quotas", {"plan": "free", "monthly_post_cap": 10, "monthly_read_cap": 0})
    assert _caps(conn) == {"posts": 10, "reads": 0, "openai_usd": 20, "spend_usd": 50}
    assert _consume(conn, "reads") is False


def test_free_plan_stops_at_its_cap(conn: psycopg.Connection) -> None:
    set_config(conn, "quotas", {"plan": "free"})
    conn.execute(
        "insert into public.quota_usage (month, resource, used)"
        " values (public.current_month(), 'reads', 99)"
    )
    assert _consume(conn, "reads") is True
    assert _consume(conn, "reads") is False
    assert _used(conn, "reads") == 100


def test_consume_under_at_and_over_the_cap(conn: psycopg.Connection) -> None:
    set_config(conn, "quotas", {"monthly_post_cap": 10, "alert_threshold": 0.8})
    assert _consume(conn, amount=7) is True
    assert _used(conn) == 7
    assert _consume(conn, amount=4) is False  # would not fit: nothing is taken
    assert _used(conn) == 7
    assert _consume(conn, amount=3) is True  # exactly at the cap
    assert _used(conn) == 10
    assert _consume(conn) is False
    assert _used(conn) == 10
    with pytest.raises(
        psycopg.errors.InvalidParameterValue, match='unknown quota resource "likes"'
    ):
        _consume(conn, "likes")


def test_threshold_alert_once_then_bumped_and_cap_alert(conn: psycopg.Connection) -> None:
    set_config(conn, "quotas", {"monthly_post_cap": 10, "alert_threshold": 0.8})
    for _ in range(7):
        assert _consume(conn)
    assert open_alerts(conn) == []
    assert _consume(conn)  # 8 of 10: 80 %
    [alert] = open_alerts(conn)
    assert (alert["kind"], alert["level"], alert["dedupe_key"]) == (
        "quota_threshold",
        "warning",
        "quota_threshold:posts",
    )
    assert "80%" in alert["message"] and alert["occurrences"] == 1
    assert _consume(conn) and _consume(conn)  # 9 and 10 bump the same alert
    [alert] = open_alerts(conn)
    assert alert["occurrences"] == 3 and "100%" in alert["message"]
    assert open_alerts(conn, "quota_cap_reached") == []

    assert _consume(conn) is False
    assert _consume(conn) is False
    [cap] = open_alerts(conn, "quota_cap_reached")
    assert cap["level"] == "critical" and cap["dedupe_key"] == "quota_cap:posts"
    assert cap["occurrences"] == 2 and "cap of 10 reached" in cap["message"]
    assert len(open_alerts(conn)) == 2


def test_refund_quota(conn: psycopg.Connection) -> None:
    set_config(conn, "quotas", {"monthly_post_cap": 5})
    for _ in range(5):
        assert _consume(conn)
    assert _consume(conn) is False
    conn.execute("select public.refund_quota('posts')")
    assert _used(conn) == 4
    assert _consume(conn) is True
    conn.execute("select public.refund_quota('posts', 100)")
    assert _used(conn) == 0  # never negative
    conn.execute("select public.refund_quota('reads', 3)")  # nothing used yet: a no-op
    assert _used(conn, "reads") == 0


def test_a_refund_goes_back_to_the_month_it_was_reserved_in(conn: psycopg.Connection) -> None:
    """Reserved at 23:59:59 on the last day, refunded at 00:00:01: the old month gets it back."""
    last_month = scalar(conn, "select public.current_month() - interval '1 month'")
    conn.execute(
        "insert into public.quota_usage (month, resource, used) values (%s, 'posts', 3)",
        (last_month,),
    )
    assert _consume(conn)  # this month: 1
    conn.execute("select public.refund_quota('posts', 1, %s::date)", (last_month,))
    assert _used(conn) == 1  # this month untouched
    assert (
        scalar(
            conn,
            "select used from public.quota_usage where month = %s and resource = 'posts'",
            (last_month,),
        )
        == 2
    )
    # A month is its billing cycle's first day; no month means this one.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="first day of a billing cycle"):
        conn.execute("select public.refund_quota('posts', 1, %s::date + 17)", (last_month,))
    conn.execute("select public.refund_quota('posts', 1)")
    assert _used(conn) == 0
    # A post's reservation month is the month it started posting in.
    row = scalar(
        conn,
        "insert into public.scheduled_tweets (content) values ('late night') returning id",
    )
    conn.execute(
        "update public.scheduled_tweets set status = 'posting',"
        " post_started_at = (%s::date + interval '1 month') - interval '1 second' where id = %s",
        (last_month, row),
    )
    assert scalar(conn, "select public.post_reservation_month(%s)", (row,)) == last_month.date()
    # X's billing cycle may start mid-month (cap_reset_day): the reservation month follows it.
    conn.execute("update public.x_account set cap_reset_day = 15")
    conn.execute(
        "update public.scheduled_tweets set post_started_at = '2026-11-14 23:59:59Z' where id = %s",
        (row,),
    )
    assert str(scalar(conn, "select public.post_reservation_month(%s)", (row,))) == "2026-10-15"
    conn.execute("select public.refund_quota('posts', 1, '2026-10-15'::date)")  # a cycle start
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="billing cycle"):
        conn.execute("select public.refund_quota('posts', 1, '2026-10-01'::date)")


def test_openai_budget_in_dollars(conn: psycopg.Connection) -> None:
    assert _consume(conn, "openai_usd", 19.5) is True
    assert _consume(conn, "openai_usd", 0.75) is False
    assert _consume(conn, "openai_usd", 0.5) is True
    assert _used(conn, "openai_usd") == Decimal("20")


def test_a_new_month_starts_at_zero(conn: psycopg.Connection) -> None:
    set_config(conn, "quotas", {"monthly_post_cap": 10})
    conn.execute(
        "insert into public.quota_usage (month, resource, used) values"
        " ((public.current_month() - interval '1 month')::date, 'posts', 10)"
    )
    assert scalar(conn, "select used from public.quota_use where resource = 'posts'") == 0
    assert _consume(conn) is True
    assert _used(conn) == 1
    last = scalar(
        conn,
        "select used from public.quota_usage"
        " where month = (public.current_month() - interval '1 month')::date and resource = 'posts'",
    )
    assert last == 10
    # quota_usage is keyed by the UTC month, whatever the session's time zone.
    conn.execute("set timezone = 'Pacific/Kiritimati'")
    assert scalar(conn, "select public.current_month()") == scalar(
        conn, "select date_trunc('month', now() at time zone 'UTC')::date"
    )
    conn.execute("reset timezone")
    view = conn.execute(
        "select used, cap, percent from public.quota_use where resource = 'posts'"
    ).fetchone()
    assert view == (1, 10, Decimal("10.0"))


def test_concurrent_consumers_never_exceed_the_cap(conn: psycopg.Connection, dsn: str) -> None:
    cap, threads, attempts = 50, 8, 20
    set_config(conn, "quotas", {"monthly_post_cap": cap})
    start = threading.Barrier(threads)

    def consumer(_: int) -> int:
        with psycopg.connect(dsn, autocommit=True) as c:
            start.wait()
            return sum(_consume(c) for _ in range(attempts))

    with ThreadPoolExecutor(threads) as pool:
        taken = sum(pool.map(consumer, range(threads), timeout=60))
    assert taken == cap
    assert _used(conn) == cap
    assert len(open_alerts(conn, "quota_cap_reached")) == 1
    assert len(open_alerts(conn, "quota_threshold")) == 1
