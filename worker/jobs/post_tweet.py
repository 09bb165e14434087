"""`post_tweet`: post one scheduled_tweets row to X, exactly once.

The intent is recorded (status `posting`) before X is called, in the transaction that checks
the job's lease and takes the post's quota. If the outcome of a call is unknown (timeout,
dropped connection, 5xx, a crash before the result was written), the next attempt first looks
for the post on the account's timeline (`_reconcile.py`: X's rewriting undone, every page
followed, a consistency window waited out) and records that post instead of posting again. When
the job ends first (its last attempt, its lease lost, cancelled), the database hands the row to
`reconcile_post`, which looks the same way and never posts. X's duplicate-content refusal means
the same thing: the post exists.

The quota follows what X bills: a reservation is given back (to the month it was taken in) only
when X certainly created nothing, and never by an attempt that carried it over from an earlier
one whose call may have created the post.

What X allows and charges is checked before any call: a quote post needs Enterprise access
(since 2026-04-20), and on self-serve access a reply must answer a post that summoned the
account (since 2026-02-23; SQL x_summoned_by). A row that cannot be posted on the configured
tier fails with the reason and its job ends `skipped`. The post's price (configs.pricing.x:
$0.20 with a URL, $0.010 for a summoned reply, $0.015 otherwise) is held in the monthly budget
before the call and recorded by operation after it. Generated images go out with
`made_with_ai: true` (configs.generation.made_with_ai).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
    XNotSent,
    XRateLimited,
    XReplyNotAllowed,
    XServerError,
    XTimeout,
    XUsageCapped,
)
from worker.content.polls import poll_from_row
from worker.content.tweet_text import validate_tweet_text
from worker.db import query
from worker.jobs._reconcile import (
    media_count,
    reconcile,
    record_found,
    record_posted,
    window_s,
)
from worker.jobs._x import (
    Budgeted,
    alert,
    budgeted,
    capability_refused,
    credits_exhausted,
    quota_snooze,
    rate_limit_snooze,
    record_usage,
    usage_capped,
    wait_for_spent_window,
)
from worker.jobs.context import JobContext
from worker.jobs.registry import GiveUp, LeaseLost, RetryLater, Skip, Snooze, job_kind


class PostTweetPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduled_tweet_id: int


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


async def _mark_and_reserve(ctx: JobContext, row_id: int, *, reserve: bool) -> Any:
    """Check the lease, mark the row `posting` and take the post's quota, in one transaction.

    - The lease check (a share lock on the job row) makes the marking happen under the lease: a
      run whose lease was reaped meanwhile stops here (`LeaseLost`) and never reaches X.
    - The reservation belongs to the row's `posting` state (the next attempt carries it over),
      so the two commit together: a crash between two separate statements would keep a
      reservation no row carries.
    - The row is locked before the quota row, which every poster shares: a row lock held by
      someone else (an operator's open transaction) then stalls this post alone, not all of them
      while holding the quota row (and the session's lock_timeout ends the wait with an alert).

    Returns the marked row, None when the row moved on (nothing taken), or `_CAPPED`.
    """
    async with ctx.leased_transaction("posting") as cur:
        await cur.execute(query("mark_posting"), {"id": row_id})
        marked = await cur.fetchone()
        if marked is None or not reserve:
            return marked
        await cur.execute(query("consume_quota"), {"resource": "posts", "amount": 1})
        taken = await cur.fetchone()
        if not taken or not taken["taken"]:
            # Commits the alert consume_quota raised; the row goes back to ready, nothing taken.
            await cur.execute(query("unmark_posting"), {"id": row_id, "error": None})
            return _CAPPED
        return marked


async def _give_back(
    ctx: JobContext,
    row_id: int,
    *,
    refund: bool,
    unmark: str | None = None,
    fail: str | None = None,
) -> None:
    """X certainly created nothing: return the quota (to the month it was reserved in) and move
    the row off `posting` (back to ready with `unmark`, or to failed with `fail`), in one
    transaction, for the same reason as `_mark_and_reserve`."""
    async with ctx.services.db.transaction() as conn:
        if refund:
            await conn.execute(query("refund_post_reservation"), {"id": row_id})
        if unmark is not None:
            await conn.execute(query("unmark_posting"), {"id": row_id, "error": unmark})
        if fail is not None:
            await conn.execute(query("mark_scheduled_failed"), {"id": row_id, "error": fail})


async def _arm(ctx: JobContext, row_id: int) -> tuple[bool, datetime | None]:
    """Right before the post is sent, under the lease: open the consistency window for this call.
    Returns (still held, the window's previous end)."""
    queue = ctx.services.queue
    async with ctx.services.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            query("arm_post_call"),
            {
                "id": row_id,
                "job_id": ctx.job.id,
                "worker_id": queue.worker_id,
                "lease_token": ctx.job.lease_token,
                "call_s": ctx.services.x.call_timeout_s,
                "window_s": window_s(ctx),
            },
        )
        armed = await cur.fetchone()
    return (armed is not None, armed["previous"] if armed else None)


async def _not_created(
    ctx: JobContext, row_id: int, *, carried_over: bool, previous: datetime | None, reason: str
) -> None:
    """X answered that this call created nothing (429, usage cap, auth, not sent).

    A fresh attempt gives its reservation back and the row returns to ready. An attempt that
    carried the row over keeps both: the earlier call whose outcome is unknown may still have
    created the post, so the next attempt must reconcile first, and the reservation pays for it.
    """
    if carried_over:
        await ctx.services.db.execute("disarm_post_call", {"id": row_id, "previous": previous})
    else:
        await _give_back(ctx, row_id, refund=True, unmark=reason)


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
        _poll_args(row)
    except ValueError as exc:
        await _fail_row(ctx, row["id"], str(exc))
        raise GiveUp(str(exc)) from None

    summoned = await _refuse_on_this_tier(ctx, row)
    operation = post_operation(content, summoned_reply=summoned)

    # An earlier attempt may have reached X: look before posting again. That attempt took the
    # post's quota before marking the row `posting` and kept it (the outcome was unknown), so
    # the reservation carries over: found or posted now, the post costs one, not two.
    carried_over = status == "posting"
    if carried_over:
        found = await reconcile(ctx, row, media_count=media_count(row))
        if found:
            await record_found(ctx, row, found, operation)
            ctx.log.info("reconciled: tweet {} was already posted", found.tweet_id)
            return {"tweet_id": found.tweet_id, "reconciled": True}
        if row["duplicate_refused_at"] is not None:
            # X called the text a duplicate, and a whole window later this row's post is still
            # not on the timeline: it duplicates an older post. Asking again would loop.
            reason = "X refused the text as a duplicate of an earlier tweet"
            await _give_back(ctx, row["id"], refund=True, fail=reason)
            raise GiveUp(reason)

    wait_for_spent_window(ctx, "tweets")
    async with budgeted(ctx, _estimate(ctx, row, operation)) as spend:
        return await _post(ctx, row, content, operation, spend, carried_over=carried_over)


async def _post(
    ctx: JobContext,
    row: dict[str, Any],
    content: str,
    operation: str,
    spend: Budgeted,
    *,
    carried_over: bool,
) -> dict[str, Any]:
    """Mark, upload, arm and send, under the lease and inside the budget hold."""
    db = ctx.services.db
    marked = await _mark_and_reserve(ctx, row["id"], reserve=not carried_over)
    if marked is _CAPPED:
        raise quota_snooze("posts")
    if marked is None:  # cancelled (or otherwise moved on) since we read it
        return {"skipped": "no longer ready"}
    row = {**row, "post_started_at": marked["post_started_at"]}

    media_id = await _upload_image(ctx, row, carried_over=carried_over)
    held, previous = await _arm(ctx, row["id"])
    if not held:
        raise LeaseLost(f"job {ctx.job.id}: lease lost before the post was sent")

    async def not_created(reason: str) -> None:
        await _not_created(
            ctx, row["id"], carried_over=carried_over, previous=previous, reason=reason
        )

    try:
        tweet = await ctx.services.x.post_tweet(
            content,
            media_ids=[media_id] if media_id else None,
            reply_to=row["in_reply_to_tweet_id"],
            quote_tweet_id=row["quote_tweet_id"],
            made_with_ai=bool(media_id) and _made_with_ai(ctx, row),
            **_poll_args(row),
        )
    except XDuplicate:
        return await _duplicate(ctx, row, operation)
    except _WAITS as exc:
        raise await _wait_for_x(ctx, exc, "tweets", not_created) from None
    except XReplyNotAllowed as exc:
        # Refused before anything was created; reconciliation found nothing from earlier calls.
        reason = f"X refused the reply (the post did not summon the account): {exc}"
        await _give_back(ctx, row["id"], refund=True, fail=reason)
        raise Skip(reason, {"capability": "unsummoned_replies"}) from None
    except XCapabilityRefused as exc:
        if not row["quote_tweet_id"]:
            await not_created("X rejected the credentials")
            raise await _credentials_refused(ctx, exc) from None
        await _give_back(ctx, row["id"], refund=True, fail=f"X refused the quote post: {exc}")
        raise await capability_refused(ctx, "quotes", exc.detail or str(exc)) from None
    except XAuthError as exc:
        await not_created("X rejected the credentials")
        raise await _credentials_refused(ctx, exc) from None
    except XBadRequest as exc:
        # Refused: nothing created now, and reconciliation (after the window) found nothing from
        # earlier calls. The reservation, carried over or not, goes back to its month.
        await _give_back(ctx, row["id"], refund=True, fail=f"X refused the tweet: {exc}")
        raise GiveUp(f"X refused the tweet: {exc}") from None
    except (XTimeout, XNetworkError, XServerError) as exc:
        # Unknown outcome: keep `posting` so the next attempt reconciles first; X's timeline may
        # show the post only after the window, counted from now.
        # On the last attempt too: the job's end hands the row to reconcile_post, which looks
        # before anything else (never failed blindly, never posted twice).
        await db.execute("post_outcome_unknown", {"id": row["id"], "window_s": window_s(ctx)})
        raise RetryLater(f"X call outcome unknown ({type(exc).__name__}); will reconcile") from None

    cost = await record_usage(ctx, "tweets", operation, posts=1, spend=spend)
    posted_at = datetime.now(UTC)
    await record_posted(ctx, row, tweet.id, posted_at, media_id)
    ctx.log.info("posted tweet {} ({}, ${:.3f})", tweet.id, operation, cost)
    return {"tweet_id": tweet.id, "media_id": media_id, "operation": operation, "cost_usd": cost}


def _poll_args(row: dict[str, Any]) -> dict[str, Any]:
    """The row's poll as ``XClient.post_tweet`` takes it, checked by X's rules (PollError)."""
    poll = poll_from_row(
        row["poll_options"],
        row["poll_duration_minutes"],
        has_media=bool(row["image_path"]),
        quotes=bool(row["quote_tweet_id"]),
    )
    if poll is None:
        return {}
    return {"poll_options": poll.options, "poll_duration_minutes": poll.duration_minutes}


async def _credentials_refused(ctx: JobContext, exc: Exception) -> Exception:
    await alert(ctx, "critical", "x_auth", "x_auth", f"X rejected the credentials: {exc}")
    return RetryLater(f"X rejected the credentials: {exc}", retry_in=timedelta(minutes=10))


async def _duplicate(ctx: JobContext, row: dict[str, Any], operation: str) -> dict[str, Any]:
    """X refused the text as a duplicate: the post exists. Nothing is refunded (X billed the
    call that created it, and this row's reservation stands for it); it is found and recorded,
    after the consistency window if need be."""
    await ctx.services.db.execute("note_duplicate_refusal", {"id": row["id"]})
    found = await reconcile(ctx, row, media_count=media_count(row))
    if found:
        owner = await ctx.services.db.fetchval("tweet_recorded_for", {"tweet_id": found.tweet_id})
        if owner is not None and owner != row["id"]:
            reason = (
                f"X refused the text as a duplicate of tweet {found.tweet_id}, already posted for"
                f" scheduled_tweets {owner}"
            )
            await _fail_row(ctx, row["id"], reason)
            raise GiveUp(reason)
        await record_found(ctx, row, found, operation)
        return {"tweet_id": found.tweet_id, "reconciled": True, "duplicate": True}
    reason = "X refused the text as a duplicate of an earlier tweet"
    await _fail_row(ctx, row["id"], reason)
    raise GiveUp(reason)


# X's answers that created nothing and mean "not now": the job waits, no attempt spent.
_WAITS = (XNotSent, XRateLimited, XUsageCapped, XCreditsExhausted)


async def _wait_for_x(
    ctx: JobContext,
    exc: Exception,
    endpoint: str,
    not_created: Callable[[str], Awaitable[None]],
) -> Exception:
    """Settle the row for one of `_WAITS` (through `not_created`) and return the wait."""
    if isinstance(exc, XRateLimited):
        await not_created(f"waiting for X's rate limit ({endpoint})")
        return rate_limit_snooze(endpoint, exc.reset_at, daily=exc.daily)
    if isinstance(exc, XUsageCapped):
        await not_created("X usage cap reached")
        return await usage_capped(ctx, "posts")
    if isinstance(exc, XCreditsExhausted):
        await not_created("X credits exhausted (402)")
        return await credits_exhausted(ctx, "posts")
    await not_created("worker stopped")
    return Snooze(datetime.now(UTC), "not sent: the worker is stopping")


async def _upload_image(ctx: JobContext, row: dict[str, Any], *, carried_over: bool) -> str | None:
    """`_attach_image`, with its failures mapped: the post has not been sent yet, so whatever
    happened to the upload, X created no post on this attempt."""

    async def not_created(reason: str) -> None:
        # Before the post call: nothing to disarm (the window of an earlier call stays as is).
        if not carried_over:
            await _give_back(ctx, row["id"], refund=True, unmark=reason)

    try:
        return await _attach_image(ctx, row)
    except _WAITS as exc:
        raise await _wait_for_x(ctx, exc, "media_upload", not_created) from None
    except XBadRequest as exc:
        await _give_back(ctx, row["id"], refund=True, fail=f"X refused the image: {exc}")
        raise GiveUp(f"X refused the image: {exc}") from None
    except (XAuthError, XTimeout, XNetworkError, XServerError) as exc:
        await not_created(f"image upload failed ({type(exc).__name__})")
        raise RetryLater(f"image upload failed ({type(exc).__name__}): {exc}") from None


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
