"""Prices per operation, X's once-a-day billing of reads, the dollar budget, the billing cycle
that follows X's cap_reset_day, reads that shrink to fit a cap, and periodic jobs that do not
pile up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.sql.helpers import Jsonb, claim, open_alerts, scalar, set_config
from worker.config.models import XPrices


def _record(conn: psycopg.Connection, endpoint: str, operation: str, **kw: Any) -> Decimal:
    args = {"endpoint": endpoint, "operation": operation, **kw}
    names = ", ".join(f"{k} => %({k})s" for k in args)
    return scalar(conn, f"select public.record_x_usage({names})", args)


def _usage(conn: psycopg.Connection, endpoint: str, operation: str) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select * from public.api_usage where endpoint = %s and operation = %s",
            (endpoint, operation),
        )
        row = cur.fetchone()
    assert row is not None
    return row


def test_sql_defaults_are_the_pricing_models(shared_conn: psycopg.Connection) -> None:
    """One set of X prices: the pricing row, SQL's fallback and the pydantic defaults agree."""
    defaults = XPrices().model_dump()
    assert set(defaults) == {
        "post", "post_with_url", "reply_summoned", "media_metadata", "post_read",
        "owned_read", "user_read", "activity_event",
    }  # fmt: skip
    row = scalar(shared_conn, "select value -> 'x' from public.configs where key = 'pricing'")
    assert {k: float(v) for k, v in row.items()} == defaults
    for operation, price in defaults.items():
        assert float(scalar(shared_conn, "select public.x_price(%s)", (operation,))) == price
    assert scalar(shared_conn, "select public.x_price('media_upload')") == 0
    meta = scalar(shared_conn, "select value from public.configs where key = 'pricing'")
    assert meta["as_of"] == "2026-04-20" and meta["source"].endswith("/getting-started/pricing")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"x": {"post": -1}}, "configs.pricing.x.post must be between 0 and 100"),
        ({"x": {"like": 0.01}}, "configs.pricing.x.like is not an X operation"),
        ({"x": {"post": "cheap"}}, "configs.pricing.x.post must be a number"),
        ({"as_of": "yesterday"}, 'configs.pricing.as_of must be a date like "2026-04-20"'),
        ({"openai": []}, "configs.pricing.openai must be a object"),
    ],
)
def test_bad_prices_are_refused(shared_conn: psycopg.Connection, patch: Any, message: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        set_config(shared_conn, "pricing", patch)


def test_writes_are_priced_per_request_by_operation(conn: psycopg.Connection) -> None:
    assert _record(conn, "tweets", "post_with_url", posts=1) == Decimal("0.20")
    assert _record(conn, "tweets", "post", posts=1) == Decimal("0.015")
    assert _record(conn, "tweets", "reply_summoned", posts=1) == Decimal("0.010")
    assert _record(conn, "media_upload", "") == 0
    url = _usage(conn, "tweets", "post_with_url")
    assert (url["calls"], url["posts"], url["units"]) == (1, 1, 1)
    assert url["estimated_cost_usd"] == Decimal("0.2")
    # The operator edits a price: the next call is priced with it.
    conn.execute(
        "update public.configs set value = jsonb_set(value, '{x,post}', '0.02') where key = 'pricing'"
    )
    assert _record(conn, "tweets", "post", posts=1) == Decimal("0.02")
    assert _usage(conn, "tweets", "post")["estimated_cost_usd"] == Decimal("0.035")


def test_reads_are_billed_once_per_resource_per_utc_day(conn: psycopg.Connection) -> None:
    ids = [str(i) for i in range(1, 11)]
    first = _record(conn, "mentions", "owned_read", resource_kind="post", resource_ids=ids)
    assert first == Decimal("0.010")  # ten posts at $0.001
    again = _record(
        conn, "users_tweets", "owned_read", resource_kind="post", resource_ids=[*ids[:5], "11"]
    )
    assert again == Decimal("0.001")  # only post 11 is new today, whatever the endpoint
    lookup = _record(conn, "tweets_lookup", "post_read", resource_kind="post", resource_ids=ids)
    assert lookup == 0
    users = _record(conn, "me", "user_read", resource_kind="user", resource_ids=["1", "1"])
    assert users == Decimal("0.010")  # a user is another resource than post 1; counted once
    mentions = _usage(conn, "mentions", "owned_read")
    assert (mentions["reads"], mentions["units"]) == (10, 10)
    timeline = _usage(conn, "users_tweets", "owned_read")
    assert (timeline["reads"], timeline["units"]) == (6, 1)
    # A new UTC day bills them again (the rows of two days ago are what the daily prune drops).
    conn.execute("update public.x_billed_resources set day = day - 1")
    assert _record(conn, "mentions", "owned_read", resource_kind="post", resource_ids=ids) == (
        Decimal("0.010")
    )
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="resource_kind is required"):
        _record(conn, "mentions", "owned_read", resource_ids=ids)


