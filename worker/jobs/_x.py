"""What the X handlers share: the bot's identity, quota reservations and usage accounting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from worker.jobs.context import JobContext
from worker.jobs.registry import Snooze
from worker.logs import redact, redact_value

# Re-check a capped quota this often: an operator may raise the cap mid-month.
CAP_RECHECK = timedelta(minutes=10)


def next_month_start(now: datetime | None = None) -> datetime:
    """The start of the next UTC month (quota counters are keyed by the UTC month)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


async def bot_user_id(ctx: JobContext) -> str:
    """The account's X user id: stored in x_account, fetched once from /2/users/me."""
    row = await ctx.services.db.fetchrow("get_account")
    if row and row["user_id"]:
        return str(row["user_id"])
    me = await ctx.services.x.me()
    await ctx.services.db.execute(
        "set_account_identity", {"user_id": me.id, "username": me.username}
    )
    return str(me.id)


async def reserve_quota(ctx: JobContext, resource: str, amount: int) -> date | None:
    """Take `amount` from the monthly quota or snooze: capped work waits, it is never dropped.

    Returns the month the reservation was taken in (a refund goes back to it)."""
    if amount <= 0:
        return None
    taken = await ctx.services.db.fetchrow(
        "consume_quota", {"resource": resource, "amount": amount}
    )
    if not taken or not taken["taken"]:
        raise quota_snooze(resource)
    month = taken["month"]
    return month if isinstance(month, date) else None


def quota_snooze(resource: str) -> Snooze:
    """Wait for next month (or, re-checked every CAP_RECHECK, a higher cap)."""
    until = min(next_month_start(), datetime.now(UTC) + CAP_RECHECK)
    return Snooze(
        until, f"monthly {resource} quota reached; waiting for next month or a higher cap"
    )


async def refund_unless_served(
    ctx: JobContext,
    resource: str,
    amount: int,
    exc: Exception,
    *,
    requests: int = 1,
    month: date | None = None,
) -> None:
    """Give back a reservation for a failed call, unless X may have served (part of) it.

    A timeout or a connection lost mid-request can still be billed by X, and when a call spans
    several requests (pages, batches) the ones before the failure were served. Keeping the
    charge then keeps the local count at or above X's, so a cap is never overrun."""
    if requests == 1 and not getattr(exc, "outcome_unknown", False):
        await refund_quota(ctx, resource, amount, month=month)


@dataclass
class ReadReservation:
    """Reads taken for one X call; the caller sets `served` to what X returned."""

    amount: int
    served: int = 0
    month: date | None = None  # the month the reads were reserved in


@asynccontextmanager
async def reserved_reads(
    ctx: JobContext, amount: int, *, requests: int = 1
) -> AsyncIterator[ReadReservation]:
    """Reserve `amount` reads (or snooze), run the block, then settle what X did not serve.

    Success gives back `amount - served`. A failure gives the reservation back only when X
    certainly served nothing (`refund_unless_served`: one request, a known outcome), then
    re-raises for the caller to map. This is the one home of that rule: the reads counter must
    never fall below what X bills.
    """
    month = await reserve_quota(ctx, "reads", amount)
    held = ReadReservation(amount, month=month)
    try:
        yield held
    except Exception as exc:
        await refund_unless_served(ctx, "reads", amount, exc, requests=requests, month=month)
        raise
    await refund_quota(ctx, "reads", amount - held.served, month=month)


async def refund_quota(
    ctx: JobContext, resource: str, amount: int, *, month: date | None = None
) -> None:
    """Give `amount` back to the month it was reserved in (None: the current month)."""
    if amount > 0:
        await ctx.services.db.execute(
            "refund_quota", {"resource": resource, "amount": amount, "month": month}
        )


async def record_usage(
    ctx: JobContext, endpoint: str, *, posts: int = 0, reads: int = 0, calls: int = 1
) -> None:
    """Per-endpoint counters and the last rate-limit headers X sent for that endpoint."""
    rl = ctx.services.x.rate_limit(endpoint)
    quotas = ctx.services.config.quotas
    cost = posts * quotas.cost_per_post_usd + reads * quotas.cost_per_read_usd
    await ctx.services.db.execute(
        "record_api_usage",
        {
            "endpoint": endpoint,
            "calls": calls,
            "posts": posts,
            "reads": reads,
            "rate_limit_limit": rl.limit if rl else None,
            "rate_limit_remaining": rl.remaining if rl else None,
            "rate_limit_reset": rl.reset_at if rl else None,
            "openai_input_tokens": 0,
            "openai_output_tokens": 0,
            "images": 0,
            "estimated_cost_usd": cost,
        },
    )


async def alert(
    ctx: JobContext, level: str, kind: str, key: str, message: str, **details: Any
) -> None:
    """Raise an alert (redacted: alerts are shown in status, the console and webhooks)."""
    await ctx.services.db.execute(
        "raise_alert",
        {
            "level": level,
            "kind": kind,
            "dedupe_key": key,
            "message": redact(message),
            "details": Jsonb(redact_value(details)),
        },
    )


async def usage_capped(ctx: JobContext, waiting: str) -> Snooze:
    """X answered usage-capped (the project's monthly cap): alert, and wait an hour, re-checking."""
    await alert(
        ctx,
        "critical",
        "x_usage_capped",
        "x_usage_capped",
        f"X answered usage-capped: the project's monthly cap is reached; {waiting} wait",
    )
    return Snooze(datetime.now(UTC) + timedelta(hours=1), "X usage cap reached")


def rate_limit_snooze(endpoint: str, reset_at: datetime | None) -> Snooze:
    """Wait for X's reset time (or a minute when X did not say), without spending an attempt."""
    now = datetime.now(UTC)
    until = reset_at + timedelta(seconds=1) if reset_at else now + timedelta(minutes=1)
    return Snooze(max(until, now), f"rate limited on {endpoint} until {until.isoformat()}")
