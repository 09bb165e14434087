"""`poll_mentions`: fetch mentions since the stored since_id and ingest replies idempotently.

Each new `replies` row gets its `like_reply` job from a trigger, so polling, webhooks and manual
inserts all lead to the same like. The since_id cursor only moves forward, in the database.

X pages newest first. When more mentions arrived than one poll reads (`max_pages`), the cursor
still moves to the newest, and the gap between the old cursor and the oldest mention read is
handed to a backfill job (the same kind, with `since_id`/`until_id` in its payload) that walks
it on, so a burst of mentions is never skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from worker.clients.x import XNetworkError, XRateLimited, XServerError, XTimeout, XUsageCapped
from worker.conversation.mentions import mention_to_reply_row
from worker.jobs._x import (
    bot_user_id,
    rate_limit_snooze,
    record_usage,
    reserved_reads,
    usage_capped,
)
from worker.jobs.context import JobContext
from worker.jobs.registry import RetryLater, Snooze, job_kind

EMPTY_PAGES_RETRY = timedelta(seconds=5)


class PollMentionsPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_results: int = Field(default=100, ge=5, le=100)
    max_pages: int = Field(default=5, ge=1, le=50)
    # Backfill of a gap left by an earlier poll: mentions in (since_id, until_id).
    since_id: str | None = Field(default=None, pattern=r"^\d{1,25}$")
    until_id: str | None = Field(default=None, pattern=r"^\d{1,25}$")


@job_kind("poll_mentions", PollMentionsPayload, concurrency=1, lease=timedelta(seconds=60))
async def poll_mentions(payload: PollMentionsPayload, ctx: JobContext) -> dict[str, Any] | None:
    db = ctx.services.db
    user_id = await bot_user_id(ctx)
    backfill = payload.until_id is not None
    if backfill:
        since_id = payload.since_id
    else:
        account = await db.fetchrow("get_account")
        since_id = account["mentions_since_id"] if account else None

    budget = payload.max_results * payload.max_pages
    try:
        async with reserved_reads(ctx, budget, requests=payload.max_pages) as reads:
            page = await ctx.services.x.mentions(
                user_id,
                since_id=since_id,
                until_id=payload.until_id,
                max_results=payload.max_results,
                max_pages=payload.max_pages,
            )
            reads.served = len(page.tweets)
    except XRateLimited as exc:
        raise rate_limit_snooze("mentions", exc.reset_at) from None
    except XUsageCapped:
        raise await usage_capped(ctx, "mention polls") from None
    except (XTimeout, XNetworkError, XServerError) as exc:
        raise RetryLater(f"mentions fetch failed ({type(exc).__name__})") from None
    await record_usage(ctx, "mentions", reads=len(page.tweets))
    if not page.complete and not page.tweets:
        # X served only empty pages that still promised more: nothing to move the cursor or a
        # backfill by. Look again shortly (no attempt spent); the range is unchanged.
        raise Snooze(
            datetime.now(UTC) + EMPTY_PAGES_RETRY, "X served empty pages with more to come"
        )

    rows = [
        row
        for tweet in page.tweets
        if (row := mention_to_reply_row(tweet, bot_user_id=user_id, source="poll")) is not None
    ]

    inserted = []
    if rows:
        inserted = [r["reply_id"] for r in await db.fetch("insert_replies", {"rows": Jsonb(rows)})]
    if page.newest_id and not backfill:
        await db.execute("advance_since_id", {"since_id": page.newest_id})
    result: dict[str, Any] = {
        "fetched": len(page.tweets),
        "inserted": len(inserted),
        "since_id": page.newest_id,
    }
    if not page.complete and page.tweets and since_id is not None:
        # Older mentions than the ones read remain above the previous cursor: walk them next.
        # (Without a cursor, on the very first poll, older mentions are history, not a gap.)
        oldest = str(min(int(t.id) for t in page.tweets))
        result["backfill_job"] = await ctx.services.queue.enqueue(
            "poll_mentions",
            {
                "max_results": payload.max_results,
                "max_pages": payload.max_pages,
                "since_id": since_id,
                "until_id": oldest,
            },
            dedupe_key=f"poll_mentions:backfill:{since_id or 0}:{oldest}",
        )
    return result