def _used(conn: psycopg.Connection, resource: str) -> Decimal:
    return scalar(
        conn,
        "select coalesce(sum(used), 0) from public.quota_usage"
        " where resource = %s and month = public.current_month()",
        (resource,),
    )


def test_the_budget_is_a_hard_stop_with_an_alert_at_80_percent(conn: psycopg.Connection) -> None:
    set_config(conn, "quotas", {"monthly_budget_usd": 1.0})
    assert scalar(conn, "select public.reserve_usd('spend_usd', 0.5)") is True
    # The call cost less than held: settled with the real price.
    assert _record(
        conn, "tweets", "post_with_url", posts=1, reserved_usd=Decimal("0.5")
    ) == Decimal("0.20")
    assert _used(conn, "spend_usd") == Decimal("0.20")
    assert scalar(conn, "select public.reserve_usd('spend_usd', 0.65)") is True
    (warning,) = open_alerts(conn, "quota_threshold")
    assert warning["dedupe_key"] == "quota_threshold:spend_usd" and "85%" in warning["message"]
    assert scalar(conn, "select public.reserve_usd('spend_usd', 0.2)") is False  # 1.05 > 1.00
    (cap,) = open_alerts(conn, "quota_cap_reached")
    assert cap["dedupe_key"] == "quota_cap:spend_usd"
    assert _used(conn, "spend_usd") == Decimal("0.85")  # nothing taken for the refused call
    # OpenAI takes its own budget and the overall one, both or neither.
    set_config(conn, "quotas", {"monthly_budget_usd": 10.0, "openai_monthly_budget_usd": 0.1})
    assert scalar(conn, "select public.reserve_usd('openai_usd', 0.2)") is False
    assert (_used(conn, "openai_usd"), _used(conn, "spend_usd")) == (0, Decimal("0.85"))
    assert scalar(conn, "select public.reserve_usd('openai_usd', 0.05)") is True
    conn.execute("select public.settle_usd('openai_usd', 0.05, 0.07)")  # overran: charged
    assert (_used(conn, "openai_usd"), _used(conn, "spend_usd")) == (
        Decimal("0.07"),
        Decimal("0.92"),
    )
    # No budget at all when the operator says so.
    set_config(conn, "quotas", {"monthly_budget_usd": None})
    assert scalar(conn, "select cap from public.quota_caps() where resource = 'spend_usd'") is None
    assert scalar(conn, "select public.reserve_usd('spend_usd', 1000)") is True


def test_a_read_shrinks_to_fit_what_the_cap_leaves(conn: psycopg.Connection) -> None:
    set_config(conn, "quotas", {"monthly_read_cap": 100})
    conn.execute(
        "insert into public.quota_usage (month, resource, used)"
        " values (public.current_month(), 'reads', 63)"
    )
    assert scalar(conn, "select public.consume_quota_upto('reads', 500, 5)") == 37
    assert _used(conn, "reads") == 100
    assert open_alerts(conn, "quota_cap_reached") == []
    conn.execute("select public.refund_quota('reads', 3)")
    assert scalar(conn, "select public.consume_quota_upto('reads', 500, 5)") == 0  # 3 < 5
    assert _used(conn, "reads") == 97
    (cap,) = open_alerts(conn, "quota_cap_reached")
    assert cap["dedupe_key"] == "quota_cap:reads"
    assert scalar(conn, "select public.consume_quota_upto('reads', 2, 1)") == 2
    set_config(conn, "quotas", {"monthly_read_cap": None})
    assert scalar(conn, "select public.consume_quota_upto('reads', 500, 5)") == 500


