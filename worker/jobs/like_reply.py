"""`like_reply`: like a reply or mention of the account (idempotent: X and the row both are)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worker.clients.x import (
    XAuthError,
    XBadRequest,
    XNetworkError,
    XNotSent,
    XRateLimited,
    XServerError,
    XTimeout,
    XUsageCapped,
)
from worker.jobs._x import alert, bot_user_id, rate_limit_snooze, record_usage, usage_capped
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
        return rate_limit_snooze("likes", exc.reset_at)
    if isinstance(exc, XUsageCapped):
        return await usage_capped(ctx, "likes")
    if isinstance(exc, XBadRequest):
        return GiveUp(f"X refused the like: {exc}")
    if isinstance(exc, XAuthError):
        await alert(ctx, "critical", "x_auth", "x_auth", f"X rejected the credentials: {exc}")
        return RetryLater(f"X rejected the credentials: {exc}", retry_in=timedelta(minutes=10))
    return Snooze(datetime.now(UTC), "not sent: the worker is stopping")


@job_kind("like_reply", LikeReplyPayload, concurrency=8, lease=timedelta(seconds=30))
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
    if reply["author_id"] in engagement.skip_authors:
        return {"skipped": "author in skip_authors"}
    text = (reply["content"] or "").lower()
    blocked = next((w for w in engagement.blocked_keywords if w.lower() in text), None)
    if blocked:
        return {"skipped": f"blocked keyword {blocked!r}"}
    user_id = await bot_user_id(ctx)
    if reply["author_id"] == user_id:
        return {"skipped": "own tweet"}
    # Take the like from today's counter first (atomic, like the monthly quotas): a count of
    # today's likes checked before liking lets every handler running at once pass.
    cap = engagement.daily_like_cap
    if not await db.fetchval("reserve_daily_like", {"reply_id": payload.reply_id, "cap": cap}):
        raise Snooze(_tomorrow(), f"daily like cap of {cap} reached")
    try:
        await ctx.services.x.like(user_id, payload.reply_id)
    except (XRateLimited, XUsageCapped, XBadRequest, XAuthError, XNotSent) as exc:
        # X certainly did not like it: the unit goes back to today's cap.
        await db.fetchval("release_daily_like", {"reply_id": payload.reply_id})
        raise await _refused(ctx, exc) from None
    except (XTimeout, XNetworkError, XServerError) as exc:
        # It may have: the unit stays taken (a retry of this like takes no second one).
        raise RetryLater(f"like failed ({type(exc).__name__}); liking again is harmless") from None
    await record_usage(ctx, "likes")
    await db.execute("mark_reply_liked", {"reply_id": payload.reply_id})
    return {"liked": payload.reply_id}
