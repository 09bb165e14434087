"""Reconciling a post whose outcome is unknown: is it on X already? And recording a post.

After a lost answer, a timeout, a 5xx or a crash mid-call, the next attempt looks for the post
on the account's timeline before posting again. Two facts about X shape how:

- X rewrites what it stores (t.co links, an appended media link, ``&<>`` as entities): a post
  is recognised by :func:`worker.clients.x.rewriting.matches_sent`, its text with the
  rewriting undone and its attachments, never by comparing raw text.
- The timeline is eventually consistent and paged irregularly: a post just created can be
  missing from it for a while, and a page can be short or empty yet carry ``next_token``. So
  every page is followed until X gives no token, bounded by ``start_time`` to the post's own
  period (five minutes before the row started posting), and "not posted" is concluded only
  once the consistency window (``scheduled_tweets.reconcile_after``) has passed; inside it the
  job waits (a snooze, no attempt spent) and looks again.

Cost: one walk of the pages X serves since the horizon, twice at most per unknown outcome (once
at the retry, once after the window when the first look found nothing): ``bench/reconcile.py``.

A post found (or just created) is recorded by :func:`record_posted`: the `tweets` row and the
row `posted`, in one statement. post_tweet and reconcile_post share these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.clients.x import (
    XCreditsExhausted,
    XNetworkError,
    XRateLimited,
    XServerError,
    XTimeout,
    XUsageCapped,
)
from worker.clients.x.rewriting import matches_sent
from worker.jobs._x import (
    bot_user_id,
    credits_exhausted,
    rate_limit_snooze,
    record_usage,
    reserved_reads,
    usage_capped,
)
from worker.jobs.context import JobContext
from worker.jobs.registry import RetryLater, Snooze

PAGE_SIZE = 100  # posts per timeline page (X's maximum)
# Pages followed before giving up for now: X serves at most the 3,200 most recent posts of a
# timeline (32 full pages); short and empty pages cost extra requests on top.
MAX_PAGES = 64
HORIZON = timedelta(minutes=5)  # searched back from when the row started posting


@dataclass(frozen=True)
class Found:
    tweet_id: str
    posted_at: datetime


def media_count(row: dict[str, Any]) -> int:
    """How many attachments the row's post carries on X (its image, if any)."""
    return 1 if row["image_path"] else 0


async def record_posted(
    ctx: JobContext, row: dict[str, Any], tweet_id: str, posted_at: datetime, media_id: str | None
) -> None:
    """The row's post is tweet `tweet_id`: a `tweets` row and the row `posted` (one statement)."""
    await ctx.services.db.execute(
        "record_posted",
        {
            "tweet_id": tweet_id,
            "content": row["content"],
            "image_url": row["image_url"],
            "posted_at": posted_at,
            "scheduled_tweet_id": row["id"],
            "media_id": media_id,
            "alt_text": row["alt_text"],
        },
    )


async def record_found(ctx: JobContext, row: dict[str, Any], found: Found, operation: str) -> None:
    """X created (and bills) the post on an earlier call: count it at its price, record it."""
    await record_usage(ctx, "tweets", operation, posts=1)
    await record_posted(ctx, row, found.tweet_id, found.posted_at, None)


class TimelineTooLong(Exception):
    """More pages than MAX_PAGES since the horizon: "not posted" cannot be concluded."""


async def find_posted(
    ctx: JobContext,
    content: str,
    *,
    media_count: int,
    since: datetime,
    reply_to: str | None = None,
) -> Found | None:
    """The account's post of ``content`` (with ``media_count`` attachments, answering
    ``reply_to`` when given) created since five minutes before ``since``, following every page X
    serves; None when it is not there."""
    user_id = await bot_user_id(ctx)
    horizon = (since - HORIZON).astimezone(UTC).replace(microsecond=0)
    token: str | None = None
    for _page in range(MAX_PAGES):
        async with reserved_reads(ctx, PAGE_SIZE) as reads:
            page = await ctx.services.x.timeline_page(
                user_id, max_results=PAGE_SIZE, pagination_token=token, start_time=horizon
            )
            reads.served = len(page.tweets)
        # The account's own timeline: owned reads, each post billed once a UTC day.
        await record_usage(ctx, "users_tweets", "owned_read", post_ids=[t.id for t in page.tweets])
        for tweet in page.tweets:
            if tweet.created_at is not None and tweet.created_at < horizon:
                continue
            if matches_sent(content, tweet, media_count=media_count, reply_to=reply_to):
                return Found(tweet.id, tweet.created_at or datetime.now(UTC))
        token = page.next_token
        if token is None:
            return None
    raise TimelineTooLong(f"more than {MAX_PAGES} timeline pages since {horizon.isoformat()}")


async def window_end(ctx: JobContext, row_id: int) -> datetime | None:
    """When the row's consistency window closes, if it is still open (the database's clock)."""
    value = await ctx.services.db.fetchval(
        "reconcile_window_end",
        {"id": row_id, "call_s": ctx.services.x.call_timeout_s, "window_s": window_s(ctx)},
    )
    return value if isinstance(value, datetime) else None


def window_s(ctx: JobContext) -> float:
    """How long X's timeline may take to show a post (RECONCILE_WINDOW_S)."""
    return float(ctx.services.settings.reconcile_window_s)


async def reconcile(ctx: JobContext, row: dict[str, Any], *, media_count: int) -> Found | None:
    """Look for the row's post on X. Found: it is there. None: it is not, and the consistency
    window has passed, so posting (again) is safe. Inside the window, a post not found yet
    makes the job wait for the window's end (``Snooze``; the row stays ``posting``).

    X's refusals become waits that spend no attempt; failures retry later."""
    since = row["post_started_at"] or datetime.now(UTC)
    open_until = await window_end(ctx, row["id"])  # read before looking: a look after it counts
    try:
        found = await find_posted(
            ctx,
            row["content"],
            media_count=media_count,
            since=since,
            reply_to=row.get("in_reply_to_tweet_id"),
        )
    except XRateLimited as exc:
        raise rate_limit_snooze("users_tweets", exc.reset_at, daily=exc.daily) from None
    except XUsageCapped:
        raise await usage_capped(ctx, "posts") from None
    except XCreditsExhausted:
        raise await credits_exhausted(ctx, "posts") from None
    except (XTimeout, XNetworkError, XServerError) as exc:
        raise RetryLater(f"reconciliation failed ({type(exc).__name__}); will retry") from None
    except TimelineTooLong as exc:
        raise RetryLater(f"reconciliation incomplete: {exc}") from None
    if found is None and open_until is not None:
        raise Snooze(
            open_until + timedelta(seconds=1),
            "outcome unknown and not on the timeline yet: waiting for X's timeline until "
            f"{open_until.isoformat()} before concluding it was not posted",
        )
    return found
