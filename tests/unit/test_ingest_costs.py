"""What webhook and polling ingestion cost per month (worker/conversation/ingest_costs.py)."""

from __future__ import annotations

import pytest

from worker.conversation.ingest_costs import (
    DEFAULT_INGESTION_PRICES,
    IngestionPrices,
    compare_ingestion_costs,
    cron_runs_per_day,
)


def test_reference_volume_at_x_prices() -> None:
    """30 mentions a day, polled every minute, at X's published prices."""
    owned = compare_ingestion_costs(30, 1440, prices=DEFAULT_INGESTION_PRICES)
    assert owned.polling_usd == pytest.approx(0.90)  # 900 posts x $0.001 (owned reads)
    assert owned.webhook_usd == pytest.approx(4.50)  # 900 events x $0.005
    assert owned.webhook_and_polling_usd == pytest.approx(5.40)
    assert (owned.cheaper, owned.poll_requests, owned.poll_wait_s) == ("polling", 43_200, 30.0)
    other = compare_ingestion_costs(30, 1440, prices=DEFAULT_INGESTION_PRICES, owned_reads=False)
    assert other.polling_usd == pytest.approx(4.50)  # post reads cost what events cost
    assert other.cheaper == "same"
    assert other.webhook_and_polling_usd == pytest.approx(9.00)


def test_prices_are_arguments_and_decide_the_cheaper_path() -> None:
    cheap_events = IngestionPrices(activity_event=0.0005, owned_read=0.001, post_read=0.005)
    costs = compare_ingestion_costs(100, 96, prices=cheap_events, days=31)
    assert costs.webhook_usd == pytest.approx(100 * 31 * 0.0005)
    assert costs.polling_usd == pytest.approx(100 * 31 * 0.001)
    assert costs.cheaper == "webhook"
    assert costs.as_json()["per_month_usd"] == {
        "polling": 3.1,
        "webhook": 1.55,
        "webhook_and_polling": 4.65,
    }


def test_cost_does_not_depend_on_the_poll_cadence_only_the_wait_does() -> None:
    fast = compare_ingestion_costs(10, 1440, prices=DEFAULT_INGESTION_PRICES)
    slow = compare_ingestion_costs(10, 24, prices=DEFAULT_INGESTION_PRICES)
    assert fast.polling_usd == slow.polling_usd
    assert (fast.poll_wait_s, slow.poll_wait_s) == (30.0, 1800.0)
    off = compare_ingestion_costs(10, 0, prices=DEFAULT_INGESTION_PRICES)
    assert (off.polling_usd, off.poll_wait_s, off.poll_requests) == (0.0, None, 0)
    assert compare_ingestion_costs(0, 1440, prices=DEFAULT_INGESTION_PRICES).cheaper == "same"


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        compare_ingestion_costs(-1, 10, prices=DEFAULT_INGESTION_PRICES)
    with pytest.raises(ValueError, match="activity_event"):
        IngestionPrices(activity_event=-0.1, owned_read=0.001, post_read=0.005)


def test_defaults_are_xs_published_prices() -> None:
    """x-api/getting-started/pricing.mdx (2026-08-22): post read $0.005, owned read $0.001;
    docs.x.com/x-api/activity/event-pricing: post.mention.create and post.reply.create $0.005
    per event."""
    assert (
        IngestionPrices(activity_event=0.005, owned_read=0.001, post_read=0.005)
        == DEFAULT_INGESTION_PRICES
    )


@pytest.mark.parametrize(
    ("expr", "runs"),
    [
        ("* * * * *", 1440),
        ("*/5 * * * *", 288),
        ("0 * * * *", 24),
        ("0,30 9-17 * * *", 18),
        ("*/15 8-20/2 * * *", 28),
        ("5 4 * * 1", 1),
        ("7/20 * * * *", 72),
        ("30 seconds", 2880),
        ("1 second", 86400),
        ("not a cron", 0),
        ("61 * * * *", 0),
        ("a-b * * * *", 0),
        ("", 0),
        (None, 0),
    ],
)
def test_cron_runs_per_day(expr: str | None, runs: float) -> None:
    assert cron_runs_per_day(expr) == runs