def test_the_billing_cycle_follows_x_cap_reset_day(conn: psycopg.Connection) -> None:
    def start(moment: str) -> str:
        return str(scalar(conn, "select public.billing_cycle_start(%s::timestamptz)", (moment,)))

    assert start("2026-11-20 10:00Z") == "2026-11-01"  # X has not said: the calendar month
    conn.execute("update public.x_account set cap_reset_day = 15")
    assert start("2026-11-20 10:00Z") == "2026-11-15"
    assert start("2026-11-14 23:59Z") == "2026-10-15"
    conn.execute("update public.x_account set cap_reset_day = 31")
    assert start("2026-02-28 00:00Z") == "2026-02-28"  # a short month starts on its last day
    assert start("2026-03-30 12:00Z") == "2026-02-28"
    assert start("2026-03-31 00:00Z") == "2026-03-31"
    cycle = conn.execute("select * from public.billing_cycle()").fetchone()
    assert cycle is not None and cycle[0] < cycle[1]


def test_a_new_cap_reset_day_moves_the_running_counters_to_x_cycle(
    conn: psycopg.Connection,
) -> None:
    calendar = scalar(conn, "select public.current_month()")
    conn.execute("select public.consume_quota('posts', 4)")
    _record(conn, "tweets", "post", posts=1)
    today = int(scalar(conn, "select extract(day from now() at time zone 'UTC')"))
    day = today - 1 if today > 1 else 2  # a cycle that began yesterday (or last month)
    assert scalar(conn, "select public.set_cap_reset_day(%s)", (day,)) is True
    cycle = scalar(conn, "select public.current_month()")
    assert cycle != calendar
    # Nothing counted before is lost: it moved to the new cycle (never counted low).
    assert _used(conn, "posts") == 4
    assert scalar(conn, "select count(*) from public.quota_usage where month <> %s", (cycle,)) == 0
    assert _usage(conn, "tweets", "post")["month"] == cycle
    assert scalar(conn, "select public.set_cap_reset_day(%s)", (day,)) is False  # unchanged
    assert scalar(conn, "select usage_checked_at is not null from public.x_account")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("select public.set_cap_reset_day(32)")


def test_periodic_jobs_do_not_pile_up_while_one_waits(conn: psycopg.Connection) -> None:
    def tick(window: str) -> int:
        return int(
            scalar(conn, "select public.enqueue_periodic_job('poll_mentions', %s, 5, 3)", (window,))
        )

    first = tick("10:00")
    # A minute later the first still waits (snoozed by a rate limit, say): no second job.
    assert tick("10:01") == first
    (running,) = claim(conn, kinds=("poll_mentions",))
    assert tick("10:02") == first  # nor while it runs
    conn.execute(
        "select public.snooze_job(%s, 'w1', %s, now() + interval '15 minutes', 'rate limited')",
        (running["id"], running["lease_token"]),
    )
    assert tick("10:03") == first
    # A backfill (its own payload) neither blocks nor is blocked.
    conn.execute(
        "select public.enqueue_job('poll_mentions', %s, now(), 0, 'poll_mentions:backfill:1:9')",
        (Jsonb({"since_id": "1", "until_id": "9"}),),
    )
    assert tick("10:04") == first
    assert scalar(conn, "select count(*) from public.jobs where kind = 'poll_mentions'") == 2
    conn.execute(
        "update public.jobs set status = 'succeeded', finished_at = now() where id = %s", (first,)
    )
    second = tick("10:05")
    assert second != first
    assert scalar(conn, "select dedupe_key from public.jobs where id = %s", (second,)) == (
        "poll_mentions:10:05"
    )
