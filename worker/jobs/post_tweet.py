"""`post_tweet`: post one scheduled_tweets row to X, exactly once.

The intent is recorded (status `posting`) before X is called. If the outcome of a call is
unknown (timeout, dropped connection, 5xx, a crash before the result was written), the next
attempt first looks for the text among the account's recent tweets and records that tweet
instead of posting again. X's duplicate-content refusal means the same thing: already posted.

What X allows and charges is checked before any call: a quote post needs Enterprise access
(since 2026-04-20), and on self-serve access a reply must answer a post that summoned the
account (since 2026-02-23; SQL x_summoned_by). A row that cannot be posted on the configured
tier fails with the reason and its job ends `skipped`. The post's price (configs.pricing.x:
$0.20 with a URL, $0.010 for a summoned reply, $0.015 otherwise) is held in the monthly budget
before the call and recorded by operation after it. Generated images go out with
`made_with_ai: true` (configs.generation.made_with_ai).
"""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict

from worker.billing.prices import post_operation
from worker.clients.x import (
    XAuthError,
    XBadRequest,
    XCapabilityRefused,
    XCreditsExhausted,
    XDuplicate,
    XNetworkError,
    XRateLimited,
    XReplyNotAllowed,
    XServerError,
    XTimeout,
    XUsageCapped,
)
from worker.content.tweet_text import validate_tweet_text
from worker.db import query
from worker.jobs._x import (
    alert,
    bot_user_id,
    budgeted,
    capability_refused,
    credits_exhausted,
    quota_snooze,
    rate_limit_snooze,
    record_usage,
    refund_quota,
    reserved_reads,
    usage_capped,
    wait_for_spent_window,
)
from worker.jobs.context import JobContext
from worker.jobs.registry import GiveUp, RetryLater, Skip, job_kind

_URL = re.compile(r"https?://\S+", re.IGNORECASE)
RECONCILE_LOOKBACK = 100  # tweets per page searched for an unknown outcome
# Pages followed back to the post's start (X serves the 3,200 most recent posts of a timeline):
# a busy account can post more than one page between a lost answer and the retry.
RECONCILE_MAX_PAGES = 32


class PostTweetPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduled_tweet_id: int


