"""`collect_stats`: engagement of recent tweets, 100 ids per lookup, one stats row per tweet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from worker.clients.x import XNetworkError, XRateLimited, XServerError, XTimeout, XUsageCapped
from worker.jobs._x import (
    rate_limit_snooze,
    record_usage,
    reserved_reads,
    usage_capped,
)
from worker.jobs.context import JobContext
from worker.jobs.registry import RetryLater, job_kind


class CollectStatsPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(default=30, ge=1, le=365)


@job_kind("collect_stats", CollectStatsPayload, concurrency=1, lease=timedelta(seconds=120))
async def collect_stats(payload: CollectStatsPayload, ctx: JobContext) -> dict[str, Any] | None:
    db = ctx.services.db
    ids = [r["tweet_id"] for r in await db.fetch("tweets_for_stats", {"days": payload.days})]
    if not ids:
        return {"tweets": 0}
    requests = (len(ids) + 99) // 100
    try:
        async with reserved_reads(ctx, len(ids), requests=requests) as reads:
            metrics = await ctx.services.x.lookup_tweets(ids)
            reads.served = len(metrics)
    except XRateLimited as exc:
        raise rate_limit_snooze("tweets_lookup", exc.reset_at) from None
    except XUsageCapped:
        raise await usage_capped(ctx, "stats collections") from None
    except (XTimeout, XNetworkError, XServerError) as exc:
        raise RetryLater(f"tweet lookup failed ({type(exc).__name__})") from None
    await record_usage(ctx, "tweets_lookup", reads=len(metrics), calls=requests)

    rows = [
        {
            "tweet_id": m.id,
            "likes": m.likes,
            "retweets": m.retweets,
            "replies": m.replies,
            "impressions": m.impressions,
            "quotes": m.quotes,
            "bookmarks": m.bookmarks,
        }
        for m in metrics
    ]
    collected_at = datetime.now(UTC)
    if rows:
        await db.execute("insert_stats", {"rows": Jsonb(rows), "collected_at": collected_at})
    missing = sorted(set(ids) - {m.id for m in metrics})
    return {"tweets": len(rows), "requests": requests, "missing": missing[:20]}
