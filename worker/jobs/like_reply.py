"""`like_reply`: like a reply or mention of the account (idempotent: X and the row both are).

Likes exist only on Enterprise access since 2026-04-20 (docs.x.com changelog, 2026-04-16).
The replies trigger enqueues no like where the configured tier lacks them; a job that exists
anyway ends `skipped` before any call. When X refuses a like with 403 client-forbidden (the tier
is not what the config says), likes are paused with one alert, and every like job behind it is
skipped without calling X. X's developer guidelines forbid automated liking by keyword,
hashtag, user or schedule (docs.x.com/developer-guidelines).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worker.clients.x import (
    XAuthError,
    XBadRequest,
    XCapabilityRefused,
    XCreditsExhausted,
    XNetworkError,
    XNotSent,
    XRateLimited,
    XServerError,
    XTimeout,
    XUsageCapped,
)
from worker.jobs._x import (
    alert,
    bot_user_id,
    capability_refused,
    credits_exhausted,
    rate_limit_snooze,
    record_usage,
    require_capability,
    usage_capped,
    wait_for_spent_window,
)
from worker.jobs.context import JobContext
from worker.jobs.registry import GiveUp, RetryLater, Snooze, job_kind


class LikeReplyPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reply_id: str = Field(pattern=r"^\d{1,25}$")


def _tomorrow() -> datetime:
    now = datetime.now(UTC)
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=5, microsecond=0)


async def _refused(ctx: JobContext, exc: Exception) -> Exception:
    """What X's refusal of a like means for the job."""
    if isinstance(exc, XRateLimited):
        return rate_limit_snooze("likes", exc.reset_at, daily=exc.daily)
    if isinstance(exc, XUsageCapped):
        return await usage_capped(ctx, "likes")
    if isinstance(exc, XCreditsExhausted):
        return await credits_exhausted(ctx, "likes")
    if isinstance(exc, XCapabilityRefused):
        return await capability_refused(ctx, "likes", exc.detail or str(exc))
    if isinstance(exc, XBadRequest):
        return GiveUp(f"X refused the like: {exc}")
    if isinstance(exc, XAuthError):
        await alert(ctx, "critical", "x_auth", "x_auth", f"X rejected the credentials: {exc}")
        return RetryLater(f"X rejected the credentials: {exc}", retry_in=timedelta(minutes=10))
    return Snooze(datetime.now(UTC), "not sent: the worker is stopping")


# One like at a time per worker: X allows 50 per 15 minutes anyway, and a refusal of the
# capability (403 client-forbidden) stops every like behind it before it reaches X.
@job_kind("like_reply", LikeReplyPayload, concurrency=1, lease=timedelta(seconds=30))
async def like_reply(payload: LikeReplyPayload, ctx: JobContext) -> dict[str, Any] | None:
    db = ctx.services.db
    reply = await db.fetchrow("get_reply", {"reply_id": payload.reply_id})
    if reply is None:
        raise GiveUp(f"reply {payload.reply_id} is not in the replies table")
    if reply["liked"]:
        return {"already_liked": True}

    engagement = ctx.services.config.engagement
    if not engagement.auto_like:
        return {"skipped": "auto_like is off"}
    await require_capability(ctx, "likes")
    if reply["author_id"] in engagement.skip_authors:
        return {"skipped": "author in skip_authors"}
    text = (reply["content"] or "").lower()
    blocked = next((w for w in engagement.blocked_keywords if w.lower() in text), None)
    if blocked:
        return {"skipped": f"blocked keyword {blocked!r}"}
    user_id = await bot_user_id(ctx)
    if reply["author_id"] == user_id:
        return {"skipped": "own tweet"}
    wait_for_spent_window(ctx, "likes")
    # Take the like from today's counter first (atomic, like the monthly quotas): a count of
    # today's likes checked before liking lets every handler running at once pass.
    cap = engagement.daily_like_cap
    if not await db.fetchval("reserve_daily_like", {"reply_id": payload.reply_id, "cap": cap}):
        raise Snooze(_tomorrow(), f"daily like cap of {cap} reached")
    try:
        await ctx.services.x.like(user_id, payload.reply_id)
    except (
        XRateLimited,
        XUsageCapped,
        XCreditsExhausted,
        XCapabilityRefused,
        XBadRequest,
        XAuthError,
        XNotSent,
    ) as exc:
        # X certainly did not like it: the unit goes back to today's cap.
        await db.fetchval("release_daily_like", {"reply_id": payload.reply_id})
        raise await _refused(ctx, exc) from None
    except (XTimeout, XNetworkError, XServerError) as exc:
        # It may have: the unit stays taken (a retry of this like takes no second one).
        raise RetryLater(f"like failed ({type(exc).__name__}); liking again is harmless") from None
    await record_usage(ctx, "likes")  # no self-serve price: Enterprise terms are negotiated
    await db.execute("mark_reply_liked", {"reply_id": payload.reply_id})
    return {"liked": payload.reply_id}