def comparable(text: str) -> str:
    """Text as X stores it, for matching: entities unescaped, URLs (t.co-wrapped) masked."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    return " ".join(_URL.sub("<url>", text).split())


_LEADING_HANDLES = re.compile(r"^(?:@\w{1,15}\s+)+")


def is_our_post(
    tweet_text: str, tweet_reply_to: str | None, content: str, reply_to: str | None
) -> bool:
    """Whether a post of the account's timeline is the one `content` would have made.

    A reply comes back with the handles X put in front of it (the answered author's, and the
    others' in the thread: `reply.exclude_reply_user_ids` in POST /2/tweets removes them), which
    the sent text does not have: for a reply to the same post, leading handles are left out of
    both sides."""
    if comparable(tweet_text) == comparable(content):
        return True
    if reply_to is None or tweet_reply_to != reply_to:
        return False
    return _LEADING_HANDLES.sub("", comparable(tweet_text)) == _LEADING_HANDLES.sub(
        "", comparable(content)
    )


async def find_posted(
    ctx: JobContext, content: str, since: datetime | None, reply_to: str | None = None
) -> dict[str, Any] | None:
    """Look for `content` among the account's tweets (reconciliation of unknown outcomes).

    With `since` (when the row started posting), every tweet back to five minutes before it is
    searched, page by page: a fixed window of the latest tweets would miss one that newer posts
    pushed out of it, and posting again would then be refused as a duplicate while the tweet
    stays unrecorded. Without `since`, the latest page only."""
    user_id = await bot_user_id(ctx)
    horizon = (since - timedelta(minutes=5)) if since else None
    until_id: str | None = None
    for _page in range(RECONCILE_MAX_PAGES if horizon else 1):
        async with reserved_reads(ctx, RECONCILE_LOOKBACK) as reads:
            tweets = await ctx.services.x.recent_tweets(
                user_id, max_results=RECONCILE_LOOKBACK, until_id=until_id
            )
            reads.served = len(tweets)
        await record_usage(ctx, "users_tweets", "owned_read", post_ids=[t.id for t in tweets])
        for tweet in tweets:
            if not is_our_post(tweet.text, tweet.in_reply_to_tweet_id, content, reply_to):
                continue
            if horizon and tweet.created_at and tweet.created_at < horizon:
                continue
            return {"tweet_id": tweet.id, "posted_at": tweet.created_at or datetime.now(UTC)}
        oldest = tweets[-1] if tweets else None
        if (
            len(tweets) < RECONCILE_LOOKBACK
            or oldest is None
            or horizon is None
            or oldest.created_at is None
            or oldest.created_at < horizon
        ):
            break  # the timeline is exhausted, or this page already reaches past the horizon
        until_id = oldest.id
    return None


async def reconcile(
    ctx: JobContext, content: str, since: datetime | None, reply_to: str | None = None
) -> dict[str, Any] | None:
    """`find_posted`, with X's refusals turned into waits that spend no attempt: the row stays
    `posting` meanwhile, so whichever attempt runs next reconciles before posting."""
    try:
        return await find_posted(ctx, content, since, reply_to)
    except XRateLimited as exc:
        raise rate_limit_snooze("users_tweets", exc.reset_at, daily=exc.daily) from None
    except XUsageCapped:
        raise await usage_capped(ctx, "posts") from None
    except XCreditsExhausted:
        raise await credits_exhausted(ctx, "posts") from None
    except (XTimeout, XNetworkError, XServerError) as exc:
        raise RetryLater(f"reconciliation failed ({type(exc).__name__}); will retry") from None


async def _record(
    ctx: JobContext, row: dict[str, Any], tweet_id: str, posted_at: datetime, media_id: str | None
) -> None:
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


async def _fail_row(ctx: JobContext, row_id: int, error: str) -> None:
    await ctx.services.db.execute("mark_scheduled_failed", {"id": row_id, "error": error})


_CAPPED = object()


async def _refuse_on_this_tier(ctx: JobContext, row: dict[str, Any]) -> bool:
    """Fail the row and skip the job when X would refuse it on the configured access tier:
    before any call, with the reason. Returns whether the row replies to a post that summoned
    the account (billed at the summoned-reply price)."""
    db = ctx.services.db
    if row["quote_tweet_id"]:
        access = await db.fetchrow("x_capability", {"capability": "quotes"})
        if access is not None and not access["available"]:
            await _fail_row(ctx, row["id"], access["notice"])
            raise Skip(access["notice"], {"capability": "quotes"})
    parent = row["in_reply_to_tweet_id"]
    if not parent:
        return False
    target = await db.fetchrow("x_reply_target", {"tweet_id": parent})
    summoned = bool(target and target["summoned"])
    if not summoned and not (target and target["own"]):
        access = await db.fetchrow("x_capability", {"capability": "unsummoned_replies"})
        if access is not None and not access["available"]:
            reason = (
                f"not posted: X allows a reply on this access tier only to a post that summoned "
                f"the account (mentioned it or quoted one of its posts); post {parent} did not "
                f"({access['notice']})"
            )
            await _fail_row(ctx, row["id"], reason)
            raise Skip(reason, {"capability": "unsummoned_replies", "in_reply_to": parent})
    return summoned


def _estimate(ctx: JobContext, row: dict[str, Any], operation: str) -> float:
    prices = ctx.services.config.pricing.x
    alt = prices.media_metadata if row["image_path"] and row["alt_text"] else 0.0
    return float(getattr(prices, operation)) + alt


def _made_with_ai(ctx: JobContext, row: dict[str, Any]) -> bool:
    """The row's image was drawn by OpenAI (generated rows are the only ones with images)."""
    return bool(row["image_path"] and row["topic"] and ctx.services.config.generation.made_with_ai)


async def _reserve_and_mark(ctx: JobContext, row_id: int, *, reserve: bool) -> Any:
    """Take the post's quota (when `reserve`) and mark the row `posting`, in one transaction.

    The reservation belongs to the row's `posting` state (the next attempt carries it over), so
    the two must commit together: a crash or a lost connection between two separate statements
    would keep a reservation that no row carries, and the monthly count would drift above what
    X bills. Returns the marked row, None when the row moved on (nothing taken), or `_CAPPED`.
    """
    async with ctx.services.db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
        if reserve:
            await cur.execute(query("consume_quota"), {"resource": "posts", "amount": 1})
            taken = await cur.fetchone()
            if not taken or not next(iter(taken.values())):
                return _CAPPED  # commits the alert consume_quota raised; nothing was taken
        await cur.execute(query("mark_posting"), {"id": row_id})
        marked = await cur.fetchone()
        if marked is None and reserve:
            await cur.execute(query("refund_quota"), {"resource": "posts", "amount": 1})
        return marked


async def _give_back(
    ctx: JobContext,
    row_id: int,
    *,
    refund: bool,
    unmark: str | None = None,
    fail: str | None = None,
) -> None:
    """X certainly created nothing: return the quota and move the row off `posting` (back to
    ready with `unmark`, or to failed with `fail`) in one transaction, for the same reason."""
    async with ctx.services.db.transaction() as conn:
        if refund:
            await conn.execute(query("refund_quota"), {"resource": "posts", "amount": 1})
        if unmark is not None:
            await conn.execute(query("unmark_posting"), {"id": row_id, "error": unmark})
        if fail is not None:
            await conn.execute(query("mark_scheduled_failed"), {"id": row_id, "error": fail})


@job_kind("post_tweet", PostTweetPayload, concurrency=2, lease=timedelta(seconds=90))
async def post_tweet(payload: PostTweetPayload, ctx: JobContext) -> dict[str, Any] | None:
    db = ctx.services.db
    row = await db.fetchrow("get_scheduled_tweet", {"id": payload.scheduled_tweet_id})
    if row is None:
        raise GiveUp(f"scheduled_tweets row {payload.scheduled_tweet_id} does not exist")
    status = row["status"]
    if status == "posted":
        return {"already_posted": row["tweet_id"]}
    if status in ("cancelled", "rejected", "failed"):
        return {"skipped": status}
    if status in ("generating", "awaiting_approval"):
        return {"skipped": f"not ready ({status})"}
    content = row["content"]
    if not content:
        raise GiveUp(f"scheduled_tweets row {row['id']} has no content to post")
    try:
        validate_tweet_text(content)
    except ValueError as exc:
        await _fail_row(ctx, row["id"], str(exc))
        raise GiveUp(str(exc)) from None

    summoned = await _refuse_on_this_tier(ctx, row)
    operation = post_operation(content, summoned_reply=summoned)

    # An earlier attempt may have reached X: look before posting again. That attempt took the
    # post's quota before marking the row `posting` and kept it (the outcome was unknown), so
    # the reservation carries over: found or posted now, the tweet costs one post, not two.
    carried_over = status == "posting"
    if carried_over:
        found = await reconcile(ctx, content, row["post_started_at"], row["in_reply_to_tweet_id"])
        if found:
            # X created (and bills) the tweet on that earlier call: count it now.
            await record_usage(ctx, "tweets", operation, posts=1)
            await _record(ctx, row, found["tweet_id"], found["posted_at"], None)
            ctx.log.info("reconciled: tweet {} was already posted", found["tweet_id"])
            return {"tweet_id": found["tweet_id"], "reconciled": True}

    wait_for_spent_window(ctx, "tweets")
    async with budgeted(ctx, _estimate(ctx, row, operation)) as spend:
        return await _post(ctx, row, content, operation, spend, carried_over=carried_over)


async def _post(
    ctx: JobContext,
    row: dict[str, Any],
    content: str,
    operation: str,
    spend: Any,
    *,
    carried_over: bool,
) -> dict[str, Any]:
    marked = await _reserve_and_mark(ctx, row["id"], reserve=not carried_over)
    if marked is _CAPPED:
        raise quota_snooze("posts")
    if marked is None:  # cancelled (or otherwise moved on) since we read it
        return {"skipped": "no longer ready"}

    try:
        media_id = await _attach_image(ctx, row)
        tweet = await ctx.services.x.post_tweet(
            content,
            media_ids=[media_id] if media_id else None,
            reply_to=row["in_reply_to_tweet_id"],
            quote_tweet_id=row["quote_tweet_id"],
            made_with_ai=bool(media_id) and _made_with_ai(ctx, row),
        )
    except XDuplicate:
        found = await reconcile(
            ctx, content, marked["post_started_at"], row["in_reply_to_tweet_id"]
        )
        if found:
            # This call created nothing; a carried-over reservation pays for the earlier call
            # that did, a fresh one is given back.
            if not carried_over:
                await refund_quota(ctx, "posts", 1)
            await _record(ctx, row, found["tweet_id"], found["posted_at"], None)
            return {"tweet_id": found["tweet_id"], "reconciled": True, "duplicate": True}
        reason = "X refused the text as a duplicate of an earlier tweet"
        await _give_back(ctx, row["id"], refund=True, fail=reason)
        raise GiveUp(reason) from None
    except XRateLimited as exc:
        await _give_back(ctx, row["id"], refund=True, unmark="waiting for X's rate limit")
        raise rate_limit_snooze("tweets", exc.reset_at, daily=exc.daily) from None
    except XUsageCapped:
        await _give_back(ctx, row["id"], refund=True, unmark="X usage cap reached")
        raise await usage_capped(ctx, "posts") from None
    except XCreditsExhausted:
        await _give_back(ctx, row["id"], refund=True, unmark="X credits exhausted (402)")
        raise await credits_exhausted(ctx, "posts") from None
    except XReplyNotAllowed as exc:
        reason = f"X refused the reply (the post did not summon the account): {exc}"
        await _give_back(ctx, row["id"], refund=True, fail=reason)
        raise Skip(reason, {"capability": "unsummoned_replies"}) from None
    except XCapabilityRefused as exc:
        if not row["quote_tweet_id"]:
            raise await _credentials_refused(ctx, row, exc) from None
        await _give_back(ctx, row["id"], refund=True, fail=f"X refused the quote post: {exc}")
        raise await capability_refused(ctx, "quotes", exc.detail or str(exc)) from None
    except XAuthError as exc:
        raise await _credentials_refused(ctx, row, exc) from None
    except XBadRequest as exc:
        await _give_back(ctx, row["id"], refund=True, fail=f"X refused the tweet: {exc}")
        raise GiveUp(f"X refused the tweet: {exc}") from None
    except (XTimeout, XNetworkError, XServerError) as exc:
        # Unknown outcome: keep `posting` so the next attempt reconciles first.
        if ctx.is_last_attempt:
            await _fail_row(ctx, row["id"], f"outcome unknown after last attempt: {exc}")
        raise RetryLater(f"X call outcome unknown ({type(exc).__name__}); will reconcile") from None

    cost = await record_usage(ctx, "tweets", operation, posts=1, spend=spend)
    posted_at = datetime.now(UTC)
    await _record(ctx, row, tweet.id, posted_at, media_id)
    ctx.log.info("posted tweet {} ({}, ${:.3f})", tweet.id, operation, cost)
    return {"tweet_id": tweet.id, "media_id": media_id, "operation": operation, "cost_usd": cost}


async def _credentials_refused(ctx: JobContext, row: dict[str, Any], exc: Exception) -> Exception:
    await _give_back(ctx, row["id"], refund=True, unmark="X rejected the credentials")
    await alert(ctx, "critical", "x_auth", "x_auth", f"X rejected the credentials: {exc}")
    return RetryLater(f"X rejected the credentials: {exc}", retry_in=timedelta(minutes=10))


async def _attach_image(ctx: JobContext, row: dict[str, Any]) -> str | None:
    """Upload the row's stored image to X (with alt text); None when the tweet has no image."""
    if not row["image_path"]:
        return None
    data, mime = await ctx.services.images.download(row["image_path"])
    media_id = await ctx.services.x.upload_media(data, mime)
    await record_usage(ctx, "media_upload")  # not priced by X
    if row["alt_text"]:
        await ctx.services.x.set_alt_text(media_id, row["alt_text"])
        await record_usage(ctx, "media_metadata", "media_metadata")
    return media_id
