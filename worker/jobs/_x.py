"""What the X handlers share: the bot's identity, quota and budget reservations, usage and
price accounting, capability checks, and the waits X's refusals call for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from worker.billing.access import Capability
from worker.clients.x import (
    XCreditsExhausted,
    XNetworkError,
    XRateLimited,
    XServerError,
    XTimeout,
    XUsageCapped,
)
from worker.jobs.context import JobContext
from worker.jobs.registry import RetryLater, Skip, Snooze
from worker.logs import redact, redact_value

# Re-check a capped quota this often: an operator may raise the cap mid-month.
CAP_RECHECK = timedelta(minutes=10)
# Out of X credits (402): look again this often; credits come back when a person adds them.
CREDITS_RECHECK = timedelta(minutes=10)


def next_month_start(now: datetime | None = None) -> datetime:
    """The start of the next UTC month (an upper bound for quota waits: the billing cycle may
    start earlier, on X's cap_reset_day, and waits are re-checked every CAP_RECHECK anyway)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


async def bot_user_id(ctx: JobContext) -> str:
    """The account's X user id: stored in x_account, fetched once from /2/users/me."""
    row = await ctx.services.db.fetchrow("get_account")
    if row and row["user_id"]:
        return str(row["user_id"])
    me = await ctx.services.x.me()
    await record_usage(ctx, "me", "user_read", user_ids=[me.id])
    await ctx.services.db.execute(
        "set_account_identity", {"user_id": me.id, "username": me.username}
    )
    return str(me.id)


# -- quotas ------------------------------------------------------------------------------------


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
    """Reads taken for one X call (`amount`: what was granted, which may be less than asked
    when the caller allowed shrinking); the caller sets `served` to what X returned."""

    amount: int
    served: int = 0
    month: date | None = None  # the month the reads were reserved in


@asynccontextmanager
async def reserved_reads(
    ctx: JobContext, amount: int, *, requests: int = 1, minimum: int | None = None
) -> AsyncIterator[ReadReservation]:
    """Reserve `amount` reads (or snooze), run the block, then settle what X did not serve.

    With `minimum`, a cap with less than `amount` left grants what remains (at least `minimum`;
    below it the job snoozes): the caller asks X for no more than `held.amount`.

    Success gives back `amount - served`. A failure gives the reservation back only when X
    certainly served nothing (`refund_unless_served`: one request, a known outcome), then
    re-raises for the caller to map. This is the one home of that rule: the reads counter must
    never fall below what X bills.
    """
    if minimum is None:
        month = await reserve_quota(ctx, "reads", amount)
        granted = amount
    else:
        taken = await ctx.services.db.fetchrow(
            "consume_quota_upto", {"resource": "reads", "amount": amount, "minimum": minimum}
        )
        granted = int(taken["granted"] or 0) if taken else 0
        if granted <= 0:
            raise quota_snooze("reads")
        month = taken["month"] if taken and isinstance(taken["month"], date) else None
    held = ReadReservation(granted, month=month)
    try:
        yield held
    except Exception as exc:
        await refund_unless_served(ctx, "reads", granted, exc, requests=requests, month=month)
        raise
    await refund_quota(ctx, "reads", granted - held.served, month=month)


async def refund_quota(
    ctx: JobContext, resource: str, amount: int, *, month: date | None = None
) -> None:
    """Give `amount` back to the month it was reserved in (None: the current month)."""
    if amount > 0:
        await ctx.services.db.execute(
            "refund_quota", {"resource": resource, "amount": amount, "month": month}
        )


# -- the dollar budget -------------------------------------------------------------------------


@dataclass
class Budgeted:
    """Dollars of the monthly budget held for one priced call until it is recorded."""

    reserved: float
    open: bool = True

    def take(self) -> float:
        """The reservation, handed to the usage record that settles it (once)."""
        if not self.open:
            return 0.0
        self.open = False
        return self.reserved


def budget_snooze() -> Snooze:
    until = min(next_month_start(), datetime.now(UTC) + CAP_RECHECK)
    return Snooze(
        until,
        "monthly budget (configs.quotas.monthly_budget_usd) reached; waiting for the next "
        "billing cycle or a higher budget",
    )


@asynccontextmanager
async def budgeted(ctx: JobContext, estimate: float) -> AsyncIterator[Budgeted]:
    """Hold `estimate` USD of the monthly budget (X and OpenAI together) around a priced call,
    or snooze when it does not fit: at the budget, work waits and nothing is dropped.

    The call's usage record settles the hold against the real price (`record_usage(...,
    spend=held)`); a hold not settled that way (the call failed) is given back. A call whose
    outcome is unknown and which X did bill is priced when reconciliation finds it."""
    held = Budgeted(max(0.0, float(estimate)))
    if held.reserved > 0:
        ok = await ctx.services.db.fetchval(
            "reserve_usd", {"resource": "spend_usd", "amount": held.reserved}
        )
        if not ok:
            raise budget_snooze()
    try:
        yield held
    finally:
        reserved = held.take()
        if reserved > 0:
            await ctx.services.db.execute(
                "settle_usd", {"resource": "spend_usd", "reserved": reserved, "actual": 0}
            )


# -- usage and prices --------------------------------------------------------------------------


async def record_usage(
    ctx: JobContext,
    endpoint: str,
    operation: str = "",
    *,
    posts: int = 0,
    calls: int = 1,
    post_ids: list[str] | None = None,
    user_ids: list[str] | None = None,
    spend: Budgeted | None = None,
) -> float:
    """Record one X call in `api_usage`, priced by `operation` (configs.pricing.x), with the last
    rate-limit headers X sent for the endpoint. Reads pass the ids X returned (`post_ids` or
    `user_ids`): SQL bills each resource once per UTC day, as X does. Returns the price."""
    rl = ctx.services.x.rate_limit(endpoint)
    kind, ids = ("post", post_ids) if post_ids is not None else ("user", user_ids)
    cost = await ctx.services.db.fetchval(
        "record_x_usage",
        {
            "endpoint": endpoint,
            "operation": operation,
            "requests": calls,
            "posts": posts,
            "resource_kind": kind if ids is not None else None,
            "resource_ids": [str(i) for i in ids] if ids is not None else None,
            "reserved_usd": spend.take() if spend is not None else 0.0,
            "rate_limit_limit": rl.limit if rl else None,
            "rate_limit_remaining": rl.remaining if rl else None,
            "rate_limit_reset": rl.reset_at if rl else None,
        },
    )
    return float(cost or 0.0)


# -- alerts and waits --------------------------------------------------------------------------


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


async def credits_exhausted(ctx: JobContext, waiting: str) -> Snooze:
    """X answered 402 (out of credits, or the spending limit of the billing cycle is reached):
    alert, and wait, re-checking every CREDITS_RECHECK. Nothing is dropped; the first call X
    serves again resolves the alert (SQL record_x_usage)."""
    await alert(
        ctx,
        "critical",
        "x_credits_exhausted",
        "x_credits_exhausted",
        "X answered 402: the account is out of credits or its spending limit for the billing "
        f"cycle is reached (console.x.com); {waiting} wait and resume when X serves again",
    )
    return Snooze(datetime.now(UTC) + CREDITS_RECHECK, "X credits exhausted (HTTP 402)")


def rate_limit_snooze(endpoint: str, reset_at: datetime | None, *, daily: bool = False) -> Snooze:
    """Wait for X's reset time (or a minute when X did not say), without spending an attempt.
    A spent 24-hour window waits for its own reset."""
    now = datetime.now(UTC)
    until = reset_at + timedelta(seconds=1) if reset_at else now + timedelta(minutes=1)
    window = "24-hour limit" if daily else "rate limited"
    return Snooze(max(until, now), f"{window} on {endpoint} until {until.isoformat()}")


def wait_for_spent_window(ctx: JobContext, endpoint: str) -> None:
    """Snooze before calling when X's last answer showed a spent window for `endpoint` (the
    24-hour ones above all): calling would only earn another 429."""
    seen = ctx.services.x.rate_limit(endpoint)
    now = datetime.now(UTC)
    until = seen.waits_until(now) if seen is not None else None
    if until is not None:
        daily = seen is not None and until == seen.day_reset_at
        raise rate_limit_snooze(endpoint, until, daily=daily)


# -- capabilities ------------------------------------------------------------------------------


async def require_capability(ctx: JobContext, capability: Capability) -> None:
    """Skip the job (ends `skipped`, not retried) when the configured X access tier lacks
    `capability` or X refused it earlier (SQL x_capability_available)."""
    row = await ctx.services.db.fetchrow("x_capability", {"capability": capability})
    if row is not None and not row["available"]:
        raise Skip(row["notice"] or f"{capability} not available", {"capability": capability})


async def capability_refused(ctx: JobContext, capability: Capability, detail: str) -> Skip:
    """X answered 403 client-forbidden for `capability`: pause it (one alert naming it, the tier
    and the date X removed it) and skip this job; jobs behind it are skipped before any call."""
    await ctx.services.db.execute(
        "pause_x_capability", {"capability": capability, "detail": detail[:300]}
    )
    return Skip(f"X refused {capability}: {detail}"[:500], {"capability": capability})


# -- a read X refused or lost ------------------------------------------------------------------

# What an X read can end in that is not its answer: waits (rate limit, usage cap, 402) and
# failures worth a retry (network, 5xx). Catch these, then `read_failed` says what they mean.
READ_FAILURES = (
    XRateLimited,
    XUsageCapped,
    XCreditsExhausted,
    XTimeout,
    XNetworkError,
    XServerError,
)


async def read_failed(
    ctx: JobContext, exc: Exception, *, endpoint: str, waiting: str, what: str
) -> Exception:
    """The job's outcome for a read that ended in one of READ_FAILURES: a wait that spends no
    attempt for X's refusals (`waiting` names the work in the alert), else a retry (`what` names
    the read in the error)."""
    if isinstance(exc, XRateLimited):
        return rate_limit_snooze(endpoint, exc.reset_at, daily=exc.daily)
    if isinstance(exc, XUsageCapped):
        return await usage_capped(ctx, waiting)
    if isinstance(exc, XCreditsExhausted):
        return await credits_exhausted(ctx, waiting)
    return RetryLater(f"{what} failed ({type(exc).__name__})")
