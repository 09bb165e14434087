"""What ingesting mentions costs per month: by webhook (X Activity API) or by polling.

X bills both paths per post (`x-api/getting-started/pricing.mdx`, docs commit of 2026-08-22,
and docs.x.com/x-api/activity/event-pricing):

* a webhook event (`post.mention.create`, `post.reply.create`) is billed per event delivered,
  at its own price ($0.005, the `activity_event` price; "Per-event billing only applies to
  users on the pay-per-use product"), once per event within a UTC day;
* polling `GET /2/users/:id/mentions` is billed per post returned, not per request: an empty
  poll costs nothing, and with `since_id` each mention is returned once. When the account is
  the owner of the X app these are "Owned Reads" (`owned_read`), otherwise post reads
  (`post_read`). The same post read twice in one UTC day is billed once.

So at the same volume polling is the cheaper path whenever `owned_read < activity_event`, and
the poll cadence buys latency, not cost. chirpbase keeps polling on beside the webhook as the
safety net (a delivery X fails to make is never retried on self-serve tiers); that safety net
reads every mention again, so "webhook + polling" pays both. Whether X deduplicates a webhook
event against a read of the same post is not documented: it is assumed not to.

Prices are arguments: `chirpbase webhook status` passes the `pricing` config row's
(`x.activity_event`, `x.owned_read`, `x.post_read`); :data:`DEFAULT_INGESTION_PRICES` holds X's
published prices, the same figures as that row's defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class IngestionPrices:
    """USD per unit: an XAA post event, an owned read, a post read."""

    activity_event: float
    owned_read: float
    post_read: float

    def __post_init__(self) -> None:
        for name in ("activity_event", "owned_read", "post_read"):
            value = getattr(self, name)
            if not 0 <= value < 100:
                raise ValueError(f"{name} must be a price in USD (0 to 100), got {value!r}")


# X's pay-per-use prices as of 2026-08-22 (x-api/getting-started/pricing.mdx; the same figures
# as the `pricing` config's defaults). The one place these numbers live in the conversation code.
DEFAULT_INGESTION_PRICES = IngestionPrices(activity_event=0.005, owned_read=0.001, post_read=0.005)


@dataclass(frozen=True)
class IngestionCosts:
    """Monthly cost of each way to ingest ``mentions_per_day`` (see the module docs)."""

    mentions_per_day: float
    polls_per_day: float
    prices: IngestionPrices
    owned_reads: bool
    polling_usd: float  # polling alone
    webhook_usd: float  # webhook alone (polling turned off)
    webhook_and_polling_usd: float  # webhook with polling kept as the safety net
    poll_requests: int  # poll requests per month (none of them billed unless posts come back)
    poll_wait_s: float | None  # mean wait until a poll sees a new mention

    @property
    def read_price(self) -> float:
        return self.prices.owned_read if self.owned_reads else self.prices.post_read

    @property
    def cheaper(self) -> str:
        """'polling', 'webhook' or 'same' (comparing each path alone)."""
        if abs(self.polling_usd - self.webhook_usd) < 0.005:
            return "same"
        return "polling" if self.polling_usd < self.webhook_usd else "webhook"

    def as_json(self) -> dict[str, object]:
        return {
            "mentions_per_day": round(self.mentions_per_day, 2),
            "polls_per_day": round(self.polls_per_day, 2),
            "owned_reads": self.owned_reads,
            "prices_usd": {
                "activity_event": self.prices.activity_event,
                "owned_read": self.prices.owned_read,
                "post_read": self.prices.post_read,
            },
            "per_month_usd": {
                "polling": round(self.polling_usd, 4),
                "webhook": round(self.webhook_usd, 4),
                "webhook_and_polling": round(self.webhook_and_polling_usd, 4),
            },
            "poll_requests_per_month": self.poll_requests,
            "poll_wait_s": None if self.poll_wait_s is None else round(self.poll_wait_s, 1),
            "cheaper": self.cheaper,
        }


def compare_ingestion_costs(
    mentions_per_day: float,
    polls_per_day: float,
    *,
    prices: IngestionPrices,
    owned_reads: bool = True,
    days: int = DAYS_PER_MONTH,
) -> IngestionCosts:
    """The monthly cost of each path at this volume (``days`` per month)."""
    if mentions_per_day < 0 or polls_per_day < 0:
        raise ValueError("mentions and polls per day cannot be negative")
    mentions = mentions_per_day * days
    read = prices.owned_read if owned_reads else prices.post_read
    polled = mentions * read if polls_per_day > 0 else 0.0
    webhook = mentions * prices.activity_event
    return IngestionCosts(
        mentions_per_day=mentions_per_day,
        polls_per_day=polls_per_day,
        prices=prices,
        owned_reads=owned_reads,
        polling_usd=polled,
        webhook_usd=webhook,
        webhook_and_polling_usd=webhook + polled,
        poll_requests=round(polls_per_day * days),
        poll_wait_s=86_400 / polls_per_day / 2 if polls_per_day > 0 else None,
    )


_SECONDS = re.compile(r"^\s*(\d+)\s+seconds?\s*$")


def cron_runs_per_day(expr: str | None) -> float:
    """How often a pg_cron schedule runs on a day it runs: "* * * * *" → 1440, "*/5 * * * *"
    → 288, "30 seconds" → 2880. Only the minute and hour fields are counted (a schedule limited
    to some days runs this often on those days). Unreadable → 0."""
    if not expr:
        return 0.0
    seconds = _SECONDS.match(expr)
    if seconds:
        step = int(seconds.group(1))
        return 86_400 / step if step > 0 else 0.0
    parts = expr.split()
    if len(parts) != 5:
        return 0.0
    minutes, hours = _cron_field(parts[0], 60), _cron_field(parts[1], 24)
    return float(len(minutes) * len(hours))


def _cron_field(field: str, size: int) -> set[int]:
    out: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else 1
        if base == "*":
            low, high = 0, size - 1
        elif "-" in base:
            a, _, b = base.partition("-")
            if not (a.isdigit() and b.isdigit()):
                return set()
            low, high = int(a), int(b)
        elif base.isdigit():
            low = int(base)
            high = low if not step_text else size - 1
        else:
            return set()
        out.update(v for v in range(low, high + 1, step) if 0 <= v < size)
    return out
